//! Where model records come from. The analysis reads [`EventSource`]s and
//! never knows whether the events were an .etl file read natively, a
//! cluster.log, an .evtx file, or a live ETW session; several sources of the
//! same node are merged on one timeline, dropping events two of them both
//! recorded.

use std::collections::VecDeque;

use crate::clusterlog::{ClusterLog, LogCounts};
use crate::etl::{Events, Trace};
use crate::model::{Evidence, Record, RecordKind};
use crate::providers::ProviderSet;

use super::{AnalysisError, MS_NS};

/// What a source saw next.
// Unboxed: a record is moved once, into the pairer; boxing would allocate
// for every mapped event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// An event a provider definition maps.
    Record(Record),
    /// An event nothing maps: only its time counts (the trace's extent).
    Seen(i64),
    /// An event a definition matched but could not map (a field missing or
    /// malformed).
    Unmapped(i64),
}

impl Observed {
    pub fn time_ns(&self) -> i64 {
        match self {
            Observed::Record(r) => r.time_ns,
            Observed::Seen(t) | Observed::Unmapped(t) => *t,
        }
    }
}

/// A stream of observations in time order.
pub trait EventSource {
    /// The input's name (a file path, a session name).
    fn name(&self) -> String;
    /// The next observation; an error is a problem in the input, after
    /// which the source may go on (a corrupt record) or end.
    fn next_observed(&mut self) -> Option<Result<Observed, AnalysisError>>;
}

impl<S: EventSource + ?Sized> EventSource for Box<S> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn next_observed(&mut self) -> Option<Result<Observed, AnalysisError>> {
        (**self).next_observed()
    }
}

/// An .etl file through the native reader.
pub struct EtlSource<'t> {
    trace: &'t Trace,
    events: Events<'t>,
    providers: &'t ProviderSet,
}

impl<'t> EtlSource<'t> {
    pub fn new(trace: &'t Trace, providers: &'t ProviderSet) -> EtlSource<'t> {
        EtlSource {
            trace,
            events: trace.events(),
            providers,
        }
    }
}

impl EventSource for EtlSource<'_> {
    fn name(&self) -> String {
        self.trace.path().display().to_string()
    }

    fn next_observed(&mut self) -> Option<Result<Observed, AnalysisError>> {
        let ev = match self.events.next_event()? {
            Ok(ev) => ev,
            Err(source) => {
                return Some(Err(AnalysisError::Corrupt {
                    trace: self.name(),
                    source,
                }))
            }
        };
        Some(Ok(match self.providers.map(&ev) {
            Some(Ok(r)) => Observed::Record(r),
            Some(Err(_)) => Observed::Unmapped(ev.time_ns),
            None => Observed::Seen(ev.time_ns),
        }))
    }
}

/// Maps one text message (a cluster.log entry, an .evtx event's message)
/// through the definitions' message patterns. RHS's own lines that no
/// pattern maps are kept as RHS messages, as the ETW provider's are.
pub fn map_message(providers: &ProviderSet, component: &str, text: &str, base: Record) -> Observed {
    let time = base.time_ns;
    match providers.match_message(text, base.clone()) {
        Some(Ok(r)) => Observed::Record(r),
        Some(Err(_)) => Observed::Unmapped(time),
        None if component == "RHS" => {
            let mut r = base;
            r.message = Some(text.to_string());
            Observed::Record(r)
        }
        None => Observed::Seen(time),
    }
}

/// A cluster.log, mapped by the definitions' message patterns.
pub struct ClusterLogSource<'p> {
    log: ClusterLog,
    providers: &'p ProviderSet,
}

impl<'p> ClusterLogSource<'p> {
    pub fn new(log: ClusterLog, providers: &'p ProviderSet) -> ClusterLogSource<'p> {
        ClusterLogSource { log, providers }
    }

    pub fn counts(&self) -> &LogCounts {
        self.log.counts()
    }
}

impl EventSource for ClusterLogSource<'_> {
    fn name(&self) -> String {
        self.log.path().display().to_string()
    }

    fn next_observed(&mut self) -> Option<Result<Observed, AnalysisError>> {
        let entry = match self.log.next_entry()? {
            Ok(e) => e,
            Err(e) => return Some(Err(AnalysisError::ClusterLog(e))),
        };
        let mut base = Record::new(
            RecordKind::RhsMessage,
            entry.time_ns,
            Evidence::Line {
                input: 0,
                line: entry.line,
            },
        );
        base.pid = Some(entry.pid);
        base.tid = Some(entry.tid);
        Some(Ok(map_message(
            self.providers,
            &entry.component,
            &entry.text,
            base,
        )))
    }
}

/// How many observations the merge dropped as duplicates, and how many
/// problems it skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeCounts {
    pub duplicates: u64,
    pub skipped: u64,
}

