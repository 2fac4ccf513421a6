//! Correlation: entry points, API calls, worker threads and waits of a
//! trace, checked against the usage table and the RHS timeouts. Every
//! misuse, hang and timeout becomes a [`Reported`] finding.

pub mod diff;
pub mod source;
pub mod spans;

use std::collections::{BTreeMap, HashMap};

use crate::etl::stats::rfc3339;
use crate::etl::Trace;
use crate::model::{EntryPoint, Evidence, Finding, Record, Rule, Severity, ThreadKind, UsageCode};
use crate::providers::ProviderSet;
use crate::usage::UsageTable;

pub use source::{ClusterLogSource, EtlSource, EventSource, Merge, Observed};
pub use spans::{ApiSpan, EntrySpan, Pairer, Spans, Wait, Worker};

pub const MS_NS: i64 = 1_000_000;

/// Thresholds of the rules.
#[derive(Debug, Clone)]
pub struct Config {
    /// Budget of an entry point that returns (the guidance: 300 ms).
    pub default_budget_ns: i64,
    /// Budgets by (resource type or any, entry point).
    pub budgets: HashMap<(Option<String>, EntryPoint), i64>,
    /// A call still open at the trace's end for longer than this is a hang.
    pub hang_after_ns: i64,
    pub pending_timeout_ns: i64,
    pub deadlock_timeout_ns: i64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            default_budget_ns: 300 * MS_NS,
            budgets: HashMap::new(),
            hang_after_ns: 300 * MS_NS,
            pending_timeout_ns: 180_000 * MS_NS,
            deadlock_timeout_ns: 300_000 * MS_NS,
        }
    }
}

impl Config {
    pub fn budget(&self, resource_type: Option<&str>, ep: EntryPoint) -> i64 {
        resource_type
            .and_then(|t| self.budgets.get(&(Some(t.to_string()), ep)))
            .or_else(|| self.budgets.get(&(None, ep)))
            .copied()
            .unwrap_or(self.default_budget_ns)
    }

    /// Parses `[TYPE/]ENTRYPOINT=MS` (e.g. `IsAlive=500`,
    /// `Contoso App/LooksAlive=100`).
    pub fn add_budget(&mut self, spec: &str) -> Result<(), String> {
        let (key, ms) = spec
            .split_once('=')
            .ok_or_else(|| format!("budget {spec:?} is not [TYPE/]ENTRYPOINT=MS"))?;
        let ms: i64 = ms.trim().parse().map_err(|_| {
            format!("budget {spec:?}: {ms:?} is not a whole number of milliseconds")
        })?;
        let (ty, ep) = match key.rsplit_once('/') {
            Some((t, e)) => (Some(t.trim().to_string()), e),
            None => (None, key),
        };
        let ep: EntryPoint = ep
            .parse()
            .map_err(|e: crate::model::UnknownEntryPoint| e.to_string())?;
        self.budgets.insert((ty, ep), ms * MS_NS);
        Ok(())
    }
}

/// How long a call was blocked, and how the time splits.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Blocking {
    /// "context-switches" when the trace has them for the thread, else
    /// "wall-clock" (only the total is known).
    pub source: &'static str,
    pub total_ns: i64,
    pub running_ns: Option<i64>,
    pub ready_ns: Option<i64>,
    pub waiting_ns: Option<i64>,
    pub wait_reasons: Vec<&'static str>,
    /// Threads whose actions made it ready again.
    pub readied_by: Vec<u32>,
}

/// A finding with what supports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reported {
    /// The trace (file) it was found in.
    pub trace: String,
    #[serde(flatten)]
    pub finding: Finding,
    pub blocking: Option<Blocking>,
    /// Where the events that show it are.
    pub evidence: Vec<Evidence>,
}

/// Computes the per-entry-point and per-API figures with polars.
#[cfg(feature = "polars")]
pub fn fill_aggregates(a: &mut Analysis, table: &UsageTable) -> polars::prelude::PolarsResult<()> {
    use crate::model::frames::Frames;
    let frames = Frames::new(a, table)?;
    a.by_entry_point = to_aggregates(
        &Frames::durations(&frames.entry_points, &["resource", "entry_point"])?,
        &["resource", "entry_point"],
    )?;
    a.by_api = to_aggregates(&Frames::durations(&frames.api_calls, &["api"])?, &["api"])?;
    Ok(())
}

