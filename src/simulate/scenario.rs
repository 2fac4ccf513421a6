//! The scenarios: which resources exist, how each behaves, when things
//! happen.

use std::io::{Seek, Write};
use std::str::FromStr;

use super::{
    Sim, Step, DEADLOCK_TIMEOUT, ERROR_IO_PENDING, ERROR_SUCCESS, IS_ALIVE_INTERVAL,
    LOOKS_ALIVE_INTERVAL, MS, SECOND,
};
use crate::model::{EntryPoint, Rule};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Healthy,
    DoNotUseInOnline,
    WorkerOnlyFromIsAlive,
    SomeOkFromOffline,
    CorrectWorker,
    PendingTimeout,
    ControlCodeByNumber,
    Mixed,
    Large,
}

impl Scenario {
    pub const ALL: [Scenario; 9] = [
        Scenario::Healthy,
        Scenario::DoNotUseInOnline,
        Scenario::WorkerOnlyFromIsAlive,
        Scenario::SomeOkFromOffline,
        Scenario::CorrectWorker,
        Scenario::PendingTimeout,
        Scenario::ControlCodeByNumber,
        Scenario::Mixed,
        Scenario::Large,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Healthy => "healthy",
            Scenario::DoNotUseInOnline => "do-not-use-in-online",
            Scenario::WorkerOnlyFromIsAlive => "worker-only-from-isalive",
            Scenario::SomeOkFromOffline => "some-ok-from-offline",
            Scenario::CorrectWorker => "correct-worker",
            Scenario::PendingTimeout => "pending-timeout",
            Scenario::ControlCodeByNumber => "control-code-by-number",
            Scenario::Mixed => "mixed",
            Scenario::Large => "large",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Scenario::Healthy => "two resources that follow every rule: Online pends and finishes on a worker, health checks call no cluster API",
            Scenario::DoNotUseInOnline => "Online calls OnlineClusterResource and blocks; RHS's deadlock monitor fires after 300 s and RHS terminates",
            Scenario::WorkerOnlyFromIsAlive => "IsAlive calls GetClusterResourceState (worker thread only)",
            Scenario::SomeOkFromOffline => "Offline calls ClusterRegSetValue (forbidden there); ResourceControl makes the same call (fine)",
            Scenario::CorrectWorker => "the restricted calls made from a ClusWorkerCreate worker thread: no finding",
            Scenario::PendingTimeout => "Online pends, its worker never reports again; after 180 s RHS terminates the resource",
            Scenario::ControlCodeByNumber => "LooksAlive sends CLUSCTL_RESOURCE_GET_CLASS_INFO logged only as 0x0100000d",
            Scenario::Mixed => "eight resources, each behaving as one of the scenarios above",
            Scenario::Large => "many healthy resources and periodic control-code misuse, sized by --scale (records) for benchmarks",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scenario {0:?} (known: healthy, do-not-use-in-online, worker-only-from-isalive, some-ok-from-offline, correct-worker, pending-timeout, control-code-by-number, mixed, large)")]
pub struct UnknownScenario(pub String);

impl FromStr for Scenario {
    type Err = UnknownScenario;
    fn from_str(s: &str) -> Result<Scenario, UnknownScenario> {
        Scenario::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| UnknownScenario(s.to_string()))
    }
}

/// How one resource's DLL behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Healthy,
    DoNotUseInOnline,
    WorkerOnlyFromIsAlive,
    SomeOkFromOffline,
    CorrectWorker,
    PendingTimeout,
    ControlCodeByNumber,
}

impl Behaviour {
    /// The behaviour a single-behaviour scenario is named after.
    fn of(s: Scenario) -> Option<Behaviour> {
        Some(match s {
            Scenario::DoNotUseInOnline => Behaviour::DoNotUseInOnline,
            Scenario::WorkerOnlyFromIsAlive => Behaviour::WorkerOnlyFromIsAlive,
            Scenario::SomeOkFromOffline => Behaviour::SomeOkFromOffline,
            Scenario::CorrectWorker => Behaviour::CorrectWorker,
            Scenario::PendingTimeout => Behaviour::PendingTimeout,
            Scenario::ControlCodeByNumber => Behaviour::ControlCodeByNumber,
            Scenario::Healthy | Scenario::Mixed | Scenario::Large => return None,
        })
    }
}

const MIXED: [Behaviour; 8] = [
    Behaviour::Healthy,
    Behaviour::DoNotUseInOnline,
    Behaviour::WorkerOnlyFromIsAlive,
    Behaviour::SomeOkFromOffline,
    Behaviour::CorrectWorker,
    Behaviour::PendingTimeout,
    Behaviour::ControlCodeByNumber,
    Behaviour::Healthy,
];

