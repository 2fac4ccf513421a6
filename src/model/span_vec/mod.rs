//! A list that grows without moving what it holds: the spans of a node's
//! timeline.
//!
//! A `Vec` of a week's entry points doubles by copying: on the bench's
//! 1.6-million-line log the last step copied 84 MB of spans into a new
//! 168 MB block while the old one was still held, and that moment was the
//! analysis' peak memory. Here each full segment stays where it is and
//! the next one is allocated beside it, twice as large, so growing costs
//! no copy and no second copy held at once. Indexing stays O(1): a
//! segment's number is read off the index's highest bit.
//!
//! Segments of 4 MiB and more go to a spill file (`spill`), written
//! a megabyte run at a time as they fill, and what has been read of them
//! is let go from resident memory as the list is used: behind a pass over
//! it a run at a time, and after so many reads by index. So memory stays
//! about flat however many spans a node's log holds (a few runs' pages at
//! a time, plus the small segments), and the spans cost disk: the page
//! cache's while memory is free. A span read back by index moves nowhere
//! (the file is mapped); one that is still being filled in (a call not
//! yet ended) is read back and changed where it is. Items of a spilled
//! segment's last run move once, from the heap into the file, when the
//! run is whole: addresses are stable once the pushing is over (as the
//! borrow checker has it anyway).

use std::fmt;
use std::ops::{Index, IndexMut};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

mod iter;
mod segment;
// The one part of the model that manages memory itself: a mapped spill
// file's items (safety argued at each block).
#[allow(unsafe_code)]
mod spill;

pub use iter::{Iter, IterMut};
use segment::Segment;
use spill::{Spilled, AROUND};

/// The first segment holds 2^FIRST_BITS items, each next one twice the
/// one before: segment `k` holds `FIRST << k` items and begins at
/// `FIRST * (2^k - 1)`.
const FIRST_BITS: u32 = 6;

/// Segments this large and larger go to a spill file: below it a file
/// costs more than it saves (at most twice this on the heap per list).
const SPILL_FROM: usize = 4 << 20;

/// Reads by index of spilled items let go of what they touched after
/// touching this many windows of the kernel's fault-around (each read
/// that faults maps its whole window, 64 KiB): at most 8 MiB resident
/// through reads by index, however scattered.
const WINDOWS: usize = 128;

pub struct SpanVec<T> {
    segments: Vec<Segment<T>>,
    len: usize,
    /// Segments of at least this many bytes are spilled.
    spill_from: usize,
    touches: Touches,
}

/// Windows touched by reads by index of spilled items since the last
/// release, the last of them, and the range of indices the reads fell
/// in. Plain atomic loads and stores, not read-modify-writes: threads
/// reading at once may lose a count or a bound, which moves a release,
/// never a value.
struct Touches {
    windows: AtomicUsize,
    last: AtomicUsize,
    lo: AtomicUsize,
    hi: AtomicUsize,
}

impl Touches {
    const fn new() -> Touches {
        Touches {
            windows: AtomicUsize::new(0),
            last: AtomicUsize::new(usize::MAX),
            lo: AtomicUsize::new(usize::MAX),
            hi: AtomicUsize::new(0),
        }
    }
}

/// The segment an index falls in, and its place there.
fn locate(index: usize) -> (usize, usize) {
    let j = (index >> FIRST_BITS) + 1;
    let k = (usize::BITS - 1 - j.leading_zeros()) as usize;
    (k, index - (((1usize << k) - 1) << FIRST_BITS))
}

/// How many items segment `k` holds when full.
fn segment_len(k: usize) -> usize {
    1usize << (FIRST_BITS as usize + k)
}

impl<T> SpanVec<T> {
    pub const fn new() -> SpanVec<T> {
        SpanVec::spilling_from(SPILL_FROM)
    }

