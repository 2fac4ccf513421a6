//! What a node writes for a resource DLL with no rhscope instrumentation:
//! the `Get-ClusterLog` output of a Windows Server 2016+ node. RCM issues
//! calls and hears back, RHS queues them, reports states and recovers from
//! deadlocks, the DLL writes free text, and the System channel's events
//! sit in their section above the log. Line shapes follow the shared
//! reference `cluster-log-format.md`.
//!
//! The ground truth is planted here as the lines are written: what the log
//! alone shows (times at the log's millisecond precision), never by
//! analysing the log.

use std::io::{self, Seek, Write};

use super::{Sim, Step, DEADLOCK_TIMEOUT, PENDING_TIMEOUT, RESOURCE_TYPE, RHS_PID};
use crate::model::time::MS_NS;
use crate::model::{EntryPoint, Finding, Rule, Severity, Timestamp};
use crate::read::clusterlog::format_line;

/// The cluster service's process and RCM's threads.
const CLUSSVC_PID: u32 = 1500;
/// RCM's resource worker: issues calls and changes states.
const RCM_TID: u32 = 1504;
/// RCM's handler of RHS's replies.
const RCM_REPLY_TID: u32 = 1508;
/// RHS's call queue.
const RHS_QUEUE_TID: u32 = 2008;
/// RHS's deadlock monitor.
pub(crate) const MONITOR_TID: u32 = 2004;
/// The simulated resource type's DLL.
pub const DLL: &str = "contosoapp.dll";
pub const NODE: &str = "SIM-NODE1";
/// A Windows Server 2022 build.
const BUILD: u32 = 20348;
/// The simulation's clock ticks 100 ns.
const NS_PER_TICK: i64 = 100;
/// An entry point's budget before it is reported slow, as analysis's
/// default.
const BUDGET_NS: i64 = 300 * MS_NS;

/// The node's log being written, and the truth it supports.
#[derive(Debug, Default)]
pub(crate) struct NodeLog {
    /// `[System]` lines, for their section above the log.
    system: Vec<String>,
    /// The log itself.
    body: String,
    /// RCM's state of each resource.
    state: Vec<&'static str>,
    /// The state the DLL last reported for each resource.
    reported: Vec<&'static str>,
    checkpoint: Vec<u32>,
    /// The call RCM issued to each resource and has not heard back about:
    /// the entry point and when it was issued (log time).
    issued: Vec<Option<(EntryPoint, i64)>>,
    /// Terminate was issued because a pending operation timed out.
    failing: Vec<bool>,
    /// A pending state's last line (log time) and the thread of its last
    /// line on RHS's side (the DLL's worker), while the state lasts.
    pending: Vec<Option<(i64, Option<u32>)>>,
    /// When RHS's deadlock monitor fired (log time).
    fired: Option<i64>,
    generation: u32,
    pub(crate) findings: Vec<Finding>,
}

impl NodeLog {
    pub(crate) fn new(resources: usize) -> NodeLog {
        NodeLog {
            state: vec!["Offline"; resources],
            reported: vec!["Offline"; resources],
            checkpoint: vec![0; resources],
            issued: vec![None; resources],
            failing: vec![false; resources],
            pending: vec![None; resources],
            ..NodeLog::default()
        }
    }

