//! The rules, one function each, over a node's timeline and the facts the
//! analysis computed for its calls.

use std::collections::BTreeMap;

use super::{Blocking, CallFacts, Config, Duration, EntryFacts, Reported, WaitIndex};
use crate::model::{
    ApiSpan, EntryPoint, EntrySpan, Evidence, Finding, Record, Rule, Severity, Spans, ThreadKind,
    Timestamp, UsageCode,
};
use crate::providers::usage::UsageTable;

/// The usage-table row, thread kind and blocking of one call.
pub(super) fn call_facts(
    spans: &Spans,
    call: &ApiSpan,
    table: &UsageTable,
    waits: &WaitIndex<'_>,
    end: i64,
) -> CallFacts {
    let row = table.resolve(&call.api);
    let entry = call.entry.map(|i| &spans.entries[i]);
    let thread_kind = match (entry, on_worker(spans, call)) {
        (Some(_), _) => ThreadKind::RhsEntryPoint,
        (None, true) => ThreadKind::ClusterWorker,
        (None, false) => ThreadKind::Other,
    };
    CallFacts {
        api: row.map_or_else(|| call.api.clone(), |r| r.name.clone()),
        usage: row.map(|r| r.usage),
        thread_kind,
        duration: Duration::of(call.begin_ns, call.end_ns, call.end_lost_ns.is_some(), end),
        blocking: waits.blocking(
            call.tid,
            call.begin_ns,
            call.end_ns.or(call.end_lost_ns).unwrap_or(end),
        ),
    }
}

/// Whether a call was made on a ClusWorkerCreate worker while it lived
/// (from the thread's start, which may come before its creator says so).
fn on_worker(spans: &Spans, call: &ApiSpan) -> bool {
    spans
        .workers
        .iter()
        .any(|w| w.is(call.pid, call.tid, call.begin_ns))
}

/// What kind of thread a call was made on, and how bad the call is there
/// (None: allowed): inside an entry point, on a ClusWorkerCreate worker, or
/// elsewhere. Offline and live analysis both judge calls with this.
pub fn misuse_verdict(
    table: &UsageTable,
    usage: UsageCode,
    entry_point: Option<EntryPoint>,
    on_worker: bool,
) -> (ThreadKind, Option<Severity>) {
    match (entry_point, on_worker) {
        (Some(ep), _) => (
            ThreadKind::RhsEntryPoint,
            table.forbidden_in(usage, ep).then_some(Severity::Error),
        ),
        (None, true) => (
            ThreadKind::ClusterWorker,
            (usage == UsageCode::DoNotUse).then_some(Severity::Error),
        ),
        (None, false) => (
            ThreadKind::Other,
            match usage {
                UsageCode::DoNotUse => Some(Severity::Error),
                UsageCode::WorkerThreadOnly => Some(Severity::Warning),
                UsageCode::SomeEntryPointsOkay => None,
            },
        ),
    }
}

/// What every rule reads.
pub(super) struct Context<'a> {
    pub spans: &'a Spans,
    pub calls: &'a [CallFacts],
    pub entries: &'a [EntryFacts],
    pub table: &'a UsageTable,
    pub cfg: &'a Config,
    pub waits: &'a WaitIndex<'a>,
    pub trace: &'a str,
}

