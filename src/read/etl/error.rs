//! Errors of the .etl reader. Every variant that comes from file contents
//! carries the byte offset it was found at, so a user can look at the bytes.

use std::path::PathBuf;

/// A problem with the bytes of a trace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EtlError {
    /// The file ended (or a buffer or record did) before a structure did.
    #[error("truncated {what} at byte offset {offset}: needs {need} bytes, {have} left")]
    Truncated {
        what: &'static str,
        offset: u64,
        need: u64,
        have: u64,
    },
    /// A structure was there but its contents are impossible.
    #[error("corrupt {what} at byte offset {offset}: {detail}")]
    Corrupt {
        what: &'static str,
        offset: u64,
        detail: String,
    },
    /// The file is not an ETW trace at all.
    #[error("not an .etl file: {detail} (at byte offset {offset})")]
    NotEtl { offset: u64, detail: String },
    /// A compressed buffer did not decompress.
    #[error("compressed buffer at byte offset {offset} does not decompress: {detail}")]
    Decompress { offset: u64, detail: String },
}

impl EtlError {
    pub fn corrupt(what: &'static str, offset: u64, detail: impl Into<String>) -> Self {
        EtlError::Corrupt {
            what,
            offset,
            detail: detail.into(),
        }
    }

    /// The file offset the problem was found at.
    pub fn offset(&self) -> u64 {
        match self {
            EtlError::Truncated { offset, .. }
            | EtlError::Corrupt { offset, .. }
            | EtlError::NotEtl { offset, .. }
            | EtlError::Decompress { offset, .. } => *offset,
        }
    }

    /// The same error moved by `base` bytes: decoders work on slices and
    /// report offsets within them; callers rebase them to file offsets.
    pub fn rebased(self, base: u64) -> Self {
        match self {
            EtlError::Truncated {
                what,
                offset,
                need,
                have,
            } => EtlError::Truncated {
                what,
                offset: offset + base,
                need,
                have,
            },
            EtlError::Corrupt {
                what,
                offset,
                detail,
            } => EtlError::Corrupt {
                what,
                offset: offset + base,
                detail,
            },
            EtlError::NotEtl { offset, detail } => EtlError::NotEtl {
                offset: offset + base,
                detail,
            },
            EtlError::Decompress { offset, detail } => EtlError::Decompress {
                offset: offset + base,
                detail,
            },
        }
    }
}

/// An error opening or reading a trace file, with the file it concerns.
/// Display names the file; the cause is the `source()` (anyhow's `{:#}`
/// prints both as one line).
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: is a directory, not an .etl file", path.display())]
    IsDirectory { path: PathBuf },
    #[error("{}: empty file, not an .etl file", path.display())]
    Empty { path: PathBuf },
    #[error("{}", path.display())]
    Format {
        path: PathBuf,
        #[source]
        source: EtlError,
    },
}

impl TraceError {
    /// The byte offset in the file where the problem is, when there is one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            TraceError::Format { source, .. } => Some(source.offset()),
            _ => None,
        }
    }
}

pub type Result<T, E = EtlError> = std::result::Result<T, E>;
