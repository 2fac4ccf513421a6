//! `analyze`, `check`, `report` and `export`: analyse the inputs, then
//! print with one of the library's printers.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rhscope::analysis::Analysis;
use rhscope::model::Severity;
use rhscope::report::{csv, sarif, text};

use super::setup::Inputs;

#[derive(clap::Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    inputs: Inputs,
    #[arg(long, value_enum, default_value_t = AnalyzeFormat::Table)]
    format: AnalyzeFormat,
    /// Write to this file (atomically) instead of standard output.
    #[arg(short, long, value_name = "PATH")]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AnalyzeFormat {
    Table,
    Json,
    Csv,
    /// The findings table as Parquet (needs -o).
    Parquet,
}

#[derive(clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    inputs: Inputs,
    /// Fail on errors only, or on warnings too.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    fail_on: FailOn,
    /// Also write the findings as SARIF 2.1.0.
    #[arg(long, value_name = "FILE")]
    sarif: Option<PathBuf>,
    /// Fail only on findings this saved run does not have (`analyze
    /// --format json` output or a report's findings.json): adopt the
    /// gate on an old DLL, then keep it from getting worse.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FailOn {
    Error,
    Warning,
}

#[derive(clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    inputs: Inputs,
    /// The folder to write: a new or empty one, or an earlier report of
    /// rhscope's (replaced whole); never one holding anything else.
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    inputs: Inputs,
    /// The JSON file to write: every timeline (node) of the inputs on one
    /// time axis.
    #[arg(long, value_name = "FILE")]
    perfetto: PathBuf,
}

pub fn run(a: &AnalyzeArgs) -> Result<()> {
    let all = a.inputs.analyses()?;
    let paths = a.inputs.paths();
    let output = a.output.as_deref();
    if let AnalyzeFormat::Parquet = a.format {
        return write_parquet(&all, output, &paths);
    }
    super::with_output(output, &paths, |out| {
        match a.format {
            AnalyzeFormat::Table => text::write_analyses(out, &all)?,
            AnalyzeFormat::Json => {
                // Written as it is serialised: through a JSON value tree
                // it cost a tenth of a node log's analysis.
                #[derive(serde::Serialize)]
                struct Json<'a> {
                    analyses: &'a [rhscope::analysis::Analysis],
                    cluster: Vec<rhscope::analysis::hosting::ClusterRow>,
                }
                let json = Json {
                    analyses: &all,
                    cluster: rhscope::analysis::hosting::cluster_view(&all),
                };
                serde_json::to_writer_pretty(&mut *out, &json)?;
                writeln!(out)?;
            }
            AnalyzeFormat::Csv => csv::write_findings(out, &all)?,
            AnalyzeFormat::Parquet => unreachable!("handled above"),
        }
        Ok(())
    })
}

#[cfg(feature = "polars")]
fn write_parquet(all: &[Analysis], output: Option<&Path>, inputs: &[&Path]) -> Result<()> {
    let Some(path) = output else {
        anyhow::bail!("--format parquet writes a file: give -o PATH");
    };
    Ok(rhscope::report::parquet::write_findings(all, path, inputs)?)
}

#[cfg(not(feature = "polars"))]
fn write_parquet(_: &[Analysis], _: Option<&Path>, _: &[&Path]) -> Result<()> {
    anyhow::bail!("--format parquet needs rhscope built with the `polars` feature")
}

/// `check`: exit 1 when any finding reaches `fail_on`.
pub fn check(a: &CheckArgs) -> Result<i32> {
    let fail_on = match a.fail_on {
        FailOn::Error => Severity::Error,
        FailOn::Warning => Severity::Warning,
    };
    let all = a.inputs.analyses()?;
    if let Some(base) = &a.baseline {
        return super::diff::check_baseline(&all, base, fail_on);
    }
    if let Some(path) = &a.sarif {
        rhscope::report::output::write_atomically::<anyhow::Error>(
            path,
            &a.inputs.paths(),
            |out| {
                serde_json::to_writer_pretty(&mut *out, &sarif::report(&all))?;
                writeln!(out)?;
                Ok(())
            },
        )
        .with_context(|| format!("writing SARIF to {}", path.display()))?;
    }
    let failing = text::write_check(&mut std::io::stderr().lock(), &all, fail_on)?;
    Ok(if failing == 0 { 0 } else { 1 })
}

#[cfg(feature = "report")]
pub fn report(a: &ReportArgs) -> Result<()> {
    let dir = a.output.as_path();
    let all = a.inputs.analyses()?;
    let files = rhscope::report::html::write_report(&all, dir, &a.inputs.paths())?;
    if !a.inputs.read.quiet {
        eprintln!(
            "rhscope: wrote {} ({} files)",
            dir.join("index.html").display(),
            files.len()
        );
    }
    Ok(())
}

#[cfg(not(feature = "report"))]
pub fn report(_: &ReportArgs) -> Result<()> {
    anyhow::bail!("reports need rhscope built with the `report` feature")
}

pub fn export(a: &ExportArgs) -> Result<()> {
    let all = a.inputs.analyses()?;
    rhscope::report::output::write_atomically::<anyhow::Error>(
        &a.perfetto,
        &a.inputs.paths(),
        |w| {
            rhscope::report::perfetto::write_trace_events(&all, &mut *w)?;
            writeln!(w)?;
            Ok(())
        },
    )
}
