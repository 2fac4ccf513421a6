//! cluster.log as an input: the simulator's logs (same findings as the
//! matching .etl, and merged with it every line is a duplicate), a
//! hand-written sample of real-format lines with exact counts, and bad
//! inputs.

mod common;

use std::io::Cursor;

use rhscope::analysis::{analyze_sources, analyze_trace, Analysis, Config};
use rhscope::model::{EntryPoint, Evidence, Finding, Rule};
use rhscope::providers::usage::UsageTable;
use rhscope::providers::ProviderSet;
use rhscope::read::clusterlog::{ClusterLog, ClusterLogError};
use rhscope::read::etl::Trace;
use rhscope::simulate::{simulate_with, GroundTruth, Options};
use rhscope::source::{ClusterLogSource, EtlSource, EventSource};

/// A finding as a millisecond-resolution log can state it.
fn at_ms(f: &Finding) -> Finding {
    let mut f = f.clone();
    f.begin = rhscope::model::Timestamp(f.begin.ns() - f.begin.ns().rem_euclid(1_000_000));
    f.duration_ns = None;
    f
}

#[test]
fn simulated_logs_give_the_planted_findings() {
    for s in common::SCENARIOS {
        let log = common::traces(&format!("{s}.cluster.log"));
        let (a, counts) = common::log_analysis(&log);
        let lines = std::fs::read_to_string(&log).unwrap().lines().count() as u64;
        assert_eq!(counts.lines, lines, "{s}");
        assert_eq!(counts.entries, lines, "{s}");
        assert_eq!(
            (counts.unparsed_lines, counts.continuation_lines),
            (0, 0),
            "{s}"
        );
        assert_eq!(a.records, lines, "{s}: every line maps to a record");
        let truth: GroundTruth = serde_json::from_slice(
            &std::fs::read(common::traces(&format!("{s}.expected.json"))).unwrap(),
        )
        .unwrap();
        let found: Vec<Finding> = a.findings.iter().map(|r| at_ms(&r.finding)).collect();
        let planted: Vec<Finding> = truth.findings.iter().map(at_ms).collect();
        assert_eq!(found, planted, "{s}");
        // Durations agree with the .etl's to the log's millisecond, but for
        // calls that never returned: those run to the end of each input.
        for (r, t) in a.findings.iter().zip(&truth.findings) {
            assert_eq!(r.finding.never_returned, t.never_returned, "{s}");
            if !t.never_returned || t.rule == Rule::DeadlockTimeout {
                let (x, y) = (r.finding.duration_ns, t.duration_ns);
                assert_eq!(x.is_some(), y.is_some(), "{s}");
                assert!(
                    (x.unwrap_or(0) - y.unwrap_or(0)).abs() <= 1_000_000,
                    "{s}: {x:?} {y:?}"
                );
            }
        }
        assert!(a
            .findings
            .iter()
            .flat_map(|r| &r.evidence)
            .all(|e| matches!(e, Evidence::Line { line, .. } if *line >= 1 && *line <= lines)));
    }
}

#[test]
fn the_bundled_log_is_what_the_simulator_writes() {
    for s in common::SCENARIOS {
        let mut log = Vec::new();
        let opts = Options {
            seed: 1,
            scale: 1_000_000,
            cluster_log: Some(&mut log),
            fixed: Vec::new(),
            uninstrumented: false,
            symbols: None,
        };
        let (etl, _) = simulate_with(s.parse().unwrap(), opts, Cursor::new(Vec::new())).unwrap();
        assert_eq!(
            log,
            std::fs::read(common::traces(&format!("{s}.cluster.log"))).unwrap(),
            "{s}"
        );
        // Writing the log changes nothing in the trace.
        assert!(etl.into_inner() == std::fs::read(common::traces(&format!("{s}.etl"))).unwrap());
    }
}

