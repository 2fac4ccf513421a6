//! Live capture's OS-neutral parts, with events built from real and
//! simulated traces: the EVENT_RECORD adapter decodes and maps exactly as
//! the file reader; live rules fire when they can and end in the offline
//! analysis; the event loop; the session plan and its errors; decoder
//! comparison; the commands on a machine without ETW.

mod common;

use std::sync::mpsc::channel;

use rhscope::analysis::live::{Live, LiveFinding};
use rhscope::analysis::{analyze_trace, Config};
use rhscope::capture::compare::{compare, DecodedEvent};
use rhscope::capture::plan::{CaptureError, Enable, SessionPlan};
use rhscope::capture::{drive, observe, DriveCounts, RawEvent};
use rhscope::model::{Evidence, Rule, Severity};
use rhscope::providers::manifest::ManifestSet;
use rhscope::providers::usage::UsageTable;
use rhscope::providers::ProviderSet;
use rhscope::read::etl::header::FILETIME_UNIX_EPOCH;
use rhscope::read::etl::{EventRow, Guid, Trace};
use rhscope::source::Observed;

fn filetime(ns: i64) -> i64 {
    ns.div_euclid(100) + FILETIME_UNIX_EPOCH
}

/// Every event of a trace as ETW would hand it to a live consumer.
fn raw_events(trace: &Trace) -> Vec<RawEvent> {
    let mut out = Vec::new();
    let mut events = trace.events();
    while let Some(ev) = events.next_event() {
        let ev = ev.unwrap();
        out.push(RawEvent::from_event(
            out.len() as u64 + 1,
            &ev,
            filetime(ev.time_ns),
        ));
    }
    out
}

#[test]
fn adapter_decodes_and_maps_as_the_file_reader() {
    let providers = ProviderSet::embedded();
    let manifests = ManifestSet::embedded();
    for path in [
        common::traces("mixed.etl"),
        common::data("AMSITrace.etl"),
        common::data("primitive-types.etl"),
        common::data("net.4.5.2.x86.etl"),
        common::data("powershell.etl"),
    ] {
        let trace = Trace::open(&path).unwrap();
        let raws = raw_events(&trace);
        let mut events = trace.events();
        let (mut i, mut decoded) = (0, 0);
        while let Some(ev) = events.next_event() {
            let ev = ev.unwrap();
            let raw = &raws[i];
            i += 1;
            let again = raw.event().unwrap();
            // Times come through a FILETIME: 100 ns, as ETW gives them.
            assert_eq!(again.time_ns, ev.time_ns.div_euclid(100) * 100);
            let (mut a, mut b) = (EventRow::new(&ev), EventRow::new(&again));
            manifests.fill_row(&ev, &mut a);
            manifests.fill_row(&again, &mut b);
            assert_eq!(
                (
                    &a.event,
                    &a.fields,
                    &a.decode_error,
                    a.provider,
                    a.id,
                    a.pid,
                    a.tid
                ),
                (
                    &b.event,
                    &b.fields,
                    &b.decode_error,
                    b.provider,
                    b.id,
                    b.pid,
                    b.tid
                ),
                "{}: event {i}",
                path.display()
            );
            decoded += usize::from(a.fields.is_some());
            let (m1, m2) = (providers.map(&ev), providers.map(&again));
            match (m1, m2) {
                (Some(Ok(mut x)), Some(Ok(y))) => {
                    x.time_ns = y.time_ns;
                    x.evidence = y.evidence;
                    assert_eq!(x, y);
                }
                (x, y) => assert_eq!(x.is_some(), y.is_some(), "{}: event {i}", path.display()),
            }
        }
        assert_eq!(i, raws.len());
        assert!(decoded > 0, "{}", path.display());
    }
}

#[test]
fn observe_gives_live_evidence() {
    let trace = Trace::open(common::traces("do-not-use-in-online.etl")).unwrap();
    let raws = raw_events(&trace);
    let providers = ProviderSet::embedded();
    let first = raws
        .iter()
        .find_map(|r| match observe(r, &providers) {
            Observed::Record(rec) => Some((r.sequence, rec)),
            _ => None,
        })
        .unwrap();
    assert_eq!(first.1.evidence, Evidence::Live { sequence: first.0 });
}

/// Replays a scenario as a live session: events in order, the clock
/// ticking every second of trace time between them.
fn replay_live(name: &str) -> (Vec<(i64, LiveFinding)>, rhscope::analysis::Analysis) {
    let trace = Trace::open(common::traces(name)).unwrap();
    let providers = ProviderSet::embedded();
    let table = UsageTable::embedded();
    let mut live = Live::new(&table, Config::default());
    let mut got = Vec::new();
    let mut clock = i64::MIN;
    for raw in raw_events(&trace) {
        let t = raw.time_ns();
        if clock != i64::MIN {
            while clock + 1_000_000_000 < t {
                clock += 1_000_000_000;
                got.extend(live.tick(clock).into_iter().map(|f| (clock, f)));
            }
        }
        clock = clock.max(t);
        got.extend(
            live.push(observe(&raw, &providers))
                .into_iter()
                .map(|f| (t, f)),
        );
    }
    (got, live.finish(name))
}

