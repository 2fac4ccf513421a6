//! The timeline of one node: entry-point spans, API-call spans, worker
//! threads and waits, as paired from its records, plus the records the
//! rules read directly (deadlock reports, restarts, states, messages).

use std::collections::HashMap;
use std::sync::Arc;

use super::{EntryPoint, Evidence, Record, SpanVec};

pub type ThreadKey = (u32, u32);

/// Who showed a call: the DLL's own events, RHS's log lines, RCM's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SeenBy {
    pub dll: bool,
    pub rhs: bool,
    pub rcm: bool,
}

/// One call of an entry point, from its begin to its end where known.
#[derive(Clone, PartialEq, Eq)]
pub struct EntrySpan {
    pub id: usize,
    pub pid: u32,
    pub tid: u32,
    /// Shared by every span of the resource (a node's log has millions).
    pub resource: Arc<str>,
    pub resource_type: Option<Arc<str>>,
    pub entry_point: EntryPoint,
    pub begin_ns: i64,
    /// Its end, lost end, status and issue time, each where known: plain
    /// numbers with their presence in `known`, 33 bytes where four options
    /// took 64 (a node's log has millions of spans). Read and set through
    /// [`EntrySpan::end_ns`] and the methods beside it.
    end: i64,
    end_lost: i64,
    issued: i64,
    status: u64,
    known: u8,
    /// It failed, as RHS or RCM logged it.
    pub failed: bool,
    pub seen_by: SeenBy,
    /// Whether its end is logged when it comes (the DLL's own events,
    /// RCM's reply): if so, an end that never came is a call that never
    /// returned; if not (IsAlive, LooksAlive in RHS's verbose log), the
    /// end simply is not logged. `pid`/`tid` are 0 where no line of the
    /// RHS side names them.
    pub end_expected: bool,
    pub evidence: Evidence,
}

// By hand: the packed times and status show as the options they stand
// for, not as bare numbers and a byte of bits.
impl std::fmt::Debug for EntrySpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntrySpan")
            .field("id", &self.id)
            .field("pid", &self.pid)
            .field("tid", &self.tid)
            .field("resource", &self.resource)
            .field("resource_type", &self.resource_type)
            .field("entry_point", &self.entry_point)
            .field("begin_ns", &self.begin_ns)
            .field("end_ns", &self.end_ns())
            .field("end_lost_ns", &self.end_lost_ns())
            .field("status", &self.status())
            .field("failed", &self.failed)
            .field("issued_ns", &self.issued_ns())
            .field("seen_by", &self.seen_by)
            .field("end_expected", &self.end_expected)
            .field("evidence", &self.evidence)
            .finish()
    }
}

const HAS_END: u8 = 1;
const HAS_END_LOST: u8 = 2;
const HAS_ISSUED: u8 = 4;
const HAS_STATUS: u8 = 8;

impl EntrySpan {
    /// A span of `entry_point` on `resource` that thread `(pid, tid)` began
    /// at `begin_ns`; nothing else of it known yet.
    pub fn new(
        id: usize,
        (pid, tid): ThreadKey,
        resource: Arc<str>,
        entry_point: EntryPoint,
        begin_ns: i64,
        evidence: Evidence,
    ) -> EntrySpan {
        EntrySpan {
            id,
            pid,
            tid,
            resource,
            resource_type: None,
            entry_point,
            begin_ns,
            end: 0,
            end_lost: 0,
            issued: 0,
            status: 0,
            known: 0,
            failed: false,
            seen_by: SeenBy::default(),
            end_expected: false,
            evidence,
        }
    }

    fn known(&self, bit: u8) -> bool {
        self.known & bit != 0
    }

    fn set_known(&mut self, bit: u8, known: bool) {
        if known {
            self.known |= bit;
        } else {
            self.known &= !bit;
        }
    }

    /// When it returned; None: it never returned within the trace (or its
    /// end was lost).
    pub fn end_ns(&self) -> Option<i64> {
        self.known(HAS_END).then_some(self.end)
    }

