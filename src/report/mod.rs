//! The report a support engineer attaches to a postmortem: a folder with
//! `index.html` (no network, opens from disk), every chart as SVG and PNG,
//! and `findings.json`. Also the Perfetto / Chrome trace-event export.

mod charts;
pub mod perfetto;

use crate::model::label;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::analysis::{blocking, index_waits, Analysis};
use crate::model::{Rule, Severity};
use crate::usage::UsageTable;

/// Lanes of a timeline and zoomed timelines per trace, at most.
const MAX_LANES: usize = 30;
const MAX_ZOOMS: usize = 6;
const MAX_BARS: usize = 25;

fn register_fonts() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        for family in ["sans-serif", "serif", "monospace"] {
            plotters::style::register_font(family, FontStyle::Normal, dejavu::sans::regular())
                .map_err(|_| "the embedded DejaVu Sans font did not load".to_string())?;
        }
        Ok(())
    })
    .clone()
}

/// Draws a chart as `name.svg` and `name.png` in `dir`.
macro_rules! render {
    ($dir:expr, $name:expr, $height:expr, |$root:ident| $body:expr) => {{
        let svg = $dir.join(format!("{}.svg", $name));
        {
            let $root = SVGBackend::new(&svg, (charts::WIDTH, $height)).into_drawing_area();
            $body?;
            $root.present().map_err(charts::err)?;
        }
        let png = $dir.join(format!("{}.png", $name));
        {
            let $root = BitMapBackend::new(&png, (charts::WIDTH, $height)).into_drawing_area();
            $body?;
            $root.present().map_err(charts::err)?;
        }
        Ok::<_, String>(())
    }};
}

// After `render!`, which it uses.
pub mod diff;

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn ns_of(rfc: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .unwrap_or(0)
}

/// A chart in the report.
struct Chart {
    file: String,
    title: String,
}

/// Writes the report for `analyses` into `dir`: written in a temporary
/// folder beside it and moved into place whole, so an interrupted run never
/// leaves half a report.
pub fn write_report(
    analyses: &[Analysis],
    table: &UsageTable,
    dir: &Path,
) -> Result<Vec<PathBuf>, String> {
    register_fonts()?;
    write_folder(dir, |tmp| write_into(analyses, table, tmp, dir))
}

