//! Findings as events arrive: each rule fires as soon as it can (a
//! forbidden call when it begins, an entry point when it passes its budget,
//! RHS's deadlock and recovery messages when they are logged, a pending
//! operation when PendingTimeout passes), and at the end the same full
//! analysis as offline. Time passes with events and with [`Live::tick`],
//! which the capture calls every second: a hung entry point logs nothing,
//! and that is when the finding matters.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{analyze_spans, misuse_verdict, Analysis, Config};
use crate::model::{
    EntryPoint, Finding, Record, RecordKind, Rule, Severity, ThreadKind, Timestamp,
};
use crate::providers::usage::UsageTable;
use crate::source::{Observed, Pairer};

/// A finding reported live, and why now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LiveFinding {
    /// When it was reported (event or clock time).
    pub at: Timestamp,
    #[serde(flatten)]
    pub finding: Finding,
    /// For a call still running: how it stands.
    pub note: String,
}

/// One line, as `capture` prints findings while they fire.
impl std::fmt::Display for LiveFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::model::label;
        let g = &self.finding;
        let api = match (&g.api, g.usage) {
            (Some(a), Some(u)) => format!(" {a} ({u})"),
            (Some(a), None) => format!(" {a}"),
            _ => String::new(),
        };
        write!(
            f,
            "{}  {:<7} {:<17} {} {}{} pid {} tid {}: {}",
            self.at,
            label(&g.severity),
            label(&g.rule),
            g.resource.as_deref().unwrap_or("-"),
            g.entry_point.map_or("-".to_string(), |e| e.to_string()),
            api,
            g.pid,
            g.tid,
            self.note
        )
    }
}

#[derive(Debug, Clone)]
struct OpenEntry {
    resource: String,
    entry_point: EntryPoint,
    begin_ns: i64,
    budget_ns: i64,
    over_budget: bool,
}

#[derive(Debug, Clone)]
struct OpenCall {
    api: String,
    begin_ns: i64,
}

#[derive(Default)]
struct ThreadState {
    entries: Vec<OpenEntry>,
    calls: Vec<OpenCall>,
}

/// The live rules over a stream of observations.
pub struct Live<'t> {
    table: &'t UsageTable,
    cfg: Config,
    pairer: Pairer,
    threads: HashMap<(u32, u32), ThreadState>,
    workers: HashSet<(u32, u32)>,
    /// Resource -> (state, since), for pending timeouts.
    pending: BTreeMap<String, (String, i64, bool)>,
    /// Each resource's last entry point (pending timeouts are named after
    /// it: OnlineV2 for a V2 DLL).
    last_entry: HashMap<String, EntryPoint>,
    now_ns: i64,
    pub reported: Vec<LiveFinding>,
    /// Worker-only calls on threads not known as workers, held back for
    /// [`WORKER_GRACE_NS`]: a worker's first call can be logged before its
    /// creator announces it.
    held: Vec<((u32, u32), i64, LiveFinding)>,
}

/// How long a call on a thread not (yet) known as a worker waits for the
/// thread's WorkerCreate before it is reported.
pub const WORKER_GRACE_NS: i64 = 1_000_000_000;

