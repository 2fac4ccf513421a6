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
        Some(Ok(r)) => Observed::Record(r),
        Some(Err(_)) => Observed::Unmapped(time),
        None if component == "RHS" => {
            let mut r = base.clone();
            r.message = Some(text.to_string());
            Observed::Record(r)
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
/// Batches each hand-over holds: with one batch in each of the three
/// stages, at most 2 x 8 + 3 batches (a few megabytes) are in flight.
const AHEAD: usize = 8;

type Batch = Vec<Result<Observed, ClusterLogError>>;
type EntryResult = Result<Entry, ClusterLogError>;

/// A cluster.log, mapped by the definitions' message patterns.
///
/// Reading and splitting the lines runs on a thread of its own, matching
/// them to the definitions' patterns on another, both ahead of the
/// timeline that pairs what they map: on a node's log those two are most
/// of the work (matching about half), so the stages share the machine's
/// cores; they share nothing else but the entries and records they hand
/// on.
pub struct ClusterLogSource {
    name: String,
    /// What the header said when the log's first entry was reached; the
    /// reader's own once it has finished.
    header: LogHeader,
    counts: LogCounts,
    bytes_read: Arc<AtomicU64>,
    batches: Receiver<Batch>,
    batch: std::vec::IntoIter<Result<Observed, ClusterLogError>>,
    /// The reader and the mapper, until they have finished.
    threads: Option<(JoinHandle<ClusterLog>, JoinHandle<()>)>,
}

impl ClusterLogSource {
    pub fn new(log: ClusterLog, providers: &ProviderSet) -> ClusterLogSource {
        let name = log.path().display().to_string();
        let header = log.header().clone();
        let counts = log.counts().clone();
        let bytes_read = Arc::new(AtomicU64::new(log.bytes_read()));
        let progress = Arc::clone(&bytes_read);
        let (send_entries, entries) = mpsc::sync_channel(AHEAD);
        let (send_mapped, batches) = mpsc::sync_channel(AHEAD);
        let providers = providers.clone();
        let spawned = std::thread::Builder::new()
            .name("cluster.log read".into())
            .spawn(move || read_entries(log, &send_entries, &progress))
            .and_then(|reader| {
                std::thread::Builder::new()
                    .name("cluster.log map".into())
                    .spawn(move || map_entries(&providers, &entries, &send_mapped))
                    .map(|mapper| (reader, mapper))
            });
        let (threads, batches) = match spawned {
            Ok(threads) => (Some(threads), batches),
            // The OS gave no thread: say so, as a log that cannot be read
            // (a reader spawned before the mapper failed stops when its
            // channel closes).
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
            batches,
            batch: Vec::new().into_iter(),
            threads,
        }
    }

    /// What the reader counted: as of the header until the source has
    /// ended, then the whole file's (as `header` and `unparsed`).
    pub fn counts(&self) -> &LogCounts {
        &self.counts
    }

    /// The threads have sent their last batch: take what the reader
    /// counted and what the header said in the end.
    fn finish(&mut self) {
        let Some((reader, mapper)) = self.threads.take() else {
            return;
        };
        // A panic in either is a bug: it surfaces as it would have
        // without threads.
        if let Err(panic) = mapper.join() {
            std::panic::resume_unwind(panic);
        }
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
/// the mapper stops listening; the log back with its counts.
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

/// The mapper thread: each batch of entries as what they say, in order.
fn map_entries(
    providers: &ProviderSet,
    entries: &Receiver<Vec<EntryResult>>,
    send: &SyncSender<Batch>,
) {
    for batch in entries {
        let mapped = batch
            .into_iter()
            .map(|e| e.map(|e| map_entry(providers, &e)))
            .collect();
        if send.send(mapped).is_err() {
            return;
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

/// A source dropped before its end stops its threads and closes the file
/// now, not when the process ends: the mapper's hand-over closes, so it
/// stops, and then the reader's.
impl Drop for ClusterLogSource {
    fn drop(&mut self) {
        let (_, closed) = mpsc::sync_channel(0);
        drop(std::mem::replace(&mut self.batches, closed));
        if let Some((reader, mapper)) = self.threads.take() {
            // Their panics were reported as they happened; a drop that
            // panics again would abort.
            let _ = mapper.join();
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
            if let Some(o) = self.batch.next() {
                return Some(o.map_err(SourceError::ClusterLog));
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
