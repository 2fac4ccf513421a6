//! `diff` and `check --baseline`: before/after comparisons.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use rhscope::analysis::diff::{Diff, FigureChange, Side};
use rhscope::analysis::Analysis;
use rhscope::model::{label as name, Severity};

use super::analyze::{analyses, duration, Setup};
use super::{AnalyzeOpts, DiffFormat, ReadOpts};

/// A side: a saved JSON run, or the inputs analysed now.
fn side(path: &Path, setup: &Setup, opts: &AnalyzeOpts, read: ReadOpts) -> Result<Side> {
    let shown = path.display().to_string();
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        let text = std::fs::read_to_string(path).with_context(|| shown.clone())?;
        return Side::from_json(&shown, &text).map_err(|e| anyhow::anyhow!("{shown}: {e}"));
    }
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
    {
        return parquet_side(path, &shown);
    }
    let all = analyses(&[path.to_path_buf()], setup, opts, read)?;
    Ok(Side::of(&shown, &all))
}

/// Findings saved as Parquet: no duration figures, findings only.
#[cfg(feature = "polars")]
fn parquet_side(path: &Path, shown: &str) -> Result<Side> {
    let findings =
        rhscope::model::frames::read_findings(path).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    Ok(Side {
        name: shown.to_string(),
        findings,
        ..Side::default()
    })
}

#[cfg(not(feature = "polars"))]
fn parquet_side(_: &Path, shown: &str) -> Result<Side> {
    anyhow::bail!("{shown}: reading Parquet needs rhscope built with the `polars` feature")
}

pub fn run(
    before: &Path,
    after: &Path,
    opts: &AnalyzeOpts,
    format: DiffFormat,
    report: Option<&Path>,
    output: Option<&Path>,
    read: ReadOpts,
) -> Result<()> {
    let setup = Setup::from_opts(opts)?;
    let d = Diff::new(
        &side(before, &setup, opts, read)?,
        &side(after, &setup, opts, read)?,
    );
    if let Some(dir) = report {
        write_report(&d, dir, &[before, after], read)?;
    }
    super::with_output(output, &[before, after], |out| match format {
        DiffFormat::Table => write_table(out, &d),
        DiffFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &d)?;
            writeln!(out)?;
            Ok(())
        }
    })
}

#[cfg(feature = "report")]
fn write_report(d: &Diff, dir: &Path, inputs: &[&Path], read: ReadOpts) -> Result<()> {
    let canon = |p: &Path| std::fs::canonicalize(p).ok();
    if inputs
        .iter()
        .any(|i| canon(i).is_some() && canon(i) == canon(dir))
    {
        anyhow::bail!(
            "{}: refusing to overwrite an input of this run",
            dir.display()
        );
    }
    let files = rhscope::report::diff::write_diff_report(d, dir).map_err(anyhow::Error::msg)?;
    if !read.quiet {
        eprintln!(
            "rhscope: wrote {} ({} files)",
            dir.join("index.html").display(),
            files.len()
        );
    }
    Ok(())
}

#[cfg(not(feature = "report"))]
fn write_report(_: &Diff, _: &Path, _: &[&Path], _: ReadOpts) -> Result<()> {
    anyhow::bail!("--report needs rhscope built with the `report` feature")
}

fn write_table(out: &mut dyn Write, d: &Diff) -> Result<()> {
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

fn figures(out: &mut dyn Write, title: &str, rows: &[FigureChange]) -> Result<()> {
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
        let pair = |pick: fn(&rhscope::analysis::Aggregate) -> String| {
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

/// `check --baseline`: exit 1 only on findings the baseline does not have.
pub fn check_baseline(all: &[Analysis], baseline: &Path, fail_on: Severity) -> Result<i32> {
    let shown = baseline.display().to_string();
    let before = if baseline
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
    {
        parquet_side(baseline, &shown)?
    } else {
        let text = std::fs::read_to_string(baseline).with_context(|| shown.clone())?;
        Side::from_json(&shown, &text).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?
    };
    let names: Vec<&str> = all.iter().map(|a| a.trace.as_str()).collect();
    let d = Diff::new(&before, &Side::of(&names.join(" + "), all));
    let failing: Vec<_> = d
        .new_findings()
        .filter(|f| f.key.severity >= fail_on)
        .collect();
    let mut err = std::io::stderr().lock();
    for f in &failing {
        let k = &f.key;
        writeln!(
            err,
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
        err,
        "rhscope check: {} new findings at or above {} ({} in the baseline {}, {} gone since)",
        new,
        name(&fail_on),
        d.findings_before,
        shown,
        d.disappeared
    )?;
    Ok(if new == 0 { 0 } else { 1 })
}
