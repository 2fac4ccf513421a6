//! The report a support engineer attaches to a postmortem: a folder with
//! `index.html` (no network, opens from disk), every chart as SVG and PNG,
//! and `findings.json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;

use super::output::write_folder;
use super::{charts, story, ReportError};
use crate::analysis::hosting::{cluster_view, ClusterRow};
use crate::analysis::{Analysis, Reported, Threshold};
use crate::model::{label, Rule, Severity};

/// Lanes of a timeline and verdicts zoomed on per trace, at most.
const MAX_LANES: usize = 30;
const MAX_ZOOMS: usize = 6;
const MAX_BARS: usize = 25;

pub(super) fn register_fonts() -> Result<(), ReportError> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let loaded = DONE.get_or_init(|| {
        ["sans-serif", "serif", "monospace"]
            .into_iter()
            .all(|family| {
                plotters::style::register_font(family, FontStyle::Normal, dejavu::sans::regular())
                    .is_ok()
            })
    });
    if *loaded {
        Ok(())
    } else {
        Err(ReportError::Font)
    }
}

pub(super) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A chart in the report.
struct Chart {
    file: String,
    title: String,
}

/// Writes the report for `analyses` into `dir` (never one of `inputs`):
/// written in a temporary folder beside it and moved into place whole, so
/// an interrupted run never leaves half a report.
pub fn write_report(
    analyses: &[Analysis],
    dir: &Path,
    inputs: &[&Path],
) -> Result<Vec<PathBuf>, ReportError> {
    register_fonts()?;
    write_folder(dir, inputs, |tmp| write_into(analyses, tmp, dir))
}

/// Writes the report into `dir`; errors name `shown`, the folder the user
/// asked for, not the temporary one. Charts name their file in errors.
fn write_into(analyses: &[Analysis], dir: &Path, shown: &Path) -> Result<(), ReportError> {
    let cannot = |source| ReportError::Io {
        path: shown.to_path_buf(),
        source,
    };
    let charts_dir = dir.join("charts");
    std::fs::create_dir_all(&charts_dir).map_err(cannot)?;
    let mut sections = verdict_list(analyses);
    if analyses.len() > 1 {
        sections.push_str(&cluster_section(&cluster_view(analyses)));
    }
    for (i, a) in analyses.iter().enumerate() {
        let charts = trace_charts(a, &charts_dir, &format!("t{}", i + 1))?;
        sections.push_str(&trace_section(a, &charts));
    }
    let findings: Vec<&Reported> = analyses.iter().flat_map(|a| &a.findings).collect();
    let json = serde_json::to_string_pretty(&findings).map_err(|source| ReportError::Json {
        path: shown.join("findings.json"),
        source,
    })?;
    std::fs::write(dir.join("findings.json"), json + "\n").map_err(cannot)?;
    std::fs::write(dir.join("index.html"), page(analyses, &sections)).map_err(cannot)?;
    Ok(())
}

/// Every chart of one analysis, named `prefix-*`.
fn trace_charts(a: &Analysis, dir: &Path, prefix: &str) -> Result<Vec<Chart>, ReportError> {
    let mut out = timeline_charts(a, dir, prefix)?;
    out.extend(blocking_charts(a, dir, prefix)?);
    out.push(durations_chart(a, dir, prefix)?);
    out.extend(hangs_chart(a, dir, prefix)?);
    Ok(out)
}

