//! Merges the per-CPU buffer streams of a trace into one stream of events in
//! timestamp order. Records are in time order within a CPU's buffers but not
//! across CPUs, so each CPU is a stream and the earliest head wins; a stream
//! keeps the lead without touching the heap while its records come before
//! every other head, so interleaved CPUs cost a heap step per switch, not
//! per record.
//!
//! Buffers are decompressed and scanned by worker threads running ahead in
//! file order ([`Decoder`]), while the merge takes them as their streams
//! need them. The merge order depends only on timestamps, stream and file
//! order, never on which thread decoded what, so output is deterministic.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use super::buffer::{BufferBytes, BufferInfo};
use super::error::EtlError;
use super::header::Clock;
use super::record::{scan, Event, RecordSlot};
use super::Data;

/// Decoded bytes the workers may hold ahead of the merge: a 64 KiB buffer
/// for each of 64 CPUs, so the file-order/time-order mismatch rarely stalls
/// them, and memory stays flat however large the trace. (1, 4 and 16 MiB
/// read the 100 MB bench trace equally fast.)
const AHEAD_BYTES: usize = 4 << 20;

/// Workers besides the merging thread, at most: decoding is a third to a
/// half of reading, so more would wait on the merge.
const MAX_WORKERS: usize = 3;

/// Decompression vectors kept for reuse: a fresh one for every buffer costs
/// page faults (glibc maps large allocations anew each time).
const MAX_SPARE: usize = 32;

/// Finished bytes released from a mapped trace at a time.
const RELEASE_CHUNK: usize = 1 << 20;

/// A decoded buffer: its bytes when decompressed (an uncompressed one is
/// read in place), its records, and a problem that ended its scan early.
struct Scanned {
    decompressed: Option<Vec<u8>>,
    slots: Vec<RecordSlot>,
    problem: Option<EtlError>,
}

/// Decompresses (into `spare` when given) and scans one buffer.
fn decode(file: &[u8], info: &BufferInfo, spare: Option<Vec<u8>>) -> Result<Scanned, EtlError> {
    let decompressed = match info.in_file(file) {
        Some(_) => None,
        None => {
            let mut out = spare.unwrap_or_default();
            info.decompress(file, &mut out)?;
            Some(out)
        }
    };
    let bytes = decompressed
        .as_deref()
        .or(info.in_file(file))
        .unwrap_or(&[]);
    let mut slots = Vec::new();
    let problem = scan(bytes, info, &mut slots);
    Ok(Scanned {
        decompressed,
        slots,
        problem,
    })
}

enum Slot {
    /// Nobody has started on the buffer.
    Pending,
    /// A worker is decoding it.
    Claimed,
    /// Boxed: a slot per buffer of the trace stays small.
    Done(Box<Result<Scanned, EtlError>>),
    /// The merge has it.
    Taken,
}

/// What the merge and the workers share, under one lock (taken a few times
/// per buffer, not per record).
struct Window {
    slots: Vec<Slot>,
    /// The next buffer (file order) a worker looks at.
    next: usize,
    /// Decoded bytes not yet taken by the merge.
    held: usize,
    spare: Vec<Vec<u8>>,
    stop: bool,
    merge_waiting: bool,
    workers_waiting: usize,
}

/// Buffers decoded ahead by worker threads. The merge asks for buffers in
/// its own order: one a worker finished is handed over, one nobody started
/// is decoded by the merge itself, and only one a worker is decoding right
/// then is waited for. So the workers speed the merge up but it never
/// depends on them, and each buffer is decoded once (twice only if a
/// worker panicked half-way through it).
struct Decoder {
    data: Arc<Data>,
    table: Arc<[BufferInfo]>,
    window: Mutex<Window>,
    /// A claimed buffer is done (or was given back by a failing worker).
    done: Condvar,
    /// The merge took enough that `held` fell below half the window, or
    /// reading stops.
    room: Condvar,
}

