//! The figures `rhscope stats` prints: what a trace holds, counted in one
//! streaming pass.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::SecondsFormat;

use super::error::EtlError;
use super::guid::Guid;
use super::header::ClockType;
use super::record::HeaderKind;
use super::Trace;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BufferCounts {
    pub total: usize,
    pub compressed: usize,
    /// Buffers cut short by the end of the file.
    pub truncated: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProviderCount {
    pub guid: Guid,
    pub name: Option<String>,
    pub records: u64,
}

/// Something the reader could not read, and where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub offset: u64,
    pub message: String,
}

/// Header facts worth showing next to the counts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeaderSummary {
    pub logger_name: String,
    pub log_file_name: String,
    pub pointer_size: u32,
    pub clock_type: ClockType,
    pub perf_freq: i64,
    pub os_version: String,
    pub os_build: u32,
    pub number_of_processors: u32,
    pub start_time: Option<String>,
    pub boot_time: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TraceStats {
    pub file: String,
    pub bytes: u64,
    pub buffers: BufferCounts,
    pub records: u64,
    /// Records per header kind; every kind is present, zero or not.
    pub kinds: BTreeMap<&'static str, u64>,
    /// Distinct thread ids over records that carry one.
    pub threads: usize,
    pub processes: usize,
    pub providers: Vec<ProviderCount>,
    /// Earliest and latest record time, RFC 3339 UTC.
    pub first: Option<String>,
    pub last: Option<String>,
    pub events_lost: u32,
    pub buffers_lost: u32,
    pub skipped: Vec<Skipped>,
    pub header: HeaderSummary,
}

pub fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

impl TraceStats {
    /// Reads every event once. With `strict`, the first problem is the
    /// result; otherwise problems are counted in `skipped`.
    pub fn collect(
        trace: &Trace,
        strict: bool,
        mut progress: impl FnMut(usize, u64),
    ) -> Result<TraceStats, EtlError> {
        let mut kinds: BTreeMap<&'static str, u64> =
            HeaderKind::ALL.iter().map(|k| (k.name(), 0)).collect();
        let mut threads = HashSet::new();
        let mut processes = HashSet::new();
        let mut providers: HashMap<(Guid, Option<u8>), ProviderCount> = HashMap::new();
        let mut skipped = Vec::new();
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        let mut records = 0u64;
        let mut events = trace.events();
        while let Some(item) = events.next_event() {
            let ev = match item {
                Ok(ev) => ev,
                Err(e) if strict => return Err(e),
                Err(e) => {
                    skipped.push(Skipped {
                        offset: e.offset(),
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            records += 1;
            *kinds.entry(ev.kind.name()).or_default() += 1;
            threads.extend(ev.thread_id);
            processes.extend(ev.process_id);
            first = first.min(ev.time_ns);
            last = last.max(ev.time_ns);
            let entry = providers
                .entry((ev.provider, ev.kernel_group))
                .or_insert_with(|| ProviderCount {
                    guid: ev.provider,
                    name: None,
                    records: 0,
                });
            entry.records += 1;
            if entry.name.is_none() {
                entry.name = ev.provider_name().map(|n| n.into_owned());
            }
            if records % 65_536 == 0 {
                let (buffers, bytes) = events.progress();
                progress(buffers, bytes);
            }
        }
        let mut providers: Vec<ProviderCount> = providers.into_values().collect();
        providers.sort_by(|a, b| {
            b.records
                .cmp(&a.records)
                .then(a.guid.cmp(&b.guid))
                .then(a.name.cmp(&b.name))
        });
        let h = trace.header();
        let buffers = trace.buffers();
        Ok(TraceStats {
            file: trace.path().display().to_string(),
            bytes: trace.len(),
            buffers: BufferCounts {
                total: buffers.len(),
                compressed: buffers.iter().filter(|b| b.compressed).count(),
                truncated: buffers.iter().filter(|b| b.truncated).count(),
            },
            records,
            kinds,
            threads: threads.len(),
            processes: processes.len(),
            providers,
            first: (records > 0).then(|| rfc3339(first)),
            last: (records > 0).then(|| rfc3339(last)),
            events_lost: h.events_lost,
            buffers_lost: h.buffers_lost,
            skipped,
            header: HeaderSummary {
                logger_name: h.logger_name.clone(),
                log_file_name: h.log_file_name.clone(),
                pointer_size: h.pointer_size,
                clock_type: h.clock_type,
                perf_freq: h.perf_freq,
                os_version: h.os_version.clone(),
                os_build: h.provider_version,
                number_of_processors: h.number_of_processors,
                start_time: h
                    .start_time
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::Nanos, true)),
                boot_time: h
                    .boot_time
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::Nanos, true)),
            },
        })
    }
}