impl<'t> Live<'t> {
    pub fn new(table: &'t UsageTable, cfg: Config) -> Live<'t> {
        Live {
            table,
            cfg,
            pairer: Pairer::new(),
            threads: HashMap::new(),
            workers: HashSet::new(),
            pending: BTreeMap::new(),
            last_entry: HashMap::new(),
            now_ns: i64::MIN,
            reported: Vec::new(),
            held: Vec::new(),
        }
    }

    /// Takes one observation; returns the findings it made reportable
    /// (those of time passing included).
    pub fn push(&mut self, o: Observed) -> Vec<LiveFinding> {
        let mut out = self.tick(o.time_ns());
        match o {
            Observed::Record(r) => {
                out.extend(self.record(&r));
                self.pairer.push(*r);
            }
            Observed::Seen(t) | Observed::Unmapped(t) => self.pairer.saw(t),
        }
        self.reported.extend(out.iter().cloned());
        out
    }

    /// Lets time pass to `now_ns` (never backwards): entry points over
    /// their budget and pending operations over PendingTimeout are
    /// reported once each.
    pub fn tick(&mut self, now_ns: i64) -> Vec<LiveFinding> {
        if now_ns <= self.now_ns {
            return Vec::new();
        }
        self.now_ns = now_ns;
        let mut out = Vec::new();
        let (due, held): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(_, until, _)| *until <= now_ns);
        self.held = held;
        out.extend(due.into_iter().map(|(_, _, f)| LiveFinding {
            at: Timestamp(now_ns),
            ..f
        }));
        for (&(pid, tid), state) in self.threads.iter_mut() {
            for e in state.entries.iter_mut().filter(|e| !e.over_budget) {
                if now_ns.saturating_sub(e.begin_ns) > e.budget_ns {
                    e.over_budget = true;
                    let call = state.calls.last();
                    out.push(LiveFinding {
                        at: Timestamp(now_ns),
                        finding: Finding {
                            rule: Rule::SlowEntryPoint,
                            severity: Severity::Warning,
                            resource: Some(e.resource.clone()),
                            entry_point: Some(e.entry_point),
                            api: call.map(|c| c.api.clone()),
                            usage: None,
                            thread_kind: Some(ThreadKind::RhsEntryPoint),
                            pid,
                            tid,
                            begin: Timestamp(e.begin_ns),
                            duration_ns: None,
                            never_returned: false,
                            status: None,
                            group: None,
                        },
                        note: format!(
                            "still running after {} ms (budget {} ms){}",
                            (now_ns.saturating_sub(e.begin_ns)) / 1_000_000,
                            e.budget_ns / 1_000_000,
                            call.map_or(String::new(), |c| format!(
                                ", in {} for {} ms",
                                c.api,
                                (now_ns.saturating_sub(c.begin_ns)) / 1_000_000
                            ))
                        ),
                    });
                }
            }
        }
        for (resource, (state, since, reported)) in self.pending.iter_mut() {
            if !*reported && now_ns.saturating_sub(*since) > self.cfg.pending_timeout_ns {
                *reported = true;
                let state_ep = EntryPoint::awaited_in(state);
                let ep = self
                    .last_entry
                    .get(resource)
                    .copied()
                    .filter(|e| e.same_call(state_ep))
                    .unwrap_or(state_ep);
                out.push(LiveFinding {
                    at: Timestamp(now_ns),
                    finding: Finding {
                        rule: Rule::PendingTimeout,
                        severity: Severity::Error,
                        resource: Some(resource.clone()),
                        entry_point: Some(ep),
                        api: None,
                        usage: None,
                        thread_kind: None,
                        pid: 0,
                        tid: 0,
                        begin: Timestamp(*since),
                        duration_ns: None,
                        never_returned: false,
                        status: None,
                        group: None,
                    },
                    note: format!(
                        "{state} for {} s with no status update",
                        (now_ns.saturating_sub(*since)) / 1_000_000_000
                    ),
                });
            }
        }
        // Deterministic order: threads are a hash map.
        out.sort_by_key(|f| (f.finding.begin, f.finding.tid));
        out
    }

    fn record(&mut self, r: &Record) -> Vec<LiveFinding> {
        let key = (r.pid.unwrap_or(0), r.tid.unwrap_or(0));
        match r.kind {
            RecordKind::EntryPointBegin => self.entry_begin(key, r),
            RecordKind::EntryPointEnd => {
                if let Some(state) = self.threads.get_mut(&key) {
                    if let Some(at) = state.entries.iter().rposition(|e| {
                        Some(e.entry_point) == r.entry_point
                            && r.resource.as_ref().is_none_or(|x| *x == e.resource)
                    }) {
                        state.entries.remove(at);
                    }
                }
            }
            RecordKind::ApiCallBegin => return self.call_begin(key, r).into_iter().collect(),
            RecordKind::ApiCallEnd => {
                if let Some(state) = self.threads.get_mut(&key) {
                    if let Some(at) = state
                        .calls
                        .iter()
                        .rposition(|c| r.api.as_ref().is_none_or(|a| *a == c.api))
                    {
                        state.calls.remove(at);
                    }
                }
            }
            RecordKind::WorkerCreate => {
                if let Some(t) = r.thread {
                    self.workers.insert((key.0, t));
                    // Its calls so far were a worker's.
                    self.held.retain(|(k, _, _)| *k != (key.0, t));
                }
            }
            RecordKind::WorkerExit => {
                self.workers.remove(&key);
            }
            RecordKind::ThreadStart | RecordKind::ThreadEnd => {
                if let Some(t) = r.thread {
                    let k = (r.process.or(r.pid).unwrap_or(0), t);
                    self.threads.remove(&k);
                    if r.kind == RecordKind::ThreadStart {
                        self.workers.remove(&k);
                    }
                }
            }
            RecordKind::ResourceState => {
                if let (Some(res), Some(state)) = (r.resource.clone(), r.state.clone()) {
                    if state.ends_with("Pending") {
                        self.pending.insert(res, (state, r.time_ns, false));
                    } else {
                        self.pending.remove(&res);
                    }
                }
            }
            RecordKind::DeadlockTimeout | RecordKind::RhsRestart => {
                return vec![self.rhs_report(key, r)]
            }
            _ => {}
        }
        Vec::new()
    }

