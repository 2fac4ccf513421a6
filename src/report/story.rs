//! The words every printer uses: one duration per finding ("blocked for X,
//! of which ..."), one sentence per verdict, its why and what to do. Text,
//! HTML and SARIF say the same thing the same way.

use crate::analysis::verdicts::Verdict;
use crate::analysis::{Analysis, Blocking, Reported};
use crate::model::time::{MS_NS, SECOND_NS};
use crate::model::{advice, Finding, Rule, ThreadKind};

/// A length of time as people read it: "2.155 s", "642.000 ms".
pub fn duration(ns: i64) -> String {
    if ns.abs() >= SECOND_NS {
        format!("{:.3} s", ns as f64 / 1e9)
    } else {
        format!("{:.3} ms", ns as f64 / 1e6)
    }
}

/// A threshold as configured: "300 s", "500 ms".
pub fn threshold(ns: i64) -> String {
    if ns % SECOND_NS == 0 && ns >= SECOND_NS {
        format!("{} s", ns / SECOND_NS)
    } else if ns % MS_NS == 0 {
        format!("{} ms", ns / MS_NS)
    } else {
        duration(ns)
    }
}

/// Rules about an instant, not a call: no duration to show.
pub fn instant(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::RhsRestart
            | Rule::PendingTimeout
            | Rule::HealthCheckFailed
            | Rule::ResourceFailed
            | Rule::RoleFailed
    )
}

/// The one duration of a finding: "2.155 s", "at least 300.006 s, never
/// returned", "-" where it has none (an instant), "unknown" where the
/// inputs do not say.
pub fn blocked_for(f: &Finding) -> String {
    blocked(f, |d| format!("at least {d}, never returned"))
}

/// The same, short, for table columns: "≥300.006 s".
pub fn blocked_for_short(f: &Finding) -> String {
    blocked(f, |d| format!("≥{d}"))
}

fn blocked(f: &Finding, never_returned: impl Fn(String) -> String) -> String {
    match f.duration_ns {
        _ if instant(f.rule) => "-".into(),
        None => "unknown".into(),
        Some(ns) if f.never_returned => never_returned(duration(ns)),
        Some(ns) => duration(ns),
    }
}

/// What the thread did meanwhile: "waiting 299.999 s (UserRequest),
/// ready 0.001 ms, running 0.7 ms", or "wall clock" where the trace has no
/// context switches.
pub fn split(b: &Blocking) -> String {
    match (b.waiting_ns, b.ready_ns, b.running_ns) {
        (Some(w), Some(r), Some(run)) => {
            let reasons = if b.wait_reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", b.wait_reasons.join(", "))
            };
            let place = match b.waited_in.first() {
                Some(site) if b.waited_in.len() > 1 => {
                    format!(
                        " in {} (and {} more places)",
                        site.site,
                        b.waited_in.len() - 1
                    )
                }
                Some(site) => format!(" in {}", site.site),
                None => String::new(),
            };
            format!(
                "waiting {}{reasons}{place}, ready {}, running {}",
                duration(w),
                duration(r),
                duration(run)
            )
        }
        _ => "wall clock only (no context switches)".into(),
    }
}

/// Who did it: "AppRes-2's Online", "a worker of AppRes-2", "thread 612".
fn actor(f: &Finding) -> String {
    let res = f.resource.as_deref();
    match (res, f.entry_point, f.thread_kind) {
        (Some(r), Some(ep), _) => format!("{r}'s {ep}"),
        (Some(r), None, Some(ThreadKind::ClusterWorker)) => format!("a worker thread of {r}"),
        (Some(r), None, _) => r.to_string(),
        (None, Some(ep), _) => format!("{ep} (resource unknown)"),
        (None, None, _) => match &f.group {
            Some(g) => format!("role {g}"),
            None => format!("thread {}", f.tid),
        },
    }
}

fn call(api: &str, target: Option<&str>) -> String {
    match target {
        Some(t) if !t.is_empty() => format!("{api}({t})"),
        _ => api.to_string(),
    }
}

/// "16 times between 10:00:01.2 and 10:01:20.0, 0.512 ms to 0.640 ms each"
/// for a group; nothing for one finding.
fn repeats(v: &Verdict) -> String {
    if v.count < 2 {
        return String::new();
    }
    let span = format!(
        " {} times between {} and {}",
        v.count,
        v.first.rfc3339(),
        v.last.rfc3339()
    );
    match (v.min_ns, v.max_ns) {
        (Some(a), Some(b)) if a != b => format!("{span}, {} to {} each", duration(a), duration(b)),
        (Some(a), Some(_)) => format!("{span}, {} each", duration(a)),
        _ => span,
    }
}

