//! Where a model record came from: a record of an .etl file, a line of a
//! cluster.log, a record of an .evtx file, or an event seen live. Findings
//! carry these so an engineer can open the input at the right place.

use serde::ser::SerializeMap;

use super::Timestamp;
use crate::read::etl::Location;

/// Each kind says where its event is and when it happened; in JSON each
/// also has `at`, the place as one string (`rhscope dump TRACE --at AT`
/// prints an .etl event from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// The record's [`Location`], its fields held apart so the evidence
    /// every span carries takes 24 bytes, not 32.
    Etl {
        /// Index of the input among those analysed together.
        input: u16,
        compressed: bool,
        record_offset: u32,
        buffer_offset: u64,
        time: Timestamp,
    },
    /// A cluster.log line (1-based; a multi-line entry's first line).
    Line {
        input: u16,
        line: u64,
        time: Timestamp,
    },
    /// An .evtx event record (its EventRecordID).
    Evtx {
        input: u16,
        record_id: u64,
        time: Timestamp,
    },
    /// The n-th event of a live session.
    Live { sequence: u64 },
}

impl Evidence {
    pub fn etl(location: Location, time_ns: i64) -> Evidence {
        Evidence::Etl {
            input: 0,
            compressed: location.compressed,
            record_offset: location.record_offset,
            buffer_offset: location.buffer_offset,
            time: Timestamp(time_ns),
        }
    }

    /// The place as one string: `0x1a000+0x198` (buffer offset + record
    /// offset in the buffer, decompressed if it was) for an .etl record,
    /// `line:92`, `record:9`, `live:5`.
    pub fn at(&self) -> String {
        match self {
            Evidence::Etl {
                buffer_offset,
                record_offset,
                ..
            } => format!("{buffer_offset:#x}+{record_offset:#x}"),
            Evidence::Line { line, .. } => format!("line:{line}"),
            Evidence::Evtx { record_id, .. } => format!("record:{record_id}"),
            Evidence::Live { sequence } => format!("live:{sequence}"),
        }
    }

    /// When the event happened, where the input says.
    pub fn time(&self) -> Option<Timestamp> {
        match *self {
            Evidence::Etl { time, .. }
            | Evidence::Line { time, .. }
            | Evidence::Evtx { time, .. } => Some(time),
            Evidence::Live { .. } => None,
        }
    }

    pub fn input(&self) -> u16 {
        match *self {
            Evidence::Etl { input, .. }
            | Evidence::Line { input, .. }
            | Evidence::Evtx { input, .. } => input,
            Evidence::Live { .. } => 0,
        }
    }

    pub fn with_input(mut self, i: u16) -> Evidence {
        match &mut self {
            Evidence::Etl { input, .. }
            | Evidence::Line { input, .. }
            | Evidence::Evtx { input, .. } => *input = i,
            Evidence::Live { .. } => {}
        }
        self
    }

    /// Where an .etl record is.
    pub fn location(&self) -> Option<Location> {
        match *self {
            Evidence::Etl {
                compressed,
                record_offset,
                buffer_offset,
                ..
            } => Some(Location {
                buffer_offset,
                record_offset,
                compressed,
            }),
            _ => None,
        }
    }

    /// A byte offset into the input file, where the evidence has one.
    pub fn byte_offset(&self) -> Option<u64> {
        self.location()
            .map(|l| l.file_offset().unwrap_or(l.buffer_offset))
    }

    /// The evidence as text; names the input file when several were
    /// analysed together.
    pub fn describe(&self, inputs: &[String]) -> String {
        match inputs.get(usize::from(self.input())) {
            Some(name) if inputs.len() > 1 => format!("{name} {self}"),
            _ => self.to_string(),
        }
    }
}

/// Parses an .etl `at` string (`0x1a000+0x198`, or decimal) into the
/// buffer offset and the record offset.
pub fn parse_etl_at(at: &str) -> Option<(u64, u32)> {
    let num = crate::read::text::parse_u64;
    let (buffer, record) = at.split_once('+')?;
    Some((num(buffer)?, u32::try_from(num(record)?).ok()?))
}

impl serde::Serialize for Evidence {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self {
            Evidence::Etl {
                input,
                compressed,
                record_offset,
                buffer_offset,
                ..
            } => {
                m.serialize_entry("in", "etl")?;
                m.serialize_entry("input", input)?;
                m.serialize_entry("buffer_offset", buffer_offset)?;
                m.serialize_entry("record_offset", record_offset)?;
                m.serialize_entry("compressed", compressed)?;
            }
            Evidence::Line { input, line, .. } => {
                m.serialize_entry("in", "line")?;
                m.serialize_entry("input", input)?;
                m.serialize_entry("line", line)?;
            }
            Evidence::Evtx {
                input, record_id, ..
            } => {
                m.serialize_entry("in", "evtx")?;
                m.serialize_entry("input", input)?;
                m.serialize_entry("record_id", record_id)?;
            }
            Evidence::Live { sequence } => {
                m.serialize_entry("in", "live")?;
                m.serialize_entry("sequence", sequence)?;
            }
        }
        if let Some(t) = self.time() {
            m.serialize_entry("time", &t)?;
        }
        m.serialize_entry("at", &self.at())?;
        m.end()
    }
}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Evidence::Etl { .. } => match self.location() {
                Some(location) => write!(f, "{location} (at {})", self.at()),
                None => Ok(()),
            },
            Evidence::Line { line, .. } => write!(f, "line {line}"),
            Evidence::Evtx { record_id, .. } => write!(f, "event record {record_id}"),
            Evidence::Live { sequence } => write!(f, "live event {sequence}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_etl_record_reads_back_where_it_is_in_24_bytes() {
        let at = |compressed| {
            Evidence::etl(
                Location {
                    buffer_offset: 0x1a000,
                    record_offset: 0x198,
                    compressed,
                },
                5,
            )
            .with_input(2)
        };
        let e = at(false);
        assert_eq!(std::mem::size_of::<Evidence>(), 24);
        assert_eq!(e.byte_offset(), Some(0x1a198));
        assert_eq!(at(true).byte_offset(), Some(0x1a000));
        assert_eq!(e.to_string(), "byte offset 106904 (at 0x1a000+0x198)");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"in":"etl","input":2,"buffer_offset":106496,"record_offset":408,"compressed":false,"time":"1970-01-01T00:00:00.000000005Z","at":"0x1a000+0x198"}"#
        );
        assert_eq!(e.location().map(|l| l.compressed), Some(false));
        assert_eq!(Evidence::Live { sequence: 1 }.location(), None);
    }
}
