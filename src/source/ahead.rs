//! A source read on a thread of its own, ahead of the timeline: an .etl
//! source merges its buffers and maps every event (more than half of
//! analysing a trace; the mapping on threads of the source's own on a
//! trace of some size), so with it on another thread the pairing and rules
//! on the caller's thread overlap it instead of waiting for it.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::Scope;

use crate::read::clusterlog::{LogCounts, LogHeader};

use super::{EventSource, Observed, SourceError};

/// Observations handed over at a time: the hand-over costs a lock, not
/// each observation.
const BATCH: usize = 1024;

/// Batches a reader may be ahead: bounds memory (an event's record is a
/// few hundred bytes; an RHS message line, rare, up to 64 KiB) while
/// smoothing the two threads' uneven pace.
const AHEAD: usize = 8;

type Item = Result<Observed, SourceError>;

/// What the source knows only once it has ended.
struct End {
    header: Option<LogHeader>,
    unparsed: Option<LogCounts>,
}

struct Batch {
    items: Vec<Item>,
    bytes_read: u64,
    end: Option<End>,
}

/// The receiving end: an [`EventSource`] that yields what the source's
/// thread read, in the same order.
pub struct ReadAhead {
    name: String,
    batches: Receiver<Batch>,
    items: std::vec::IntoIter<Item>,
    bytes_read: u64,
    /// What the source's last batch brought: once here, nothing follows.
    end: Option<End>,
}

impl ReadAhead {
    /// Starts reading `source` on a thread of `scope`. Dropping the
    /// ReadAhead stops that thread at its next hand-over (the scope waits
    /// for it), so a strict read that stops at a problem reads on by at
    /// most the batches handed over, not to the end.
    pub fn spawn<'scope, 'env>(
        scope: &'scope Scope<'scope, 'env>,
        source: &'env mut dyn EventSource,
    ) -> ReadAhead {
        let name = source.name();
        let (tx, mut rx) = sync_channel(AHEAD);
        let spawned = std::thread::Builder::new()
            .name("source read".into())
            .spawn_scoped(scope, move || read(source, &tx));
        if let Err(e) = spawned {
            // The OS gave no thread: the input ends in an error naming it.
            let (tx, failed) = sync_channel(1);
            let _ = tx.send(Batch {
                items: vec![Err(SourceError::Open {
                    path: name.clone().into(),
                    source: e,
                })],
                bytes_read: 0,
                end: Some(End {
                    header: None,
                    unparsed: None,
                }),
            });
            rx = failed;
        }
        ReadAhead {
            name,
            batches: rx,
            items: Vec::new().into_iter(),
            bytes_read: 0,
            end: None,
        }
    }
}

/// The source's thread: reads to the end, or until the receiver is gone.
fn read(source: &mut dyn EventSource, tx: &SyncSender<Batch>) {
    let mut items = Vec::with_capacity(BATCH);
    loop {
        let Some(item) = source.next_observed() else {
            let end = End {
                header: source.header().cloned(),
                unparsed: source.unparsed().cloned(),
            };
            let _ = tx.send(Batch {
                items,
                bytes_read: source.bytes_read(),
                end: Some(end),
            });
            return;
        };
        items.push(item);
        if items.len() == BATCH {
            let batch = Batch {
                items: std::mem::replace(&mut items, Vec::with_capacity(BATCH)),
                bytes_read: source.bytes_read(),
                end: None,
            };
            if tx.send(batch).is_err() {
                return;
            }
        }
    }
}

impl EventSource for ReadAhead {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn next_observed(&mut self) -> Option<Result<Observed, SourceError>> {
        loop {
            if let Some(item) = self.items.next() {
                return Some(item);
            }
            if self.end.is_some() {
                return None;
            }
            // A closed channel without an end: the thread panicked. Say so
            // now, naming the input, not after reading every other one.
            let Ok(batch) = self.batches.recv() else {
                panic!("{}: the thread reading it panicked", self.name);
            };
            self.items = batch.items.into_iter();
            self.bytes_read = batch.bytes_read;
            self.end = batch.end;
        }
    }

    fn unparsed(&self) -> Option<&LogCounts> {
        self.end.as_ref()?.unparsed.as_ref()
    }