    /// A list whose segments of `bytes` and more are spilled (usize::MAX:
    /// none).
    pub const fn spilling_from(bytes: usize) -> SpanVec<T> {
        SpanVec {
            segments: Vec::new(),
            len: 0,
            spill_from: bytes,
            touches: Touches::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, item: T) {
        let k = self.segments.len();
        // Against the segment's own size, not a Vec's capacity (which may
        // be larger): indexing assumes these sizes.
        if self
            .segments
            .last()
            .is_none_or(|s| s.len() == segment_len(k - 1))
        {
            let len = segment_len(k);
            let spilled = len.saturating_mul(std::mem::size_of::<T>()) >= self.spill_from;
            self.segments
                .push(match spilled.then(|| Spilled::new(len)).flatten() {
                    Some(s) => Segment::Spilled(s),
                    None => Segment::Heap(Vec::with_capacity(len)),
                });
        }
        if let Some(last) = self.segments.last_mut() {
            last.push(item);
        }
        self.len += 1;
    }

    pub fn get(&self, index: usize) -> Option<&T> {
        let (k, at) = locate(index);
        let segment = self.segments.get(k)?;
        let item = segment.get(at)?;
        if segment.is_spilled() {
            self.touch(index);
        }
        Some(item)
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        let (k, at) = locate(index);
        if self.segments.get(k)?.is_spilled() && index < self.len {
            self.touch(index);
        }
        self.segments.get_mut(k)?.get_mut(at)
    }

    pub fn last(&self) -> Option<&T> {
        let (first, rest) = self.segments.last()?.parts();
        rest.last().or(first.last())
    }

    pub fn iter(&self) -> Iter<'_, T> {
        Iter::new(self)
    }

    pub fn iter_mut(&mut self) -> IterMut<'_, T> {
        IterMut::new(&mut self.segments, self.len)
    }

    /// Counts a read by index of spilled item `index`, and every WINDOWS
    /// windows touched lets the range the reads fell in go from resident
    /// memory.
    fn touch(&self, index: usize) {
        let t = &self.touches;
        if index < t.lo.load(Relaxed) {
            t.lo.store(index, Relaxed);
        }
        if index >= t.hi.load(Relaxed) {
            t.hi.store(index + 1, Relaxed);
        }
        // By the index's bytes as if the list were one block: off the
        // segments' own windows, which only shifts what counts as one.
        let window = index * std::mem::size_of::<T>() / AROUND;
        if t.last.load(Relaxed) == window {
            return;
        }
        t.last.store(window, Relaxed);
        let n = t.windows.load(Relaxed) + 1;
        if n < WINDOWS {
            t.windows.store(n, Relaxed);
            return;
        }
        t.windows.store(0, Relaxed);
        // The item being read is the next range's first: its caller reads
        // it after this, mapping its page again.
        let (lo, hi) = (t.lo.swap(index, Relaxed), t.hi.swap(index + 1, Relaxed));
        self.release(lo, hi);
    }

    /// Lets items `from..to` go from resident memory where they are
    /// spilled.
    fn release(&self, from: usize, to: usize) {
        let to = to.min(self.len);
        let mut i = from;
        while i < to {
            let (k, at) = locate(i);
            let Some(segment) = self.segments.get(k) else {
                return;
            };
            let n = segment.len().saturating_sub(at).min(to - i).max(1);
            segment.release(at, at + n);
            i += n;
        }
    }

    /// The items from `from` to the end of its piece (a heap segment, a
    /// run of a spill file, the items not yet written there), and not past
    /// `to` (`from < to <= len`).
    fn run(&self, from: usize, to: usize) -> &[T] {
        let (k, at) = locate(from);
        let Some(segment) = self.segments.get(k) else {
            return &[];
        };
        let (piece, start) = segment.piece(at);
        let end = piece.len().min(at - start + (to - from));
        piece.get(at - start..end).unwrap_or(&[])
    }

    /// The items up to `to` (not included) from the start of its piece,
    /// and not before `from`.
    fn run_back(&self, from: usize, to: usize) -> &[T] {
        let (k, at) = locate(to - 1);
        let Some(segment) = self.segments.get(k) else {
            return &[];
        };
        let (piece, start) = segment.piece(at);
        let last = at - start;
        let first = (last + 1).saturating_sub(to - from);
        piece.get(first..=last).unwrap_or(&[])
    }
}

impl<T> Default for SpanVec<T> {
    fn default() -> SpanVec<T> {
        SpanVec::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for SpanVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: PartialEq> PartialEq for SpanVec<T> {
    fn eq(&self, other: &SpanVec<T>) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: Eq> Eq for SpanVec<T> {}

impl<T: Clone> Clone for SpanVec<T> {
    fn clone(&self) -> SpanVec<T> {
        let mut copy = SpanVec::spilling_from(self.spill_from);
        copy.extend(self.iter().cloned());
        copy
    }
}

impl<T> Index<usize> for SpanVec<T> {
    type Output = T;

    /// Panics past the end, as a slice does.
    fn index(&self, index: usize) -> &T {
        let len = self.len;
        self.get(index)
            .unwrap_or_else(|| panic!("index {index} past the end of {len} spans"))
    }
}

impl<T> IndexMut<usize> for SpanVec<T> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        let len = self.len;
        self.get_mut(index)
            .unwrap_or_else(|| panic!("index {index} past the end of {len} spans"))
    }
}

impl<T> FromIterator<T> for SpanVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> SpanVec<T> {
        let mut v = SpanVec::new();
        v.extend(items);
        v
    }
}

