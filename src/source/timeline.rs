//! Pairs begin/end records into spans, per (pid, tid): entry points and API
//! calls nest; a missing end leaves a span open (it never returned); an end
//! with no begin (the trace started mid-call) is counted and dropped; a
//! thread that exits closes what it had open, so a reused thread id starts
//! clean. Calls seen only in the cluster's logs pair by resource instead
//! (see `logcalls.rs`), and join the DLL's own span of the same call.

use std::collections::VecDeque;
use std::sync::Arc;

// Hashed per record of a node's log (millions): foldhash is several times
// SipHash's speed and, seeded per process, keeps crafted keys from piling
// into one bucket.
use foldhash::{HashMap, HashSet};

use crate::model::spans::{
    ApiSpan, EntrySpan, Spans, ThreadKey, ThreadLife, Wait, WaitStack, Worker,
};
use crate::model::{EntryPoint, Record, RecordKind};
use crate::read::etl::stackwalk::module_name;

#[derive(Default)]
pub(super) struct ThreadState {
    /// Open entry points and calls, innermost last.
    pub(super) entries: Vec<usize>,
    calls: Vec<usize>,
    /// Of each open entry point, the first and the last entry point the
    /// thread began after it with a higher id, where one did: whether its
    /// end was lost is judged by them at the end. Kept for open entry
    /// points only (every begin of a node's log was 8 bytes a span).
    later: HashMap<usize, (usize, usize)>,
}

impl ThreadState {
    /// Notes that the thread began entry point `id`, which is now open.
    fn began(&mut self, id: usize) {
        for &e in self.entries.iter().filter(|&&e| e < id) {
            self.later
                .entry(e)
                .and_modify(|(_, last)| *last = id)
                .or_insert((id, id));
        }
        self.entries.push(id);
    }

    /// Entry point `id` is no longer open on the thread.
    pub(super) fn ended(&mut self, id: usize) {
        self.entries.retain(|&e| e != id);
        self.later.remove(&id);
    }

    /// The open entry point at `pos` ended (the innermost of its kind);
    /// returns it.
    fn ended_at(&mut self, pos: usize) -> usize {
        let id = self.entries.remove(pos);
        if !self.entries.contains(&id) {
            self.later.remove(&id);
        }
        id
    }
}

/// A call as resource and entry point name it (V2 forms under their V1
/// name, as RHS and RCM name them).
pub(super) type CallKey = (Arc<str>, EntryPoint);

