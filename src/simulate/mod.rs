//! A simulator of an RHS process hosting resources, with resource DLLs that
//! behave well or break the usage rules in planted ways. It writes a real
//! .etl file (RhScope-ResourceDll events, FailoverClustering messages,
//! kernel process, thread and context-switch events) and the ground truth:
//! every finding it planted, as it planted it, never by analysing the trace.

mod payloads;
mod scenario;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Seek, Write};

use crate::etl::stats::rfc3339;
use crate::etl::write::tracelogging::{event as tl_event, provider_traits, FieldValue};
use crate::etl::write::{EventRecord, KernelHeader, TraceWriter, WriterOptions};
use crate::etl::{Descriptor, Guid};
use crate::model::{EntryPoint, Finding, Rule, Severity, ThreadKind, UsageCode};
use crate::usage::UsageTable;

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
    pub findings: Vec<Finding>,
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
    ClusterLog(String),
    /// RHS terminates: the simulation ends.
    RhsExit,
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

    /// A worker whose last steps report a pending state and then block for
    /// good leaves the resource pending: after PendingTimeout RHS gives up
    /// and calls Terminate.
    fn plant_pending_timeout(&mut self, r: usize, worker: u32, start: i64, steps: &[(i64, Step)]) {
        if !matches!(steps.last(), Some((_, Step::Block))) {
            return;
        }
        let mut t = start;
        let mut last_status = None;
        for (i, (delay, step)) in steps.iter().enumerate() {
            if i > 0 {
                t += delay;
            }
            if let Step::Status(_, state) = step {
                last_status = Some((t, *state));
            }
        }
        let Some((at, state)) = last_status.filter(|(_, s)| s.ends_with("Pending")) else {
            return;
        };
        let ep = if state.starts_with("Offline") {
            EntryPoint::Offline
        } else {
            EntryPoint::Online
        };
        self.plant(Rule::PendingTimeout, r, Some(ep), None, worker, at);
        let terminate_at = at + PENDING_TIMEOUT + self.rng.between(MS, 10 * MS);
        self.call(
            r,
            EntryPoint::Terminate,
            terminate_at,
            Vec::new(),
            ERROR_SUCCESS,
        );
    }

    /// Plants a misuse finding for an API call beginning now on `tid` in
    /// the given context, if the usage table forbids it there; returns its
    /// index so the call's end can fill in the duration.
    fn plant_misuse(
        &mut self,
        r: usize,
        ep: Option<EntryPoint>,
        api: &str,
        tid: u32,
    ) -> Option<usize> {
        let kind = if ep.is_some() {
            ThreadKind::RhsEntryPoint
        } else {
            ThreadKind::ClusterWorker
        };
        let begin = self.now;
        let row = self.table.resolve(api)?;
        let usage = row.usage;
        let forbidden = match ep {
            Some(ep) => self.table.forbidden_in(usage, ep),
            None => usage == UsageCode::DoNotUse,
        };
        if !forbidden {
            return None;
        }
        let name = row.name.clone();
        self.findings.push(Finding {
            rule: Rule::ApiMisuse,
            severity: Severity::Error,
            resource: Some(self.resources[r].clone()),
            entry_point: ep,
            api: Some(name),
            usage: Some(usage),
            thread_kind: Some(kind),
            pid: RHS_PID,
            tid,
            begin: rfc3339(self.ns(begin)),
            duration_ns: None,
        });
        Some(self.findings.len() - 1)
    }

    pub(crate) fn plant(
        &mut self,
        rule: Rule,
        r: usize,
        ep: Option<EntryPoint>,
        api: Option<&str>,
        tid: u32,
        begin: i64,
    ) {
        self.findings.push(Finding {
            rule,
            severity: Severity::Error,
            resource: Some(self.resources[r].clone()),
            entry_point: ep,
            api: api.map(str::to_string),
            usage: api.and_then(|a| self.table.resolve(a)).map(|row| row.usage),
            thread_kind: None,
            pid: RHS_PID,
            tid,
            begin: rfc3339(self.ns(begin)),
            // Hangs get theirs when the trace end is known.
            duration_ns: None,
        });
    }

    /// Absolute tick to nanoseconds since 1970, as the reader converts.
    pub(crate) fn ns(&self, tick: i64) -> i64 {
        let start_ft = WriterOptions::default().start_filetime;
        (start_ft - crate::etl::header::FILETIME_UNIX_EPOCH + (tick - self.start)) * 100
    }

    fn write_tl(&mut self, tid: u32, name: &str, fields: &[(&str, FieldValue)]) -> io::Result<()> {
        let (schema, payload) = tl_event(name, fields);
        let ev = EventRecord {
            thread_id: tid,
            process_id: RHS_PID,
            timestamp: self.now,
            provider: self.provider,
            descriptor: Descriptor {
                level: 4,
                channel: 11,
                ..Descriptor::default()
            },
            activity_id: Guid::NIL,
            extended: vec![provider_traits("RhScope-ResourceDll"), schema],
            payload,
        };
        self.writer.write_event(Self::cpu(tid), &ev)
    }

    fn write_kernel(
        &mut self,
        tid: u32,
        group: u8,
        opcode: u8,
        version: u16,
        payload: &[u8],
    ) -> io::Result<()> {
        let header = if opcode == 36 || opcode == 50 {
            KernelHeader::Perfinfo
        } else {
            KernelHeader::System
        };
        self.writer.write_kernel(
            Self::cpu(tid),
            header,
            group,
            opcode,
            version,
            tid,
            RHS_PID,
            self.now,
            payload,
        )
    }

    /// A line of the cluster.log, when one is being written.
    fn log_line(&mut self, tid: u32, component: &str, text: &str) -> io::Result<()> {
        let time = self.ns(self.now);
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        let level = if text.contains("timed out") || text.contains("deadlock") {
            "ERR"
        } else {
            "INFO"
        };
        let line = crate::clusterlog::format_line(RHS_PID, tid, time, level, component, text);
        writeln!(log, "{line}")
    }

    /// What the DLL logs through RHS's LogEvent callback: RHS prefixes the
    /// resource type and name.
    fn res_line(&mut self, tid: u32, r: Option<usize>, text: String) -> io::Result<()> {
        if self.log.is_none() {
            return Ok(());
        }
        let line = match r {
            Some(r) => format!("{RESOURCE_TYPE} <{}>: rhscope: {text}", self.resources[r]),
            None => format!("rhscope: {text}"),
        };
        self.log_line(tid, "RES", &line)
    }

    fn cluster_log(&mut self, tid: u32, text: &str) -> io::Result<()> {
        self.log_line(tid, "RHS", text)?;
        self.fc_seq += 1;
        let payload: Vec<u8> = text
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect();
        let ev = EventRecord {
            thread_id: tid,
            process_id: RHS_PID,
            timestamp: self.now,
            provider: self.clustering,
            // Any id: the provider definition maps every event by its text.
            descriptor: Descriptor {
                id: 2,
                version: 0,
                level: 4,
                ..Descriptor::default()
            },
            activity_id: Guid::NIL,
            extended: Vec::new(),
            payload,
        };
        self.writer.write_event(Self::cpu(tid), &ev)
    }

    /// Writes the rundown of the RHS process and its resource threads.
    fn rundown(&mut self) -> io::Result<()> {
        self.write_kernel(
            0,
            KERNEL_PROCESS,
            3,
            4,
            &payloads::process(RHS_PID, 700, "rhs.exe"),
        )?;
        for r in 0..self.resources.len() {
            let tid = Self::rhs_thread(r);
            self.write_kernel(tid, KERNEL_THREAD, 3, 3, &payloads::thread(RHS_PID, tid))?;
        }
        Ok(())
    }

    fn step(&mut self, id: usize, tid: u32, step: Step) -> io::Result<()> {
        let r_name = |s: &Self, r: usize| s.resources[r].clone();
        match step {
            Step::EntryBegin(r, ep) => {
                self.res_line(tid, Some(r), format!("entry-point-begin {}", ep.name()))?;
                let name = r_name(self, r);
                self.write_tl(
                    tid,
                    "EntryPointBegin",
                    &[
                        ("Resource", FieldValue::Str(name)),
                        ("ResourceType", FieldValue::Str(RESOURCE_TYPE.into())),
                        ("EntryPoint", FieldValue::Str(ep.name().into())),
                    ],
                )
            }
            Step::EntryEnd(r, ep, status) => {
                self.res_line(
                    tid,
                    Some(r),
                    format!("entry-point-end {} status {status:#x}", ep.name()),
                )?;
                let name = r_name(self, r);
                self.write_tl(
                    tid,
                    "EntryPointEnd",
                    &[
                        ("Resource", FieldValue::Str(name)),
                        ("ResourceType", FieldValue::Str(RESOURCE_TYPE.into())),
                        ("EntryPoint", FieldValue::Str(ep.name().into())),
                        ("Status", FieldValue::Hex32(status)),
                    ],
                )
            }
            Step::ApiBegin(api, target) => {
                let context = self.scripts[id].as_ref().and_then(|sc| sc.context);
                self.res_line(
                    tid,
                    context.map(|c| c.0),
                    format!("api-call-begin {api} target {target}"),
                )?;
                if let Some((r, ep)) = context {
                    let planted = self.plant_misuse(r, ep, &api, tid);
                    if let Some(sc) = self.scripts[id].as_mut() {
                        sc.open_calls.extend(planted);
                    }
                }
                self.write_tl(
                    tid,
                    "ApiCallBegin",
                    &[
                        ("Api", FieldValue::Str(api)),
                        ("Target", FieldValue::Str(target)),
                    ],
                )
            }
            Step::ApiEnd(api, target, status) => {
                let context = self.scripts[id].as_ref().and_then(|sc| sc.context);
                self.res_line(
                    tid,
                    context.map(|c| c.0),
                    format!("api-call-end {api} status {status:#x} target {target}"),
                )?;
                let begun = self.scripts[id].as_mut().and_then(|sc| sc.open_calls.pop());
                if let Some(i) = begun {
                    let begin = chrono::DateTime::parse_from_rfc3339(&self.findings[i].begin)
                        .ok()
                        .and_then(|t| t.timestamp_nanos_opt())
                        .unwrap_or(0);
                    self.findings[i].duration_ns = Some(self.ns(self.now) - begin);
                }
                self.write_tl(
                    tid,
                    "ApiCallEnd",
                    &[
                        ("Api", FieldValue::Str(api)),
                        ("Target", FieldValue::Str(target)),
                        ("Status", FieldValue::Hex32(status)),
                    ],
                )
            }
            Step::Block => self.write_kernel(
                tid,
                KERNEL_THREAD,
                36,
                2,
                &payloads::cswitch(0, tid, payloads::WAIT_USER_REQUEST, payloads::STATE_WAITING),
            ),
            Step::Wake => {
                self.write_kernel(0, KERNEL_THREAD, 50, 2, &payloads::ready_thread(tid))?;
                self.write_kernel(
                    tid,
                    KERNEL_THREAD,
                    36,
                    2,
                    &payloads::cswitch(tid, 0, 0, payloads::STATE_RUNNING),
                )
            }
            Step::CreateWorker(r, steps) => {
                let worker = self.next_worker;
                self.next_worker += 4;
                self.write_kernel(
                    worker,
                    KERNEL_THREAD,
                    1,
                    3,
                    &payloads::thread(RHS_PID, worker),
                )?;
                self.res_line(tid, Some(r), format!("worker-create {worker}"))?;
                let name = r_name(self, r);
                self.write_tl(
                    tid,
                    "WorkerCreate",
                    &[
                        ("Resource", FieldValue::Str(name)),
                        ("Worker", FieldValue::U32(worker)),
                    ],
                )?;
                // The worker's own events start a little later.
                let when = self.now + self.rng.between(MS / 10, MS);
                self.plant_pending_timeout(r, worker, when, &steps);
                self.spawn_in(worker, Some((r, None)), when, steps);
                Ok(())
            }
            Step::WorkerExit(r) => {
                self.res_line(tid, Some(r), "worker-exit".into())?;
                let name = r_name(self, r);
                self.write_tl(tid, "WorkerExit", &[("Resource", FieldValue::Str(name))])?;
                self.write_kernel(tid, KERNEL_THREAD, 2, 3, &payloads::thread(RHS_PID, tid))
            }
            Step::Status(r, state) => {
                self.res_line(tid, Some(r), format!("resource-status {state}"))?;
                let name = r_name(self, r);
                self.write_tl(
                    tid,
                    "ResourceStatus",
                    &[
                        ("Resource", FieldValue::Str(name)),
                        ("State", FieldValue::Str(state.into())),
                    ],
                )
            }
            Step::ClusterLog(text) => self.cluster_log(tid, &text),
            Step::Tick(t) => {
                scenario::tick(self, t);
                Ok(())
            }
            Step::RhsExit => {
                self.write_kernel(
                    tid,
                    KERNEL_PROCESS,
                    2,
                    4,
                    &payloads::process(RHS_PID, 700, "rhs.exe"),
                )?;
                self.stopped = true;
                Ok(())
            }
        }
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
    opts: Options<'_>,
    out: W,
) -> io::Result<(W, GroundTruth)> {
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
    sim.rundown()?;
    sim.run(stop.unwrap_or(end))?;
    let last = sim.now;
    let end_ns = sim.ns(last);
    // Hangs are measured to the end of the trace, which only now is known.
    for f in sim.findings.iter_mut().filter(|f| f.rule == Rule::Hang) {
        let begin = chrono::DateTime::parse_from_rfc3339(&f.begin)
            .map(|t| t.timestamp_nanos_opt().unwrap_or(0))
            .unwrap_or(0);
        f.duration_ns = Some(end_ns - begin);
    }
    sim.findings.sort();
    let truth = GroundTruth {
        scenario: scenario.name().to_string(),
        seed,
        scale,
        records: 0,
        resources: sim.resources.clone(),
        start: rfc3339(sim.ns(sim.start)),
        end: rfc3339(sim.ns(last)),
        findings: std::mem::take(&mut sim.findings),
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
