//! Which charts a report draws for one analysis, and what each shows:
//! the whole timeline and zooms on the incidents, blocking time, durations
//! against their budgets, and hangs against their thresholds, each drawn
//! with the thresholds the analysis held its resources to.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::charts::{self, secs};
use super::{story, ReportError};
use crate::analysis::{Analysis, Reported, Threshold};
use crate::model::{label, EntryPoint, Rule};

/// Lanes of a timeline and verdicts zoomed on per trace, at most.
const MAX_LANES: usize = 30;
const MAX_ZOOMS: usize = 6;
const MAX_BARS: usize = 25;

/// A chart in the report.
pub(super) struct Chart {
    pub file: String,
    pub title: String,
}

/// Every chart of one analysis, named `prefix-*`.
pub(super) fn trace_charts(
    a: &Analysis,
    dir: &Path,
    prefix: &str,
) -> Result<Vec<Chart>, ReportError> {
    let mut out = timeline_charts(a, dir, prefix)?;
    out.extend(blocking_charts(a, dir, prefix)?);
    out.push(durations_chart(a, dir, prefix)?);
    out.extend(hangs_chart(a, dir, prefix)?);
    Ok(out)
}

/// The thresholds a verdict's lead finding is held to, as lines on a
/// timeline (seconds since the start).
fn threshold_marks(a: &Analysis, r: &Reported) -> Vec<charts::Mark> {
    let f = &r.finding;
    let begin = secs(a, f.begin.ns());
    let at = |ns: i64| begin + ns as f64 / 1e9;
    let mut marks = vec![charts::Mark {
        x: secs(a, a.spans.last_ns.unwrap_or(0)),
        colour: charts::END,
        label: "the inputs end".into(),
    }];
    let budget = story::budget_of(a, r);
    let budget_mark = || charts::Mark {
        x: at(budget),
        colour: charts::BUDGET,
        label: format!("budget {} after the call began", story::threshold(budget)),
    };
    // A resource's timeout: where it comes from, and what it counts from.
    let timeout_mark =
        |t: crate::analysis::Threshold, colour, name: &str, from: &str| charts::Mark {
            x: at(t.ns),
            colour,
            label: format!(
                "{name} {} ({}) after {from}",
                story::threshold(t.ns),
                t.from
            ),
        };
    match f.rule {
        Rule::Hang | Rule::DeadlockTimeout => {
            let t = r.incident.as_ref().map_or_else(
                || a.deadlock_timeout(f.resource.as_deref()),
                |i| i.threshold,
            );
            marks.push(timeout_mark(
                t,
                charts::DEADLOCK,
                "DeadlockTimeout",
                "the call began",
            ));
            marks.push(budget_mark());
        }
        Rule::SlowEntryPoint => marks.push(budget_mark()),
        Rule::PendingTimeout => {
            let t = a.pending_timeout(f.resource.as_deref());
            marks.push(timeout_mark(
                t,
                charts::PENDING,
                "PendingTimeout",
                "the last status",
            ));
        }
        _ => {}
    }
    marks
}

/// Where to zoom for a verdict: around a short call; around the begin and
/// (for a long one) the end of a long call or pending operation.
fn zoom_windows(a: &Analysis, r: &Reported, end_s: f64) -> Vec<(f64, f64, &'static str)> {
    let f = &r.finding;
    let begin = secs(a, f.begin.ns());
    let length = match f.rule {
        Rule::PendingTimeout => a.pending_timeout(f.resource.as_deref()).ns as f64 / 1e9,
        _ => f.duration_ns.map_or(end_s - begin, |d| d as f64 / 1e9),
    }
    .max(0.0);
    let end = begin + length;
    let clamp = |(x0, x1, what): (f64, f64, &'static str)| {
        let margin = (x1 - x0) * 0.05;
        (x0.max(0.0), x1.min(end_s + margin), what)
    };
    if length > 10.0 {
        vec![
            clamp((begin - 2.0, begin + 3.0, "its begin")),
            clamp((end - 3.0, end + 2.0, "its end")),
        ]
    } else {
        let pad = (length * 0.5).max(0.002);
        vec![clamp((begin - pad, end + pad, ""))]
    }
}

