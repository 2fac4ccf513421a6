//! The report of a before/after comparison: what changed in findings, and
//! a chart of total time per entry point and per API on both sides.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::html::{html_escape, register_fonts};
use super::output::write_folder;
use super::{charts, ReportError};
use crate::analysis::diff::{Diff, FigureChange};
use crate::model::label;

fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

/// Rows bottom-up, so the first key is drawn at the top.
fn rows(figures: &[FigureChange]) -> Vec<(String, f64, f64)> {
    figures
        .iter()
        .rev()
        .map(|f| {
            type Side = Option<crate::analysis::Aggregate>;
            let total = |a: &Side| a.as_ref().map_or(0.0, |a| ms(a.total_ns));
            let open = |a: &Side| a.as_ref().map_or(0, |a| a.unreturned);
            // Calls that never returned have no duration: say so by name.
            let key = match (open(&f.before), open(&f.after)) {
                (0, 0) => f.key.clone(),
                (b, a) => format!("{} (never returned: {b} -> {a})", f.key),
            };
            (key, total(&f.before), total(&f.after))
        })
        .collect()
}

/// Writes `dir` (index.html, diff.json, charts/): whole or not at all.
pub fn write_diff_report(
    diff: &Diff,
    dir: &Path,
    inputs: &[&Path],
) -> Result<Vec<PathBuf>, ReportError> {
    register_fonts()?;
    write_folder(dir, inputs, |tmp| {
        let cannot = |source| ReportError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let charts_dir = tmp.join("charts");
        std::fs::create_dir_all(&charts_dir).map_err(cannot)?;
        let mut figures = String::new();
        for (name, title, list) in [
            (
                "entry-points",
                "Entry points: total time before and after",
                &diff.by_entry_point,
            ),
            (
                "apis",
                "API calls: total time before and after",
                &diff.by_api,
            ),
        ] {
            if list.is_empty() {
                continue;
            }
            let r = rows(list);
            let height = (140 + 44 * r.len()) as u32;
            charts::render(&charts_dir, name, height, |root| {
                charts::before_after(root, title, &r)
            })?;
            let _ = write!(
                figures,
                "<figure><img src=\"charts/{name}.svg\" alt=\"{t}\"><figcaption>{t} (<a href=\"charts/{name}.png\">PNG</a>)</figcaption></figure>",
                t = html_escape(title)
            );
        }
        let json = serde_json::to_string_pretty(diff).map_err(|source| ReportError::Json {
            path: dir.join("diff.json"),
            source,
        })?;
        std::fs::write(tmp.join("diff.json"), json + "\n").map_err(cannot)?;
        std::fs::write(tmp.join("index.html"), page(diff, &figures)).map_err(cannot)?;
        Ok(())
    })
}

fn page(d: &Diff, figures: &str) -> String {
    let mut rows = String::new();
    for f in &d.findings {
        let k = &f.key;
        let _ = write!(
            rows,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            label(&f.change),
            label(&f.change),
            f.before,
            f.after,
            label(&k.severity),
            label(&k.rule),
            html_escape(k.resource.as_deref().unwrap_or("-")),
            k.entry_point.map_or("-".to_string(), |e| e.to_string()),
            html_escape(k.api.as_deref().unwrap_or("-"))
        );
    }
    let mut figs = String::new();
    for (title, list) in [
        ("Entry points", &d.by_entry_point),
        ("API calls", &d.by_api),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = write!(figs, "<h3>{title}</h3><table><tr><th>key</th><th>count</th><th>p50</th><th>p95</th><th>max</th><th>total</th><th>change</th></tr>");
        for f in list {
            let cell = |pick: fn(&crate::analysis::Aggregate) -> String| {
                format!(
                    "{} &rarr; {}",
                    f.before.as_ref().map_or("-".into(), pick),
                    f.after.as_ref().map_or("-".into(), pick)
                )
            };
            let _ = write!(
                figs,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:+.3} ms</td></tr>",
                html_escape(&f.key),
                cell(|a| a.count.to_string()),
                cell(|a| format!("{:.3} ms", ms(a.p50_ns))),
                cell(|a| format!("{:.3} ms", ms(a.p95_ns))),
                cell(|a| format!("{:.3} ms", ms(a.max_ns))),
                cell(|a| format!("{:.3} ms", ms(a.total_ns))),
                ms(f.total_change_ns)
            );
        }
        figs.push_str("</table>");
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>rhscope diff</title>\
<style>body{{font-family:sans-serif;margin:24px;max-width:1200px}}table{{border-collapse:collapse;font-size:13px;margin:8px 0}}\
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left}}tr.disappeared td:first-child{{color:#070;font-weight:bold}}\
tr.appeared td:first-child{{color:#b00;font-weight:bold}}img{{max-width:100%;border:1px solid #eee}}</style></head><body>\
<h1>rhscope diff</h1><p>before: {} ({} findings)<br>after: {} ({} findings)</p>\
<p><b>{} disappeared, {} appeared, {} stayed.</b> Also in <a href=\"diff.json\">diff.json</a>.</p>\
<h3>Findings</h3><table><tr><th>change</th><th>before</th><th>after</th><th>severity</th><th>rule</th><th>resource</th><th>entry point</th><th>API</th></tr>{}</table>\
{}{}</body></html>\n",
        html_escape(&d.before),
        d.findings_before,
        html_escape(&d.after),
        d.findings_after,
        d.disappeared,
        d.appeared,
        d.stayed,
        rows,
        figs,
        figures
    )
}
