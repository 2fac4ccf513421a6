//! A cluster.log, its entries mapped by the definitions' message patterns.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::model::{Evidence, Record, RecordKind};
use crate::providers::ProviderSet;
use crate::read::clusterlog::{ClusterLog, ClusterLogError, Entry, LogCounts, LogHeader};

use super::{EventSource, Observed, SourceError};

/// Maps one text message (a cluster.log entry, an .evtx event's message)
/// through the definitions' message patterns. RHS's own lines that no
/// pattern maps are kept as RHS messages, as the ETW provider's are.
pub fn map_message(
    providers: &ProviderSet,
    component: &str,
    text: &str,
    base: &Record,
) -> Observed {
    let time = base.time_ns;
    match providers.match_message(text, component, base) {
        Some(Ok(r)) => Observed::Record(Box::new(r)),
        Some(Err(_)) => Observed::Unmapped(time),
        None if component == "RHS" => {
            let mut r = base.clone();
            r.message = Some(text.to_string());
            Observed::Record(Box::new(r))
        }
        None => Observed::Seen(time),
    }
}

/// Entries per batch handed from one thread to the next: enough that the
/// hand-over costs nothing per entry.
const BATCH: usize = 1024;
/// Bytes of text per batch at most, whatever the count: lines run to 64
/// KiB each, and entries to 64 continuation lines.
const BATCH_BYTES: usize = 1 << 20;
/// Batches the hand-over holds: a few megabytes at most in flight.
const AHEAD: usize = 8;

type EntryResult = Result<Entry, ClusterLogError>;

/// A cluster.log, mapped by the definitions' message patterns.
///
/// Reading and splitting the lines runs on a thread of its own, ahead of
/// matching them to the definitions' patterns, which runs where the
/// source is read: the analysis reads every source on a thread of its
/// own too ([`super::ReadAhead`]), ahead of the timeline that pairs what
/// they map. On a node's log reading and matching are most of the work
/// (matching about half), so the stages share the machine's cores; they
/// share nothing else but the entries and records they hand on.
pub struct ClusterLogSource {
    name: String,
    /// What the header said when the log's first entry was reached; the
    /// reader's own once it has finished.
    header: LogHeader,
    counts: LogCounts,
    bytes_read: Arc<AtomicU64>,
    providers: ProviderSet,
    batches: Receiver<Vec<EntryResult>>,
    batch: std::vec::IntoIter<EntryResult>,
    /// The reader, until it has finished.
    reader: Option<JoinHandle<ClusterLog>>,
}

impl ClusterLogSource {
    pub fn new(log: ClusterLog, providers: &ProviderSet) -> ClusterLogSource {
        let name = log.path().display().to_string();
        let header = log.header().clone();
        let counts = log.counts().clone();
        let bytes_read = Arc::new(AtomicU64::new(log.bytes_read()));
        let progress = Arc::clone(&bytes_read);
        let (send_entries, batches) = mpsc::sync_channel(AHEAD);
        let spawned = std::thread::Builder::new()
            .name("cluster.log read".into())
            .spawn(move || read_entries(log, &send_entries, &progress));
        let (reader, batches) = match spawned {
            Ok(reader) => (Some(reader), batches),
            // The OS gave no thread: say so, as a log that cannot be read.
            Err(e) => {
                let (send, batches) = mpsc::sync_channel(1);
                let _ = send.send(vec![Err(ClusterLogError::Io {
                    path: name.clone().into(),
                    source: e,
                })]);
                (None, batches)
            }
        };
        ClusterLogSource {
            name,
            header,
            counts,
            bytes_read,
            providers: providers.clone(),
            batches,
            batch: Vec::new().into_iter(),
            reader,
        }
    }

    /// What the reader counted: as of the header until the source has
    /// ended, then the whole file's (as `header` and `unparsed`).
    pub fn counts(&self) -> &LogCounts {
        &self.counts
    }

    /// The reader has sent its last batch: take what it counted and what
    /// the header said in the end.
    fn finish(&mut self) {
        let Some(reader) = self.reader.take() else {
            return;
        };
        // A panic is a bug: it surfaces as it would have without a thread.
        match reader.join() {
            Ok(log) => {
                self.counts = log.counts().clone();
                self.header = log.header().clone();
                self.bytes_read.store(log.bytes_read(), Ordering::Relaxed);
            }
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// The reader thread: entries in order, in batches, until the log ends or
/// the source stops listening; the log back with its counts.
fn read_entries(
    mut log: ClusterLog,
    send: &SyncSender<Vec<EntryResult>>,
    progress: &AtomicU64,
) -> ClusterLog {
    loop {
        let mut batch: Vec<EntryResult> = Vec::with_capacity(BATCH);
        let mut bytes = 0;
        while batch.len() < BATCH && bytes < BATCH_BYTES {
            let Some(entry) = log.next_entry() else {
                break;
            };
            bytes += entry.as_ref().map_or(0, |e| e.raw_len());
            batch.push(entry);
        }
        progress.store(log.bytes_read(), Ordering::Relaxed);
        if batch.is_empty() || send.send(batch).is_err() {
            return log;
        }
    }
}

/// One entry as what it says: a record, or only a time.
fn map_entry(providers: &ProviderSet, entry: &Entry) -> Observed {
    let mut base = Record::new(
        RecordKind::RhsMessage,
        entry.time_ns,
        Evidence::Line {
            input: 0,
            line: entry.line,
            time: crate::model::Timestamp(entry.time_ns),
        },
    );
    base.pid = Some(entry.pid);
    base.tid = Some(entry.tid);
    map_message(providers, entry.component(), entry.text(), &base)
}

/// A source dropped before its end stops its reader and closes the file
/// now, not when the process ends: the reader's hand-over closes, so it
/// stops.
impl Drop for ClusterLogSource {
    fn drop(&mut self) {
        let (_, closed) = mpsc::sync_channel(0);
        drop(std::mem::replace(&mut self.batches, closed));
        if let Some(reader) = self.reader.take() {
            // Its panic was reported as it happened; a drop that panics
            // again would abort.
            let _ = reader.join();
        }
    }
}

impl EventSource for ClusterLogSource {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn next_observed(&mut self) -> Option<Result<Observed, SourceError>> {
        loop {
            if let Some(entry) = self.batch.next() {
                return Some(
                    entry
                        .map(|e| map_entry(&self.providers, &e))
                        .map_err(SourceError::ClusterLog),
                );
            }
            match self.batches.recv() {
                Ok(batch) => self.batch = batch.into_iter(),
                Err(_) => {
                    self.finish();
                    return None;
                }
            }
        }
    }

    fn unparsed(&self) -> Option<&LogCounts> {
        Some(&self.counts)
    }

    fn header(&self) -> Option<&LogHeader> {
        Some(&self.header)
    }

    fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }
}