impl Decoder {
    fn lock(&self) -> MutexGuard<'_, Window> {
        // Nothing under the lock can fail half-way (slots are replaced
        // whole), so even a poisoned lock holds consistent state.
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes a decoded buffer counts for in the window.
    fn weight(&self, index: usize) -> usize {
        self.table[index].filled as usize
    }

    /// A worker: decodes buffers in file order while the window has room.
    fn work(self: &Arc<Self>) {
        let mut claim = Claim {
            decoder: self,
            index: None,
        };
        let mut w = self.lock();
        loop {
            if w.stop || w.next >= w.slots.len() {
                return;
            }
            if w.held >= AHEAD_BYTES {
                w.workers_waiting += 1;
                w = self.room.wait(w).unwrap_or_else(PoisonError::into_inner);
                w.workers_waiting -= 1;
                continue;
            }
            let index = w.next;
            w.next += 1;
            if !matches!(w.slots[index], Slot::Pending) {
                continue;
            }
            w.slots[index] = Slot::Claimed;
            let spare = w.spare_for(&self.table[index]);
            claim.index = Some(index);
            drop(w);
            let result = decode(&self.data, &self.table[index], spare);
            w = self.lock();
            claim.index = None;
            w.held += self.weight(index);
            w.slots[index] = Slot::Done(Box::new(result));
            if w.merge_waiting {
                self.done.notify_all();
            }
        }
    }

    /// The merge's way to a buffer's decoding.
    fn take(&self, index: usize) -> Result<Scanned, EtlError> {
        let mut w = self.lock();
        loop {
            match std::mem::replace(&mut w.slots[index], Slot::Taken) {
                Slot::Done(result) => {
                    w.held -= self.weight(index);
                    if w.workers_waiting > 0 && w.held < AHEAD_BYTES / 2 {
                        self.room.notify_all();
                    }
                    return *result;
                }
                Slot::Claimed => {
                    w.slots[index] = Slot::Claimed;
                    w.merge_waiting = true;
                    w = self.done.wait(w).unwrap_or_else(PoisonError::into_inner);
                    w.merge_waiting = false;
                }
                // Not started (or, impossibly, taken twice): decode it here.
                Slot::Pending | Slot::Taken => {
                    let spare = w.spare_for(&self.table[index]);
                    drop(w);
                    return decode(&self.data, &self.table[index], spare);
                }
            }
        }
    }

    /// Keeps a finished buffer's vector for the next decompression.
    fn give_back(&self, bytes: Vec<u8>) {
        let mut w = self.lock();
        if w.spare.len() < MAX_SPARE {
            w.spare.push(bytes);
        }
    }
}

impl Window {
    /// A used vector to decompress `info` into; none for a buffer read in
    /// place.
    fn spare_for(&mut self, info: &BufferInfo) -> Option<Vec<u8>> {
        info.compressed.then(|| self.spare.pop()).flatten()
    }
}

/// A worker's buffer in progress: should the worker unwind, the buffer goes
/// back to Pending so the merge decodes it instead of waiting forever.
struct Claim<'d> {
    decoder: &'d Decoder,
    index: Option<usize>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Some(index) = self.index {
            let mut w = self.decoder.lock();
            w.slots[index] = Slot::Pending;
            self.decoder.done.notify_all();
        }
    }
}

/// Asks the CPU to load the cache line holding `bytes[at]`. The merge reads
/// each record's header lines for the first time on this thread (a worker
/// scanned only its first line, on another core); asking one record ahead
/// took 8% off reading a trace.
fn prefetch(bytes: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(byte) = bytes.get(at) {
        // SAFETY: a prefetch is a hint: it reads nothing into the program
        // and cannot fault, and the address is inside `bytes` anyway. SSE
        // is part of every x86_64 CPU.
        #[allow(unsafe_code)]
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                std::ptr::from_ref(byte).cast(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, at);
}

/// How many workers to start for a table of `buffers` buffers.
fn default_workers(buffers: usize) -> usize {
    if buffers < 4 {
        return 0;
    }
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .min(MAX_WORKERS)
}

/// A record as the merge hands it out, its header not yet decoded.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    /// The record's bytes, header included.
    pub bytes: &'a [u8],
    pub slot: RecordSlot,
    /// The buffer it was in.
    pub info: &'a BufferInfo,
    /// Its time, nanoseconds since 1970-01-01 UTC.
    pub time_ns: i64,
}

