//! Why each kind of finding matters and what to do about it, per rule and,
//! for misuse, per usage code: the usage notes of "Function Calls to Avoid
//! in Resource DLLs" and RHS's thresholds, in rhscope's own words. Every
//! printer (text, HTML, SARIF) says the same.

use super::{EntryPoint, Finding, Rule, UsageCode};

impl UsageCode {
    /// The usage code in words, as a reader meets it next to an API name.
    pub fn words(self) -> &'static str {
        match self {
            UsageCode::DoNotUse => "do not use",
            UsageCode::WorkerThreadOnly => "worker thread only",
            UsageCode::SomeEntryPointsOkay => "not from Close, Offline, Online, Open, Terminate",
        }
    }

    /// Why a call of this code deadlocks where it was made.
    pub fn why(self) -> &'static str {
        match self {
            UsageCode::DoNotUse => {
                "it changes the cluster's configuration or a resource's or group's state \
                 (dependencies, group membership, node lists, creation, deletion, online or \
                 offline), which the cluster service carries out through RHS, the process \
                 that is waiting for this very call to return"
            }
            UsageCode::WorkerThreadOnly => {
                "it waits for the cluster service, and the cluster service may be waiting \
                 for this entry point to return; only a thread RHS is not waiting on (a \
                 ClusWorkerCreate worker) may make it"
            }
            UsageCode::SomeEntryPointsOkay => {
                "RHS does not allow it while Close, Offline, Online, Open or Terminate is \
                 running for the resource: there it can wait on the very operation that \
                 called it"
            }
        }
    }

    /// What the DLL's owner should change.
    pub fn fix(self) -> &'static str {
        match self {
            UsageCode::DoNotUse => {
                "never call it from a resource DLL; a change of this kind belongs to the \
                 administrator or to a management tool outside RHS"
            }
            UsageCode::WorkerThreadOnly => {
                "make the call on a worker started with ClusWorkerCreate; in Online or \
                 Offline return ERROR_IO_PENDING and report the outcome with \
                 SetResourceStatus"
            }
            UsageCode::SomeEntryPointsOkay => {
                "move the call out of Close, Offline, Online, Open and Terminate: into \
                 another entry point, or onto a ClusWorkerCreate worker"
            }
        }
    }
}

impl Rule {
    /// Why findings of this rule matter (for misuse, see the usage code).
    pub fn why(self) -> &'static str {
        match self {
            Rule::ApiMisuse => {
                "the usage table lists calls that can deadlock when a resource DLL makes \
                 them from the wrong entry point or thread"
            }
            Rule::Hang => {
                "RHS waits for every entry point to return; one that does not holds the \
                 resource's calls, and past its DeadlockTimeout RHS kills the process with \
                 every resource it hosts"
            }
            Rule::DeadlockTimeout => {
                "the call blocked past its DeadlockTimeout, so RHS's deadlock monitor \
                 terminated the RHS process: every resource it hosted went down and \
                 restarted"
            }
            Rule::PendingTimeout => {
                "RHS waits PendingTimeout for a pending Online or Offline to report its \
                 final state, then calls Terminate and the resource fails"
            }
            Rule::RhsRestart => {
                "RHS terminated itself to recover: every resource it hosted restarted with \
                 it"
            }
            Rule::SlowEntryPoint => {
                "RHS's caller waits while an entry point runs; slow health checks delay \
                 failure detection and slow Online/Offline calls delay failover"
            }
            Rule::HealthCheckFailed => {
                "RHS reported the failure to the cluster service, which restarts the \
                 resource or fails its role over"
            }
            Rule::CallFailed => "the entry point returned an error status to RHS",
            Rule::ResourceFailed => {
                "the cluster gave up on the resource on this node after its restart policy"
            }
            Rule::RoleFailed => {
                "the clustered role could not be brought online, or failed over more \
                 often than its threshold allows"
            }
        }
    }

    /// What to do about findings of this rule (for misuse, see the usage
    /// code).
    pub fn fix(self) -> &'static str {
        match self {
            Rule::ApiMisuse => "see the usage code",
            Rule::Hang | Rule::DeadlockTimeout => {
                "the entry point must return within its threshold: do the slow part on a \
                 ClusWorkerCreate worker and return ERROR_IO_PENDING; consider \
                 SeparateMonitor so a hang takes down no other resource"
            }
            Rule::PendingTimeout => {
                "the worker must report progress (SetResourceStatus with a new checkpoint) \
                 and the final state, and must not wait forever: check \
                 ClusWorkerCheckTerminate and bound every wait"
            }
            Rule::RhsRestart => {
                "fix the call that blocked (the deadlock beside it); consider \
                 SeparateMonitor for the resource"
            }
            Rule::SlowEntryPoint => {
                "return quickly: move slow work to a ClusWorkerCreate worker; health checks \
                 should read state the worker keeps"
            }
            Rule::HealthCheckFailed | Rule::CallFailed => {
                "read the DLL's own lines ([RES]) before the failure and the status code \
                 for the cause"
            }
            Rule::ResourceFailed | Rule::RoleFailed => {
                "follow the cause chain to what failed first"
            }
        }
    }
}

