//! Correlation: a node's timeline (entry points, API calls, worker threads
//! and waits) checked against the usage table and RHS's thresholds. Each
//! rule is one function in [`rules`]; every fact a printer needs (the
//! usage-table row of each call, the blocking split of each call and entry
//! point, the thresholds each was held to) is computed here once and
//! carried in the [`Analysis`].

pub mod aggregates;
pub mod blocking;
pub mod diff;
#[cfg(feature = "polars")]
pub mod frames;
pub mod hosting;
pub mod incidents;
pub mod live;
pub mod resources;
pub mod rules;
pub mod stacks;
pub mod verdicts;

use std::collections::HashMap;

use crate::model::time::MS_NS;
use crate::model::{
    ApiSpan, EntryPoint, EntrySpan, Evidence, Finding, SpanVec, Spans, ThreadKind, Timestamp,
    UsageCode, WorkerIndex,
};
use crate::providers::usage::UsageTable;
use crate::providers::ProviderSet;
use crate::read::clusterlog::{LogCounts, LogHeader};
use crate::read::etl::Trace;
use crate::source::{EtlSource, EventSource, Merge, Observed, Pairer, ReadAhead, SourceError};

pub use blocking::{Blocked, Blocking, WaitIndex};
pub use incidents::Incident;
pub use resources::{ResourceFacts, Resources, Threshold};
pub use rules::misuse_verdict;

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
        // Asked once per span: without --budget, no key (and no copy of
        // the type name to look one up by) is needed.
        if self.budgets.is_empty() {
            return self.default_budget_ns;
        }
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

/// A finding with what supports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reported {
    /// The trace (file) it was found in.
    pub trace: String,
    /// The node whose inputs show it, when they name it.
    pub node: Option<String>,
    #[serde(flatten)]
    pub finding: Finding,
    pub blocking: Option<Blocking>,
    /// Where the events that show it are.
    pub evidence: Vec<Evidence>,
    /// For a deadlock: the whole story of RHS's recovery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<Box<Incident>>,
    /// What led to it, where the inputs show that (a resource's failure
    /// after its health check failed, say), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cause: Vec<String>,
    /// The target the call named (a resource, a key), where it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// For a call inferred from stacks: the stack it waited in, frame by
    /// frame, innermost first (no DLL event logged it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stack: Vec<String>,
    /// The image that made the call, where a stack shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dll: Option<String>,
}

/// Count and duration figures of a group of spans.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Aggregate {
    pub key: String,
    pub count: usize,
    /// Of these, how many never returned (in the figures with the time
    /// they had run by the end of the inputs: lower bounds).
    pub unreturned: usize,
    /// Of these, how many have no duration to speak of (end lost or not
    /// logged): not in the figures.
    #[serde(default)]
    pub unknown: usize,
    pub total_ns: i64,
    pub p50_ns: i64,
    pub p95_ns: i64,
    pub max_ns: i64,
}

/// What the analysis knows of one API call, besides its span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFacts {
    /// The API as the usage table names it (a control code logged as a
    /// number is named), or as logged when the table does not list it.
    pub api: String,
    /// Its usage code, when the table lists it.
    pub usage: Option<UsageCode>,
    /// The thread it was made on, as the rules judge it.
    pub thread_kind: ThreadKind,
    /// How long it ran: see [`Duration`].
    pub duration: Duration,
    /// How long it blocked, to its end or the trace's.
    pub blocking: Blocked,
}

/// How long a call ran, as far as the inputs show it. An enum rather than
/// an option and a flag: 16 bytes, not 24, in the facts of every span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duration {
    /// It returned after this long.
    Returned(i64),
    /// It never returned: it had run this long by the end of the inputs
    /// (a lower bound).
    Running(i64),
    /// Its end was lost (the thread was seen in another call before it)
    /// or is not logged (IsAlive in RHS's verbose log): no duration to
    /// speak of.
    Unknown,
}

impl Duration {
    /// Of a span that began at `begin` and ended at `end` (None: never
    /// returned, measured to `last`), unless its end is unknown (`lost`:
    /// lost or not logged).
    pub fn of(begin: i64, end: Option<i64>, lost: bool, last: i64) -> Duration {
        match (end, lost) {
            (Some(e), _) => Duration::Returned(e - begin),
            (None, true) => Duration::Unknown,
            (None, false) => Duration::Running(last.saturating_sub(begin).max(0)),
        }
    }

    /// To its end; for a call that never returned, to the end of the
    /// inputs (a lower bound); None when its end is unknown.
    pub fn ns(&self) -> Option<i64> {
        match *self {
            Duration::Returned(ns) | Duration::Running(ns) => Some(ns),
            Duration::Unknown => None,
        }
    }

