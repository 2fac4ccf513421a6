//! Findings: what rhscope reports, and what the simulator plants as ground
//! truth for the same rules.

use super::{EntryPoint, ThreadKind, Timestamp, UsageCode};

/// The rule a finding comes from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// A call the usage table forbids where it was made.
    ApiMisuse,
    /// An entry point that never returned before the trace ended.
    Hang,
    /// RHS's deadlock monitor fired on an entry point.
    DeadlockTimeout,
    /// A pending Online/Offline went longer than PendingTimeout without a
    /// status update.
    PendingTimeout,
    /// RHS terminated its process to recover.
    RhsRestart,
    /// An entry point returned, but later than its budget.
    SlowEntryPoint,
    /// IsAlive or LooksAlive said the resource is not healthy.
    HealthCheckFailed,
    /// An entry point call failed (Online, a control code, ...).
    CallFailed,
    /// The cluster gave up on a resource (event 1069).
    ResourceFailed,
    /// The cluster could not bring a clustered role online, or gave up on
    /// it (events 1205, 1254).
    RoleFailed,
}

impl Rule {
    pub const ALL: [Rule; 10] = [
        Rule::ApiMisuse,
        Rule::Hang,
        Rule::DeadlockTimeout,
        Rule::PendingTimeout,
        Rule::RhsRestart,
        Rule::SlowEntryPoint,
        Rule::HealthCheckFailed,
        Rule::CallFailed,
        Rule::ResourceFailed,
        Rule::RoleFailed,
    ];

    /// What a finding of this rule is, in a line.
    pub fn summary(self) -> &'static str {
        match self {
            Rule::ApiMisuse => {
                "A cluster API or control code called where the usage table forbids it"
            }
            Rule::Hang => "A resource DLL entry point that never returned",
            Rule::DeadlockTimeout => "RHS's deadlock monitor fired on an entry point",
            Rule::PendingTimeout => {
                "A pending Online/Offline with no status update within PendingTimeout"
            }
            Rule::RhsRestart => "RHS terminated its process to recover from a deadlock",
            Rule::SlowEntryPoint => "An entry point that returned later than its budget",
            Rule::HealthCheckFailed => "IsAlive or LooksAlive reported the resource unhealthy",
            Rule::CallFailed => "An entry point call failed (Online, a control code, ...)",
            Rule::ResourceFailed => "The cluster marked the resource failed (event 1069)",
            Rule::RoleFailed => {
                "The cluster could not bring a clustered role online (events 1205, 1254)"
            }
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    /// The resource the finding concerns.
    pub resource: Option<String>,
    pub entry_point: Option<EntryPoint>,
    /// The API as the usage table names it (a control code logged as a
    /// number is named).
    pub api: Option<String>,
    pub usage: Option<UsageCode>,
    pub thread_kind: Option<ThreadKind>,
    pub pid: u32,
    pub tid: u32,
    /// When the call (or pending operation) began.
    pub begin: Timestamp,
    /// How long it ran (or blocked): to its end, or for a call that never
    /// returned, to the end of what the inputs show (or to RHS's deadlock
    /// report), a lower bound. None where there is no duration to speak of.
    pub duration_ns: Option<i64>,
    /// The call never returned: `duration_ns` is at least how long it ran.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub never_returned: bool,
    /// The Win32 status a failed call or resource gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u64>,
    /// The clustered role (group) concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}