/// Seconds since the trace's first event.
fn secs(a: &Analysis, ns: i64) -> f64 {
    (ns - a.spans.first_ns.unwrap_or(0)) as f64 / 1e9
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
    match f.rule {
        Rule::Hang | Rule::DeadlockTimeout => {
            let t = r.incident.as_ref().map_or_else(
                || a.deadlock_timeout(f.resource.as_deref()),
                |i| i.threshold,
            );
            marks.push(charts::Mark {
                x: at(t.ns),
                colour: charts::DEADLOCK,
                label: format!(
                    "DeadlockTimeout {} ({}) after the call began",
                    story::threshold(t.ns),
                    t.from
                ),
            });
            marks.push(charts::Mark {
                x: at(budget),
                colour: charts::BUDGET,
                label: format!("budget {} after the call began", story::threshold(budget)),
            });
        }
        Rule::SlowEntryPoint => marks.push(charts::Mark {
            x: at(budget),
            colour: charts::BUDGET,
            label: format!("budget {} after the call began", story::threshold(budget)),
        }),
        Rule::PendingTimeout => {
            let t = a.pending_timeout(f.resource.as_deref());
            marks.push(charts::Mark {
                x: at(t.ns),
                colour: charts::PENDING,
                label: format!(
                    "PendingTimeout {} ({}) after the last status",
                    story::threshold(t.ns),
                    t.from
                ),
            });
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
        add(&mut by_api, facts.api.clone(), &facts.blocking);
    }
    let mut by_ep = Parts::new();
    for e in &a.spans.entries {
        add(&mut by_ep, e.entry_point.to_string(), &a.entry(e).blocking);
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
    let end_ns = a.spans.last_ns.unwrap_or(a.spans.first_ns.unwrap_or(0));
    let points: Vec<(String, f64, bool)> = a
        .spans
        .entries
        .iter()
        .filter(|e| !e.end_unknown())
        .map(|e| {
            (
                e.entry_point.to_string(),
                (e.end_ns.unwrap_or(end_ns) - e.begin_ns).max(1) as f64 / 1e6,
                e.end_ns.is_none(),
            )
        })
        .collect();
    let mut budgets: Vec<(String, i64)> = a
        .spans
        .entries
        .iter()
        .map(|e| (e.entry_point.to_string(), a.entry(e).budget_ns))
        .collect();
    budgets.sort();
    budgets.dedup();
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
        charts::durations(root, &points, &thresholds)
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
    let end_ns = a.spans.last_ns.unwrap_or(a.spans.first_ns.unwrap_or(0));
    let mut rows: Vec<(String, f64, Option<&str>)> = a
        .spans
        .entries
        .iter()
        .filter(|e| e.end_ns.is_none() && !e.end_unknown())
        .map(|e| {
            (
                format!("{} {} (thread {})", e.resource, e.entry_point, e.tid),
                (end_ns - e.begin_ns) as f64 / 1e6,
                Some(e.resource.as_str()),
            )
        })
        .chain(
            a.spans
                .calls
                .iter()
                .filter(|c| c.end_ns.is_none() && c.end_lost_ns.is_none())
                .map(|c| {
                    (
                        format!("{} (thread {})", a.call(c).api, c.tid),
                        (end_ns - c.begin_ns) as f64 / 1e6,
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

/// One finding's evidence as text, each item with its `at` place.
fn evidence_text(a: &Analysis, r: &Reported) -> String {
    r.evidence
        .iter()
        .map(|e| e.describe(&a.inputs))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The verdict of every analysis, most severe first: one item per incident
/// or group of identical findings, with why it matters and what to do.
fn verdict_list(analyses: &[Analysis]) -> String {
    let mut all: Vec<(&Analysis, &crate::analysis::verdicts::Verdict)> = analyses
        .iter()
        .flat_map(|a| a.verdicts.iter().map(move |v| (a, v)))
        .collect();
    all.sort_by_key(|(a, v)| (v.rank, a.findings[v.lead].finding.rule, v.first));
    if all.is_empty() {
        return "<section><h2>Verdict</h2><p>No findings.</p></section>".into();
    }
    let mut s = String::from("<section><h2>Verdict, most severe first</h2><ol class=\"verdicts\">");
    for (a, v) in all {
        let r = &a.findings[v.lead];
        let sev = label(&r.finding.severity);
        let node = match (&a.node, analyses.len()) {
            (Some(n), 2..) => format!("<span class=\"node\">{}</span> ", html_escape(n)),
            _ => String::new(),
        };
        let _ = write!(
            s,
            "<li class=\"verdict {sev}\"><div class=\"row\"><span class=\"sev\">{sev}</span><div class=\"body\"><div class=\"what\">{node}{}.</div><div class=\"why\"><b>Why:</b> {}.</div><div class=\"fix\"><b>What to do:</b> {}.</div>",
            html_escape(&story::sentence(a, v)),
            html_escape(&story::why(a, v)),
            html_escape(&story::fix(a, v)),
        );
        if let Some(i) = &r.incident {
            let _ = write!(s, "<div class=\"then\"><b>Then:</b><ul>");
            for step in &i.then {
                let _ = write!(
                    s,
                    "<li>{} {}</li>",
                    html_escape(&step.at.rfc3339()),
                    html_escape(&step.what)
                );
            }
            s.push_str("</ul>");
            if !i.collateral.is_empty() {
                let _ = write!(
                    s,
                    "<b>Went down with it:</b> {}",
                    html_escape(&i.collateral.join(", "))
                );
            }
            s.push_str("</div>");
        }
        if !r.cause.is_empty() {
            let _ = write!(s, "<div class=\"then\"><b>What led to it:</b><ul>");
            for c in &r.cause {
                let _ = write!(s, "<li>{}</li>", html_escape(c));
            }
            s.push_str("</ul></div>");
        }
        let _ = write!(
            s,
            "<div class=\"evidence\">Evidence: {}</div></div></div></li>",
            html_escape(&evidence_text(a, r))
        );
    }
    s.push_str("</ol></section>");
    s
}

fn trace_section(a: &Analysis, charts: &[Chart]) -> String {
    let mut s = String::new();
    let errors = a
        .findings
        .iter()
        .filter(|f| f.finding.severity == Severity::Error)
        .count();
    let _ = write!(
        s,
        "<section><h2>{}</h2><table class=\"summary\"><tr><th>time range</th><td>{} .. {}</td></tr><tr><th>resources</th><td>{}</td></tr><tr><th>findings</th><td>{} ({} error, {} warning) in {} verdicts</td></tr><tr><th>model</th><td>{} records, {} context switches{}, {} ends without a begin, {} ends lost, {} ends not logged, {} unparsed lines, {} skipped as corrupt</td></tr>",
        html_escape(&a.node.as_ref().map_or(a.trace.clone(), |n| format!("{n}: {}", a.trace))),
        html_escape(&a.first.map_or("-".into(), |t| t.rfc3339())),
        html_escape(&a.last.map_or("-".into(), |t| t.rfc3339())),
        html_escape(&a.resources.join(", ")),
        a.findings.len(),
        errors,
        a.findings.len() - errors,
        a.verdicts.len(),
        a.records,
        a.context_switches,
        if a.context_switches == 0 { " (blocking is wall-clock only)" } else { "" },
        a.unmatched_ends,
        a.lost_ends,
        a.ends_not_logged,
        a.unparsed_lines,
        a.skipped,
    );
    for n in &a.notes {
        let _ = write!(s, "<tr><th>note</th><td>{}</td></tr>", html_escape(n));
    }
    s.push_str("</table>");
    if !a.findings.is_empty() {
        let _ = write!(
            s,
            "<details><summary>Every finding ({}), in the verdict's order</summary><table class=\"findings\"><tr><th>verdict</th><th>severity</th><th>rule</th><th>resource</th><th>entry point</th><th>API (usage)</th><th>thread</th><th>begin</th><th>blocked for</th><th>of which</th><th>evidence</th></tr>",
            a.findings.len()
        );
        for (n, v) in a.verdicts.iter().enumerate() {
            for &i in &v.findings {
                let r = &a.findings[i];
                let f = &r.finding;
                let split = r
                    .blocking
                    .as_ref()
                    .filter(|_| !story::instant(f.rule) && f.duration_ns.is_some())
                    .map_or("-".into(), story::split);
                let _ = write!(
                    s,
                    "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{} pid {} tid {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    label(&f.severity),
                    n + 1,
                    label(&f.severity),
                    label(&f.rule),
                    html_escape(&super::text::subject(f)),
                    f.entry_point.map_or("-".into(), |e| e.to_string()),
                    html_escape(f.api.as_deref().unwrap_or("-")),
                    f.usage.map_or(String::new(), |u| format!(" ({})", u.words())),
                    f.thread_kind.map_or(String::new(), |k| label(&k)),
                    f.pid,
                    f.tid,
                    html_escape(&f.begin.rfc3339()),
                    html_escape(&story::blocked_for(f)),
                    html_escape(&split),
                    html_escape(&evidence_text(a, r))
                );
            }
        }
        s.push_str("</table></details>");
    }
    for c in charts {
        let _ = write!(
            s,
            "<figure><img src=\"charts/{0}.svg\" alt=\"{1}\"><figcaption>{1} (<a href=\"charts/{0}.png\">PNG</a>)</figcaption></figure>",
            html_escape(&c.file),
            html_escape(&c.title)
        );
    }
    s.push_str("</section>");
    s
}

/// Which node held which resource active, when: one row per node's period.
fn cluster_section(rows: &[ClusterRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from("<section><h2>Cluster</h2><p>Which node held each resource active, when, from each node's own states (RCM's state machine, event 1637, the DLL's reported states). Each row is one node's evidence; nodes are never merged.</p><table class=\"cluster\"><tr><th>resource</th><th>node</th><th>from</th><th>to</th><th>state</th></tr>");
    for r in rows {
        let h = &r.hosting;
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
            html_escape(&h.resource),
            html_escape(&r.node),
            html_escape(&h.from.rfc3339()),
            h.to.map_or("still active at the end".into(), |t| html_escape(
                &t.rfc3339()
            )),
            html_escape(&h.state),
            if h.failed && h.state != "Failed" {
                " (after a failure)"
            } else {
                ""
            }
        );
    }
    s.push_str("</table></section>");
    s
}

fn page(analyses: &[Analysis], sections: &str) -> String {
    let total: usize = analyses.iter().map(|a| a.findings.len()).sum();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>rhscope report</title><style>\
body{{font-family:sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse;margin:8px 0}}\
td,th{{border:1px solid #ccc;padding:3px 6px;font-size:13px;text-align:left;vertical-align:top}}\
tr.error td:first-child{{color:#b00;font-weight:bold}}tr.warning td:first-child{{color:#b60}}\
ol.verdicts{{padding-left:28px}}li.verdict{{margin:0 0 12px 0;line-height:1.35}}\
div.row{{display:grid;grid-template-columns:70px 1fr;column-gap:6px}}\
.sev{{font-size:12px;font-weight:bold;text-transform:uppercase;padding-top:2px}}\
li.error .sev{{color:#b00}}li.warning .sev{{color:#b60}}.node{{font-weight:bold}}.what{{font-weight:bold}}\
.why,.fix,.then,.evidence{{font-size:13px;margin:2px 0 0 0}}.evidence{{color:#555}}\
details{{margin:8px 0}}summary{{cursor:pointer;font-weight:bold}}\
figure{{margin:16px 0}}img{{max-width:100%;border:1px solid #eee}}figcaption{{font-size:13px;color:#555}}\
</style></head><body><h1>rhscope report</h1><p>{} trace(s), {} finding(s). Written by rhscope {}; \
findings also in <a href=\"findings.json\">findings.json</a>.</p>{}</body></html>\n",
        analyses.len(),
        total,
        env!("CARGO_PKG_VERSION"),
        sections
    )
}
