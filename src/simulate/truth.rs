//! The ground truth: each finding is planted when the simulator writes the
//! call or state that causes it, never by analysing the trace.

use std::io::{Seek, Write};

use super::{Sim, Step, ERROR_SUCCESS, MS, PENDING_TIMEOUT, RHS_PID};
use crate::model::{EntryPoint, Finding, Rule, Severity, ThreadKind, Timestamp, UsageCode};

impl<W: Write + Seek> Sim<'_, W> {
    /// A worker whose last steps report a pending state and then block for
    /// good leaves the resource pending: after PendingTimeout RHS gives up
    /// and calls Terminate.
    pub(super) fn plant_pending_timeout(
        &mut self,
        r: usize,
        worker: u32,
        start: i64,
        steps: &[(i64, Step)],
    ) {
        if !matches!(steps.last(), Some((_, Step::Block))) {
            return;
        }
        let mut t = start;
        let mut last_status = None;
        for (i, (delay, step)) in steps.iter().enumerate() {
            if i > 0 {
                t += delay;
            }
            if let Step::Status(_, state) = step {
                last_status = Some((t, *state));
            }
        }
        let Some((at, state)) = last_status.filter(|(_, s)| s.ends_with("Pending")) else {
            return;
        };
        let ep = if state.starts_with("Offline") {
            EntryPoint::Offline
        } else {
            EntryPoint::Online
        };
        self.plant(Rule::PendingTimeout, r, Some(ep), None, worker, at);
        let terminate_at = at + PENDING_TIMEOUT + self.rng.between(MS, 10 * MS);
        self.call(
            r,
            EntryPoint::Terminate,
            terminate_at,
            Vec::new(),
            ERROR_SUCCESS,
        );
    }

    /// Plants a misuse finding for an API call beginning now on `tid` in
    /// the given context, if the usage table forbids it there; returns its
    /// index so the call's end can fill in the duration.
    pub(super) fn plant_misuse(
        &mut self,
        r: usize,
        ep: Option<EntryPoint>,
        api: &str,
        tid: u32,
    ) -> Option<usize> {
        let f = self.misuse(Some(self.resources[r].clone()), ep, api, tid)?;
        self.findings.push(f);
        Some(self.findings.len() - 1)
    }

    /// The misuse finding of an API call beginning now on `tid` (inside
    /// `ep`, or on a worker), if the usage table forbids it there.
    pub(super) fn misuse(
        &self,
        resource: Option<String>,
        ep: Option<EntryPoint>,
        api: &str,
        tid: u32,
    ) -> Option<Finding> {
        let row = self.table.resolve(api)?;
        let usage = row.usage;
        let forbidden = match ep {
            Some(ep) => self.table.forbidden_in(usage, ep),
            None => usage == UsageCode::DoNotUse,
        };
        if !forbidden {
            return None;
        }
        Some(Finding {
            rule: Rule::ApiMisuse,
            severity: Severity::Error,
            resource,
            entry_point: ep,
            api: Some(row.name.clone()),
            usage: Some(usage),
            thread_kind: Some(if ep.is_some() {
                ThreadKind::RhsEntryPoint
            } else {
                ThreadKind::ClusterWorker
            }),
            pid: RHS_PID,
            tid,
            begin: Timestamp(self.ns(self.now)),
            duration_ns: None,
            never_returned: false,
            status: None,
            group: None,
        })
    }

    /// The finding planted last blocked from its begin until `until`
    /// (ticks), and never returned.
    pub(crate) fn planted_blocked_until(&mut self, until: i64) {
        let end = self.ns(until);
        if let Some(f) = self.findings.last_mut() {
            f.duration_ns = Some(end - f.begin.ns());
            f.never_returned = true;
        }
    }

    pub(crate) fn plant(
        &mut self,
        rule: Rule,
        r: usize,
        ep: Option<EntryPoint>,
        api: Option<&str>,
        tid: u32,
        begin: i64,
    ) {
        self.findings.push(Finding {
            rule,
            severity: Severity::Error,
            resource: Some(self.resources[r].clone()),
            entry_point: ep,
            api: api.map(str::to_string),
            usage: api.and_then(|a| self.table.resolve(a)).map(|row| row.usage),
            thread_kind: None,
            pid: RHS_PID,
            tid,
            begin: Timestamp(self.ns(begin)),
            // Hangs get theirs when the trace end is known.
            duration_ns: None,
            never_returned: false,
            status: None,
            group: None,
        });
    }
}
