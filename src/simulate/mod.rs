//! A simulator of an RHS process hosting resources, with resource DLLs that
//! behave well or break the usage rules in planted ways. It writes a real
//! .etl file (RhScope-ResourceDll events, FailoverClustering messages,
//! kernel process, thread and context-switch events) and the ground truth:
//! every finding it planted, as it planted it, never by analysing the trace.

mod emit;
mod files;
mod nodelog;
mod payloads;
mod scenario;
mod stacks;
mod truth;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Seek, Write};

use crate::model::{EntryPoint, Finding, Rule};
use crate::providers::usage::UsageTable;
use crate::read::etl::stats::rfc3339;
use crate::read::etl::write::{TraceWriter, WriterOptions};
use crate::read::etl::Guid;

pub use files::{symbols_path, truth_path, write_files, FileOptions, SimulateError};
pub use scenario::{Scenario, UnknownScenario};

/// 100 ns ticks, the trace's clock.
pub const MS: i64 = 10_000;
pub const SECOND: i64 = 10_000_000;
pub const LOOKS_ALIVE_INTERVAL: i64 = 5 * SECOND;
pub const IS_ALIVE_INTERVAL: i64 = 60 * SECOND;
pub const PENDING_TIMEOUT: i64 = 180 * SECOND;
pub const DEADLOCK_TIMEOUT: i64 = 300 * SECOND;

pub const RHS_PID: u32 = 2000;
pub const RESOURCE_TYPE: &str = "Contoso App";
const ERROR_SUCCESS: u32 = 0;
const ERROR_IO_PENDING: u32 = 997;

const KERNEL_PROCESS: u8 = 3;
const KERNEL_THREAD: u8 = 5;

/// What the simulator wrote and planted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroundTruth {
    pub scenario: String,
    pub seed: u64,
    pub scale: u64,
    /// Records in the .etl, the two trace-header records included.
    pub records: u64,
    pub resources: Vec<String>,
    pub start: String,
    pub end: String,
    /// Written for a DLL with no rhscope instrumentation: the findings are
    /// what the .etl's kernel stacks show, read with the `X.symbols/`
    /// written beside it.
    #[serde(default)]
    pub uninstrumented: bool,
    pub findings: Vec<Finding>,
    /// Uninstrumented, with `--cluster-log`: what the node's cluster.log
    /// alone shows (at its millisecond precision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_log: Option<Vec<Finding>>,
    /// What the DLL did that neither shows (a control code, which a stack
    /// names only as ClusterResourceControl; a call that never blocked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_shown: Vec<Finding>,
}

/// SplitMix64: small, fast, and the same on every platform and release,
/// which bit-identical traces need.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in lo..=hi.
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }
}

/// One step of a thread's script, taken `delay` ticks after the previous.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    EntryBegin(usize, EntryPoint),
    EntryEnd(usize, EntryPoint, u32),
    ApiBegin(String, String),
    ApiEnd(String, String, u32),
    /// The thread blocks (switched out, waiting).
    Block,
    /// The thread is readied and switched back in.
    Wake,
    /// ClusWorkerCreate: start a worker thread running these steps.
    CreateWorker(usize, Vec<(i64, Step)>),
    WorkerExit(usize),
    Status(usize, &'static str),
    /// RHS's deadlock monitor fires for the resource's call.
    DeadlockMonitor(usize, EntryPoint),
    /// RHS says it recovers from the resource's deadlock.
    HandlingDeadlock(usize),
    /// RHS terminates because of the resource: the simulation ends.
    RhsExit(usize),
    /// Run one resource health check and schedule the next (writes nothing).
    Tick(scenario::Tick),
}

struct Script {
    tid: u32,
    /// Whose code the thread runs: resource, entry point (None on a
    /// worker). Calls are checked against the usage table as they are
    /// written, so the ground truth holds exactly what the trace holds.
    context: Option<(usize, Option<EntryPoint>)>,
    steps: VecDeque<(i64, Step)>,
    /// Findings planted for calls this script has begun and not ended.
    open_calls: Vec<usize>,
    /// The API calls it is in, innermost last.
    apis: Vec<String>,
}