/// The whole-trace timeline, and zooms on each of the first verdicts about
/// calls.
fn timeline_charts(a: &Analysis, dir: &Path, prefix: &str) -> Result<Vec<Chart>, ReportError> {
    let mut out = Vec::new();
    let first = a.spans.first_ns.unwrap_or(0);
    let end_s = secs(a, a.spans.last_ns.unwrap_or(first)).max(1e-3);
    let (lanes, left_out) = charts::lanes(a, MAX_LANES);
    let height = (160 + 34 * lanes.len().max(8)) as u32;
    let name = format!("{prefix}-timeline");
    charts::render(dir, &name, height, |root| {
        charts::timeline(
            root,
            a,
            (&lanes, left_out),
            (0.0, end_s),
            "Thread timeline: the whole trace",
            &[],
        )
    })?;
    out.push(Chart {
        file: name,
        title: "Thread timeline, the whole trace".into(),
    });
    let zoomed = a
        .verdicts
        .iter()
        .enumerate()
        .filter(|(_, v)| zoomable(a.findings[v.lead].finding.rule));
    for (n, v) in zoomed.take(MAX_ZOOMS) {
        let r = &a.findings[v.lead];
        let marks = threshold_marks(a, r);
        for (k, (from, to, what)) in zoom_windows(a, r, end_s).into_iter().enumerate() {
            let name = format!("{prefix}-verdict-{}-{}", n + 1, k + 1);
            let around = if what.is_empty() {
                String::new()
            } else {
                format!(" (around {what})")
            };
            let f = &r.finding;
            let what = [
                f.resource.clone(),
                f.entry_point.map(|e| e.to_string()),
                Some(format!("thread {}", f.tid)),
                f.api
                    .clone()
                    .or_else(|| v.blocked_in.as_ref().map(|b| b.api.clone())),
            ];
            let what: Vec<String> = what.into_iter().flatten().collect();
            let title = format!(
                "Verdict {}{around}: {} {}",
                n + 1,
                label(&f.rule),
                what.join(" ")
            );
            charts::render(dir, &name, height, |root| {
                charts::timeline(root, a, (&lanes, left_out), (from, to), &title, &marks)
            })?;
            // The caption says the whole verdict.
            let title = format!("Verdict {}{around}: {}", n + 1, story::sentence(a, v));
            out.push(Chart { file: name, title });
        }
    }
    Ok(out)
}

/// Whether a verdict's lead calls for a zoomed timeline: it is about a
/// call or a pending operation.
fn zoomable(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::ApiMisuse
            | Rule::Hang
            | Rule::DeadlockTimeout
            | Rule::PendingTimeout
            | Rule::SlowEntryPoint
    )
}

