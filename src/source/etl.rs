//! An .etl file through the native reader, mapped by the provider
//! definitions.
//!
//! Decoding and mapping each event is most of reading a trace (the merge
//! that puts the CPUs' buffers in time order is a fifth of it), and each
//! event maps on its own: on a trace of some size the merge copies its
//! records out in batches, deals them to mapping threads in turn and takes
//! the mapped batches back in the same turn, so the order is the merge's
//! with no sorting. What needs that order (the stacks, from the context
//! switches before each event) is done as the mapped events come back.

use crate::model::Record;
use crate::providers::ProviderSet;
use crate::read::etl::tracelogging::SchemaCache;
use crate::read::etl::{EtlError, Event, Events, RecordBatch, Trace};

use super::stacks::StackContext;
use super::turns::{self, Dealer, Taker};
use super::{EventSource, Observed, SourceError};

/// Records per batch dealt to a mapping thread: the hand-over costs a lock
/// a batch, not one an event.
const BATCH: usize = 1024;
/// Bytes of records per batch at most (an event runs to 64 KiB).
const BATCH_BYTES: usize = 1 << 20;
/// Batches dealt and not yet taken back, per mapping thread: enough that a
/// thread finds its next batch waiting.
const AHEAD: usize = 3;
/// Buffers (64 KiB each, typically) below which a trace is mapped on the
/// reading thread: threads would cost more than they save.
const MIN_BUFFERS: usize = 16;

/// An .etl file through the native reader.
pub struct EtlSource<'t> {
    trace: &'t Trace,
    events: Events<'t>,
    providers: &'t ProviderSet,
    schemas: SchemaCache,
    /// The trace's stacks, where they are wanted.
    stacks: Option<StackContext<'t>>,
    /// The furthest buffer reached (buffers are read in time order, so
    /// this is about how far into the file the read is).
    furthest: u64,
    /// The mapping threads, on a trace large enough for them.
    mappers: Option<Mappers>,
}

/// What a mapping thread makes of one event.
enum Mapped {
    /// A record, with the event's raw timestamp (for its stack) and its
    /// buffer's offset (for progress).
    Record(Box<Record>, i64, u64),
    Other(Observed, u64),
    Problem(EtlError),
}

/// One event mapped: what [`EtlSource`] does with every event, on whichever
/// thread maps it.
fn map_event(
    providers: &ProviderSet,
    schemas: &mut SchemaCache,
    ev: Result<Event<'_>, EtlError>,
) -> Mapped {
    let ev = match ev {
        Ok(ev) => ev,
        Err(problem) => return Mapped::Problem(problem),
    };
    let at = ev.location.buffer_offset;
    match providers.map_with(&ev, schemas) {
        Some(Ok(r)) => Mapped::Record(Box::new(r), ev.timestamp, at),
        Some(Err(_)) => Mapped::Other(Observed::Unmapped(ev.time_ns), at),
        None => Mapped::Other(Observed::Seen(ev.time_ns), at),
    }
}

/// The mapping threads and the batches between them and the merge.
struct Mappers {
    deal: Dealer<RecordBatch>,
    mapped: Taker<Vec<Mapped>>,
    /// Batches dealt and not taken back.
    out: usize,
    /// The merge has reached the end of the trace.
    ended: bool,
    batch: std::vec::IntoIter<Mapped>,
}

impl Mappers {
    /// Up to `count` threads mapping with copies of `providers`; None for
    /// none, or when the OS gives none.
    fn start(providers: &ProviderSet, count: usize) -> Option<Mappers> {
        if count == 0 {
            return None;
        }
        let (deal, mapped) = turns::start("etl-map", count, AHEAD, || {
            // Each its own copy: a regex shared between threads makes them
            // take turns at its scratch space.
            let providers = providers.clone();
            let mut schemas = SchemaCache::default();
            move |batch: RecordBatch| -> Vec<Mapped> {
                batch
                    .events()
                    .map(|ev| map_event(&providers, &mut schemas, ev))
                    .collect()
            }
        })
        .ok()?;
        Some(Mappers {
            deal,
            mapped,
            out: 0,
            ended: false,
            batch: Vec::new().into_iter(),
        })
    }

