use rhscope::model::label as name;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rhscope::analysis::source::InputKind;
use rhscope::analysis::{
    analyze_sources, Aggregate, Analysis, ClusterLogSource, Config, EtlSource, EventSource,
    Reported,
};
use rhscope::clusterlog::ClusterLog;
use rhscope::etl::Trace;
use rhscope::model::Severity;
use rhscope::providers::ProviderSet;
use rhscope::usage::UsageTable;

use super::{progress, AnalyzeFormat, AnalyzeOpts, ReadOpts};

/// What an analysis runs with: provider definitions (with manifests), the
/// usage table, the rules' thresholds. Loaded once per command.
pub struct Setup {
    pub providers: ProviderSet,
    pub table: UsageTable,
    pub cfg: Config,
}

impl Setup {
    pub fn load(
        providers: Option<&Path>,
        manifests: &[PathBuf],
        usage_table: Option<&Path>,
        budgets: &[String],
    ) -> Result<Setup> {
        let providers = match providers {
            Some(dir) => ProviderSet::load_dir(dir)?,
            None => ProviderSet::embedded(),
        }
        .with_manifests(super::manifests(manifests)?);
        let table = match usage_table {
            Some(f) => UsageTable::load(f)?,
            None => UsageTable::embedded(),
        };
        let mut cfg = Config::default();
        for b in budgets {
            cfg.add_budget(b).map_err(anyhow::Error::msg)?;
        }
        Ok(Setup {
            providers,
            table,
            cfg,
        })
    }

    pub fn from_opts(opts: &AnalyzeOpts) -> Result<Setup> {
        Setup::load(
            opts.providers.as_deref(),
            &opts.manifest,
            opts.usage_table.as_deref(),
            &opts.budget,
        )
    }
}

