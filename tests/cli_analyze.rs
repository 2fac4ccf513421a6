//! `rhscope analyze` and `rhscope check` end to end.

mod common;

use common::rhscope;

use std::path::PathBuf;

use rhscope::model::Finding;
use rhscope::simulate::GroundTruth;

fn trace(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("traces")
        .join(name)
        .display()
        .to_string()
}

fn truth(name: &str) -> Vec<Finding> {
    let t: GroundTruth =
        serde_json::from_slice(&std::fs::read(trace(&format!("{name}.expected.json"))).unwrap())
            .unwrap();
    t.findings
}

#[test]
fn json_findings_of_several_traces_equal_the_ground_truth() {
    let a = trace("mixed.etl");
    let b = trace("pending-timeout.etl");
    let o = rhscope(&["analyze", &a, &b, "--format", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let analyses = v["analyses"].as_array().unwrap();
    assert_eq!(analyses.len(), 2);
    for (a, name) in analyses.iter().zip(["mixed", "pending-timeout"]) {
        let found: Vec<Finding> = a["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| serde_json::from_value(f.clone()).unwrap())
            .collect();
        assert_eq!(found, truth(name), "{name}");
        assert!(a["findings"].as_array().unwrap().iter().all(|f| f["trace"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{name}.etl"))));
    }
    // Blocking breakdown from the context switches: the hung Online waited
    // (UserRequest) for all but a millisecond of its 300 s.
    let hang = analyses[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "hang")
        .unwrap();
    assert_eq!(hang["blocking"]["source"], "context-switches");
    assert_eq!(
        hang["blocking"]["wait_reasons"],
        serde_json::json!(["UserRequest"])
    );
    let waiting = hang["blocking"]["waiting_ns"].as_i64().unwrap();
    assert!(
        waiting > 299_990_000_000 && waiting < 300_006_000_000,
        "{waiting}"
    );
}

#[test]
fn table_and_csv_outputs() {
    let o = rhscope(&["analyze", &trace("some-ok-from-offline.etl")]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("findings   1 (1 error, 0 warning) in 1 verdicts"),
        "{out}"
    );
    // The verdict: what happened, why, what to do.
    let verdict: Vec<&str> = out
        .lines()
        .skip_while(|l| *l != "VERDICT (most severe first)")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    let text = verdict.join(" ");
    assert!(
        verdict[0].starts_with("1 ERROR    AppRes-1's Offline (thread 3000) called ClusterRegSetValue(Parameters\\LastOffline)"),
        "{text}"
    );
    assert!(
        text.contains(
            "why: ClusterRegSetValue is not from Close, Offline, Online, Open, Terminate"
        ),
        "{text}"
    );
    assert!(
        text.contains("fix: Move the call out of Close, Offline, Online, Open and Terminate"),
        "{text}"
    );
    let line = out.lines().find(|l| l.contains("api-misuse")).unwrap();
    assert!(
        line.starts_with("1   error")
            && line.contains("Offline")
            && line.contains("ClusterRegSetValue (some-entry-points-okay)"),
        "{line}"
    );
    let o = rhscope(&[
        "analyze",
        &trace("worker-only-from-isalive.etl"),
        "--format",
        "csv",
    ]);
    let csv = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 2);
    assert!(rows[1].contains(",error,api-misuse,AppRes-1,IsAlive,GetClusterResourceState,worker-thread-only,rhs-entry-point,2000,3000,"), "{}", rows[1]);
}

#[test]
fn check_gates_on_severity_and_writes_sarif() {
    let clean = rhscope(&["check", &trace("correct-worker.etl")]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    assert!(String::from_utf8_lossy(&clean.stderr).contains("0 of 0 findings at or above error"));
    let dir = std::env::temp_dir().join(format!("rhscope-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sarif = dir.join("out.sarif");
    let bad = rhscope(&[
        "check",
        &trace("control-code-by-number.etl"),
        "--fail-on",
        "warning",
        "--sarif",
        sarif.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("error api-misuse: AppRes-1 LooksAlive CLUSCTL_RESOURCE_GET_CLASS_INFO"),
        "{err}"
    );
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    assert_eq!(s["version"], "2.1.0");
    let results = s["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), truth("control-code-by-number").len());
    assert_eq!(results[0]["ruleId"], "api-misuse");
    assert_eq!(results[0]["level"], "error");
    assert!(
        results[0]["locations"][0]["physicalLocation"]["region"]["byteOffset"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn clear_errors_for_traces_without_resource_events_and_bad_tables() {
    let real = common::data("gcevents.etl");
    let o = rhscope(&["analyze", real.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("gcevents.etl: no entry-point events found: is the RhScope-ResourceDll or FailoverClustering provider in this trace?"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1);

    let dir = std::env::temp_dir().join(format!("rhscope-tables-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let table = dir.join("usage.toml");
    std::fs::write(
        &table,
        "api = [\n  { name = \"X\", kind = \"function\", usage = \"never\" },\n]\n",
    )
    .unwrap();
    let o = rhscope(&[
        "analyze",
        &trace("healthy.etl"),
        "--usage-table",
        table.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("usage.toml:2:") && err.contains("unknown variant `never`"),
        "{err}"
    );
    let o = rhscope(&["analyze", &trace("healthy.etl"), "--budget", "LooksAlive=0"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("slow-entry-point"), "{out}");
}

#[cfg(feature = "polars")]
#[test]
fn parquet_outputs() {
    let dir = std::env::temp_dir().join(format!("rhscope-pq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("findings.parquet");
    let export = dir.join("tables");
    let o = rhscope(&[
        "analyze",
        &trace("mixed.etl"),
        &trace("healthy.etl"),
        "--format",
        "parquet",
        "-o",
        out.to_str().unwrap(),
        "--export-parquet",
        export.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    use polars::prelude::SerReader;
    let df = polars::prelude::ParquetReader::new(std::fs::File::open(&out).unwrap())
        .finish()
        .unwrap();
    assert_eq!(df.height(), truth("mixed").len());
    for table in [
        "entry_points",
        "api_calls",
        "worker_threads",
        "waits",
        "threads",
        "rhs_messages",
        "findings",
    ] {
        for t in ["traces_mixed.etl", "traces_healthy.etl"] {
            assert!(
                export
                    .join(table)
                    .join(format!("input={t}"))
                    .join("part-0.parquet")
                    .is_file(),
                "{table} {t}"
            );
        }
    }
    let no_output = rhscope(&["analyze", &trace("healthy.etl"), "--format", "parquet"]);
    assert_eq!(no_output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_output.stderr).contains("give -o PATH"));
}

/// A Parquet file's frame.
#[cfg(feature = "polars")]
fn parquet(path: &std::path::Path) -> polars::prelude::DataFrame {
    use polars::prelude::SerReader;
    polars::prelude::ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

#[cfg(feature = "polars")]
#[test]
fn parquet_partitions_of_same_named_traces_stay_apart() {
    use polars::prelude::{DataType, TimeUnit, TimeZone};
    let dir = std::env::temp_dir().join(format!("rhscope-pq-nodes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for node in ["n1", "n2"] {
        std::fs::create_dir_all(dir.join(node)).unwrap();
    }
    std::fs::copy(common::traces("mixed.etl"), dir.join("n1/trace.etl")).unwrap();
    std::fs::copy(
        common::traces("do-not-use-in-online.etl"),
        dir.join("n2/trace.etl"),
    )
    .unwrap();
    let export = dir.join("pq");
    let (t1, t2) = (dir.join("n1/trace.etl"), dir.join("n2/trace.etl"));
    let o = rhscope(&[
        "analyze",
        t1.to_str().unwrap(),
        t2.to_str().unwrap(),
        "--export-parquet",
        export.to_str().unwrap(),
        "-q",
        "-o",
        dir.join("table.txt").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let f1 = parquet(&export.join("findings/input=n1_trace.etl/part-0.parquet"));
    let f2 = parquet(&export.join("findings/input=n2_trace.etl/part-0.parquet"));
    assert_eq!(f1.height(), truth("mixed").len());
    assert_eq!(f2.height(), truth("do-not-use-in-online").len());
    // No column shares the partition key's name; times are UTC timestamps.
    assert!(f1.column("input").is_err());
    let utc = DataType::Datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC));
    assert_eq!(f1.column("begin").unwrap().dtype(), &utc);
    let e = parquet(&export.join("entry_points/input=n1_trace.etl/part-0.parquet"));
    assert!(e.column("parent").is_err(), "no always-null column");
    assert_eq!(e.column("begin").unwrap().dtype(), &utc);
    // The hung call counts with the time it had run, flagged.
    let calls = parquet(&export.join("api_calls/input=n2_trace.etl/part-0.parquet"));
    let returned = calls.column("returned").unwrap().bool().unwrap().clone();
    let durations = calls.column("duration_ns").unwrap().i64().unwrap().clone();
    let open: Vec<i64> = returned
        .iter()
        .zip(durations.iter())
        .filter(|(r, _)| *r == Some(false))
        .map(|(_, d)| d.unwrap())
        .collect();
    assert_eq!(open.len(), 1);
    assert!(open[0] > 300_000_000_000, "{open:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The table opens with the worst: the deadlock (with its hang, call and
/// restart), then the rest; fifteen identical misuses are one verdict.
#[test]
fn the_verdict_comes_first_and_repeats_collapse() {
    let o = rhscope(&["analyze", &trace("mixed.etl")]);
    let out = String::from_utf8(o.stdout).unwrap();
    let verdicts: Vec<&str> = out
        .lines()
        .skip_while(|l| *l != "VERDICT (most severe first)")
        .skip(1)
        .filter(|l| !l.starts_with(' '))
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(verdicts.len(), 5, "{out}");
    assert!(
        verdicts[0].starts_with("1 ERROR    AppRes-2's Online (thread 3004) blocked 300.000 s in OnlineClusterResource(AppRes-3) (do not use) until RHS's"),
        "{out}"
    );
    assert!(
        verdicts[1].starts_with("2 ERROR    AppRes-7's LooksAlive (thread 3024) called CLUSCTL_RESOURCE_GET_CLASS_INFO(AppRes-7) (worker thread only) 15"),
        "{out}"
    );
    let first_row = out
        .lines()
        .skip_while(|l| !l.starts_with("FINDINGS"))
        .nth(2)
        .unwrap();
    assert!(
        first_row.starts_with("1   error    deadlock-timeout    AppRes-2"),
        "{first_row}"
    );
    // Every finding is still listed, each once.
    let rows = out
        .lines()
        .skip_while(|l| !l.starts_with("FINDINGS"))
        .skip(2)
        .take_while(|l| !l.is_empty())
        .count();
    assert_eq!(rows, 25);
}
