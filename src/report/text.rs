//! Plain-text printers: the findings table and duration figures of
//! `analyze`, the before/after table of `diff`, what `stats` says of a
//! trace, and the decoder comparison.

use std::io::{self, Write};

use super::{story, width};
use crate::analysis::diff::{Diff, FigureChange};
use crate::analysis::hosting::{cluster_view, ClusterRow};
use crate::analysis::{Aggregate, Analysis, Reported};
use crate::capture::compare::Comparison;
use crate::model::{label as name, Severity};
use crate::read::etl::header::FILETIME_UNIX_EPOCH;
use crate::read::etl::TraceStats;

/// A duration that may be unknown.
fn duration(ns: Option<i64>) -> String {
    ns.map_or("unknown".into(), story::duration)
}

/// A figure that may be a lower bound: `≥` marks one.
fn at_least(ns: i64, lower_bound: bool) -> String {
    let d = story::duration(ns);
    if lower_bound {
        format!("≥{d}")
    } else {
        d
    }
}

/// Lines of the verdict and the findings are wrapped at this width.
const TEXT_COLUMNS: usize = 110;

/// The `analyze` table of each analysis: a summary, the verdict (one line
/// per incident or group of identical findings, most severe first, each
/// with why it matters and what to do), then every finding in the same
/// order, then the duration figures.
pub fn write_analyses(out: &mut dyn Write, all: &[Analysis]) -> io::Result<()> {
    for a in all {
        write_summary(out, a)?;
        write_verdicts(out, a)?;
        write_findings(out, a)?;
        write_aggregates(out, "entry points", &a.by_entry_point)?;
        write_aggregates(out, "API calls", &a.by_api)?;
        writeln!(out)?;
    }
    if all.len() > 1 {
        write_cluster(out, &cluster_view(all))?;
    }
    Ok(())
}

fn write_summary(out: &mut dyn Write, a: &Analysis) -> io::Result<()> {
    let errors = a
        .findings
        .iter()
        .filter(|f| f.finding.severity == Severity::Error)
        .count();
    writeln!(out, "trace      {}", a.trace)?;
    if let Some(node) = &a.node {
        writeln!(out, "node       {node}")?;
    }
    writeln!(
        out,
        "time       {} .. {}",
        a.first.map_or("-".into(), |t| t.rfc3339()),
        a.last.map_or("-".into(), |t| t.rfc3339())
    )?;
    writeln!(
        out,
        "resources  {} ({})",
        a.resources.len(),
        a.resources.join(", ")
    )?;
    writeln!(
        out,
        "model      {} records mapped, {} unmappable, {} ends without a begin, {} ends lost, {} ends not logged, {} duplicates dropped, {} unparsed lines, {} skipped as corrupt, {} context switches{}",
        a.records,
        a.unmapped_errors,
        a.unmatched_ends,
        a.lost_ends,
        a.ends_not_logged,
        a.duplicates,
        a.unparsed_lines,
        a.skipped,
        a.context_switches,
        if a.context_switches == 0 { " (blocking is wall-clock only)" } else { "" }
    )?;
    for n in &a.notes {
        writeln!(out, "note       {n}")?;
    }
    writeln!(
        out,
        "findings   {} ({} error, {} warning) in {} verdicts",
        a.findings.len(),
        errors,
        a.findings.len() - errors,
        a.verdicts.len()
    )
}

/// One line per verdict, most severe first, with why and what to do.
fn write_verdicts(out: &mut dyn Write, a: &Analysis) -> io::Result<()> {
    if a.verdicts.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "VERDICT (most severe first)")?;
    let number_cols = a.verdicts.len().to_string().len();
    let indent = " ".repeat(number_cols + 10);
    for (i, v) in a.verdicts.iter().enumerate() {
        let f = &a.findings[v.lead].finding;
        let head = format!(
            "{:>number_cols$} {:<8} ",
            i + 1,
            name(&f.severity).to_uppercase()
        );
        let lines = [
            story::sentence(a, v),
            format!("why: {}", story::why(a, v)),
            format!("fix: {}", story::fix(a, v)),
        ];
        for (j, text) in lines.iter().enumerate() {
            for (k, line) in width::wrap(text, TEXT_COLUMNS).iter().enumerate() {
                let lead = if j == 0 && k == 0 {
                    head.as_str()
                } else {
                    indent.as_str()
                };
                let more = if k > 0 { "  " } else { "" };
                writeln!(out, "{lead}{more}{line}")?;
            }
        }
    }
    Ok(())
}

