//! An .evtx file: the FailoverClustering Diagnostic and Operational
//! channels carry the same messages as the ETW provider and cluster.log,
//! so the same message patterns map them.

use std::path::{Path, PathBuf};

use crate::model::{Evidence, Record, RecordKind};
use crate::providers::ProviderSet;
use crate::read::evtx::{read_events, EvtxError, LogEvent};

use super::{map_message, EventSource, Observed, SourceError};

/// Maps an event of a provider the definitions know: by its id and
/// insertion strings where the definition names the id (the System and
/// Operational channels' events), else through the message patterns,
/// string by string (`[RHS] text` lines keep their component).
pub fn map_event(providers: &ProviderSet, e: &LogEvent, input: u16) -> Observed {
    let Some(def) = providers
        .definitions()
        .iter()
        .find(|d| d.header.name.eq_ignore_ascii_case(&e.provider))
    else {
        return Observed::Seen(e.time_ns);
    };
    let mut base = Record::new(
        RecordKind::RhsMessage,
        e.time_ns,
        Evidence::Evtx {
            input,
            record_id: e.record_id,
            time: crate::model::Timestamp(e.time_ns),
        },
    );
    base.pid = e.pid;
    base.tid = e.tid;
    if let Ok(id) = u16::try_from(e.event_id) {
        match def.map_strings(id, &e.data, base.clone()) {
            Some(Ok(r)) => return Observed::Record(Box::new(r)),
            Some(Err(_)) => return Observed::Unmapped(e.time_ns),
            None => {}
        }
    }
    let mut first = None;
    for text in &e.data {
        let (component, text) = match text.strip_prefix('[').and_then(|t| t.split_once("] ")) {
            Some((c, t)) => (c, t),
            None => ("RHS", text.as_str()),
        };
        let o = map_message(providers, component, text, &base);
        match &o {
            Observed::Record(r) if r.kind != RecordKind::RhsMessage => return o,
            _ => {
                first.get_or_insert(o);
            }
        }
    }
    first.unwrap_or(Observed::Seen(e.time_ns))
}

/// The records of an .evtx file, read whole (event logs are bounded in
/// size by their channel's maximum) and in time order.
pub struct EvtxSource {
    path: PathBuf,
    events: std::vec::IntoIter<Result<Observed, SourceError>>,
    pub records: u64,
    pub bad_records: u64,
}

impl EvtxSource {
    pub fn open(path: &Path, providers: &ProviderSet) -> Result<EvtxSource, EvtxError> {
        let (events, bad) = read_events(path)?;
        let records = events.len() as u64;
        let bad_records = bad.len() as u64;
        let mut items: Vec<(i64, Result<Observed, SourceError>)> = events
            .iter()
            .map(|e| (e.time_ns, Ok(map_event(providers, e, 0))))
            .collect();
        items.sort_by_key(|(t, _)| *t);
        // Problems come last: strict analysis stops on the first.
        items.extend(
            bad.into_iter()
                .map(|e| (i64::MAX, Err(SourceError::Evtx(e)))),
        );
        Ok(EvtxSource {
            path: path.to_path_buf(),
            events: items
                .into_iter()
                .map(|(_, o)| o)
                .collect::<Vec<_>>()
                .into_iter(),
            records,
            bad_records,
        })
    }
}

impl EventSource for EvtxSource {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn next_observed(&mut self) -> Option<Result<Observed, SourceError>> {
        self.events.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::evtx::log_event;
    use serde_json::Value as Json;

    /// A FailoverClustering Diagnostic event as the `evtx` crate renders it.
    fn diagnostic(text: &str) -> Json {
        serde_json::json!({"Event": {
            "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
            "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-FailoverClustering", "Guid": "{BAF908EA-3421-4CA9-9B84-6689B8C6F85F}"}},
                "EventID": 2051,
                "TimeCreated": {"#attributes": {"SystemTime": "2013-03-08T08:13:01.001000Z"}},
                "EventRecordID": 77,
                "Execution": {"#attributes": {"ProcessID": 6292, "ThreadID": 6308}},
                "Channel": "Microsoft-Windows-FailoverClustering/Diagnostic"
            },
            "EventData": {"Data": [{"#attributes": {"Name": "Message"}, "#text": text}]}
        }})
    }

    #[test]
    fn deadlock_message_maps_with_ids_and_record() {
        let e = log_event(
            77,
            1_362_730_381_001_000_000,
            &diagnostic("[RHS] RhsCall::DeadlockMonitor: Call ONLINERESOURCE timed out for resource 'TSM-Server-TSM1'."),
        );
        assert_eq!((e.pid, e.tid, e.event_id), (Some(6292), Some(6308), 2051));
        let Observed::Record(r) = map_event(&ProviderSet::embedded(), &e, 1) else {
            panic!("not mapped");
        };
        assert_eq!(r.kind, RecordKind::DeadlockTimeout);
        assert_eq!(r.resource.as_deref(), Some("TSM-Server-TSM1"));
        assert_eq!(r.entry_point, Some(crate::model::EntryPoint::Online));
        assert_eq!(
            r.evidence,
            Evidence::Evtx {
                input: 1,
                record_id: 77,
                time: crate::model::Timestamp(1_362_730_381_001_000_000)
            }
        );
    }

    #[test]
    fn other_providers_only_count_time() {
        let mut j = diagnostic("x");
        j["Event"]["System"]["Provider"]["#attributes"]["Name"] =
            "Microsoft-Windows-Kernel-General".into();
        let e = log_event(1, 5, &j);
        assert_eq!(
            map_event(&ProviderSet::embedded(), &e, 0),
            Observed::Seen(5)
        );
    }
}
