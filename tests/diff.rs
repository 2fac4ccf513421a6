//! Before/after: a scenario against its fixed variant shows exactly the
//! removed findings; saved runs read back; `check --baseline` fails only on
//! new findings.

mod common;

use common::rhscope;

use std::io::Cursor;

use rhscope::analysis::diff::{Change, Diff, FindingKey, Side};
use rhscope::analysis::{analyze_trace, Config};
use rhscope::model::Finding;
use rhscope::providers::usage::UsageTable;
use rhscope::providers::ProviderSet;
use rhscope::read::etl::Trace;
use rhscope::simulate::{simulate_with, GroundTruth, Options, Scenario};

fn side(name: &str, bytes: Vec<u8>) -> Side {
    let trace = Trace::from_bytes(bytes, name).unwrap();
    let mut a = analyze_trace(
        &trace,
        &ProviderSet::embedded(),
        &UsageTable::embedded(),
        &Config::default(),
        true,
    )
    .unwrap();
    a.trace = name.into();
    Side::of(name, std::slice::from_ref(&a))
}

fn sim(scenario: Scenario, fixed: Vec<Scenario>) -> (Vec<u8>, GroundTruth) {
    let opts = Options {
        seed: 1,
        scale: 1_000_000,
        fixed,
        ..Options::default()
    };
    let (out, truth) = simulate_with(scenario, opts, Cursor::new(Vec::new())).unwrap();
    (out.into_inner(), truth)
}

#[test]
fn fixing_a_behaviour_removes_exactly_its_findings() {
    for (scenario, fix, resource) in [
        (Scenario::Mixed, Scenario::DoNotUseInOnline, "AppRes-2"),
        (Scenario::Mixed, Scenario::ControlCodeByNumber, "AppRes-7"),
        (
            Scenario::DoNotUseInOnline,
            Scenario::DoNotUseInOnline,
            "AppRes-1",
        ),
    ] {
        let (before, truth) = sim(scenario, vec![]);
        let (after, fixed_truth) = sim(scenario, vec![fix]);
        let d = Diff::new(&side("before", before), &side("after", after));
        // Removed: the planted findings of the fixed resource, no others.
        let mut expected: Vec<FindingKey> = truth
            .findings
            .iter()
            .filter(|f| f.resource.as_deref() == Some(resource))
            .map(FindingKey::from)
            .collect();
        expected.sort();
        let mut removed: Vec<FindingKey> = d
            .findings
            .iter()
            .filter(|f| f.change == Change::Disappeared)
            .flat_map(|f| std::iter::repeat_n(f.key.clone(), f.before))
            .collect();
        removed.sort();
        assert_eq!(removed, expected, "{scenario:?} fixing {fix:?}");
        assert_eq!(d.appeared, 0, "{scenario:?} fixing {fix:?}");
        assert_eq!(d.disappeared, expected.len());
        assert_eq!(d.stayed, fixed_truth.findings.len());
        assert_eq!(d.stayed + d.disappeared, truth.findings.len());
    }
}