/// Every finding, in the verdict's order, one row each.
fn write_findings(out: &mut dyn Write, a: &Analysis) -> io::Result<()> {
    if a.findings.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "FINDINGS (every one, in the verdict's order)")?;
    let cols = [3, 8, 19, 20, 15, 44, 12, 7, 30, 24];
    let row = |cells: [&str; 10]| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(cols).enumerate() {
            if i == 7 || i == 9 {
                s.push_str(&width::right(c, w));
            } else {
                s.push_str(&width::left(c, w));
            }
            s.push(' ');
        }
        s.trim_end().to_string()
    };
    writeln!(
        out,
        "{}   SPLIT",
        row([
            "#",
            "SEVERITY",
            "RULE",
            "RESOURCE",
            "ENTRY POINT",
            "API (USAGE)",
            "THREAD",
            "TID",
            "BEGIN",
            "BLOCKED FOR"
        ])
    )?;
    for (n, v) in a.verdicts.iter().enumerate() {
        for &i in &v.findings {
            let r = &a.findings[i];
            let f = &r.finding;
            let api = match (&f.api, f.usage) {
                (Some(api), Some(u)) => format!("{api} ({u})"),
                (Some(api), None) => api.clone(),
                _ => "-".into(),
            };
            let split = r
                .blocking
                .as_ref()
                .filter(|_| !story::instant(f.rule) && f.duration_ns.is_some())
                .map_or(String::new(), story::split);
            writeln!(
                out,
                "{}   {}",
                row([
                    &(n + 1).to_string(),
                    &name(&f.severity),
                    &name(&f.rule),
                    &subject(f),
                    &f.entry_point.map_or("-".to_string(), |e| e.to_string()),
                    &api,
                    &f.thread_kind.map_or("-".to_string(), |k| name(&k)),
                    &f.tid.to_string(),
                    &f.begin.rfc3339(),
                    &story::blocked_for_short(f),
                ]),
                split
            )?;
        }
    }
    Ok(())
}

/// Which node hosted which resource, when: each node's own periods, side
/// by side.
fn write_cluster(out: &mut dyn Write, rows: &[ClusterRow]) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "cluster    which node held each resource active, from each node's own states"
    )?;
    writeln!(
        out,
        "  {:<24} {:<16} {:<30} {:<30} STATE",
        "RESOURCE", "NODE", "FROM", "TO"
    )?;
    let mut last: Option<&str> = None;
    for r in rows {
        let h = &r.hosting;
        let resource = if last == Some(h.resource.as_str()) {
            ""
        } else {
            h.resource.as_str()
        };
        last = Some(&h.resource);
        writeln!(
            out,
            "  {:<24} {:<16} {:<30} {:<30} {}{}",
            resource,
            r.node,
            h.from.rfc3339(),
            h.to.map_or("(still, at the end)".into(), |t| t.rfc3339()),
            h.state,
            if h.failed && h.state != "Failed" {
                " (after a failure)"
            } else {
                ""
            }
        )?;
    }
    writeln!(out)
}

fn write_aggregates(out: &mut dyn Write, title: &str, rows: &[Aggregate]) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<42} {:>7} {:>10} {:>15} {:>15} {:>15} {:>15}",
        title.to_uppercase(),
        "COUNT",
        "UNRETURNED",
        "P50",
        "P95",
        "MAX",
        "TOTAL"
    )?;
    for g in rows {
        // With calls that never returned, the figures are lower bounds;
        // with no call of known duration, there are none.
        let open = g.unreturned > 0;
        let known = g.count > g.unknown;
        let fig = |ns: i64| {
            if known {
                at_least(ns, open)
            } else {
                "-".to_string()
            }
        };
        writeln!(
            out,
            "{:<42} {:>7} {:>10} {:>15} {:>15} {:>15} {:>15}",
            g.key,
            g.count,
            g.unreturned,
            fig(g.p50_ns),
            fig(g.p95_ns),
            fig(g.max_ns),
            fig(g.total_ns)
        )?;
    }
    if rows.iter().any(|g| g.unreturned > 0) {
        writeln!(
            out,
            "≥: lower bound: calls that never returned count the time they had run when the inputs end"
        )?;
    }
    Ok(())
}

