//! A segment of a span list: its items on the heap, or in a spill file
//! with the run being filled still on the heap; and the pieces a pass
//! over it takes one at a time.

use super::spill::{run_len, Spilled};

pub(super) enum Segment<T> {
    Heap(Vec<T>),
    Spilled(Spilled<T>),
}

impl<T> Segment<T> {
    pub(super) fn len(&self) -> usize {
        match self {
            Segment::Heap(v) => v.len(),
            Segment::Spilled(s) => s.len(),
        }
    }

    /// Adds `item`; the list starts a new segment before this one is full
    /// (its own length, `segment_len`).
    pub(super) fn push(&mut self, item: T) {
        match self {
            Segment::Heap(v) => v.push(item),
            Segment::Spilled(s) => {
                if s.push(item).is_err() {
                    unreachable!("a spilled segment holds its segment's length");
                }
            }
        }
    }

    pub(super) fn is_spilled(&self) -> bool {
        matches!(self, Segment::Spilled(_))
    }

    /// The items: on the heap, or those in the spill file then those not
    /// yet written there.
    pub(super) fn parts(&self) -> (&[T], &[T]) {
        match self {
            Segment::Heap(v) => (v, &[]),
            Segment::Spilled(s) => s.parts(),
        }
    }

    pub(super) fn parts_mut(&mut self) -> (&mut [T], &mut [T]) {
        match self {
            Segment::Heap(v) => (v, &mut []),
            Segment::Spilled(s) => s.parts_mut(),
        }
    }

    pub(super) fn get(&self, at: usize) -> Option<&T> {
        let (first, rest) = self.parts();
        match at.checked_sub(first.len()) {
            None => first.get(at),
            Some(i) => rest.get(i),
        }
    }

    pub(super) fn get_mut(&mut self, at: usize) -> Option<&mut T> {
        let (first, rest) = self.parts_mut();
        match at.checked_sub(first.len()) {
            None => first.get_mut(at),
            Some(i) => rest.get_mut(i),
        }
    }

    /// The stretch of items that holds `at`, and where it begins: a
    /// heap segment whole; in a spill file, the run it is in (the unit of
    /// letting go); the items not yet written.
    pub(super) fn piece(&self, at: usize) -> (&[T], usize) {
        let (first, rest) = self.parts();
        if at >= first.len() {
            return (rest, first.len());
        }
        if !self.is_spilled() {
            return (first, 0);
        }
        let run = run_len::<T>();
        let start = at / run * run;
        (&first[start..(start + run).min(first.len())], start)
    }

    pub(super) fn release(&self, from: usize, to: usize) {
        if let Segment::Spilled(s) = self {
            s.release(from, to);
        }
    }
}

impl<'a, T> IntoIterator for &'a mut Segment<T> {
    type Item = &'a mut T;
    type IntoIter = std::iter::Chain<std::slice::IterMut<'a, T>, std::slice::IterMut<'a, T>>;

    fn into_iter(self) -> Self::IntoIter {
        let (first, rest) = self.parts_mut();
        first.iter_mut().chain(rest.iter_mut())
    }
}
