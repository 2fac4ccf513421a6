//! `diff` and `check --baseline`: before/after comparisons.

use std::path::{Path, PathBuf};

use anyhow::Result;
use rhscope::analysis::diff::{Diff, Side};
use rhscope::analysis::Analysis;
use rhscope::model::Severity;

use super::setup::{analyses, Setup};
use super::{AnalyzeOpts, ReadOpts};

#[derive(clap::Args)]
pub struct Args {
    /// The run before the change: a trace (.etl, cluster.log, .evtx) or
    /// a saved `analyze --format json` / findings.json.
    before: PathBuf,
    /// The run after it, the same kinds.
    after: PathBuf,
    #[command(flatten)]
    analyze: AnalyzeOpts,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Also write a report folder (index.html, charts, diff.json).
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Write to this file (atomically) instead of standard output.
    #[arg(short, long, value_name = "PATH")]
    output: Option<PathBuf>,
    #[command(flatten)]
    read: ReadOpts,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

/// A side: a saved run, or the inputs analysed now.
fn side(path: &Path, setup: &Setup, opts: &AnalyzeOpts, read: ReadOpts) -> Result<Side> {
    if let Some(saved) = Side::load_saved(path) {
        return saved.map_err(anyhow::Error::msg);
    }
    let all = analyses(&[path.to_path_buf()], setup, opts, read)?;
    Ok(Side::of(&path.display().to_string(), &all))
}

pub fn run(a: &Args) -> Result<()> {
    let setup = Setup::from_opts(&a.analyze)?;
    let d = Diff::new(
        &side(&a.before, &setup, &a.analyze, a.read)?,
        &side(&a.after, &setup, &a.analyze, a.read)?,
    );
    let inputs = [a.before.as_path(), a.after.as_path()];
    if let Some(dir) = &a.report {
        write_report(&d, dir, &inputs, a.read)?;
    }
    super::with_output(a.output.as_deref(), &inputs, |out| {
        match a.format {
            Format::Table => rhscope::report::text::write_diff(out, &d)?,
            Format::Json => {
                serde_json::to_writer_pretty(&mut *out, &d)?;
                writeln!(out)?;
            }
        }
        Ok(())
    })
}

#[cfg(feature = "report")]
fn write_report(d: &Diff, dir: &Path, inputs: &[&Path], read: ReadOpts) -> Result<()> {
    let files = rhscope::report::html_diff::write_diff_report(d, dir, inputs)?;
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

/// `check --baseline`: exit 1 only on findings the baseline does not have.
pub fn check_baseline(all: &[Analysis], baseline: &Path, fail_on: Severity) -> Result<i32> {
    let shown = baseline.display().to_string();
    // Any other name than .json or .parquet: JSON all the same.
    let before = Side::load_saved(baseline)
        .unwrap_or_else(|| Side::read_json(baseline))
        .map_err(anyhow::Error::msg)?;
    let names: Vec<&str> = all.iter().map(|a| a.trace.as_str()).collect();
    let d = Diff::new(&before, &Side::of(&names.join(" + "), all));
    let new = rhscope::report::text::write_baseline_check(
        &mut std::io::stderr().lock(),
        &d,
        fail_on,
        &shown,
    )?;
    Ok(if new == 0 { 0 } else { 1 })
}
