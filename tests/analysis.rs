//! The correlation engine against the simulator's ground truth (every
//! bundled scenario, other seeds, the large scenario), hand-built edge
//! cases, and the real fixtures (no false findings).

mod common;

use std::io::Cursor;

use rhscope::analysis::{analyze_spans, analyze_trace, Analysis, AnalysisError, Config};
use rhscope::model::{
    EntryPoint, Evidence, Finding, Record, RecordKind, Rule, Severity, ThreadKind, UsageCode,
};
use rhscope::providers::usage::UsageTable;
use rhscope::providers::ProviderSet;
use rhscope::read::etl::{Location, Trace};
use rhscope::simulate::{simulate, GroundTruth, Scenario};
use rhscope::source::Pairer;

fn analyse(trace: &Trace) -> Vec<Finding> {
    let a = analyze_trace(
        trace,
        &ProviderSet::embedded(),
        &UsageTable::embedded(),
        &Config::default(),
        true,
    )
    .unwrap();
    assert_eq!(a.unmapped_errors, 0);
    a.findings.into_iter().map(|r| r.finding).collect()
}

#[test]
fn bundled_scenarios_give_exactly_the_planted_findings() {
    for s in common::SCENARIOS {
        let trace = Trace::open(common::traces(&format!("{s}.etl"))).unwrap();
        let truth: GroundTruth = serde_json::from_slice(
            &std::fs::read(common::traces(&format!("{s}.expected.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(analyse(&trace), truth.findings, "{s}");
    }
}

#[test]
fn other_seeds_and_scales_match_too() {
    for (scenario, seed, scale) in [
        (Scenario::Mixed, 7, 0),
        (Scenario::Mixed, 12345, 0),
        (Scenario::DoNotUseInOnline, 3, 0),
        (Scenario::PendingTimeout, 9, 0),
        (Scenario::Large, 5, 50_000),
    ] {
        let (out, truth) = simulate(scenario, seed, scale, Cursor::new(Vec::new())).unwrap();
        let trace = Trace::from_bytes(out.into_inner(), "sim.etl").unwrap();
        let found = analyse(&trace);
        assert!(!matches!(scenario, Scenario::Large) || found.len() > 20);
        assert_eq!(found, truth.findings, "{scenario:?} seed {seed}");
    }
}

#[test]
fn real_fixtures_have_no_resource_events_and_say_so() {
    for file in common::FIXTURES {
        let trace = Trace::open(common::data(file)).unwrap();
        let err = analyze_trace(
            &trace,
            &ProviderSet::embedded(),
            &UsageTable::embedded(),
            &Config::default(),
            false,
        )
        .unwrap_err();
        assert!(matches!(err, AnalysisError::NoResourceEvents(_)));
        assert!(err.to_string().contains("no entry-point events found: is the RhScope-ResourceDll or FailoverClustering provider in this trace?"), "{err}");
    }
}

fn rec(kind: RecordKind, ms: i64, tid: u32) -> Record {
    let mut r = Record::new(
        kind,
        ms * 1_000_000,
        Evidence::etl(
            Location {
                buffer_offset: 0,
                record_offset: 0,
                compressed: false,
            },
            ms * 1_000_000,
        ),
    );
    r.pid = Some(10);
    r.tid = Some(tid);
    r
}

fn ep(kind: RecordKind, ms: i64, tid: u32, res: &str, e: EntryPoint) -> Record {
    let mut r = rec(kind, ms, tid);
    r.resource = Some(res.into());
    r.entry_point = Some(e);
    r
}

fn api(kind: RecordKind, ms: i64, tid: u32, name: &str) -> Record {
    let mut r = rec(kind, ms, tid);
    r.api = Some(name.into());
    r
}

/// The analysis of `records`, paired in order, held to `cfg`.
fn analysed(records: impl IntoIterator<Item = Record>, cfg: &Config) -> Analysis {
    let mut p = Pairer::new();
    for r in records {
        p.push(r);
    }
    analyze_spans(p.finish(), &UsageTable::embedded(), cfg, "t")
}

fn run(records: Vec<Record>) -> Vec<Finding> {
    analysed(records, &Config::default())
        .findings
        .into_iter()
        .map(|r| r.finding)
        .collect()
}

use RecordKind::*;

#[test]
fn nesting_attributes_calls_to_the_innermost_open_entry_point() {
    // ResourceControl (fine for ClusterRegSetValue) calls back into an
    // Offline on the same thread, which makes the call: the Offline is the
    // context. After the Offline returns, the same call is fine again.
    let f = run(vec![
        ep(EntryPointBegin, 0, 1, "R", EntryPoint::ResourceControl),
        ep(EntryPointBegin, 1, 1, "R", EntryPoint::Offline),
        api(ApiCallBegin, 2, 1, "ClusterRegSetValue"),
        api(ApiCallEnd, 3, 1, "ClusterRegSetValue"),
        ep(EntryPointEnd, 4, 1, "R", EntryPoint::Offline),
        api(ApiCallBegin, 5, 1, "ClusterRegSetValue"),
        api(ApiCallEnd, 6, 1, "ClusterRegSetValue"),
        ep(EntryPointEnd, 7, 1, "R", EntryPoint::ResourceControl),
    ]);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].entry_point, f[0].duration_ns),
        (Some(EntryPoint::Offline), Some(1_000_000))
    );
    assert_eq!(f[0].begin.rfc3339(), "1970-01-01T00:00:00.002000000Z");
}

#[test]
fn calls_at_the_exact_span_boundary() {
    // A call logged at the same instant as the entry point's begin belongs
    // to it; one at the instant of its end, after the end record, does not.
    let f = run(vec![
        ep(EntryPointBegin, 10, 1, "R", EntryPoint::LooksAlive),
        api(ApiCallBegin, 10, 1, "GetClusterResourceState"),
        api(ApiCallEnd, 11, 1, "GetClusterResourceState"),
        ep(EntryPointEnd, 12, 1, "R", EntryPoint::LooksAlive),
        api(ApiCallBegin, 12, 1, "GetClusterResourceState"),
        api(ApiCallEnd, 13, 1, "GetClusterResourceState"),
    ]);
    let stamps: Vec<String> = f.iter().map(|x| x.begin.rfc3339()).collect();
    let mut got: Vec<_> = f
        .iter()
        .zip(&stamps)
        .map(|(x, t)| (t.as_str(), x.severity, x.thread_kind, x.entry_point))
        .collect();
    got.sort();
    let want = vec![
        (
            "1970-01-01T00:00:00.010000000Z",
            Severity::Error,
            Some(ThreadKind::RhsEntryPoint),
            Some(EntryPoint::LooksAlive),
        ),
        // After the end the thread is in no entry point rhscope knows of:
        // worker-only calls there are warnings.
        (
            "1970-01-01T00:00:00.012000000Z",
            Severity::Warning,
            Some(ThreadKind::Other),
            None,
        ),
    ];
    assert_eq!(got, want);
}

#[test]
fn missing_ends_unmatched_ends_and_thread_id_reuse() {
    let mut start = rec(ThreadStart, 50, 0);
    start.thread = Some(7);
    start.process = Some(10);
    let f = run(vec![
        // An end whose begin came before the trace started: ignored.
        ep(EntryPointEnd, 0, 7, "R", EntryPoint::IsAlive),
        ep(EntryPointBegin, 1, 7, "R", EntryPoint::Open),
        // Thread 7 exits and its id is reused by a new thread...
        start,
        // ...which calls a worker-only API outside any entry point.
        api(ApiCallBegin, 60, 7, "ClusterResourceEnum"),
        api(ApiCallEnd, 61, 7, "ClusterResourceEnum"),
        rec(RhsMessage, 2_000, 9),
    ]);
    let rules: Vec<(Rule, Option<EntryPoint>, Option<ThreadKind>)> = f
        .iter()
        .map(|x| (x.rule, x.entry_point, x.thread_kind))
        .collect();
    // The Open never returned (a hang to the trace end), but the call is not
    // attributed to it: the thread that was in Open is gone.
    assert_eq!(
        rules,
        vec![
            (Rule::ApiMisuse, None, Some(ThreadKind::Other)),
            (Rule::Hang, Some(EntryPoint::Open), None)
        ]
    );
    assert_eq!(f[1].duration_ns, Some(1_999_000_000));
}

#[test]
fn numeric_control_codes_and_workers() {
    let mut create = rec(WorkerCreate, 1, 1);
    create.thread = Some(2);
    create.resource = Some("R".into());
    let f = run(vec![
        ep(EntryPointBegin, 0, 1, "R", EntryPoint::Online),
        create,
        ep(EntryPointEnd, 2, 1, "R", EntryPoint::Online),
        // On the worker: worker-only calls are fine, by name or number...
        api(ApiCallBegin, 3, 2, "16777229"),
        api(ApiCallEnd, 4, 2, "16777229"),
        // ...do-not-use calls are not.
        api(ApiCallBegin, 5, 2, "MoveClusterGroup"),
        api(ApiCallEnd, 6, 2, "MoveClusterGroup"),
        ep(EntryPointBegin, 7, 1, "R", EntryPoint::IsAlive),
        api(ApiCallBegin, 8, 1, "0x0100000D"),
        api(ApiCallEnd, 9, 1, "0x0100000D"),
        ep(EntryPointEnd, 10, 1, "R", EntryPoint::IsAlive),
    ]);
    type Row = (
        Option<String>,
        Option<UsageCode>,
        Option<ThreadKind>,
        Option<String>,
    );
    let got: Vec<Row> = f
        .iter()
        .map(|x| (x.api.clone(), x.usage, x.thread_kind, x.resource.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                Some("MoveClusterGroup".into()),
                Some(UsageCode::DoNotUse),
                Some(ThreadKind::ClusterWorker),
                Some("R".into())
            ),
            (
                Some("CLUSCTL_RESOURCE_GET_CLASS_INFO".into()),
                Some(UsageCode::WorkerThreadOnly),
                Some(ThreadKind::RhsEntryPoint),
                Some("R".into())
            ),
        ]
    );
}