    pub fn set_end_ns(&mut self, end_ns: Option<i64>) {
        self.set_known(HAS_END, end_ns.is_some());
        self.end = end_ns.unwrap_or(0);
    }

    /// Its end was lost: the thread was next seen beginning another entry
    /// point at this time, so it ended before then.
    pub fn end_lost_ns(&self) -> Option<i64> {
        self.known(HAS_END_LOST).then_some(self.end_lost)
    }

    pub fn set_end_lost_ns(&mut self, end_lost_ns: Option<i64>) {
        self.set_known(HAS_END_LOST, end_lost_ns.is_some());
        self.end_lost = end_lost_ns.unwrap_or(0);
    }

    /// When RCM issued the call, where its log says (the begin is when the
    /// DLL was entered, where that is known).
    pub fn issued_ns(&self) -> Option<i64> {
        self.known(HAS_ISSUED).then_some(self.issued)
    }

    pub fn set_issued_ns(&mut self, issued_ns: Option<i64>) {
        self.set_known(HAS_ISSUED, issued_ns.is_some());
        self.issued = issued_ns.unwrap_or(0);
    }

    /// The status it returned, where logged.
    pub fn status(&self) -> Option<u64> {
        self.known(HAS_STATUS).then_some(self.status)
    }

    pub fn set_status(&mut self, status: Option<u64>) {
        self.set_known(HAS_STATUS, status.is_some());
        self.status = status.unwrap_or(0);
    }

    /// Whether it is still open: no end seen, none known lost.
    pub fn is_open(&self) -> bool {
        self.end_ns().is_none() && self.end_lost_ns().is_none()
    }

    /// Whether how it ended is unknown: lost, or never logged.
    pub fn end_unknown(&self) -> bool {
        self.end_lost_ns().is_some() || (self.end_ns().is_none() && !self.end_expected)
    }

    /// The thread that ran it is known.
    pub fn thread_known(&self) -> bool {
        self.tid != 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiSpan {
    pub id: usize,
    pub pid: u32,
    pub tid: u32,
    pub api: String,
    pub target: Option<String>,
    pub begin_ns: i64,
    pub end_ns: Option<i64>,
    /// Its end was lost (see [`EntrySpan::end_lost_ns`]).
    pub end_lost_ns: Option<i64>,
    pub status: Option<u64>,
    /// Innermost entry point open on the thread when the call began.
    pub entry: Option<usize>,
    pub evidence: Evidence,
    /// Seen only in the stacks of the thread's waits, not logged.
    pub inferred: Option<Box<InferredCall>>,
}

/// What the stacks of a call's waits say of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InferredCall {
    /// RHS's `<EntryPoint>Call::CallIntoResource` frame, where rhs.exe's
    /// symbols name it.
    pub entry_point: Option<EntryPoint>,
    /// The image that made the call (the resource DLL).
    pub dll: Option<String>,
    /// The stack of its first wait.
    #[serde(skip)]
    pub stack: super::Stack,
}

/// ClusWorkerCreate: `creator` made worker thread `tid`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Worker {
    pub pid: u32,
    pub tid: u32,
    pub creator: u32,
    pub resource: Option<String>,
    /// When the creator announced it (after ClusWorkerCreate returned).
    pub created_ns: i64,
    /// When the thread's life began: its start, or its first event, which
    /// on a busy node can come before its creator announces it.
    pub started_ns: i64,
    pub exited_ns: Option<i64>,
}

impl Worker {
    /// Whether this worker was the thread `(pid, tid)` at `time_ns`.
    pub fn is(&self, pid: u32, tid: u32, time_ns: i64) -> bool {
        self.pid == pid
            && self.tid == tid
            && self.started_ns <= time_ns
            && self.exited_ns.is_none_or(|x| x >= time_ns)
    }
}