    pub fn returned(&self) -> bool {
        matches!(self, Duration::Returned(_))
    }

    /// A call whose end is neither seen nor lost: it was still running.
    pub fn never_returned(&self) -> bool {
        matches!(self, Duration::Running(_))
    }
}

/// What the analysis knows of one entry-point call, besides its span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFacts {
    /// The budget it was held to.
    pub budget_ns: i64,
    /// How long it ran: see [`Duration`].
    pub duration: Duration,
    /// How long it blocked, to its end or the trace's.
    pub blocking: Blocked,
}

#[derive(Debug, serde::Serialize)]
pub struct Analysis {
    /// The inputs' names, joined with " + " when several were merged.
    pub trace: String,
    /// The node the inputs are from, when one of them names it.
    pub node: Option<String>,
    /// Each input analysed into this timeline; evidence names one by index.
    pub inputs: Vec<String>,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    pub resources: Vec<String>,
    /// What the inputs say of each resource (type, role, DLL, thresholds).
    pub resource_facts: Resources,
    /// RHS's recoveries, one story each.
    pub incidents: Vec<Incident>,
    /// When this node held each resource active, from its states.
    pub hosting: Vec<hosting::Hosting>,
    /// What rhscope did with the inputs that a reader should know (times
    /// converted from local time, thresholds from a log's header).
    pub notes: Vec<String>,
    pub findings: Vec<Reported>,
    /// The findings as a reader takes them in: per incident or group of
    /// identical findings, most severe first.
    pub verdicts: Vec<verdicts::Verdict>,
    pub by_entry_point: Vec<Aggregate>,
    pub by_api: Vec<Aggregate>,
    /// Events mapped to model records, and mapping failures skipped.
    pub records: u64,
    pub unmapped_errors: u64,
    pub unmatched_ends: usize,
    /// Entry points whose end was lost (their thread went on to another):
    /// neither hangs nor slow, their duration unknown.
    pub lost_ends: usize,
    /// Calls whose end the logs do not write (IsAlive, LooksAlive seen in
    /// RHS's verbose log) and that were open at the end.
    pub ends_not_logged: usize,
    pub context_switches: usize,
    /// Records dropped because another input of the merge had them too.
    pub duplicates: u64,
    /// Text-log lines that were neither an entry nor part of one.
    pub unparsed_lines: u64,
    /// Corrupt records and unreadable .evtx events skipped (not strict).
    pub skipped: u64,
    /// Each text input's unparsed lines (counted, the first kept), by
    /// input name.
    #[serde(skip)]
    pub unparsed: Vec<(String, LogCounts)>,
    /// The thresholds the rules used.
    #[serde(skip)]
    pub config: Config,
    #[serde(skip)]
    pub spans: Spans,
    /// Per entry-point span (by id): budget and blocking.
    #[serde(skip)]
    pub entries: SpanVec<EntryFacts>,
    /// Per API-call span (by id): usage-table row, thread kind, blocking.
    #[serde(skip)]
    pub calls: SpanVec<CallFacts>,
}

impl Analysis {
    /// The DeadlockTimeout a resource is held to (see
    /// [`resources::deadlock_timeout`]).
    pub fn deadlock_timeout(&self, resource: Option<&str>) -> Threshold {
        resources::deadlock_timeout(&self.resource_facts, resource, &self.config)
    }

    /// The PendingTimeout a resource is held to.
    pub fn pending_timeout(&self, resource: Option<&str>) -> Threshold {
        resources::pending_timeout(&self.resource_facts, resource, &self.config)
    }

    /// The facts of a call.
    pub fn call(&self, c: &ApiSpan) -> &CallFacts {
        &self.calls[c.id]
    }

