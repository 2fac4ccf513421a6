//! Pairs begin/end records into spans, per (pid, tid): entry points and API
//! calls nest; a missing end leaves a span open (it never returned); an end
//! with no begin (the trace started mid-call) is counted and dropped; a
//! thread that exits closes what it had open, so a reused thread id starts
//! clean.

use std::collections::HashMap;

use crate::model::{EntryPoint, Evidence, Record, RecordKind};

pub type ThreadKey = (u32, u32);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntrySpan {
    pub id: usize,
    pub pid: u32,
    pub tid: u32,
    pub resource: String,
    pub resource_type: Option<String>,
    pub entry_point: EntryPoint,
    pub begin_ns: i64,
    /// None: it never returned within the trace.
    pub end_ns: Option<i64>,
    pub status: Option<u64>,
    /// The entry point this one was called inside, if nested.
    pub parent: Option<usize>,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiSpan {
    pub id: usize,
    pub pid: u32,
    pub tid: u32,
    pub api: String,
    pub target: Option<String>,
    pub begin_ns: i64,
    pub end_ns: Option<i64>,
    pub status: Option<u64>,
    /// Innermost entry point open on the thread when the call began.
    pub entry: Option<usize>,
    pub evidence: Evidence,
}

/// ClusWorkerCreate: `creator` made worker thread `tid`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Worker {
    pub pid: u32,
    pub tid: u32,
    pub creator: u32,
    pub resource: Option<String>,
    pub created_ns: i64,
    pub exited_ns: Option<i64>,
}

/// A stretch of a thread off the CPU: switched out at `out_ns`, readied at
/// `ready_ns` (when known), back in at `in_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Wait {
    pub tid: u32,
    pub out_ns: i64,
    pub ready_ns: Option<i64>,
    pub in_ns: Option<i64>,
    pub wait_reason: u8,
    /// The thread whose action readied it.
    pub readied_by: Option<u32>,
}

/// Everything paired from one trace's records.
#[derive(Debug, Default)]
pub struct Spans {
    pub entries: Vec<EntrySpan>,
    pub calls: Vec<ApiSpan>,
    pub workers: Vec<Worker>,
    pub waits: Vec<Wait>,
    /// Records that are not spans but rules need.
    pub deadlocks: Vec<Record>,
    pub restarts: Vec<Record>,
    pub statuses: Vec<Record>,
    pub messages: Vec<Record>,
    /// Ends that had no begin (trace started mid-call), by kind.
    pub unmatched_ends: usize,
    /// Context switches seen (0: blocking is wall-clock only).
    pub context_switches: usize,
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
}

#[derive(Default)]
struct ThreadState {
    entries: Vec<usize>,
    calls: Vec<usize>,
}

/// Builds spans from records in time order.
#[derive(Default)]
pub struct Pairer {
    spans: Spans,
    threads: HashMap<ThreadKey, ThreadState>,
    workers: HashMap<ThreadKey, usize>,
    open_waits: HashMap<u32, usize>,
}

impl Pairer {
    pub fn new() -> Pairer {
        Pairer::default()
    }

    /// Notes the time of any event, so the trace's end is known.
    pub fn saw(&mut self, time_ns: i64) {
        let s = &mut self.spans;
        s.first_ns = Some(s.first_ns.map_or(time_ns, |f| f.min(time_ns)));
        s.last_ns = Some(s.last_ns.map_or(time_ns, |l| l.max(time_ns)));
    }

