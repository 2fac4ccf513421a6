//! Entry-point calls as the cluster's logs show them, for DLLs that log
//! nothing of their own: RCM issues a call for a resource (clussvc's
//! thread), RHS queues it and calls into the DLL (on a thread of its own,
//! which the DLL's `[RES]` lines and RHS's verbose `CallIntoResource` lines
//! name), and RHS or RCM logs how it ended. These lines pair by resource
//! and call, not by thread; the two sides' observations of one call (and
//! the DLL's own events, where it has them) are one span.

use super::timeline::{CallKey, Pairer};
use crate::model::spans::ThreadKey;
use crate::model::{EntryPoint, Record};

/// Calls RHS makes on its own, whose end no line reports unless they fail.
fn ends_logged(ep: EntryPoint) -> bool {
    !matches!(ep.base(), EntryPoint::IsAlive | EntryPoint::LooksAlive)
}

/// A Win32 status that is no failure: success, or the call went pending.
const ERROR_IO_PENDING: u64 = 997;

impl Pairer {
    /// The open span of `call` a begin on thread `key` continues: one the
    /// logs showed with no thread yet, or on this thread.
    pub(super) fn joinable(&self, call: &CallKey, key: ThreadKey) -> Option<usize> {
        let &id = self.by_call.get(call)?;
        let s = &self.spans.entries[id];
        let open = s.is_open();
        (open && (s.tid == 0 || (s.pid, s.tid) == key)).then_some(id)
    }

    /// A span has ended: it is no longer open under its call.
    pub(super) fn forget(&mut self, id: usize) {
        let s = &self.spans.entries[id];
        let call = (s.resource.clone(), s.entry_point.base());
        if self.by_call.get(&call) == Some(&id) {
            self.by_call.remove(&call);
        }
        self.closed.insert(call, id);
    }

    /// An open span of `call` is superseded by a new one at `time_ns`: its
    /// end was lost (or, for calls that log none, not logged).
    fn supersede(&mut self, call: &CallKey, time_ns: i64) {
        self.end_unseen(call, time_ns, false);
    }

    /// Closes the open span of `call` at `time_ns`, its end unseen: lost,
    /// unless the logs do not write such an end (`not_logged`).
    fn end_unseen(&mut self, call: &CallKey, time_ns: i64, not_logged: bool) {
        let Some(id) = self.by_call.remove(call) else {
            return;
        };
        let s = &mut self.spans.entries[id];
        if !s.is_open() {
            return;
        }
        s.set_end_lost_ns(Some(time_ns));
        if s.end_expected && !not_logged {
            self.spans.lost_ends += 1;
        } else {
            s.end_expected = false;
            self.spans.ends_not_logged += 1;
        }
        let key = (s.pid, s.tid);
        if let Some(state) = self.threads.get_mut(&key) {
            state.ended(id);
        }
    }