/// Blocking time per API and per entry point, from the analysis' split of
/// each call.
fn blocking_charts(a: &Analysis, dir: &Path, prefix: &str) -> Result<Vec<Chart>, ReportError> {
    type Parts = BTreeMap<String, (f64, f64, f64)>;
    let add = |map: &mut Parts, key: String, b: &crate::analysis::Blocking| {
        let e = map.entry(key).or_default();
        e.0 += b.running_ns.unwrap_or(b.total_ns) as f64 / 1e6;
        e.1 += b.ready_ns.unwrap_or(0) as f64 / 1e6;
        e.2 += b.waiting_ns.unwrap_or(0) as f64 / 1e6;
    };
    let mut by_api = Parts::new();
    for c in &a.spans.calls {
        let facts = a.call(c);
        add(&mut by_api, facts.api.clone(), &facts.blocking.get());
    }
    let mut by_ep = Parts::new();
    for e in &a.spans.entries {
        add(
            &mut by_ep,
            e.entry_point.to_string(),
            &a.entry(e).blocking.get(),
        );
    }
    let wall_clock_only = a.spans.context_switches == 0;
    let mut out = Vec::new();
    for (what, map) in [("API", by_api), ("entry point", by_ep)] {
        if map.is_empty() {
            continue;
        }
        let mut rows: Vec<(String, f64, f64, f64)> =
            map.into_iter().map(|(k, v)| (k, v.0, v.1, v.2)).collect();
        rows.sort_by(|x, y| (y.1 + y.2 + y.3).total_cmp(&(x.1 + x.2 + x.3)));
        let left = rows.len().saturating_sub(MAX_BARS);
        rows.truncate(MAX_BARS);
        rows.reverse();
        let name = format!(
            "{prefix}-blocking-{}",
            if what == "API" { "api" } else { "entry-point" }
        );
        let title = if left > 0 {
            format!("Blocking time by {what}, all calls together ({left} more not shown)")
        } else {
            format!("Blocking time by {what}, all calls together")
        };
        let h = (140 + 30 * rows.len().max(4)) as u32;
        charts::render(dir, &name, h, |root| {
            charts::blocking(root, &title, &rows, wall_clock_only)
        })?;
        out.push(Chart { file: name, title });
    }
    Ok(out)
}

/// Entry-point durations against the thresholds the analysis used: each
/// entry point's own budget (per resource type, `--budget`), and each
/// resource's PendingTimeout and DeadlockTimeout.
fn durations_chart(a: &Analysis, dir: &Path, prefix: &str) -> Result<Chart, ReportError> {
    // Entry points and their budgets, once each (a node's log has
    // hundreds of thousands of calls of a dozen entry points).
    let mut budgets: BTreeSet<(EntryPoint, i64)> = BTreeSet::new();
    for e in &a.spans.entries {
        budgets.insert((e.entry_point, a.entry(e).budget_ns));
    }
    let mut budgets: Vec<(String, i64)> = budgets
        .into_iter()
        .map(|(ep, ns)| (ep.to_string(), ns))
        .collect();
    budgets.sort();
    // A column per entry point drawn, in name order.
    let mut drawn: BTreeSet<EntryPoint> = BTreeSet::new();
    for e in a.spans.entries.iter().filter(|e| !e.end_unknown()) {
        drawn.insert(e.entry_point);
    }
    let mut columns: Vec<(String, EntryPoint)> =
        drawn.into_iter().map(|ep| (ep.to_string(), ep)).collect();
    columns.sort();
    let points: Vec<charts::DurationPoint> = a
        .spans
        .entries
        .iter()
        .filter(|e| !e.end_unknown())
        .map(|e| charts::DurationPoint {
            column: columns
                .iter()
                .position(|c| c.1 == e.entry_point)
                .unwrap_or(0),
            ms: a.entry(e).duration.ns().unwrap_or(0).max(1) as f64 / 1e6,
            unreturned: e.end_ns().is_none(),
        })
        .collect();
    let columns: Vec<String> = columns.into_iter().map(|c| c.0).collect();
    let one_budget = budgets.windows(2).all(|w| w[0].1 == w[1].1);
    let mut thresholds: Vec<charts::Threshold> = budgets
        .iter()
        .map(|(ep, ns)| charts::Threshold {
            ms: *ns as f64 / 1e6,
            colour: charts::BUDGET,
            label: format!("{ep} budget {}", story::threshold(*ns)),
            category: Some(ep.clone()),
        })
        .collect();
    // One budget for every entry point: one legend line says so.
    if let (true, Some((_, ns))) = (one_budget, budgets.first()) {
        for t in &mut thresholds {
            t.label = format!("budget {} (every entry point)", story::threshold(*ns));
        }
    }
    let resources: Vec<Option<&str>> = if a.resources.is_empty() {
        vec![None]
    } else {
        a.resources.iter().map(|r| Some(r.as_str())).collect()
    };
    for (name, colour, of) in [
        (
            "PendingTimeout",
            charts::PENDING,
            Analysis::pending_timeout as fn(&Analysis, Option<&str>) -> Threshold,
        ),
        (
            "DeadlockTimeout",
            charts::DEADLOCK,
            Analysis::deadlock_timeout,
        ),
    ] {
        // Resources by the value they are held to; the legend names them
        // when the values differ.
        let mut by_value: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
        for r in &resources {
            by_value
                .entry(of(a, *r).ns)
                .or_default()
                .push(r.unwrap_or("-"));
        }
        let several = by_value.len() > 1;
        for (ns, names) in by_value {
            let whose = match (several, names.len()) {
                (false, _) => String::new(),
                (true, 1..=3) => format!(" ({})", names.join(", ")),
                (true, n) => format!(" ({n} resources)"),
            };
            thresholds.push(charts::Threshold {
                ms: ns as f64 / 1e6,
                colour,
                label: format!("{name} {}{whose}", story::threshold(ns)),
                category: None,
            });
        }
    }
    let name = format!("{prefix}-durations");
    charts::render(dir, &name, 560, |root| {
        charts::durations(root, &columns, &points, &thresholds)
    })?;
    Ok(Chart {
        file: name,
        title:
            "Entry-point durations against each one's budget, PendingTimeout and DeadlockTimeout"
                .into(),
    })
}

