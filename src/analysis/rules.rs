//! The rules, one function each, over a node's timeline and the facts the
//! analysis computed for its calls.

use std::collections::{BTreeMap, HashSet};

use super::incidents::{deadlocked_span, Incident};
use super::resources::Resources;
use super::{Blocking, CallFacts, Config, Duration, EntryFacts, Reported, WaitIndex};
use crate::model::time::SECOND_NS;
use crate::model::{
    ApiSpan, EntryPoint, Evidence, Finding, Record, Rule, Severity, SpanVec, Spans, ThreadKind,
    Timestamp, UsageCode, WorkerIndex,
};
use crate::providers::usage::UsageTable;

/// The usage-table row, thread kind and blocking of one call.
pub(super) fn call_facts(
    spans: &Spans,
    call: &ApiSpan,
    table: &UsageTable,
    waits: &WaitIndex<'_>,
    workers: &WorkerIndex,
    end: i64,
) -> CallFacts {
    let row = table.resolve(&call.api);
    let entry = call.entry.map(|i| &spans.entries[i]);
    let from_stack = call.inferred.as_ref().and_then(|i| i.entry_point);
    // A call made on a ClusWorkerCreate worker while it lived (from the
    // thread's start, which may come before its creator says so).
    let thread_kind = match (entry, from_stack) {
        (Some(_), _) | (None, Some(_)) => ThreadKind::RhsEntryPoint,
        (None, None) => match workers.at(&spans.workers, call.pid, call.tid, call.begin_ns) {
            Some(_) => ThreadKind::ClusterWorker,
            None => ThreadKind::Other,
        },
    };
    CallFacts {
        api: row.map_or_else(|| call.api.clone(), |r| r.name.clone()),
        usage: row.map(|r| r.usage),
        thread_kind,
        duration: Duration::of(call.begin_ns, call.end_ns, call.end_lost_ns.is_some(), end),
        blocking: super::Blocked::new(waits.blocking(
            call.tid,
            call.begin_ns,
            call.end_ns.or(call.end_lost_ns).unwrap_or(end),
        )),
    }
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
    pub calls: &'a SpanVec<CallFacts>,
    pub entries: &'a SpanVec<EntryFacts>,
    pub table: &'a UsageTable,
    pub cfg: &'a Config,
    pub waits: &'a WaitIndex<'a>,
    pub workers: &'a WorkerIndex,
    pub resources: &'a Resources,
    /// One per deadlock report, in the same order.
    pub incidents: &'a [Incident],
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
            incident: None,
            cause: Vec::new(),
            target: None,
            stack: Vec::new(),
            dll: None,
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
            // An entry span of the logs names it; else the stack's RHS
            // frame does.
            let entry_point = entry
                .map(|e| e.entry_point)
                .or(call.inferred.as_ref().and_then(|i| i.entry_point));
            let (kind, severity) = misuse_verdict(
                self.table,
                usage,
                entry_point,
                facts.thread_kind == ThreadKind::ClusterWorker,
            );
            let Some(severity) = severity else { continue };
            let worker = || {
                self.workers
                    .at(&self.spans.workers, call.pid, call.tid, call.begin_ns)
            };
            let resource = entry
                .map(|e| e.resource.to_string())
                .or_else(|| worker().and_then(|w| w.resource.clone()));
            let mut evidence = vec![call.evidence];
            evidence.extend(entry.map(|e| e.evidence));
            out.push(self.report(
                Finding {
                    rule: Rule::ApiMisuse,
                    severity,
                    resource,
                    entry_point,
                    api: Some(facts.api.clone()),
                    usage: Some(usage),
                    thread_kind: Some(kind),
                    pid: call.pid,
                    tid: call.tid,
                    begin: Timestamp(call.begin_ns),
                    duration_ns: facts.duration.ns(),
                    never_returned: facts.duration.never_returned(),
                    status: None,
                    group: None,
                },
                Some(facts.blocking.get().into_owned()),
                evidence,
            ));
            if let Some(r) = out.last_mut() {
                r.target.clone_from(&call.target);
                if let Some(i) = &call.inferred {
                    r.stack = super::stacks::describe(&i.stack);
                    r.dll.clone_from(&i.dll);
                }
            }
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
            // Seen only in the cluster's logs, a call is a hang once it has
            // gone unanswered past its DeadlockTimeout; the DLL's own events
            // say more, sooner.
            let hang_after = if e.seen_by.dll {
                self.cfg.hang_after_ns
            } else {
                super::resources::deadlock_timeout(self.resources, Some(&e.resource), self.cfg).ns
            };
            let (rule, severity) = match facts.duration {
                d if d.never_returned() && end - e.begin_ns > hang_after => {
                    (Rule::Hang, Severity::Error)
                }
                Duration::Returned(ns) if ns > facts.budget_ns => {
                    (Rule::SlowEntryPoint, Severity::Warning)
                }
                _ => continue,
            };
            out.push(self.report(
                Finding {
                    rule,
                    severity,
                    resource: Some(e.resource.to_string()),
                    entry_point: Some(e.entry_point),
                    api: None,
                    usage: None,
                    thread_kind: None,
                    pid: e.pid,
                    tid: e.tid,
                    begin: Timestamp(e.begin_ns),
                    duration_ns: facts.duration.ns(),
                    never_returned: !facts.duration.returned(),
                    status: None,
                    group: None,
                },
                Some(facts.blocking.get().into_owned()),
                vec![e.evidence],
            ));
        }
        out
    }

    /// `deadlock-timeout`: the deadlock monitor's reports, tied to the
    /// entry point and call that were blocking, each with its incident.
    pub fn deadlocks(&self) -> Vec<Reported> {
        let spans = self.spans;
        let mut out = Vec::new();
        for (d, incident) in spans.deadlocks.iter().zip(self.incidents) {
            let span = deadlocked_span(spans, d);
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
            let mut r = self.report(
                Finding {
                    rule: Rule::DeadlockTimeout,
                    severity: Severity::Error,
                    resource: incident.resource.clone(),
                    // The span's own name (OnlineV2), RHS's only without one.
                    entry_point: incident.entry_point,
                    api: facts.map(|f| f.api.clone()),
                    usage: facts.and_then(|f| f.usage),
                    thread_kind: None,
                    pid: span.map_or(d.pid.unwrap_or(0), |s| s.pid),
                    tid: span.map_or(d.tid.unwrap_or(0), |s| s.tid),
                    begin: Timestamp(span.map_or(d.time_ns, |s| s.begin_ns)),
                    // Blocked from its begin until the monitor fired.
                    duration_ns: incident.blocked_ns,
                    never_returned: span.is_some_and(|s| s.end_ns().is_none()),
                    status: None,
                    group: self
                        .resources
                        .get(incident.resource.as_deref().unwrap_or(""))
                        .and_then(|f| f.group.clone()),
                },
                span.map(|s| self.waits.blocking(s.tid, s.begin_ns, d.time_ns)),
                evidence,
            );
            r.incident = Some(Box::new(incident.clone()));
            r.target = call.and_then(|c| c.target.clone());
            out.push(r);
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
                status: None,
                group: None,
            },
            None,
            vec![r.evidence],
        )
    }

    /// `rhs-restart`: RHS terminating its process to recover, as RHS says
    /// it, or as event 1146 does where no RHS line within a minute before
    /// says it.
    pub fn restarts(&self) -> Vec<Reported> {
        let said = |t: i64| {
            self.spans
                .restarts
                .iter()
                .any(|r| r.time_ns <= t && t - r.time_ns <= 60 * SECOND_NS)
        };
        self.spans
            .restarts
            .iter()
            .chain(self.events(1146).filter(|e| !said(e.time_ns)))
            .map(|r| self.at_message(Rule::RhsRestart, r, None))
            .collect()
    }

    /// The cluster's events of one id.
    fn events(&self, id: u32) -> impl Iterator<Item = &Record> {
        self.spans.events.iter().filter(move |r| {
            r.kind == crate::model::RecordKind::ClusterEvent && r.event == Some(id)
        })
    }

    /// `health-check-failed`: IsAlive or LooksAlive said the resource is
    /// not healthy.
    pub fn health_checks(&self) -> Vec<Reported> {
        self.spans
            .health_failures
            .iter()
            .map(|r| self.at_message(Rule::HealthCheckFailed, r, r.entry_point))
            .collect()
    }

    /// `call-failed`: an entry point call that failed, as RHS and RCM log
    /// it (their two lines of one failure are one finding, RCM's naming
    /// the control code and the status).
    pub fn call_failures(&self) -> Vec<Reported> {
        let mut out: Vec<Reported> = Vec::new();
        // When each finding's failure was logged.
        let mut failed_at: Vec<i64> = Vec::new();
        for r in self
            .spans
            .events
            .iter()
            .filter(|r| r.kind == crate::model::RecordKind::CallReturned)
        {
            let ep = r.entry_point;
            let same = out.iter_mut().zip(&failed_at).rev().find_map(|(f, &t)| {
                (f.finding.resource == r.resource
                    && f.finding
                        .entry_point
                        .zip(ep)
                        .is_some_and(|(a, b)| a.same_call(b))
                    && (r.time_ns - t).abs() <= 2 * SECOND_NS)
                    .then_some(f)
            });
            if let Some(f) = same {
                f.finding.status = f.finding.status.or(r.status);
                f.finding.api = f.finding.api.take().or_else(|| self.control_code(r));
                f.evidence.push(r.evidence);
                continue;
            }
            let mut f = self.at_message(Rule::CallFailed, r, ep);
            f.finding.status = r.status;
            f.finding.api = self.control_code(r);
            // The span it ended, for when the call began.
            if let Some(s) = self.spans.entries.iter().rev().find(|s| {
                s.end_ns() == Some(r.time_ns) && Some(&*s.resource) == r.resource.as_deref()
            }) {
                f.finding.begin = Timestamp(s.begin_ns);
                f.finding.duration_ns = Some(r.time_ns - s.begin_ns);
                (f.finding.pid, f.finding.tid) = (s.pid, s.tid);
                f.evidence.push(s.evidence);
            }
            out.push(f);
            failed_at.push(r.time_ns);
        }
        out
    }

    /// A control code as the usage table names it (RCM logs
    /// `STORAGE_GET_DIRTY` for CLUSCTL_RESOURCE_STORAGE_GET_DIRTY).
    fn control_code(&self, r: &Record) -> Option<String> {
        let code = r.api.as_deref()?;
        let row = self
            .table
            .resolve(code)
            .or_else(|| self.table.resolve(&format!("CLUSCTL_RESOURCE_{code}")))
            .or_else(|| self.table.resolve(&format!("CLUSCTL_RESOURCE_TYPE_{code}")));
        Some(row.map_or_else(|| code.to_string(), |row| row.name.clone()))
    }

    /// `resource-failed`: event 1069, with what led to it.
    pub fn resource_failures(&self) -> Vec<Reported> {
        self.events(1069)
            .map(|r| {
                let mut f = self.at_message(Rule::ResourceFailed, r, None);
                f.finding.status = r.status;
                f.finding.group.clone_from(&r.group);
                f.cause = self.cause(r.resource.as_deref(), r.time_ns);
                f
            })
            .collect()
    }

    /// What the timeline shows happened to a resource in the ten minutes
    /// before `time_ns`: its failed calls and checks, deadlocks, restarts.
    fn cause(&self, resource: Option<&str>, time_ns: i64) -> Vec<String> {
        let Some(resource) = resource else {
            return Vec::new();
        };
        let window = |t: i64| t <= time_ns && time_ns - t <= 600 * SECOND_NS;
        let mut out: Vec<(i64, String)> = Vec::new();
        for d in &self.spans.deadlocks {
            if d.resource.as_deref() == Some(resource) && window(d.time_ns) {
                out.push((
                    d.time_ns,
                    format!(
                        "{}: RHS's deadlock monitor: {}",
                        Timestamp(d.time_ns),
                        d.message.as_deref().unwrap_or("the call timed out")
                    ),
                ));
            }
        }
        for h in &self.spans.health_failures {
            if h.resource.as_deref() == Some(resource) && window(h.time_ns) {
                let ep = h
                    .entry_point
                    .map_or("a health check".into(), |e| e.to_string());
                out.push((h.time_ns, format!("{}: {ep} failed", Timestamp(h.time_ns))));
            }
        }
        for e in &self.spans.events {
            let ours = e.resource.as_deref() == Some(resource) && window(e.time_ns);
            if ours && e.kind == crate::model::RecordKind::CallReturned {
                let ep = e.entry_point.map_or("a call".into(), |e| e.to_string());
                let status = e
                    .status
                    .map_or(String::new(), |s| format!(" with status {s}"));
                out.push((
                    e.time_ns,
                    format!("{}: {ep} failed{status}", Timestamp(e.time_ns)),
                ));
            }
        }
        out.sort();
        out.dedup_by(|a, b| a.1 == b.1);
        out.into_iter().map(|(_, s)| s).collect()
    }

    /// `role-failed`: events 1205 and 1254.
    pub fn role_failures(&self) -> Vec<Reported> {
        self.events(1205)
            .chain(self.events(1254))
            .map(|r| {
                let mut f = self.at_message(Rule::RoleFailed, r, None);
                f.finding.group.clone_from(&r.group);
                f.finding.severity = if r.event == Some(1254) {
                    Severity::Error
                } else {
                    Severity::Warning
                };
                f
            })
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
        // RHS processes: where the DLL's entry points ran.
        // Inserted one by one: collecting reserves room for every span (a
        // table of millions, its pages touched, for a few process ids).
        let mut rhs: HashSet<u32> = HashSet::new();
        for e in &self.spans.entries {
            rhs.insert(e.pid);
        }
        let in_rhs = |s: &Record| s.pid.is_some_and(|p| p != 0 && rhs.contains(&p));
        let mut out = Vec::new();
        for list in by_resource.values() {
            for (i, s) in list.iter().enumerate() {
                let Some(state) = s.state.as_deref().filter(|x| x.ends_with("Pending")) else {
                    continue;
                };
                let next = list.get(i + 1).map_or(self.end(), |n| n.time_ns);
                let pending_timeout = super::resources::pending_timeout(
                    self.resources,
                    s.resource.as_deref(),
                    self.cfg,
                )
                .ns;
                if next - s.time_ns <= pending_timeout {
                    continue;
                }
                let state_ep = EntryPoint::awaited_in(state);
                // Named as the DLL's entry point that went pending
                // (OnlineV2 for a V2 DLL), where the timeline has it.
                let ep = self
                    .spans
                    .entries
                    .iter()
                    .rev()
                    .find(|e| {
                        Some(&*e.resource) == s.resource.as_deref()
                            && e.entry_point.same_call(state_ep)
                            && e.begin_ns <= s.time_ns
                    })
                    .map_or(state_ep, |e| e.entry_point);
                let mut f = self.at_message(Rule::PendingTimeout, s, Some(ep));
                // RCM restating the state after the DLL reported it is no
                // update from the DLL: the finding names the DLL's thread
                // that reported it last.
                let reporter = list[..=i]
                    .iter()
                    .rev()
                    .take_while(|r| r.state.as_deref() == Some(state))
                    .find(|r| in_rhs(r));
                if let Some(r) = reporter.filter(|_| !in_rhs(s)) {
                    (f.finding.pid, f.finding.tid) = (r.pid.unwrap_or(0), r.tid.unwrap_or(0));
                    f.evidence.push(r.evidence);
                }
                out.push(f);
            }
        }
        out
    }
}
