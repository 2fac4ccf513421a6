//! .evtx input: a real event log read with exact counts and decoded
//! System fields; a cut-off copy and a non-.evtx give one clear error.
#![cfg(feature = "evtx")]

mod common;

use rhscope::analysis::{analyze_sources, AnalysisError, Config};
use rhscope::providers::usage::UsageTable;
use rhscope::providers::ProviderSet;
use rhscope::read::evtx::read_events;
use rhscope::source::{EventSource, EvtxSource, Observed};

#[test]
fn real_security_log_reads_with_exact_fields() {
    let (events, bad) = read_events(&common::data("new-user-security.evtx")).unwrap();
    assert!(bad.is_empty());
    let ids: Vec<(u64, u64)> = events.iter().map(|e| (e.record_id, e.event_id)).collect();
    assert_eq!(ids, [(1, 4728), (2, 4720), (3, 4732), (4, 4732)]);
    let e = &events[3];
    assert_eq!(e.provider, "Microsoft-Windows-Security-Auditing");
    assert_eq!((e.pid, e.tid), (Some(508), Some(1032)));
    assert_eq!(e.time_ns, 1_382_545_360_036_000_000);
    assert_eq!(e.data[2], "Administrators");
    assert_eq!(e.data[4], "S-1-5-32-544");
}

#[test]
fn events_of_other_providers_only_mark_time() {
    let providers = ProviderSet::embedded();
    let mut src = EvtxSource::open(&common::data("new-user-security.evtx"), &providers).unwrap();
    assert_eq!((src.records, src.bad_records), (4, 0));
    let mut seen = Vec::new();
    while let Some(o) = src.next_observed() {
        seen.push(o.unwrap());
    }
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|o| matches!(o, Observed::Seen(_))));
    let mut src = EvtxSource::open(&common::data("new-user-security.evtx"), &providers).unwrap();
    let err = analyze_sources(
        vec![&mut src as &mut dyn EventSource],
        &UsageTable::embedded(),
        &Config::default(),
        true,
    )
    .unwrap_err();
    assert!(matches!(err, AnalysisError::NoResourceEvents(_)));
}

#[test]
fn cut_off_and_foreign_files_say_where() {
    let dir = std::env::temp_dir().join(format!("rhscope-evtx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = std::fs::read(common::data("new-user-security.evtx")).unwrap();
    let cut = dir.join("cut.evtx");
    std::fs::write(&cut, &bytes[..30_000]).unwrap();
    // Cut inside its only chunk: no event survives, and the file is not
    // refused whole (a longer log keeps its whole chunks); the cut is the
    // first problem, said with its offsets.
    let (events, bad) = rhscope::read::evtx::read_events(&cut).unwrap();
    assert_eq!(events.len(), 0);
    assert_eq!(
        bad[0].to_string(),
        format!(
            "{}: truncated .evtx: the header lists 1 chunks, which end at byte offset 69632; the file has 30000 bytes",
            cut.display()
        )
    );
    let src = EvtxSource::open(&cut, &ProviderSet::embedded()).unwrap();
    assert_eq!((src.records, src.bad_records), (0, bad.len() as u64));
    let head = dir.join("head.evtx");
    std::fs::write(&head, &bytes[..20]).unwrap();
    let err = EvtxSource::open(&head, &ProviderSet::embedded())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.ends_with(
            "not an .evtx file: file header needs 44 bytes, the file has 20 (at byte offset 0)"
        ),
        "{err}"
    );
    let etl = EvtxSource::open(&common::data("powershell.etl"), &ProviderSet::embedded())
        .err()
        .unwrap()
        .to_string();
    assert!(
        etl.ends_with("not an .evtx file: no \"ElfFile\" signature (at byte offset 0)"),
        "{etl}"
    );
}