/// The `diff` table.
pub fn write_diff(out: &mut dyn Write, d: &Diff) -> io::Result<()> {
    writeln!(
        out,
        "before     {} ({} findings)",
        d.before, d.findings_before
    )?;
    writeln!(
        out,
        "after      {} ({} findings)",
        d.after, d.findings_after
    )?;
    writeln!(
        out,
        "findings   {} disappeared, {} appeared, {} stayed",
        d.disappeared, d.appeared, d.stayed
    )?;
    if !d.findings.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{:<12} {:>6} {:>6}  {:<8} {:<17} {:<16} {:<13} API",
            "CHANGE", "BEFORE", "AFTER", "SEVERITY", "RULE", "RESOURCE", "ENTRY POINT"
        )?;
        for f in &d.findings {
            let k = &f.key;
            writeln!(
                out,
                "{:<12} {:>6} {:>6}  {:<8} {:<17} {:<16} {:<13} {}",
                name(&f.change),
                f.before,
                f.after,
                name(&k.severity),
                name(&k.rule),
                k.resource.as_deref().unwrap_or("-"),
                k.entry_point.map_or("-".to_string(), |e| e.to_string()),
                k.api.as_deref().unwrap_or("-")
            )?;
        }
    }
    figures(out, "entry points", &d.by_entry_point)?;
    figures(out, "API calls", &d.by_api)?;
    Ok(())
}

fn figures(out: &mut dyn Write, title: &str, rows: &[FigureChange]) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<42} {:>13} {:>27} {:>27} {:>27} {:>27} {:>15}",
        title.to_uppercase(),
        "COUNT",
        "P50",
        "P95",
        "MAX",
        "TOTAL",
        "CHANGE"
    )?;
    for f in rows {
        let pair = |pick: fn(&Aggregate) -> String| {
            format!(
                "{} -> {}",
                f.before.as_ref().map_or("-".into(), pick),
                f.after.as_ref().map_or("-".into(), pick)
            )
        };
        let change = if f.total_change_ns < 0 {
            format!("-{}", duration(Some(-f.total_change_ns)))
        } else {
            format!("+{}", duration(Some(f.total_change_ns)))
        };
        writeln!(
            out,
            "{:<42} {:>13} {:>27} {:>27} {:>27} {:>27} {:>15}",
            f.key,
            pair(|a| a.count.to_string()),
            pair(|a| duration(Some(a.p50_ns))),
            pair(|a| duration(Some(a.p95_ns))),
            pair(|a| duration(Some(a.max_ns))),
            pair(|a| duration(Some(a.total_ns))),
            change
        )?;
    }
    Ok(())
}

/// What `stats` prints.
pub fn write_stats(out: &mut dyn Write, s: &TraceStats) -> io::Result<()> {
    let h = &s.header;
    writeln!(out, "file       {} ({} bytes)", s.file, s.bytes)?;
    writeln!(
        out,
        "logger     {} (Windows {} build {}, {} CPUs, pointer size {}, clock {:?} at {} Hz)",
        h.logger_name,
        h.os_version,
        h.os_build,
        h.number_of_processors,
        h.pointer_size,
        h.clock_type,
        h.perf_freq
    )?;
    match (&s.first, &s.last) {
        (Some(first), Some(last)) => writeln!(out, "time       {first} .. {last}")?,
        _ => writeln!(out, "time       (no records)")?,
    }
    writeln!(
        out,
        "buffers    {} ({} compressed, {} truncated)",
        s.buffers.total, s.buffers.compressed, s.buffers.truncated
    )?;
    let kinds: Vec<String> = s
        .kinds
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    writeln!(out, "records    {} ({})", s.records, kinds.join(", "))?;
    writeln!(out, "threads    {}", s.threads)?;
    writeln!(out, "processes  {}", s.processes)?;
    writeln!(
        out,
        "lost       {} events, {} buffers",
        s.events_lost, s.buffers_lost
    )?;
    writeln!(out, "providers  {}", s.providers.len())?;
    for p in &s.providers {
        writeln!(
            out,
            "  {:>9}  {}  {}",
            p.records,
            p.guid,
            p.name.as_deref().unwrap_or("-")
        )?;
    }
    writeln!(out, "skipped    {}", s.skipped.len())?;
    for k in &s.skipped {
        writeln!(out, "  {}", k.message)?;
    }
    Ok(())
}
/// What `compare-decoders` prints.
pub fn write_comparison(out: &mut dyn Write, c: &Comparison) -> io::Result<()> {
    writeln!(
        out,
        "events     {} native, {} Windows, {} paired; {} fields compared; {} disagreements",
        c.native_events,
        c.windows_events,
        c.paired,
        c.fields_compared,
        c.disagreements.len()
    )?;
    for d in &c.disagreements {
        let t = chrono::DateTime::from_timestamp_nanos((d.timestamp - FILETIME_UNIX_EPOCH) * 100);
        writeln!(
            out,
            "{}  {} id {}  {}: native {:?}, Windows {:?}",
            t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            d.provider,
            d.id,
            d.what,
            d.native,
            d.windows
        )?;
    }
    Ok(())
}