impl<'a> RawRecord<'a> {
    pub fn decode(&self) -> Result<Event<'a>, EtlError> {
        Event::decode_record(self.bytes, &self.slot, self.info).map(|mut ev| {
            ev.time_ns = self.time_ns;
            ev
        })
    }
}

struct Decoded<'t> {
    index: usize,
    bytes: BufferBytes<'t>,
    slots: Vec<RecordSlot>,
}

struct Stream<'t> {
    /// Indices into the trace's buffer table, in file order.
    buffers: Vec<usize>,
    next_buffer: usize,
    current: Option<Decoded<'t>>,
    /// Next record of `current`.
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
    decoder: Arc<Decoder>,
    workers: Vec<JoinHandle<()>>,
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
    /// `workers`: decoding threads besides the caller's (None: one fewer
    /// than the machine's cores, up to three; none for a trace of fewer
    /// than four buffers).
    pub(super) fn new(
        data: &'t Arc<Data>,
        table: &'t Arc<[BufferInfo]>,
        clock: Clock,
        walk_problems: &[EtlError],
        workers: Option<usize>,
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
                current: None,
                cursor: 0,
            })
            .collect();
        let decoder = Arc::new(Decoder {
            data: Arc::clone(data),
            table: Arc::clone(table),
            window: Mutex::new(Window {
                slots: (0..table.len()).map(|_| Slot::Pending).collect(),
                next: 0,
                held: 0,
                spare: Vec::new(),
                stop: false,
                merge_waiting: false,
                workers_waiting: 0,
            }),
            done: Condvar::new(),
            room: Condvar::new(),
        });
        let count = workers.unwrap_or_else(|| default_workers(table.len()));
        // A thread that cannot be started is a worker fewer, not an error:
        // the merge decodes what no worker did.
        let workers = (0..count)
            .filter_map(|n| {
                let decoder = Arc::clone(&decoder);
                std::thread::Builder::new()
                    .name(format!("etl-decode-{n}"))
                    .spawn(move || decoder.work())
                    .ok()
            })
            .collect();
        let mapping = match &**data {
            Data::Mapped(map) => Some(map),
            Data::Owned(_) => None,
        };
        let mut events = Events {
            file: data,
            mapping,
            table,
            clock,
            decoder,
            workers,
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
            if let Some(head) = events.head(s) {
                events.heap.push(Reverse(head));
            }
        }
        events
    }

    /// Buffers whose records have all been handed out, and their file bytes.
    pub fn progress(&self) -> (usize, u64) {
        (self.buffers_done, self.bytes_done)
    }

    /// Takes buffers of stream `s` until it has a record or runs out.
    fn fill(&mut self, s: usize) {
        let (file, table) = (self.file, self.table);
        loop {
            let stream = &mut self.streams[s];
            if stream.current.is_some() || stream.next_buffer >= stream.buffers.len() {
                return;
            }
            let index = stream.buffers[stream.next_buffer];
            stream.next_buffer += 1;
            match self.decoder.take(index) {
                Ok(scanned) => {
                    self.pending.extend(scanned.problem);
                    let bytes = match scanned.decompressed {
                        Some(bytes) => BufferBytes::Decompressed(bytes),
                        None => BufferBytes::Mapped(table[index].in_file(file).unwrap_or(&[])),
                    };
                    if scanned.slots.is_empty() {
                        self.finish_buffer(index, bytes);
                    } else {
                        self.streams[s].current = Some(Decoded {
                            index,
                            bytes,
                            slots: scanned.slots,
                        });
                    }
                }
                Err(e) => {
                    self.pending.push_back(e);
                    self.finish_buffer(index, BufferBytes::Mapped(&[]));
                }
            }
        }
    }

    fn finish_buffer(&mut self, index: usize, bytes: BufferBytes<'t>) {
        if let BufferBytes::Decompressed(bytes) = bytes {
            self.decoder.give_back(bytes);
        }
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

    /// Stream `s`'s next record as a heap key.
    fn head(&self, s: usize) -> Option<(i64, usize)> {
        let stream = &self.streams[s];
        let current = stream.current.as_ref()?;
        Some((current.slots[stream.cursor].timestamp, s))
    }

    /// Moves stream `s` past the record it handed out.
    fn advance_stream(&mut self, s: usize) {
        let stream = &mut self.streams[s];
        stream.cursor += 1;
        let exhausted = stream
            .current
            .as_ref()
            .is_some_and(|c| stream.cursor >= c.slots.len());
        if exhausted {
            stream.cursor = 0;
            if let Some(done) = stream.current.take() {
                self.finish_buffer(done.index, done.bytes);
            }
            self.fill(s);
        }
    }

    /// The stream holding the earliest record, after `s` (if any) moved on:
    /// `s` keeps the lead while its head is before the heap's top.
    fn earliest(&mut self, advanced: Option<usize>) -> Option<usize> {
        let Some(head) = advanced.and_then(|s| self.head(s)) else {
            return self.heap.pop().map(|Reverse((_, s))| s);
        };
        match self.heap.peek_mut() {
            Some(mut top) if top.0 < head => {
                let s = top.0 .1;
                *top = Reverse(head);
                drop(top);
                Some(s)
            }
            _ => Some(head.1),
        }
    }

    /// The next event in time order, a problem found on the way, or None at
    /// the end of the trace.
    pub fn next_event(&mut self) -> Option<Result<Event<'_>, EtlError>> {
        Some(self.next_record()?.and_then(|r| r.decode()))
    }

    /// [`Events::next_event`] before its header is decoded: the record's
    /// bytes and where they came from.
    pub fn next_record(&mut self) -> Option<Result<RawRecord<'_>, EtlError>> {
        let advanced = self.advance.take();
        if let Some(s) = advanced {
            self.advance_stream(s);
        }
        if let Some(problem) = self.pending.pop_front() {
            // The advanced stream's head is not in the heap: keep it for
            // the call after this problem.
            if let Some(head) = advanced.and_then(|s| self.head(s)) {
                self.heap.push(Reverse(head));
            }
            return Some(Err(problem));
        }
        let s = self.earliest(advanced)?;
        self.advance = Some(s);
        let stream = &self.streams[s];
        let current = stream.current.as_ref()?;
        let slot = &current.slots[stream.cursor];
        if let Some(next) = current.slots.get(stream.cursor + 1) {
            // The lines after the first: the rest of an EVENT_HEADER, its
            // extended data, the payload's start.
            prefetch(&current.bytes, next.offset as usize + 64);
            prefetch(&current.bytes, next.offset as usize + 128);
        }
        let start = slot.offset as usize;
        Some(Ok(RawRecord {
            // Scanned: every slot lies inside its buffer's bytes.
            bytes: &current.bytes[start..start + slot.size as usize],
            slot: *slot,
            info: &self.table[current.index],
            time_ns: self.clock.to_unix_nanos(slot.timestamp),
        }))
    }

    /// Calls `f` for every event and problem, in order.
    pub fn for_each(mut self, mut f: impl FnMut(Result<Event<'_>, EtlError>)) {
        while let Some(item) = self.next_event() {
            f(item);
        }
    }
}

impl Drop for Events<'_> {
    /// Stops the workers (a reader dropped half-way must not leave threads
    /// decoding a file nobody reads) and waits for them.
    fn drop(&mut self) {
        self.decoder.lock().stop = true;
        self.decoder.room.notify_all();
        for worker in self.workers.drain(..) {
            // A worker that panicked has already given its buffer back.
            let _ = worker.join();
        }
    }
}
