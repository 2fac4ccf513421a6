//! Where model records come from. The analysis reads [`EventSource`]s and
//! never knows whether the events were an .etl file read natively, a
//! cluster.log, an .evtx file, or a live ETW session; several sources of the
//! same node are merged on one timeline, dropping events two of them both
//! recorded.

pub mod ahead;
pub mod clusterlog;
pub mod etl;
#[cfg(feature = "evtx")]
pub mod evtx;
pub mod logcalls;
pub mod merge;
pub mod open;
pub mod stacks;
pub mod timeline;
mod turns;

use crate::model::Record;

pub use ahead::ReadAhead;
pub use clusterlog::{map_message, ClusterLogSource};
pub use etl::EtlSource;
#[cfg(feature = "evtx")]
pub use evtx::EvtxSource;
pub use merge::{Merge, MergeCounts};
pub use open::{open, Input, Opened, Timeline};
pub use timeline::Pairer;

/// A problem in an input. After a corrupt record a source goes on; after
/// the others it ends.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Read(#[from] crate::read::etl::TraceError),
    #[error("{trace}")]
    Corrupt {
        trace: String,
        #[source]
        source: crate::read::etl::EtlError,
    },
    #[error(transparent)]
    ClusterLog(#[from] crate::read::clusterlog::ClusterLogError),
    #[cfg(feature = "evtx")]
    #[error(transparent)]
    Evtx(#[from] crate::read::evtx::EvtxError),
    #[error("{}", path.display())]
    Open {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {what}", path.display())]
    Unsupported {
        path: std::path::PathBuf,
        what: &'static str,
    },
}

/// What a source saw next.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// An event a provider definition maps. Boxed: an observation is
    /// moved a dozen times between reading it and pairing it, and most of
    /// a node's log lines are the two other kinds, which a record's 350-odd
    /// bytes made as costly to move.
    Record(Box<Record>),
    /// An event nothing maps: only its time counts (the trace's extent).
    Seen(i64),
    /// An event a definition matched but could not map (a field missing or
    /// malformed).
    Unmapped(i64),
}

impl Observed {
    pub fn time_ns(&self) -> i64 {
        match self {
            Observed::Record(r) => r.time_ns,
            Observed::Seen(t) | Observed::Unmapped(t) => *t,
        }
    }
}

/// A stream of observations in time order.
/// Send: sources are read on threads of their own ([`ReadAhead`]).
pub trait EventSource: Send {
    /// The input's name (a file path, a session name).
    fn name(&self) -> String;
    /// The next observation; an error is a problem in the input, after
    /// which the source may go on (a corrupt record) or end.
    fn next_observed(&mut self) -> Option<Result<Observed, SourceError>>;
    /// For a text input: the lines that broke its grammar, counted.
    fn unparsed(&self) -> Option<&crate::read::clusterlog::LogCounts> {
        None
    }
    /// For a cluster.log: what its header says (resources, thresholds,
    /// the node, the clock); sure only once the source has ended.
    fn header(&self) -> Option<&crate::read::clusterlog::LogHeader> {
        None
    }
    /// About how many bytes of the input have been read, for a progress
    /// bar (0 where a source cannot tell).
    fn bytes_read(&self) -> u64 {
        0
    }
}

impl<S: EventSource + ?Sized> EventSource for Box<S> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn next_observed(&mut self) -> Option<Result<Observed, SourceError>> {
        (**self).next_observed()
    }
    fn unparsed(&self) -> Option<&crate::read::clusterlog::LogCounts> {
        (**self).unparsed()
    }
    fn header(&self) -> Option<&crate::read::clusterlog::LogHeader> {
        (**self).header()
    }
    fn bytes_read(&self) -> u64 {
        (**self).bytes_read()
    }
}

/// The kinds of input rhscope reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Etl,
    ClusterLog,
    Evtx,
}

impl InputKind {
    /// By the file's first bytes (its name can lie: cluster.log files are
    /// often renamed to .txt).
    pub fn detect(path: &std::path::Path) -> std::io::Result<InputKind> {
        use std::io::Read;
        let mut head = Vec::with_capacity(16 * 1024);
        std::fs::File::open(path)?
            .take(16 * 1024)
            .read_to_end(&mut head)?;
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        Ok(if head.starts_with(b"ElfFile\0") {
            InputKind::Evtx
        } else if crate::read::clusterlog::looks_like(&head) {
            InputKind::ClusterLog
        } else {
            // Not recognisable by content: the name says what it should
            // be, so the error can say what it is not.
            match ext.as_deref() {
                Some("log" | "txt") => InputKind::ClusterLog,
                Some("evtx") => InputKind::Evtx,
                _ => InputKind::Etl,
            }
        })
    }
}

/// Waits for every thread; the first one's panic, if any panicked.
fn join_all(
    threads: impl Iterator<Item = std::thread::JoinHandle<()>>,
) -> Option<Box<dyn std::any::Any + Send>> {
    let mut first = None;
    for thread in threads {
        if let Err(panic) = thread.join() {
            first = first.or(Some(panic));
        }
    }
    first
}
