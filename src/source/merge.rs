//! Several sources of one node on one timeline.

use std::collections::VecDeque;

use crate::model::{Evidence, Record, RecordKind};
use crate::read::clusterlog::LogCounts;

use super::{EventSource, Observed, SourceError};

use crate::model::time::MS_NS;

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

    /// Bytes read of all inputs together, about.
    pub fn bytes_read(&self) -> u64 {
        self.sources.iter().map(|s| s.bytes_read()).sum()
    }

    /// The headers of the cluster.logs among the inputs (by input name).
    pub fn headers(&self) -> Vec<(String, crate::read::clusterlog::LogHeader)> {
        self.sources
            .iter()
            .filter_map(|s| Some((s.name(), s.header()?.clone())))
            .collect()
    }

    /// Lines of each text input that broke its grammar (by input name).
    pub fn unparsed(&self) -> Vec<(String, LogCounts)> {
        self.sources
            .iter()
            .filter_map(|s| Some((s.name(), s.unparsed()?.clone())))
            .collect()
    }

    /// Source `i`'s next observation, its problems skipped (counted)
    /// unless strict; None at its end.
    fn pull(&mut self, i: usize) -> Result<Option<Observed>, SourceError> {
        loop {
            match self.sources[i].next_observed() {
                None => return Ok(None),
                Some(Ok(mut o)) => {
                    if let Observed::Record(r) = &mut o {
                        r.evidence = r.evidence.with_input(i as u16);
                    }
                    return Ok(Some(o));
                }
                Some(Err(e)) if self.strict => return Err(e),
                Some(Err(e @ SourceError::ClusterLog(_))) => return Err(e),
                Some(Err(_)) => self.counts.skipped += 1,
            }
        }
    }

    fn fill(&mut self, i: usize) -> Result<(), SourceError> {
        if self.heads[i].is_none() {
            self.heads[i] = self.pull(i)?;
        }
        Ok(())
    }

    /// The next observation of all sources, in time order.
    fn next_merged(&mut self) -> Result<Option<(Observed, usize)>, SourceError> {
        for i in 0..self.sources.len() {
            self.fill(i)?;
        }
        let pick = (0..self.heads.len())
            .filter_map(|i| self.heads[i].as_ref().map(|o| (o.time_ns(), i)))
            .min();
        Ok(pick.and_then(|(_, i)| self.heads[i].take().map(|o| (o, i))))
    }

    /// The next observation, duplicates dropped.
    pub fn next_observed(&mut self) -> Result<Option<Observed>, SourceError> {
        if self.sources.len() == 1 {
            // Nothing to merge or drop: straight through, not by way of
            // the heads (a record is a few hundred bytes, copied at each
            // step).
            return self.pull(0);
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
