//! Where a model record came from: a record of an .etl file, a line of a
//! cluster.log, a record of an .evtx file, or an event seen live. Findings
//! carry these so an engineer can open the input at the right place.

use crate::read::etl::Location;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "in", rename_all = "kebab-case")]
pub enum Evidence {
    Etl {
        /// Index of the input among those analysed together.
        input: u16,
        #[serde(flatten)]
        location: Location,
    },
    /// A cluster.log line (1-based; a multi-line entry's first line).
    Line { input: u16, line: u64 },
    /// An .evtx event record (its EventRecordID).
    Evtx { input: u16, record_id: u64 },
    /// The n-th event of a live session.
    Live { sequence: u64 },
}

impl Evidence {
    pub fn etl(location: Location) -> Evidence {
        Evidence::Etl { input: 0, location }
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

    /// A byte offset into the input file, where the evidence has one.
    pub fn byte_offset(&self) -> Option<u64> {
        match self {
            Evidence::Etl { location, .. } => {
                Some(location.file_offset().unwrap_or(location.buffer_offset))
            }
            _ => None,
        }
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

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Evidence::Etl { location, .. } => write!(f, "{location}"),
            Evidence::Line { line, .. } => write!(f, "line {line}"),
            Evidence::Evtx { record_id, .. } => write!(f, "event record {record_id}"),
            Evidence::Live { sequence } => write!(f, "live event {sequence}"),
        }
    }
}
