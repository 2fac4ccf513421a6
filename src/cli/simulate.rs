//! `simulate`: a trace with a known truth.

use std::path::PathBuf;

use anyhow::Result;
use rhscope::simulate::{truth_path, write_files, FileOptions, Scenario};

#[derive(clap::Args)]
pub struct Args {
    /// healthy, do-not-use-in-online, worker-only-from-isalive,
    /// some-ok-from-offline, correct-worker, pending-timeout,
    /// control-code-by-number, mixed, large.
    scenario: Scenario,
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
    fix: Vec<Scenario>,
    /// Simulate a DLL with no rhscope instrumentation: the .etl is a
    /// kernel trace with context-switch stacks and image identities (as a
    /// WPR profile records), NAME.symbols/ beside it holds the images'
    /// symbols (the resource DLL's aside), and the truth is what the stacks
    /// show; with --cluster-log, the log is what a Windows Server 2016+
    /// node writes (header, System events, RCM and RHS lines), and the
    /// truth says what it shows too.
    #[arg(long)]
    uninstrumented: bool,
}

pub fn run(a: &Args) -> Result<()> {
    let truth = write_files(
        a.scenario,
        FileOptions {
            seed: a.seed,
            scale: a.scale,
            fixed: a.fix.clone(),
            etl: &a.output,
            cluster_log: a.cluster_log.as_deref(),
            uninstrumented: a.uninstrumented,
        },
    )?;
    eprintln!(
        "rhscope: wrote {} ({} records, {} findings planted) and {}",
        a.output.display(),
        truth.records,
        truth.findings.len(),
        truth_path(&a.output).display()
    );
    Ok(())
}
