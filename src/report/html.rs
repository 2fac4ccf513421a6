//! The report a support engineer attaches to a postmortem: a folder with
//! `index.html` (no network, opens from disk), every chart as SVG and PNG,
//! and `findings.json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;

use super::output::write_folder;
use super::{charts, ReportError};
use crate::analysis::hosting::{cluster_view, ClusterRow};
use crate::analysis::{Analysis, Reported};
use crate::model::time::{MS_NS, SECOND_NS};
use crate::model::{label, Finding, Rule, Severity};

/// Lanes of a timeline and zoomed timelines per trace, at most.
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
    let mut sections = String::new();
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
    out.push(hangs_chart(a, dir, prefix)?);
    Ok(out)
}

/// Seconds since the trace's first event.
fn secs(a: &Analysis, ns: i64) -> f64 {
    (ns - a.spans.first_ns.unwrap_or(0)) as f64 / 1e9
}

/// "300 ms" or "180 s".
fn threshold_text(ns: i64) -> String {
    if ns % SECOND_NS == 0 && ns >= SECOND_NS {
        format!("{} s", ns / SECOND_NS)
    } else {
        format!("{} ms", ns / MS_NS)
    }
}

/// The budget of the entry point a finding is about (the one that began on
/// its thread at its time), else the default budget.
fn budget_of(a: &Analysis, f: &Finding) -> i64 {
    a.spans
        .entries
        .iter()
        .find(|e| e.pid == f.pid && e.tid == f.tid && e.begin_ns == f.begin.ns())
        .map_or(a.config.default_budget_ns, |e| a.entry(e).budget_ns)
}

/// The whole-trace timeline, and one zoomed on each of the first findings
/// about calls.
fn timeline_charts(a: &Analysis, dir: &Path, prefix: &str) -> Result<Vec<Chart>, ReportError> {
    let mut out = Vec::new();
    let first = a.spans.first_ns.unwrap_or(0);
    let end_s = secs(a, a.spans.last_ns.unwrap_or(first));
    let (lanes, left_out) = charts::lanes(a, MAX_LANES);
    let height = (140 + 34 * lanes.len().max(1)) as u32;

    let name = format!("{prefix}-timeline");
    render!(dir, name, height, |root| charts::timeline(
        &root,
        a,
        &lanes,
        left_out,
        0.0,
        end_s.max(1e-3),
        "Thread timeline: whole trace",
        &[]
    ))?;
    out.push(Chart { file: name, title: "Thread timeline, whole trace: entry points (bars), API calls (inner bars, coloured by usage code), waits (grey), findings (red triangles)".into() });

    let cfg = &a.config;
    for (k, f) in a
        .findings
        .iter()
        .filter(|f| charts::zoomable(f.finding.rule))
        .take(MAX_ZOOMS)
        .enumerate()
    {
        let begin = secs(a, f.finding.begin.ns());
        let dur = f
            .finding
            .duration_ns
            .map_or(end_s - begin, |d| d as f64 / 1e9)
            .max(1e-4);
        let budget = budget_of(a, &f.finding);
        let budget_s = budget as f64 / 1e9;
        let (thresholds, stop): (Vec<(f64, String)>, f64) = match f.finding.rule {
            Rule::Hang | Rule::DeadlockTimeout => (
                vec![
                    (
                        begin + cfg.deadlock_timeout_ns as f64 / 1e9,
                        "DeadlockTimeout".into(),
                    ),
                    (begin + budget_s, threshold_text(budget)),
                ],
                begin + dur.max(budget_s),
            ),
            Rule::PendingTimeout => {
                let pending = cfg.pending_timeout_ns as f64 / 1e9;
                (
                    vec![(begin + pending, "PendingTimeout".into())],
                    begin + pending + 5.0,
                )
            }
            Rule::SlowEntryPoint => (
                vec![(
                    begin + budget_s,
                    format!("budget {}", threshold_text(budget)),
                )],
                begin + dur,
            ),
            _ => (Vec::new(), begin + dur),
        };
        let thresholds: Vec<(f64, &str)> =
            thresholds.iter().map(|(x, l)| (*x, l.as_str())).collect();
        let pad = ((stop - begin) * 0.15).max(0.002);
        let name = format!("{prefix}-finding-{}", k + 1);
        let title = format!(
            "Finding {}: {} {} {} {}",
            k + 1,
            label(&f.finding.rule),
            f.finding.resource.as_deref().unwrap_or(""),
            f.finding
                .entry_point
                .map_or(String::new(), |e| e.to_string()),
            f.finding.api.as_deref().unwrap_or("")
        );
        render!(dir, name, height, |root| charts::timeline(
            &root,
            a,
            &lanes,
            left_out,
            (begin - pad).max(0.0),
            (stop + pad).min(end_s.max(stop)),
            &title,
            &thresholds
        ))?;
        out.push(Chart { file: name, title });
    }
    Ok(out)
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
            format!("Blocking time by {what} ({left} more not shown)")
        } else {
            format!("Blocking time by {what}")
        };
        let h = (120 + 30 * rows.len().max(1)) as u32;
        render!(dir, name, h, |root| charts::blocking(
            &root,
            &title,
            &rows,
            wall_clock_only
        ))?;
        out.push(Chart { file: name, title });
    }
    Ok(out)
}