/// For a call that blocked in a call the inputs do not show.
const SEE_THE_CALL: &str = "capture a WPR trace with context-switch stacks \
     (providers/rhscope.wprp), or instrument the DLL, to see the call it blocks in";

/// Why this finding matters, in one sentence.
pub fn why(f: &Finding) -> String {
    match (f.rule, &f.api, f.usage) {
        (Rule::ApiMisuse | Rule::DeadlockTimeout | Rule::Hang, Some(api), Some(usage)) => {
            format!("{api} is {}: {}", usage.words(), usage.why())
        }
        (rule, _, _) => capitalise(rule.why()),
    }
}

/// What to do about this finding, in one sentence.
pub fn fix(f: &Finding) -> String {
    let ep = f.entry_point;
    match (f.rule, f.usage) {
        (Rule::ApiMisuse, Some(usage)) => capitalise(usage.fix()),
        (Rule::DeadlockTimeout | Rule::Hang, Some(usage)) => {
            format!(
                "{}; then {}",
                capitalise(usage.fix()),
                rule_fix(f.rule, ep, true)
            )
        }
        (rule, _) => rule_fix(rule, ep, f.api.is_some()),
    }
}

/// A rule's fix, naming the entry point where the text speaks of one;
/// for a blocked call, how to see where it blocked unless `call_known`.
pub fn rule_fix(rule: Rule, ep: Option<EntryPoint>, call_known: bool) -> String {
    let mut text = capitalise(&rule.fix().replacen("the entry point", &entry(ep), 1));
    if matches!(rule, Rule::Hang | Rule::DeadlockTimeout) && !call_known {
        text.push_str("; ");
        text.push_str(SEE_THE_CALL);
    }
    text
}

fn entry(ep: Option<EntryPoint>) -> String {
    ep.map_or("the entry point".into(), |e| e.to_string())
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or(String::new(), |first| {
        first.to_uppercase().chain(c).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Severity, Timestamp};

    fn finding(rule: Rule, api: Option<&str>, usage: Option<UsageCode>) -> Finding {
        Finding {
            rule,
            severity: Severity::Error,
            resource: Some("R".into()),
            entry_point: Some(EntryPoint::OnlineV2),
            api: api.map(str::to_string),
            usage,
            thread_kind: None,
            pid: 1,
            tid: 2,
            begin: Timestamp(0),
            duration_ns: None,
            never_returned: false,
            status: None,
            group: None,
        }
    }

    #[test]
    fn misuse_says_the_usage_code_and_its_fix() {
        let f = finding(
            Rule::ApiMisuse,
            Some("OnlineClusterResource"),
            Some(UsageCode::DoNotUse),
        );
        assert!(why(&f).starts_with("OnlineClusterResource is do not use: it changes"));
        assert!(fix(&f).starts_with("Never call it from a resource DLL"));
        let f = finding(
            Rule::ApiMisuse,
            Some("X"),
            Some(UsageCode::WorkerThreadOnly),
        );
        assert!(fix(&f).contains("ClusWorkerCreate") && fix(&f).contains("ERROR_IO_PENDING"));
    }

    #[test]
    fn a_deadlock_in_a_known_call_says_both_fixes() {
        let f = finding(
            Rule::DeadlockTimeout,
            Some("OnlineClusterResource"),
            Some(UsageCode::DoNotUse),
        );
        let text = fix(&f);
        assert!(text.starts_with("Never call it"), "{text}");
        assert!(
            text.contains("OnlineV2 must return within its threshold"),
            "{text}"
        );
        let f = finding(Rule::PendingTimeout, None, None);
        assert!(why(&f).starts_with("RHS waits PendingTimeout"));
    }
}
