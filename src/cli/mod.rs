//! Command-line interface. Parses arguments, runs a library call, prints.
//! Exit codes: 0 success, 2 error (one line on stderr), 0 on a closed pipe.

mod dump;
mod progress;
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
        /// Write to this file (atomically) instead of standard output.
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        #[command(flatten)]
        read: ReadOpts,
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
            read,
        } => dump::run(&trace, format, &provider, limit, output.as_deref(), read),
        Command::Simulate {
            scenario,
            seed,
            scale,
            output,
        } => simulate::run(scenario, seed, scale, &output),
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