    pub fn push(&mut self, r: Record) {
        self.saw(r.time_ns);
        let key = (r.pid.unwrap_or(0), r.tid.unwrap_or(0));
        match r.kind {
            RecordKind::EntryPointBegin => {
                let (Some(ep), Some(resource)) = (r.entry_point, r.resource.clone()) else {
                    return;
                };
                let state = self.threads.entry(key).or_default();
                let id = self.spans.entries.len();
                self.spans.entries.push(EntrySpan {
                    id,
                    pid: key.0,
                    tid: key.1,
                    resource,
                    resource_type: r.resource_type,
                    entry_point: ep,
                    begin_ns: r.time_ns,
                    end_ns: None,
                    status: None,
                    parent: state.entries.last().copied(),
                    evidence: r.evidence,
                });
                state.entries.push(id);
            }
            RecordKind::EntryPointEnd => {
                let state = self.threads.entry(key).or_default();
                // The innermost open span of this entry point and resource;
                // spans above it that never ended stay open.
                let entries = &self.spans.entries;
                let at = state.entries.iter().rposition(|&i| {
                    Some(entries[i].entry_point) == r.entry_point
                        && r.resource
                            .as_ref()
                            .is_none_or(|x| *x == entries[i].resource)
                });
                match at {
                    Some(pos) => {
                        let id = state.entries.remove(pos);
                        let span = &mut self.spans.entries[id];
                        span.end_ns = Some(r.time_ns);
                        span.status = r.status;
                    }
                    None => self.spans.unmatched_ends += 1,
                }
            }
            RecordKind::ApiCallBegin => {
                let Some(api) = r.api.clone() else { return };
                let state = self.threads.entry(key).or_default();
                let id = self.spans.calls.len();
                self.spans.calls.push(ApiSpan {
                    id,
                    pid: key.0,
                    tid: key.1,
                    api,
                    target: r.target,
                    begin_ns: r.time_ns,
                    end_ns: None,
                    status: None,
                    entry: state.entries.last().copied(),
                    evidence: r.evidence,
                });
                state.calls.push(id);
            }
            RecordKind::ApiCallEnd => {
                let state = self.threads.entry(key).or_default();
                let calls = &self.spans.calls;
                let at = state
                    .calls
                    .iter()
                    .rposition(|&i| r.api.as_ref().is_none_or(|a| *a == calls[i].api));
                match at {
                    Some(pos) => {
                        let id = state.calls.remove(pos);
                        let span = &mut self.spans.calls[id];
                        span.end_ns = Some(r.time_ns);
                        span.status = r.status;
                    }
                    None => self.spans.unmatched_ends += 1,
                }
            }
            RecordKind::WorkerCreate => {
                let Some(tid) = r.thread else { return };
                let wkey = (key.0, tid);
                self.workers.insert(wkey, self.spans.workers.len());
                self.spans.workers.push(Worker {
                    pid: key.0,
                    tid,
                    creator: key.1,
                    resource: r.resource,
                    created_ns: r.time_ns,
                    exited_ns: None,
                });
            }
            RecordKind::WorkerExit => {
                if let Some(&i) = self.workers.get(&key) {
                    self.spans.workers[i].exited_ns = Some(r.time_ns);
                }
            }
            RecordKind::ThreadStart | RecordKind::ThreadEnd => {
                // A new or ended thread id: whatever was open under it
                // belongs to a thread that is gone.
                if let Some(tid) = r.thread {
                    let tkey = (r.process.or(r.pid).unwrap_or(0), tid);
                    self.threads.remove(&tkey);
                    if r.kind == RecordKind::ThreadStart {
                        self.workers.remove(&tkey);
                    }
                }
            }
            RecordKind::ContextSwitch => {
                self.spans.context_switches += 1;
                if let Some(old) = r.old_thread.filter(|&t| t != 0) {
                    self.open_waits.insert(old, self.spans.waits.len());
                    self.spans.waits.push(Wait {
                        tid: old,
                        out_ns: r.time_ns,
                        ready_ns: None,
                        in_ns: None,
                        wait_reason: r.wait_reason.unwrap_or(0),
                        readied_by: None,
                    });
                }
                if let Some(new) = r.thread.filter(|&t| t != 0) {
                    if let Some(i) = self.open_waits.remove(&new) {
                        self.spans.waits[i].in_ns = Some(r.time_ns);
                    }
                }
            }
            RecordKind::ReadyThread => {
                if let Some(i) = r.thread.and_then(|t| self.open_waits.get(&t).copied()) {
                    let w = &mut self.spans.waits[i];
                    if w.ready_ns.is_none() {
                        w.ready_ns = Some(r.time_ns);
                        w.readied_by = r.tid;
                    }
                }
            }
            RecordKind::DeadlockTimeout => self.spans.deadlocks.push(r),
            RecordKind::RhsRestart => self.spans.restarts.push(r),
            RecordKind::ResourceState => self.spans.statuses.push(r),
            RecordKind::RhsMessage => self.spans.messages.push(r),
            RecordKind::ProcessStart | RecordKind::ProcessEnd => {}
        }
    }

    pub fn finish(self) -> Spans {
        self.spans
    }
}