    /// The whole file: header, `[System]` section, the log; UTF-16LE with a
    /// byte-order mark and CRLF, as Get-ClusterLog writes it.
    fn write(&self, resources: &[String], out: &mut dyn Write) -> io::Result<()> {
        let mut text = String::new();
        let mut line = |s: &str| {
            text.push_str(s);
            text.push_str("\r\n");
        };
        line("[=== Cluster ===]");
        line("UTC = localtime + time zone offset;the time zone offset of this machine is 0 minutes, or 0 hours");
        line("The logs were generated using Coordinated Universal Time (UTC). 'Get-ClusterLog -UseLocalTime' will generate in local time.");
        line(&format!("Build Number {BUILD}"));
        line(&format!("Current node: name ({NODE}) id (1)"));
        line("[=== Resources ===]");
        line("Name,Id,State,_looksAliveInterval,_isAliveInterval,_deadlockTimeout,_pendingTimeout,_separateMonitor,OwnerGroup,resourceType");
        let deadlock_ms = DEADLOCK_TIMEOUT / super::MS;
        let pending_ms = PENDING_TIMEOUT / super::MS;
        // 0xFFFFFFFF: the resource uses its type's poll intervals.
        for (r, name) in resources.iter().enumerate() {
            line(&format!(
                "{name},{},{},4294967295,4294967295,{deadlock_ms},{pending_ms},0,{name},{RESOURCE_TYPE}",
                guid(r as u32 + 1),
                self.state[r],
            ));
        }
        line("[=== Groups ===]");
        line("Name,Id,State,OwnerNode");
        for (r, name) in resources.iter().enumerate() {
            line(&format!(
                "{name},{},{},{NODE}",
                guid(0x1000 + r as u32),
                self.state[r]
            ));
        }
        line("[=== Resource Types ===]");
        line("Name,DllName,_looksAliveInterval,_isAliveInterval,_deadlockTimeout,_pendingTimeout");
        line(&format!(
            "{RESOURCE_TYPE},{DLL},{},{},{deadlock_ms},{pending_ms}",
            super::LOOKS_ALIVE_INTERVAL / super::MS,
            super::IS_ALIVE_INTERVAL / super::MS
        ));
        line("[=== Nodes ===]");
        line("Name,Id,State");
        line(&format!("{NODE},1,Up"));
        line("[=== System ===]");
        for s in &self.system {
            line(s);
        }
        line("[=== Cluster Logs ===]");
        text.push_str(&self.body);
        let mut bytes = Vec::with_capacity(2 + 2 * text.len());
        bytes.extend_from_slice(&[0xFF, 0xFE]);
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        out.write_all(&bytes)
    }
}

fn guid(n: u32) -> String {
    format!("{n:08x}-5c1d-4e2f-8a3b-00000000{n:04x}")
}

/// A planted finding with what every one has; the caller adds the rest.
fn finding(rule: Rule, resource: &str, pid: u32, tid: u32) -> Finding {
    Finding {
        rule,
        severity: Severity::Error,
        resource: Some(resource.to_string()),
        entry_point: None,
        api: None,
        usage: None,
        thread_kind: None,
        pid,
        tid,
        begin: Timestamp(0),
        duration_ns: None,
        never_returned: false,
        status: None,
        group: None,
    }
}

/// RHS's name of a call (ONLINERESOURCE, ...), as its deadlock monitor and
/// RCM's replies log it.
pub(super) fn rhs_call(ep: EntryPoint) -> String {
    match ep.base() {
        EntryPoint::ResourceControl => "RESOURCECONTROL".into(),
        EntryPoint::ResourceTypeControl => "RESOURCETYPECONTROL".into(),
        b => format!("{}RESOURCE", b.name().to_uppercase()),
    }
}

