//! Decoded values that can be checked independently of rhscope: trace
//! header fields, provider GUIDs and descriptors (cross-checked with
//! dissect.etl), TraceLogging fields whose meaning the fixture states
//! (primitive-types' field names say the type; its FILETIME/SYSTEMTIME
//! fields hold the moment the event was logged), and kernel events whose
//! counts per group/opcode dissect.etl also gives.

mod common;

use std::collections::BTreeMap;

use rhscope::read::etl::kernel::KernelEvent;
use rhscope::read::etl::tracelogging::{Fields, Value};
use rhscope::read::etl::{EventRow, Guid, HeaderKind, Payload, Trace};
use serde_json::json;

fn rows(file: &str) -> Vec<EventRow> {
    let trace = Trace::open(common::data(file)).unwrap();
    let mut out = Vec::new();
    let mut events = trace.events();
    while let Some(ev) = events.next_event() {
        out.push(EventRow::new(&ev.unwrap()));
    }
    out
}

#[test]
fn trace_headers() {
    // Every value here is also what dissect.etl reads from these headers.
    let expect = [
        (
            "AMSITrace.etl",
            "AMSITraceSession",
            8,
            "10.0.1.5",
            18362,
            3,
            r"c:\work\AMSITrace.etl",
            -60,
        ),
        (
            "lxcore_kernel.etl",
            "lxcore_kernel",
            6,
            "10.0.1.5",
            19041,
            0,
            r"C:\Prog\lxcore_kernel.etl",
            -480,
        ),
        (
            "powershell.etl",
            "usermode_trace",
            32,
            "10.0.1.5",
            22623,
            0,
            r"C:\Users\aaaaa\output1.etl",
            300,
        ),
        (
            "SelfDescribingSingleEvent.etl",
            "Relogger",
            12,
            "10.0.2.0",
            22000,
            0,
            "[multiple files]",
            480,
        ),
        (
            "primitive-types.etl",
            "solar_system",
            8,
            "10.0.1.5",
            19043,
            0,
            r"C:\primitive-types_000004.etl",
            -120,
        ),
        (
            "gcevents.etl",
            "PerfViewSession",
            8,
            "10.0.1.5",
            19045,
            0,
            r"C:\Dev\runtime\CoreLab\PerfViewData.etl",
            480,
        ),
        (
            "net.4.5.2.x86.etl",
            "Relogger",
            8,
            "6.2.2.0",
            9200,
            0,
            "[multiple files]",
            480,
        ),
    ];
    for (file, logger, cpus, os, build, lost, log_file, bias) in expect {
        let t = Trace::open(common::data(file)).unwrap();
        let h = t.header();
        assert_eq!(h.logger_name, logger, "{file}");
        assert_eq!(h.pointer_size, 8, "{file}");
        assert_eq!(h.number_of_processors, cpus, "{file}");
        assert_eq!(h.os_version, os, "{file}");
        assert_eq!(h.provider_version, build, "{file}");
        assert_eq!(h.events_lost, lost, "{file}");
        assert_eq!(h.buffers_lost, 0, "{file}");
        assert_eq!(h.log_file_name, log_file, "{file}");
        assert_eq!(h.time_zone_bias_minutes, bias, "{file}");
        assert_eq!(h.perf_freq, 10_000_000, "{file}");
    }
    let t = Trace::open(common::data("lxcore_kernel.etl")).unwrap();
    let h = t.header();
    assert_eq!(
        h.start_time.unwrap().to_rfc3339(),
        "2020-07-14T12:04:31.138736300+00:00"
    );
    assert_eq!(
        h.boot_time.unwrap().to_rfc3339(),
        "2020-07-14T08:59:32.500+00:00"
    );
    let t = Trace::open(common::data("net.4.5.2.x86.etl")).unwrap();
    // Relogged with compression (EVENT_TRACE_COMPRESSED_MODE) by a 64-bit relogger.
    assert_ne!(t.header().log_file_mode & 0x0400_0000, 0);
}