impl Context<'_> {
    fn report(
        &self,
        finding: Finding,
        blocking: Option<Blocking>,
        evidence: Vec<Evidence>,
    ) -> Reported {
        Reported {
            trace: self.trace.to_string(),
            node: None,
            finding,
            blocking,
            evidence,
        }
    }

    fn end(&self) -> i64 {
        self.spans.last_ns.unwrap_or(0)
    }

    /// `api-misuse`: API calls against the usage table.
    pub fn misuse(&self) -> Vec<Reported> {
        let mut out = Vec::new();
        for call in &self.spans.calls {
            let facts = &self.calls[call.id];
            let Some(usage) = facts.usage else { continue };
            let entry = call.entry.map(|i| &self.spans.entries[i]);
            let (kind, severity) = misuse_verdict(
                self.table,
                usage,
                entry.map(|e| e.entry_point),
                facts.thread_kind == ThreadKind::ClusterWorker,
            );
            let Some(severity) = severity else { continue };
            let worker = || {
                self.spans
                    .workers
                    .iter()
                    .find(|w| w.is(call.pid, call.tid, call.begin_ns))
            };
            let resource = entry
                .map(|e| e.resource.clone())
                .or_else(|| worker().and_then(|w| w.resource.clone()));
            let mut evidence = vec![call.evidence];
            evidence.extend(entry.map(|e| e.evidence));
            out.push(self.report(
                Finding {
                    rule: Rule::ApiMisuse,
                    severity,
                    resource,
                    entry_point: entry.map(|e| e.entry_point),
                    api: Some(facts.api.clone()),
                    usage: Some(usage),
                    thread_kind: Some(kind),
                    pid: call.pid,
                    tid: call.tid,
                    begin: Timestamp(call.begin_ns),
                    duration_ns: facts.duration.ns,
                    never_returned: facts.duration.never_returned(),
                },
                Some(facts.blocking.clone()),
                evidence,
            ));
        }
        out
    }

    /// `hang` and `slow-entry-point`: entry points that never returned, or
    /// returned late.
    pub fn entry_points(&self) -> Vec<Reported> {
        let end = self.end();
        let mut out = Vec::new();
        for e in &self.spans.entries {
            let facts = &self.entries[e.id];
            let (rule, severity) = match facts.duration {
                d if d.never_returned() && end - e.begin_ns > self.cfg.hang_after_ns => {
                    (Rule::Hang, Severity::Error)
                }
                Duration {
                    ns: Some(ns),
                    returned: true,
                } if ns > facts.budget_ns => (Rule::SlowEntryPoint, Severity::Warning),
                _ => continue,
            };
            out.push(self.report(
                Finding {
                    rule,
                    severity,
                    resource: Some(e.resource.clone()),
                    entry_point: Some(e.entry_point),
                    api: None,
                    usage: None,
                    thread_kind: None,
                    pid: e.pid,
                    tid: e.tid,
                    begin: Timestamp(e.begin_ns),
                    duration_ns: facts.duration.ns,
                    never_returned: !facts.duration.returned,
                },
                Some(facts.blocking.clone()),
                vec![e.evidence],
            ));
        }
        out
    }

    /// `deadlock-timeout`: the deadlock monitor's reports, tied to the
    /// entry point and call that were blocking.
    pub fn deadlocks(&self) -> Vec<Reported> {
        let spans = self.spans;
        let mut out = Vec::new();
        for d in &spans.deadlocks {
            let open_at =
                |s: &EntrySpan| s.begin_ns <= d.time_ns && s.end_ns.is_none_or(|x| x > d.time_ns);
            let span = spans.entries.iter().rev().find(|s| {
                open_at(s)
                    && d.resource.as_ref().is_none_or(|r| *r == s.resource)
                    && d.entry_point.is_none_or(|ep| ep.same_call(s.entry_point))
            });
            let call = span.and_then(|s| {
                spans.calls.iter().rev().find(|c| {
                    c.entry == Some(s.id)
                        && c.begin_ns <= d.time_ns
                        && c.end_ns.is_none_or(|x| x > d.time_ns)
                })
            });
            let facts = call.map(|c| &self.calls[c.id]);
            let mut evidence = vec![d.evidence];
            evidence.extend(span.map(|s| s.evidence));
            evidence.extend(call.map(|c| c.evidence));
            out.push(
                self.report(
                    Finding {
                        rule: Rule::DeadlockTimeout,
                        severity: Severity::Error,
                        resource: d
                            .resource
                            .clone()
                            .or_else(|| span.map(|s| s.resource.clone())),
                        // The span's own name (OnlineV2), RHS's only without one.
                        entry_point: span.map(|s| s.entry_point).or(d.entry_point),
                        api: facts.map(|f| f.api.clone()),
                        usage: facts.and_then(|f| f.usage),
                        thread_kind: None,
                        pid: span.map_or(d.pid.unwrap_or(0), |s| s.pid),
                        tid: span.map_or(d.tid.unwrap_or(0), |s| s.tid),
                        begin: Timestamp(span.map_or(d.time_ns, |s| s.begin_ns)),
                        // Blocked from its begin until the monitor fired.
                        duration_ns: span.map(|s| d.time_ns - s.begin_ns),
                        never_returned: span.is_some_and(|s| s.end_ns.is_none()),
                    },
                    span.map(|s| self.waits.blocking(s.tid, s.begin_ns, d.time_ns)),
                    evidence,
                ),
            );
        }
        out
    }

    /// A finding about an instant a message reports, not a call.
    fn at_message(&self, rule: Rule, r: &Record, entry_point: Option<EntryPoint>) -> Reported {
        self.report(
            Finding {
                rule,
                severity: Severity::Error,
                resource: r.resource.clone(),
                entry_point,
                api: None,
                usage: None,
                thread_kind: None,
                pid: r.pid.unwrap_or(0),
                tid: r.tid.unwrap_or(0),
                begin: Timestamp(r.time_ns),
                duration_ns: None,
                never_returned: false,
            },
            None,
            vec![r.evidence],
        )
    }

    /// `rhs-restart`: RHS terminating its process to recover.
    pub fn restarts(&self) -> Vec<Reported> {
        self.spans
            .restarts
            .iter()
            .map(|r| self.at_message(Rule::RhsRestart, r, None))
            .collect()
    }

    /// `pending-timeout`: a resource whose last status is a pending one,
    /// with no further update for PendingTimeout.
    pub fn pending_timeouts(&self) -> Vec<Reported> {
        let mut by_resource: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
        for s in &self.spans.statuses {
            if let Some(r) = s.resource.as_deref() {
                by_resource.entry(r).or_default().push(s);
            }
        }
        let mut out = Vec::new();
        for list in by_resource.values() {
            for (i, s) in list.iter().enumerate() {
                let Some(state) = s.state.as_deref().filter(|x| x.ends_with("Pending")) else {
                    continue;
                };
                let next = list.get(i + 1).map_or(self.end(), |n| n.time_ns);
                if next - s.time_ns > self.cfg.pending_timeout_ns {
                    let state_ep = if state.starts_with("Offline") {
                        EntryPoint::Offline
                    } else {
                        EntryPoint::Online
                    };
                    // Named as the DLL's entry point that went pending
                    // (OnlineV2 for a V2 DLL), where the timeline has it.
                    let ep = self
                        .spans
                        .entries
                        .iter()
                        .rev()
                        .find(|e| {
                            Some(e.resource.as_str()) == s.resource.as_deref()
                                && e.entry_point.same_call(state_ep)
                                && e.begin_ns <= s.time_ns
                        })
                        .map_or(state_ep, |e| e.entry_point);
                    out.push(self.at_message(Rule::PendingTimeout, s, Some(ep)));
                }
            }
        }
        out
    }
}
