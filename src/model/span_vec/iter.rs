//! Passes over a span list: a run of items at a time from either end,
//! each let go from resident memory once passed (where spilled).

use super::segment::Segment;
use super::SpanVec;

/// The items in order; knows how many are left, so `rposition`,
/// `enumerate().rev()` and `len()` work as on a slice. Taken a run at a
/// time from either end, each let go from resident memory when passed
/// (where spilled).
pub struct Iter<'a, T> {
    vec: &'a SpanVec<T>,
    /// Items not yet taken into a run: `front..back`.
    front: usize,
    back: usize,
    /// The run being read from the front, which began at `head_from`.
    head: std::slice::Iter<'a, T>,
    head_from: usize,
    /// The run being read from the back, which ends at `tail_to`.
    tail: std::slice::Iter<'a, T>,
    tail_to: usize,
}

impl<'a, T> Iter<'a, T> {
    pub(super) fn new(vec: &'a SpanVec<T>) -> Iter<'a, T> {
        Iter {
            vec,
            front: 0,
            back: vec.len,
            head: [].iter(),
            head_from: 0,
            tail: [].iter(),
            tail_to: vec.len,
        }
    }
}

impl<T> Clone for Iter<'_, T> {
    fn clone(&self) -> Self {
        Iter {
            vec: self.vec,
            front: self.front,
            back: self.back,
            head: self.head.clone(),
            head_from: self.head_from,
            tail: self.tail.clone(),
            tail_to: self.tail_to,
        }
    }
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    #[inline]
    fn next(&mut self) -> Option<&'a T> {
        loop {
            if let Some(item) = self.head.next() {
                return Some(item);
            }
            if self.front >= self.back {
                return self.tail.next();
            }
            self.vec.release(self.head_from, self.front);
            let run = self.vec.run(self.front, self.back);
            if run.is_empty() {
                // Not while the list is as long as it says; ends the pass
                // rather than looping if it were not.
                self.front = self.back;
                continue;
            }
            self.head_from = self.front;
            self.front += run.len();
            self.head = run.iter();
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.head.len() + self.tail.len() + (self.back - self.front);
        (left, Some(left))
    }
}

impl<T> DoubleEndedIterator for Iter<'_, T> {
    fn next_back(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.tail.next_back() {
                return Some(item);
            }
            if self.front >= self.back {
                return self.head.next_back();
            }
            self.vec.release(self.back, self.tail_to);
            let run = self.vec.run_back(self.front, self.back);
            if run.is_empty() {
                self.back = self.front;
                continue;
            }
            self.tail_to = self.back;
            self.back -= run.len();
            self.tail = run.iter();
        }
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}
impl<T> std::iter::FusedIterator for Iter<'_, T> {}

impl<T> Drop for Iter<'_, T> {
    /// The runs a pass ended in, or stopped in (`find`, `any`), let go
    /// too.
    fn drop(&mut self) {
        self.vec.release(self.head_from, self.front);
        self.vec.release(self.back, self.tail_to);
    }
}

pub struct IterMut<'a, T> {
    items: std::iter::Flatten<std::slice::IterMut<'a, Segment<T>>>,
    left: usize,
}

impl<'a, T> IterMut<'a, T> {
    pub(super) fn new(segments: &'a mut [Segment<T>], len: usize) -> IterMut<'a, T> {
        IterMut {
            items: segments.iter_mut().flatten(),
            left: len,
        }
    }
}

impl<'a, T> Iterator for IterMut<'a, T> {
    type Item = &'a mut T;

    fn next(&mut self) -> Option<&'a mut T> {
        let item = self.items.next()?;
        self.left -= 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<T> DoubleEndedIterator for IterMut<'_, T> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let item = self.items.next_back()?;
        self.left -= 1;
        Some(item)
    }
}

impl<T> ExactSizeIterator for IterMut<'_, T> {}
impl<T> std::iter::FusedIterator for IterMut<'_, T> {}
