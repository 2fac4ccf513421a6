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

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use crate::model::Record;
use crate::providers::ProviderSet;
use crate::read::etl::tracelogging::SchemaCache;
use crate::read::etl::{EtlError, Event, Events, RecordBatch, Trace};

use super::stacks::StackContext;
use super::{join_all, EventSource, Observed, SourceError};

/// Records per batch dealt to a mapping thread: the hand-over costs a lock
/// a batch, not one an event.
const BATCH: usize = 1024;
/// Bytes of records per batch at most (an event runs to 64 KiB).
const BATCH_BYTES: usize = 1 << 20;
/// Batches dealt and not yet taken back, per mapping thread: enough that a
/// thread finds its next batch waiting.
const AHEAD: usize = 3;
/// Mapping threads at most: past this the pairing, on one thread, is the
/// limit.
const MAX_MAPPERS: usize = 4;
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
    /// Each thread's batches to map, dealt in turn.
    deal: Vec<SyncSender<RecordBatch>>,
    /// Each thread's mapped batches, taken back in the same turn.
    mapped: Vec<Receiver<Vec<Mapped>>>,
    threads: Vec<JoinHandle<()>>,
    /// The thread the next batch goes to, and the one the next mapped
    /// batch comes from.
    deal_turn: usize,
    take_turn: usize,
    /// Batches dealt and not taken back.
    out: usize,
    /// The merge has reached the end of the trace.
    ended: bool,
    batch: std::vec::IntoIter<Mapped>,
}

impl Mappers {
    /// Up to `count` threads mapping with copies of `providers`; None when
    /// the OS gives none.
    fn start(providers: &ProviderSet, count: usize) -> Option<Mappers> {
        let mut mappers = Mappers {
            deal: Vec::new(),
            mapped: Vec::new(),
            threads: Vec::new(),
            deal_turn: 0,
            take_turn: 0,
            out: 0,
            ended: false,
            batch: Vec::new().into_iter(),
        };
        for k in 0..count {
            // Sends never wait: no more than AHEAD batches per thread are
            // out at a time, so the merge and the threads cannot wait on
            // each other in a circle.
            let (deal, batches) = mpsc::sync_channel::<RecordBatch>(AHEAD);
            let (send_mapped, mapped) = mpsc::sync_channel(AHEAD);
            // Each its own copy: a regex shared between threads makes them
            // take turns at its scratch space.
            let providers = providers.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("etl-map-{k}"))
                .spawn(move || {
                    let mut schemas = SchemaCache::default();
                    for batch in batches {
                        let out: Vec<Mapped> = batch
                            .events()
                            .map(|ev| map_event(&providers, &mut schemas, ev))
                            .collect();
                        if send_mapped.send(out).is_err() {
                            return;
                        }
                    }
                });
            // A thread that cannot be started is a mapper fewer.
            let Ok(thread) = spawned else { break };
            mappers.deal.push(deal);
            mappers.mapped.push(mapped);
            mappers.threads.push(thread);
        }
        (!mappers.threads.is_empty()).then_some(mappers)
    }

    /// The next event mapped, None at the end of the trace.
    fn next(&mut self, events: &mut Events<'_>) -> Option<Mapped> {
        loop {
            if let Some(m) = self.batch.next() {
                return Some(m);
            }
            let threads = self.deal.len();
            while !self.ended && self.out < AHEAD * threads {
                let mut batch = RecordBatch::default();
                while batch.len() < BATCH
                    && batch.byte_len() < BATCH_BYTES
                    && batch.take_next(events)
                {}
                if batch.is_empty() {
                    self.ended = true;
                    break;
                }
                if self.deal[self.deal_turn].send(batch).is_err() {
                    // The thread is gone (it panicked): the take below
                    // finds out why.
                    self.ended = true;
                    break;
                }
                self.deal_turn = (self.deal_turn + 1) % threads;
                self.out += 1;
            }
            if self.out == 0 {
                return None;
            }
            match self.mapped[self.take_turn].recv() {
                Ok(batch) => {
                    self.batch = batch.into_iter();
                    self.take_turn = (self.take_turn + 1) % threads;
                    self.out -= 1;
                }
                Err(_) => {
                    // A thread ended with batches out: it panicked, a bug,
                    // which goes on (once every thread has ended) as it
                    // would have on one thread.
                    self.deal.clear();
                    self.mapped.clear();
                    match join_all(self.threads.drain(..)) {
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
        self.deal.clear();
        self.mapped.clear();
        // Their panics were reported as they happened; a drop that panics
        // again would abort.
        let _ = join_all(self.threads.drain(..));
    }
}

impl<'t> EtlSource<'t> {
    pub fn new(trace: &'t Trace, providers: &'t ProviderSet) -> EtlSource<'t> {
        let threads = match trace.buffers().len() >= MIN_BUFFERS {
            true => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(MAX_MAPPERS),
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
