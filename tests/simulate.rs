//! The simulator: bundled traces regenerate bit for bit, read back with the
//! project's reader with exact counts, and map to model records through the
//! shipped provider definitions.

mod common;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::process::Command;

use rhscope::model::{EntryPoint, RecordKind, Rule};
use rhscope::providers::ProviderSet;
use rhscope::read::etl::{Trace, TraceStats};
use rhscope::simulate::{simulate, GroundTruth, Scenario};

use common::traces;

fn run(scenario: Scenario, seed: u64, scale: u64) -> (Vec<u8>, GroundTruth) {
    let (out, truth) = simulate(scenario, seed, scale, Cursor::new(Vec::new())).unwrap();
    (out.into_inner(), truth)
}

#[test]
fn bundled_traces_regenerate_bit_identically() {
    for name in common::SCENARIOS {
        let (bytes, truth) = run(name.parse().unwrap(), 1, 1_000_000);
        let committed = std::fs::read(traces(&format!("{name}.etl"))).unwrap();
        assert!(
            bytes == committed,
            "{name}.etl differs from a fresh simulation"
        );
        let json: GroundTruth = serde_json::from_slice(
            &std::fs::read(traces(&format!("{name}.expected.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(json, truth, "{name}.expected.json");
    }
}

#[test]
fn the_bundled_uninstrumented_node_regenerates_bit_identically() {
    let mut log = Vec::new();
    let mut symbols = Vec::new();
    let opts = rhscope::simulate::Options {
        seed: 1,
        scale: 1_000_000,
        cluster_log: Some(&mut log),
        fixed: Vec::new(),
        uninstrumented: true,
        symbols: Some(&mut symbols),
    };
    let (etl, truth) =
        rhscope::simulate::simulate_with(Scenario::Mixed, opts, Cursor::new(Vec::new())).unwrap();
    let file = |name: &str| std::fs::read(traces(&format!("uninstrumented/{name}"))).unwrap();
    assert!(etl.into_inner() == file("SIM-NODE1.etl"));
    assert!(log == file("SIM-NODE1_cluster.log"));
    let json: GroundTruth = serde_json::from_slice(&file("SIM-NODE1.expected.json")).unwrap();
    assert_eq!(json, truth);
    // A kernel trace with stacks and image identities: none of the DLL's
    // events, none of the cluster's.
    let trace = Trace::open(traces("uninstrumented/SIM-NODE1.etl")).unwrap();
    let stats = TraceStats::collect(&trace, true, |_, _| {}).unwrap();
    let mut names: Vec<&str> = stats
        .providers
        .iter()
        .map(|p| p.name.as_deref().unwrap_or("?"))
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "Kernel/EventTrace",
            "Kernel/Image",
            "Kernel/Process",
            "Kernel/StackWalk",
            "Kernel/Thread",
            "KernelTraceControl"
        ]
    );
    assert_eq!(truth.cluster_log.as_ref().map(Vec::len), Some(6));
    // And the symbols beside it.
    for (rel, text) in &symbols {
        assert_eq!(
            &std::fs::read_to_string(traces(&format!("uninstrumented/SIM-NODE1.symbols/{rel}")))
                .unwrap(),
            text
        );
    }
    assert_eq!(symbols.len(), 7);
}

#[test]
fn the_cli_writes_the_same_files() {
    let dir = std::env::temp_dir().join(format!("rhscope-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("x.etl");
    let o = Command::new(env!("CARGO_BIN_EXE_rhscope"))
        .args([
            "simulate",
            "pending-timeout",
            "--seed",
            "1",
            "-o",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(traces("pending-timeout.etl")).unwrap()
    );
    assert_eq!(
        std::fs::read(dir.join("x.expected.json")).unwrap(),
        std::fs::read(traces("pending-timeout.expected.json")).unwrap()
    );

    let bad = Command::new(env!("CARGO_BIN_EXE_rhscope"))
        .args(["simulate", "meltdown", "-o", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("unknown scenario \"meltdown\" (known: healthy,"),
        "{err}"
    );
}

#[test]
fn simulated_traces_read_back_with_exact_counts() {
    for name in common::SCENARIOS {
        let trace = Trace::open(traces(&format!("{name}.etl"))).unwrap();
        let truth: GroundTruth = serde_json::from_slice(
            &std::fs::read(traces(&format!("{name}.expected.json"))).unwrap(),
        )
        .unwrap();
        let stats = TraceStats::collect(&trace, true, |_, _| {}).unwrap();
        assert_eq!(stats.records, truth.records, "{name}");
        assert_eq!(stats.first.as_deref(), Some(truth.start.as_str()), "{name}");
        assert_eq!(stats.last.as_deref(), Some(truth.end.as_str()), "{name}");
        assert!(stats.skipped.is_empty());
    }
    // Other seeds and a compressed-size run of the large scenario.
    for seed in [2, 3, 99] {
        let (bytes, truth) = run(Scenario::Mixed, seed, 0);
        let t = Trace::from_bytes(bytes, "mixed.etl").unwrap();
        assert_eq!(
            TraceStats::collect(&t, true, |_, _| {}).unwrap().records,
            truth.records,
            "seed {seed}"
        );
    }
    let (bytes, truth) = run(Scenario::Large, 7, 20_000);
    let t = Trace::from_bytes(bytes, "large.etl").unwrap();
    assert_eq!(
        TraceStats::collect(&t, true, |_, _| {}).unwrap().records,
        truth.records
    );
    assert!(
        (15_000..30_000).contains(&truth.records),
        "{}",
        truth.records
    );
}

/// Model records of a trace, by kind.
fn model(bytes: Vec<u8>) -> BTreeMap<RecordKind, Vec<rhscope::model::Record>> {
    let providers = ProviderSet::embedded();
    let trace = Trace::from_bytes(bytes, "sim.etl").unwrap();
    let mut events = trace.events();
    let mut out: BTreeMap<RecordKind, Vec<_>> = BTreeMap::new();
    while let Some(ev) = events.next_event() {
        let ev = ev.unwrap();
        if let Some(r) = providers.map(&ev) {
            let r = r.unwrap_or_else(|e| panic!("mapping failed: {e}"));
            out.entry(r.kind).or_default().push(r);
        }
    }
    out
}

#[test]
fn provider_definitions_map_simulated_events() {
    let (bytes, _) = run(Scenario::DoNotUseInOnline, 1, 0);
    let m = model(bytes);
    let count = |k| m.get(&k).map_or(0, Vec::len);
    // Online of AppRes-1 never returns: one more begin than end.
    assert_eq!(
        count(RecordKind::EntryPointBegin),
        count(RecordKind::EntryPointEnd) + 1
    );
    let online = &m[&RecordKind::EntryPointBegin][0];
    assert_eq!(
        (online.resource.as_deref(), online.entry_point, online.tid),
        (Some("AppRes-1"), Some(EntryPoint::Online), Some(3000))
    );
    assert_eq!(online.resource_type.as_deref(), Some("Contoso App"));
    let api = &m[&RecordKind::ApiCallBegin][0];
    assert_eq!(
        (api.api.as_deref(), api.target.as_deref()),
        (Some("OnlineClusterResource"), Some("AppRes-2"))
    );
    // The FailoverClustering messages, through the patterns.
    let dl = &m[&RecordKind::DeadlockTimeout];
    assert_eq!(dl.len(), 1);
    assert_eq!(
        (dl[0].resource.as_deref(), dl[0].entry_point),
        (Some("AppRes-1"), Some(EntryPoint::Online))
    );
    assert_eq!(count(RecordKind::RhsRestart), 1);
    assert_eq!(count(RecordKind::ProcessEnd), 1);
    // Kernel records: rundown of RHS threads, workers created and ended,
    // context switches with their wait reason.
    assert_eq!(count(RecordKind::ProcessStart), 1);
    assert_eq!(
        m[&RecordKind::WorkerCreate].len(),
        count(RecordKind::ThreadStart) - 2
    );
    let cs = &m[&RecordKind::ContextSwitch];
    assert!(cs
        .iter()
        .any(|c| c.old_thread == Some(3000) && c.wait_reason == Some(6)));
    assert_eq!(
        count(RecordKind::ReadyThread),
        cs.iter().filter(|c| c.old_thread == Some(0)).count()
    );
    let statuses: Vec<&str> = m[&RecordKind::ResourceState]
        .iter()
        .filter_map(|r| r.state.as_deref())
        .collect();
    assert_eq!(statuses, ["OnlinePending", "Online"]);
}

#[test]
fn ground_truth_of_the_scenarios() {
    let rules = |s: Scenario| -> Vec<(Rule, Option<String>, Option<EntryPoint>)> {
        run(s, 1, 0)
            .1
            .findings
            .into_iter()
            .map(|f| (f.rule, f.api, f.entry_point))
            .collect()
    };
    assert_eq!(rules(Scenario::Healthy), vec![]);
    assert_eq!(rules(Scenario::CorrectWorker), vec![]);
    assert_eq!(
        rules(Scenario::WorkerOnlyFromIsAlive),
        vec![(
            Rule::ApiMisuse,
            Some("GetClusterResourceState".into()),
            Some(EntryPoint::IsAlive)
        )]
    );
    // ClusterRegSetValue is planted in ResourceControl too, where it is fine.
    assert_eq!(
        rules(Scenario::SomeOkFromOffline),
        vec![(
            Rule::ApiMisuse,
            Some("ClusterRegSetValue".into()),
            Some(EntryPoint::Offline)
        )]
    );
    assert_eq!(
        rules(Scenario::PendingTimeout),
        vec![(Rule::PendingTimeout, None, Some(EntryPoint::Online))]
    );
    let by_number = rules(Scenario::ControlCodeByNumber);
    assert!(!by_number.is_empty());
    assert!(by_number.iter().all(|f| *f
        == (
            Rule::ApiMisuse,
            Some("CLUSCTL_RESOURCE_GET_CLASS_INFO".into()),
            Some(EntryPoint::LooksAlive)
        )));
    let dl = rules(Scenario::DoNotUseInOnline);
    assert_eq!(
        dl,
        vec![
            (
                Rule::ApiMisuse,
                Some("OnlineClusterResource".into()),
                Some(EntryPoint::Online)
            ),
            (Rule::Hang, None, Some(EntryPoint::Online)),
            (
                Rule::DeadlockTimeout,
                Some("OnlineClusterResource".into()),
                Some(EntryPoint::Online)
            ),
            (Rule::RhsRestart, None, None),
        ]
    );
}

#[test]
fn the_truth_of_large_holds_where_threads_are_many() {
    // 800 resources: their RHS threads' ids run past where workers' ids
    // begin, so a worker given a live RHS thread's id would show as hangs
    // and misuse the truth does not have.
    let (bytes, truth) = run(Scenario::Large, 1, 800 * 260);
    assert_eq!(truth.resources.len(), 800);
    let trace = Trace::from_bytes(bytes, "large.etl").unwrap();
    let a = rhscope::analysis::analyze_trace(
        &trace,
        &ProviderSet::embedded(),
        &rhscope::providers::usage::UsageTable::embedded(),
        &rhscope::analysis::Config::default(),
        true,
    )
    .unwrap();
    let mut got: Vec<_> = a.findings.into_iter().map(|r| r.finding).collect();
    got.sort();
    assert_eq!(got.len(), truth.findings.len());
    assert_eq!(got, truth.findings);
}