/// Builds spans from records in time order.
#[derive(Default)]
pub struct Pairer {
    pub(super) spans: Spans,
    pub(super) threads: HashMap<ThreadKey, ThreadState>,
    workers: HashMap<ThreadKey, usize>,
    open_waits: HashMap<u32, usize>,
    /// The thread each CPU switched to last: the one that readies another
    /// when a ReadyThread event (whose header names no thread) is logged
    /// on that CPU.
    running: HashMap<u16, u32>,
    /// Threads seen switching in or out.
    switched: HashSet<u32>,
    /// When each thread's life began: its start, or its first event since
    /// its id was last seen ending.
    born: HashMap<ThreadKey, i64>,
    /// Every open call by resource and call, whoever showed it.
    pub(super) by_call: HashMap<CallKey, usize>,
    /// Calls RCM issued that RHS has not queued yet, per call, oldest
    /// first.
    pub(super) unqueued: HashMap<EntryPoint, VecDeque<usize>>,
    /// The last call of each key that ended, for the other side's note of
    /// the same end.
    pub(super) closed: HashMap<CallKey, usize>,
    /// Resource and type names, one copy each: every span of a resource
    /// shares it.
    names: HashSet<Arc<str>>,
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
        if r.tid.is_some() {
            self.born.entry(key).or_insert(r.time_ns);
        }
        match r.kind {
            RecordKind::EntryPointBegin => self.entry_begin(key, r),
            RecordKind::EntryPointEnd => self.entry_end(key, &r),
            RecordKind::ApiCallBegin => self.call_begin(key, r),
            RecordKind::ApiCallEnd => self.call_end(key, &r),
            RecordKind::WorkerCreate => self.worker_create(key, r),
            RecordKind::WorkerExit => {
                if let Some(&i) = self.workers.get(&key) {
                    self.spans.workers[i].exited_ns = Some(r.time_ns);
                }
            }
            RecordKind::ThreadStart | RecordKind::ThreadEnd => {
                self.thread_life(&r);
                self.thread_change(&r)
            }
            RecordKind::ThreadRundown => self.thread_rundown(r),
            RecordKind::ContextSwitch => self.context_switch(&r),
            RecordKind::ReadyThread => self.ready_thread(&r),
            RecordKind::DeadlockTimeout => self.spans.deadlocks.push(r),
            RecordKind::RhsRestart => self.spans.restarts.push(r),
            RecordKind::ResourceState => self.spans.statuses.push(r),
            RecordKind::RhsMessage => self.spans.messages.push(r),
            RecordKind::ProcessStart => {
                if let (Some(p), Some(image)) = (r.process, r.image.as_deref()) {
                    self.spans.processes.insert(p, module_name(image));
                }
            }
            RecordKind::ProcessEnd => {}
            RecordKind::CallIssued => self.call_issued(r),
            RecordKind::CallQueued => self.call_queued(&r),
            RecordKind::CallEntered => self.call_entered(key, r),
            RecordKind::CallReturned => self.call_returned(r),
            RecordKind::ResourceLine => self.resource_line(key, &r),
            RecordKind::HealthCheckFailed => self.health_check_failed(r),
            RecordKind::ClusterEvent
            | RecordKind::MonitorRestart
            | RecordKind::SeparateMonitor
            | RecordKind::WerReport
            | RecordKind::GroupMoved => self.spans.events.push(r),
        }
    }

    fn entry_begin(&mut self, key: ThreadKey, r: Record) {
        let (Some(ep), Some(resource)) = (r.entry_point, r.resource.as_deref()) else {
            return;
        };
        let resource = self.name(resource);
        let resource_type = r.resource_type.as_deref().map(|t| self.name(t));
        let call = (resource.clone(), ep.base());
        // The same call as the cluster's logs showed it: one span.
        let id = match self.joinable(&call, key) {
            Some(id) => {
                let span = &mut self.spans.entries[id];
                span.set_issued_ns(span.issued_ns().or(Some(span.begin_ns)));
                span.begin_ns = r.time_ns;
                (span.pid, span.tid) = key;
                span.entry_point = ep;
                span.resource_type = span.resource_type.take().or(resource_type);
                span.seen_by.dll = true;
                span.end_expected = true;
                id
            }
            None => {
                let id = self.new_span(resource, ep, key, r.time_ns, r.evidence);
                let span = &mut self.spans.entries[id];
                span.resource_type = resource_type;
                span.seen_by.dll = true;
                span.end_expected = true;
                id
            }
        };
        self.by_call.insert(call, id);
        self.threads.entry(key).or_default().began(id);
    }

    /// The shared copy of a resource or type name.
    pub(super) fn name(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.names.get(name) {
            return Arc::clone(n);
        }
        let n: Arc<str> = Arc::from(name);
        self.names.insert(Arc::clone(&n));
        n
    }

    /// A new span of `ep` on `resource`, begun at `time_ns` on thread `key`
    /// ((0, 0) where not known).
    pub(super) fn new_span(
        &mut self,
        resource: Arc<str>,
        ep: EntryPoint,
        key: ThreadKey,
        time_ns: i64,
        evidence: crate::model::Evidence,
    ) -> usize {
        let id = self.spans.entries.len();
        self.spans
            .entries
            .push(EntrySpan::new(id, key, resource, ep, time_ns, evidence));
        id
    }

    /// Entry points a thread left open, though it went on to begin another
    /// one that returned and is not stuck in a call of theirs: their end
    /// was lost (RHS moved the thread on), not a hang. Each ended before the
    /// next entry point the thread began; calls open inside it too.
    fn close_lost(spans: &mut Spans, state: &ThreadState) {
        for &id in &state.entries {
            // One whose end another line gave (RHS's "IsAlive failed")
            // stays listed for the DLL's own end, but has ended.
            if !spans.entries[id].is_open() {
                continue;
            }
            // The first and the last entry point the thread began after it.
            let Some(&(next, last)) = state.later.get(&id) else {
                continue;
            };
            let Some(moved_on) = spans.entries[last].end_ns() else {
                continue;
            };
            let stuck = state
                .calls
                .iter()
                .any(|&c| spans.calls[c].entry == Some(id) && spans.calls[c].begin_ns >= moved_on);
            if stuck {
                continue;
            }
            let bound = spans.entries[next].begin_ns;
            spans.entries[id].set_end_lost_ns(Some(bound));
            spans.lost_ends += 1;
            for &c in &state.calls {
                if spans.calls[c].entry == Some(id) {
                    spans.calls[c].end_lost_ns = Some(bound);
                }
            }
        }
    }

    fn entry_end(&mut self, key: ThreadKey, r: &Record) {
        let state = self.threads.entry(key).or_default();
        // The innermost open span of this entry point and resource; spans
        // above it that never ended stay open.
        let entries = &self.spans.entries;
        let at = state.entries.iter().rposition(|&i| {
            Some(entries[i].entry_point) == r.entry_point
                && r.resource
                    .as_deref()
                    .is_none_or(|x| x == &*entries[i].resource)
        });
        match at {
            Some(pos) => {
                let id = state.ended_at(pos);
                let span = &mut self.spans.entries[id];
                span.set_end_ns(Some(r.time_ns));
                span.set_status(r.status);
                self.forget(id);
            }
            None => self.spans.unmatched_ends += 1,
        }
    }

    fn call_begin(&mut self, key: ThreadKey, r: Record) {
        let Some(api) = r.api else { return };
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
            end_lost_ns: None,
            status: None,
            entry: state.entries.last().copied(),
            evidence: r.evidence,
            inferred: None,
        });
        state.calls.push(id);
    }

    fn call_end(&mut self, key: ThreadKey, r: &Record) {
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

    fn worker_create(&mut self, key: ThreadKey, r: Record) {
        let Some(tid) = r.thread else { return };
        let wkey = (key.0, tid);
        // The worker's first events may come before this announcement.
        let started_ns = self
            .born
            .get(&wkey)
            .map_or(r.time_ns, |&b| b.min(r.time_ns));
        self.workers.insert(wkey, self.spans.workers.len());
        self.spans.workers.push(Worker {
            pid: key.0,
            tid,
            creator: key.1,
            resource: r.resource,
            created_ns: r.time_ns,
            started_ns,
            exited_ns: None,
        });
    }

    /// A new or ended thread id: whatever was open under it belongs to a
    /// thread that is gone.
    fn thread_change(&mut self, r: &Record) {
        if let Some(tid) = r.thread {
            let tkey = (r.process.or(r.pid).unwrap_or(0), tid);
            if let Some(state) = self.threads.remove(&tkey) {
                Self::close_lost(&mut self.spans, &state);
            }
            if r.kind == RecordKind::ThreadStart {
                self.workers.remove(&tkey);
                self.born.insert(tkey, r.time_ns);
            } else {
                self.born.remove(&tkey);
            }
        }
    }

    /// A thread's start or end, for its life.
    fn thread_life(&mut self, r: &Record) {
        let Some(tid) = r.thread else { return };
        let pid = r.process.or(r.pid).unwrap_or(0);
        let threads = &mut self.spans.threads;
        if r.kind == RecordKind::ThreadStart {
            threads.push(ThreadLife {
                pid,
                tid,
                // A rundown at the start (DCStart) lists threads already
                // running: their start is not known.
                start_ns: (r.state.as_deref() != Some("dc_start")).then_some(r.time_ns),
                seen_ns: r.time_ns,
                end_ns: None,
                start_module: r.image.clone(),
            });
        } else if let Some(t) = threads
            .iter_mut()
            .rev()
            .find(|t| t.pid == pid && t.tid == tid && t.end_ns.is_none())
        {
            t.end_ns = Some(r.time_ns);
        }
    }

    /// A thread still there at the end: if it is waiting, the rundown's
    /// stack shows where.
    fn thread_rundown(&mut self, r: Record) {
        let Some(tid) = r.thread else { return };
        let Some(stack) = r.stack else { return };
        if let Some(&i) = self.open_waits.get(&tid) {
            self.spans.wait_stacks.push(WaitStack {
                wait: i,
                stack,
                evidence: r.evidence,
            });
            return;
        }
        // Never switched in or out in the whole trace: waiting since before
        // it began, at least since the rundown that listed it at the start.
        let switched = self.switched.contains(&tid);
        let since = self
            .spans
            .threads
            .iter()
            .find(|t| t.tid == tid && t.start_ns.is_none())
            .map(|t| t.seen_ns);
        if let (false, Some(since)) = (switched, since) {
            self.spans.wait_stacks.push(WaitStack {
                wait: self.spans.waits.len(),
                stack,
                evidence: r.evidence,
            });
            self.spans.waits.push(Wait {
                tid,
                out_ns: since,
                ready_ns: None,
                in_ns: None,
                wait_reason: 0,
                readied_by: None,
            });
        }
    }

    fn context_switch(&mut self, r: &Record) {
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
        if let Some(new) = r.thread {
            self.running.insert(r.cpu, new);
            self.switched.insert(new);
        }
        if let Some(old) = r.old_thread {
            self.switched.insert(old);
        }
        if let Some(new) = r.thread.filter(|&t| t != 0) {
            if let Some(i) = self.open_waits.remove(&new) {
                let w = &mut self.spans.waits[i];
                w.in_ns = Some(r.time_ns);
                if let Some(stack) = &r.stack {
                    self.spans.wait_stacks.push(WaitStack {
                        wait: i,
                        stack: stack.clone(),
                        evidence: r.evidence,
                    });
                }
            }
        }
    }

    fn ready_thread(&mut self, r: &Record) {
        if let Some(i) = r.thread.and_then(|t| self.open_waits.get(&t).copied()) {
            let w = &mut self.spans.waits[i];
            if w.ready_ns.is_none() {
                w.ready_ns = Some(r.time_ns);
                // The idle thread (0) readies nobody: an interrupt or a
                // timer did.
                w.readied_by = r
                    .tid
                    .or_else(|| self.running.get(&r.cpu).copied())
                    .filter(|&t| t != 0);
            }
        }
    }

    pub fn finish(mut self) -> Spans {
        // Waits' stacks in the waits' order (they attach as waits end).
        self.spans.wait_stacks.sort_by_key(|s| s.wait);
        for state in self.threads.values() {
            Self::close_lost(&mut self.spans, state);
        }
        for &id in self.by_call.values() {
            let span = &self.spans.entries[id];
            if span.is_open() && !span.end_expected {
                self.spans.ends_not_logged += 1;
            }
        }
        // Workers grew by doubling: up to half is spare, which the analysis
        // would allocate on top of (large blocks shrink in place). The
        // span and record lists grow by segments: their spare is the last
        // segment's end, never written.
        self.spans.workers.shrink_to_fit();
        self.spans
    }
}
