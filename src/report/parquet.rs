//! Parquet: the model tables of each analysis in the hive layout query
//! engines read as a partitioned dataset, and the findings table alone
//! (read back by `analysis::frames::read_findings`).

use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::output::{AtomicFile, OutputError};
use crate::analysis::frames::Frames;
use crate::analysis::Analysis;

/// The findings of several analyses as one Parquet file.
pub fn write_findings(
    analyses: &[Analysis],
    path: &Path,
    inputs: &[&Path],
) -> Result<(), OutputError> {
    let polars_err = |e: PolarsError| OutputError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    };
    let mut frames = Vec::new();
    for a in analyses {
        frames.push(Frames::new(a).map_err(polars_err)?.findings.lazy());
    }
    let mut df = concat(frames, UnionArgs::default())
        .and_then(LazyFrame::collect)
        .map_err(polars_err)?;
    let mut file = AtomicFile::create(path, inputs)?;
    ParquetWriter::new(file.writer())
        .finish(&mut df)
        .map_err(polars_err)?;
    file.commit()
}

/// Writes the model tables of one analysis under `dir`, partitioned by the
/// names of its input files.
pub fn export_analysis(
    dir: &Path,
    a: &Analysis,
    inputs: &[&Path],
) -> Result<Vec<PathBuf>, OutputError> {
    let mut frames = Frames::new(a).map_err(|e| OutputError::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::other(format!("building model tables: {e}")),
    })?;
    let name = inputs
        .iter()
        .map(|p| {
            p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
        .collect::<Vec<_>>()
        .join("+");
    export_parquet(dir, &mut frames, &name)
}

/// Writes every table as Parquet under `dir/<table>/trace=<name>/`, the
/// hive layout query engines read as a partitioned dataset.
pub fn export_parquet(
    dir: &Path,
    frames: &mut Frames,
    trace_name: &str,
) -> Result<Vec<PathBuf>, OutputError> {
    let partition: String = trace_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut written = Vec::new();
    for (table, df) in frames.tables() {
        let folder = dir.join(table).join(format!("trace={partition}"));
        std::fs::create_dir_all(&folder).map_err(|source| OutputError::Io {
            path: folder.clone(),
            source,
        })?;
        let path = folder.join("part-0.parquet");
        let mut file = AtomicFile::create(&path, &[])?;
        ParquetWriter::new(file.writer())
            .finish(df)
            .map_err(|e| OutputError::Io {
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        file.commit()?;
        written.push(path);
    }
    Ok(written)
}
