//! How long a call was blocked, and how that time splits into running,
//! ready (waiting for a CPU) and waiting (for an object), from the
//! thread's context switches.

use std::collections::HashMap;

use crate::model::spans::WaitStack;
use crate::model::{SpanVec, Wait};
use crate::read::etl::kernel::wait_reason_name;

/// [`Blocking::source`] of a split from context switches, and of a total
/// alone.
const CONTEXT_SWITCHES: &str = "context-switches";
const WALL_CLOCK: &str = "wall-clock";

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
    /// Where the thread waited, as its wait stacks show (kernel traces with
    /// stacks): the innermost frame outside the system's images, most
    /// waiting first. Functions the usage table does not list show here
    /// too (a database client, a socket call), though they are no finding.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waited_in: Vec<WaitSite>,
}

impl Blocking {
    /// Only the total is known (no context switches for the thread).
    pub fn wall_clock(total_ns: i64) -> Blocking {
        Blocking {
            source: WALL_CLOCK,
            total_ns,
            running_ns: None,
            ready_ns: None,
            waiting_ns: None,
            wait_reasons: Vec::new(),
            readied_by: Vec::new(),
            waited_in: Vec::new(),
        }
    }

    /// The thread's context switches show it running the whole time.
    fn running(total_ns: i64) -> Blocking {
        Blocking {
            source: CONTEXT_SWITCHES,
            running_ns: Some(total_ns),
            ready_ns: Some(0),
            waiting_ns: Some(0),
            ..Blocking::wall_clock(total_ns)
        }
    }
}

/// A span's blocking as the analysis keeps it for every span: the total,
/// and the split only where it says more than the total. A node's log has
/// no context switches and millions of spans, and in a trace that has them
/// most spans ran throughout (no wait overlaps them): a whole [`Blocking`]
/// each was 144 bytes, a boxed one per span of such a trace about 160
/// (30 MiB of the bench's 100 MB trace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked(Kept);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kept {
    /// No context switches: the total alone is known.
    WallClock(i64),
    /// Context switches show it running the whole time.
    Running(i64),
    Split(Box<Blocking>),
}

impl Blocked {
    pub fn new(b: Blocking) -> Blocked {
        // What `Blocking::wall_clock` and `Blocking::running` make, told by
        // hand rather than by building each to compare: this runs for
        // every span, and the numbers tell most apart before the source's
        // text is compared. Every field is named, so one added to Blocking
        // has to be decided on here too rather than dropped.
        let Blocking {
            source,
            total_ns,
            running_ns,
            ready_ns,
            waiting_ns,
            wait_reasons,
            readied_by,
            waited_in,
        } = &b;
        let total_ns = *total_ns;
        let alone = wait_reasons.is_empty() && readied_by.is_empty() && waited_in.is_empty();
        Blocked(match (*running_ns, *ready_ns, *waiting_ns) {
            (None, None, None) if alone && *source == WALL_CLOCK => Kept::WallClock(total_ns),
            (Some(running), Some(0), Some(0))
                if alone && running == total_ns && *source == CONTEXT_SWITCHES =>
            {
                Kept::Running(total_ns)
            }
            _ => Kept::Split(Box::new(b)),
        })
    }

    /// The whole figure.
    pub fn get(&self) -> std::borrow::Cow<'_, Blocking> {
        match &self.0 {
            Kept::WallClock(total_ns) => std::borrow::Cow::Owned(Blocking::wall_clock(*total_ns)),
            Kept::Running(total_ns) => std::borrow::Cow::Owned(Blocking::running(*total_ns)),
            Kept::Split(b) => std::borrow::Cow::Borrowed(b),
        }
    }
}

/// A place a thread waited, and for how long in the stretch split.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WaitSite {
    /// `module!function`, or `module+0xOFFSET` where no symbol names it.
    pub site: String,
    pub waiting_ns: i64,
}

/// A wait's address: which wait it is, whatever its fields.
fn address(w: &Wait) -> usize {
    std::ptr::from_ref(w) as usize
}

/// A thread's waits, in time order, for splitting any stretch of it.
pub struct WaitIndex<'s> {
    by_tid: HashMap<u32, Vec<&'s Wait>>,
    /// Where each wait (by its address in the waits, as a number: the
    /// index is shared by threads) waited, where its stack says.
    sites: HashMap<usize, String>,
    /// Whether the trace has context switches at all (else every split is
    /// wall-clock only).
    have_switches: bool,
}