#[test]
fn budgets_make_slow_entry_points_warnings() {
    let recs = || {
        vec![
            ep(EntryPointBegin, 0, 1, "R", EntryPoint::IsAlive),
            ep(EntryPointEnd, 400, 1, "R", EntryPoint::IsAlive),
        ]
    };
    let f = run(recs());
    assert_eq!(
        (f[0].rule, f[0].severity, f[0].duration_ns),
        (Rule::SlowEntryPoint, Severity::Warning, Some(400_000_000))
    );
    let mut cfg = Config::default();
    cfg.add_budget("IsAlive=500").unwrap();
    assert!(analysed(recs(), &cfg).findings.is_empty());
    assert!(cfg
        .add_budget("Contoso App/LooksAlive=x")
        .unwrap_err()
        .contains("not a whole number"));
    assert!(cfg
        .add_budget("Startup=5")
        .unwrap_err()
        .contains("unknown entry point"));
}

fn status(ms: i64, tid: u32, res: &str, state: &str) -> Record {
    let mut r = rec(ResourceState, ms, tid);
    r.resource = Some(res.into());
    r.state = Some(state.into());
    r
}

#[test]
fn a_v2_entry_point_is_tied_to_rhs_v1_call_names() {
    // OnlineV2 blocks in GetClusterResourceState; RHS's deadlock monitor
    // names the call ONLINERESOURCE (Online) from its own thread.
    let mut deadlock = rec(DeadlockTimeout, 300_100, 99);
    deadlock.resource = Some("R".into());
    deadlock.entry_point = Some("ONLINERESOURCE".parse().unwrap());
    let f = run(vec![
        ep(EntryPointBegin, 100, 5, "R", EntryPoint::OnlineV2),
        status(101, 5, "R", "OnlinePending"),
        api(ApiCallBegin, 102, 5, "GetClusterResourceState"),
        deadlock,
    ]);
    let d = f.iter().find(|x| x.rule == Rule::DeadlockTimeout).unwrap();
    assert_eq!(d.entry_point, Some(EntryPoint::OnlineV2));
    assert_eq!(d.api.as_deref(), Some("GetClusterResourceState"));
    assert_eq!((d.pid, d.tid), (10, 5));
    assert_eq!(d.begin.ns(), 100_000_000);
    assert_eq!(d.duration_ns, Some(300_000_000_000));
    assert!(d.never_returned);
    // One naming across rules: the pending timeout and the misuse say
    // OnlineV2 too.
    let p = f.iter().find(|x| x.rule == Rule::PendingTimeout).unwrap();
    assert_eq!(p.entry_point, Some(EntryPoint::OnlineV2));
    let m = f.iter().find(|x| x.rule == Rule::ApiMisuse).unwrap();
    assert_eq!(m.entry_point, Some(EntryPoint::OnlineV2));
}