#[cfg(feature = "polars")]
fn to_aggregates(
    df: &polars::prelude::DataFrame,
    keys: &[&str],
) -> polars::prelude::PolarsResult<Vec<Aggregate>> {
    use polars::prelude::*;
    let key_cols: Vec<Column> = keys
        .iter()
        .map(|k| df.column(k).cloned())
        .collect::<PolarsResult<_>>()?;
    let int = |name: &str| -> PolarsResult<Vec<i64>> {
        let c = df.column(name)?.cast(&DataType::Int64)?;
        Ok(c.i64()?.iter().map(|v| v.unwrap_or(0)).collect())
    };
    let (count, unreturned) = (int("count")?, int("unreturned")?);
    let (p50, p95, max, total) = (
        int("p50_ns")?,
        int("p95_ns")?,
        int("max_ns")?,
        int("total_ns")?,
    );
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let key: Vec<String> = key_cols
            .iter()
            .map(|c| {
                c.get(i)
                    .map(|v| v.get_str().map_or_else(|| v.to_string(), str::to_string))
            })
            .collect::<PolarsResult<_>>()?;
        out.push(Aggregate {
            key: key.join(" "),
            count: count[i] as usize,
            unreturned: unreturned[i] as usize,
            total_ns: total[i],
            p50_ns: p50[i],
            p95_ns: p95[i],
            max_ns: max[i],
        });
    }
    Ok(out)
}

/// Count and duration figures of a group of spans.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Aggregate {
    pub key: String,
    pub count: usize,
    /// Of these, how many never returned (not in the durations).
    pub unreturned: usize,
    pub total_ns: i64,
    pub p50_ns: i64,
    pub p95_ns: i64,
    pub max_ns: i64,
}

