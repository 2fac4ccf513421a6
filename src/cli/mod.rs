//! Command-line interface. Parses arguments, runs a library call, prints.
//! Exit codes: 0 success, 2 error (one line on stderr), 0 on a closed pipe.

mod analyze;
mod capture;
mod diff;
mod dump;
mod progress;
mod setup;
mod simulate;
mod stats;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rhscope",
    version,
    about = "Finds the cluster API calls that hang failover-cluster resources, from ETW traces",
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// What a trace holds: buffers, records per header kind, threads,
    /// processes, providers, time range, lost events, skipped data.
    Stats(stats::Args),
    /// One line per event: time, ids, provider, descriptor, decoded fields
    /// (raw payload hex where not decoded).
    Dump(dump::Args),
    /// Findings: cluster API misuse by entry point and thread, hangs,
    /// deadlock-monitor and pending timeouts, with blocking time, plus
    /// per-entry-point and per-API duration figures.
    Analyze(analyze::AnalyzeArgs),
    /// For CI: exit 1 when findings reach the given severity.
    Check(analyze::CheckArgs),
    /// Compares two runs: findings that disappeared, appeared or stayed, and
    /// per entry point and per API the durations before and after.
    Diff(diff::Args),
    /// Writes a report folder: index.html (opens from disk, no network),
    /// every chart as SVG and PNG, and findings.json.
    Report(analyze::ReportArgs),
    /// Exports a trace's entry points, API calls, findings and RHS messages
    /// as Chrome/Perfetto trace-event JSON (ui.perfetto.dev,
    /// chrome://tracing).
    Export(analyze::ExportArgs),
    /// Captures on a cluster node (Windows, built with `--features etw`):
    /// enables every provider of the definitions (and with --kernel the
    /// kernel's process, thread and context-switch events), writes the
    /// .etl, and prints findings as their rules fire. Ctrl-C stops it;
    /// the sessions are always stopped and the file is complete.
    Capture(capture::CaptureOpts),
    /// Reads a trace with rhscope's decoders and with Windows' own (TDH,
    /// through ferrisetw; Windows, `--features etw`) and prints every event
    /// and field where they disagree.
    CompareDecoders(capture::CompareArgs),
    /// Writes a simulated trace of an RHS process hosting resources whose
    /// DLLs behave as the scenario says, and NAME.expected.json beside it
    /// with every finding the simulation planted.
    Simulate(simulate::Args),
}

#[derive(clap::Args, Clone, Copy)]
struct ReadOpts {
    /// Fail on the first corrupt buffer or record instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Also list the cluster.log lines that did not parse, with their line
    /// numbers.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(clap::Args, Clone)]
struct AnalyzeOpts {
    /// Provider definitions to use instead of the built-in ones (a folder
    /// of *.toml).
    #[arg(long, value_name = "DIR")]
    providers: Option<PathBuf>,
    /// Instrumentation manifest (.man, or a folder of them) for manifest
    /// providers the definitions map by field name; repeatable.
    #[arg(long, value_name = "FILE|DIR")]
    manifest: Vec<PathBuf>,
    /// Usage table to use instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    usage_table: Option<PathBuf>,
    /// Entry-point budget, [TYPE/]ENTRYPOINT=MS (default 300 ms each);
    /// repeatable.
    #[arg(long, value_name = "SPEC")]
    budget: Vec<String>,
    /// Also write the model tables (entry_points, api_calls,
    /// worker_threads, waits, threads, rhs_messages, findings) as Parquet
    /// under DIR/<table>/input=<key>/.
    #[arg(long, value_name = "DIR")]
    export_parquet: Option<PathBuf>,
    /// Read .etl inputs with Windows' own reader (ferrisetw's FileTrace)
    /// instead of rhscope's: a second opinion (Windows, `--features etw`).
    #[arg(long)]
    via_tdh: bool,
    /// Analyse all inputs as one node's timeline (implied when a
    /// cluster.log or .evtx is among them); copies of one event in two
    /// inputs are dropped.
    #[arg(long)]
    merge: bool,
    /// Symbols for the stacks of .etl inputs: a folder (repeatable) of PE
    /// files copied from the node (clusapi.dll, resutils.dll, rhs.exe, the
    /// resource DLL), PDBs and Breakpad .sym files, flat or in a
    /// symbol-server layout. With it the traces' context-switch stacks are
    /// read, and calls a DLL blocked in are inferred from them.
    #[arg(long, value_name = "DIR")]
    symbols: Vec<PathBuf>,
}

pub fn main() -> i32 {
    let result = match Cli::parse().command {
        Command::Stats(a) => stats::run(&a),
        Command::Dump(a) => dump::run(&a),
        Command::Analyze(a) => analyze::run(&a),
        Command::Check(a) => match analyze::check(&a) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
        Command::Diff(a) => diff::run(&a),
        Command::Report(a) => analyze::report(&a),
        Command::Export(a) => analyze::export(&a),
        Command::Simulate(a) => simulate::run(&a),
        Command::Capture(a) => capture::run(&a),
        Command::CompareDecoders(a) => capture::compare_decoders(&a),
    };
    match result {
        Ok(()) => 0,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            let _ = writeln!(io::stderr(), "rhscope: {e:#}");
            2
        }
    }
}

/// Runs `write` against standard output, or against `path` written
/// atomically (never over one of `inputs`).
fn with_output(
    path: Option<&Path>,
    inputs: &[&Path],
    write: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    match path {
        None => {
            let mut out = io::BufWriter::new(io::stdout().lock());
            write(&mut out)?;
            out.flush()?;
            Ok(())
        }
        Some(path) => rhscope::report::output::write_atomically(path, inputs, write),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        let kind = c
            .downcast_ref::<io::Error>()
            .map(io::Error::kind)
            .or_else(|| {
                c.downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            });
        kind == Some(io::ErrorKind::BrokenPipe)
    })
}