#[test]
fn live_rules_fire_as_soon_as_they_can() {
    let (got, analysis) = replay_live("do-not-use-in-online.etl");
    let rules: Vec<(Rule, Severity, Option<&str>)> = got
        .iter()
        .map(|(_, f)| {
            (
                f.finding.rule,
                f.finding.severity,
                f.finding.resource.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            (Rule::ApiMisuse, Severity::Error, Some("AppRes-1")),
            (Rule::SlowEntryPoint, Severity::Warning, Some("AppRes-1")),
            (Rule::DeadlockTimeout, Severity::Error, Some("AppRes-1")),
            (Rule::RhsRestart, Severity::Error, Some("AppRes-1")),
        ]
    );
    let ns = |t: &rhscope::model::Timestamp| t.ns();
    let (misuse, slow, deadlock) = (&got[0].1, &got[1].1, &got[2].1);
    // The forbidden call is reported when it begins, 300 s before RHS
    // notices; the entry point when it passes its 300 ms budget.
    assert_eq!(misuse.at, misuse.finding.begin);
    assert_eq!(misuse.finding.api.as_deref(), Some("OnlineClusterResource"));
    let over = ns(&slow.at) - ns(&slow.finding.begin);
    assert!((300_000_000..1_400_000_000).contains(&over), "{over}");
    assert!(
        slow.note.starts_with("still running after"),
        "{}",
        slow.note
    );
    assert!(
        slow.note.contains("in OnlineClusterResource"),
        "{}",
        slow.note
    );
    assert!(ns(&deadlock.at) - ns(&misuse.at) > 299_000_000_000);
    assert_eq!(
        deadlock.finding.api.as_deref(),
        Some("OnlineClusterResource")
    );
    assert_eq!(deadlock.finding.begin, slow.finding.begin);
    // At the end, the full analysis is the offline one.
    let trace = Trace::open(common::traces("do-not-use-in-online.etl")).unwrap();
    let offline = analyze_trace(
        &trace,
        &ProviderSet::embedded(),
        &UsageTable::embedded(),
        &Config::default(),
        true,
    )
    .unwrap();
    let strip = |a: &rhscope::analysis::Analysis| -> Vec<_> {
        a.findings
            .iter()
            .map(|r| {
                (
                    r.finding.rule,
                    r.finding.resource.clone(),
                    r.finding.api.clone(),
                    r.finding.tid,
                )
            })
            .collect()
    };
    assert_eq!(strip(&analysis), strip(&offline));
    assert!(analysis.findings.iter().all(|r| r
        .evidence
        .iter()
        .all(|e| matches!(e, Evidence::Live { .. }))));
}

#[test]
fn live_pending_timeout_and_quiet_scenarios() {
    let (got, _) = replay_live("pending-timeout.etl");
    let pending: Vec<_> = got
        .iter()
        .filter(|(_, f)| f.finding.rule == Rule::PendingTimeout)
        .collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].1.finding.resource.as_deref(), Some("AppRes-1"));
    assert!(
        pending[0].1.note.starts_with("OnlinePending for 18"),
        "{}",
        pending[0].1.note
    );
    let (got, _) = replay_live("correct-worker.etl");
    assert!(got.is_empty(), "{got:?}");
    let (got, _) = replay_live("healthy.etl");
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn the_loop_reports_then_drains() {
    let trace = Trace::open(common::traces("worker-only-from-isalive.etl")).unwrap();
    let raws = raw_events(&trace);
    let n = raws.len() as u64;
    let (tx, rx) = channel();
    let feeder = std::thread::spawn(move || {
        for r in raws {
            tx.send(r).unwrap();
        }
    });
    let providers = ProviderSet::embedded();
    let table = UsageTable::embedded();
    let mut live = Live::new(&table, Config::default());
    let mut counts = DriveCounts::default();
    let mut lines = Vec::new();
    drive(
        &rx,
        &providers,
        &mut live,
        &mut counts,
        || false,
        || 0,
        |f| lines.push(f.to_string()),
    );
    feeder.join().unwrap();
    assert_eq!(counts.events, n);
    assert_eq!(counts.unmapped, 0);
    assert_eq!(
        lines,
        ["2026-01-01T00:01:03.041419400Z  error   api-misuse        AppRes-1 IsAlive GetClusterResourceState (worker-thread-only) pid 2000 tid 3000: call began"]
    );
    // A stop that fires at once returns before taking anything.
    let (_tx, rx) = channel::<RawEvent>();
    let mut counts = DriveCounts::default();
    drive(
        &rx,
        &providers,
        &mut live,
        &mut counts,
        || true,
        || 0,
        |_| {},
    );
    assert_eq!(counts.events, 0);
}

