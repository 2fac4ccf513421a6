//! Two decoders on one file: rhscope's native reader and Windows' own
//! (ferrisetw's FileTrace with TDH). Events are paired by provider, id,
//! opcode, process and thread in time order (timestamps may differ by the
//! rounding of the clock conversion); each pair's descriptor and every
//! field both decoded are compared. Platform-neutral: the Windows side
//! fills [`DecodedEvent`]s in `session.rs`.

use std::collections::{HashMap, VecDeque};

use crate::providers::manifest::ManifestSet;
use crate::read::etl::header::FILETIME_UNIX_EPOCH;
use crate::read::etl::{EtlError, Event, EventRow, Guid, Trace};

/// Timestamps (FILETIME, 100 ns) further apart than this are different
/// events.
pub const TIME_TOLERANCE: i64 = 2;

/// The native reader's decodings of every event of a trace; the first
/// corrupt record is an error (a comparison needs every event).
pub fn native_events(
    trace: &Trace,
    manifests: &ManifestSet,
) -> Result<Vec<DecodedEvent>, EtlError> {
    let mut out = Vec::new();
    let mut events = trace.events();
    while let Some(ev) = events.next_event() {
        let ev = ev?;
        let filetime = ev.time_ns.div_euclid(100) + FILETIME_UNIX_EPOCH;
        out.push(DecodedEvent::native(&ev, filetime, manifests));
    }
    Ok(out)
}

/// One event as a decoder saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DecodedEvent {
    /// FILETIME.
    pub timestamp: i64,
    pub provider: Guid,
    pub id: u16,
    pub version: u8,
    pub opcode: u8,
    pub level: u8,
    pub pid: Option<u32>,
    pub tid: Option<u32>,
    /// Field name -> value as text, in the decoder's order.
    pub fields: Vec<(String, String)>,
}

impl DecodedEvent {
    /// What the native reader (with the manifests) decodes of an event.
    pub fn native(ev: &Event<'_>, filetime: i64, manifests: &ManifestSet) -> DecodedEvent {
        let mut row = EventRow::new(ev);
        manifests.fill_row(ev, &mut row);
        let mut fields = Vec::new();
        if let Some(serde_json::Value::Object(o)) = &row.fields {
            for (k, v) in o {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                fields.push((k.clone(), text));
            }
        }
        DecodedEvent {
            timestamp: filetime,
            provider: ev.provider,
            id: ev.descriptor.id,
            version: ev.descriptor.version,
            opcode: ev.descriptor.opcode,
            level: ev.descriptor.level,
            pid: ev.process_id,
            tid: ev.thread_id,
            fields,
        }
    }

    fn key(&self) -> (Guid, u16, u8, Option<u32>, Option<u32>) {
        (self.provider, self.id, self.opcode, self.pid, self.tid)
    }
}

/// Where the two decoders differ.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Disagreement {
    pub timestamp: i64,
    pub provider: Guid,
    pub id: u16,
    /// What differs: a descriptor field, a field name, or "event".
    pub what: String,
    pub native: String,
    pub windows: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Comparison {
    pub native_events: usize,
    pub windows_events: usize,
    pub paired: usize,
    pub fields_compared: usize,
    pub disagreements: Vec<Disagreement>,
}

/// Equal as text, or as numbers (decoders differ in hex or decimal).
fn same_value(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let num = |s: &str| crate::read::text::parse_u64(s.trim_matches('"'));
    matches!((num(a), num(b)), (Some(x), Some(y)) if x == y)
        || a.trim_matches('"')
            .eq_ignore_ascii_case(b.trim_matches('"'))
}

/// Pairs and compares; events only one decoder saw are disagreements too.
pub fn compare(native: &[DecodedEvent], windows: &[DecodedEvent]) -> Comparison {
    let mut by_key: HashMap<_, VecDeque<usize>> = HashMap::new();
    for (i, e) in native.iter().enumerate() {
        by_key.entry(e.key()).or_default().push_back(i);
    }
    let mut used = vec![false; native.len()];
    let mut c = Comparison {
        native_events: native.len(),
        windows_events: windows.len(),
        ..Comparison::default()
    };
    let differ = |e: &DecodedEvent, what: &str, n: String, w: String| Disagreement {
        timestamp: e.timestamp,
        provider: e.provider,
        id: e.id,
        what: what.to_string(),
        native: n,
        windows: w,
    };
    for w in windows {
        let queue = by_key.entry(w.key()).or_default();
        // Skip native events that are too early to ever pair.
        while let Some(&i) = queue.front() {
            if native[i].timestamp < w.timestamp.saturating_sub(TIME_TOLERANCE) {
                queue.pop_front();
            } else {
                break;
            }
        }
        let pick = queue
            .front()
            .copied()
            .filter(|&i| native[i].timestamp.abs_diff(w.timestamp) <= TIME_TOLERANCE as u64);
        let Some(i) = pick else {
            c.disagreements
                .push(differ(w, "event", "-".into(), "decoded".into()));
            continue;
        };
        queue.pop_front();
        used[i] = true;
        c.paired += 1;
        let n = &native[i];
        if n.version != w.version {
            c.disagreements.push(differ(
                w,
                "version",
                n.version.to_string(),
                w.version.to_string(),
            ));
        }
        if n.level != w.level {
            c.disagreements
                .push(differ(w, "level", n.level.to_string(), w.level.to_string()));
        }
        for (name, value) in &n.fields {
            if let Some((_, theirs)) = w.fields.iter().find(|(k, _)| k == name) {
                c.fields_compared += 1;
                if !same_value(value, theirs) {
                    c.disagreements
                        .push(differ(w, name, value.clone(), theirs.clone()));
                }
            }
        }
    }
    for (i, n) in native.iter().enumerate() {
        if !used[i] {
            c.disagreements
                .push(differ(n, "event", "decoded".into(), "-".into()));
        }
    }
    c.disagreements.sort_by_key(|d| d.timestamp);
    c
}