/// Entry-point durations against the thresholds the analysis used.
fn durations_chart(a: &Analysis, dir: &Path, prefix: &str) -> Result<Chart, ReportError> {
    let end_ns = a.spans.last_ns.unwrap_or(a.spans.first_ns.unwrap_or(0));
    let points: Vec<(String, f64, bool)> = a
        .spans
        .entries
        .iter()
        .map(|e| {
            (
                e.entry_point.to_string(),
                (e.end_ns.unwrap_or(end_ns) - e.begin_ns).max(1) as f64 / 1e6,
                e.end_ns.is_none(),
            )
        })
        .collect();
    let cfg = &a.config;
    let thresholds = [
        (
            cfg.default_budget_ns,
            format!("budget {}", threshold_text(cfg.default_budget_ns)),
        ),
        (
            cfg.pending_timeout_ns,
            format!("PendingTimeout {}", threshold_text(cfg.pending_timeout_ns)),
        ),
        (
            cfg.deadlock_timeout_ns,
            format!(
                "DeadlockTimeout {}",
                threshold_text(cfg.deadlock_timeout_ns)
            ),
        ),
    ];
    let name = format!("{prefix}-durations");
    render!(dir, name, 560, |root| charts::durations(
        &root,
        &points,
        &thresholds
    ))?;
    Ok(Chart {
        file: name,
        title: format!(
            "Entry-point durations with the {} budget, PendingTimeout and DeadlockTimeout",
            threshold_text(cfg.default_budget_ns)
        ),
    })
}