    /// RCM issues a call: a span with no thread yet.
    pub(super) fn call_issued(&mut self, r: Record) {
        let (Some(ep), Some(resource)) = (r.entry_point, r.resource.as_deref()) else {
            return;
        };
        let resource = self.name(resource);
        let call = (resource.clone(), ep.base());
        self.supersede(&call, r.time_ns);
        // RCM sends a resource one call at a time: an earlier one it issued
        // has returned, though no line said so (Arbitrate logs no reply).
        let earlier: Vec<CallKey> = self
            .by_call
            .iter()
            .filter(|(k, &id)| k.0 == resource && self.spans.entries[id].seen_by.rcm)
            .filter(|(k, _)| {
                !matches!(
                    k.1,
                    EntryPoint::ResourceControl | EntryPoint::ResourceTypeControl
                )
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in earlier {
            self.end_unseen(&k, r.time_ns, true);
        }
        let id = self.new_span(resource, ep, (0, 0), r.time_ns, r.evidence);
        let span = &mut self.spans.entries[id];
        span.set_issued_ns(Some(r.time_ns));
        span.seen_by.rcm = true;
        span.end_expected = true;
        self.by_call.insert(call, id);
        self.unqueued.entry(ep.base()).or_default().push_back(id);
    }

    /// RHS queues a call of this kind: the oldest RCM issued is in this
    /// RHS process.
    pub(super) fn call_queued(&mut self, r: &Record) {
        let (Some(ep), Some(pid)) = (r.entry_point, r.pid) else {
            return;
        };
        let Some(queue) = self.unqueued.get_mut(&ep.base()) else {
            return;
        };
        while let Some(id) = queue.pop_front() {
            let s = &mut self.spans.entries[id];
            if s.is_open() {
                if s.pid == 0 {
                    s.pid = pid;
                }
                s.seen_by.rhs = true;
                return;
            }
        }
    }

    /// RHS calls into the DLL on this thread: the call RCM issued (or one
    /// RHS makes on its own, a health check).
    pub(super) fn call_entered(&mut self, key: ThreadKey, r: Record) {
        let (Some(ep), Some(resource)) = (r.entry_point, r.resource.as_deref()) else {
            return;
        };
        let resource = self.name(resource);
        let call = (resource.clone(), ep.base());
        if let Some(id) = self.joinable(&call, key) {
            let s = &mut self.spans.entries[id];
            (s.pid, s.tid) = key;
            s.seen_by.rhs = true;
            return;
        }
        self.supersede(&call, r.time_ns);
        let id = self.new_span(resource, ep, key, r.time_ns, r.evidence);
        let span = &mut self.spans.entries[id];
        span.seen_by.rhs = true;
        span.end_expected = ends_logged(ep);
        self.by_call.insert(call, id);
    }

    /// The DLL logs for a resource on this thread: the thread runs that
    /// resource's open call, if no line named its thread yet.
    pub(super) fn resource_line(&mut self, key: ThreadKey, r: &Record) {
        let Some(resource) = r.resource.as_deref() else {
            return;
        };
        let mut latest: Option<usize> = None;
        for (call, &id) in &self.by_call {
            if &*call.0 != resource {
                continue;
            }
            let s = &self.spans.entries[id];
            let fits = s.tid == 0 && (s.pid == 0 || s.pid == key.0);
            if fits && latest.is_none_or(|l| self.spans.entries[l].begin_ns < s.begin_ns) {
                latest = Some(id);
            }
        }
        let resource_type = r.resource_type.as_deref().map(|t| self.name(t));
        for &id in self.by_call.values() {
            let s = &mut self.spans.entries[id];
            if &*s.resource == resource && s.resource_type.is_none() {
                s.resource_type.clone_from(&resource_type);
            }
        }
        if let Some(id) = latest {
            let s = &mut self.spans.entries[id];
            (s.pid, s.tid) = key;
            s.seen_by.rhs = true;
        }
    }

    /// RHS or RCM logs how a call ended. The first of the two closes the
    /// span; the second adds what the first did not say (RCM's status).
    pub(super) fn call_returned(&mut self, r: Record) {
        let (Some(ep), Some(resource)) = (r.entry_point, r.resource.as_deref()) else {
            return;
        };
        let resource = self.name(resource);
        let failed = r.state.as_deref() == Some("failed")
            || r.status.is_some_and(|s| s != 0 && s != ERROR_IO_PENDING);
        let call = (resource, ep.base());
        if failed {
            self.spans.events.push(r.clone());
        }
        if let Some(&id) = self.by_call.get(&call) {
            let s = &mut self.spans.entries[id];
            if s.is_open() && s.begin_ns <= r.time_ns {
                s.set_end_ns(Some(r.time_ns));
                s.set_status(r.status);
                s.failed = failed;
                let key = (s.pid, s.tid);
                if let Some(state) = self.threads.get_mut(&key) {
                    state.ended(id);
                }
                self.forget(id);
                return;
            }
        }
        let pended = |s: &crate::model::EntrySpan| s.status() == Some(ERROR_IO_PENDING);
        match self.closed.get(&call) {
            // The other side's note of an end already seen, or the end of
            // the operation a call that went pending left running (RHS's
            // "has come online" when the worker finishes, however late).
            Some(&id)
                if r.time_ns - self.spans.entries[id].end_ns().unwrap_or(i64::MIN)
                    < 5_000_000_000
                    || pended(&self.spans.entries[id]) =>
            {
                let s = &mut self.spans.entries[id];
                s.set_status(s.status().or(r.status));
                s.failed |= failed;
            }
            // RCM logs no begin of a control code: only its end.
            _ if matches!(
                ep.base(),
                EntryPoint::ResourceControl | EntryPoint::ResourceTypeControl
            ) => {}
            _ => self.spans.unmatched_ends += 1,
        }
    }

    /// IsAlive or LooksAlive said the resource is not healthy: the check
    /// ended, failed.
    pub(super) fn health_check_failed(&mut self, r: Record) {
        if let (Some(ep), Some(resource)) = (r.entry_point, r.resource.as_deref()) {
            let call = (self.name(resource), ep.base());
            if let Some(&id) = self.by_call.get(&call) {
                let s = &mut self.spans.entries[id];
                if s.is_open() {
                    s.set_end_ns(Some(r.time_ns));
                    s.failed = true;
                    self.forget(id);
                }
            }
        }
        self.spans.health_failures.push(r);
    }
}
