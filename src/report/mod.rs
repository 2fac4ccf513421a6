//! Printers: everything rhscope writes about an [`Analysis`](crate::analysis::Analysis).
//! Text tables, CSV, SARIF and Perfetto JSON need nothing more than the
//! analysis; the HTML report with its charts (plotters) needs the `report`
//! feature and Parquet the `polars` feature. Every file is written whole or
//! not at all ([`output`]).

#[cfg(feature = "report")]
mod charts;
pub mod csv;
pub mod dump;
#[cfg(feature = "report")]
mod figures;
#[cfg(feature = "report")]
pub mod html;
#[cfg(feature = "report")]
pub mod html_diff;
pub mod output;
#[cfg(feature = "polars")]
pub mod parquet;
pub mod perfetto;
pub mod sarif;
pub mod story;
pub mod text;
pub mod width;

use std::path::{Path, PathBuf};

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Output(#[from] output::OutputError),
    #[error("{}: cannot write: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A chart a backend could not draw (its file named).
    #[error("{file}: {detail}")]
    Chart { file: String, detail: String },
    #[error("the embedded DejaVu Sans font did not load")]
    Font,
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// A partition key per timeline (its node, or else its first input's
/// folder, then its inputs' file names: `NODE1_trace.etl`), readable and
/// the same from run to run; a suffix (`-2`, ...) only where two would
/// clash. Characters a path or a hive partition cannot carry become `_`.
pub fn partition_keys(timelines: &[(Option<&str>, Vec<&Path>)]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for (node, inputs) in timelines {
        let files: Vec<String> = inputs
            .iter()
            .map(|p| {
                p.file_name().map_or_else(
                    || p.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                )
            })
            .collect();
        let folder = inputs
            .first()
            .and_then(|p| p.parent())
            .and_then(Path::file_name)
            .map(|f| f.to_string_lossy().into_owned());
        let base = match node.map(str::to_string).or(folder) {
            Some(prefix) => format!("{prefix}_{}", files.join("+")),
            None => files.join("+"),
        };
        let base: String = base
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.+".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut key = base.clone();
        let mut n = 1;
        while keys.contains(&key) {
            n += 1;
            key = format!("{base}-{n}");
        }
        keys.push(key);
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_readable_stable_and_unique() {
        let (n1, n2) = (
            Path::new("case/n1/trace.etl"),
            Path::new("case/n2/trace.etl"),
        );
        let log = Path::new("case/NODE1_cluster.log");
        let etl = Path::new("case/node1.etl");
        let other = Path::new("x/trace.etl");
        assert_eq!(
            partition_keys(&[
                (None, vec![n1]),
                (None, vec![n2]),
                (Some("NODE1"), vec![etl, log]),
                (Some("n1"), vec![other]),
                (None, vec![Path::new("trace.etl")]),
            ]),
            [
                "n1_trace.etl",
                "n2_trace.etl",
                "NODE1_node1.etl+NODE1_cluster.log",
                "n1_trace.etl-2",
                "trace.etl",
            ]
        );
    }
}
