//! The report a support engineer attaches to a postmortem: a folder with
//! `index.html` (no network, opens from disk), every chart as SVG and PNG,
//! and `findings.json`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;

use super::figures::{trace_charts, Chart};
use super::output::write_folder;
use super::{story, ReportError};
use crate::analysis::hosting::{cluster_view, ClusterRow};
use crate::analysis::{Analysis, Reported};
use crate::model::{label, Severity};

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
