//! RHS's recoveries as one story each: the call that blocked (or the
//! resource that crashed), how long it blocked against which threshold,
//! what RHS and RCM did next, and which other resources went down with the
//! RHS process.

use super::resources::{Resources, Threshold};
use super::Config;
use crate::model::time::SECOND_NS;
use crate::model::{EntryPoint, EntrySpan, Evidence, Record, RecordKind, Spans, Timestamp};

/// How long after RHS's deadlock report (or its death) the cluster's
/// reactions belong to the same incident.
const AFTERMATH_NS: i64 = 60 * SECOND_NS;

/// One RHS recovery.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Incident {
    /// The RHS process that was terminated, where a line says.
    pub rhs_pid: Option<u32>,
    /// The resource that caused it.
    pub resource: Option<String>,
    pub resource_type: Option<String>,
    pub dll: Option<String>,
    pub entry_point: Option<EntryPoint>,
    /// When RCM issued the call, and when the DLL was entered, where known.
    pub issued: Option<Timestamp>,
    pub began: Option<Timestamp>,
    /// When RHS's deadlock monitor fired (or RHS died).
    pub fired: Timestamp,
    /// How long the call blocked until then.
    pub blocked_ns: Option<i64>,
    /// The DeadlockTimeout it was held to.
    pub threshold: Threshold,
    /// RHS's own words.
    pub rhs_message: Option<String>,
    /// What RHS and RCM did next, in order.
    pub then: Vec<Step>,
    /// Resources restarted with the RHS process, the offender aside.
    pub collateral: Vec<String>,
    /// Whether RCM moved the offender to a separate RHS process.
    pub separate_monitor: bool,
    /// What the DLL's owner should do.
    pub advice: String,
    #[serde(skip)]
    pub evidence: Vec<Evidence>,
}

/// One thing the cluster did after the call blocked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    pub at: Timestamp,
    pub what: String,
}

/// What to do about a call that blocked RHS.
pub fn advice(ep: Option<EntryPoint>, call_known: bool) -> String {
    crate::model::advice::rule_fix(crate::model::Rule::DeadlockTimeout, ep, call_known)
}

/// The open entry-point span a deadlock report is about.
pub fn deadlocked_span<'s>(spans: &'s Spans, d: &Record) -> Option<&'s EntrySpan> {
    let open_at =
        |s: &EntrySpan| s.begin_ns <= d.time_ns && s.end_ns().is_none_or(|x| x > d.time_ns);
    spans.entries.iter().rev().find(|s| {
        open_at(s)
            && d.resource.as_deref().is_none_or(|r| r == &*s.resource)
            && d.entry_point.is_none_or(|ep| ep.same_call(s.entry_point))
    })
}

/// The cluster's reactions in `[from, from + AFTERMATH_NS]`.
fn aftermath(spans: &Spans, from: i64) -> impl Iterator<Item = &Record> {
    spans
        .events
        .iter()
        .chain(&spans.restarts)
        .filter(move |r| r.time_ns >= from && r.time_ns <= from + AFTERMATH_NS)
}

/// Words for a reaction, or None when it is not one.
fn step(r: &Record, offender: Option<&str>) -> Option<String> {
    let res = r.resource.as_deref().unwrap_or("?");
    Some(match (r.kind, r.event) {
        (RecordKind::RhsRestart, _) => format!("RHS cleaned up {res}'s call and terminated"),
        (RecordKind::WerReport, _) => format!(
            "RHS submitted a WER report ({})",
            r.state.as_deref().unwrap_or("?")
        ),
        (RecordKind::ClusterEvent, Some(1230)) => {
            format!("event 1230: {res} exceeded its time-out")
        }
        (RecordKind::ClusterEvent, Some(1146)) => {
            "event 1146: the RHS process was terminated and will be restarted".to_string()
        }
        (RecordKind::ClusterEvent, Some(1069)) => format!("event 1069: {res} failed"),
        (RecordKind::SeparateMonitor, _) => format!("RCM moved {res} to a separate monitor"),
        (RecordKind::MonitorRestart, _) if Some(res) != offender => {
            format!("RCM restarted {res} with the RHS process")
        }
        (RecordKind::MonitorRestart, _) => format!("RCM restarted {res} in a new RHS process"),
        _ => return None,
    })
}

/// Every incident of a timeline, by deadlock report.
pub fn incidents(spans: &Spans, resources: &Resources, cfg: &Config) -> Vec<Incident> {
    spans
        .deadlocks
        .iter()
        .map(|d| incident(spans, resources, cfg, d))
        .collect()
}

fn incident(spans: &Spans, resources: &Resources, cfg: &Config, d: &Record) -> Incident {
    let span = deadlocked_span(spans, d);
    let resource = d
        .resource
        .clone()
        .or_else(|| span.map(|s| s.resource.to_string()));
    let offender = resource.as_deref();
    let facts = offender.and_then(|r| resources.get(r));
    let threshold = super::resources::deadlock_timeout(resources, offender, cfg);
    let mut then = Vec::new();
    let mut collateral: Vec<String> = Vec::new();
    let mut separate_monitor = false;
    let mut evidence = vec![d.evidence];
    let mut dll = facts.and_then(|f| f.dll.clone());
    let mut resource_type = facts.and_then(|f| f.resource_type.clone());
    let mut reactions: Vec<&Record> = aftermath(spans, d.time_ns)
        .filter(|r| match r.kind {
            // RHS's own lines come from the RHS process that hung.
            RecordKind::RhsRestart | RecordKind::WerReport => r.pid == d.pid,
            _ => true,
        })
        .collect();
    reactions.sort_by_key(|r| r.time_ns);
    for r in reactions {
        let Some(what) = step(r, offender) else {
            continue;
        };
        let about_offender = r.resource.as_deref() == offender;
        match r.kind {
            RecordKind::ClusterEvent if r.event == Some(1230) && about_offender => {
                dll = dll.or_else(|| r.image.clone());
                resource_type = resource_type.or_else(|| r.resource_type.clone());
            }
            RecordKind::SeparateMonitor if about_offender => {
                if separate_monitor {
                    continue; // RCM says it twice
                }
                separate_monitor = true;
            }
            RecordKind::MonitorRestart if !about_offender => {
                let res = r.resource.clone().unwrap_or_default();
                if collateral.contains(&res) {
                    continue; // the restart and the reattach of one resource
                }
                collateral.push(res);
            }
            RecordKind::MonitorRestart if then.iter().any(|s: &Step| s.what == what) => continue,
            _ => {}
        }
        evidence.push(r.evidence);
        then.push(Step {
            at: Timestamp(r.time_ns),
            what,
        });
    }
    let entry_point = span.map(|s| s.entry_point).or(d.entry_point);
    let call_known = span.is_some_and(|s| {
        spans.calls.iter().any(|c| {
            c.entry == Some(s.id)
                && c.begin_ns <= d.time_ns
                && c.end_ns.is_none_or(|e| e > d.time_ns)
        })
    });
    Incident {
        rhs_pid: d.pid,
        resource,
        resource_type,
        dll,
        entry_point,
        issued: span.and_then(|s| s.issued_ns()).map(Timestamp),
        began: span.map(|s| Timestamp(s.begin_ns)),
        fired: Timestamp(d.time_ns),
        blocked_ns: span.map(|s| d.time_ns - s.begin_ns),
        threshold,
        rhs_message: d.message.clone(),
        then,
        collateral,
        separate_monitor,
        advice: advice(entry_point, call_known),
        evidence,
    }
}