    fn header(&self) -> Option<&LogHeader> {
        self.end.as_ref()?.header.as_ref()
    }

    fn bytes_read(&self) -> u64 {
        self.bytes_read
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::etl::EtlError;

    /// Yields `count` observations (a problem at every 1000th), or yields
    /// them forever.
    struct Counting {
        next: u64,
        count: Option<u64>,
        header: LogHeader,
    }

    impl Counting {
        fn new(count: Option<u64>) -> Counting {
            let header = LogHeader {
                node: Some("NODE1".into()),
                ..LogHeader::default()
            };
            Counting {
                next: 0,
                count,
                header,
            }
        }
        fn ended(&self) -> bool {
            self.count.is_some_and(|c| self.next >= c)
        }
    }

    impl EventSource for Counting {
        fn name(&self) -> String {
            "counting".into()
        }
        fn next_observed(&mut self) -> Option<Result<Observed, SourceError>> {
            if self.ended() {
                return None;
            }
            self.next += 1;
            Some(if self.next % 1000 == 0 {
                Err(SourceError::Corrupt {
                    trace: self.name(),
                    source: EtlError::corrupt("record", self.next, "test"),
                })
            } else {
                Ok(Observed::Seen(self.next as i64))
            })
        }
        fn header(&self) -> Option<&LogHeader> {
            // Like a cluster.log's: known once the source has ended.
            self.ended().then_some(&self.header)
        }
        fn bytes_read(&self) -> u64 {
            self.next * 10
        }
    }

    /// What a source yields, read here: Ok(time) or Err(offset).
    fn drain(source: &mut dyn EventSource) -> Vec<Result<i64, u64>> {
        std::iter::from_fn(|| source.next_observed())
            .map(|item| match item {
                Ok(o) => Ok(o.time_ns()),
                Err(SourceError::Corrupt { source, .. }) => Err(source.offset()),
                Err(other) => panic!("unexpected {other}"),
            })
            .collect()
    }

    #[test]
    fn yields_what_the_source_does_then_its_header() {
        // Batches end mid-way through: 2,500 is two full batches and a part.
        let expected = drain(&mut Counting::new(Some(2_500)));
        assert_eq!(expected.len(), 2_500);
        assert_eq!(expected.iter().filter(|i| i.is_err()).count(), 2);
        let mut source = Counting::new(Some(2_500));
        std::thread::scope(|scope| {
            let mut ahead = ReadAhead::spawn(scope, &mut source);
            assert_eq!(ahead.name(), "counting");
            assert!(ahead.header().is_none());
            assert_eq!(drain(&mut ahead), expected);
            assert_eq!(ahead.bytes_read(), 25_000);
            assert_eq!(
                ahead.header().and_then(|h| h.node.as_deref()),
                Some("NODE1")
            );
            assert!(ahead.next_observed().is_none());
        });
    }

    #[test]
    fn a_dropped_reader_stops_its_thread() {
        let mut source = Counting::new(Some(1_000_000));
        std::thread::scope(|scope| {
            let mut ahead = ReadAhead::spawn(scope, &mut source);
            for _ in 0..5_000 {
                assert!(ahead.next_observed().is_some());
            }
        });
        // The thread read at most the batches taken (5), those in the
        // channel (AHEAD) and one it was handing over, not to the end.
        assert!(source.next <= ((5 + AHEAD + 1) * BATCH) as u64);
    }

    /// A source that panics half-way.
    struct Failing(u64);

    impl EventSource for Failing {
        fn name(&self) -> String {
            "failing.etl".into()
        }
        fn next_observed(&mut self) -> Option<Result<Observed, SourceError>> {
            self.0 += 1;
            assert!(self.0 < 3_000, "a bug in a source");
            Some(Ok(Observed::Seen(self.0 as i64)))
        }
    }

    #[test]
    #[should_panic(expected = "failing.etl: the thread reading it panicked")]
    fn a_panicking_source_is_named_when_reached() {
        let mut source = Failing(0);
        std::thread::scope(|scope| {
            let mut ahead = ReadAhead::spawn(scope, &mut source);
            while ahead.next_observed().is_some() {}
        });
    }
}
