//! Batches mapped on threads of their own and taken back in the order they
//! were dealt: each thread gets every n-th batch, and the mapped batches
//! are taken back in the same turn, so the order stays the dealer's with
//! no sorting or reorder buffer. A cluster.log's reader and an .etl's
//! merge deal; their source takes.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use super::join_all;

/// Mapping threads at most: past this the pairing, on one thread, is the
/// limit.
pub(super) const MAX_THREADS: usize = 4;

/// How many mapping threads a source starts: one per core, up to
/// [`MAX_THREADS`].
pub(super) fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_THREADS)
}

/// Deals batches to the mapping threads in turn.
pub(super) struct Dealer<T> {
    threads: Vec<SyncSender<T>>,
    turn: usize,
}

impl<T> Dealer<T> {
    /// Hands `batch` to the thread whose turn it is (waiting while it has
    /// `ahead` batches queued); false when that thread has stopped
    /// listening: the taker went away, or the thread panicked.
    pub(super) fn deal(&mut self, batch: T) -> bool {
        let Some(thread) = self.threads.get(self.turn) else {
            return false;
        };
        let sent = thread.send(batch).is_ok();
        self.turn = (self.turn + 1) % self.threads.len();
        sent
    }

    /// Deals no more: each thread ends once it has mapped what it has.
    pub(super) fn close(&mut self) {
        self.threads.clear();
    }
}

/// Takes the mapped batches back, in the turn they were dealt.
pub(super) struct Taker<T> {
    mapped: Vec<Receiver<T>>,
    turn: usize,
    threads: Vec<JoinHandle<()>>,
}

impl<T> Default for Taker<T> {
    /// No threads: nothing to take.
    fn default() -> Taker<T> {
        Taker {
            mapped: Vec::new(),
            turn: 0,
            threads: Vec::new(),
        }
    }
}

impl<T> Taker<T> {
    /// How many threads map.
    pub(super) fn threads(&self) -> usize {
        self.threads.len()
    }

    /// The next mapped batch in the order dealt; None when the thread
    /// whose turn it is has ended: it was dealt nothing more (the input
    /// ended), or it panicked ([`Taker::finish`] tells which).
    pub(super) fn take(&mut self) -> Option<T> {
        let batch = self.mapped.get(self.turn)?.recv().ok()?;
        self.turn = (self.turn + 1) % self.mapped.len();
        Some(batch)
    }

    /// Takes no more and waits for every thread, the first one's panic if
    /// any panicked. A thread handing a batch on stops at once; one waiting
    /// for a batch, once its dealer is gone (closed or dropped), so the
    /// dealer must not outlive this call on the same thread.
    pub(super) fn finish(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        self.mapped.clear();
        join_all(self.threads.drain(..))
    }
}

/// Up to `count` threads (at least one is tried), named `name` and their
/// number, each mapping its batches with the function `each` makes for it
/// and at most `ahead` batches behind or ahead of it; the OS's error when
/// not one could be started (fewer than asked for do the same work).
pub(super) fn start<In, Out, F>(
    name: &str,
    count: usize,
    ahead: usize,
    mut each: impl FnMut() -> F,
) -> std::io::Result<(Dealer<In>, Taker<Out>)>
where
    In: Send + 'static,
    Out: Send + 'static,
    F: FnMut(In) -> Out + Send + 'static,
{
    let mut dealer = Dealer {
        threads: Vec::new(),
        turn: 0,
    };
    let mut taker = Taker::default();
    for k in 0..count.max(1) {
        let (deal, batches) = mpsc::sync_channel::<In>(ahead);
        let (hand_on, mapped) = mpsc::sync_channel::<Out>(ahead);
        let mut map = each();
        let spawned = std::thread::Builder::new()
            .name(format!("{name}-{k}"))
            .spawn(move || {
                for batch in batches {
                    if hand_on.send(map(batch)).is_err() {
                        return;
                    }
                }
            });
        match spawned {
            Ok(thread) => {
                dealer.threads.push(deal);
                taker.mapped.push(mapped);
                taker.threads.push(thread);
            }
            Err(_) if k > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok((dealer, taker))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batches come back in the order dealt, whatever the number of
    /// threads and however long each takes; the end shows once the dealer
    /// is gone, and a thread's panic comes out of `finish`.
    #[test]
    fn batches_come_back_in_the_order_dealt() {
        for count in [1, 2, 3, 5] {
            let (mut dealer, mut taker) = start("t", count, 2, || {
                |n: u64| {
                    // Later batches of a thread finish sooner, sometimes.
                    std::thread::sleep(std::time::Duration::from_micros((n * 7919) % 300));
                    n * 10
                }
            })
            .unwrap();
            assert_eq!(taker.threads(), count);
            let dealing = std::thread::spawn(move || {
                for n in 0..200 {
                    assert!(dealer.deal(n));
                }
            });
            let got: Vec<u64> = std::iter::from_fn(|| taker.take()).collect();
            assert_eq!(got, (0..200).map(|n| n * 10).collect::<Vec<_>>());
            dealing.join().unwrap();
            assert!(taker.finish().is_none());
        }
        let (mut dealer, mut taker) = start("t", 2, 2, || {
            |n: u32| {
                assert!(n != 3, "a bug");
                n
            }
        })
        .unwrap();
        for n in 0..4 {
            assert!(dealer.deal(n));
        }
        dealer.close();
        let got: Vec<u32> = std::iter::from_fn(|| taker.take()).collect();
        assert_eq!(got, [0, 1, 2]);
        assert!(taker.finish().is_some(), "the panic comes out");
    }
}
