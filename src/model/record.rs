//! Model records: what the provider definitions turn trace events into,
//! whatever provider or file they came from.

use super::{EntryPoint, Evidence};
use crate::read::text::parse_u64;

/// What a model record says happened.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum RecordKind {
    /// RHS called an entry point of the DLL (on this thread).
    EntryPointBegin,
    /// The entry point returned, with its status.
    EntryPointEnd,
    /// The DLL called a cluster API or sent a control code.
    ApiCallBegin,
    ApiCallEnd,
    /// ClusWorkerCreate: this thread created worker `thread`.
    WorkerCreate,
    /// A cluster worker thread ended.
    WorkerExit,
    /// A resource reported a state (SetResourceStatus) or RHS logged one.
    ResourceState,
    /// RHS's deadlock monitor found a call that did not return in time.
    DeadlockTimeout,
    /// RHS is terminating or restarting its process.
    RhsRestart,
    /// Any other RHS diagnostic message.
    RhsMessage,
    ThreadStart,
    ThreadEnd,
    /// `thread` was still running when the trace stopped (rundown at the
    /// end): its stack, if walked, shows where it was.
    ThreadRundown,
    ProcessStart,
    ProcessEnd,
    /// A context switch: `thread` in, `old_thread` out.
    ContextSwitch,
    /// `thread` was readied by this record's thread.
    ReadyThread,
    /// RCM sent an entry-point call for `resource` to RHS (clussvc's
    /// side of a call; the thread that runs it is not this one).
    CallIssued,
    /// RHS queued an entry-point call (which resource it does not say:
    /// calls queue in the order RCM issued them).
    CallQueued,
    /// RHS called into the DLL on this thread.
    CallEntered,
    /// The call ended, as RHS or RCM logged it: `status` (a Win32 code),
    /// `state` ("failed" where the line says so).
    CallReturned,
    /// A line the DLL logged for `resource` through RHS, on this thread:
    /// the thread runs that resource's call.
    ResourceLine,
    /// IsAlive or LooksAlive said the resource is not healthy.
    HealthCheckFailed,
    /// A FailoverClustering event (`event` its id) as the System or
    /// Operational channel logs it.
    ClusterEvent,
    /// RCM restarted `resource` with its RHS process (or reattached it to
    /// the new one, `state` its state then).
    MonitorRestart,
    /// RCM moved `resource` to a separate RHS process of its own.
    SeparateMonitor,
    /// RHS submitted a Windows Error Report.
    WerReport,
    /// A clustered role (`group`) moved from `node` to `target`.
    GroupMoved,
}

/// Model fields a provider definition may fill from an event field.
pub const FIELDS: [&str; 17] = [
    "resource",
    "resource-type",
    "entry-point",
    "api",
    "target",
    "status",
    "thread",
    "old-thread",
    "wait-reason",
    "state",
    "message",
    "process",
    "image",
    "event",
    "group",
    "node",
    "address",
];

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Record {
    pub kind: RecordKind,
    /// Nanoseconds since 1970-01-01 UTC.
    pub time_ns: i64,
    pub pid: Option<u32>,
    pub tid: Option<u32>,
    pub cpu: u16,
    pub resource: Option<String>,
    pub resource_type: Option<String>,
    pub entry_point: Option<EntryPoint>,
    /// API or control-code name, or a control code's number, as logged.
    pub api: Option<String>,
    pub target: Option<String>,
    pub status: Option<u64>,
    /// The other thread: the worker created, the thread started or ended,
    /// switched in, or readied.
    pub thread: Option<u32>,
    /// The thread switched out (context switches).
    pub old_thread: Option<u32>,
    pub wait_reason: Option<u8>,
    pub state: Option<String>,
    pub message: Option<String>,
    pub process: Option<u32>,
    /// An image (file) name: a resource's DLL, a process's executable.
    pub image: Option<String>,
    /// The id of the event it came from, where that says what it is
    /// (FailoverClustering's 1230, 1069, ...).
    pub event: Option<u32>,
    /// A clustered role (group).
    pub group: Option<String>,
    /// A cluster node.
    pub node: Option<String>,
    /// An address the event gives (a thread's start address).
    pub address: Option<u64>,
    /// The stack walked with the event, named (a context switch's stack
    /// is the stack of the thread switching in: where it had waited).
    #[serde(skip)]
    pub stack: Option<super::Stack>,
    /// Where the event that said it is.
    pub evidence: Evidence,
}

impl Record {
    pub fn new(kind: RecordKind, time_ns: i64, evidence: Evidence) -> Record {
        Record {
            kind,
            time_ns,
            pid: None,
            tid: None,
            cpu: 0,
            resource: None,
            resource_type: None,
            entry_point: None,
            api: None,
            target: None,
            status: None,
            thread: None,
            old_thread: None,
            wait_reason: None,
            state: None,
            message: None,
            process: None,
            image: None,
            event: None,
            group: None,
            node: None,
            address: None,
            stack: None,
            evidence,
        }
    }

    /// Sets a model field from text; `field` is one of [`FIELDS`].
    pub fn set(&mut self, field: &str, value: &str) -> Result<(), String> {
        let number =
            || parse_u64(value).ok_or_else(|| format!("{field} {value:?} is not a number"));
        match field {
            "resource" => self.resource = Some(value.to_string()),
            // Trailing white space trimmed, from any input: log patterns
            // may keep the space RHS writes before `<name>` (they stay
            // one-pass that way: see providers/README.md).
            "resource-type" => self.resource_type = Some(value.trim_end().to_string()),
            "entry-point" => {
                self.entry_point = Some(
                    value
                        .parse()
                        .map_err(|e: super::UnknownEntryPoint| e.to_string())?,
                )
            }
            "api" => self.api = Some(value.to_string()),
            "target" => self.target = Some(value.to_string()),
            "status" => self.status = Some(number()?),
            "thread" => self.thread = Some(number()? as u32),
            "old-thread" => self.old_thread = Some(number()? as u32),
            "wait-reason" => self.wait_reason = Some(number()? as u8),
            "state" => self.state = Some(value.to_string()),
            "message" => self.message = Some(value.to_string()),
            "process" => self.process = Some(number()? as u32),
            "image" => self.image = Some(value.to_string()),
            "event" => self.event = Some(number()? as u32),
            "group" => self.group = Some(value.to_string()),
            "node" => self.node = Some(value.to_string()),
            "address" => self.address = Some(number()?),
            other => return Err(format!("unknown model field {other:?}")),
        }
        Ok(())
    }
}