/// Calls that never returned, longest first.
fn hangs_chart(a: &Analysis, dir: &Path, prefix: &str) -> Result<Chart, ReportError> {
    let end_ns = a.spans.last_ns.unwrap_or(a.spans.first_ns.unwrap_or(0));
    let mut rows: Vec<(String, f64)> = a
        .spans
        .entries
        .iter()
        .filter(|e| e.end_ns.is_none())
        .map(|e| {
            (
                format!("{} {} (tid {})", e.resource, e.entry_point, e.tid),
                (end_ns - e.begin_ns) as f64 / 1e9,
            )
        })
        .chain(
            a.spans
                .calls
                .iter()
                .filter(|c| c.end_ns.is_none())
                .map(|c| {
                    (
                        format!("{} (tid {})", a.call(c).api, c.tid),
                        (end_ns - c.begin_ns) as f64 / 1e9,
                    )
                }),
        )
        .collect();
    // The longest-running on top; the rest counted, not drawn.
    rows.sort_by(|x, y| y.1.total_cmp(&x.1));
    let unreturned = rows.len();
    rows.truncate(MAX_BARS);
    rows.reverse();
    let name = format!("{prefix}-hangs");
    let h = (120 + 30 * rows.len().max(1)) as u32;
    let deadlock = a.config.deadlock_timeout_ns;
    render!(dir, name, h, |root| charts::hangs(
        &root,
        &rows,
        unreturned,
        a.spans.deadlocks.len(),
        (
            deadlock as f64 / 1e9,
            &format!("DeadlockTimeout {}", threshold_text(deadlock))
        )
    ))?;
    Ok(Chart {
        file: name,
        title: "Hang summary: calls that never returned".into(),
    })
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
        "<section><h2>{}</h2><table class=\"summary\"><tr><th>time range</th><td>{} .. {}</td></tr><tr><th>resources</th><td>{}</td></tr><tr><th>findings</th><td>{} ({} error, {} warning)</td></tr><tr><th>model</th><td>{} records, {} context switches{}</td></tr></table>",
        html_escape(&a.node.as_ref().map_or(a.trace.clone(), |n| format!("{n}: {}", a.trace))),
        html_escape(&a.first.map_or("-".into(), |t| t.rfc3339())),
        html_escape(&a.last.map_or("-".into(), |t| t.rfc3339())),
        html_escape(&a.resources.join(", ")),
        a.findings.len(),
        errors,
        a.findings.len() - errors,
        a.records,
        a.context_switches,
        if a.context_switches == 0 { " (blocking is wall-clock only)" } else { "" }
    );
    s.push_str("<h3>Findings</h3><table class=\"findings\"><tr><th>severity</th><th>rule</th><th>resource</th><th>entry point</th><th>API (usage)</th><th>thread</th><th>begin</th><th>duration</th><th>blocked</th><th>evidence</th></tr>");
    for r in &a.findings {
        let f = &r.finding;
        let dur = match (f.rule, f.duration_ns) {
            (Rule::RhsRestart | Rule::PendingTimeout, _) => "-".to_string(),
            (_, None) => "unknown".into(),
            (_, Some(d)) if f.never_returned => {
                format!("at least {:.3} ms, never returned", d as f64 / 1e6)
            }
            (_, Some(d)) => format!("{:.3} ms", d as f64 / 1e6),
        };
        let blocked = r.blocking.as_ref().map_or("-".into(), |b| {
            match (b.waiting_ns, b.ready_ns, b.running_ns) {
                (Some(w), Some(rd), Some(run)) => format!(
                    "waiting {:.3} ms, ready {:.3} ms, running {:.3} ms {}",
                    w as f64 / 1e6,
                    rd as f64 / 1e6,
                    run as f64 / 1e6,
                    b.wait_reasons.join(",")
                ),
                _ => format!("{:.3} ms wall clock", b.total_ns as f64 / 1e6),
            }
        });
        let evidence: Vec<String> = r.evidence.iter().map(|e| e.describe(&a.inputs)).collect();
        let _ = write!(
            s,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{} pid {} tid {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            label(&f.severity),
            label(&f.severity),
            label(&f.rule),
            html_escape(f.resource.as_deref().unwrap_or("-")),
            f.entry_point.map_or("-".into(), |e| e.to_string()),
            html_escape(f.api.as_deref().unwrap_or("-")),
            f.usage.map_or(String::new(), |u| format!(" ({u})")),
            f.thread_kind.map_or(String::new(), |k| label(&k)),
            f.pid,
            f.tid,
            html_escape(&f.begin.rfc3339()),
            dur,
            html_escape(&blocked),
            html_escape(&evidence.join("; "))
        );
    }
    s.push_str("</table>");
    let zoomable = a
        .findings
        .iter()
        .filter(|f| charts::zoomable(f.finding.rule))
        .count();
    if zoomable > MAX_ZOOMS {
        let _ = write!(s, "<p>Timelines are zoomed on the first {MAX_ZOOMS} of {zoomable} findings about calls; the others are marked on the whole-trace timeline.</p>");
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
figure{{margin:16px 0}}img{{max-width:100%;border:1px solid #eee}}figcaption{{font-size:13px;color:#555}}\
</style></head><body><h1>rhscope report</h1><p>{} trace(s), {} finding(s). Written by rhscope {}; \
findings also in <a href=\"findings.json\">findings.json</a>.</p>{}</body></html>\n",
        analyses.len(),
        total,
        env!("CARGO_PKG_VERSION"),
        sections
    )
}