#[test]
fn the_plan_follows_the_definitions() {
    let plan = SessionPlan::new(&ProviderSet::embedded(), "rhscope", true);
    let names: Vec<(&str, String, u8)> = plan
        .providers
        .iter()
        .map(|p| (p.name.as_str(), p.guid.to_string(), p.level))
        .collect();
    assert_eq!(
        names,
        [
            (
                "RhScope-ResourceDll",
                "6766fe81-7ddd-5540-4105-7584ba5c10dc".to_string(),
                5
            ),
            (
                "Microsoft-Windows-FailoverClustering",
                "baf908ea-3421-4ca9-9b84-6689b8c6f85f".to_string(),
                5
            ),
        ]
    );
    // Process, thread, image load, context switch, dispatcher.
    assert_eq!(plan.kernel_flags, Some(0x817));
    // The equivalent xperf command asks for the same stacks and merges.
    let xperf = plan.xperf("c:\\case\\node1.etl");
    assert_eq!(
        xperf[0],
        "xperf -on PROC_THREAD+LOADER+CSWITCH+DISPATCHER -stackwalk CSwitch+ReadyThread+0x0504 -BufferSize 1024 -MinBuffers 64 -MaxBuffers 256 -f c:\\case\\node1.kernel.etl -start rhscope -on {6766fe81-7ddd-5540-4105-7584ba5c10dc}:0x0:5+{baf908ea-3421-4ca9-9b84-6689b8c6f85f}:0x0:5 -f c:\\case\\node1.etl"
    );
    assert_eq!(
        xperf[2],
        "xperf -stop rhscope -stop -d c:\\case\\node1.merged.etl"
    );
    assert_eq!(
        SessionPlan::new(&ProviderSet::embedded(), "x", false).kernel_flags,
        None
    );
    let p = Enable {
        name: "Contoso".into(),
        guid: Guid::NIL,
        level: 5,
        keywords: 0,
    };
    assert_eq!(CaptureError::from_os(5, "start", "rhscope", None).to_string(), "capture needs Administrator or Performance Log Users rights (start the shell as Administrator)");
    assert_eq!(CaptureError::from_os(183, "start", "rhscope", None).to_string(), "an ETW session named \"rhscope\" already exists (another capture?); stop it with `logman stop \"rhscope\" -ets` or rerun with --force");
    assert!(CaptureError::from_os(4200, "enable", "rhscope", Some(&p))
        .to_string()
        .starts_with("provider Contoso {00000000-0000-0000-0000-000000000000} is not registered"));
    assert_eq!(
        CaptureError::from_os(87, "start", "rhscope", None).to_string(),
        "start: Windows error 87"
    );
}

#[test]
fn decoder_comparison_finds_each_difference() {
    let trace = Trace::open(common::data("gcevents.etl")).unwrap();
    let manifests = ManifestSet::embedded();
    let mut native = Vec::new();
    let mut events = trace.events();
    while let Some(ev) = events.next_event() {
        let ev = ev.unwrap();
        native.push(DecodedEvent::native(&ev, filetime(ev.time_ns), &manifests));
    }
    // Windows' view: same events, clock one tick off, numbers in hex...
    let mut windows: Vec<DecodedEvent> = native.clone();
    for w in &mut windows {
        w.timestamp += 1;
        for (_, v) in &mut w.fields {
            if let Ok(n) = v.parse::<u64>() {
                *v = format!("{n:#x}");
            }
        }
    }
    let same = compare(&native, &windows);
    assert_eq!((same.paired, same.disagreements.len()), (71, 0));
    assert_eq!(same.fields_compared, 306);
    // ...then one field decoded differently and one event missing.
    let at = windows
        .iter()
        .position(|w| w.fields.iter().any(|(k, _)| k == "TypeName"))
        .unwrap();
    for (k, v) in &mut windows[at].fields {
        if k == "TypeName" {
            *v = "System.Object".into();
        }
    }
    windows.remove(0);
    let c = compare(&native, &windows);
    let what: Vec<(&str, &str, &str)> = c
        .disagreements
        .iter()
        .map(|d| (d.what.as_str(), d.native.as_str(), d.windows.as_str()))
        .collect();
    assert_eq!(
        what,
        [
            ("event", "decoded", "-"),
            ("TypeName", "System.String", "System.Object")
        ]
    );
    assert_eq!(c.paired, 70);
}