/// A timeline's workers by thread: which worker a thread was at a time, in
/// a look at that thread's few workers rather than a walk over all of them
/// (a node's log announces one for each Online: thousands, and each call
/// off an entry point asks). It holds places in the workers' list, which
/// is passed to each look, so the list can grow beside it.
#[derive(Debug, Default)]
pub struct WorkerIndex {
    /// (pid, tid) -> its workers' places in the list, in its order.
    by_thread: HashMap<ThreadKey, Vec<usize>>,
}

impl WorkerIndex {
    pub fn new(workers: &[Worker]) -> WorkerIndex {
        let mut index = WorkerIndex::default();
        for (i, w) in workers.iter().enumerate() {
            index.note(i, w);
        }
        index
    }

    /// Notes that the list's worker at `i` is `w`.
    fn note(&mut self, i: usize, w: &Worker) {
        self.by_thread.entry((w.pid, w.tid)).or_default().push(i);
    }

    /// The first worker of `workers` (the list this indexes) that was the
    /// thread `(pid, tid)` at `time_ns`.
    pub fn at<'w>(
        &self,
        workers: &'w [Worker],
        pid: u32,
        tid: u32,
        time_ns: i64,
    ) -> Option<&'w Worker> {
        self.by_thread
            .get(&(pid, tid))?
            .iter()
            .filter_map(|&i| workers.get(i))
            .find(|w| w.is(pid, tid, time_ns))
    }

    /// Adds `worker` to the end of `workers` (the list this indexes).
    pub fn push(&mut self, workers: &mut Vec<Worker>, worker: Worker) {
        self.note(workers.len(), &worker);
        workers.push(worker);
    }
}

/// A stretch of a thread off the CPU: switched out at `out_ns`, readied at
/// `ready_ns` (when known), back in at `in_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Wait {
    pub tid: u32,
    pub out_ns: i64,
    pub ready_ns: Option<i64>,
    pub in_ns: Option<i64>,
    pub wait_reason: u8,
    /// The thread whose action readied it.
    pub readied_by: Option<u32>,
}

/// Where a wait waited: the stack of its thread's switch back in, or of
/// the rundown at the trace's end while it still waited. Kept beside the
/// waits (most have none) so a wait stays small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitStack {
    /// The wait's index in [`Spans::waits`].
    pub wait: usize,
    pub stack: super::Stack,
    /// The event the stack was walked with.
    pub evidence: Evidence,
}

/// A thread's life as the kernel logged it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ThreadLife {
    pub pid: u32,
    pub tid: u32,
    /// When it started (None: before the trace; `seen_ns` is its rundown).
    pub start_ns: Option<i64>,
    pub seen_ns: i64,
    pub end_ns: Option<i64>,
    /// The image its start address is in (`resutils.dll` for a
    /// ClusWorkerCreate worker), where images and the address are known.
    pub start_module: Option<String>,
}

