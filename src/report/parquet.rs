//! Parquet: the model tables of each analysis in the hive layout query
//! engines read as a partitioned dataset, and the findings table alone
//! (read back by `analysis::frames::read_findings`).

use std::path::{Path, PathBuf};

use polars::prelude::*;
use polars_io::parquet::write::ParquetWriter;

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
        frames.push(Frames::findings(a).map_err(polars_err)?.lazy());
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

/// Writes the model tables of one analysis under `dir`, in the partition
/// `key` (see [`super::partition_keys`]).
pub fn export_analysis(dir: &Path, a: &Analysis, key: &str) -> Result<Vec<PathBuf>, OutputError> {
    let mut frames = Frames::new(a).map_err(|e| OutputError::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::other(format!("building model tables: {e}")),
    })?;
    export_parquet(dir, &mut frames, key)
}

/// Writes every table as Parquet under `dir/<table>/input=<key>/`, the
/// hive layout query engines read as a partitioned dataset (the partition
/// is named `input`, apart from the tables' `trace` column).
pub fn export_parquet(
    dir: &Path,
    frames: &mut Frames,
    key: &str,
) -> Result<Vec<PathBuf>, OutputError> {
    let mut written = Vec::new();
    for (table, df) in frames.tables() {
        let folder = dir.join(table).join(format!("input={key}"));
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
