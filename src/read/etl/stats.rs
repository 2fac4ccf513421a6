//! The figures `rhscope stats` prints: what a trace holds, counted in one
//! streaming pass.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

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

/// A multiply-rotate hasher for the small integer keys counted per event;
/// the default SipHash was 40% of `stats`' instructions. Keys come from the
/// trace, but a collision-flooded set costs time only in one pass.
#[derive(Default)]
struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
}

type FastSet<T> = HashSet<T, BuildHasherDefault<FastHasher>>;
type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

pub use crate::read::text::rfc3339;

// Kinds are counted at `kind as usize`: that must be their place in ALL,
// and ALL must hold every kind.
const _: () = {
    assert!(HeaderKind::Wpp as usize + 1 == HeaderKind::ALL.len());
    let mut i = 0;
    while i < HeaderKind::ALL.len() {
        assert!(HeaderKind::ALL[i] as usize == i);
        i += 1;
    }
};

impl TraceStats {
    /// Reads every event once. With `strict`, the first problem is the
    /// result; otherwise problems are counted in `skipped`.
    pub fn collect(
        trace: &Trace,
        strict: bool,
        mut progress: impl FnMut(usize, u64),
    ) -> Result<TraceStats, EtlError> {
        // Counted by the kind's place in HeaderKind::ALL: a map lookup
        // per record was 4% of reading a trace.
        let mut kind_counts = [0u64; HeaderKind::ALL.len()];
        let mut threads: FastSet<u32> = FastSet::default();
        let mut processes: FastSet<u32> = FastSet::default();
        let mut provider_index: FastMap<(Guid, Option<u8>), usize> = FastMap::default();
        let mut provider_counts: Vec<ProviderCount> = Vec::new();
        let mut last_provider: Option<((Guid, Option<u8>), usize)> = None;
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
            if let Some(n) = kind_counts.get_mut(ev.kind as usize) {
                *n += 1;
            }
            threads.extend(ev.thread_id);
            processes.extend(ev.process_id);
            first = first.min(ev.time_ns);
            last = last.max(ev.time_ns);
            // Runs of one provider are common: skip the map for them.
            let key = (ev.provider, ev.kernel_group);
            let slot = match last_provider {
                Some((k, i)) if k == key => i,
                _ => {
                    let i = *provider_index.entry(key).or_insert_with(|| {
                        provider_counts.push(ProviderCount {
                            guid: ev.provider,
                            name: None,
                            records: 0,
                        });
                        provider_counts.len() - 1
                    });
                    last_provider = Some((key, i));
                    i
                }
            };
            let entry = &mut provider_counts[slot];
            entry.records += 1;
            if entry.name.is_none() {
                entry.name = ev.provider_name().map(|n| n.into_owned());
            }
            if records % 65_536 == 0 {
                let (buffers, bytes) = events.progress();
                progress(buffers, bytes);
            }
        }
        let kinds = HeaderKind::ALL
            .iter()
            .zip(kind_counts)
            .map(|(k, n)| (k.name(), n))
            .collect();
        let mut providers = provider_counts;
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