#[test]
fn etl_and_log_of_one_node_merge_without_duplicates() {
    let providers = ProviderSet::embedded();
    let (table, cfg) = (UsageTable::embedded(), Config::default());
    for s in ["mixed", "do-not-use-in-online"] {
        let trace = Trace::open(common::traces(&format!("{s}.etl"))).unwrap();
        let alone = analyze_trace(&trace, &providers, &table, &cfg, true).unwrap();
        let log = common::traces(&format!("{s}.cluster.log"));
        let lines = std::fs::read_to_string(&log).unwrap().lines().count() as u64;
        let mut etl = EtlSource::new(&trace, &providers);
        let mut text = ClusterLogSource::new(ClusterLog::open(&log).unwrap(), &providers);
        let merged = analyze_sources(
            vec![&mut etl as &mut dyn EventSource, &mut text],
            &table,
            &cfg,
            true,
        )
        .unwrap();
        assert_eq!(
            merged.duplicates, lines,
            "{s}: every line is also in the .etl"
        );
        assert_eq!(merged.records, alone.records, "{s}");
        assert_eq!(merged.unmatched_ends, 0, "{s}");
        let strip = |a: &Analysis| -> Vec<Finding> {
            a.findings.iter().map(|r| r.finding.clone()).collect()
        };
        // The .etl's finer copies are kept: findings equal the .etl's own.
        assert_eq!(strip(&merged), strip(&alone), "{s}");
        assert_eq!(merged.inputs.len(), 2);
    }
}

#[test]
fn hand_written_sample_has_exact_counts_and_findings() {
    let path = common::data("cluster-sample.log");
    let mut log = ClusterLog::open(&path).unwrap();
    let entries: Vec<_> = log.by_ref().map(|e| e.unwrap()).collect();
    let lines: Vec<u64> = entries.iter().map(|e| e.line).collect();
    assert_eq!(lines, [3, 4, 5, 6, 9, 11, 12, 13]);
    let c = log.counts();
    // The header's lines are header, not unparsed: only the impossible
    // date breaks the grammar.
    assert_eq!(
        (c.lines, c.entries, c.continuation_lines, c.unparsed_lines),
        (13, 8, 2, 1)
    );
    assert_eq!(c.header_lines, 2);
    assert_eq!(log.header().utc_offset_minutes, Some(0));
    let unparsed: Vec<u64> = c.unparsed.iter().map(|u| u.line).collect();
    assert_eq!(unparsed, [10]);
    assert!(c.unparsed[0].reason.contains("bad timestamp"));
    // The multi-line entry, the byte that is not UTF-8, the short form.
    assert_eq!(
        entries[3].text(),
        "DB2 Server <TSM1>: db2 output follows:\n    SQL1063N  DB2START processing was successful.\n    SQL1064N  DB2STOP processing was successful."
    );
    assert_eq!(
        entries[4].text(),
        "DB2 Server <TSM1>: caf\u{e9} in Latin-1, not UTF-8"
    );
    assert_eq!((entries[7].pid, entries[7].tid), (0xdf4, 0xc04));
    assert_eq!((entries[5].pid, entries[5].tid), (0x1894, 0x18a4));
    assert_eq!((entries[5].level(), entries[5].component()), ("ERR", "RHS"));

    let (a, _) = common::log_analysis(&path);
    type Row<'a> = (Rule, Option<&'a str>, Option<EntryPoint>, u32, String);
    let got: Vec<Row> = a
        .findings
        .iter()
        .map(|r| {
            let f = &r.finding;
            (
                f.rule,
                f.resource.as_deref(),
                f.entry_point,
                f.tid,
                f.begin.rfc3339(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                Rule::DeadlockTimeout,
                Some("TSM-Server-TSM1"),
                Some(EntryPoint::Online),
                0x18a4,
                "2013-03-08T08:13:01.001000000Z".to_string()
            ),
            (
                Rule::PendingTimeout,
                Some("TSM-Server-TSM1"),
                Some(EntryPoint::Online),
                0x18a4,
                "2013-03-08T08:08:03.400000000Z".to_string()
            ),
            (
                Rule::RhsRestart,
                Some("TSM-Server-TSM1"),
                None,
                0x18a4,
                "2013-03-08T08:13:01.001000000Z".to_string()
            ),
        ]
    );
    assert_eq!(
        a.findings[0].evidence,
        [Evidence::Line {
            input: 0,
            line: 11,
            time: rhscope::model::Timestamp::parse("2013-03-08T08:13:01.001Z").unwrap()
        }]
    );
}