/// The simulation: threads run scripts; the earliest next step runs first,
/// so records are written in time order.
pub(crate) struct Sim<'w, W: Write + Seek> {
    writer: TraceWriter<W>,
    pub(crate) rng: Rng,
    pub(crate) now: i64,
    start: i64,
    queue: BinaryHeap<Reverse<(i64, u64, usize)>>,
    scripts: Vec<Option<Script>>,
    /// Slots of finished scripts, reused so memory follows the scripts
    /// running at once, not all there ever were.
    free: Vec<usize>,
    seq: u64,
    pub(crate) resources: Vec<String>,
    pub(crate) findings: Vec<Finding>,
    next_worker: u32,
    table: UsageTable,
    stopped: bool,
    provider: Guid,
    clustering: Guid,
    fc_seq: u64,
    /// The node's cluster.log, when asked for: the same events as lines.
    log: Option<&'w mut dyn Write>,
    /// Behaviours (by scenario name) simulated as fixed: healthy instead.
    pub(crate) fixed: Vec<Scenario>,
    /// The DLL writes no rhscope events: the node's log is written as a
    /// node writes it, with the truth it shows.
    pub(crate) node: Option<nodelog::NodeLog>,
    /// The kernel stacks of an uninstrumented node, and what they show.
    pub(crate) stacks: Option<stacks::StackWriter>,
    pub(crate) uninstrumented: bool,
}

impl<'w, W: Write + Seek> Sim<'w, W> {
    fn new(out: W, sim_opts: Options<'w>) -> io::Result<Sim<'w, W>> {
        let seed = sim_opts.seed;
        let opts = WriterOptions {
            logger_name: "rhscope-simulate".into(),
            buffer_size: 8192,
            log_file_name: "simulated.etl".into(),
            number_of_processors: 4,
            ..WriterOptions::default()
        };
        let start = opts.start_raw;
        Ok(Sim {
            writer: TraceWriter::new(out, opts)?,
            rng: Rng::new(seed),
            now: start,
            start,
            queue: BinaryHeap::new(),
            scripts: Vec::new(),
            free: Vec::new(),
            seq: 0,
            resources: Vec::new(),
            findings: Vec::new(),
            next_worker: 6000,
            table: UsageTable::embedded(),
            stopped: false,
            provider: Guid::from_provider_name("RhScope-ResourceDll"),
            clustering: "baf908ea-3421-4ca9-9b84-6689b8c6f85f"
                .parse()
                .unwrap_or(Guid::NIL),
            fc_seq: 0,
            log: sim_opts.cluster_log,
            fixed: sim_opts.fixed,
            node: None,
            stacks: None,
            uninstrumented: sim_opts.uninstrumented,
        })
    }

    /// Absolute tick `offset` after the trace start.
    pub(crate) fn at(&self, offset: i64) -> i64 {
        self.start + offset
    }

    pub(crate) fn rhs_thread(resource: usize) -> u32 {
        3000 + 4 * resource as u32
    }

    fn cpu(tid: u32) -> u16 {
        ((tid / 4) % 4) as u16
    }

    pub(crate) fn add_resource(&mut self, name: String) -> usize {
        self.resources.push(name);
        self.resources.len() - 1
    }

    /// Runs `steps` on thread `tid`, the first step at absolute time `when`.
    fn spawn(&mut self, tid: u32, when: i64, steps: Vec<(i64, Step)>) {
        self.spawn_in(tid, None, when, steps);
    }

    fn spawn_in(
        &mut self,
        tid: u32,
        context: Option<(usize, Option<EntryPoint>)>,
        when: i64,
        steps: Vec<(i64, Step)>,
    ) {
        let mut steps: VecDeque<(i64, Step)> = steps.into();
        if let Some(first) = steps.front_mut() {
            first.0 = 0;
        }
        let script = Script {
            tid,
            context,
            steps,
            open_calls: Vec::new(),
            apis: Vec::new(),
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.scripts[id] = Some(script);
                id
            }
            None => {
                self.scripts.push(Some(script));
                self.scripts.len() - 1
            }
        };
        self.seq += 1;
        self.queue.push(Reverse((when, self.seq, id)));
    }

