//! The report of a before/after comparison: what changed in findings, and
//! a chart of total time per entry point and per API on both sides (at
//! most 25 keys each; the table lists every one).

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

/// Keys a chart draws, at most: a node's log has thousands of (resource,
/// entry point) keys, and a bar chart of thousands of rows is an image
/// tens of thousands of pixels tall that nobody can read. The table below
/// the charts lists every key.
const MAX_ROWS: usize = 25;

/// The figures a chart draws: every one when they are few; else the
/// `MAX_ROWS` whose total changed most (then the largest total, then the
/// key), in key order like the rest.
fn charted(figures: &[FigureChange]) -> Vec<&FigureChange> {
    let mut chosen: Vec<&FigureChange> = figures.iter().collect();
    if chosen.len() > MAX_ROWS {
        let total = |a: &Option<crate::analysis::Aggregate>| a.as_ref().map_or(0, |a| a.total_ns);
        let larger = |f: &FigureChange| total(&f.before).max(total(&f.after));
        chosen.sort_by(|x, y| {
            (y.total_change_ns.unsigned_abs(), larger(y))
                .cmp(&(x.total_change_ns.unsigned_abs(), larger(x)))
                .then_with(|| x.key.cmp(&y.key))
        });
        chosen.truncate(MAX_ROWS);
        chosen.sort_by(|x, y| x.key.cmp(&y.key));
    }
    chosen
}

/// Rows bottom-up, so the first key is drawn at the top.
fn rows(figures: &[&FigureChange]) -> Vec<(String, f64, f64)> {
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
            let shown = charted(list);
            let title = if shown.len() < list.len() {
                format!(
                    "{title} ({} of {}: the largest changes, then the largest totals; all in the table below)",
                    shown.len(),
                    list.len()
                )
            } else {
                title.to_string()
            };
            let title = title.as_str();
            let r = rows(&shown);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Aggregate;

    fn figure(key: &str, before_ms: i64, after_ms: i64) -> FigureChange {
        let side = |ms: i64| {
            (ms > 0).then(|| Aggregate {
                key: key.to_string(),
                count: 1,
                unreturned: 0,
                unknown: 0,
                total_ns: ms * 1_000_000,
                p50_ns: ms * 1_000_000,
                p95_ns: ms * 1_000_000,
                max_ns: ms * 1_000_000,
            })
        };
        FigureChange {
            key: key.to_string(),
            before: side(before_ms),
            after: side(after_ms),
            total_change_ns: (after_ms - before_ms) * 1_000_000,
        }
    }

    #[test]
    fn a_chart_draws_the_keys_that_changed_most_in_key_order() {
        // Few: all of them, as they are.
        let few: Vec<FigureChange> = (0..3).map(|i| figure(&format!("k{i}"), 5, 5)).collect();
        let keys: Vec<&str> = charted(&few).iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["k0", "k1", "k2"]);
        // 1000 keys: 25 drawn. k500 grew by 900 ms and k7 shrank by 800:
        // both in; the rest unchanged, the largest totals first.
        let mut many: Vec<FigureChange> = (0..1000)
            .map(|i| figure(&format!("k{i:04}"), i, i))
            .collect();
        many[500] = figure("k0500", 100, 1000);
        many[7] = figure("k0007", 801, 1);
        // A key absent before changed by all of its total.
        many[10] = figure("k0010", 0, 850);
        let keys: Vec<&str> = charted(&many).iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys.len(), MAX_ROWS);
        assert_eq!(&keys[..3], ["k0007", "k0010", "k0500"]);
        // Then the 22 largest unchanged totals (978..999), in key order.
        assert_eq!(keys[3], "k0978");
        assert_eq!(keys[24], "k0999");
    }
}
