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

use std::fmt;
use std::ops::{Index, IndexMut};

/// The first segment holds 2^FIRST_BITS items, each next one twice the
/// one before: segment `k` holds `FIRST << k` items and begins at
/// `FIRST * (2^k - 1)`.
const FIRST_BITS: u32 = 6;

pub struct SpanVec<T> {
    segments: Vec<Vec<T>>,
    len: usize,
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
        SpanVec {
            segments: Vec::new(),
            len: 0,
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
        match self.segments.last_mut() {
            // Against the segment's own size, not the Vec's capacity
            // (which may be larger): indexing assumes these sizes.
            Some(last) if last.len() < segment_len(k - 1) => last.push(item),
            _ => {
                let mut segment = Vec::with_capacity(segment_len(k));
                segment.push(item);
                self.segments.push(segment);
            }
        }
        self.len += 1;
    }

    pub fn get(&self, index: usize) -> Option<&T> {
        let (k, at) = locate(index);
        self.segments.get(k)?.get(at)
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        let (k, at) = locate(index);
        self.segments.get_mut(k)?.get_mut(at)
    }

    pub fn last(&self) -> Option<&T> {
        self.segments.last()?.last()
    }

    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            items: self.segments.iter().flatten(),
            left: self.len,
        }
    }

    pub fn iter_mut(&mut self) -> IterMut<'_, T> {
        IterMut {
            items: self.segments.iter_mut().flatten(),
            left: self.len,
        }
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
        self.iter().cloned().collect()
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

/// The items in order; knows how many are left, so `rposition`,
/// `enumerate().rev()` and `len()` work as on a slice.
pub struct Iter<'a, T> {
    items: std::iter::Flatten<std::slice::Iter<'a, Vec<T>>>,
    left: usize,
}

impl<T> Clone for Iter<'_, T> {
    fn clone(&self) -> Self {
        Iter {
            items: self.items.clone(),
            left: self.left,
        }
    }
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        let item = self.items.next()?;
        self.left -= 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<T> DoubleEndedIterator for Iter<'_, T> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let item = self.items.next_back()?;
        self.left -= 1;
        Some(item)
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}
impl<T> std::iter::FusedIterator for Iter<'_, T> {}

pub struct IterMut<'a, T> {
    items: std::iter::Flatten<std::slice::IterMut<'a, Vec<T>>>,
    left: usize,
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
        let lens: Vec<usize> = v.segments.iter().map(Vec::len).collect();
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

    #[test]
    #[should_panic(expected = "index 3 past the end of 3 spans")]
    fn indexing_past_the_end_panics_as_a_slice_does() {
        let v: SpanVec<u8> = vec![1, 2, 3].into();
        let _ = v[3];
    }
}
