//! The vocabulary rhscope reasons in: resource DLL entry points, the kinds
//! of thread that call cluster APIs, usage codes, the records events map
//! to, a node's timeline of spans, and findings.

pub mod advice;
pub mod evidence;
pub mod finding;
pub mod record;
pub mod span_vec;
pub mod spans;
pub mod stack;
pub mod time;

use std::fmt;
use std::str::FromStr;

pub use evidence::Evidence;
pub use finding::{Finding, Rule, Severity};
pub use record::{Record, RecordKind};
pub use span_vec::SpanVec;
pub use spans::{ApiSpan, EntrySpan, Spans, Wait, Worker, WorkerIndex};
pub use stack::{Frame, Stack};
pub use time::Timestamp;

/// Entry points RHS calls in a resource DLL (CLRES_V1_FUNCTIONS and the V2
/// forms of CLRES_V2_FUNCTIONS).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[non_exhaustive]
pub enum EntryPoint {
    Open,
    Close,
    Online,
    Offline,
    Terminate,
    LooksAlive,
    IsAlive,
    Arbitrate,
    Release,
    ResourceControl,
    ResourceTypeControl,
    OpenV2,
    OnlineV2,
    OfflineV2,
    Cancel,
}

// Entry points are counted and ranked at `ep as usize`: that must be their
// place in ALL, and ALL must hold every one.
const _: () = {
    assert!(EntryPoint::Cancel as usize + 1 == EntryPoint::ALL.len());
    let mut i = 0;
    while i < EntryPoint::ALL.len() {
        assert!(EntryPoint::ALL[i] as usize == i);
        i += 1;
    }
};

impl EntryPoint {
    pub const ALL: [EntryPoint; 15] = [
        EntryPoint::Open,
        EntryPoint::Close,
        EntryPoint::Online,
        EntryPoint::Offline,
        EntryPoint::Terminate,
        EntryPoint::LooksAlive,
        EntryPoint::IsAlive,
        EntryPoint::Arbitrate,
        EntryPoint::Release,
        EntryPoint::ResourceControl,
        EntryPoint::ResourceTypeControl,
        EntryPoint::OpenV2,
        EntryPoint::OnlineV2,
        EntryPoint::OfflineV2,
        EntryPoint::Cancel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EntryPoint::Open => "Open",
            EntryPoint::Close => "Close",
            EntryPoint::Online => "Online",
            EntryPoint::Offline => "Offline",
            EntryPoint::Terminate => "Terminate",
            EntryPoint::LooksAlive => "LooksAlive",
            EntryPoint::IsAlive => "IsAlive",
            EntryPoint::Arbitrate => "Arbitrate",
            EntryPoint::Release => "Release",
            EntryPoint::ResourceControl => "ResourceControl",
            EntryPoint::ResourceTypeControl => "ResourceTypeControl",
            EntryPoint::OpenV2 => "OpenV2",
            EntryPoint::OnlineV2 => "OnlineV2",
            EntryPoint::OfflineV2 => "OfflineV2",
            EntryPoint::Cancel => "Cancel",
        }
    }
}

impl EntryPoint {
    /// The V1 entry point a V2 form stands for: RHS names its calls
    /// (ONLINERESOURCE, ...) and states (OnlinePending) by those.
    pub fn base(self) -> EntryPoint {
        match self {
            EntryPoint::OpenV2 => EntryPoint::Open,
            EntryPoint::OnlineV2 => EntryPoint::Online,
            EntryPoint::OfflineV2 => EntryPoint::Offline,
            other => other,
        }
    }

    /// The same call of RHS's, in either form.
    pub fn same_call(self, other: EntryPoint) -> bool {
        self.base() == other.base()
    }

    /// The call a resource in a `...Pending` state waits on: Offline for
    /// OfflinePending, Online for the rest.
    pub fn awaited_in(pending_state: &str) -> EntryPoint {
        if pending_state.starts_with("Offline") {
            EntryPoint::Offline
        } else {
            EntryPoint::Online
        }
    }
}

impl fmt::Display for EntryPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown entry point {0:?} (expected one of Open, Close, Online, Offline, Terminate, LooksAlive, IsAlive, Arbitrate, Release, ResourceControl, ResourceTypeControl, OpenV2, OnlineV2, OfflineV2, Cancel)")]
pub struct UnknownEntryPoint(pub String);

impl FromStr for EntryPoint {
    type Err = UnknownEntryPoint;

    /// Any letter case, and the names RHS logs ("LOOKSALIVE",
    /// "ONLINERESOURCE" for Online).
    fn from_str(s: &str) -> Result<EntryPoint, UnknownEntryPoint> {
        let t = s.trim();
        let find = |name: &str| {
            EntryPoint::ALL
                .into_iter()
                .find(|e| e.name().eq_ignore_ascii_case(name))
        };
        find(t)
            .or_else(|| {
                let cut = t.len().checked_sub("resource".len())?;
                let (head, tail) = (t.get(..cut)?, t.get(cut..)?);
                tail.eq_ignore_ascii_case("resource")
                    .then(|| find(head))
                    .flatten()
            })
            .ok_or_else(|| UnknownEntryPoint(s.to_string()))
    }
}

/// The name a value serialises to ("api-misuse", "rhs-entry-point", ...),
/// as tables, reports and CSV show it.
pub fn label<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A usage code of the table of calls to avoid.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum UsageCode {
    DoNotUse,
    WorkerThreadOnly,
    SomeEntryPointsOkay,
}

impl UsageCode {
    pub fn name(self) -> &'static str {
        match self {
            UsageCode::DoNotUse => "do-not-use",
            UsageCode::WorkerThreadOnly => "worker-thread-only",
            UsageCode::SomeEntryPointsOkay => "some-entry-points-okay",
        }
    }
}

impl fmt::Display for UsageCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a thread is, as far as the rules care.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ThreadKind {
    /// An RHS thread that called into the DLL's entry points.
    RhsEntryPoint,
    /// A thread started with ClusWorkerCreate.
    ClusterWorker,
    /// Anything else (or not known).
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_parse_in_any_case() {
        assert_eq!(
            "LOOKSALIVE".parse::<EntryPoint>().unwrap(),
            EntryPoint::LooksAlive
        );
        assert_eq!(
            "onlinev2".parse::<EntryPoint>().unwrap(),
            EntryPoint::OnlineV2
        );
        assert!("Startup".parse::<EntryPoint>().is_err());
        for e in EntryPoint::ALL {
            assert_eq!(e.name().parse::<EntryPoint>().unwrap(), e);
        }
    }
}
