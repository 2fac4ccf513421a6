//! How long a call was blocked, and how that time splits into running,
//! ready (waiting for a CPU) and waiting (for an object), from the
//! thread's context switches.

use std::collections::HashMap;

use crate::model::Wait;
use crate::read::etl::kernel::wait_reason_name;

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

/// A thread's waits, in time order, for splitting any stretch of it.
pub struct WaitIndex<'s> {
    by_tid: HashMap<u32, Vec<&'s Wait>>,
    /// Whether the trace has context switches at all (else every split is
    /// wall-clock only).
    have_switches: bool,
}

impl<'s> WaitIndex<'s> {
    pub fn new(waits: &'s [Wait], have_switches: bool) -> WaitIndex<'s> {
        let mut by_tid: HashMap<u32, Vec<&Wait>> = HashMap::new();
        for w in waits {
            by_tid.entry(w.tid).or_default().push(w);
        }
        WaitIndex {
            by_tid,
            have_switches,
        }
    }

    /// Splits [begin, stop] of thread `tid`.
    pub fn blocking(&self, tid: u32, begin: i64, stop: i64) -> Blocking {
        let total = (stop - begin).max(0);
        if !self.have_switches {
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
        let waits = self.by_tid.get(&tid).map_or(&[][..], Vec::as_slice);
        // A thread's waits follow each other in time: only the one under
        // way at `begin` and those that start before `stop` can overlap.
        let first = waits
            .partition_point(|w| w.out_ns < begin)
            .saturating_sub(1);
        for w in waits[first..].iter().take_while(|w| w.out_ns < stop) {
            let back = w.in_ns.unwrap_or(stop);
            let readied = w.ready_ns.unwrap_or(back);
            let wt = overlap(w.out_ns, readied);
            let rt = overlap(readied, back);
            if wt + rt > 0 {
                reasons.push(wait_reason_name(w.wait_reason));
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
}