#[test]
fn powershell_provider_and_descriptors() {
    // dissect.etl prints this GUID as 3b85c1a0-405c-154b-8766-... (Data1-3
    // byte-swapped: the fault its README notes); the published GUID of
    // Microsoft-Windows-PowerShell is a0c1853b-5c40-4b15-8766-3cf1c58f985a.
    let ps: Guid = "a0c1853b-5c40-4b15-8766-3cf1c58f985a".parse().unwrap();
    let rows = rows("powershell.etl");
    let mine: Vec<&EventRow> = rows.iter().filter(|r| r.provider == ps).collect();
    assert_eq!(mine.len(), 112);
    assert!(mine
        .iter()
        .all(|r| r.provider_name.as_deref() == Some("Microsoft-Windows-PowerShell")));
    let mut by_descriptor: BTreeMap<(u16, u8, u8, u16, u8), usize> = BTreeMap::new();
    for r in &mine {
        *by_descriptor
            .entry((r.id, r.version, r.opcode, r.task, r.level))
            .or_default() += 1;
    }
    // Same table as dissect.etl gives for this file.
    let expect: BTreeMap<(u16, u8, u8, u16, u8), usize> = [
        ((7937, 1, 20, 102, 4), 51),
        ((7937, 1, 20, 103, 4), 50),
        ((7938, 1, 20, 100, 4), 1),
        ((7939, 1, 20, 104, 4), 6),
        ((7942, 1, 20, 0, 5), 1),
        ((40961, 1, 1, 4, 4), 1),
        ((40962, 1, 2, 4, 4), 1),
        ((53504, 1, 10, 111, 4), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(by_descriptor, expect);
    // Manifest events keep their payload raw until a manifest is given.
    assert!(mine
        .iter()
        .all(|r| r.fields.is_none() && r.payload.is_some()));
}

#[test]
fn primitive_types_tracelogging_fields() {
    let rows = rows("primitive-types.etl");
    let tl: Vec<&EventRow> = rows.iter().filter(|r| r.kind == "event_header").collect();
    assert_eq!(tl.len(), 5);
    let planets: Vec<&str> = tl
        .iter()
        .map(|r| r.fields.as_ref().unwrap()["string_type"].as_str().unwrap())
        .collect();
    assert_eq!(planets, ["Mercury", "Venus", "Earth", "Mars", "Jupiter"]);
    for r in &tl {
        assert_eq!(r.event.as_deref(), Some("PrimitiveTypesTest"));
        assert_eq!(r.provider_name.as_deref(), Some("solar_system"));
        assert_eq!(
            r.provider.to_string(),
            "d3dd3dd4-aac2-4e2a-8dd4-a8fb61b77615"
        );
        assert_eq!(r.level, 5);
    }
    let mercury = tl[0].fields.as_ref().unwrap();
    // Field names and values as the fixture's writer chose them. The
    // schema declares int64_type as in-type 10 (UInt64), so its -204 is read
    // as the unsigned value of the same bits, as Windows' TDH would.
    assert_eq!(
        mercury,
        &json!({
            "string_type": "Mercury",
            "boolean_type": false,
            "char_type": "M",
            "int16_type": -51,
            "int32_type": -102,
            "uint16_type": 51,
            "uint32_type": 102,
            "int64_type": (-204i64) as u64,
            "uint64_type": 204,
            "guid_type": "0ad614c4-0ef4-4225-8013-f44f37cb0397",
            "file_time_type": "2021-09-09T14:59:35.799Z",
            "system_time_type": "2021-09-09T14:59:35.799Z",
        })
    );
    // The time fields hold the moment of logging: within 2 ms of the event.
    assert_eq!(tl[0].time, "2021-09-09T14:59:35.800156700Z");
    let venus = tl[1].fields.as_ref().unwrap();
    assert_eq!(venus["boolean_type"], json!(true));
    assert_eq!(venus["char_type"], json!("V"));
    assert_eq!(venus["int16_type"], json!(-95));
    assert_eq!(venus["uint32_type"], json!(190));
}

#[test]
fn amsi_tracelogging_strings_and_counted_arrays() {
    let rows = rows("AMSITrace.etl");
    let tl: Vec<&EventRow> = rows.iter().filter(|r| r.kind == "event_header").collect();
    assert_eq!(tl.len(), 19);
    assert!(tl
        .iter()
        .all(|r| r.provider_name.as_deref() == Some("AmsiTrace")
            && r.event.as_deref() == Some("AmsiScript")));
    let first = tl[0].fields.as_ref().unwrap();
    assert_eq!(first["Engine"], json!("VBScript"));
    let script = "IWshShell3.Run(\"powershell.exe -nop -w 1 -enc RwBlAHQALQBBAGwAaQBhAHMA\", \"0\", \"true\");\r\n";
    assert_eq!(first["Script"], json!(script));
    // "Raw Script" is a variable-count UInt16 array with out-type STRING.
    assert_eq!(first["Raw Script"], json!(script));
    let engines: std::collections::BTreeSet<&str> = tl
        .iter()
        .map(|r| r.fields.as_ref().unwrap()["Engine"].as_str().unwrap())
        .collect();
    assert!(engines.iter().any(|e| e
        .starts_with("PowerShell_C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe")));
}

#[test]
fn typed_values_from_the_library_api() {
    let trace = Trace::open(common::data("primitive-types.etl")).unwrap();
    let mut events = trace.events();
    let mut seen = 0;
    while let Some(ev) = events.next_event() {
        let ev = ev.unwrap();
        if ev.kind != HeaderKind::EventHeader {
            continue;
        }
        let Payload::TraceLogging(tl) = ev.decode_payload().unwrap() else {
            panic!("not TraceLogging")
        };
        let guid = tl.fields.iter().find(|f| f.name == "guid_type").unwrap();
        assert!(matches!(guid.value, Value::Guid(_)));
        let t = tl
            .fields
            .iter()
            .find(|f| f.name == "file_time_type")
            .unwrap();
        let Value::Time(t) = t.value else {
            panic!("FILETIME not a time")
        };
        // Logged within a few ms of the event itself.
        assert!(
            (t - ev.time()).num_milliseconds().abs() < 5,
            "{t} vs {}",
            ev.time()
        );
        assert!(serde_json::to_string(&Fields(&tl.fields))
            .unwrap()
            .contains("\"uint16_type\""));
        seen += 1;
    }
    assert_eq!(seen, 5);
}

#[test]
fn kernel_process_and_thread_events_of_the_net_trace() {
    let rows = rows("net.4.5.2.x86.etl");
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rows {
        assert!(r.decode_error.is_none(), "{r:?}");
        if let Some(e) = r
            .event
            .as_deref()
            .filter(|e| e.starts_with("Process/") || e.starts_with("Thread/"))
        {
            *counts.entry(e.to_string()).or_default() += 1;
        }
    }
    // Per group/opcode counts that dissect.etl also gives for this file
    // (thread group 5 opcodes 1-4, process group 3 opcodes 1-4 and 39).
    // The trace has no context switches (group 5 opcode 36): PerfView's
    // default kernel keywords do not enable them.
    let want: BTreeMap<String, usize> = [
        ("Thread/Start", 16),
        ("Thread/End", 29),
        ("Thread/DCStart", 705),
        ("Thread/DCEnd", 692),
        ("Thread/CSwitch", 0),
        ("Process/Start", 1),
        ("Process/End", 1),
        ("Process/DCStart", 35),
        ("Process/DCEnd", 35),
        ("Process/Defunct", 2),
        ("Process/opcode 32", 1),
        ("Process/opcode 33", 35),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    assert_eq!(counts, want);
    // The Process group's opcode 10 (57 of them, as dissect.etl counts)
    // is Windows' live image load: decoded as one.
    let loads: Vec<&_> = rows
        .iter()
        .filter(|r| r.event.as_deref() == Some("Image/Load"))
        .collect();
    assert_eq!(loads.len(), 57);
    assert!(loads
        .iter()
        .all(|r| r.provider_name.as_deref() == Some("Kernel/Process")));

    let trace = Trace::open(common::data("net.4.5.2.x86.etl")).unwrap();
    let mut events = trace.events();
    let mut start = None;
    while let Some(ev) = events.next_event() {
        if let Ok(Payload::Kernel(k @ KernelEvent::Process { .. })) = ev.unwrap().decode_payload() {
            if matches!(
                k,
                KernelEvent::Process {
                    lifetime: rhscope::read::etl::kernel::Lifetime::Start,
                    ..
                }
            ) {
                start = Some(k);
            }
        }
    }
    let Some(KernelEvent::Process {
        process_id,
        parent_id,
        session_id,
        image_file_name,
        command_line,
        user_sid,
        ..
    }) = start
    else {
        panic!("no process start")
    };
    assert_eq!((process_id, parent_id, session_id), (3644, 3508, 1));
    assert_eq!(image_file_name, "Test.x86.exe");
    assert_eq!(command_line.as_deref(), Some("Test.x86.exe"));
    assert_eq!(
        user_sid.as_deref(),
        Some("S-1-5-21-2935914779-1618742390-1451969622-1001")
    );
}

#[test]
fn kernel_thread_rundown_matches_the_record_headers() {
    // Every thread of the thread rundown belongs to a process of the
    // process rundown: the two decoders agree on which ids are which.
    let rows = rows("net.4.5.2.x86.etl");
    let pids: std::collections::BTreeSet<u64> = rows
        .iter()
        .filter(|r| r.event.as_deref() == Some("Process/DCStart"))
        .map(|r| r.fields.as_ref().unwrap()["process_id"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 35);
    let threads: Vec<&EventRow> = rows
        .iter()
        .filter(|r| r.event.as_deref() == Some("Thread/DCStart"))
        .collect();
    assert!(threads
        .iter()
        .all(|r| pids.contains(&r.fields.as_ref().unwrap()["process_id"].as_u64().unwrap())));
}