/// Writes a folder whole or not at all: into a temporary folder beside it,
/// then renamed into place (replacing an older one).
fn write_folder(
    dir: &Path,
    write: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<Vec<PathBuf>, String> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dir
        .file_name()
        .ok_or_else(|| format!("{}: not a folder name", dir.display()))?
        .to_string_lossy()
        .into_owned();
    let tmp = parent.join(format!(".{name}.rhscope-{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = write(&tmp);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let old = parent.join(format!(".{name}.rhscope-{}.old", std::process::id()));
    if dir.exists() {
        std::fs::rename(dir, &old)
            .map_err(|e| format!("{}: cannot replace: {e}", dir.display()))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| format!("{}: cannot write: {e}", dir.display()))?;
    let _ = std::fs::remove_dir_all(&old);
    let mut files: Vec<PathBuf> = walk(dir);
    files.sort();
    Ok(files)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Writes the report into `dir`; errors name `shown`, the folder the user
/// asked for, not the temporary one. Charts name their file in errors.
fn write_into(
    analyses: &[Analysis],
    table: &UsageTable,
    dir: &Path,
    shown: &Path,
) -> Result<(), String> {
    let cannot = |e: std::io::Error| format!("{}: cannot write: {e}", shown.display());
    let charts_dir = dir.join("charts");
    std::fs::create_dir_all(&charts_dir).map_err(cannot)?;
    let mut sections = String::new();
    for (i, a) in analyses.iter().enumerate() {
        let charts = trace_charts(a, table, &charts_dir, &format!("t{}", i + 1))?;
        sections.push_str(&trace_section(a, &charts));
    }
    let findings: Vec<&crate::analysis::Reported> =
        analyses.iter().flat_map(|a| &a.findings).collect();
    let json = serde_json::to_string_pretty(&findings).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("findings.json"), json + "\n").map_err(cannot)?;
    std::fs::write(dir.join("index.html"), page(analyses, &sections)).map_err(cannot)?;
    Ok(())
}

fn trace_charts(
    a: &Analysis,
    table: &UsageTable,
    dir: &Path,
    prefix: &str,
) -> Result<Vec<Chart>, String> {
    let mut out = Vec::new();
    let first = a.spans.first_ns.unwrap_or(0);
    let end_s = (a.spans.last_ns.unwrap_or(first) - first) as f64 / 1e9;
    let (lanes, left_out) = charts::lanes(a, MAX_LANES);
    let height = (140 + 34 * lanes.len().max(1)) as u32;

    let name = format!("{prefix}-timeline");
    render!(dir, name, height, |root| charts::timeline(
        &root,
        a,
        table,
        &lanes,
        left_out,
        0.0,
        end_s.max(1e-3),
        "Thread timeline: whole trace",
        &[]
    ))?;
    out.push(Chart { file: name, title: "Thread timeline, whole trace: entry points (bars), API calls (inner bars, coloured by usage code), waits (grey), findings (red triangles)".into() });

    for (k, f) in a
        .findings
        .iter()
        .filter(|f| charts::zoomable(f.finding.rule))
        .take(MAX_ZOOMS)
        .enumerate()
    {
        let begin = (ns_of(&f.finding.begin) - first) as f64 / 1e9;
        let dur = f
            .finding
            .duration_ns
            .map_or(end_s - begin, |d| d as f64 / 1e9)
            .max(1e-4);
        let (thresholds, stop): (Vec<(f64, &str)>, f64) = match f.finding.rule {
            Rule::Hang | Rule::DeadlockTimeout => (
                vec![(begin + 300.0, "DeadlockTimeout"), (begin + 0.3, "300 ms")],
                begin + dur.max(0.3),
            ),
            Rule::PendingTimeout => (vec![(begin + 180.0, "PendingTimeout")], begin + 185.0),
            Rule::SlowEntryPoint => (vec![(begin + 0.3, "budget 300 ms")], begin + dur),
            _ => (Vec::new(), begin + dur),
        };
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
            table,
            &lanes,
            left_out,
            (begin - pad).max(0.0),
            (stop + pad).min(end_s.max(stop)),
            &title,
            &thresholds
        ))?;
        out.push(Chart { file: name, title });
    }

    // Blocking time per API and per entry point.
    let waits = index_waits(&a.spans.waits);
    let have = a.spans.context_switches > 0;
    let end_ns = a.spans.last_ns.unwrap_or(first);
    let mut by_api: std::collections::BTreeMap<String, (f64, f64, f64)> = Default::default();
    for c in &a.spans.calls {
        let b = blocking(&waits, have, c.tid, c.begin_ns, c.end_ns.unwrap_or(end_ns));
        let key = table
            .resolve(&c.api)
            .map_or(c.api.clone(), |r| r.name.clone());
        let e = by_api.entry(key).or_default();
        e.0 += b.running_ns.unwrap_or(b.total_ns) as f64 / 1e6;
        e.1 += b.ready_ns.unwrap_or(0) as f64 / 1e6;
        e.2 += b.waiting_ns.unwrap_or(0) as f64 / 1e6;
    }
    let mut by_ep: std::collections::BTreeMap<String, (f64, f64, f64)> = Default::default();
    for e in &a.spans.entries {
        let b = blocking(&waits, have, e.tid, e.begin_ns, e.end_ns.unwrap_or(end_ns));
        let x = by_ep.entry(e.entry_point.to_string()).or_default();
        x.0 += b.running_ns.unwrap_or(b.total_ns) as f64 / 1e6;
        x.1 += b.ready_ns.unwrap_or(0) as f64 / 1e6;
        x.2 += b.waiting_ns.unwrap_or(0) as f64 / 1e6;
    }
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
            &root, &title, &rows, !have
        ))?;
        out.push(Chart { file: name, title });
    }

    // Durations and hangs.
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
    let name = format!("{prefix}-durations");
    render!(dir, name, 560, |root| charts::durations(
        &root, &points, 300.0
    ))?;
    out.push(Chart {
        file: name,
        title: "Entry-point durations with the 300 ms budget, PendingTimeout and DeadlockTimeout"
            .into(),
    });

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
                    let name = table
                        .resolve(&c.api)
                        .map_or(c.api.clone(), |r| r.name.clone());
                    (
                        format!("{name} (tid {})", c.tid),
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
    render!(dir, name, h, |root| charts::hangs(
        &root,
        &rows,
        unreturned,
        a.spans.deadlocks.len()
    ))?;
    out.push(Chart {
        file: name,
        title: "Hang summary: calls that never returned".into(),
    });
    Ok(out)
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
        html_escape(&a.trace),
        html_escape(a.first.as_deref().unwrap_or("-")),
        html_escape(a.last.as_deref().unwrap_or("-")),
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
            (_, None) => "never returned".into(),
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
            html_escape(&f.begin),
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