#[test]
fn a_worker_that_logs_before_its_creator_announces_it_is_a_worker() {
    let create = |ms: i64| {
        let mut c = rec(WorkerCreate, ms, 1);
        c.thread = Some(2);
        c.resource = Some("R".into());
        c
    };
    let calls = |at: i64| {
        vec![
            api(ApiCallBegin, at, 2, "ClusterResourceEnum"),
            api(ApiCallEnd, at + 1, 2, "ClusterResourceEnum"),
        ]
    };
    let online = |ms| ep(EntryPointBegin, ms, 1, "R", EntryPoint::Online);
    let online_end = |ms| ep(EntryPointEnd, ms, 1, "R", EntryPoint::Online);
    // The worker's first call lands 15 us... here 1 ms... before its
    // WorkerCreate is written: still a worker, no warning.
    let mut race = vec![online(0)];
    race.extend(calls(10));
    race.extend([create(11), online_end(12)]);
    assert_eq!(run(race), vec![]);
    // And in order, as before.
    let mut ordered = vec![online(0), create(9)];
    ordered.extend(calls(10));
    ordered.push(online_end(12));
    assert_eq!(run(ordered), vec![]);
    // A thread nobody announces stays "other": warned.
    let mut other = vec![online(0), online_end(1)];
    other.extend(calls(10));
    let f = run(other);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].severity, f[0].thread_kind),
        (Severity::Warning, Some(ThreadKind::Other))
    );
}