    /// An entry point call on the resource's RHS thread at `when`:
    /// `inner` runs between begin and end, then it returns `status`.
    pub(crate) fn call(
        &mut self,
        r: usize,
        ep: EntryPoint,
        when: i64,
        inner: Vec<(i64, Step)>,
        status: u32,
    ) {
        let mut steps = vec![(0, Step::EntryBegin(r, ep))];
        steps.extend(inner);
        steps.push((
            self.rng.between(2 * MS / 10, 2 * MS),
            Step::EntryEnd(r, ep, status),
        ));
        self.spawn_in(Self::rhs_thread(r), Some((r, Some(ep))), when, steps);
    }

    /// An entry point call that never returns.
    pub(crate) fn call_without_return(
        &mut self,
        r: usize,
        ep: EntryPoint,
        when: i64,
        inner: Vec<(i64, Step)>,
    ) {
        let mut steps = vec![(0, Step::EntryBegin(r, ep))];
        steps.extend(inner);
        self.spawn_in(Self::rhs_thread(r), Some((r, Some(ep))), when, steps);
    }

    /// Steps of an API call that blocks for `blocked` ticks (a context switch
    /// out and back in around the wait), or forever when None.
    pub(crate) fn api(
        &mut self,
        api: &str,
        target: &str,
        blocked: Option<i64>,
    ) -> Vec<(i64, Step)> {
        let mut s = vec![
            (
                self.rng.between(MS / 10, MS),
                Step::ApiBegin(api.into(), target.into()),
            ),
            (self.rng.between(MS / 100, MS / 10), Step::Block),
        ];
        if let Some(b) = blocked {
            s.push((b, Step::Wake));
            s.push((
                self.rng.between(MS / 100, MS / 10),
                Step::ApiEnd(api.into(), target.into(), ERROR_SUCCESS),
            ));
        }
        s
    }

    /// Absolute tick to nanoseconds since 1970, as the reader converts.
    pub(crate) fn ns(&self, tick: i64) -> i64 {
        let start_ft = WriterOptions::default().start_filetime;
        (start_ft - crate::read::etl::header::FILETIME_UNIX_EPOCH + (tick - self.start)) * 100
    }

    /// Runs scripts until `end` (absolute) or until RHS exits.
    fn run(&mut self, end: i64) -> io::Result<()> {
        while let Some(Reverse((when, _, id))) = self.queue.pop() {
            if when > end || self.stopped {
                break;
            }
            self.now = when;
            let Some(script) = self.scripts[id].as_mut() else {
                continue;
            };
            let tid = script.tid;
            let Some((_, step)) = script.steps.pop_front() else {
                self.scripts[id] = None;
                self.free.push(id);
                continue;
            };
            let next = script.steps.front().map(|(d, _)| *d);
            if let Some(d) = next {
                self.seq += 1;
                self.queue.push(Reverse((when + d, self.seq, id)));
            }
            self.step(id, tid, step)?;
            // Freed only after its last step ran: steps look up their script.
            if next.is_none() {
                self.scripts[id] = None;
                self.free.push(id);
            }
        }
        Ok(())
    }
}

/// A writer that keeps only its length (for a run whose bytes are not
/// wanted).
#[derive(Default)]
struct Discard {
    pos: u64,
    len: u64,
}

impl Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pos += buf.len() as u64;
        self.len = self.len.max(self.pos);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Discard {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let base = |b: u64, d: i64| {
            b.checked_add_signed(d)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))
        };
        self.pos = match to {
            io::SeekFrom::Start(p) => p,
            io::SeekFrom::End(d) => base(self.len, d)?,
            io::SeekFrom::Current(d) => base(self.pos, d)?,
        };
        Ok(self.pos)
    }
}

/// How to simulate, besides the scenario.
#[derive(Default)]
pub struct Options<'w> {
    pub seed: u64,
    /// For `large`: about how many records to write.
    pub scale: u64,
    /// Also write the node's cluster.log (the same events as lines).
    pub cluster_log: Option<&'w mut dyn Write>,
    /// Behaviours to simulate as fixed (healthy), by their scenario's name:
    /// the "after" of a before/after pair.
    pub fixed: Vec<Scenario>,
    /// The DLL writes no rhscope events: the .etl holds only the kernel's
    /// and the cluster's events, and the cluster.log is what a Windows
    /// Server 2016+ node writes (header, System events, RCM and RHS
    /// lines); the truth is what that log shows.
    pub uninstrumented: bool,
    /// Uninstrumented: receives the images' Breakpad symbol files
    /// (relative path in a symbol-server layout, contents).
    pub symbols: Option<&'w mut Vec<(String, String)>>,
}