    /// The next event mapped, None at the end of the trace.
    fn next(&mut self, events: &mut Events<'_>) -> Option<Mapped> {
        loop {
            if let Some(m) = self.batch.next() {
                return Some(m);
            }
            // Deals never wait: no more than AHEAD batches per thread are
            // out at a time, so the merge and the threads cannot wait on
            // each other in a circle.
            while !self.ended && self.out < AHEAD * self.mapped.threads() {
                let mut batch = RecordBatch::default();
                while batch.len() < BATCH
                    && batch.byte_len() < BATCH_BYTES
                    && batch.take_next(events)
                {}
                if batch.is_empty() {
                    self.ended = true;
                    break;
                }
                if !self.deal.deal(batch) {
                    // The thread is gone (it panicked): the take below
                    // finds out why.
                    self.ended = true;
                    break;
                }
                self.out += 1;
            }
            if self.out == 0 {
                return None;
            }
            match self.mapped.take() {
                Some(batch) => {
                    self.batch = batch.into_iter();
                    self.out -= 1;
                }
                None => {
                    // A thread ended with batches out: it panicked, a bug,
                    // which goes on (once every thread has ended) as it
                    // would have on one thread.
                    self.deal.close();
                    match self.mapped.finish() {
                        Some(panic) => std::panic::resume_unwind(panic),
                        // A thread only ends early by panicking: reading on
                        // as if the trace had ended would lose its events.
                        None => unreachable!("a mapping thread ended with batches out"),
                    }
                }
            }
        }
    }
}

/// The threads stop as their batches stop coming, and are waited for: a
/// source dropped half-read leaves nothing running.
impl Drop for Mappers {
    fn drop(&mut self) {
        self.deal.close();
        // Their panics were reported as they happened; a drop that panics
        // again would abort.
        let _ = self.mapped.finish();
    }
}

impl<'t> EtlSource<'t> {
    pub fn new(trace: &'t Trace, providers: &'t ProviderSet) -> EtlSource<'t> {
        let threads = match trace.buffers().len() >= MIN_BUFFERS {
            true => turns::default_threads(),
            false => 0,
        };
        EtlSource::with_mappers(trace, providers, threads)
    }

    /// With `threads` mapping threads (none: events are mapped on the
    /// thread that reads the source).
    pub fn with_mappers(
        trace: &'t Trace,
        providers: &'t ProviderSet,
        threads: usize,
    ) -> EtlSource<'t> {
        EtlSource {
            trace,
            events: trace.events(),
            providers,
            schemas: SchemaCache::default(),
            stacks: None,
            furthest: 0,
            mappers: Mappers::start(providers, threads),
        }
    }

    /// Also attaches each event's stack (context switches, thread
    /// rundowns) and thread start images.
    pub fn with_stacks(mut self, stacks: StackContext<'t>) -> EtlSource<'t> {
        self.stacks = Some(stacks);
        self
    }
}

impl EventSource for EtlSource<'_> {
    fn name(&self) -> String {
        self.trace.path().display().to_string()
    }

    fn next_observed(&mut self) -> Option<Result<Observed, SourceError>> {
        let mapped = match self.mappers.as_mut() {
            Some(mappers) => mappers.next(&mut self.events)?,
            None => {
                let ev = self.events.next_event()?;
                map_event(self.providers, &mut self.schemas, ev)
            }
        };
        let (observed, at) = match mapped {
            Mapped::Record(mut r, timestamp, at) => {
                if let Some(s) = self.stacks.as_mut() {
                    s.attach(&mut r, timestamp);
                }
                (Observed::Record(r), at)
            }
            Mapped::Other(observed, at) => (observed, at),
            Mapped::Problem(source) => {
                return Some(Err(SourceError::Corrupt {
                    trace: self.name(),
                    source,
                }))
            }
        };
        self.furthest = self.furthest.max(at);
        Some(Ok(observed))
    }

    fn bytes_read(&self) -> u64 {
        self.furthest
    }
}
