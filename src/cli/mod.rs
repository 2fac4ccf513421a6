//! Command-line interface. Parses arguments, runs a library call, prints.
//! Exit codes: 0 success, 2 error (one line on stderr), 0 on a closed pipe.

mod analyze;
mod capture;
mod diff;
mod dump;
mod progress;
mod sarif;
mod simulate;
mod stats;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

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
    Stats {
        /// The .etl file.
        trace: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Write to this file (atomically) instead of standard output.
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        #[command(flatten)]
        read: ReadOpts,
    },
    /// One line per event: time, ids, provider, descriptor, decoded fields
    /// (raw payload hex where not decoded).
    Dump {
        /// The .etl file.
        trace: PathBuf,
        #[arg(long, value_enum, default_value_t = DumpFormat::Jsonl)]
        format: DumpFormat,
        /// Only events of this provider (GUID or name); repeatable.
        #[arg(long, value_name = "GUID|NAME")]
        provider: Vec<String>,
        /// Stop after this many events.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// Instrumentation manifest (.man, or a folder of them) to decode
        /// manifest events with, besides the built-in ones; repeatable.
        #[arg(long, value_name = "FILE|DIR")]
        manifest: Vec<PathBuf>,
        /// Write to this file (atomically) instead of standard output.
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        #[command(flatten)]
        read: ReadOpts,
    },
    /// Findings: cluster API misuse by entry point and thread, hangs,
    /// deadlock-monitor and pending timeouts, with blocking time, plus
    /// per-entry-point and per-API duration figures.
    Analyze {
        /// One or more .etl files (one per node, say).
        #[arg(required = true)]
        traces: Vec<PathBuf>,
        #[command(flatten)]
        analyze: AnalyzeOpts,
        #[arg(long, value_enum, default_value_t = AnalyzeFormat::Table)]
        format: AnalyzeFormat,
        /// Write to this file (atomically) instead of standard output.
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        #[command(flatten)]
        read: ReadOpts,
    },
    /// For CI: exit 1 when findings reach the given severity.
    Check {
        #[arg(required = true)]
        traces: Vec<PathBuf>,
        #[command(flatten)]
        analyze: AnalyzeOpts,
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
        #[command(flatten)]
        read: ReadOpts,
    },
    /// Compares two runs: findings that disappeared, appeared or stayed, and
    /// per entry point and per API the durations before and after.
    Diff {
        /// The run before the change: a trace (.etl, cluster.log, .evtx) or
        /// a saved `analyze --format json` / findings.json.
        before: PathBuf,
        /// The run after it, the same kinds.
        after: PathBuf,
        #[command(flatten)]
        analyze: AnalyzeOpts,
        #[arg(long, value_enum, default_value_t = DiffFormat::Table)]
        format: DiffFormat,
        /// Also write a report folder (index.html, charts, diff.json).
        #[arg(long, value_name = "DIR")]
        report: Option<PathBuf>,
        /// Write to this file (atomically) instead of standard output.
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        #[command(flatten)]
        read: ReadOpts,
    },
    /// Writes a report folder: index.html (opens from disk, no network),
    /// every chart as SVG and PNG, and findings.json.
    Report {
        #[arg(required = true)]
        traces: Vec<PathBuf>,
        #[command(flatten)]
        analyze: AnalyzeOpts,
        /// The folder to write (replaced whole when it exists).
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
        #[command(flatten)]
        read: ReadOpts,
    },
    /// Exports a trace's entry points, API calls, findings and RHS messages
    /// as Chrome/Perfetto trace-event JSON (ui.perfetto.dev,
    /// chrome://tracing).
    Export {
        trace: PathBuf,
        #[command(flatten)]
        analyze: AnalyzeOpts,
        /// The JSON file to write.
        #[arg(long, value_name = "FILE")]
        perfetto: PathBuf,
        #[command(flatten)]
        read: ReadOpts,
    },
    /// Captures on a cluster node (Windows, built with `--features etw`):
    /// enables every provider of the definitions (and with --kernel the
    /// kernel's process, thread and context-switch events), writes the
    /// .etl, and prints findings as their rules fire. Ctrl-C stops it;
    /// the sessions are always stopped and the file is complete.
    Capture(capture::CaptureOpts),
    /// Reads a trace with rhscope's decoders and with Windows' own (TDH,
    /// through ferrisetw; Windows, `--features etw`) and prints every event
    /// and field where they disagree.
    CompareDecoders {
        trace: PathBuf,
        /// Instrumentation manifests besides the built-in ones.
        #[arg(long, value_name = "FILE|DIR")]
        manifest: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
        /// Write to this file (atomically) instead of standard output.
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Writes a simulated trace of an RHS process hosting resources whose
    /// DLLs behave as the scenario says, and NAME.expected.json beside it
    /// with every finding the simulation planted.
    Simulate {
        /// healthy, do-not-use-in-online, worker-only-from-isalive,
        /// some-ok-from-offline, correct-worker, pending-timeout,
        /// control-code-by-number, mixed, large.
        scenario: rhscope::simulate::Scenario,
        /// Seed of the simulation's random choices (timing jitter).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// For `large`: about how many records to write.
        #[arg(long, default_value_t = 1_000_000)]
        scale: u64,
        /// The .etl to write.
        #[arg(short, long, value_name = "PATH.etl")]
        output: PathBuf,
        /// Also write the node's cluster.log: the same events as
        /// Get-ClusterLog lines ([RHS] messages, [RES] lines of the DLL).
        #[arg(long, value_name = "PATH")]
        cluster_log: Option<PathBuf>,
        /// Simulate the DLL with this behaviour fixed (a scenario name,
        /// repeatable): the "after" trace of a before/after pair.
        #[arg(long, value_name = "SCENARIO")]
        fix: Vec<rhscope::simulate::Scenario>,
    },
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
    /// under DIR/<table>/trace=<file>/.
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
}