/// Everything paired from one trace's records.
#[derive(Debug, Default)]
pub struct Spans {
    pub entries: SpanVec<EntrySpan>,
    pub calls: SpanVec<ApiSpan>,
    pub workers: Vec<Worker>,
    pub waits: SpanVec<Wait>,
    /// Records that are not spans but rules need.
    pub deadlocks: Vec<Record>,
    pub restarts: Vec<Record>,
    pub statuses: SpanVec<Record>,
    pub messages: SpanVec<Record>,
    /// Ends that had no begin (trace started mid-call), by kind.
    pub unmatched_ends: usize,
    /// Entry points (and the calls inside them) whose end was lost: their
    /// thread began another entry point while they were open.
    pub lost_ends: usize,
    /// Calls seen begin in logs that do not log their end (IsAlive,
    /// LooksAlive): open at the end, their end was not logged.
    pub ends_not_logged: usize,
    /// IsAlive / LooksAlive failures.
    pub health_failures: Vec<Record>,
    /// What the cluster did and said (FailoverClustering events, monitor
    /// restarts, separate monitors, WER reports, role moves, failed calls'
    /// lines), in time order.
    pub events: SpanVec<Record>,
    /// Context switches seen (0: blocking is wall-clock only).
    pub context_switches: usize,
    /// Threads the kernel said started, ran or ended, by start.
    pub threads: Vec<ThreadLife>,
    /// Process ids and image names (`rhs.exe`) the kernel named.
    pub processes: std::collections::BTreeMap<u32, String>,
    /// The stacks of the waits that have one, by wait.
    pub wait_stacks: Vec<WaitStack>,
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_keeps_each_optional_time_apart_and_forgets_it_whole() {
        let fresh = || {
            EntrySpan::new(
                3,
                (10, 20),
                Arc::from("R"),
                EntryPoint::Online,
                100,
                Evidence::Live { sequence: 1 },
            )
        };
        let mut s = fresh();
        assert_eq!(
            (s.end_ns(), s.end_lost_ns(), s.issued_ns(), s.status()),
            (None, None, None, None)
        );
        // Zero is a time and a status like any other, and each is apart.
        s.set_end_ns(Some(0));
        s.set_status(Some(u64::MAX));
        s.set_issued_ns(Some(i64::MIN));
        assert_eq!(
            (s.end_ns(), s.end_lost_ns(), s.issued_ns(), s.status()),
            (Some(0), None, Some(i64::MIN), Some(u64::MAX))
        );
        assert!(!s.is_open() && !s.end_unknown());
        s.set_end_lost_ns(Some(-5));
        assert_eq!(s.end_lost_ns(), Some(-5));
        assert!(s.end_unknown());
        assert!(format!("{s:?}").contains(
            "end_ns: Some(0), end_lost_ns: Some(-5), status: Some(18446744073709551615)"
        ));
        // Cleared, it equals a span that never had them.
        s.set_end_ns(None);
        s.set_end_lost_ns(None);
        s.set_issued_ns(None);
        s.set_status(None);
        assert_eq!(s, fresh());
        assert!(s.is_open());
        assert_eq!(std::mem::size_of::<EntrySpan>(), 120);
    }

    /// The index finds what a walk over every worker finds: the first (in
    /// the timeline's order) that was the thread at the time, with a
    /// thread id reused by a later worker, one in another process, and
    /// two announcements of one thread.
    #[test]
    fn the_worker_index_finds_what_a_walk_finds() {
        let w = |pid, tid, started_ns, exited_ns, creator| Worker {
            pid,
            tid,
            creator,
            resource: None,
            created_ns: started_ns,
            started_ns,
            exited_ns,
        };
        let workers = vec![
            w(10, 7, 100, Some(200), 1),
            w(11, 7, 100, None, 2),
            w(10, 7, 300, None, 3),
            w(10, 7, 350, Some(400), 4),
            w(10, 8, 0, None, 5),
        ];
        // Built at once, and grown a worker at a time.
        let index = WorkerIndex::new(&workers);
        let (mut grown, mut pushed) = (WorkerIndex::default(), Vec::new());
        for w in &workers {
            grown.push(&mut pushed, w.clone());
        }
        assert_eq!(pushed, workers);
        for pid in [9, 10, 11] {
            for tid in [6, 7, 8] {
                for t in [0, 99, 100, 150, 200, 250, 300, 360, 400, 1000] {
                    let walk = workers.iter().find(|w| w.is(pid, tid, t));
                    let found = index.at(&workers, pid, tid, t);
                    assert_eq!(found.map(|w| w.creator), walk.map(|w| w.creator));
                    let found = grown.at(&pushed, pid, tid, t);
                    assert_eq!(found.map(|w| w.creator), walk.map(|w| w.creator));
                }
            }
        }
        assert_eq!(index.at(&workers, 10, 7, 360).map(|w| w.creator), Some(3));
        assert_eq!(index.at(&workers, 10, 7, 250), None);
        assert_eq!(index.at(&workers, 11, 7, 50), None);
    }
}