impl<T> Extend<T> for SpanVec<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        for item in items {
            self.push(item);
        }
    }
}

impl<T> From<Vec<T>> for SpanVec<T> {
    fn from(items: Vec<T>) -> SpanVec<T> {
        items.into_iter().collect()
    }
}

impl<'a, T> IntoIterator for &'a SpanVec<T> {
    type Item = &'a T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<'a, T> IntoIterator for &'a mut SpanVec<T> {
    type Item = &'a mut T;
    type IntoIter = IterMut<'a, T>;

    fn into_iter(self) -> IterMut<'a, T> {
        self.iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_double_and_indices_find_their_item() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(63), (0, 63));
        assert_eq!(locate(64), (1, 0));
        assert_eq!(locate(191), (1, 127));
        assert_eq!(locate(192), (2, 0));
        assert_eq!(locate(447), (2, 255));
        assert_eq!(locate(448), (3, 0));
        let v: SpanVec<u32> = (0..100_000).collect();
        assert_eq!(v.len(), 100_000);
        // 64 + 128 + ... + 64 * 2^10 = 131,008 >= 100,000 > 65,472.
        assert_eq!(v.segments.len(), 11);
        let lens: Vec<usize> = v.segments.iter().map(Segment::len).collect();
        assert_eq!(&lens[..3], &[64, 128, 256]);
        assert_eq!(lens[10], 100_000 - 65_472);
        for i in [0usize, 63, 64, 191, 192, 65_471, 65_472, 99_999] {
            assert_eq!(v[i], i as u32);
        }
        assert_eq!(v.get(100_000), None);
        assert_eq!(v.last(), Some(&99_999));
    }

    #[test]
    fn pushing_never_moves_an_item() {
        // On the heap; a spilled segment's last run moves into the file
        // once, when whole.
        let mut v = SpanVec::new();
        v.push(0u64);
        let first: *const u64 = &v[0];
        for i in 1..10_000 {
            v.push(i);
        }
        assert_eq!(first, &v[0] as *const u64);
    }

    #[test]
    fn iterates_both_ways_and_knows_its_length() {
        let mut v: SpanVec<usize> = (0..1000).collect();
        let mut it = v.iter();
        assert_eq!(it.len(), 1000);
        assert_eq!(it.next(), Some(&0));
        assert_eq!(it.next_back(), Some(&999));
        assert_eq!(it.len(), 998);
        // It lets go of its runs when dropped, so it borrows until then.
        drop(it);
        assert_eq!(v.iter().rposition(|&x| x == 500), Some(500));
        assert_eq!(v.iter().rev().nth(1), Some(&998));
        assert_eq!(v.iter().enumerate().next_back(), Some((999, &999)));
        for x in &mut v {
            *x *= 2;
        }
        assert_eq!(v.iter().sum::<usize>(), 999 * 1000);
        v[7] = 1;
        assert_eq!(v.iter_mut().nth(7).copied(), Some(1));
        let empty: SpanVec<u8> = SpanVec::default();
        assert!(empty.is_empty() && empty.iter().next().is_none() && empty.last().is_none());
        assert_eq!(format!("{:?}", SpanVec::from(vec![1, 2])), "[1, 2]");
    }

    /// A list of `n` pairs (i, a shared name) whose segments of 4 KiB and
    /// more are spilled.
    fn spilled(n: usize, name: &std::sync::Arc<str>) -> SpanVec<(usize, std::sync::Arc<str>)> {
        let mut v = SpanVec::spilling_from(4096);
        for i in 0..n {
            v.push((i, name.clone()));
        }
        v
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn large_segments_are_spilled_and_read_as_the_small_ones() {
        if !spill::available() {
            return;
        }
        let name: std::sync::Arc<str> = "R".into();
        // 24-byte items: segments of 64, 128 on the heap; from 256 (6 KiB)
        // in a file. The last, from 524,224, holds 175,776: four runs of
        // 43,690 written (to 698,984), 1,016 on the heap.
        const N: usize = 700_000;
        let mut v = spilled(N, &name);
        let kinds: Vec<bool> = v.segments.iter().map(Segment::is_spilled).collect();
        assert_eq!(&kinds[..4], &[false, false, true, true]);
        assert_eq!(kinds.len(), 14);
        assert_eq!(std::sync::Arc::strong_count(&name), N + 1);
        for i in [
            0,
            191,
            192,
            447,
            448,
            524_223,
            524_224,
            698_983,
            698_984,
            N - 1,
        ] {
            assert_eq!(v[i].0, i);
        }
        // Every way through, past runs, releases and the written items'
        // end.
        assert!(v.iter().enumerate().all(|(i, x)| x.0 == i));
        assert!(v.iter().rev().enumerate().all(|(i, x)| x.0 == N - 1 - i));
        let mut it = v.iter();
        let (mut front, mut back) = (0, N);
        for step in 0..N - 10 {
            if step % 3 == 0 {
                back -= 1;
                assert_eq!(it.next_back().map(|x| x.0), Some(back));
            } else {
                assert_eq!(it.next().map(|x| x.0), Some(front));
                front += 1;
            }
            assert_eq!(it.len(), back - front);
        }
        assert_eq!(
            it.map(|x| x.0).collect::<Vec<_>>(),
            (front..back).collect::<Vec<_>>()
        );
        // Reads by index past many releases of what they touched.
        for round in 0..3 {
            for i in (0..N).step_by(7) {
                assert_eq!(v.get(i).map(|x| x.0 + round), Some(i + round));
            }
        }
        for x in &mut v {
            x.0 *= 2;
        }
        v[N - 1].0 = 1;
        v[698_983].0 += 1;
        assert_eq!(
            v.iter().map(|x| x.0).take(N - 1).sum::<usize>(),
            (N - 2) * (N - 1) + 1
        );
        assert_eq!(v.last().map(|x| x.0), Some(1));
        assert_eq!(v.clone(), v);
        drop(v);
        assert_eq!(std::sync::Arc::strong_count(&name), 1);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn passes_and_appends_let_spilled_items_go_from_memory() {
        if !spill::available() {
            return;
        }
        let name: std::sync::Arc<str> = "R".into();
        let v = spilled(700_000, &name);
        // The last segment: 262,144 items from 524,224, 175,776 pushed
        // (4.1 MiB), runs of 43,690 items (1 MiB).
        let resident = |v: &SpanVec<_>| match v.segments.last() {
            Some(Segment::Spilled(s)) => s.resident_kib(),
            _ => panic!("the last segment is spilled"),
        };
        let resident_all = |v: &SpanVec<_>| -> usize {
            v.segments
                .iter()
                .map(|s| match s {
                    Segment::Spilled(s) => s.resident_kib(),
                    Segment::Heap(_) => 0,
                })
                .sum()
        };
        // Appending maps nothing: whole runs are written to the file, the
        // one being filled is on the heap.
        assert_eq!(resident(&v), 0);
        // A pass lets every run go behind it.
        assert_eq!(v.iter().count(), 700_000);
        assert!(resident_all(&v) <= 128, "{} KiB", resident_all(&v));
        // One that stops lets go of the run it stopped in (1 MiB read, from
        // both ends).
        assert!(v.iter().any(|x| x.0 == 600_000));
        assert!(v.iter().rev().any(|x| x.0 == 600_000));
        assert!(resident_all(&v) <= 128, "{} KiB", resident_all(&v));
        // Reads by index 2,731 items (64 KiB) apart: each maps a window of
        // its own, so the 127 before the first release hold megabytes...
        let far: Vec<usize> = (0..700_000).step_by(2_731).collect();
        for &i in &far[..127] {
            assert_eq!(v[i].0, i);
        }
        let before = resident_all(&v);
        assert!(before >= 127 * 4, "{before} KiB");
        // ... and the 128th lets them go (as the 256th does again); what
        // is left is what the read after touched.
        for &i in &far[127..] {
            assert_eq!(v[i].0, i);
        }
        let after = resident_all(&v);
        assert!(after <= 128, "{before} KiB -> {after} KiB");
    }

    #[test]
    #[should_panic(expected = "index 3 past the end of 3 spans")]
    fn indexing_past_the_end_panics_as_a_slice_does() {
        let v: SpanVec<u8> = vec![1, 2, 3].into();
        let _ = v[3];
    }
}