/// Schedules the scenario; returns the absolute time to stop at.
pub(super) fn plan<W: Write + Seek>(sim: &mut Sim<'_, W>, scenario: Scenario, scale: u64) -> i64 {
    let (behaviours, duration): (Vec<Behaviour>, i64) = match scenario {
        Scenario::Healthy => (vec![Behaviour::Healthy; 2], 70 * SECOND),
        Scenario::DoNotUseInOnline => (
            vec![Behaviour::DoNotUseInOnline, Behaviour::Healthy],
            400 * SECOND,
        ),
        Scenario::WorkerOnlyFromIsAlive => (
            vec![Behaviour::WorkerOnlyFromIsAlive, Behaviour::Healthy],
            70 * SECOND,
        ),
        Scenario::SomeOkFromOffline => (vec![Behaviour::SomeOkFromOffline], 50 * SECOND),
        Scenario::CorrectWorker => (vec![Behaviour::CorrectWorker], 70 * SECOND),
        Scenario::PendingTimeout => (
            vec![Behaviour::PendingTimeout, Behaviour::Healthy],
            190 * SECOND,
        ),
        Scenario::ControlCodeByNumber => (vec![Behaviour::ControlCodeByNumber], 30 * SECOND),
        Scenario::Mixed => (MIXED.to_vec(), 400 * SECOND),
        Scenario::Large => {
            // About 2.3 records per health check (begin, end, rare misuse)
            // every 5 s over 10 minutes.
            let per_resource = 600 / 5 * 2 + 20;
            let n = (scale / per_resource).max(1) as usize;
            let b = (0..n)
                .map(|i| {
                    if i % 10 == 3 {
                        Behaviour::ControlCodeByNumber
                    } else {
                        Behaviour::Healthy
                    }
                })
                .collect();
            (b, 600 * SECOND)
        }
    };
    let fixed: Vec<Behaviour> = sim.fixed.iter().filter_map(|&s| Behaviour::of(s)).collect();
    let behaviours: Vec<Behaviour> = behaviours
        .into_iter()
        .map(|b| {
            if fixed.contains(&b) {
                Behaviour::Healthy
            } else {
                b
            }
        })
        .collect();
    let end = sim.at(duration);
    for (i, _) in behaviours.iter().enumerate() {
        sim.add_resource(format!("AppRes-{}", i + 1));
    }
    let n = behaviours.len();
    for (r, b) in behaviours.into_iter().enumerate() {
        let other = format!("AppRes-{}", (r + 1) % n + 1);
        resource(sim, r, b, &other, end, scenario == Scenario::Large);
    }
    end
}

/// Steps of a worker that brings its resource online properly.
fn good_worker<W: Write + Seek>(
    sim: &mut Sim<'_, W>,
    r: usize,
    target: &str,
    thorough: bool,
) -> Vec<(i64, Step)> {
    let mut s = vec![(0, Step::Status(r, "OnlinePending"))];
    s.extend(sim.api("ClusterRegSetValue", "Parameters\\LastOnline", Some(MS)));
    if thorough {
        // Calls only a worker thread may make.
        s.extend(sim.api("GetClusterResourceState", target, Some(2 * MS)));
        s.extend(sim.api("CLUSCTL_RESOURCE_GET_CLASS_INFO", target, Some(MS)));
        s.extend(sim.api("ResUtilGetResourceDependency", target, Some(MS)));
    }
    s.push((
        sim.rng.between(50 * MS, 200 * MS),
        Step::Status(r, "Online"),
    ));
    s.push((sim.rng.between(MS / 10, MS), Step::WorkerExit(r)));
    s
}