#[derive(Debug, serde::Serialize)]
pub struct Analysis {
    /// The inputs' names, joined with " + " when several were merged.
    pub trace: String,
    /// Each input analysed into this timeline; evidence names one by index.
    pub inputs: Vec<String>,
    pub first: Option<String>,
    pub last: Option<String>,
    pub resources: Vec<String>,
    pub findings: Vec<Reported>,
    pub by_entry_point: Vec<Aggregate>,
    pub by_api: Vec<Aggregate>,
    /// Events mapped to model records, and mapping failures skipped.
    pub records: u64,
    pub unmapped_errors: u64,
    pub unmatched_ends: usize,
    pub context_switches: usize,
    /// Records dropped because another input of the merge had them too.
    pub duplicates: u64,
    /// Text-log lines that were neither an entry nor part of one.
    pub unparsed_lines: u64,
    /// Corrupt records and unreadable .evtx events skipped (not strict).
    pub skipped: u64,
    #[serde(skip)]
    pub spans: Spans,
}

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Read(#[from] crate::etl::TraceError),
    #[error("{trace}")]
    Corrupt {
        trace: String,
        #[source]
        source: crate::etl::EtlError,
    },
    #[error(transparent)]
    ClusterLog(#[from] crate::clusterlog::ClusterLogError),
    #[cfg(feature = "evtx")]
    #[error(transparent)]
    Evtx(#[from] crate::eventlog::EvtxError),
    #[error("{0}: no entry-point events found: is the RhScope-ResourceDll or FailoverClustering provider in this trace?")]
    NoResourceEvents(String),
}

/// Reads a trace, maps its events through the provider definitions and
/// analyses them. Problems in the trace are skipped (counted) unless
/// `strict`.
pub fn analyze_trace(
    trace: &Trace,
    providers: &ProviderSet,
    table: &UsageTable,
    cfg: &Config,
    strict: bool,
) -> Result<Analysis, AnalysisError> {
    let mut source = EtlSource::new(trace, providers);
    analyze_sources(vec![&mut source], table, cfg, strict)
}

/// Analyses one or more sources of the same node on one timeline.
pub fn analyze_sources(
    sources: Vec<&mut dyn EventSource>,
    table: &UsageTable,
    cfg: &Config,
    strict: bool,
) -> Result<Analysis, AnalysisError> {
    let mut merge = Merge::new(sources, strict);
    let inputs = merge.names();
    let name = inputs.join(" + ");
    let mut pairer = Pairer::new();
    let mut records = 0u64;
    let mut unmapped = 0u64;
    while let Some(o) = merge.next_observed()? {
        match o {
            Observed::Record(r) => {
                records += 1;
                pairer.push(r);
            }
            Observed::Seen(t) => pairer.saw(t),
            Observed::Unmapped(t) => {
                unmapped += 1;
                pairer.saw(t);
            }
        }
    }
    let spans = pairer.finish();
    if spans.entries.is_empty()
        && spans.deadlocks.is_empty()
        && spans.messages.is_empty()
        && spans.statuses.is_empty()
    {
        return Err(AnalysisError::NoResourceEvents(name));
    }
    let mut a = analyze_spans(spans, table, cfg, &name);
    a.inputs = inputs;
    a.records = records;
    a.unmapped_errors = unmapped;
    a.duplicates = merge.counts.duplicates;
    a.skipped = merge.counts.skipped;
    Ok(a)
}

/// The rules, over paired spans.
pub fn analyze_spans(spans: Spans, table: &UsageTable, cfg: &Config, trace: &str) -> Analysis {
    let end = spans.last_ns.unwrap_or(0);
    let mut findings = Vec::new();
    let waits_by_tid = index_waits(&spans.waits);
    let blocking = |tid: u32, begin: i64, stop: i64| {
        blocking(&waits_by_tid, spans.context_switches > 0, tid, begin, stop)
    };
    let report = |finding: Finding, blocking: Option<Blocking>, evidence: Vec<Evidence>| Reported {
        trace: trace.to_string(),
        finding,
        blocking,
        evidence,
    };

    // API calls against the usage table.
    for call in &spans.calls {
        let Some(row) = table.resolve(&call.api) else {
            continue;
        };
        let entry = call.entry.map(|i| &spans.entries[i]);
        let worker = spans.workers.iter().find(|w| {
            w.pid == call.pid
                && w.tid == call.tid
                && w.created_ns <= call.begin_ns
                && w.exited_ns.is_none_or(|x| x >= call.begin_ns)
        });
        let (kind, severity) = misuse_verdict(
            table,
            row.usage,
            entry.map(|e| e.entry_point),
            worker.is_some(),
        );
        let Some(severity) = severity else { continue };
        let resource = entry
            .map(|e| e.resource.clone())
            .or_else(|| worker.and_then(|w| w.resource.clone()));
        let mut evidence = vec![call.evidence];
        evidence.extend(entry.map(|e| e.evidence));
        findings.push(report(
            Finding {
                rule: Rule::ApiMisuse,
                severity,
                resource,
                entry_point: entry.map(|e| e.entry_point),
                api: Some(row.name.clone()),
                usage: Some(row.usage),
                thread_kind: Some(kind),
                pid: call.pid,
                tid: call.tid,
                begin: rfc3339(call.begin_ns),
                duration_ns: call.end_ns.map(|e| e - call.begin_ns),
            },
            Some(blocking(
                call.tid,
                call.begin_ns,
                call.end_ns.unwrap_or(end),
            )),
            evidence,
        ));
    }

    // Entry points that never returned, or returned late.
    for e in &spans.entries {
        let (rule, severity, duration) = match e.end_ns {
            None if end - e.begin_ns > cfg.hang_after_ns => {
                (Rule::Hang, Severity::Error, end - e.begin_ns)
            }
            Some(x) if x - e.begin_ns > cfg.budget(e.resource_type.as_deref(), e.entry_point) => {
                (Rule::SlowEntryPoint, Severity::Warning, x - e.begin_ns)
            }
            _ => continue,
        };
        findings.push(report(
            Finding {
                rule,
                severity,
                resource: Some(e.resource.clone()),
                entry_point: Some(e.entry_point),
                api: None,
                usage: None,
                thread_kind: None,
                pid: e.pid,
                tid: e.tid,
                begin: rfc3339(e.begin_ns),
                duration_ns: Some(duration),
            },
            Some(blocking(e.tid, e.begin_ns, e.begin_ns + duration)),
            vec![e.evidence],
        ));
    }

    // The deadlock monitor's reports, tied to the call that was blocking.
    for d in &spans.deadlocks {
        let open_at =
            |s: &EntrySpan| s.begin_ns <= d.time_ns && s.end_ns.is_none_or(|x| x > d.time_ns);
        let span = spans.entries.iter().rev().find(|s| {
            open_at(s)
                && d.resource.as_ref().is_none_or(|r| *r == s.resource)
                && d.entry_point.is_none_or(|ep| ep == s.entry_point)
        });
        let call = span.and_then(|s| {
            spans.calls.iter().rev().find(|c| {
                c.entry == Some(s.id)
                    && c.begin_ns <= d.time_ns
                    && c.end_ns.is_none_or(|x| x > d.time_ns)
            })
        });
        let row = call.and_then(|c| table.resolve(&c.api));
        let mut evidence = vec![d.evidence];
        evidence.extend(span.map(|s| s.evidence));
        evidence.extend(call.map(|c| c.evidence));
        findings.push(report(
            Finding {
                rule: Rule::DeadlockTimeout,
                severity: Severity::Error,
                resource: d
                    .resource
                    .clone()
                    .or_else(|| span.map(|s| s.resource.clone())),
                entry_point: d.entry_point.or(span.map(|s| s.entry_point)),
                api: call.map(|c| row.map_or(c.api.clone(), |r| r.name.clone())),
                usage: row.map(|r| r.usage),
                thread_kind: None,
                pid: span.map_or(d.pid.unwrap_or(0), |s| s.pid),
                tid: span.map_or(d.tid.unwrap_or(0), |s| s.tid),
                begin: rfc3339(span.map_or(d.time_ns, |s| s.begin_ns)),
                duration_ns: span.and_then(|s| s.end_ns.map(|x| x - s.begin_ns)),
            },
            span.map(|s| blocking(s.tid, s.begin_ns, d.time_ns)),
            evidence,
        ));
    }

    // Findings about an instant a message reports, not a call.
    let at_message = |rule: Rule, r: &Record, entry_point: Option<EntryPoint>| {
        report(
            Finding {
                rule,
                severity: Severity::Error,
                resource: r.resource.clone(),
                entry_point,
                api: None,
                usage: None,
                thread_kind: None,
                pid: r.pid.unwrap_or(0),
                tid: r.tid.unwrap_or(0),
                begin: rfc3339(r.time_ns),
                duration_ns: None,
            },
            None,
            vec![r.evidence],
        )
    };
    findings.extend(
        spans
            .restarts
            .iter()
            .map(|r| at_message(Rule::RhsRestart, r, None)),
    );
    findings.extend(
        pending_timeouts(&spans.statuses, end, cfg)
            .into_iter()
            .map(|(r, ep)| at_message(Rule::PendingTimeout, r, Some(ep))),
    );

    findings.sort_by(|a, b| a.finding.cmp(&b.finding));
    let mut resources: Vec<String> = spans.entries.iter().map(|e| e.resource.clone()).collect();
    resources.sort();
    resources.dedup();
    Analysis {
        trace: trace.to_string(),
        inputs: vec![trace.to_string()],
        first: spans.first_ns.map(rfc3339),
        last: spans.last_ns.map(rfc3339),
        resources,
        findings,
        // Filled by `fill_aggregates` (polars) where that is built in.
        by_entry_point: Vec::new(),
        by_api: Vec::new(),
        records: 0,
        unmapped_errors: 0,
        unmatched_ends: spans.unmatched_ends,
        context_switches: spans.context_switches,
        duplicates: 0,
        unparsed_lines: 0,
        skipped: 0,
        spans,
    }
}

/// What kind of thread a call was made on, and how bad the call is there
/// (None: allowed): inside an entry point, on a ClusWorkerCreate worker, or
/// elsewhere. Offline and live analysis both judge calls with this.
pub fn misuse_verdict(
    table: &UsageTable,
    usage: UsageCode,
    entry_point: Option<EntryPoint>,
    on_worker: bool,
) -> (ThreadKind, Option<Severity>) {
    match (entry_point, on_worker) {
        (Some(ep), _) => (
            ThreadKind::RhsEntryPoint,
            table.forbidden_in(usage, ep).then_some(Severity::Error),
        ),
        (None, true) => (
            ThreadKind::ClusterWorker,
            (usage == UsageCode::DoNotUse).then_some(Severity::Error),
        ),
        (None, false) => (
            ThreadKind::Other,
            match usage {
                UsageCode::DoNotUse => Some(Severity::Error),
                UsageCode::WorkerThreadOnly => Some(Severity::Warning),
                UsageCode::SomeEntryPointsOkay => None,
            },
        ),
    }
}

/// A resource whose last status is a pending one, with no further update
/// for PendingTimeout, has timed out.
fn pending_timeouts<'a>(
    statuses: &'a [Record],
    end: i64,
    cfg: &Config,
) -> Vec<(&'a Record, EntryPoint)> {
    let mut by_resource: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for s in statuses {
        if let Some(r) = s.resource.as_deref() {
            by_resource.entry(r).or_default().push(s);
        }
    }
    let mut out = Vec::new();
    for list in by_resource.values() {
        for (i, s) in list.iter().enumerate() {
            let Some(state) = s.state.as_deref().filter(|x| x.ends_with("Pending")) else {
                continue;
            };
            let next = list.get(i + 1).map_or(end, |n| n.time_ns);
            if next - s.time_ns > cfg.pending_timeout_ns {
                let ep = if state.starts_with("Offline") {
                    EntryPoint::Offline
                } else {
                    EntryPoint::Online
                };
                out.push((*s, ep));
            }
        }
    }
    out
}

/// Waits by thread, for [`blocking`].
pub fn index_waits(waits: &[Wait]) -> HashMap<u32, Vec<Wait>> {
    let mut m: HashMap<u32, Vec<Wait>> = HashMap::new();
    for w in waits {
        m.entry(w.tid).or_default().push(*w);
    }
    m
}

/// Splits [begin, stop] of thread `tid` into running, ready and waiting
/// using its context switches.
pub fn blocking(
    waits: &HashMap<u32, Vec<Wait>>,
    have_switches: bool,
    tid: u32,
    begin: i64,
    stop: i64,
) -> Blocking {
    let total = (stop - begin).max(0);
    if !have_switches {
        return Blocking {
            source: "wall-clock",
            total_ns: total,
            running_ns: None,
            ready_ns: None,
            waiting_ns: None,
            wait_reasons: Vec::new(),
            readied_by: Vec::new(),
        };
    }
    let overlap = |a: i64, b: i64| (b.min(stop) - a.max(begin)).max(0);
    let (mut waiting, mut ready) = (0, 0);
    let mut reasons = Vec::new();
    let mut readied_by = Vec::new();
    for w in waits.get(&tid).into_iter().flatten() {
        let back = w.in_ns.unwrap_or(stop);
        let readied = w.ready_ns.unwrap_or(back);
        let wt = overlap(w.out_ns, readied);
        let rt = overlap(readied, back);
        if wt + rt > 0 {
            reasons.push(crate::etl::kernel::wait_reason_name(w.wait_reason));
            readied_by.extend(w.readied_by);
        }
        waiting += wt;
        ready += rt;
    }
    reasons.sort_unstable();
    reasons.dedup();
    readied_by.sort_unstable();
    readied_by.dedup();
    Blocking {
        source: "context-switches",
        total_ns: total,
        running_ns: Some(total - waiting - ready),
        ready_ns: Some(ready),
        waiting_ns: Some(waiting),
        wait_reasons: reasons,
        readied_by,
    }
}