#[test]
fn commands_without_etw() {
    let run = common::rhscope;
    let o = run(&[
        "capture",
        "-o",
        "node.etl",
        "--kernel",
        "--dry-run",
        "--duration",
        "15m",
    ]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(
            "  RhScope-ResourceDll {6766fe81-7ddd-5540-4105-7584ba5c10dc} level 5 keywords 0x0\n"
        ),
        "{out}"
    );
    assert!(out.contains("stop after 900 s (or at Ctrl-C)"), "{out}");
    assert!(
        out.contains(
            "logman update trace rhscope -p {baf908ea-3421-4ca9-9b84-6689b8c6f85f} 0x0 5 -ets"
        ),
        "{out}"
    );
    assert!(out.contains("-o node.kernel.etl -ets"), "{out}");
    if cfg!(not(feature = "etw")) {
        for args in [
            &["capture", "-o", "node.etl"][..],
            &[
                "compare-decoders",
                common::traces("mixed.etl").to_str().unwrap(),
            ][..],
            &[
                "analyze",
                "--via-tdh",
                common::traces("mixed.etl").to_str().unwrap(),
            ][..],
        ] {
            let o = run(args);
            assert_eq!(o.status.code(), Some(2));
            assert_eq!(
                String::from_utf8_lossy(&o.stderr),
                "rhscope: live capture needs Windows and rhscope built with `--features etw`\n"
            );
        }
    }
    let o = run(&[
        "capture",
        "-o",
        "n.etl",
        "--dry-run",
        "--duration",
        "6000000000000000h",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("\"6000000000000000h\" is too long a duration")
    );
    let o = run(&["capture", "-o", "node.txt", "--dry-run"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "rhscope: node.txt: the output should end in .etl\n"
    );
}

#[test]
fn live_waits_for_a_worker_announced_after_its_first_call() {
    use rhscope::model::{Record, RecordKind};
    let table = UsageTable::embedded();
    let at = |kind: RecordKind, us: i64, tid: u32| {
        let mut r = Record::new(
            kind,
            1_000_000_000 + us * 1000,
            Evidence::Live { sequence: 0 },
        );
        r.pid = Some(10);
        r.tid = Some(tid);
        r
    };
    let call = |tid: u32| {
        let mut r = at(RecordKind::ApiCallBegin, 0, tid);
        r.api = Some("ClusterResourceEnum".into());
        Observed::Record(Box::new(r))
    };
    let create = {
        let mut r = at(RecordKind::WorkerCreate, 15, 1);
        r.thread = Some(2);
        Observed::Record(Box::new(r))
    };
    // The worker's call, then (15 us later) its creator's announcement:
    // never reported.
    let mut live = Live::new(&table, Config::default());
    assert!(live.push(call(2)).is_empty());
    assert!(live.push(create).is_empty());
    assert!(live.tick(10_000_000_000).is_empty());
    assert!(live.reported.is_empty());
    // A thread nobody announces: reported once the grace has passed.
    let mut live = Live::new(&table, Config::default());
    assert!(live.push(call(3)).is_empty());
    assert!(live.tick(1_500_000_000).is_empty());
    let late = live.tick(2_000_000_001);
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].finding.tid, 3);
    assert_eq!(late[0].finding.severity, Severity::Warning);
    assert_eq!(late[0].at.ns(), 2_000_000_001);
}

/// The WPR profile asks for what the analysis of stacks reads: the
/// kernel's context switches, ready-thread events and thread rundown with
/// stacks, image loads, and the two providers by their GUIDs.
#[test]
fn the_wpr_profile_records_what_stacks_need() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("providers/rhscope.wprp"),
    )
    .unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let values = |tag: &str| -> Vec<String> {
        doc.descendants()
            .filter(|n| n.has_tag_name(tag))
            .filter_map(|n| n.attribute("Value").map(str::to_string))
            .collect()
    };
    let stacks = values("Stack");
    for s in ["CSwitch", "ReadyThread", "ThreadDCEnd"] {
        assert!(stacks.iter().any(|v| v == s), "{stacks:?}");
    }
    let keywords = values("Keyword");
    for k in ["ProcessThread", "Loader", "CSwitch", "ReadyThread"] {
        assert!(keywords.iter().any(|v| v == k), "{keywords:?}");
    }
    let providers: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("EventProvider"))
        .filter_map(|n| n.attribute("Name"))
        .collect();
    assert_eq!(
        providers,
        [
            "baf908ea-3421-4ca9-9b84-6689b8c6f85f",
            "*RhScope-ResourceDll"
        ]
    );
    let profiles: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("Profile"))
        .filter_map(|n| n.attribute("Id"))
        .collect();
    assert!(profiles.contains(&"RhScope.Light.File") && profiles.contains(&"RhScope.Verbose.File"));
}
