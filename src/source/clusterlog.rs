//! A cluster.log, its entries mapped by the definitions' message patterns.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::model::{Evidence, Record, RecordKind};
use crate::providers::ProviderSet;
use crate::read::clusterlog::{ClusterLog, ClusterLogError, Entry, LogCounts, LogHeader};

use super::turns::{self, Dealer, Taker};
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
/// Batches each hand-over holds: with two hand-overs per matching thread,
/// at most 2 x AHEAD x turns::MAX_THREADS batches (and one each being
/// matched) are in flight, a few megabytes of text on a node's log.
const AHEAD: usize = 4;

type EntryResult = Result<Entry, ClusterLogError>;
type Mapped = Vec<Result<Observed, SourceError>>;

/// A cluster.log, mapped by the definitions' message patterns.
///
/// Reading and splitting the lines runs on a thread of its own, and
/// matching them to the definitions' patterns (on a node's log, most of
/// the work) on a few more: the reader deals its batches of entries to
/// the mappers in turn, and the source takes the mapped batches back in
/// the same turn, so their order is the log's with no sorting. The
/// analysis reads every source on a thread of its own too
/// ([`super::ReadAhead`]), ahead of the timeline that pairs what they
/// map. The threads share nothing but the batches they hand on.
pub struct ClusterLogSource {
    name: String,
    /// What the header said when the log's first entry was reached; the
    /// reader's own once it has finished.
    header: LogHeader,
    counts: LogCounts,
    bytes_read: Arc<AtomicU64>,
    /// The matching threads' batches, taken in the turn the reader dealt
    /// them.
    mapped: Taker<Mapped>,
    batch: std::vec::IntoIter<Result<Observed, SourceError>>,
    /// The reader, until it has finished.
    reader: Option<JoinHandle<ClusterLog>>,
}

impl ClusterLogSource {
    pub fn new(log: ClusterLog, providers: &ProviderSet) -> ClusterLogSource {
        ClusterLogSource::with_mappers(log, providers, turns::default_threads())
    }

    /// With `workers` threads matching entries (at least one).
    pub fn with_mappers(
        log: ClusterLog,
        providers: &ProviderSet,
        workers: usize,
    ) -> ClusterLogSource {
        let name = log.path().display().to_string();
        let header = log.header().clone();
        let counts = log.counts().clone();
        let bytes_read = Arc::new(AtomicU64::new(log.bytes_read()));
        let mut source = ClusterLogSource {
            name,
            header,
            counts,
            bytes_read,
            mapped: Taker::default(),
            batch: Vec::new().into_iter(),
            reader: None,
        };
        let started = turns::start("cluster.log map", workers, AHEAD, || {
            // Each its own copy: a regex shared between threads makes them
            // take turns at its scratch space.
            let providers = providers.clone();
            move |batch: Vec<EntryResult>| -> Mapped {
                batch
                    .into_iter()
                    .map(|e| {
                        e.map(|e| map_entry(&providers, &e))
                            .map_err(SourceError::ClusterLog)
                    })
                    .collect()
            }
        });
        let deal = match started {
            Ok((deal, mapped)) => {
                source.mapped = mapped;
                deal
            }
            Err(e) => return source.failed(e),
        };
        let progress = Arc::clone(&source.bytes_read);
        let spawned = std::thread::Builder::new()
            .name("cluster.log read".into())
            .spawn(move || read_entries(log, deal, &progress));
        match spawned {
            Ok(reader) => source.reader = Some(reader),
            Err(e) => return source.failed(e),
        }
        source
    }

    /// The OS gave no thread: the source yields one error, as a log that
    /// cannot be read (the threads already started end as their input
    /// closes).
    fn failed(mut self, e: std::io::Error) -> ClusterLogSource {
        let _ = self.mapped.finish();
        self.batch = vec![Err(SourceError::ClusterLog(ClusterLogError::Io {
            path: self.name.clone().into(),
            source: e,
        }))]
        .into_iter();
        self
    }

    /// What the reader counted: as of the header until the source has
    /// ended, then the whole file's (as `header` and `unparsed`).
    pub fn counts(&self) -> &LogCounts {
        &self.counts
    }

    /// The reader has sent its last batch: take what it counted and what
    /// the header said in the end.
    fn finish(&mut self) {
        // Every thread is waited for, then a panic (a bug) surfaces as it
        // would have without threads.
        let mut panicked = self.mapped.finish();
        if let Some(reader) = self.reader.take() {
            match reader.join() {
                Ok(log) => {
                    self.counts = log.counts().clone();
                    self.header = log.header().clone();
                    self.bytes_read.store(log.bytes_read(), Ordering::Relaxed);
                }
                Err(panic) => panicked = panicked.or(Some(panic)),
            }
        }
        if let Some(panic) = panicked {
            std::panic::resume_unwind(panic);
        }
    }
}

/// The reader thread: entries in order, in batches dealt to the mappers in
/// turn, until the log ends or the source stops listening; the log back
/// with its counts.
fn read_entries(
    mut log: ClusterLog,
    mut deal: Dealer<Vec<EntryResult>>,
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
        if batch.is_empty() || !deal.deal(batch) {
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

/// A source dropped before its end stops its threads and closes the file
/// now, not when the process ends: the hand-overs close, so the mappers
/// stop, and with them the reader.
impl Drop for ClusterLogSource {
    fn drop(&mut self) {
        // Their panics were reported as they happened; a drop that panics
        // again would abort.
        let _ = self.mapped.finish();
        if let Some(reader) = self.reader.take() {
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
            if let Some(item) = self.batch.next() {
                return Some(item);
            }
            // The matching thread whose turn it is has the next batch, or
            // none: the reader dealt it none, so the log has ended.
            match self.mapped.take() {
                Some(batch) => self.batch = batch.into_iter(),
                None => {
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