#[derive(Clone, Copy, ValueEnum)]
enum AnalyzeFormat {
    Table,
    Json,
    Csv,
    /// The findings table as Parquet (needs -o).
    Parquet,
}

#[derive(Clone, Copy, ValueEnum)]
enum DiffFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum FailOn {
    Error,
    Warning,
}

#[derive(Clone, Copy, ValueEnum)]
enum DumpFormat {
    Jsonl,
    Csv,
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Stats {
            trace,
            json,
            output,
            read,
        } => stats::run(&trace, json, output.as_deref(), read),
        Command::Dump {
            trace,
            format,
            provider,
            limit,
            output,
            manifest,
            read,
        } => dump::run(
            &trace,
            format,
            &provider,
            limit,
            output.as_deref(),
            &manifest,
            read,
        ),
        Command::Analyze {
            traces,
            analyze,
            format,
            output,
            read,
        } => analyze::run(&traces, &analyze, format, output.as_deref(), read),
        Command::Check {
            traces,
            analyze,
            fail_on,
            sarif,
            baseline,
            read,
        } => {
            let level = match fail_on {
                FailOn::Error => rhscope::model::Severity::Error,
                FailOn::Warning => rhscope::model::Severity::Warning,
            };
            match analyze::check(
                &traces,
                &analyze,
                level,
                sarif.as_deref(),
                baseline.as_deref(),
                read,
            ) {
                Ok(code) => return code,
                Err(e) => Err(e),
            }
        }
        Command::Diff {
            before,
            after,
            analyze,
            format,
            report,
            output,
            read,
        } => diff::run(
            &before,
            &after,
            &analyze,
            format,
            report.as_deref(),
            output.as_deref(),
            read,
        ),
        Command::Report {
            traces,
            analyze,
            output,
            read,
        } => analyze::report(&traces, &analyze, &output, read),
        Command::Export {
            trace,
            analyze,
            perfetto,
            read,
        } => analyze::export(&trace, &analyze, &perfetto, read),
        Command::Simulate {
            scenario,
            seed,
            scale,
            output,
            cluster_log,
            fix,
        } => simulate::run(scenario, seed, scale, &output, cluster_log.as_deref(), fix),
        Command::Capture(opts) => capture::run(&opts),
        Command::CompareDecoders {
            trace,
            manifest,
            json,
            output,
        } => capture::compare_decoders(&trace, &manifest, json, output.as_deref()),
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

/// The built-in manifests plus those given.
fn manifests(paths: &[PathBuf]) -> anyhow::Result<rhscope::manifest::ManifestSet> {
    let mut set = rhscope::manifest::ManifestSet::embedded();
    for p in paths {
        set.add_path(p)?;
    }
    Ok(set)
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
        Some(path) => rhscope::output::write_atomically(path, inputs, write),
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