/// What happened, in one sentence.
pub fn sentence(a: &Analysis, v: &Verdict) -> String {
    let r = &a.findings[v.lead];
    let f = &r.finding;
    let mut who = actor(f);
    // Seen in stacks only: the DLL is known, the resource only where a
    // log line on that thread names it.
    if let (None, Some(dll)) = (&f.resource, &r.dll) {
        who = match f.entry_point {
            Some(ep) => format!("{dll}'s {ep} (resource not named by any log line)"),
            None => format!("a {dll} worker thread"),
        };
    }
    let from_stacks = if r.stack.is_empty() {
        ""
    } else {
        " [seen in its thread's stacks]"
    };
    format!("{}{from_stacks}", what_happened(a, v, r, who))
}

fn what_happened(a: &Analysis, v: &Verdict, r: &Reported, who: String) -> String {
    let f = &r.finding;
    let thread = format!("(thread {})", f.tid);
    let blocked_in = v.blocked_in.as_ref().map_or(String::new(), |b| {
        let usage = b
            .usage
            .map_or(String::new(), |u| format!(" ({})", u.words()));
        format!(" in {}{usage}", call(&b.api, b.target.as_deref()))
    });
    match f.rule {
        Rule::DeadlockTimeout => {
            let threshold_ns = r.incident.as_ref().map(|i| i.threshold.ns);
            let against = threshold_ns.map_or(String::new(), |t| {
                format!(" (its DeadlockTimeout is {})", threshold(t))
            });
            let dur = f.duration_ns.map_or(String::new(), |d| format!(" {}", duration(d)));
            format!(
                "{who} {thread} blocked{dur}{blocked_in} until RHS's deadlock monitor fired{against}{}",
                if v.restarted { " and RHS restarted" } else { "" }
            )
        }
        Rule::Hang => format!(
            "{who} {thread} blocked{blocked_in} for {}, and had not returned when the inputs end",
            f.duration_ns.map_or("an unknown time".into(), |d| format!("at least {}", duration(d)))
        ),
        Rule::RhsRestart => format!(
            "RHS (pid {}) terminated itself to recover{}",
            f.pid,
            f.resource.as_deref().map_or(String::new(), |r| format!(" from {r}"))
        ),
        Rule::PendingTimeout => format!(
            "{who} went pending and reported nothing more for longer than its PendingTimeout ({}){}",
            threshold(a.pending_timeout(f.resource.as_deref()).ns),
            repeats(v)
        ),
        Rule::ApiMisuse => format!(
            "{who} {thread} called {}{}{}",
            call(f.api.as_deref().unwrap_or("?"), r.target.as_deref()),
            f.usage.map_or(String::new(), |u| format!(" ({})", u.words())),
            if v.count < 2 {
                f.duration_ns
                    .map_or(String::new(), |_| format!(", blocked for {}", blocked_for(f)))
            } else {
                repeats(v)
            }
        ),
        Rule::SlowEntryPoint => format!(
            "{who} returned after {} (its budget is {}){}",
            blocked_for(f),
            threshold(budget_of(a, r)),
            repeats(v)
        ),
        Rule::HealthCheckFailed => format!("{who} said the resource is unhealthy{}", repeats(v)),
        Rule::CallFailed => format!(
            "{who}{} failed{}{}",
            f.api.as_deref().map_or(String::new(), |c| format!(" ({c})")),
            f.status.map_or(String::new(), |s| format!(" with status {s}")),
            repeats(v)
        ),
        Rule::ResourceFailed => format!(
            "The cluster marked {} failed{}{}",
            f.resource.as_deref().unwrap_or("a resource"),
            f.status.map_or(String::new(), |s| format!(" (status {s})")),
            repeats(v)
        ),
        Rule::RoleFailed => format!(
            "Role {} failed{}",
            f.group.as_deref().unwrap_or("?"),
            repeats(v)
        ),
    }
}

/// The budget an entry-point finding was held to.
pub fn budget_of(a: &Analysis, r: &Reported) -> i64 {
    let f = &r.finding;
    a.spans
        .entries
        .iter()
        .find(|e| e.pid == f.pid && e.tid == f.tid && e.begin_ns == f.begin.ns())
        .map_or(a.config.default_budget_ns, |e| a.entry(e).budget_ns)
}

/// Why the verdict matters.
pub fn why(a: &Analysis, v: &Verdict) -> String {
    advice::why(&lead_with_call(a, v))
}

/// What to do about it.
pub fn fix(a: &Analysis, v: &Verdict) -> String {
    advice::fix(&lead_with_call(a, v))
}

/// The lead finding with the call it blocked in, where another finding of
/// the verdict names it.
fn lead_with_call(a: &Analysis, v: &Verdict) -> Finding {
    let mut f = a.findings[v.lead].finding.clone();
    if let (None, Some(b)) = (&f.api, &v.blocked_in) {
        f.api = Some(b.api.clone());
        f.usage = b.usage;
    }
    f
}