/// Reads every input with the chosen definitions and analyses it: .etl
/// files one by one; when a cluster.log or .evtx is among the inputs (or
/// with --merge), all of them as one node's timeline.
pub fn analyses(
    traces: &[PathBuf],
    setup: &Setup,
    opts: &AnalyzeOpts,
    read: ReadOpts,
) -> Result<Vec<Analysis>> {
    let Setup {
        providers,
        table,
        cfg,
    } = setup;
    let mut kinds = Vec::new();
    for path in traces {
        let kind = InputKind::detect(path).with_context(|| format!("{}", path.display()))?;
        kinds.push((path.as_path(), kind));
    }
    let merge = opts.merge || kinds.iter().any(|(_, k)| *k != InputKind::Etl);
    let groups: Vec<Vec<(&Path, InputKind)>> = if merge {
        vec![kinds]
    } else {
        kinds.into_iter().map(|k| vec![k]).collect()
    };
    let mut out = Vec::new();
    for group in groups {
        #[allow(unused_mut)]
        let mut a = analyze_group(&group, providers, table, cfg, opts.via_tdh, read)?;
        #[cfg(feature = "polars")]
        {
            rhscope::analysis::fill_aggregates(&mut a, table).context("computing aggregates")?;
            if let Some(dir) = &opts.export_parquet {
                let mut frames = rhscope::model::frames::Frames::new(&a, table)
                    .context("building model tables")?;
                let name = group
                    .iter()
                    .map(|(p, _)| {
                        p.file_name().map_or_else(
                            || p.display().to_string(),
                            |n| n.to_string_lossy().into_owned(),
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("+");
                rhscope::model::frames::export_parquet(dir, &mut frames, &name)?;
            }
        }
        #[cfg(not(feature = "polars"))]
        if opts.export_parquet.is_some() {
            anyhow::bail!("--export-parquet needs rhscope built with the `polars` feature");
        }
        out.push(a);
    }
    Ok(out)
}

/// .etl inputs read by Windows (ferrisetw's FileTrace), the rest as usual.
#[cfg(feature = "etw")]
fn analyze_via_tdh(
    group: &[(&Path, InputKind)],
    providers: &ProviderSet,
    table: &UsageTable,
    cfg: &Config,
    read: ReadOpts,
) -> Result<Analysis> {
    let mut sources = Vec::new();
    for &(path, kind) in group {
        if kind != InputKind::Etl {
            anyhow::bail!("{}: --via-tdh reads .etl files only", path.display());
        }
        let rx = rhscope::capture::session::replay(path)?;
        sources.push(rhscope::capture::ChannelSource::new(
            &path.display().to_string(),
            rx,
            providers,
        ));
    }
    let refs: Vec<&mut dyn EventSource> = sources
        .iter_mut()
        .map(|s| s as &mut dyn EventSource)
        .collect();
    Ok(analyze_sources(refs, table, cfg, read.strict)?)
}

#[cfg(not(feature = "etw"))]
fn analyze_via_tdh(
    _: &[(&Path, InputKind)],
    _: &ProviderSet,
    _: &UsageTable,
    _: &Config,
    _: ReadOpts,
) -> Result<Analysis> {
    Err(rhscope::capture::CaptureError::Unsupported.into())
}

#[cfg(feature = "evtx")]
fn open_evtx(path: &Path, providers: &ProviderSet) -> Result<rhscope::eventlog::EvtxSource> {
    Ok(rhscope::eventlog::EvtxSource::open(path, providers)?)
}

/// Without the feature no .evtx source exists; the error says so.
#[cfg(not(feature = "evtx"))]
fn open_evtx(path: &Path, _: &ProviderSet) -> Result<Box<dyn EventSource>> {
    anyhow::bail!(
        "{}: .evtx input needs rhscope built with the `evtx` feature",
        path.display()
    )
}

/// One input of a timeline: cluster.logs are kept apart for their line
/// counts after the analysis.
enum Input<'t> {
    Etl(EtlSource<'t>),
    Log(ClusterLogSource<'t>),
    Other(Box<dyn EventSource + 't>),
}

impl EventSource for Input<'_> {
    fn name(&self) -> String {
        match self {
            Input::Etl(s) => s.name(),
            Input::Log(s) => s.name(),
            Input::Other(s) => s.name(),
        }
    }

    fn next_observed(
        &mut self,
    ) -> Option<Result<rhscope::analysis::Observed, rhscope::analysis::AnalysisError>> {
        match self {
            Input::Etl(s) => s.next_observed(),
            Input::Log(s) => s.next_observed(),
            Input::Other(s) => s.next_observed(),
        }
    }
}

/// One timeline from inputs of one node.
fn analyze_group(
    group: &[(&Path, InputKind)],
    providers: &ProviderSet,
    table: &UsageTable,
    cfg: &Config,
    via_tdh: bool,
    read: ReadOpts,
) -> Result<Analysis> {
    if via_tdh {
        return analyze_via_tdh(group, providers, table, cfg, read);
    }
    let total: u64 = group
        .iter()
        .filter_map(|(p, _)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let bar = progress::bar(total, read.quiet);
    // Traces first: their sources borrow them.
    let traces: Vec<Option<Trace>> = group
        .iter()
        .map(|&(path, kind)| {
            (kind == InputKind::Etl)
                .then(|| Trace::open(path))
                .transpose()
        })
        .collect::<Result<_, _>>()?;
    // Sources in the order given, so evidence indexes name the inputs.
    let mut inputs = Vec::new();
    for (&(path, kind), trace) in group.iter().zip(&traces) {
        inputs.push(match (kind, trace) {
            (InputKind::Etl, Some(t)) => Input::Etl(EtlSource::new(t, providers)),
            (InputKind::Etl, None) => unreachable!("every .etl input was opened above"),
            (InputKind::ClusterLog, _) => {
                Input::Log(ClusterLogSource::new(ClusterLog::open(path)?, providers))
            }
            (InputKind::Evtx, _) => Input::Other(Box::new(open_evtx(path, providers)?)),
        });
    }
    let sources: Vec<&mut dyn EventSource> = inputs
        .iter_mut()
        .map(|i| i as &mut dyn EventSource)
        .collect();
    let mut a = analyze_sources(sources, table, cfg, read.strict)?;
    bar.finish_and_clear();
    for s in inputs.iter().filter_map(|i| match i {
        Input::Log(s) => Some(s),
        _ => None,
    }) {
        let c = s.counts();
        a.unparsed_lines += c.unparsed_lines;
        if read.verbose {
            for u in &c.unparsed {
                eprintln!(
                    "rhscope: {} line {}: {}: {}",
                    s.name(),
                    u.line,
                    u.reason,
                    u.text
                );
            }
            if c.unparsed_lines > c.unparsed.len() as u64 {
                eprintln!(
                    "rhscope: {}: {} more unparsed lines not shown",
                    s.name(),
                    c.unparsed_lines - c.unparsed.len() as u64
                );
            }
        }
    }
    Ok(a)
}

pub fn run(
    traces: &[PathBuf],
    opts: &AnalyzeOpts,
    format: AnalyzeFormat,
    output: Option<&Path>,
    read: ReadOpts,
) -> Result<()> {
    let setup = Setup::from_opts(opts)?;
    let all = analyses(traces, &setup, opts, read)?;
    let inputs: Vec<&Path> = traces.iter().map(PathBuf::as_path).collect();
    if let AnalyzeFormat::Parquet = format {
        return write_parquet(&all, &setup.table, output, &inputs);
    }
    super::with_output(output, &inputs, |out| match format {
        AnalyzeFormat::Table => write_table(out, &all),
        AnalyzeFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &serde_json::json!({ "analyses": all }))?;
            writeln!(out)?;
            Ok(())
        }
        AnalyzeFormat::Csv => write_csv(out, &all),
        AnalyzeFormat::Parquet => unreachable!("handled above"),
    })
}

#[cfg(feature = "polars")]
fn write_parquet(
    analyses: &[Analysis],
    table: &UsageTable,
    output: Option<&Path>,
    inputs: &[&Path],
) -> Result<()> {
    use polars::prelude::{concat, IntoLazy, ParquetWriter, UnionArgs};
    let Some(path) = output else {
        anyhow::bail!("--format parquet writes a file: give -o PATH");
    };
    let mut frames = Vec::new();
    for a in analyses {
        frames.push(
            rhscope::model::frames::Frames::new(a, table)?
                .findings
                .lazy(),
        );
    }
    let mut df = concat(frames, UnionArgs::default())?.collect()?;
    let mut file = rhscope::output::AtomicFile::create(path, inputs)?;
    ParquetWriter::new(file.writer()).finish(&mut df)?;
    file.commit()?;
    Ok(())
}

#[cfg(not(feature = "polars"))]
fn write_parquet(_: &[Analysis], _: &UsageTable, _: Option<&Path>, _: &[&Path]) -> Result<()> {
    anyhow::bail!("--format parquet needs rhscope built with the `polars` feature")
}

pub fn duration(ns: Option<i64>) -> String {
    match ns {
        None => "never returned".into(),
        Some(ns) if ns >= 1_000_000_000 => format!("{:.3} s", ns as f64 / 1e9),
        Some(ns) => format!("{:.3} ms", ns as f64 / 1e6),
    }
}

/// Rules about an instant, not a call, have no duration to show.
fn shown_duration(f: &rhscope::model::Finding) -> String {
    match f.rule {
        rhscope::model::Rule::RhsRestart | rhscope::model::Rule::PendingTimeout => "-".into(),
        _ => duration(f.duration_ns),
    }
}

fn write_table(out: &mut dyn Write, all: &[Analysis]) -> Result<()> {
    for a in all {
        let errors = a
            .findings
            .iter()
            .filter(|f| f.finding.severity == Severity::Error)
            .count();
        writeln!(out, "trace      {}", a.trace)?;
        writeln!(
            out,
            "time       {} .. {}",
            a.first.as_deref().unwrap_or("-"),
            a.last.as_deref().unwrap_or("-")
        )?;
        writeln!(
            out,
            "resources  {} ({})",
            a.resources.len(),
            a.resources.join(", ")
        )?;
        writeln!(
            out,
            "model      {} records mapped, {} unmappable, {} ends without a begin, {} duplicates dropped, {} unparsed lines, {} skipped as corrupt, {} context switches{}",
            a.records,
            a.unmapped_errors,
            a.unmatched_ends,
            a.duplicates,
            a.unparsed_lines,
            a.skipped,
            a.context_switches,
            if a.context_switches == 0 { " (blocking is wall-clock only)" } else { "" }
        )?;
        writeln!(
            out,
            "findings   {} ({} error, {} warning)",
            a.findings.len(),
            errors,
            a.findings.len() - errors
        )?;
        if !a.findings.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "{:<8} {:<17} {:<12} {:<13} {:<46} {:<16} {:>6}  {:<30} {:>15}  BLOCKED",
                "SEVERITY",
                "RULE",
                "RESOURCE",
                "ENTRY POINT",
                "API (USAGE)",
                "THREAD",
                "TID",
                "BEGIN",
                "DURATION"
            )?;
            for r in &a.findings {
                let f = &r.finding;
                let api = match (&f.api, f.usage) {
                    (Some(api), Some(u)) => format!("{api} ({u})"),
                    (Some(api), None) => api.clone(),
                    _ => "-".into(),
                };
                let blocked = r.blocking.as_ref().map_or("-".to_string(), |b| {
                    match (b.waiting_ns, b.ready_ns, b.running_ns) {
                        (Some(w), Some(rd), Some(run)) => format!(
                            "wait {} ready {} run {} {}",
                            duration(Some(w)),
                            duration(Some(rd)),
                            duration(Some(run)),
                            b.wait_reasons.join(",")
                        ),
                        _ => format!("{} wall-clock", duration(Some(b.total_ns))),
                    }
                });
                writeln!(
                    out,
                    "{:<8} {:<17} {:<12} {:<13} {:<46} {:<16} {:>6}  {:<30} {:>15}  {}",
                    name(&f.severity),
                    name(&f.rule),
                    f.resource.as_deref().unwrap_or("-"),
                    f.entry_point.map_or("-".to_string(), |e| e.to_string()),
                    api,
                    f.thread_kind.map_or("-".to_string(), |k| name(&k)),
                    f.tid,
                    f.begin,
                    shown_duration(f),
                    blocked
                )?;
            }
        }
        write_aggregates(out, "entry points", &a.by_entry_point)?;
        write_aggregates(out, "API calls", &a.by_api)?;
        writeln!(out)?;
    }
    Ok(())
}

fn write_aggregates(out: &mut dyn Write, title: &str, rows: &[Aggregate]) -> Result<()> {
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
        writeln!(
            out,
            "{:<42} {:>7} {:>10} {:>15} {:>15} {:>15} {:>15}",
            g.key,
            g.count,
            g.unreturned,
            duration(Some(g.p50_ns)),
            duration(Some(g.p95_ns)),
            duration(Some(g.max_ns)),
            duration(Some(g.total_ns))
        )?;
    }
    Ok(())
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_csv(out: &mut dyn Write, all: &[Analysis]) -> Result<()> {
    writeln!(out, "trace,severity,rule,resource,entry_point,api,usage,thread_kind,pid,tid,begin,duration_ns,blocking_source,waiting_ns,ready_ns,running_ns,evidence")?;
    for (a, r) in all
        .iter()
        .flat_map(|a| a.findings.iter().map(move |r| (a, r)))
    {
        let f = &r.finding;
        let b = r.blocking.as_ref();
        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        let evidence: Vec<String> = r.evidence.iter().map(|e| e.describe(&a.inputs)).collect();
        let cells = [
            r.trace.clone(),
            name(&f.severity),
            name(&f.rule),
            f.resource.clone().unwrap_or_default(),
            f.entry_point.map(|e| e.to_string()).unwrap_or_default(),
            f.api.clone().unwrap_or_default(),
            f.usage.map(|u| u.to_string()).unwrap_or_default(),
            f.thread_kind.map(|k| name(&k)).unwrap_or_default(),
            f.pid.to_string(),
            f.tid.to_string(),
            f.begin.clone(),
            opt(f.duration_ns),
            b.map(|b| b.source.to_string()).unwrap_or_default(),
            opt(b.and_then(|b| b.waiting_ns)),
            opt(b.and_then(|b| b.ready_ns)),
            opt(b.and_then(|b| b.running_ns)),
            evidence.join("; "),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        writeln!(out, "{}", line.join(","))?;
    }
    Ok(())
}

/// `check`: exit 1 when any finding reaches `fail_on`.
pub fn check(
    traces: &[PathBuf],
    opts: &AnalyzeOpts,
    fail_on: Severity,
    sarif: Option<&Path>,
    baseline: Option<&Path>,
    read: ReadOpts,
) -> Result<i32> {
    let all = analyses(traces, &Setup::from_opts(opts)?, opts, read)?;
    if let Some(base) = baseline {
        return super::diff::check_baseline(&all, base, fail_on);
    }
    if let Some(path) = sarif {
        let inputs: Vec<&Path> = traces.iter().map(PathBuf::as_path).collect();
        rhscope::output::write_atomically::<anyhow::Error>(path, &inputs, |out| {
            serde_json::to_writer_pretty(&mut *out, &super::sarif::report(&all))?;
            writeln!(out)?;
            Ok(())
        })
        .with_context(|| format!("writing SARIF to {}", path.display()))?;
    }
    let failing: Vec<&Reported> = all
        .iter()
        .flat_map(|a| &a.findings)
        .filter(|r| r.finding.severity >= fail_on)
        .collect();
    let mut err = std::io::stderr().lock();
    for r in &failing {
        let f = &r.finding;
        writeln!(
            err,
            "{}: {} {}: {} {} {} tid {} at {} ({})",
            r.trace,
            name(&f.severity),
            name(&f.rule),
            f.resource.as_deref().unwrap_or("-"),
            f.entry_point.map_or("-".to_string(), |e| e.to_string()),
            f.api.as_deref().unwrap_or(""),
            f.tid,
            f.begin,
            shown_duration(f)
        )?;
    }
    let total: usize = all.iter().map(|a| a.findings.len()).sum();
    writeln!(
        err,
        "rhscope check: {} of {} findings at or above {}",
        failing.len(),
        total,
        name(&fail_on)
    )?;
    Ok(if failing.is_empty() { 0 } else { 1 })
}

#[cfg(feature = "report")]
pub fn report(traces: &[PathBuf], opts: &AnalyzeOpts, dir: &Path, read: ReadOpts) -> Result<()> {
    let setup = Setup::from_opts(opts)?;
    let all = analyses(traces, &setup, opts, read)?;
    if traces
        .iter()
        .any(|t| std::fs::canonicalize(t).ok() == std::fs::canonicalize(dir).ok())
    {
        anyhow::bail!(
            "{}: refusing to overwrite an input of this run",
            dir.display()
        );
    }
    let files =
        rhscope::report::write_report(&all, &setup.table, dir).map_err(anyhow::Error::msg)?;
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
pub fn report(_: &[PathBuf], _: &AnalyzeOpts, _: &Path, _: ReadOpts) -> Result<()> {
    anyhow::bail!("reports need rhscope built with the `report` feature")
}

#[cfg(feature = "report")]
pub fn export(trace: &Path, opts: &AnalyzeOpts, out: &Path, read: ReadOpts) -> Result<()> {
    let setup = Setup::from_opts(opts)?;
    let all = analyses(&[trace.to_path_buf()], &setup, opts, read)?;
    rhscope::output::write_atomically::<anyhow::Error>(out, &[trace], |w| {
        for a in &all {
            let events = rhscope::report::perfetto::trace_events(a, &setup.table);
            serde_json::to_writer(&mut *w, &events)?;
        }
        writeln!(w)?;
        Ok(())
    })
}

#[cfg(not(feature = "report"))]
pub fn export(_: &Path, _: &AnalyzeOpts, _: &Path, _: ReadOpts) -> Result<()> {
    anyhow::bail!("export needs rhscope built with the `report` feature")
}