impl<W: Write + Seek> Sim<'_, W> {
    fn tid(r: usize) -> u32 {
        Self::rhs_thread(r)
    }

    /// Now, at the log's precision.
    fn log_ns(&self) -> i64 {
        let ns = self.ns(self.now);
        ns - ns.rem_euclid(MS_NS)
    }

    /// A line of the node's log.
    pub(super) fn node_line(&mut self, pid: u32, tid: u32, level: &str, tag: &str, text: &str) {
        let time = self.ns(self.now);
        if let Some(log) = self.node.as_mut() {
            log.body
                .push_str(&format_line(pid, tid, time, level, tag, text));
            log.body.push_str("\r\n");
        }
    }

    fn rcm(&mut self, text: &str) {
        self.node_line(CLUSSVC_PID, RCM_TID, "INFO", "RCM", text);
    }

    fn rcm_reply(&mut self, text: &str) {
        self.node_line(CLUSSVC_PID, RCM_REPLY_TID, "INFO", "RCM", text);
    }

    /// RCM's state machine moves a resource on.
    fn transition(&mut self, r: usize, to: &'static str) {
        let at = self.log_ns();
        let Some(log) = self.node.as_mut() else {
            return;
        };
        let from = std::mem::replace(&mut log.state[r], to);
        // The DLL's report of the same state stays its last.
        let reporter = log.pending[r]
            .and_then(|p| p.1)
            .filter(|_| log.reported[r] == to);
        log.pending[r] = to.ends_with("Pending").then_some((at, reporter));
        let name = self.resources[r].clone();
        self.rcm(&format!("Res {name}: {from} -> {to}( StateUnknown )"));
        self.rcm(&format!("TransitionToState({name}) {from}-->{to}."));
    }

    /// An event of the System channel, in its section.
    fn system_event(&mut self, level: &str, text: &str) {
        let time = self.ns(self.now);
        if let Some(log) = self.node.as_mut() {
            let line = format_line(CLUSSVC_PID, RCM_REPLY_TID, time, level, "", text);
            log.system.push(format!("[System] {line}"));
        }
    }

    /// What the node logs of one step of a script on thread `tid`.
    pub(super) fn node_story(&mut self, tid: u32, step: &Step) {
        if self.node.is_none() {
            return;
        }
        match *step {
            Step::EntryBegin(r, ep) => self.story_call(r, ep),
            Step::EntryEnd(r, ep, status) => self.story_return(r, ep, status),
            Step::Status(r, state) => self.story_status(r, tid, state),
            Step::DeadlockMonitor(r, _) => self.story_deadlock(r, false),
            Step::HandlingDeadlock(r) => self.story_deadlock(r, true),
            Step::RhsExit(r) => self.story_recovery(r),
            _ => {}
        }
    }

    /// RCM issues a call RHS passes to the DLL; health checks and control
    /// codes RHS makes without a line.
    fn story_call(&mut self, r: usize, ep: EntryPoint) {
        let pending = match ep.base() {
            EntryPoint::Online => "OnlineCallIssued",
            EntryPoint::Offline => "OfflineCallIssued",
            EntryPoint::Terminate => "Terminating",
            _ => return,
        };
        let name = self.resources[r].clone();
        let call = ep.base().name();
        if ep.base() == EntryPoint::Terminate {
            self.pending_expired(r);
        }
        self.transition(r, pending);
        self.rcm(&format!("Issuing {call}({name}) to RHS."));
        self.node_line(
            RHS_PID,
            RHS_QUEUE_TID,
            "INFO",
            "RHS",
            &format!("Enqueuing {call} call."),
        );
        self.node_line(
            RHS_PID,
            RHS_QUEUE_TID,
            "INFO",
            "RHS",
            &format!("Waiting for {call} call to be dequeued."),
        );
        // The DLL's own words, on the thread RHS called it on.
        self.node_line(
            RHS_PID,
            Self::tid(r),
            "INFO",
            "RES",
            &format!("{RESOURCE_TYPE} <{name}>: {call} request received."),
        );
        let at = self.log_ns();
        if let Some(log) = self.node.as_mut() {
            log.issued[r] = Some((ep, at));
        }
    }

    /// How a call ended, as RHS and RCM log it.
    fn story_return(&mut self, r: usize, ep: EntryPoint, status: u32) {
        let name = self.resources[r].clone();
        let tid = Self::tid(r);
        if matches!(ep.base(), EntryPoint::IsAlive | EntryPoint::LooksAlive) {
            // A health check returns TRUE when healthy.
            if status == 0 {
                let text = format!("Resource {name} {} has indicated failure.", ep.base());
                self.node_line(RHS_PID, tid, "WARN", "RHS", &text);
                let mut f = finding(Rule::HealthCheckFailed, &name, RHS_PID, tid);
                f.entry_point = Some(ep.base());
                f.begin = Timestamp(self.log_ns());
                self.plant_log(f);
            }
            return;
        }
        let Some((issued_ep, begin)) = self.node.as_mut().and_then(|l| l.issued[r].take()) else {
            return;
        };
        let end = self.log_ns();
        match (ep.base(), status) {
            (EntryPoint::Online, 0) => {
                let text = format!(
                    "Resource {name} has come online. RHS is about to report status change to RCM"
                );
                self.node_line(RHS_PID, tid, "INFO", "RHS", &text);
            }
            (EntryPoint::Offline, 0) => {
                let text = format!(
                    "Resource {name} has come offline. RHS is about to report resource status to RCM."
                );
                self.node_line(RHS_PID, tid, "INFO", "RHS", &text);
            }
            _ => {}
        }
        let generation = self.node.as_mut().map_or(0, |l| {
            l.generation += 1;
            l.generation
        });
        self.rcm_reply(&format!(
            "HandleMonitorReply: {} for '{name}', gen({generation}) result {status}/0.",
            rhs_call(ep)
        ));
        let failing = self.node.as_ref().is_some_and(|l| l.failing[r]);
        let next = match (ep.base(), status) {
            (EntryPoint::Online, 997) => "OnlinePending",
            (EntryPoint::Online, 0) => "Online",
            (EntryPoint::Offline, 997) => "OfflinePending",
            (EntryPoint::Offline, 0) => "Offline",
            (EntryPoint::Terminate, _) if failing => "Failed",
            (EntryPoint::Terminate, _) => "Offline",
            _ => "Failed",
        };
        self.transition(r, next);
        if next == "Failed" {
            self.resource_failed(r);
        }
        if end - begin > BUDGET_NS {
            let mut f = finding(Rule::SlowEntryPoint, &name, RHS_PID, tid);
            f.severity = Severity::Warning;
            f.entry_point = Some(issued_ep);
            f.begin = Timestamp(begin);
            f.duration_ns = Some(end - begin);
            self.plant_log(f);
        }
    }

    /// The DLL reports a state through RHS's SetResourceStatus callback.
    fn story_status(&mut self, r: usize, tid: u32, state: &'static str) {
        let at = self.log_ns();
        let Some(log) = self.node.as_mut() else {
            return;
        };
        let old = std::mem::replace(&mut log.reported[r], state);
        log.checkpoint[r] += 1;
        if state.ends_with("Pending") {
            log.pending[r] = Some((at, Some(tid)));
        }
        let checkpoint = log.checkpoint[r];
        let name = self.resources[r].clone();
        self.node_line(
            RHS_PID,
            tid,
            "INFO",
            "RHS",
            &format!(
                "Resource {name} called SetResourceStatusEx: checkpoint {checkpoint}. Old state {old}, new state {state}, AppSpErrorCode 0, Flags 0, nores 0"
            ),
        );
        let verb = match state {
            "Online" => "has come online. RHS is about to report status change to RCM",
            "Offline" => "has come offline. RHS is about to report resource status to RCM.",
            _ => return,
        };
        self.node_line(
            RHS_PID,
            tid,
            "INFO",
            "RHS",
            &format!("Resource {name} {verb}"),
        );
        let call = if state == "Online" {
            "ONLINERESOURCE"
        } else {
            "OFFLINERESOURCE"
        };
        self.rcm_reply(&format!(
            "HandleMonitorReply: {call} for '{name}', gen(0) result 0/0."
        ));
        self.transition(r, state);
    }

    /// Terminate issued while the resource is pending: RHS gave up on the
    /// pending operation after PendingTimeout without an update, and the
    /// resource fails.
    fn pending_expired(&mut self, r: usize) {
        let now = self.log_ns();
        let Some(log) = self.node.as_mut() else {
            return;
        };
        let Some((since, tid)) = log.pending[r] else {
            return;
        };
        log.failing[r] = true;
        if now - since <= PENDING_TIMEOUT * NS_PER_TICK {
            return;
        }
        let state = log.state[r];
        let name = self.resources[r].clone();
        let mut f = finding(Rule::PendingTimeout, &name, RHS_PID, tid.unwrap_or(0));
        if tid.is_none() {
            f.pid = CLUSSVC_PID;
            f.tid = RCM_TID;
        }
        f.entry_point = Some(if state.starts_with("Offline") {
            EntryPoint::Offline
        } else {
            EntryPoint::Online
        });
        f.begin = Timestamp(since);
        self.plant_log(f);
    }

    /// Event 1069 and RCM's view of the failure.
    fn resource_failed(&mut self, r: usize) {
        let name = self.resources[r].clone();
        self.system_event(
            "ERR",
            &format!("Cluster resource '{name}' of type '{RESOURCE_TYPE}' in clustered role '{name}' failed."),
        );
        let mut f = finding(Rule::ResourceFailed, &name, CLUSSVC_PID, RCM_REPLY_TID);
        f.begin = Timestamp(self.log_ns());
        f.group = Some(name);
        self.plant_log(f);
    }

    /// RHS's deadlock monitor fired for resource `r` and RHS is being
    /// terminated: what RCM, RHS and the System channel say, over the next
    /// few milliseconds.
    fn story_recovery(&mut self, r: usize) {
        let name = self.resources[r].clone();
        self.system_event(
            "ERR",
            &format!(
                "A component on the server did not respond in a timely fashion. This caused the cluster resource '{name}' (resource type '{RESOURCE_TYPE}', DLL '{DLL}') to exceed its time-out threshold. As part of cluster health detection, recovery actions will be taken. The cluster will try to automatically recover by terminating and restarting the Resource Hosting Subsystem (RHS) process that is running this resource."
            ),
        );
        self.node_line(
            CLUSSVC_PID,
            RCM_REPLY_TID,
            "WARN",
            "RCM",
            &format!("rcm::RcmResource::HandleMonitorReply: Resource '{name}' has crashed or deadlocked; marking it to run in a separate monitor."),
        );
        self.node_line(
            RHS_PID,
            MONITOR_TID,
            "ERR",
            "RHS",
            "WER report is submitted. Result : WerReportQueued.",
        );
        self.now += super::MS;
        self.system_event("DBG", "The cluster Resource Hosting Subsystem (RHS) process was terminated and will be restarted. This is typically associated with cluster health detection and recovery of a resource. Refer to the System event log to determine which resource and resource DLL is causing the issue.");
        self.now += super::MS;
        let states: Vec<&'static str> = self.node.as_ref().map_or(Vec::new(), |l| l.state.clone());
        for (i, state) in states.into_iter().enumerate() {
            let other = self.resources[i].clone();
            self.rcm(&format!(
                "rcm::RcmMonitor::RestartResources: Monitor restart for resource {other}"
            ));
            self.rcm(&format!(
                "rcm::RcmResource::ReattachToMonitorProcess: ({other}, {state})"
            ));
        }
        self.rcm(&format!(
            "Separate monitor flag has changed for resource '{name}'.  Now hosted by RHS process 0"
        ));
        self.now += super::MS;
        self.transition(r, "ProcessingFailure");
        self.resource_failed(r);
        // The deadlock, blocked from RCM's issue until the monitor fired;
        // the monitor's line came first, RHS's "handling deadlock" a
        // millisecond later.
        if let Some((ep, begin)) = self.node.as_ref().and_then(|l| l.issued[r]) {
            let fired = self.node.as_ref().and_then(|l| l.fired);
            let mut f = finding(Rule::DeadlockTimeout, &name, RHS_PID, Self::tid(r));
            f.entry_point = Some(ep);
            f.begin = Timestamp(begin);
            f.duration_ns = fired.map(|t| t - begin);
            f.never_returned = true;
            f.group = Some(name.clone());
            self.plant_log(f);
        }
    }

    /// RHS's deadlock monitor fired (`restart` false) or RHS says it
    /// recovers by restarting (true); the lines are written as in the
    /// instrumented log.
    fn story_deadlock(&mut self, r: usize, restart: bool) {
        if self.node.is_none() {
            return;
        }
        if restart {
            let mut f = finding(Rule::RhsRestart, &self.resources[r], RHS_PID, MONITOR_TID);
            f.begin = Timestamp(self.log_ns());
            self.plant_log(f);
        } else {
            let at = self.log_ns();
            if let Some(log) = self.node.as_mut() {
                log.fired = Some(at);
            }
        }
    }

    fn plant_log(&mut self, f: Finding) {
        if let Some(log) = self.node.as_mut() {
            log.findings.push(f);
        }
    }

    /// Ends the log: hangs measured to its last line; the file written.
    /// Returns the findings the log shows.
    pub(super) fn finish_node_log(&mut self) -> io::Result<Option<Vec<Finding>>> {
        let Some(mut log) = self.node.take() else {
            return Ok(None);
        };
        let end = self.log_ns();
        // Calls RCM issued that never came back, past the threshold by
        // the end of the log: hangs, as long as the log is.
        for (r, issued) in log.issued.iter().enumerate() {
            let Some((ep, begin)) = *issued else {
                continue;
            };
            if end - begin > DEADLOCK_TIMEOUT * NS_PER_TICK {
                let mut f = finding(Rule::Hang, &self.resources[r], RHS_PID, Self::tid(r));
                f.entry_point = Some(ep);
                f.begin = Timestamp(begin);
                f.duration_ns = Some(end - begin);
                f.never_returned = true;
                log.findings.push(f);
            }
        }
        if let Some(out) = self.log.as_mut() {
            log.write(&self.resources, &mut **out)?;
        }
        let mut findings = log.findings;
        findings.sort();
        Ok(Some(findings))
    }
}
