//! Printers: everything rhscope writes about an [`Analysis`](crate::analysis::Analysis).
//! Text tables, CSV, SARIF and Perfetto JSON need nothing more than the
//! analysis; the HTML report with its charts (plotters) needs the `report`
//! feature and Parquet the `polars` feature. Every file is written whole or
//! not at all ([`output`]).

#[cfg(feature = "report")]
#[macro_use]
mod charts;
pub mod csv;
pub mod dump;
#[cfg(feature = "report")]
pub mod html;
#[cfg(feature = "report")]
pub mod html_diff;
pub mod output;
#[cfg(feature = "polars")]
pub mod parquet;
pub mod perfetto;
pub mod sarif;
pub mod text;

use std::path::PathBuf;

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