    fn entry_begin(&mut self, key: (u32, u32), r: &Record) {
        if let (Some(ep), Some(resource)) = (r.entry_point, r.resource.clone()) {
            self.last_entry.insert(resource.clone(), ep);
            let budget_ns = self.cfg.budget(r.resource_type.as_deref(), ep);
            self.threads
                .entry(key)
                .or_default()
                .entries
                .push(OpenEntry {
                    resource,
                    entry_point: ep,
                    begin_ns: r.time_ns,
                    budget_ns,
                    over_budget: false,
                });
        }
    }

    /// A call begins: reported at once when the usage table forbids it
    /// where it is made.
    fn call_begin(&mut self, key: (u32, u32), r: &Record) -> Option<LiveFinding> {
        let api = r.api.clone()?;
        let state = self.threads.entry(key).or_default();
        let entry = state.entries.last().cloned();
        state.calls.push(OpenCall {
            api: api.clone(),
            begin_ns: r.time_ns,
        });
        let row = self.table.resolve(&api)?;
        let (kind, severity) = misuse_verdict(
            self.table,
            row.usage,
            entry.as_ref().map(|e| e.entry_point),
            self.workers.contains(&key),
        );
        let severity = severity?;
        let finding = LiveFinding {
            at: Timestamp(r.time_ns),
            finding: Finding {
                rule: Rule::ApiMisuse,
                severity,
                resource: entry.as_ref().map(|e| e.resource.clone()),
                entry_point: entry.as_ref().map(|e| e.entry_point),
                api: Some(row.name.clone()),
                usage: Some(row.usage),
                thread_kind: Some(kind),
                pid: key.0,
                tid: key.1,
                begin: Timestamp(r.time_ns),
                duration_ns: None,
                never_returned: false,
                status: None,
                group: None,
            },
            note: "call began".into(),
        };
        if kind == ThreadKind::Other && severity == Severity::Warning {
            self.held
                .push((key, r.time_ns.saturating_add(WORKER_GRACE_NS), finding));
            return None;
        }
        Some(finding)
    }

    /// RHS's deadlock report or recovery: about the entry point (and call)
    /// this node's events show open for that resource.
    fn rhs_report(&self, key: (u32, u32), r: &Record) -> LiveFinding {
        let open = self.threads.iter().find_map(|(&(pid, tid), s)| {
            s.entries
                .iter()
                .rev()
                .find(|e| {
                    r.resource.as_ref().is_none_or(|x| *x == e.resource)
                        && r.entry_point.is_none_or(|ep| ep.same_call(e.entry_point))
                })
                .map(|e| (pid, tid, e.clone(), s.calls.last().cloned()))
        });
        // RHS's recovery is about an instant; its deadlock report is about
        // the entry point (and call) that was blocking.
        let mut finding = Finding {
            rule: Rule::RhsRestart,
            severity: Severity::Error,
            resource: r
                .resource
                .clone()
                .or_else(|| open.as_ref().map(|o| o.2.resource.clone())),
            entry_point: None,
            api: None,
            usage: None,
            thread_kind: None,
            pid: open.as_ref().map_or(key.0, |o| o.0),
            tid: open.as_ref().map_or(key.1, |o| o.1),
            begin: Timestamp(r.time_ns),
            duration_ns: None,
            never_returned: false,
            status: None,
            group: None,
        };
        if r.kind == RecordKind::DeadlockTimeout {
            finding.rule = Rule::DeadlockTimeout;
            finding.entry_point = open.as_ref().map(|o| o.2.entry_point).or(r.entry_point);
            if let Some((_, _, entry, call)) = &open {
                finding.begin = Timestamp(entry.begin_ns);
                if let Some(c) = call {
                    let row = self.table.resolve(&c.api);
                    finding.api = Some(row.map_or(c.api.clone(), |row| row.name.clone()));
                    finding.usage = row.map(|row| row.usage);
                }
            }
        }
        LiveFinding {
            at: Timestamp(r.time_ns),
            finding,
            note: r.message.clone().unwrap_or_default(),
        }
    }

    /// The full analysis of everything seen, as offline.
    pub fn finish(self, name: &str) -> Analysis {
        analyze_spans(self.pairer.finish(), self.table, &self.cfg, name)
    }
}