/// What `check` prints: each finding at or above `fail_on`, then a count.
/// Returns how many there were.
pub fn write_check(out: &mut dyn Write, all: &[Analysis], fail_on: Severity) -> io::Result<usize> {
    let failing: Vec<&Reported> = all
        .iter()
        .flat_map(|a| &a.findings)
        .filter(|r| r.finding.severity >= fail_on)
        .collect();
    for r in &failing {
        let f = &r.finding;
        writeln!(
            out,
            "{}: {} {}: {} {} {} tid {} at {} ({})",
            r.trace,
            name(&f.severity),
            name(&f.rule),
            f.resource.as_deref().unwrap_or("-"),
            f.entry_point.map_or("-".to_string(), |e| e.to_string()),
            f.api.as_deref().unwrap_or(""),
            f.tid,
            f.begin,
            story::blocked_for(f)
        )?;
    }
    let total: usize = all.iter().map(|a| a.findings.len()).sum();
    writeln!(
        out,
        "rhscope check: {} of {} findings at or above {}",
        failing.len(),
        total,
        name(&fail_on)
    )?;
    Ok(failing.len())
}

/// What `check --baseline` prints: each finding kind the baseline does not
/// have (at or above `fail_on`), then a count. Returns how many new
/// findings there were.
pub fn write_baseline_check(
    out: &mut dyn Write,
    d: &Diff,
    fail_on: Severity,
    baseline: &str,
) -> io::Result<usize> {
    let failing: Vec<_> = d
        .new_findings()
        .filter(|f| f.key.severity >= fail_on)
        .collect();
    for f in &failing {
        let k = &f.key;
        writeln!(
            out,
            "new: {} {} {} {} {} (x{})",
            name(&k.severity),
            name(&k.rule),
            k.resource.as_deref().unwrap_or("-"),
            k.entry_point.map_or("-".to_string(), |e| e.to_string()),
            k.api.as_deref().unwrap_or(""),
            f.after
        )?;
    }
    let new: usize = failing.iter().map(|f| f.after).sum();
    writeln!(
        out,
        "rhscope check: {} new findings at or above {} ({} in the baseline {}, {} gone since)",
        new,
        name(&fail_on),
        d.findings_before,
        baseline,
        d.disappeared
    )?;
    Ok(new)
}

/// `--verbose`: each text input's lines that did not parse, by line
/// number (the first ones kept; the rest counted).
pub fn write_unparsed(out: &mut dyn Write, a: &Analysis) -> io::Result<()> {
    for (input, c) in &a.unparsed {
        for u in &c.unparsed {
            writeln!(
                out,
                "rhscope: {input} line {}: {}: {}",
                u.line, u.reason, u.text
            )?;
        }
        let listed = c.unparsed.len() as u64;
        if c.unparsed_lines > listed {
            writeln!(
                out,
                "rhscope: {input}: {} more unparsed lines not shown",
                c.unparsed_lines - listed
            )?;
        }
    }
    Ok(())
}

/// What a finding is about: its resource, or else its clustered role.
pub fn subject(f: &crate::model::Finding) -> String {
    match (&f.resource, &f.group) {
        (Some(r), _) => r.clone(),
        (None, Some(g)) => format!("role {g}"),
        (None, None) => "-".into(),
    }
}
