//! Provider definitions: the shipped ones load, and bad ones are refused
//! with the file, line and what is wrong.

use std::path::{Path, PathBuf};

use rhscope::providers::{Decoder, ProviderDef, ProviderSet};

mod common;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("providers")
}

#[test]
fn shipped_definitions_load_from_the_folder_and_the_binary() {
    let set = ProviderSet::load_dir(&dir()).unwrap();
    let names: Vec<&str> = set
        .definitions()
        .iter()
        .map(|d| d.header.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "Microsoft-Windows-FailoverClustering",
            "Windows Kernel Trace",
            "RhScope-ResourceDll"
        ]
    );
    let rhs = &set.definitions()[2];
    assert_eq!(rhs.header.decoder, Decoder::Tracelogging);
    // Derived from the name, as TraceLogging does.
    assert_eq!(rhs.guid.to_string(), "6766fe81-7ddd-5540-4105-7584ba5c10dc");
    assert_eq!(set.definitions()[1].header.keywords, 0x813);
    assert_eq!(ProviderSet::embedded().definitions().len(), 3);
}

fn refuse(text: &str) -> String {
    ProviderDef::parse(text, Path::new("p.toml"))
        .unwrap_err()
        .to_string()
}

const GOOD: &str = r#"
[provider]
name = "X"
decoder = "tracelogging"

[[event]]
name = "A"
record = "entry-point-begin"
fields = { resource = "R" }
"#;

#[test]
fn bad_definitions_name_file_line_and_problem() {
    assert!(ProviderDef::parse(GOOD, Path::new("p.toml")).is_ok());
    let e = refuse(&GOOD.replace("name = \"A\"", "name = \"A\"\ncolour = \"red\""));
    assert!(e.starts_with("p.toml:8:1: unknown field `colour`"), "{e}");
    let e = refuse(&GOOD.replace("entry-point-begin", "entry-point-start"));
    assert!(
        e.starts_with("p.toml:8:10: unknown variant `entry-point-start`"),
        "{e}"
    );
    let e = refuse(&GOOD.replace("resource = \"R\"", "resourse = \"R\""));
    assert!(
        e.starts_with("p.toml:9:") && e.contains("unknown model field \"resourse\""),
        "{e}"
    );
    let e = refuse(&GOOD.replace("name = \"A\"", "id = 3"));
    assert!(e.contains("matched by `name`, not `id`"), "{e}");
    let e = refuse(&GOOD.replace("decoder = \"tracelogging\"", "decoder = \"manifest\""));
    assert!(
        e.starts_with("p.toml:2:1: a manifest provider needs its `guid`"),
        "{e}"
    );
    let e = refuse(&format!(
        "{GOOD}\n[[pattern]]\nregex = \"(?P<resource>[a-\"\nrecord = \"rhs-message\"\n"
    ));
    assert!(e.starts_with("p.toml:12:10: bad regex: regex parse error: (?P<resource>[a- error: unclosed character class"), "{e}");
    assert_eq!(e.lines().count(), 1);
    let e = refuse(&format!(
        "{GOOD}\n[[pattern]]\nregex = \"(?P<colour>x)\"\nrecord = \"rhs-message\"\n"
    ));
    assert!(
        e.contains("capture group \"colour\" names no model field"),
        "{e}"
    );
    let e = refuse("[provider]\nname = \"X\"\ndecoder = \"tracelogging\"\nguid = \"not-a-guid\"\n");
    assert!(e.starts_with("p.toml:4:8: not a GUID"), "{e}");
}

#[test]
fn a_folder_with_two_definitions_of_one_provider_is_refused() {
    let d = common::temp_dir("prov");
    std::fs::write(d.join("a.toml"), GOOD).unwrap();
    std::fs::write(d.join("b.toml"), GOOD).unwrap();
    let e = ProviderSet::load_dir(&d).unwrap_err().to_string();
    assert!(
        e.contains("b.toml") && e.contains("is also defined in") && e.contains("a.toml"),
        "{e}"
    );
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = ProviderSet::load_dir(&empty).unwrap_err().to_string();
    assert!(
        e.ends_with("no provider definitions (*.toml) in this folder"),
        "{e}"
    );
}

/// A definition may read one event field into two model fields: the string
/// moved into the record at its last read is still whole at the first.
#[test]
fn one_event_field_fills_two_model_fields() {
    use rhscope::model::RecordKind;
    use rhscope::read::etl::guid::Guid;
    use rhscope::read::etl::record::Descriptor;
    use rhscope::read::etl::tracelogging::SchemaCache;
    use rhscope::read::etl::write::tracelogging::{event, provider_traits, FieldValue};
    use rhscope::read::etl::write::{EventRecord, TraceWriter, WriterOptions};
    use rhscope::read::etl::Trace;

    let d = common::temp_dir("prov-twice");
    std::fs::write(
        d.join("twice.toml"),
        r#"
[provider]
name = "Twice-Test"
decoder = "tracelogging"

[[event]]
name = "Call"
record = "api-call-begin"
fields = { resource = "Res", target = "Res", api = "Api", status = "Code" }
"#,
    )
    .unwrap();
    let set = ProviderSet::load_dir(&d).unwrap();
    std::fs::remove_dir_all(&d).unwrap();

    let opts = WriterOptions::default();
    let start = opts.start_raw;
    let mut w = TraceWriter::new(std::io::Cursor::new(Vec::new()), opts).unwrap();
    let (schema, payload) = event(
        "Call",
        &[
            ("Res", FieldValue::Str("Disk Q: \u{e9}t\u{e9}".into())),
            ("Api", FieldValue::Str("ClusterResourceControl".into())),
            ("Code", FieldValue::U32(5)),
        ],
    );
    w.write_event(
        0,
        &EventRecord {
            thread_id: 7,
            process_id: 9,
            timestamp: start + 10,
            provider: Guid::from_provider_name("Twice-Test"),
            descriptor: Descriptor::default(),
            activity_id: Guid::NIL,
            extended: vec![provider_traits("Twice-Test"), schema],
            payload,
        },
    )
    .unwrap();
    let (out, _) = w.finish().unwrap();
    let trace = Trace::from_bytes(out.into_inner(), "twice.etl").unwrap();
    let mut schemas = SchemaCache::default();
    let mut records = Vec::new();
    trace.events().for_each(|ev| {
        let ev = ev.unwrap();
        // Both ways of mapping: a schema parsed for the event, and cached.
        for cached in [false, true] {
            let mapped = if cached {
                set.map_with(&ev, &mut schemas)
            } else {
                set.map(&ev)
            };
            if let Some(r) = mapped {
                records.push(r.unwrap());
            }
        }
    });
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(r.kind, RecordKind::ApiCallBegin);
        assert_eq!(r.resource.as_deref(), Some("Disk Q: \u{e9}t\u{e9}"));
        assert_eq!(r.target.as_deref(), Some("Disk Q: \u{e9}t\u{e9}"));
        assert_eq!(r.api.as_deref(), Some("ClusterResourceControl"));
        assert_eq!((r.status, r.pid, r.tid), (Some(5), Some(9), Some(7)));
    }
}
