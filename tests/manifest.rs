//! Manifest-based decoding: the real PowerShell and CLR fixtures decode
//! with the shipped manifest subsets, every template fitting its payload to
//! the byte; maps, counts, lengths and structs on a written trace; provider
//! definitions map manifest events by field name; bad manifests say where.

mod common;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use rhscope::model::RecordKind;
use rhscope::providers::manifest::ManifestSet;
use rhscope::providers::ProviderSet;
use rhscope::read::etl::tracelogging::{Field, Fields};
use rhscope::read::etl::write::{EventRecord, TraceWriter, WriterOptions};
use rhscope::read::etl::{Descriptor, Guid, Trace};
use serde_json::{json, Value};

fn fields(f: &[Field<'_>]) -> Value {
    serde_json::to_value(Fields(f)).unwrap()
}

/// Every event of a fixture: (id, name, fields) for decoded ones; counts
/// of decoded and undecoded events.
type Decoded = Vec<(u16, String, Value)>;

fn decode_all(name: &str) -> (Decoded, BTreeMap<u16, usize>) {
    let set = ManifestSet::embedded();
    let trace = Trace::open(common::data(name)).unwrap();
    let mut events = trace.events();
    let (mut decoded, mut undecoded) = (Vec::new(), BTreeMap::new());
    while let Some(ev) = events.next_event() {
        let ev = ev.unwrap();
        if ev.kernel_group.is_some() {
            continue;
        }
        match set.decode(&ev) {
            Some(Ok(m)) => {
                assert_eq!(
                    m.trailing, 0,
                    "{name}: event {} leaves bytes",
                    ev.descriptor.id
                );
                decoded.push((ev.descriptor.id, m.name, fields(&m.fields)));
            }
            Some(Err(e)) => panic!("{name}: {e}"),
            None => *undecoded.entry(ev.descriptor.id).or_insert(0) += 1,
        }
    }
    (decoded, undecoded)
}

#[test]
fn powershell_fixture_decodes_to_named_fields() {
    let (decoded, undecoded) = decode_all("powershell.etl");
    assert_eq!(decoded.len(), 112);
    assert!(undecoded.is_empty());
    let by_id = |id: u16| decoded.iter().filter(|d| d.0 == id).collect::<Vec<_>>();
    assert_eq!(
        [7937, 7938, 7939, 7942, 40961, 40962, 53504].map(|i| by_id(i).len()),
        [101, 1, 6, 1, 1, 1, 1]
    );
    assert_eq!(
        by_id(53504)[0].2,
        json!({"param1": "16040", "param2": "DefaultAppDomain"})
    );
    assert_eq!(
        by_id(7942)[0].2,
        json!({
            "ClassName": "RemoteSessionNamedPipeServer",
            "MethodName": "StartListening",
            "WorkflowGuid": "00000000-0000-0000-0000-000000000000",
            "Message": "Listener thread started on Process 16040 in AppDomainName DefaultAppDomain.",
            "JobData": "", "ActivityName": "", "ActivityGuid": "", "Parameters": ""
        })
    );
    let e = &by_id(7938)[0].2;
    assert_eq!(
        e["Payload"],
        "Engine state changed from None to Available.\r\n"
    );
    assert_eq!(e["UserData"], "");
    assert!(e["ContextInfo"]
        .as_str()
        .unwrap()
        .starts_with("        Severity = Informational\r\n        Host Name = ConsoleHost\r\n"));
    assert_eq!(by_id(40961)[0].2, json!({}));
    assert!(by_id(7937)
        .iter()
        .any(|d| d.2["Payload"] == "Command logman.exe is Stopped.\r\n"));
}

#[test]
fn clr_fixture_decodes_gc_events_with_maps() {
    let (decoded, undecoded) = decode_all("gcevents.etl");
    assert_eq!(decoded.len(), 63);
    // GCPerHeapHistory_V3, GCGlobalHeapHistory_V4 and two more are not in
    // the shipped subset.
    assert_eq!(
        undecoded,
        BTreeMap::from([(204, 2), (205, 2), (208, 1), (209, 1)])
    );
    let first = |name: &str| {
        decoded
            .iter()
            .find(|d| d.1 == name)
            .map(|d| d.2.clone())
            .unwrap()
    };
    assert_eq!(
        first("GCStart_V2"),
        json!({"Count": 1, "Depth": 1, "Reason": "Induced", "Type": "NonConcurrentGC",
               "ClrInstanceID": 8, "ClientSequenceNumber": 0})
    );
    assert_eq!(
        first("GCAllocationTick_V4"),
        json!({"AllocationAmount": "0x1aa40", "AllocationKind": "Small", "ClrInstanceID": 8,
               "AllocationAmount64": "0x1aa40", "TypeID": "0x7ffb485e1c08",
               "TypeName": "System.String", "HeapIndex": 0, "Address": "0x1b0f3818b30",
               "ObjectSize": "0x20"})
    );
    assert_eq!(
        first("GCSuspendEEBegin_V1"),
        json!({"Reason": "SuspendForGC", "Count": 0, "ClrInstanceID": 8})
    );
    assert_eq!(
        first("GCTriggered"),
        json!({"Reason": "Induced", "ClrInstanceID": 8})
    );
    assert_eq!(first("GCCreateSegment_V1")["Type"], "PinnedObjectHeap");
    let rt = first("RuntimeInformationStart");
    assert_eq!(rt["Sku"], "CoreClr");
    assert_eq!(
        (rt["BclMajorVersion"].as_u64(), rt["VMQfeNumber"].as_u64()),
        (Some(8), Some(42424))
    );
    assert_eq!(rt["StartupFlags"], "0x800003");
    assert_eq!(rt["ComObjectGuid"], "00000000-0000-0000-0000-000000000000");
    assert!(
        rt["RuntimeDllPath"]
            .as_str()
            .unwrap()
            .ends_with("\\coreclr.dll"),
        "{rt}"
    );
    assert_eq!(first("PinObjectAtGCTime")["TypeName"], "System.Object");
}

const TEST_MANIFEST: &str = r#"<?xml version="1.0"?>
<instrumentationManifest xmlns="http://schemas.microsoft.com/win/2004/08/events">
 <instrumentation><events>
  <provider name="Contoso-Test" guid="{11111111-2222-3333-4444-555555555555}">
   <maps>
    <bitMap name="Flags"><map value="0x1" message="$(string.f.read)"/><map value="0x4" message="Write"/></bitMap>
   </maps>
   <templates>
    <template tid="T">
     <data name="Flags" inType="win:UInt32" map="Flags"/>
     <data name="N" inType="win:UInt16"/>
     <data name="Ids" inType="win:UInt32" count="N"/>
     <struct name="Pairs" count="2">
      <data name="Key" inType="win:AnsiString"/>
      <data name="Status" inType="win:UInt32" outType="win:Win32Error"/>
     </struct>
     <data name="Len" inType="win:UInt8"/>
     <data name="Blob" inType="win:Binary" length="Len"/>
     <data name="Fixed" inType="win:UnicodeString" length="3"/>
    </template>
   </templates>
   <events><event value="7" version="1" template="T" task="Work" opcode="win:Start"/></events>
  </provider>
 </events></instrumentation>
 <localization><resources culture="en-US"><stringTable><string id="f.read" value="Read"/></stringTable></resources></localization>
</instrumentationManifest>
"#;

/// The one event's decoding (the trace-header records aside): name,
/// trailing bytes, fields.
fn decode_one(set: &ManifestSet, trace: &Trace) -> Result<(String, usize, Value), String> {
    let mut events = trace.events();
    while let Some(ev) = events.next_event() {
        if let Some(m) = set.decode(&ev.unwrap()) {
            return m
                .map(|m| (m.name, m.trailing, fields(&m.fields)))
                .map_err(|e| e.to_string());
        }
    }
    Err("no event decoded".into())
}

fn one_event_trace(provider: Guid, id: u16, payload: Vec<u8>) -> Trace {
    let mut w = TraceWriter::new(Cursor::new(Vec::new()), WriterOptions::default()).unwrap();
    let start = WriterOptions::default().start_raw;
    w.write_event(
        0,
        &EventRecord {
            thread_id: 1,
            process_id: 2,
            timestamp: start + 10,
            provider,
            descriptor: Descriptor {
                id,
                version: 1,
                ..Descriptor::default()
            },
            activity_id: Guid::NIL,
            extended: Vec::new(),
            payload,
        },
    )
    .unwrap();
    let (out, _) = w.finish().unwrap();
    Trace::from_bytes(out.into_inner(), "t.etl").unwrap()
}

#[test]
fn maps_counts_lengths_and_structs() {
    let mut set = ManifestSet::default();
    set.add_text(TEST_MANIFEST, Path::new("test.man")).unwrap();
    let guid: Guid = "11111111-2222-3333-4444-555555555555".parse().unwrap();
    let mut p = Vec::new();
    p.extend(0x0000_0013u32.to_le_bytes()); // Read | Write | 0x12 left
    p.extend(2u16.to_le_bytes());
    p.extend(7u32.to_le_bytes());
    p.extend(9u32.to_le_bytes());
    p.extend(b"a\0");
    p.extend(5u32.to_le_bytes());
    p.extend(b"bc\0");
    p.extend(0u32.to_le_bytes());
    p.push(3);
    p.extend([0xde, 0xad, 0xbe]);
    p.extend("xyz".encode_utf16().flat_map(u16::to_le_bytes));
    let trace = one_event_trace(guid, 7, p.clone());
    let (name, trailing, got) = decode_one(&set, &trace).unwrap();
    assert_eq!((name.as_str(), trailing), ("Work/Start", 0));
    assert_eq!(
        got,
        json!({"Flags": "Read | 0x12", "N": 2, "Ids": [7, 9],
               "Pairs": [{"Key": "a", "Status": "0x5"}, {"Key": "bc", "Status": "0x0"}],
               "Len": 3, "Blob": "deadbe", "Fixed": "xyz"})
    );
    // Cut short: an error naming what was being read.
    let trace = one_event_trace(guid, 7, p[..p.len() - 3].to_vec());
    let err = decode_one(&set, &trace).unwrap_err();
    assert!(
        err.starts_with("truncated manifest UTF-16 string at byte offset"),
        "{err}"
    );
}

#[test]
fn definitions_map_manifest_events_by_field_name() {
    let dir = std::env::temp_dir().join(format!("rhscope-man-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("powershell.toml"),
        r#"[provider]
name = "Microsoft-Windows-PowerShell"
guid = "a0c1853b-5c40-4b15-8766-3cf1c58f985a"
decoder = "manifest"

[[event]]
id = 53504
record = "rhs-message"
fields = { process = "param1", message = "param2" }
"#,
    )
    .unwrap();
    let providers = ProviderSet::load_dir(&dir)
        .unwrap()
        .with_manifests(ManifestSet::embedded());
    let trace = Trace::open(common::data("powershell.etl")).unwrap();
    let mut events = trace.events();
    let mut mapped = Vec::new();
    while let Some(ev) = events.next_event() {
        if let Some(r) = providers.map(&ev.unwrap()) {
            mapped.push(r.unwrap());
        }
    }
    assert_eq!(mapped.len(), 1);
    assert_eq!(mapped[0].kind, RecordKind::RhsMessage);
    assert_eq!(mapped[0].process, Some(16040));
    assert_eq!(mapped[0].message.as_deref(), Some("DefaultAppDomain"));
    // Without the manifest the mapping says what is missing.
    let bare = ProviderSet::load_dir(&dir).unwrap();
    let mut events = trace.events();
    let mut err = None;
    while let Some(ev) = events.next_event() {
        if let Some(r) = bare.map(&ev.unwrap()) {
            err = Some(r.unwrap_err());
            break;
        }
    }
    let err = err.unwrap();
    assert_eq!(
        err,
        "no manifest describes event 53504 version 1 (give one with --manifest)"
    );
}

fn manifest_err(text: &str) -> String {
    ManifestSet::default()
        .add_text(text, Path::new("bad.man"))
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_manifests_name_line_and_column() {
    assert_eq!(
        manifest_err("<instrumentationManifest>\n  <provider name=\"x\" guid=\"{11111111-2222-3333-4444-555555555555}\">\n</instrumentationManifest>"),
        "bad.man:3:1: bad XML: expected 'provider' tag, not 'instrumentationManifest'"
    );
    let t = TEST_MANIFEST.replace("template=\"T\" task", "template=\"Missing\" task");
    let line = t.lines().position(|l| l.contains("Missing")).unwrap() + 1;
    assert_eq!(
        manifest_err(&t),
        format!("bad.man:{line}:12: event 7 names template \"Missing\", which is not defined")
    );
    let t = TEST_MANIFEST.replace("win:UInt8", "win:Fancy");
    assert!(manifest_err(&t).ends_with("\"Len\": in-type \"win:Fancy\" is not one rhscope reads"));
    let t = TEST_MANIFEST.replace("length=\"Len\"", "length=\"Later\"");
    assert!(manifest_err(&t)
        .ends_with("\"Blob\": length \"Later\" names no earlier field of the template"));
    assert_eq!(
        manifest_err("<a/>"),
        "bad.man:0:0: no <provider> in this manifest"
    );
}

#[test]
fn cli_dump_uses_the_manifests() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_rhscope"))
        .args([
            "dump",
            "-q",
            "--provider",
            "Microsoft-Windows-DotNETRuntime",
            "--limit",
            "1",
        ])
        .arg(common::data("gcevents.etl"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let row: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(row["event"], "RuntimeInformationStart");
    assert_eq!(row["fields"]["Sku"], "CoreClr");
    assert_eq!(row["payload"], Value::Null);
}

#[test]
fn lengths_from_the_payload_are_bounded() {
    let text = TEST_MANIFEST.replace(
        r#"<data name="Len" inType="win:UInt8"/>"#,
        r#"<data name="Len" inType="win:UInt64"/>"#,
    );
    let mut set = ManifestSet::default();
    set.add_text(&text, Path::new("test.man")).unwrap();
    let guid: Guid = "11111111-2222-3333-4444-555555555555".parse().unwrap();
    let mut p = Vec::new();
    p.extend(0u32.to_le_bytes());
    p.extend(0u16.to_le_bytes()); // no Ids
    for _ in 0..2 {
        p.extend(b"k\0");
        p.extend(0u32.to_le_bytes());
    }
    p.extend(u64::MAX.to_le_bytes()); // Len: as long as can be
    let trace = one_event_trace(guid, 7, p);
    let err = decode_one(&set, &trace).unwrap_err();
    assert!(
        err.ends_with("a count or length of 18446744073709551615 is more than any event holds"),
        "{err}"
    );
}
