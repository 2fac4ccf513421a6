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
        let field =
            ModelField::from_name(field).ok_or_else(|| format!("unknown model field {field:?}"))?;
        self.set_field(field, FieldValue::Text(value.into()))
    }

    /// Sets a model field: text as [`Record::set`] reads it, or a number
    /// (a decoded event's integer field) as its decimal text would read.
    pub fn set_field(&mut self, field: ModelField, value: FieldValue<'_>) -> Result<(), String> {
        use ModelField as F;
        let number = || value.number(field);
        match field {
            F::Status => self.status = Some(number()?),
            F::Thread => self.thread = Some(number()? as u32),
            F::OldThread => self.old_thread = Some(number()? as u32),
            F::WaitReason => self.wait_reason = Some(number()? as u8),
            F::Process => self.process = Some(number()? as u32),
            F::Event => self.event = Some(number()? as u32),
            F::Address => self.address = Some(number()?),
            F::EntryPoint => {
                self.entry_point = Some(
                    value
                        .into_text()
                        .parse()
                        .map_err(|e: super::UnknownEntryPoint| e.to_string())?,
                )
            }
            // Trailing white space trimmed, from any input: log patterns
            // may keep the space RHS writes before `<name>` (they stay
            // one-pass that way: see providers/README.md).
            F::ResourceType => {
                let text = value.into_text();
                self.resource_type = Some(match text.trim_end().len() {
                    n if n == text.len() => text.into_owned(),
                    n => text[..n].to_string(),
                })
            }
            F::Resource => self.resource = Some(value.into_text().into_owned()),
            F::Api => self.api = Some(value.into_text().into_owned()),
            F::Target => self.target = Some(value.into_text().into_owned()),
            F::State => self.state = Some(value.into_text().into_owned()),
            F::Message => self.message = Some(value.into_text().into_owned()),
            F::Image => self.image = Some(value.into_text().into_owned()),
            F::Group => self.group = Some(value.into_text().into_owned()),
            F::Node => self.node = Some(value.into_text().into_owned()),
        }
        Ok(())
    }
}

/// A model field, as [`FIELDS`] names it: definitions name their fields
/// once, when they are loaded, not for every event or line they map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelField {
    Resource,
    ResourceType,
    EntryPoint,
    Api,
    Target,
    Status,
    Thread,
    OldThread,
    WaitReason,
    State,
    Message,
    Process,
    Image,
    Event,
    Group,
    Node,
    Address,
}

impl ModelField {
    /// In [`FIELDS`]' order.
    pub const ALL: [ModelField; 17] = [
        ModelField::Resource,
        ModelField::ResourceType,
        ModelField::EntryPoint,
        ModelField::Api,
        ModelField::Target,
        ModelField::Status,
        ModelField::Thread,
        ModelField::OldThread,
        ModelField::WaitReason,
        ModelField::State,
        ModelField::Message,
        ModelField::Process,
        ModelField::Image,
        ModelField::Event,
        ModelField::Group,
        ModelField::Node,
        ModelField::Address,
    ];

    pub fn name(self) -> &'static str {
        FIELDS[self as usize]
    }

    pub fn from_name(name: &str) -> Option<ModelField> {
        FIELDS
            .iter()
            .position(|f| *f == name)
            .map(|i| ModelField::ALL[i])
    }
}

/// A value for a model field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue<'v> {
    Text(std::borrow::Cow<'v, str>),
    Number(u64),
}

impl<'v> FieldValue<'v> {
    fn number(&self, field: ModelField) -> Result<u64, String> {
        match self {
            FieldValue::Number(n) => Ok(*n),
            FieldValue::Text(t) => {
                parse_u64(t).ok_or_else(|| format!("{} {:?} is not a number", field.name(), &**t))
            }
        }
    }

    fn into_text(self) -> std::borrow::Cow<'v, str> {
        match self {
            FieldValue::Text(t) => t,
            FieldValue::Number(n) => n.to_string().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record::new(RecordKind::ApiCallEnd, 5, Evidence::Live { sequence: 1 })
    }

    #[test]
    fn model_fields_are_named_in_fields_order() {
        for (i, f) in ModelField::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i);
            assert_eq!(f.name(), FIELDS[i]);
            assert_eq!(ModelField::from_name(FIELDS[i]), Some(*f));
        }
        assert_eq!(ModelField::from_name("resource_type"), None);
        assert_eq!(ModelField::from_name(""), None);
    }

    #[test]
    fn numbers_and_text_set_a_field_alike() {
        let mut by_text = record();
        let mut by_value = record();
        for (field, text, number) in [
            ("status", "0x80070005", 0x8007_0005u64),
            ("thread", "4242", 4242),
            ("address", "0X10", 16),
            ("resource", "17", 17),
        ] {
            by_text.set(field, text).unwrap();
            let f = ModelField::from_name(field).unwrap();
            by_value.set_field(f, FieldValue::Number(number)).unwrap();
        }
        assert_eq!(by_text.status, Some(0x8007_0005));
        assert_eq!(by_text.thread, Some(4242));
        assert_eq!(by_text.address, Some(16));
        assert_eq!(by_text.resource.as_deref(), Some("17"));
        assert_eq!(by_value, by_text);
    }

    #[test]
    fn bad_values_name_the_field() {
        let mut r = record();
        assert_eq!(
            r.set("status", "E_FAIL").unwrap_err(),
            "status \"E_FAIL\" is not a number"
        );
        assert_eq!(
            r.set("colour", "red").unwrap_err(),
            "unknown model field \"colour\""
        );
        assert!(r.set("entry-point", "Reboot").is_err());
        assert_eq!(r.status, None);
        assert_eq!(r.entry_point, None);
    }

    #[test]
    fn resource_types_lose_trailing_space_only() {
        let mut r = record();
        r.set("resource-type", " Physical Disk  ").unwrap();
        assert_eq!(r.resource_type.as_deref(), Some(" Physical Disk"));
        r.set_field(ModelField::EntryPoint, FieldValue::Text("Online".into()))
            .unwrap();
        assert_eq!(r.entry_point, Some(EntryPoint::Online));
    }
}
