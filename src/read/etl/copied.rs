//! Records copied out of the merge in its order, to be decoded on other
//! threads.
//!
//! The merge hands a record out borrowing its buffer, and gives the buffer
//! back (its decompressed bytes reused, its mapped pages released) once
//! past it: what another thread decodes later has to be a copy. A batch
//! keeps many records' bytes in one vector, so a copy costs a memcpy, not
//! an allocation.

use super::record::RecordSlot;
use super::sorter::RawRecord;
use super::{BufferInfo, EtlError, Event, Events};

/// Records (and the problems met between them) in the merge's order.
#[derive(Debug, Default)]
pub struct RecordBatch {
    bytes: Vec<u8>,
    items: Vec<Item>,
}

#[derive(Debug)]
enum Item {
    Record {
        /// Where its bytes start in the batch's.
        start: usize,
        slot: RecordSlot,
        info: BufferInfo,
        time_ns: i64,
    },
    Problem(EtlError),
}

impl RecordBatch {
    /// Copies the merge's next record, or the problem it met, in; false at
    /// the end of the trace.
    pub fn take_next(&mut self, events: &mut Events<'_>) -> bool {
        match events.next_record() {
            None => false,
            Some(Ok(raw)) => {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(raw.bytes);
                self.items.push(Item::Record {
                    start,
                    slot: raw.slot,
                    info: *raw.info,
                    time_ns: raw.time_ns,
                });
                true
            }
            Some(Err(problem)) => {
                self.items.push(Item::Problem(problem));
                true
            }
        }
    }

    /// Records and problems held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Bytes of the records held.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Each record decoded (as [`Events::next_event`] would have), or the
    /// problem in its place, in the merge's order.
    pub fn events(&self) -> impl Iterator<Item = Result<Event<'_>, EtlError>> + '_ {
        self.items.iter().map(|item| match item {
            Item::Record {
                start,
                slot,
                info,
                time_ns,
            } => RawRecord {
                bytes: &self.bytes[*start..*start + slot.size as usize],
                slot: *slot,
                info,
                time_ns: *time_ns,
            }
            .decode(),
            Item::Problem(problem) => Err(problem.clone()),
        })
    }
}
