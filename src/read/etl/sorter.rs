//! Merges the per-CPU buffer streams of a trace into one stream of events in
//! timestamp order. Records are in time order within a CPU's buffers but not
//! across CPUs, so each CPU is a stream and the earliest head wins. Buffers
//! are decompressed and scanned in parallel batches; the merge order depends
//! only on timestamps, stream and file order, so output is deterministic.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use rayon::prelude::*;

use super::buffer::{BufferBytes, BufferInfo};
use super::error::EtlError;
use super::header::Clock;
use super::record::{scan, Event, RecordSlot};

/// Buffers of one stream decoded ahead per refill, in parallel.
const BATCH: usize = 8;

/// Finished bytes released from a mapped trace at a time.
const RELEASE_CHUNK: usize = 1 << 20;

/// A buffer's bytes, its records, and a problem that ended its scan early.
type Scanned<'t> = (BufferBytes<'t>, Vec<RecordSlot>, Option<EtlError>);

struct Decoded<'t> {
    index: usize,
    bytes: BufferBytes<'t>,
    slots: Vec<RecordSlot>,
}

struct Stream<'t> {
    /// Indices into the trace's buffer table, in file order.
    buffers: Vec<usize>,
    next_buffer: usize,
    queue: VecDeque<Decoded<'t>>,
    /// Next record of `queue.front()`.
    cursor: usize,
}

/// Streaming iterator over a trace's events. Call [`Events::next_event`]
/// until it returns None; each event borrows the iterator, so the trace is
/// read in flat memory however large it is. Problems with a buffer or a
/// record come as `Err` items in stream order; reading goes on after them.
pub struct Events<'t> {
    file: &'t [u8],
    /// The mapping, when the trace is mapped: pages of finished buffers are
    /// handed back so a 10 GB trace reads in flat resident memory.
    mapping: Option<&'t memmap2::Mmap>,
    table: &'t [BufferInfo],
    clock: Clock,
    streams: Vec<Stream<'t>>,
    heap: BinaryHeap<Reverse<(i64, usize)>>,
    pending: VecDeque<EtlError>,
    /// Stream whose head was handed out and must advance on the next call.
    advance: Option<usize>,
    buffers_done: usize,
    bytes_done: u64,
    /// Which buffers (in file order) are finished, the first unfinished
    /// one, and how far the mapping has been released: pages are released
    /// below that low-water mark, so pages the kernel maps around a fault
    /// (fault-around) are released again too.
    finished: Vec<bool>,
    low_water: usize,
    released_to: usize,
}

impl<'t> Events<'t> {
    pub(super) fn new(
        file: &'t [u8],
        mapping: Option<&'t memmap2::Mmap>,
        table: &'t [BufferInfo],
        clock: Clock,
        walk_problems: &[EtlError],
    ) -> Self {
        let mut by_cpu: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
        for (i, b) in table.iter().enumerate() {
            by_cpu.entry(b.processor).or_default().push(i);
        }
        let streams = by_cpu
            .into_values()
            .map(|buffers| Stream {
                buffers,
                next_buffer: 0,
                queue: VecDeque::new(),
                cursor: 0,
            })
            .collect();
        let mut events = Events {
            file,
            mapping,
            table,
            clock,
            streams,
            heap: BinaryHeap::new(),
            pending: walk_problems.iter().cloned().collect(),
            advance: None,
            buffers_done: 0,
            bytes_done: 0,
            finished: vec![false; table.len()],
            low_water: 0,
            released_to: 0,
        };
        for s in 0..events.streams.len() {
            events.fill(s);
            events.push_head(s);
        }
        events
    }

    /// Buffers whose records have all been handed out, and their file bytes.
    pub fn progress(&self) -> (usize, u64) {
        (self.buffers_done, self.bytes_done)
    }

    /// Decodes buffers of stream `s` until it has a record or runs out.
    fn fill(&mut self, s: usize) {
        let (file, table) = (self.file, self.table);
        loop {
            let stream = &mut self.streams[s];
            if !stream.queue.is_empty() || stream.next_buffer >= stream.buffers.len() {
                return;
            }
            let end = (stream.next_buffer + BATCH).min(stream.buffers.len());
            let batch = &stream.buffers[stream.next_buffer..end];
            stream.next_buffer = end;
            let decoded: Vec<(usize, Result<Scanned<'t>, EtlError>)> = batch
                .par_iter()
                .map(|&index| {
                    let info = &table[index];
                    let result = info.contents(file).map(|bytes| {
                        let mut slots = Vec::new();
                        let problem = scan(&bytes, info, &mut slots);
                        (bytes, slots, problem)
                    });
                    (index, result)
                })
                .collect();
            for (index, result) in decoded {
                match result {
                    Ok((bytes, slots, problem)) => {
                        self.pending.extend(problem);
                        if slots.is_empty() {
                            self.finish_buffer(index);
                        } else {
                            self.streams[s].queue.push_back(Decoded {
                                index,
                                bytes,
                                slots,
                            });
                        }
                    }
                    Err(e) => {
                        self.pending.push_back(e);
                        self.finish_buffer(index);
                    }
                }
            }
        }
    }

    fn finish_buffer(&mut self, index: usize) {
        self.buffers_done += 1;
        self.bytes_done += u64::from(self.table[index].size);
        self.finished[index] = true;
        while self.finished.get(self.low_water) == Some(&true) {
            self.low_water += 1;
        }
        let Some(map) = self.mapping else { return };
        let mark = self
            .table
            .get(self.low_water)
            .map_or(self.file.len(), |b| b.offset as usize);
        if mark >= self.released_to + RELEASE_CHUNK || self.low_water == self.table.len() {
            super::release(map, self.released_to, mark - self.released_to);
            self.released_to = mark;
        }
    }

    fn push_head(&mut self, s: usize) {
        let stream = &self.streams[s];
        if let Some(front) = stream.queue.front() {
            self.heap
                .push(Reverse((front.slots[stream.cursor].timestamp, s)));
        }
    }

    fn advance_stream(&mut self, s: usize) {
        let stream = &mut self.streams[s];
        stream.cursor += 1;
        let exhausted = stream
            .queue
            .front()
            .is_some_and(|f| stream.cursor >= f.slots.len());
        if exhausted {
            stream.cursor = 0;
            if let Some(done) = stream.queue.pop_front() {
                self.finish_buffer(done.index);
            }
            self.fill(s);
        }
        self.push_head(s);
    }

    /// The next event in time order, a problem found on the way, or None at
    /// the end of the trace.
    pub fn next_event(&mut self) -> Option<Result<Event<'_>, EtlError>> {
        if let Some(s) = self.advance.take() {
            self.advance_stream(s);
        }
        if let Some(problem) = self.pending.pop_front() {
            return Some(Err(problem));
        }
        let Reverse((_, s)) = self.heap.pop()?;
        self.advance = Some(s);
        let stream = &self.streams[s];
        let front = stream.queue.front()?;
        let info = &self.table[front.index];
        let slot = &front.slots[stream.cursor];
        Some(Event::decode(&front.bytes, slot, info).map(|mut ev| {
            ev.time_ns = self.clock.to_unix_nanos(ev.timestamp);
            ev
        }))
    }

    /// Calls `f` for every event and problem, in order.
    pub fn for_each(mut self, mut f: impl FnMut(Result<Event<'_>, EtlError>)) {
        while let Some(item) = self.next_event() {
            f(item);
        }
    }
}
