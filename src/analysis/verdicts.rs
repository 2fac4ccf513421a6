//! The findings as a reader takes them in: one verdict per incident or per
//! group of identical findings, most severe first. A deadlock takes the
//! hang of the same call, the misuse it blocked in and the RHS restart it
//! caused; identical findings (rule, resource, entry point, API, usage)
//! become one verdict with a count, first and last time and the range of
//! their durations. The findings themselves stay as they are.

use std::collections::HashMap;

use crate::model::time::SECOND_NS;
use crate::model::{EntryPoint, Rule, Severity, Timestamp, UsageCode};

use super::Reported;

/// How soon after a deadlock report RHS's restart belongs to it.
const RESTART_WINDOW_NS: i64 = 60 * SECOND_NS;

/// One line of the verdict.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    /// 0: the RHS process was lost or a call never returned (deadlock,
    /// hang, restart); 1: other errors; 2: warnings.
    pub rank: u8,
    /// The finding that leads (its rule, resource, call).
    pub lead: usize,
    /// Every finding the verdict stands for, the lead first (indices into
    /// the analysis's findings).
    pub findings: Vec<usize>,
    /// Of those, the findings identical to the lead.
    pub count: usize,
    pub first: Timestamp,
    pub last: Timestamp,
    /// The shortest and longest duration among the identical findings.
    pub min_ns: Option<i64>,
    pub max_ns: Option<i64>,
    /// The call the lead blocked in, where another finding names it.
    pub blocked_in: Option<Blocked>,
    /// RHS restarted because of it.
    pub restarted: bool,
}

/// A call a deadlock or hang blocked in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Blocked {
    pub api: String,
    pub usage: Option<UsageCode>,
    pub target: Option<String>,
}

/// What makes findings identical.
type Key<'a> = (
    Rule,
    Severity,
    Option<&'a str>,
    Option<EntryPoint>,
    Option<&'a str>,
    Option<UsageCode>,
    Option<&'a str>,
);

fn key(r: &Reported) -> Key<'_> {
    let f = &r.finding;
    (
        f.rule,
        f.severity,
        f.resource.as_deref(),
        f.entry_point,
        f.api.as_deref(),
        f.usage,
        r.node.as_deref(),
    )
}

fn rank(r: &Reported) -> u8 {
    match (r.finding.rule, r.finding.severity) {
        (Rule::DeadlockTimeout | Rule::Hang | Rule::RhsRestart, _) => 0,
        (_, Severity::Error) => 1,
        (_, Severity::Warning) => 2,
    }
}

/// The same call: the thread and the begin (or, across a log and a
/// trace, within the log's millisecond).
fn same_call(a: &Reported, b: &Reported) -> bool {
    let (a, b) = (&a.finding, &b.finding);
    a.pid == b.pid && a.tid == b.tid && (a.begin.0 - b.begin.0).abs() < 1_000_000
}

/// A call made inside the lead's span and open when it ended (or still).
fn blocked_inside(lead: &Reported, call: &Reported) -> bool {
    let (l, c) = (&lead.finding, &call.finding);
    let end = l.begin.0 + l.duration_ns.unwrap_or(0);
    c.rule == Rule::ApiMisuse
        && c.pid == l.pid
        && c.tid == l.tid
        && c.begin.0 >= l.begin.0
        && c.begin.0 <= end
        && (c.never_returned || c.begin.0 + c.duration_ns.unwrap_or(0) >= end)
}