fn open_err(bytes: &[u8], name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("rhscope-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    match ClusterLog::open(&path) {
        Err(e @ ClusterLogError::NotClusterLog { .. }) => {
            e.to_string().replace(&dir.display().to_string(), "DIR")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("{name} opened"),
    }
}

#[test]
fn what_is_not_a_cluster_log_says_so() {
    assert_eq!(
        open_err(b"MZ\x90\x00\x03\x00\x00\x00", "a.log"),
        "DIR/a.log: not a cluster.log: binary data (NUL bytes) (at byte offset 0)"
    );
    let mut text = b"00000001.00000002::2020/01/01-00:00:00.000 INFO [RHS] fine\n".to_vec();
    text.splice(0..0, b"header\n".repeat(3));
    text.splice(0..0, b"x\x00y\n".to_vec());
    assert_eq!(
        open_err(&text, "b.log"),
        "DIR/b.log: not a cluster.log: binary data (NUL bytes) (at byte offset 0)"
    );
    assert_eq!(
        open_err(&b"just text\n".repeat(300), "c.log"),
        "DIR/c.log: not a cluster.log: none of the first 200 lines starts with `PID.TID::YYYY/MM/DD-HH:MM:SS.mmm` or a `[=== Section ===]` (at byte offset 0)"
    );
    assert_eq!(
        open_err(b"", "d.log"),
        "DIR/d.log: not a cluster.log: no log entries (at byte offset 0)"
    );
    // A later line of garbage is counted, not fatal.
    let mut ok = b"00000001.00000002::2020/01/01-00:00:00.000 INFO [RHS] fine\n".to_vec();
    ok.extend_from_slice(b"\x00\x01\x02\n");
    let dir = std::env::temp_dir().join(format!("rhscope-log-{}", std::process::id()));
    std::fs::write(dir.join("e.log"), &ok).unwrap();
    let mut log = ClusterLog::open(&dir.join("e.log")).unwrap();
    assert_eq!(log.by_ref().count(), 1);
    assert_eq!(log.counts().unparsed_lines, 1);
}

#[test]
fn each_nodes_log_is_its_own_timeline() {
    // Two nodes whose logs hold the same lines (same ids, same times): a
    // merge would take the second for copies of the first and lose its
    // findings.
    let dir = std::env::temp_dir().join(format!("rhscope-nodes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = common::traces("do-not-use-in-online.cluster.log");
    for node in ["NODE1", "NODE2"] {
        std::fs::copy(&log, dir.join(format!("{node}_cluster.log"))).unwrap();
    }
    let alone = common::log_analysis(&log).0;
    assert!(!alone.findings.is_empty());
    let o = common::rhscope(&["analyze", dir.to_str().unwrap(), "--format", "json", "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let analyses = v["analyses"].as_array().unwrap();
    assert_eq!(analyses.len(), 2);
    for (a, node) in analyses.iter().zip(["NODE1", "NODE2"]) {
        assert_eq!(a["node"], node);
        assert_eq!(a["duplicates"], 0);
        let findings = a["findings"].as_array().unwrap();
        assert_eq!(findings.len(), alone.findings.len(), "{node}");
        assert!(findings.iter().all(|f| f["node"] == node));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A log of `n` entries on three threads, a millisecond apart: each an
/// entry point the rhscope patterns map, or a line of another component
/// nothing maps; one broken line and one continuation line among them.
fn threaded_log(n: u64) -> Vec<u8> {
    use rhscope::read::clusterlog::format_line;
    let t0 = 1_700_000_000_000_000_000i64;
    let mut text = String::from(
        "[=== Cluster ===]\nCurrent node: name (NODE-T) id (1)\n[=== Cluster Logs ===]\n",
    );
    for i in 0..n {
        let time = t0 + i as i64 * 1_000_000;
        let tid = 2 + (i % 3) as u32;
        let line = match i % 4 {
            0 => format_line(
                1,
                tid,
                time,
                "INFO",
                "RES",
                "App <R1>: rhscope: entry-point-begin IsAlive",
            ),
            1 => format_line(
                1,
                tid,
                time,
                "INFO",
                "RES",
                "App <R1>: rhscope: entry-point-end IsAlive status 0x1",
            ),
            _ => format_line(1, tid, time, "INFO", "NM", "heartbeat"),
        };
        text.push_str(&line);
        text.push('\n');
        if i == 1500 {
            text.push_str("1.2::2020/13/01-00:00:00.000 INFO [NM] a broken time\n");
            text.push_str("and a continuation line\n");
        }
    }
    text.into_bytes()
}

/// The source reads on a thread of its own and matches on others, the
/// batches dealt to them in turn: every entry comes out, in order (each
/// a millisecond after the one before), across the hand-overs' batches
/// whatever the number of matching threads; its counts and header are
/// the reader's once it has ended.
#[test]
fn the_threaded_source_hands_on_every_entry_in_order() {
    let providers = ProviderSet::embedded();
    let bytes = threaded_log(5000);
    let size = bytes.len() as u64;
    for mappers in [1, 2, 3] {
        let log =
            ClusterLog::from_reader(std::path::Path::new("t.log"), Cursor::new(bytes.clone()))
                .unwrap();
        let mut source = ClusterLogSource::with_mappers(log, &providers, mappers);
        let (mut records, mut seen, mut last) = (0, 0, i64::MIN);
        while let Some(o) = source.next_observed() {
            let o = o.unwrap();
            assert!(o.time_ns() > last, "{mappers} mappers: in the log's order");
            last = o.time_ns();
            match o {
                rhscope::source::Observed::Record(r) => {
                    assert_eq!(r.resource.as_deref(), Some("R1"));
                    records += 1;
                }
                rhscope::source::Observed::Seen(_) => seen += 1,
                rhscope::source::Observed::Unmapped(_) => panic!("nothing fails to map"),
            }
        }
        assert_eq!((records, seen), (2500, 2500), "{mappers} mappers");
        assert_eq!(last, 1_700_000_000_000_000_000 + 4999 * 1_000_000);
        let counts = source.unparsed().unwrap();
        assert_eq!(
            (
                counts.entries,
                counts.unparsed_lines,
                counts.continuation_lines
            ),
            (5000, 1, 1)
        );
        assert_eq!(counts.lines, 5000 + 3 + 2);
        assert_eq!(source.header().unwrap().node.as_deref(), Some("NODE-T"));
        assert_eq!(source.bytes_read(), size);
        assert!(source.next_observed().is_none(), "ended stays ended");
    }
}

/// A read error half-way is handed on as one (after the entries before
/// it); a source dropped half-read stops its reader and waits for it
/// (the test would hang if the reader waited on a hand-over nobody takes).
#[test]
fn the_threaded_source_hands_on_read_errors_and_stops_when_dropped() {
    struct Failing(Cursor<Vec<u8>>);
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(std::io::Error::other("the disk went away")),
                n => Ok(n),
            }
        }
    }
    let providers = ProviderSet::embedded();
    for mappers in [1, 3] {
        let log = ClusterLog::from_reader(
            std::path::Path::new("t.log"),
            Failing(Cursor::new(threaded_log(3000))),
        )
        .unwrap();
        let mut source = ClusterLogSource::with_mappers(log, &providers, mappers);
        let mut ok = 0;
        let err = loop {
            match source.next_observed() {
                Some(Ok(_)) => ok += 1,
                Some(Err(e)) => break e.to_string(),
                None => panic!("the error was lost"),
            }
        };
        // The last entry is held until the next line shows it complete:
        // the error comes first.
        assert_eq!(ok, 2999, "{mappers} mappers");
        assert_eq!(err, "t.log: the disk went away");
        assert!(source.next_observed().is_none(), "nothing after the error");
    }
    for mappers in [1, 3] {
        let log = ClusterLog::from_reader(
            std::path::Path::new("t.log"),
            Cursor::new(threaded_log(50_000)),
        )
        .unwrap();
        let mut source = ClusterLogSource::with_mappers(log, &providers, mappers);
        assert!(source.next_observed().is_some());
        drop(source);
    }
}
