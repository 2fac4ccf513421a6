//! `capture` and `compare-decoders`: the commands that need Windows' ETW
//! (feature `etw`); `capture --dry-run` works anywhere.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use rhscope::capture::compare::{compare, Comparison, DecodedEvent};
#[cfg(feature = "etw")]
use rhscope::capture::LiveFinding;
use rhscope::capture::SessionPlan;
use rhscope::etl::header::FILETIME_UNIX_EPOCH;
use rhscope::etl::Trace;
use rhscope::manifest::ManifestSet;

use super::analyze::Setup;

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
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
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

/// "90s", "15m", "2h", "500ms", or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 15m or 2h"))?;
    let per_unit = match unit {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "ms" => return Ok(Duration::from_millis(n)),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    n.checked_mul(per_unit)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long a duration"))
}

pub fn run(o: &CaptureOpts) -> Result<()> {
    let setup = Setup::load(o.providers.as_deref(), &[], None, &o.budget)?;
    if o.output.extension().is_none_or(|e| e != "etl") {
        anyhow::bail!("{}: the output should end in .etl", o.output.display());
    }
    let plan = SessionPlan::new(&setup.providers, &o.session, o.kernel);
    if o.dry_run {
        let mut out = std::io::stdout().lock();
        for l in plan.describe() {
            writeln!(out, "{l}")?;
        }
        writeln!(
            out,
            "output {}{}",
            o.output.display(),
            if o.kernel {
                " (kernel session: NAME.kernel.etl beside it)"
            } else {
                ""
            }
        )?;
        writeln!(
            out,
            "stop {}",
            o.duration.map_or("at Ctrl-C".to_string(), |d| format!(
                "after {} s (or at Ctrl-C)",
                d.as_secs_f64()
            ))
        )?;
        if o.force {
            writeln!(
                out,
                "first stop any session named {:?} (--force)",
                o.session
            )?;
        }
        writeln!(
            out,
            "\nwithout rhscope on the node (cmd.exe as Administrator):"
        )?;
        for l in plan.logman(&o.output.display().to_string()) {
            writeln!(out, "  {l}")?;
        }
        return Ok(());
    }
    live(o, &setup, &plan)
}

#[cfg(feature = "etw")]
fn live(o: &CaptureOpts, setup: &Setup, plan: &SessionPlan) -> Result<()> {
    use rhscope::capture::plan::kernel_path;
    use rhscope::capture::session::{unregistered, Capture};
    use rhscope::capture::{drive, DriveCounts, Live};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .map_err(|e| anyhow::anyhow!("cannot handle Ctrl-C: {e}"))?;
    let providers = &setup.providers;
    let manifest_guids: Vec<_> = providers
        .definitions()
        .iter()
        .filter(|d| d.header.decoder == rhscope::providers::Decoder::Manifest)
        .map(|d| d.guid)
        .collect();
    for p in unregistered(plan, &manifest_guids) {
        eprintln!(
            "rhscope: warning: {}",
            rhscope::capture::CaptureError::ProviderNotRegistered {
                name: p.name,
                guid: p.guid
            }
        );
    }
    let (tx, rx) = std::sync::mpsc::channel();
    // On any error below, dropping `capture` stops the sessions.
    let capture = Capture::start(plan, &o.output, o.force, tx)?;
    for l in plan.describe() {
        eprintln!("rhscope: {l}");
    }
    eprintln!(
        "rhscope: capturing to {}{}; Ctrl-C to stop",
        o.output.display(),
        o.duration
            .map_or(String::new(), |d| format!(" for {} s", d.as_secs()))
    );
    let mut live = Live::new(&setup.table, setup.cfg.clone());
    let mut counts = DriveCounts::default();
    let deadline = o.duration.map(|d| std::time::Instant::now() + d);
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64)
    };
    let print = |f: &LiveFinding| println!("{f}");
    drive(
        &rx,
        providers,
        &mut live,
        &mut counts,
        || stop.load(Ordering::SeqCst) || deadline.is_some_and(|d| std::time::Instant::now() >= d),
        now,
        print,
    );
    capture.stop()?;
    // What ETW still held, until the sessions' callbacks are gone.
    drive(&rx, providers, &mut live, &mut counts, || false, now, print);
    let a = live.finish(&o.output.display().to_string());
    let errors = a
        .findings
        .iter()
        .filter(|f| f.finding.severity == rhscope::model::Severity::Error)
        .count();
    eprintln!(
        "rhscope: stopped: {} events, {} mapped, {} findings ({} error); wrote {}{}",
        counts.events,
        counts.records,
        a.findings.len(),
        errors,
        o.output.display(),
        if plan.kernel_flags.is_some() {
            format!(" and {}", kernel_path(&o.output).display())
        } else {
            String::new()
        }
    );
    eprintln!(
        "rhscope: full analysis: rhscope report {}{} --merge -o report",
        o.output.display(),
        if plan.kernel_flags.is_some() {
            format!(" {}", kernel_path(&o.output).display())
        } else {
            String::new()
        }
    );
    Ok(())
}

#[cfg(not(feature = "etw"))]
fn live(_: &CaptureOpts, _: &Setup, _: &SessionPlan) -> Result<()> {
    Err(rhscope::capture::CaptureError::Unsupported.into())
}

/// The native reader's decodings of every event of a trace.
fn native_events(trace: &Trace, manifests: &ManifestSet) -> Result<Vec<DecodedEvent>> {
    let mut out = Vec::new();
    let mut events = trace.events();
    while let Some(ev) = events.next_event() {
        let ev = ev.map_err(|e| anyhow::anyhow!("{}: {e}", trace.path().display()))?;
        let filetime = ev.time_ns.div_euclid(100) + FILETIME_UNIX_EPOCH;
        out.push(DecodedEvent::native(&ev, filetime, manifests));
    }
    Ok(out)
}

pub fn compare_decoders(
    path: &Path,
    manifests: &[PathBuf],
    json: bool,
    output: Option<&Path>,
) -> Result<()> {
    let manifests = super::manifests(manifests)?;
    let trace = Trace::open(path)?;
    let native = native_events(&trace, &manifests)?;
    let windows = windows_events(path, &native)?;
    let c = compare(&native, &windows);
    super::with_output(output, &[path], |out| {
        if json {
            serde_json::to_writer_pretty(&mut *out, &c)?;
            writeln!(out)?;
            return Ok(());
        }
        write_comparison(out, &c)
    })
}

pub fn write_comparison(out: &mut dyn Write, c: &Comparison) -> Result<()> {
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

#[cfg(feature = "etw")]
fn windows_events(path: &Path, native: &[DecodedEvent]) -> Result<Vec<DecodedEvent>> {
    let mut names: std::collections::HashMap<_, Vec<String>> = Default::default();
    for e in native {
        names
            .entry((e.provider, e.id, e.version))
            .or_insert_with(|| e.fields.iter().map(|(k, _)| k.clone()).collect());
    }
    Ok(rhscope::capture::session::windows_decode(path, names)?)
}

#[cfg(not(feature = "etw"))]
fn windows_events(_: &Path, _: &[DecodedEvent]) -> Result<Vec<DecodedEvent>> {
    Err(rhscope::capture::CaptureError::Unsupported.into())
}