/// Simulates `scenario` into `out`. Same scenario, seed and scale give the
/// same bytes.
pub fn simulate<W: Write + Seek>(
    scenario: Scenario,
    seed: u64,
    scale: u64,
    out: W,
) -> io::Result<(W, GroundTruth)> {
    let opts = Options {
        seed,
        scale,
        ..Options::default()
    };
    simulate_with(scenario, opts, out)
}

/// [`simulate`] with every option.
pub fn simulate_with<W: Write + Seek>(
    scenario: Scenario,
    mut opts: Options<'_>,
    out: W,
) -> io::Result<(W, GroundTruth)> {
    let symbols_out = opts.symbols.take();
    let (seed, scale) = (opts.seed, opts.scale);
    // A fixed run covers the same time as the unfixed one (which may stop
    // early, when RHS terminates), so a before/after diff compares like
    // with like.
    let stop = if opts.fixed.is_empty() {
        None
    } else {
        let unfixed = Options {
            seed,
            scale,
            ..Options::default()
        };
        let mut sim = Sim::new(Discard::default(), unfixed)?;
        let end = scenario::plan(&mut sim, scenario, scale);
        sim.rundown()?;
        sim.run(end)?;
        Some(sim.now)
    };
    let mut sim = Sim::new(out, opts)?;
    let end = scenario::plan(&mut sim, scenario, scale);
    if sim.uninstrumented {
        if sim.log.is_some() {
            sim.node = Some(nodelog::NodeLog::new(sim.resources.len()));
        }
        let functions: Vec<&str> = sim
            .table
            .apis()
            .iter()
            .filter(|a| a.kind == crate::providers::usage::ApiKind::Function)
            .map(|a| a.name.as_str())
            .collect();
        sim.stacks = Some(stacks::StackWriter::new(&functions));
    }
    sim.rundown()?;
    sim.run(stop.unwrap_or(end))?;
    sim.stack_finish()?;
    let node_truth = sim.finish_node_log()?;
    let last = sim.now;
    let end_ns = sim.ns(last);
    // Hangs, and calls that never returned, are measured to the end of the
    // trace, which only now is known: at least that long.
    for f in sim.findings.iter_mut() {
        let open_call = f.rule == Rule::ApiMisuse && f.duration_ns.is_none();
        if f.rule == Rule::Hang || open_call {
            f.duration_ns = Some(end_ns - f.begin.ns());
            f.never_returned = true;
        }
    }
    sim.findings.sort();
    let planted = std::mem::take(&mut sim.findings);
    let uninstrumented = sim.uninstrumented;
    let (findings, cluster_log, not_shown) = match sim.stacks.take() {
        Some(st) => {
            if let Some(out) = symbols_out {
                *out = st.symbol_files();
            }
            let mut shown = st.findings;
            for f in shown.iter_mut().filter(|f| f.never_returned) {
                f.duration_ns = Some(end_ns - f.begin.ns());
            }
            shown.sort();
            let log = node_truth.unwrap_or_default();
            // Planted, but neither the stacks nor the log show it.
            let hidden = planted
                .into_iter()
                .filter(|p| {
                    let in_stacks = shown
                        .iter()
                        .any(|s| s.rule == p.rule && s.api == p.api && s.tid == p.tid);
                    let in_log = log
                        .iter()
                        .any(|s| s.rule == p.rule && s.resource == p.resource);
                    !in_stacks && !in_log
                })
                .collect();
            (shown, sim.log.is_some().then_some(log), hidden)
        }
        None => (planted, None, Vec::new()),
    };
    let truth = GroundTruth {
        scenario: scenario.name().to_string(),
        seed,
        scale,
        records: 0,
        resources: sim.resources.clone(),
        start: rfc3339(sim.ns(sim.start)),
        end: rfc3339(sim.ns(last)),
        uninstrumented,
        findings,
        cluster_log,
        not_shown,
    };
    let (out, summary) = sim.writer.finish()?;
    Ok((
        out,
        GroundTruth {
            records: summary.records,
            ..truth
        },
    ))
}