#[test]
fn a_lost_entry_point_end_is_no_hang() {
    let a = analysed(
        [
            // IsAlive's end is lost; 34 s later the thread runs LooksAlive.
            ep(EntryPointBegin, 0, 3, "R", EntryPoint::IsAlive),
            ep(EntryPointBegin, 34_000, 3, "R", EntryPoint::LooksAlive),
            ep(EntryPointEnd, 34_001, 3, "R", EntryPoint::LooksAlive),
            rec(RhsMessage, 60_000, 9),
        ],
        &Config::default(),
    );
    assert!(a.findings.is_empty(), "{:?}", a.findings);
    assert_eq!(a.lost_ends, 1);
    let lost = &a.spans.entries[0];
    assert_eq!(
        (lost.end_ns(), lost.end_lost_ns()),
        (None, Some(34_000_000_000))
    );
    assert_eq!(a.entries[0].duration.ns(), None);
    // Its figures count it, with no duration to speak of: neither in the
    // total nor in the quantiles.
    let figures: Vec<_> = a
        .by_entry_point
        .iter()
        .map(|g| {
            (
                g.key.as_str(),
                g.count,
                g.unknown,
                g.unreturned,
                g.total_ns,
                g.p95_ns,
            )
        })
        .collect();
    assert_eq!(
        figures,
        vec![
            ("R LooksAlive", 1, 0, 0, 1_000_000, 1_000_000),
            ("R IsAlive", 1, 1, 0, 0, 0)
        ]
    );
    // A thread stuck in its entry point (nothing after it) still hangs.
    let f = run(vec![
        ep(EntryPointBegin, 0, 3, "R", EntryPoint::IsAlive),
        rec(RhsMessage, 60_000, 9),
    ]);
    assert_eq!(f[0].rule, Rule::Hang);
    assert!(f[0].never_returned);
}

#[test]
fn a_joined_entry_point_is_judged_by_what_its_thread_began_after_it() {
    let a = analysed(
        [
            // RCM issues Online; meanwhile thread 3 runs R2's IsAlive (a span
            // of a higher id); then the DLL's Online begins there and joins
            // RCM's span, and never returns.
            ep(CallIssued, 0, 0, "R", EntryPoint::Online),
            ep(EntryPointBegin, 1, 3, "R2", EntryPoint::IsAlive),
            ep(EntryPointEnd, 2, 3, "R2", EntryPoint::IsAlive),
            ep(EntryPointBegin, 5, 3, "R", EntryPoint::Online),
            rec(RhsMessage, 600_000, 9),
        ],
        &Config::default(),
    );
    // IsAlive began before Online did: it says nothing of Online's end,
    // which is not lost (it was, ended 4 ms before it began, when every
    // begin of the thread counted).
    let online = &a.spans.entries[0];
    assert_eq!(
        (online.entry_point, online.begin_ns, online.tid),
        (EntryPoint::Online, 5_000_000, 3)
    );
    assert_eq!((online.end_ns(), online.end_lost_ns()), (None, None));
    assert_eq!(a.lost_ends, 0);
    assert_eq!(a.entries[0].duration.ns(), Some(599_995_000_000));
    assert!(a.entries[0].duration.never_returned());
}

#[test]
fn a_health_check_that_failed_has_ended_and_is_not_lost() {
    let a = analysed(
        [
            // The DLL's IsAlive begins; RHS logs it failed (its end); the DLL
            // logs no end of its own; the thread goes on to LooksAlive.
            ep(EntryPointBegin, 0, 3, "R", EntryPoint::IsAlive),
            ep(HealthCheckFailed, 1, 3, "R", EntryPoint::IsAlive),
            ep(EntryPointBegin, 5, 3, "R", EntryPoint::LooksAlive),
            ep(EntryPointEnd, 6, 3, "R", EntryPoint::LooksAlive),
            rec(RhsMessage, 60_000, 9),
        ],
        &Config::default(),
    );
    let is_alive = &a.spans.entries[0];
    assert_eq!(is_alive.entry_point, EntryPoint::IsAlive);
    assert!(is_alive.failed);
    assert_eq!(
        (is_alive.end_ns(), is_alive.end_lost_ns()),
        (Some(1_000_000), None)
    );
    assert_eq!(a.lost_ends, 0);
    assert_eq!(a.entries[0].duration.ns(), Some(1_000_000));
}
