//! An .etl file through the native reader, mapped by the provider
//! definitions.

use crate::providers::ProviderSet;
use crate::read::etl::tracelogging::SchemaCache;
use crate::read::etl::{Events, Trace};

use super::stacks::StackContext;
use super::{EventSource, Observed, SourceError};

/// An .etl file through the native reader.
pub struct EtlSource<'t> {
    trace: &'t Trace,
    events: Events<'t>,
    providers: &'t ProviderSet,
    schemas: SchemaCache,
    /// The trace's stacks, where they are wanted.
    stacks: Option<StackContext<'t>>,
    /// The furthest buffer reached (buffers are read in time order, so
    /// this is about how far into the file the read is).
    furthest: u64,
}

impl<'t> EtlSource<'t> {
    pub fn new(trace: &'t Trace, providers: &'t ProviderSet) -> EtlSource<'t> {
        EtlSource {
            trace,
            events: trace.events(),
            providers,
            schemas: SchemaCache::default(),
            stacks: None,
            furthest: 0,
        }
    }

    /// Also attaches each event's stack (context switches, thread
    /// rundowns) and thread start images.
    pub fn with_stacks(mut self, stacks: StackContext<'t>) -> EtlSource<'t> {
        self.stacks = Some(stacks);
        self
    }
}

impl EventSource for EtlSource<'_> {
    fn name(&self) -> String {
        self.trace.path().display().to_string()
    }

    fn next_observed(&mut self) -> Option<Result<Observed, SourceError>> {
        let ev = match self.events.next_event()? {
            Ok(ev) => ev,
            Err(source) => {
                return Some(Err(SourceError::Corrupt {
                    trace: self.name(),
                    source,
                }))
            }
        };
        self.furthest = self.furthest.max(ev.location.buffer_offset);
        Some(Ok(match self.providers.map_with(&ev, &mut self.schemas) {
            Some(Ok(mut r)) => {
                if let Some(s) = self.stacks.as_mut() {
                    s.attach(&mut r, ev.timestamp);
                }
                Observed::Record(Box::new(r))
            }
            Some(Err(_)) => Observed::Unmapped(ev.time_ns),
            None => Observed::Seen(ev.time_ns),
        }))
    }

    fn bytes_read(&self) -> u64 {
        self.furthest
    }
}