/// Merges sources by time (ties: the earlier source first) and drops
/// records a second source repeats: the same event logged both as ETW and
/// as a cluster.log line differs only in time precision (cluster.log has
/// milliseconds) and evidence; the more precise copy is kept.
pub struct Merge<'s> {
    sources: Vec<&'s mut dyn EventSource>,
    heads: Vec<Option<Observed>>,
    window: VecDeque<(Observed, usize)>,
    strict: bool,
    pub counts: MergeCounts,
}

/// Copies of one event in two inputs are at most this far apart.
const DUPLICATE_WINDOW_NS: i64 = 2 * MS_NS;

impl<'s> Merge<'s> {
    pub fn new(sources: Vec<&'s mut dyn EventSource>, strict: bool) -> Merge<'s> {
        let heads = sources.iter().map(|_| None).collect();
        Merge {
            sources,
            heads,
            window: VecDeque::new(),
            strict,
            counts: MergeCounts::default(),
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.name()).collect()
    }

    fn fill(&mut self, i: usize) -> Result<(), AnalysisError> {
        while self.heads[i].is_none() {
            match self.sources[i].next_observed() {
                None => return Ok(()),
                Some(Ok(mut o)) => {
                    if let Observed::Record(r) = &mut o {
                        r.evidence = r.evidence.with_input(i as u16);
                    }
                    self.heads[i] = Some(o);
                }
                Some(Err(e)) if self.strict => return Err(e),
                Some(Err(e @ AnalysisError::ClusterLog(_))) => return Err(e),
                Some(Err(_)) => self.counts.skipped += 1,
            }
        }
        Ok(())
    }

    /// The next observation of all sources, in time order.
    fn next_merged(&mut self) -> Result<Option<(Observed, usize)>, AnalysisError> {
        for i in 0..self.sources.len() {
            self.fill(i)?;
        }
        let pick = (0..self.heads.len())
            .filter_map(|i| self.heads[i].as_ref().map(|o| (o.time_ns(), i)))
            .min();
        Ok(pick.and_then(|(_, i)| self.heads[i].take().map(|o| (o, i))))
    }

    /// The next observation, duplicates dropped.
    pub fn next_observed(&mut self) -> Result<Option<Observed>, AnalysisError> {
        if self.sources.len() == 1 {
            return Ok(self.next_merged()?.map(|(o, _)| o));
        }
        loop {
            // Out of the window: nothing later can duplicate it.
            if let (Some((front, _)), Some(back)) = (self.window.front(), self.window.back()) {
                if back.0.time_ns().saturating_sub(front.time_ns()) > DUPLICATE_WINDOW_NS {
                    return Ok(self.window.pop_front().map(|(o, _)| o));
                }
            }
            let Some((o, src)) = self.next_merged()? else {
                return Ok(self.window.pop_front().map(|(o, _)| o));
            };
            let Observed::Record(new) = &o else {
                self.window.push_back((o, src));
                continue;
            };
            let twin = self.window.iter().position(|(old, s)| {
                *s != src
                    && matches!(old, Observed::Record(r) if same_event(r, new)
                        && r.time_ns.abs_diff(new.time_ns) <= MS_NS as u64)
            });
            let Some(at) = twin else {
                self.window.push_back((o, src));
                continue;
            };
            self.counts.duplicates += 1;
            // Keep the copy with the finer clock, at its own time: the
            // coarse copy may sit before events that came between.
            let coarse = |o: &Observed| matches!(o, Observed::Record(r) if matches!(r.evidence, Evidence::Line { .. }));
            if coarse(&self.window[at].0) && !coarse(&o) {
                self.window.remove(at);
                self.window.push_back((o, src));
            }
        }
    }
}

/// The same event, recorded by two inputs.
fn same_event(a: &Record, b: &Record) -> bool {
    a.kind == b.kind
        && a.pid == b.pid
        && a.tid == b.tid
        && a.resource == b.resource
        && a.entry_point == b.entry_point
        && a.api == b.api
        && a.target == b.target
        && a.status == b.status
        && a.thread == b.thread
        && a.state == b.state
        && (a.kind != RecordKind::RhsMessage || a.message == b.message)
}

/// The kinds of input rhscope reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Etl,
    ClusterLog,
    Evtx,
}

impl InputKind {
    /// By the file's first bytes (its name can lie: cluster.log files are
    /// often renamed to .txt).
    pub fn detect(path: &std::path::Path) -> std::io::Result<InputKind> {
        use std::io::Read;
        let mut head = Vec::with_capacity(16 * 1024);
        std::fs::File::open(path)?
            .take(16 * 1024)
            .read_to_end(&mut head)?;
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        Ok(if head.starts_with(b"ElfFile\0") {
            InputKind::Evtx
        } else if crate::clusterlog::looks_like(&head) {
            InputKind::ClusterLog
        } else {
            // Not recognisable by content: the name says what it should
            // be, so the error can say what it is not.
            match ext.as_deref() {
                Some("log" | "txt") => InputKind::ClusterLog,
                Some("evtx") => InputKind::Evtx,
                _ => InputKind::Etl,
            }
        })
    }
}