#[test]
fn cli_diff_baseline_and_saved_runs() {
    let dir = std::env::temp_dir().join(format!("rhscope-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (after, _) = sim(Scenario::Mixed, vec![Scenario::DoNotUseInOnline]);
    let fixed = dir.join("fixed.etl");
    std::fs::write(&fixed, after).unwrap();
    let mixed = common::traces("mixed.etl");
    let (mixed, fixed) = (mixed.to_str().unwrap(), fixed.to_str().unwrap());
    let saved = dir.join("mixed.json");
    let o = rhscope(&[
        "analyze",
        "-q",
        "--format",
        "json",
        mixed,
        "-o",
        saved.to_str().unwrap(),
    ]);
    assert!(o.status.success());

    // A saved run compares as the trace itself does.
    let d = |before: &str| -> serde_json::Value {
        let o = rhscope(&["diff", "-q", "--format", "json", before, fixed]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let (live, from_json) = (d(mixed), d(saved.to_str().unwrap()));
    for k in ["disappeared", "appeared", "stayed", "findings", "by_api"] {
        assert_eq!(live[k], from_json[k], "{k}");
    }
    assert_eq!(
        (live["disappeared"].as_u64(), live["appeared"].as_u64()),
        (Some(4), Some(0))
    );

    // The gate: the fixed DLL passes against the old run; the old DLL fails
    // against the fixed run with exactly its 4 findings.
    let o = rhscope(&["check", "-q", fixed, "--baseline", saved.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let fixed_json = dir.join("fixed.json");
    rhscope(&[
        "analyze",
        "-q",
        "--format",
        "json",
        fixed,
        "-o",
        fixed_json.to_str().unwrap(),
    ]);
    let o = rhscope(&[
        "check",
        "-q",
        mixed,
        "--baseline",
        fixed_json.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("new: error")).count(),
        4,
        "{err}"
    );
    assert!(
        err.contains("rhscope check: 4 new findings at or above error (21 in the baseline"),
        "{err}"
    );

    // A broken baseline: one line naming file, line and column.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"analyses\": [\n  {\"findings\": [{]}").unwrap();
    let o = rhscope(&["check", "-q", mixed, "--baseline", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("bad.json: not JSON: key must be a string at line 2 column 18"),
        "{err}"
    );

    // Findings saved as Parquet read back as the same findings.
    #[cfg(feature = "polars")]
    {
        let pq = dir.join("mixed.parquet");
        let o = rhscope(&[
            "analyze",
            "-q",
            "--format",
            "parquet",
            mixed,
            "-o",
            pq.to_str().unwrap(),
        ]);
        assert!(o.status.success());
        let back = rhscope::analysis::frames::read_findings(&pq).unwrap();
        let truth: GroundTruth =
            serde_json::from_slice(&std::fs::read(common::traces("mixed.expected.json")).unwrap())
                .unwrap();
        assert_eq!(back, truth.findings);
        let o = rhscope(&["check", "-q", fixed, "--baseline", pq.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0));
        let bad = dir.join("bad.parquet");
        std::fs::write(&bad, "garbage").unwrap();
        let o = rhscope(&["diff", "-q", bad.to_str().unwrap(), fixed]);
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr)
            .contains("bad.parquet: not a Parquet findings table"));
    }

    #[cfg(feature = "report")]
    {
        let report = dir.join("report");
        let o = rhscope(&[
            "diff",
            "-q",
            mixed,
            fixed,
            "--report",
            report.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let html = std::fs::read_to_string(report.join("index.html")).unwrap();
        assert!(html.contains("<b>4 disappeared, 0 appeared, 21 stayed.</b>"));
        for f in [
            "charts/apis.svg",
            "charts/apis.png",
            "charts/entry-points.svg",
            "diff.json",
        ] {
            assert!(report.join(f).is_file(), "{f}");
        }
    }
}

#[test]
fn the_bundled_fixed_trace_is_what_the_simulator_writes() {
    let (bytes, truth) = sim(Scenario::Mixed, vec![Scenario::DoNotUseInOnline]);
    assert!(bytes == std::fs::read(common::traces("mixed-fixed.etl")).unwrap());
    let committed: GroundTruth = serde_json::from_slice(
        &std::fs::read(common::traces("mixed-fixed.expected.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(committed, truth);
}

#[test]
fn findings_json_and_ground_truth_read_as_sides() {
    let truth = std::fs::read_to_string(common::traces("mixed.expected.json")).unwrap();
    let side = Side::from_json("truth", &truth).unwrap();
    let gt: GroundTruth = serde_json::from_str(&truth).unwrap();
    assert_eq!(side.findings, gt.findings);
    let list: Vec<Finding> = gt.findings.clone();
    let side = Side::from_json("list", &serde_json::to_string(&list).unwrap()).unwrap();
    assert_eq!(side.findings.len(), 25);
    assert!(Side::from_json("x", "{\"other\": 1}")
        .unwrap_err()
        .starts_with("neither"));
}