fn resource<W: Write + Seek>(
    sim: &mut Sim<'_, W>,
    r: usize,
    b: Behaviour,
    other: &str,
    end: i64,
    large: bool,
) {
    let jitter = sim.rng.between(0, 50 * MS);
    // Resources come online over the first 10 s.
    let online_at = sim.at(SECOND + (r % 100) as i64 * 100 * MS + jitter);
    match b {
        Behaviour::DoNotUseInOnline => {
            // Online makes the forbidden call inline and never returns.
            let inner = sim.api("OnlineClusterResource", other, None);
            sim.call_without_return(r, EntryPoint::Online, online_at, inner);
            let tid = Sim::<W>::rhs_thread(r);
            sim.plant(
                Rule::Hang,
                r,
                Some(EntryPoint::Online),
                None,
                tid,
                online_at,
            );
            let fire = online_at + DEADLOCK_TIMEOUT;
            sim.plant(
                Rule::DeadlockTimeout,
                r,
                Some(EntryPoint::Online),
                Some("OnlineClusterResource"),
                tid,
                online_at,
            );
            // Blocked from Online's begin until the monitor fires, and it
            // never returns.
            sim.planted_blocked_until(fire);
            let monitor = super::nodelog::MONITOR_TID;
            sim.plant(Rule::RhsRestart, r, None, None, monitor, fire + MS);
            sim.spawn(
                monitor,
                fire,
                vec![
                    (0, Step::DeadlockMonitor(r, EntryPoint::Online)),
                    (MS, Step::HandlingDeadlock(r)),
                    (5 * MS, Step::RhsExit(r)),
                ],
            );
        }
        Behaviour::PendingTimeout => {
            let mut body = vec![(0, Step::Status(r, "OnlinePending"))];
            body.extend(sim.api("ClusterRegSetValue", "Parameters\\LastOnline", Some(MS)));
            // Then waits on something that never comes.
            body.push((sim.rng.between(MS, 5 * MS), Step::Block));
            let create = vec![(sim.rng.between(MS / 10, MS), Step::CreateWorker(r, body))];
            sim.call(r, EntryPoint::Online, online_at, create, ERROR_IO_PENDING);
        }
        _ => {
            let body = good_worker(sim, r, other, b == Behaviour::CorrectWorker);
            let create = vec![(sim.rng.between(MS / 10, MS), Step::CreateWorker(r, body))];
            sim.call(r, EntryPoint::Online, online_at, create, ERROR_IO_PENDING);
            let checks_from = online_at + 2 * SECOND;
            let mut checks_until = end;
            if b == Behaviour::SomeOkFromOffline {
                let control_at = sim.at(20 * SECOND);
                let inner = sim.api("ClusterRegSetValue", "Parameters\\Setting", Some(MS));
                sim.call(
                    r,
                    EntryPoint::ResourceControl,
                    control_at,
                    inner,
                    ERROR_SUCCESS,
                );
                let offline_at = sim.at(40 * SECOND);
                let inner = sim.api(
                    "ClusterRegSetValue",
                    "Parameters\\LastOffline",
                    Some(2 * MS),
                );
                sim.call(r, EntryPoint::Offline, offline_at, inner, ERROR_SUCCESS);
                checks_until = offline_at - SECOND;
            }
            health_checks(sim, r, b, checks_from, checks_until, large);
        }
    }
}

/// The state of one resource's health checks: a script that runs one
/// check and schedules the next, so a long simulation holds one pending
/// check per resource rather than every check up front.
#[derive(Debug, Clone)]
pub(crate) struct Tick {
    r: usize,
    behaviour: Behaviour,
    large: bool,
    n: u32,
    at: i64,
    until: i64,
    next_is_alive: i64,
}

/// LooksAlive every 5 s and IsAlive every 60 s, with the behaviour's
/// planted misuse.
fn health_checks<W: Write + Seek>(
    sim: &mut Sim<'_, W>,
    r: usize,
    b: Behaviour,
    from: i64,
    until: i64,
    large: bool,
) {
    if from < until {
        let tick = Tick {
            r,
            behaviour: b,
            large,
            n: 0,
            at: from,
            until,
            next_is_alive: from + IS_ALIVE_INTERVAL,
        };
        sim.spawn(0, from, vec![(0, Step::Tick(tick))]);
    }
}

/// Runs one health check and schedules the next.
pub(super) fn tick<W: Write + Seek>(sim: &mut Sim<'_, W>, mut t: Tick) {
    let jitter = sim.rng.between(0, 20 * MS);
    let target = sim.resources[t.r].clone();
    if t.at >= t.next_is_alive {
        let inner = if t.behaviour == Behaviour::WorkerOnlyFromIsAlive {
            sim.api("GetClusterResourceState", &target, Some(3 * MS))
        } else {
            Vec::new()
        };
        sim.call(t.r, EntryPoint::IsAlive, t.at + jitter, inner, 1);
        t.next_is_alive += IS_ALIVE_INTERVAL;
    } else {
        // Every fourth check in the plain scenario; every 40th in large.
        let every = if t.large { 40 } else { 4 };
        let inner = if t.behaviour == Behaviour::ControlCodeByNumber && t.n % every == 1 {
            sim.api("0x0100000d", &target, Some(MS / 2))
        } else {
            Vec::new()
        };
        sim.call(t.r, EntryPoint::LooksAlive, t.at + jitter, inner, 1);
    }
    t.n += 1;
    t.at += LOOKS_ALIVE_INTERVAL;
    if t.at < t.until {
        let at = t.at;
        sim.spawn(0, at, vec![(0, Step::Tick(t))]);
    }
}
