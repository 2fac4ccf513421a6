//! A simulation written to disk: the .etl, NAME.expected.json beside it,
//! optionally the node's cluster.log, and for an uninstrumented node the
//! symbols of its images (NAME.symbols/), each whole or not at all.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{simulate_with, GroundTruth, Options, Scenario};
use crate::report::output::{write_folder, AtomicFile, OutputError};

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("{}: the output should end in .etl (the ground truth goes beside it as NAME.expected.json)", path.display())]
    NotEtl { path: PathBuf },
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("{}: cannot write: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// NAME.etl -> NAME.symbols beside it (an uninstrumented node's symbols).
pub fn symbols_path(trace: &Path) -> PathBuf {
    let stem = trace
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    trace.with_file_name(format!("{stem}.symbols"))
}

/// NAME.etl -> NAME.expected.json beside it.
pub fn truth_path(trace: &Path) -> PathBuf {
    let stem = trace
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    trace.with_file_name(format!("{stem}.expected.json"))
}

/// What to simulate into files.
pub struct FileOptions<'a> {
    pub seed: u64,
    pub scale: u64,
    pub fixed: Vec<Scenario>,
    pub etl: &'a Path,
    pub cluster_log: Option<&'a Path>,
    /// See [`Options::uninstrumented`].
    pub uninstrumented: bool,
}

/// Simulates `scenario` into the files; returns the ground truth (also
/// written to [`truth_path`]).
pub fn write_files(scenario: Scenario, o: FileOptions<'_>) -> Result<GroundTruth, SimulateError> {
    if o.etl.extension().is_none_or(|e| e != "etl") {
        return Err(SimulateError::NotEtl {
            path: o.etl.to_path_buf(),
        });
    }
    let cannot = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SimulateError::Io { path, source }
    };
    let truth_file = truth_path(o.etl);
    let mut etl = AtomicFile::create(o.etl, &[])?;
    let mut json = AtomicFile::create(&truth_file, &[])?;
    let mut log = o
        .cluster_log
        .map(|p| AtomicFile::create(p, &[]))
        .transpose()?;
    let mut symbols: Vec<(String, String)> = Vec::new();
    let truth = {
        let mut log_writer = log.as_mut().map(|l| std::io::BufWriter::new(l.writer()));
        let opts = Options {
            seed: o.seed,
            scale: o.scale,
            cluster_log: log_writer.as_mut().map(|w| w as &mut dyn Write),
            fixed: o.fixed,
            uninstrumented: o.uninstrumented,
            symbols: Some(&mut symbols),
        };
        let (_, truth) = simulate_with(scenario, opts, etl.writer()).map_err(cannot(o.etl))?;
        if let Some(mut w) = log_writer {
            w.flush().map_err(cannot(o.cluster_log.unwrap_or(o.etl)))?;
        }
        truth
    };
    serde_json::to_writer_pretty(&mut *json.writer(), &truth)
        .map_err(|e| cannot(&truth_file)(e.into()))?;
    json.writer()
        .write_all(b"\n")
        .map_err(cannot(&truth_file))?;
    if o.uninstrumented {
        let dir = symbols_path(o.etl);
        write_folder::<SimulateError>(&dir, &[], |tmp| {
            for (rel, text) in &symbols {
                let path = tmp.join(rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(cannot(&dir))?;
                }
                std::fs::write(&path, text).map_err(cannot(&dir))?;
            }
            Ok(())
        })?;
    }
    etl.commit()?;
    json.commit()?;
    if let Some(log) = log {
        log.commit()?;
    }
    Ok(truth)
}
