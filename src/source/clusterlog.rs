//! A cluster.log, its entries mapped by the definitions' message patterns.

use crate::model::{Evidence, Record, RecordKind};
use crate::providers::ProviderSet;
use crate::read::clusterlog::{ClusterLog, LogCounts};

use super::{EventSource, Observed, SourceError};

/// Maps one text message (a cluster.log entry, an .evtx event's message)
/// through the definitions' message patterns. RHS's own lines that no
/// pattern maps are kept as RHS messages, as the ETW provider's are.
pub fn map_message(
    providers: &ProviderSet,
    component: &str,
    text: &str,
    base: &Record,
) -> Observed {
    let time = base.time_ns;
    match providers.match_message(text, component, base) {
        Some(Ok(r)) => Observed::Record(r),
        Some(Err(_)) => Observed::Unmapped(time),
        None if component == "RHS" => {
            let mut r = base.clone();
            r.message = Some(text.to_string());
            Observed::Record(r)
        }
        None => Observed::Seen(time),
    }
}

/// A cluster.log, mapped by the definitions' message patterns.
pub struct ClusterLogSource<'p> {
    log: ClusterLog,
    providers: &'p ProviderSet,
}

impl<'p> ClusterLogSource<'p> {
    pub fn new(log: ClusterLog, providers: &'p ProviderSet) -> ClusterLogSource<'p> {
        ClusterLogSource { log, providers }
    }

    pub fn counts(&self) -> &LogCounts {
        self.log.counts()
    }
}

impl EventSource for ClusterLogSource<'_> {
    fn name(&self) -> String {
        self.log.path().display().to_string()
    }

    fn next_observed(&mut self) -> Option<Result<Observed, SourceError>> {
        let entry = match self.log.next_entry()? {
            Ok(e) => e,
            Err(e) => return Some(Err(SourceError::ClusterLog(e))),
        };
        let mut base = Record::new(
            RecordKind::RhsMessage,
            entry.time_ns,
            Evidence::Line {
                input: 0,
                line: entry.line,
                time: crate::model::Timestamp(entry.time_ns),
            },
        );
        base.pid = Some(entry.pid);
        base.tid = Some(entry.tid);
        Some(Ok(map_message(
            self.providers,
            &entry.component,
            &entry.text,
            &base,
        )))
    }

    fn unparsed(&self) -> Option<&LogCounts> {
        Some(self.log.counts())
    }

    fn header(&self) -> Option<&crate::read::clusterlog::LogHeader> {
        Some(self.log.header())
    }

    fn bytes_read(&self) -> u64 {
        self.log.bytes_read()
    }
}
