//! `capture` and `compare-decoders`: the commands that need Windows' ETW
//! (feature `etw`); `capture --dry-run` works anywhere.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use rhscope::capture::compare::{compare, native_events};
use rhscope::capture::SessionPlan;
use rhscope::read::etl::Trace;

use super::setup::Setup;

#[derive(clap::Args)]
pub struct CaptureOpts {
    /// The .etl to write (the kernel session writes NAME.kernel.etl).
    #[arg(short, long, value_name = "FILE.etl")]
    pub output: PathBuf,
    /// Provider definitions to enable instead of the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub providers: Option<PathBuf>,
    /// Also run the kernel session (context switches: blocking time).
    #[arg(long)]
    pub kernel: bool,
    /// Stop after this long (90s, 15m, 2h); default: until Ctrl-C.
    #[arg(long, value_name = "DURATION", value_parser = rhscope::capture::plan::parse_duration)]
    pub duration: Option<Duration>,
    /// The ETW session's name.
    #[arg(long, default_value = rhscope::capture::plan::DEFAULT_SESSION)]
    pub session: String,
    /// Stop an existing session of the same name first.
    #[arg(long)]
    pub force: bool,
    /// Entry-point budget, [TYPE/]ENTRYPOINT=MS; repeatable.
    #[arg(long, value_name = "SPEC")]
    pub budget: Vec<String>,
    /// Print what would be enabled, and the equivalent logman
    /// commands, without starting anything (any OS).
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(o: &CaptureOpts) -> Result<()> {
    let setup = Setup::load(o.providers.as_deref(), &[], None, &o.budget)?;
    if o.output.extension().is_none_or(|e| e != "etl") {
        anyhow::bail!("{}: the output should end in .etl", o.output.display());
    }
    let plan = SessionPlan::new(&setup.providers, &o.session, o.kernel);
    if o.dry_run {
        let mut out = std::io::stdout().lock();
        for l in rhscope::capture::plan::dry_run(&plan, &o.output, o.duration, o.force) {
            writeln!(out, "{l}")?;
        }
        return Ok(());
    }
    live(o, &setup, &plan)
}

#[cfg(feature = "etw")]
fn live(o: &CaptureOpts, setup: &Setup, plan: &SessionPlan) -> Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .map_err(|e| anyhow::anyhow!("cannot handle Ctrl-C: {e}"))?;
    for l in plan.describe() {
        eprintln!("rhscope: {l}");
    }
    eprintln!(
        "rhscope: capturing to {}{}; Ctrl-C to stop",
        o.output.display(),
        o.duration
            .map_or(String::new(), |d| format!(" for {} s", d.as_secs()))
    );
    let deadline = o.duration.map(|d| std::time::Instant::now() + d);
    let (a, counts) = rhscope::capture::run_live(
        plan,
        &o.output,
        o.force,
        (&setup.providers, &setup.table, &setup.cfg),
        || stop.load(Ordering::SeqCst) || deadline.is_some_and(|d| std::time::Instant::now() >= d),
        |w| eprintln!("rhscope: warning: {w}"),
        |f| println!("{f}"),
    )?;
    let errors = a
        .findings
        .iter()
        .filter(|f| f.finding.severity == rhscope::model::Severity::Error)
        .count();
    let kernel = plan.kernel_flags.map(|_| {
        rhscope::capture::plan::kernel_path(&o.output)
            .display()
            .to_string()
    });
    eprintln!(
        "rhscope: stopped: {} events, {} mapped, {} findings ({} error); wrote {}{}",
        counts.events,
        counts.records,
        a.findings.len(),
        errors,
        o.output.display(),
        kernel
            .as_ref()
            .map_or(String::new(), |k| format!(" and {k}"))
    );
    eprintln!(
        "rhscope: full analysis: rhscope report {}{} --merge -o report",
        o.output.display(),
        kernel.map_or(String::new(), |k| format!(" {k}"))
    );
    Ok(())
}

#[cfg(not(feature = "etw"))]
fn live(_: &CaptureOpts, _: &Setup, _: &SessionPlan) -> Result<()> {
    Err(rhscope::capture::CaptureError::Unsupported.into())
}

#[derive(clap::Args)]
pub struct CompareArgs {
    trace: PathBuf,
    /// Instrumentation manifests besides the built-in ones.
    #[arg(long, value_name = "FILE|DIR")]
    manifest: Vec<PathBuf>,
    #[arg(long)]
    json: bool,
    /// Write to this file (atomically) instead of standard output.
    #[arg(short, long, value_name = "PATH")]
    output: Option<PathBuf>,
}

pub fn compare_decoders(a: &CompareArgs) -> Result<()> {
    let manifests = rhscope::providers::manifests(&a.manifest)?;
    let trace = Trace::open(&a.trace)?;
    let native = native_events(&trace, &manifests)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.trace.display()))?;
    let windows = rhscope::capture::windows_events(&a.trace, &native)?;
    let c = compare(&native, &windows);
    super::with_output(a.output.as_deref(), &[&a.trace], |out| {
        if a.json {
            serde_json::to_writer_pretty(&mut *out, &c)?;
            writeln!(out)?;
        } else {
            rhscope::report::text::write_comparison(out, &c)?;
        }
        Ok(())
    })
}