/// The verdicts over `findings`, most severe first.
pub fn verdicts(findings: &[Reported]) -> Vec<Verdict> {
    let mut taken = vec![false; findings.len()];
    let mut out: Vec<Verdict> = Vec::new();
    // Deadlocks first, then hangs no deadlock took: each an incident with
    // the findings about the same call.
    for lead_rule in [Rule::DeadlockTimeout, Rule::Hang] {
        for (i, lead) in findings.iter().enumerate() {
            if taken[i] || lead.finding.rule != lead_rule {
                continue;
            }
            taken[i] = true;
            let mut members = vec![i];
            let mut blocked_in = lead.finding.api.clone().map(|api| Blocked {
                api,
                usage: lead.finding.usage,
                target: lead.target.clone(),
            });
            let mut restarted = false;
            let fired = lead.finding.begin.0 + lead.finding.duration_ns.unwrap_or(0);
            for (j, other) in findings.iter().enumerate() {
                if taken[j] || other.node != lead.node {
                    continue;
                }
                let joins = match other.finding.rule {
                    Rule::Hang => same_call(lead, other),
                    Rule::ApiMisuse => blocked_inside(lead, other),
                    Rule::RhsRestart => {
                        lead_rule == Rule::DeadlockTimeout
                            && other.finding.resource == lead.finding.resource
                            && (0..=RESTART_WINDOW_NS).contains(&(other.finding.begin.0 - fired))
                    }
                    _ => false,
                };
                if !joins {
                    continue;
                }
                taken[j] = true;
                members.push(j);
                match other.finding.rule {
                    Rule::RhsRestart => restarted = true,
                    Rule::ApiMisuse if blocked_in.is_none() => {
                        blocked_in = other.finding.api.clone().map(|api| Blocked {
                            api,
                            usage: other.finding.usage,
                            target: other.target.clone(),
                        })
                    }
                    _ => {}
                }
            }
            let f = &lead.finding;
            out.push(Verdict {
                rank: 0,
                lead: i,
                findings: members,
                count: 1,
                first: f.begin,
                last: f.begin,
                min_ns: f.duration_ns,
                max_ns: f.duration_ns,
                blocked_in,
                restarted,
            });
        }
    }
    // The rest, identical ones together: one pass, groups in the order
    // each first appears (thousands of identical findings are common).
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of: HashMap<Key, usize> = HashMap::new();
    for i in (0..findings.len()).filter(|&i| !taken[i]) {
        let g = *group_of.entry(key(&findings[i])).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    for same in groups {
        let i = same[0];
        let members: Vec<&Reported> = same.iter().map(|&j| &findings[j]).collect();
        let durations = members.iter().filter_map(|r| r.finding.duration_ns);
        out.push(Verdict {
            rank: rank(&findings[i]),
            lead: i,
            count: same.len(),
            first: members
                .iter()
                .map(|r| r.finding.begin)
                .min()
                .unwrap_or_default(),
            last: members
                .iter()
                .map(|r| r.finding.begin)
                .max()
                .unwrap_or_default(),
            min_ns: durations.clone().min(),
            max_ns: durations.max(),
            findings: same,
            blocked_in: None,
            restarted: false,
        });
    }
    out.sort_by_key(|v| (v.rank, findings[v.lead].finding.rule, v.first, v.lead));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Finding, ThreadKind};

    fn reported(rule: Rule, tid: u32, begin: i64, dur: Option<i64>, api: Option<&str>) -> Reported {
        Reported {
            trace: "t".into(),
            node: None,
            finding: Finding {
                rule,
                severity: if rule == Rule::SlowEntryPoint {
                    Severity::Warning
                } else {
                    Severity::Error
                },
                resource: Some("R".into()),
                entry_point: Some(EntryPoint::Online),
                api: api.map(str::to_string),
                usage: api.map(|_| UsageCode::DoNotUse),
                thread_kind: api.map(|_| ThreadKind::RhsEntryPoint),
                pid: 1,
                tid,
                begin: Timestamp(begin),
                duration_ns: dur,
                never_returned: matches!(rule, Rule::Hang | Rule::DeadlockTimeout)
                    || (api.is_some() && dur.is_none()),
                status: None,
                group: None,
            },
            blocking: None,
            evidence: Vec::new(),
            incident: None,
            cause: Vec::new(),
            target: None,
            stack: Vec::new(),
            dll: None,
        }
    }

    #[test]
    fn a_deadlock_takes_its_hang_call_and_restart() {
        let s = SECOND_NS;
        let findings = vec![
            reported(
                Rule::ApiMisuse,
                9,
                5 * s,
                Some(1),
                Some("GetClusterResourceState"),
            ),
            reported(
                Rule::ApiMisuse,
                9,
                6 * s,
                Some(1),
                Some("GetClusterResourceState"),
            ),
            reported(
                Rule::ApiMisuse,
                3,
                10 * s + 5,
                None,
                Some("OnlineClusterResource"),
            ),
            reported(Rule::Hang, 3, 10 * s, Some(400 * s), None),
            reported(Rule::SlowEntryPoint, 4, s, Some(2 * s), None),
            reported(Rule::DeadlockTimeout, 3, 10 * s, Some(300 * s), None),
            reported(Rule::RhsRestart, 7, 310 * s + 1, None, None),
        ];
        let v = verdicts(&findings);
        let rows: Vec<(u8, Rule, usize, Vec<usize>)> = v
            .iter()
            .map(|v| {
                (
                    v.rank,
                    findings[v.lead].finding.rule,
                    v.count,
                    v.findings.clone(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (0, Rule::DeadlockTimeout, 1, vec![5, 2, 3, 6]),
                (1, Rule::ApiMisuse, 2, vec![0, 1]),
                (2, Rule::SlowEntryPoint, 1, vec![4]),
            ]
        );
        assert!(v[0].restarted);
        assert_eq!(
            v[0].blocked_in.as_ref().map(|b| b.api.as_str()),
            Some("OnlineClusterResource")
        );
        assert_eq!(
            (v[1].first, v[1].last),
            (Timestamp(5 * s), Timestamp(6 * s))
        );
    }
}