/// Calls that never returned, longest first (none: no chart).
fn hangs_chart(a: &Analysis, dir: &Path, prefix: &str) -> Result<Option<Chart>, ReportError> {
    let mut rows: Vec<(String, f64, Option<&str>)> = a
        .spans
        .entries
        .iter()
        .filter(|e| a.entry(e).duration.never_returned())
        .map(|e| {
            (
                format!("{} {} (thread {})", e.resource, e.entry_point, e.tid),
                a.entry(e).duration.ns().unwrap_or(0) as f64 / 1e6,
                Some(&*e.resource),
            )
        })
        .chain(
            a.spans
                .calls
                .iter()
                .filter(|c| a.call(c).duration.never_returned())
                .map(|c| {
                    (
                        format!("{} (thread {})", a.call(c).api, c.tid),
                        a.call(c).duration.ns().unwrap_or(0) as f64 / 1e6,
                        None,
                    )
                }),
        )
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    // The longest-running on top; the rest counted, not drawn.
    rows.sort_by(|x, y| y.1.total_cmp(&x.1));
    let unreturned = rows.len();
    let mut thresholds: Vec<i64> = rows.iter().map(|r| a.deadlock_timeout(r.2).ns).collect();
    thresholds.sort_unstable();
    thresholds.dedup();
    let deadlocks: Vec<(f64, String)> = thresholds
        .into_iter()
        .map(|ns| {
            (
                ns as f64 / 1e6,
                format!("DeadlockTimeout {}", story::threshold(ns)),
            )
        })
        .collect();
    rows.truncate(MAX_BARS);
    rows.reverse();
    let bars: Vec<(String, f64)> = rows.into_iter().map(|r| (r.0, r.1)).collect();
    let shown = if unreturned > bars.len() {
        format!(" ({} longest shown)", bars.len())
    } else {
        String::new()
    };
    let reports = match a.spans.deadlocks.len() {
        1 => "1 deadlock-monitor report".to_string(),
        n => format!("{n} deadlock-monitor reports"),
    };
    let caption = format!("Calls that never returned: {unreturned}{shown}; {reports}");
    let name = format!("{prefix}-hangs");
    let h = (140 + 30 * bars.len().max(4)) as u32;
    charts::render(dir, &name, h, |root| {
        charts::hangs(root, &bars, &caption, &deadlocks)
    })?;
    Ok(Some(Chart {
        file: name,
        title: caption,
    }))
}