impl<'s> WaitIndex<'s> {
    pub fn new(
        waits: &'s SpanVec<Wait>,
        stacks: &[WaitStack],
        have_switches: bool,
    ) -> WaitIndex<'s> {
        let mut by_tid: HashMap<u32, Vec<&Wait>> = HashMap::new();
        for w in waits {
            by_tid.entry(w.tid).or_default().push(w);
        }
        let sites = stacks
            .iter()
            .filter_map(|s| {
                let w = waits.get(s.wait)?;
                Some((address(w), super::stacks::wait_site(&s.stack)?))
            })
            .collect();
        WaitIndex {
            by_tid,
            sites,
            have_switches,
        }
    }

    /// Splits [begin, stop] of thread `tid`.
    pub fn blocking(&self, tid: u32, begin: i64, stop: i64) -> Blocking {
        let total = stop.saturating_sub(begin).max(0);
        if !self.have_switches {
            return Blocking::wall_clock(total);
        }
        let overlap = |a: i64, b: i64| b.min(stop).saturating_sub(a.max(begin)).max(0);
        let (mut waiting, mut ready) = (0i64, 0i64);
        let mut reasons = Vec::new();
        let mut readied_by = Vec::new();
        let mut sites: HashMap<&str, i64> = HashMap::new();
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
            if let Some(site) = self.sites.get(&address(w)).filter(|_| wt > 0) {
                *sites.entry(site).or_default() += wt;
            }
            waiting = waiting.saturating_add(wt);
            ready = ready.saturating_add(rt);
        }
        let mut waited_in: Vec<WaitSite> = sites
            .into_iter()
            .map(|(site, waiting_ns)| WaitSite {
                site: site.to_string(),
                waiting_ns,
            })
            .collect();
        waited_in.sort_by(|a, b| b.waiting_ns.cmp(&a.waiting_ns).then(a.site.cmp(&b.site)));
        reasons.sort_unstable();
        reasons.dedup();
        readied_by.sort_unstable();
        readied_by.dedup();
        Blocking {
            source: CONTEXT_SWITCHES,
            total_ns: total,
            running_ns: Some(total.saturating_sub(waiting).saturating_sub(ready)),
            ready_ns: Some(ready),
            waiting_ns: Some(waiting),
            wait_reasons: reasons,
            readied_by,
            waited_in,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Evidence, Frame, Timestamp};

    fn frame(module: &str, function: Option<&str>) -> Frame {
        Frame {
            address: 0x1000,
            module: Some(module.into()),
            function: function.map(Into::into),
            offset: 0x24,
        }
    }

    /// A call that waited twice in a database client and once in the
    /// cluster library: both places show, most waiting first, the system's
    /// own frames never; the split itself still adds up.
    #[test]
    fn waits_say_where_they_waited_outside_the_table_too() {
        let wait = |out_ns, in_ns| Wait {
            tid: 7,
            out_ns,
            ready_ns: Some(in_ns - 10),
            in_ns: Some(in_ns),
            wait_reason: 6,
            readied_by: None,
        };
        let waits = SpanVec::from(vec![
            wait(100, 1_100),
            wait(1_200, 2_200),
            wait(2_300, 2_800),
        ]);
        let sql = [
            frame("ntoskrnl.exe", Some("KiSwapContext")),
            frame("ntdll.dll", Some("NtWaitForSingleObject")),
            frame("sqlcli.dll", Some("SQLDriverConnectW")),
            frame("contosoapp.dll", None),
        ];
        let clus = [
            frame("kernelbase.dll", Some("WaitForSingleObjectEx")),
            frame("clusapi.dll", Some("_GetClusterResourceState@16")),
            frame("contosoapp.dll", None),
        ];
        let stack = |frames: &[Frame], wait| WaitStack {
            wait,
            stack: frames.to_vec().into(),
            evidence: Evidence::Line {
                input: 0,
                line: 1,
                time: Timestamp(0),
            },
        };
        let stacks = [stack(&sql, 0), stack(&sql, 1), stack(&clus, 2)];
        let b = WaitIndex::new(&waits, &stacks, true).blocking(7, 0, 3_000);
        assert_eq!(
            b.waited_in,
            vec![
                WaitSite {
                    site: "sqlcli.dll!SQLDriverConnectW".into(),
                    waiting_ns: 1_980,
                },
                WaitSite {
                    site: "clusapi.dll!GetClusterResourceState".into(),
                    waiting_ns: 490,
                },
            ]
        );
        assert_eq!(
            (b.waiting_ns, b.ready_ns, b.running_ns),
            (Some(2_470), Some(30), Some(500))
        );
        // Kept per span as it is: the split boxed, whole.
        let kept = Blocked::new(b.clone());
        assert!(matches!(kept.0, Kept::Split(_)));
        assert_eq!(*kept.get(), b);
        // A stretch no wait overlaps ran throughout: the total is kept
        // alone, and given back as the context switches' split it is.
        let b = WaitIndex::new(&waits, &stacks, true).blocking(7, 2_900, 3_000);
        assert_eq!(
            (b.source, b.running_ns, b.ready_ns, b.waiting_ns),
            ("context-switches", Some(100), Some(0), Some(0))
        );
        assert!(b.wait_reasons.is_empty() && b.readied_by.is_empty() && b.waited_in.is_empty());
        let kept = Blocked::new(b.clone());
        assert_eq!(kept.0, Kept::Running(100));
        assert_eq!(*kept.get(), b);
        assert_eq!(std::mem::size_of::<Blocked>(), 16);
    }

    /// Without context switches only the total is kept, and given back as
    /// the same wall-clock figure.
    #[test]
    fn wall_clock_blocking_keeps_its_total_alone() {
        let b = WaitIndex::new(&SpanVec::new(), &[], false).blocking(7, 1_000, 4_500);
        assert_eq!(b, Blocking::wall_clock(3_500));
        let kept = Blocked::new(b.clone());
        assert_eq!(kept.0, Kept::WallClock(3_500));
        assert_eq!(*kept.get(), b);
        // A stop before the begin (a corrupt time) is no negative total.
        assert_eq!(
            WaitIndex::new(&SpanVec::new(), &[], false)
                .blocking(7, 10, 5)
                .total_ns,
            0
        );
    }
}