    /// The facts of an entry-point call.
    pub fn entry(&self, e: &EntrySpan) -> &EntryFacts {
        &self.entries[e.id]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{0}: no entry-point events found: is the RhScope-ResourceDll or FailoverClustering provider in this trace? (For a DLL that logs nothing: a kernel trace with context-switch stacks, read with --symbols.)")]
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
    analyze_sources_with(sources, table, cfg, strict, &mut |_| {})
}

/// [`analyze_sources`], telling `progress` now and then how many bytes of
/// the inputs have been read.
///
/// Each source is read on a thread of its own, ahead of the merge, the
/// pairing and the rules on this one; the result is the same as reading
/// them here (a source that panics does so when the merge reaches it).
pub fn analyze_sources_with(
    sources: Vec<&mut dyn EventSource>,
    table: &UsageTable,
    cfg: &Config,
    strict: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<Analysis, AnalysisError> {
    std::thread::scope(|scope| {
        let mut readers: Vec<ReadAhead> = sources
            .into_iter()
            .map(|source| ReadAhead::spawn(scope, source))
            .collect();
        let sources = readers
            .iter_mut()
            .map(|r| r as &mut dyn EventSource)
            .collect();
        analyze_read(sources, table, cfg, strict, progress)
    })
}

/// [`analyze_sources_with`] on the caller's thread.
fn analyze_read(
    sources: Vec<&mut dyn EventSource>,
    table: &UsageTable,
    cfg: &Config,
    strict: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<Analysis, AnalysisError> {
    let mut merge = Merge::new(sources, strict);
    let inputs = merge.names();
    let name = inputs.join(" + ");
    let mut pairer = Pairer::new();
    let mut records = 0u64;
    let mut unmapped = 0u64;
    let mut seen = 0u64;
    while let Some(o) = merge.next_observed()? {
        seen += 1;
        if seen % 65_536 == 0 {
            progress(merge.bytes_read());
        }
        match o {
            Observed::Record(r) => {
                records += 1;
                pairer.push(*r);
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
        && spans.events.is_empty()
        && spans.health_failures.is_empty()
        && spans.wait_stacks.is_empty()
    {
        return Err(AnalysisError::NoResourceEvents(name));
    }
    let headers = merge.headers();
    let logs: Vec<LogHeader> = headers.iter().map(|(_, h)| h.clone()).collect();
    let mut a = analyze_known(spans, &logs, table, cfg, &name);
    a.notes.extend(header_notes(&headers));
    a.inputs = inputs;
    a.records = records;
    a.unmapped_errors = unmapped;
    a.duplicates = merge.counts.duplicates;
    a.skipped = merge.counts.skipped;
    a.unparsed = merge.unparsed();
    a.unparsed_lines = a.unparsed.iter().map(|(_, c)| c.unparsed_lines).sum();
    for (input, c) in &a.unparsed {
        if c.utf16_without_bom {
            a.notes.push(format!(
                "{input}: no byte-order mark, read as UTF-16LE by the NULs of its text (likely a piece cut from a node's log){}",
                match c.skipped_bytes {
                    0 => "",
                    _ => "; its first byte skipped (half a unit: the cut fell inside one)",
                }
            ));
        }
        if c.cut_lines > 0 {
            a.notes.push(format!(
                "{input}: {} lines longer than 64 KiB were cut there",
                c.cut_lines
            ));
        }
        if c.dropped_continuation_lines > 0 {
            a.notes.push(format!(
                "{input}: {} continuation lines past the 64 kept of one entry were dropped",
                c.dropped_continuation_lines
            ));
        }
    }
    Ok(a)
}

/// The rules, over paired spans.
pub fn analyze_spans(spans: Spans, table: &UsageTable, cfg: &Config, trace: &str) -> Analysis {
    analyze_known(spans, &[], table, cfg, trace)
}

/// What a reader of the findings should know of the headers: times
/// converted from local time, thresholds taken from them.
fn header_notes(headers: &[(String, LogHeader)]) -> Vec<String> {
    let mut out = Vec::new();
    for (input, h) in headers {
        match (h.local_time, h.utc_offset_minutes) {
            (true, Some(m)) => out.push(format!(
                "{input}: written in local time; times converted to UTC (UTC = local {} {} min)",
                if m < 0 { "-" } else { "+" },
                m.abs()
            )),
            (true, None) => out.push(format!(
                "{input}: written in local time with no offset in its header; times left as written"
            )),
            _ => {}
        }
        if !h.resources.is_empty() {
            out.push(format!(
                "{input}: {} resources and their thresholds from the log's header",
                h.resources.len()
            ));
        }
    }
    out
}

/// The rules, over paired spans, with what cluster.log headers say of the
/// resources.
pub fn analyze_known(
    mut spans: Spans,
    headers: &[LogHeader],
    table: &UsageTable,
    cfg: &Config,
    trace: &str,
) -> Analysis {
    let inferred = stacks::infer(&mut spans, table);
    let end = spans.last_ns.unwrap_or(0);
    let resource_facts = resources::facts(headers, &spans, cfg);
    let incidents = incidents::incidents(&spans, &resource_facts, cfg);
    let waits = WaitIndex::new(&spans.waits, &spans.wait_stacks, spans.context_switches > 0);
    let workers = WorkerIndex::new(&spans.workers);
    // The facts of the calls and of the entry points, then the rules and
    // the figures, each pair on two threads: after the read the analysis
    // has the machine to itself. Each list is read in one pass, which lets
    // go of what it has passed (a read by index on two threads at once
    // kept the spilled spans mapped: +20 MiB on the 180 MB log).
    let (calls, entries): (SpanVec<CallFacts>, SpanVec<EntryFacts>) = join(
        || {
            spans
                .calls
                .iter()
                .map(|c| rules::call_facts(&spans, c, table, &waits, &workers, end))
                .collect()
        },
        || {
            spans
                .entries
                .iter()
                .map(|e| EntryFacts {
                    budget_ns: cfg.budget(e.resource_type.as_deref(), e.entry_point),
                    duration: Duration::of(e.begin_ns, e.end_ns(), e.end_unknown(), end),
                    blocking: Blocked::new(waits.blocking(
                        e.tid,
                        e.begin_ns,
                        e.end_ns().or(e.end_lost_ns()).unwrap_or(end),
                    )),
                })
                .collect()
        },
    );
    let found = rules::Context {
        spans: &spans,
        calls: &calls,
        entries: &entries,
        table,
        cfg,
        waits: &waits,
        workers: &workers,
        resources: &resource_facts,
        incidents: &incidents,
        trace,
    };
    let ((by_entry_point, by_api), mut findings) = join(
        || {
            (
                aggregates::by_entry_point(&spans.entries, &entries),
                aggregates::by_api(&calls),
            )
        },
        || {
            let mut findings = found.misuse();
            findings.extend(found.entry_points());
            findings.extend(found.deadlocks());
            findings.extend(found.restarts());
            findings.extend(found.pending_timeouts());
            findings.extend(found.health_checks());
            findings.extend(found.call_failures());
            findings.extend(found.resource_failures());
            findings.extend(found.role_failures());
            findings
        },
    );
    findings.sort_by(|a, b| a.finding.cmp(&b.finding));
    let resources: Vec<String> = resource_facts.keys().cloned().collect();
    let verdicts = verdicts::verdicts(&findings);
    Analysis {
        trace: trace.to_string(),
        node: None,
        inputs: vec![trace.to_string()],
        first: spans.first_ns.map(Timestamp),
        last: spans.last_ns.map(Timestamp),
        resources,
        resource_facts,
        incidents,
        hosting: hosting::periods(&spans),
        notes: if !spans.wait_stacks.is_empty() {
            vec![format!(
                "{} waits have a stack; {inferred} calls the DLL blocked in were inferred from them",
                spans.wait_stacks.len()
            )]
        } else {
            Vec::new()
        },
        findings,
        verdicts,
        by_entry_point,
        by_api,
        records: 0,
        unmapped_errors: 0,
        unmatched_ends: spans.unmatched_ends,
        lost_ends: spans.lost_ends,
        ends_not_logged: spans.ends_not_logged,
        context_switches: spans.context_switches,
        duplicates: 0,
        unparsed_lines: 0,
        skipped: 0,
        unparsed: Vec::new(),
        config: cfg.clone(),
        spans,
        entries,
        calls,
    }
}

/// `a` on a thread of its own and `b` on this one, both done on return;
/// one after the other when the OS gives no thread.
fn join<RA: Send, RB>(a: impl FnOnce() -> RA + Send, b: impl FnOnce() -> RB) -> (RA, RB) {
    let a = std::sync::Mutex::new(Some(a));
    // Takes `a` out of its cell, on whichever thread runs it.
    let run_a = || {
        let f = a.lock().unwrap_or_else(|e| e.into_inner()).take();
        f.map(|f| f())
    };
    std::thread::scope(|s| {
        let other = std::thread::Builder::new().spawn_scoped(s, run_a);
        let rb = b();
        let ra = match other {
            // A panic is a bug: it goes on as it would have on one thread.
            Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Err(_) => run_a(),
        };
        (
            ra.expect("`a` is taken once, by the thread that runs it"),
            rb,
        )
    })
}

/// Analyses the sources of one node's timeline together (as
/// [`crate::source::Timeline::sources`] opens them); findings name `node`.
pub fn analyze_all(
    mut sources: Vec<Box<dyn EventSource + '_>>,
    node: Option<&str>,
    table: &UsageTable,
    cfg: &Config,
    strict: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<Analysis, AnalysisError> {
    let refs: Vec<&mut dyn EventSource> = sources
        .iter_mut()
        .map(|s| s.as_mut() as &mut dyn EventSource)
        .collect();
    let mut a = analyze_sources_with(refs, table, cfg, strict, progress)?;
    a.node = node.map(str::to_string);
    for r in &mut a.findings {
        r.node = a.node.clone();
    }
    Ok(a)
}
