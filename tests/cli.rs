//! The `rhscope` binary end to end: outputs, exit codes and the one-line
//! errors a user sees for bad input.

mod common;

use common::rhscope;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit 2, one line on stderr naming the file, no panic.
fn assert_error(o: &Output, path: &Path, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(&path.display().to_string()),
        "names the file: {err}"
    );
    assert_eq!(err.matches(needle).count(), 1, "{needle:?} once in {err}");
    assert!(o.stdout.is_empty(), "no half output");
}

#[test]
fn stats_json_has_the_documented_keys_and_values() {
    let path = common::data("SelfDescribingSingleEvent.etl");
    let o = rhscope(&["stats", "--json", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in [
        "records",
        "kinds",
        "threads",
        "processes",
        "first",
        "last",
        "buffers",
        "providers",
        "skipped",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["records"], 23);
    assert_eq!(
        v["kinds"],
        serde_json::json!({"system": 4, "compact": 0, "perfinfo": 0, "event_header": 1, "full_header": 18, "instance": 0, "wpp": 0})
    );
    assert_eq!(v["threads"], 3);
    assert_eq!(v["first"], "2022-04-20T21:27:15.272243500Z");
    assert_eq!(v["last"], "2022-04-20T21:27:18.637703500Z");
    assert_eq!(v["buffers"]["total"], 3);
    assert_eq!(v["buffers"]["compressed"], 2);
    assert_eq!(v["skipped"], serde_json::json!([]));
    let total: u64 = v["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["records"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 23);
}

#[test]
fn stats_text_summarises() {
    let path = common::data("lxcore_kernel.etl");
    let o = rhscope(&["stats", path.to_str().unwrap()]);
    assert!(o.status.success());
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("records    4 (event_header 2, system 2)"),
        "{out}"
    );
    assert!(out.contains("logger     lxcore_kernel"), "{out}");
    assert!(out.contains("skipped    0"), "{out}");
}

#[test]
fn dump_jsonl_filters_and_limits() {
    let path = common::data("powershell.etl");
    let p = path.to_str().unwrap();
    let by_name = rhscope(&["dump", p, "--provider", "microsoft-windows-powershell"]);
    assert!(by_name.status.success());
    assert_eq!(by_name.stdout.iter().filter(|&&b| b == b'\n').count(), 112);
    let by_guid = rhscope(&[
        "dump",
        p,
        "--provider",
        "{A0C1853B-5C40-4B15-8766-3CF1C58F985A}",
    ]);
    assert_eq!(by_guid.stdout, by_name.stdout);
    let limited = rhscope(&["dump", p, "--limit", "3"]);
    let lines: Vec<serde_json::Value> = String::from_utf8(limited.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["kind"], "system");
    assert_eq!(lines[0]["provider_name"], "Kernel/EventTrace");
    // The first event-header record, as dissect.etl also reads it.
    assert_eq!(lines[2]["kind"], "event_header");
    assert_eq!(
        (lines[2]["pid"].as_u64(), lines[2]["tid"].as_u64()),
        (Some(0x4448), Some(0x4a00))
    );
    assert_eq!(lines[2]["id"], 0x1f01);
    let kernel = rhscope(&["dump", p, "--provider", "Kernel/EventTrace"]);
    assert_eq!(kernel.stdout.iter().filter(|&&b| b == b'\n').count(), 2);
}

#[test]
fn dump_csv_has_a_header_and_quotes_fields() {
    let path = common::data("primitive-types.etl");
    let o = rhscope(&[
        "dump",
        path.to_str().unwrap(),
        "--format",
        "csv",
        "--provider",
        "solar_system",
    ]);
    assert!(o.status.success());
    let out = String::from_utf8(o.stdout).unwrap();
    let mut lines = out.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("time,timestamp,cpu,pid,tid,kind,provider"));
    let first = lines.next().unwrap();
    assert!(first.starts_with("2021-09-09T14:59:35.800156700Z,2603617064262,2,33984,21768,event_header,d3dd3dd4-aac2-4e2a-8dd4-a8fb61b77615,solar_system,"), "{first}");
    assert!(
        first.contains(
            r#","{""string_type"":""Mercury"",""boolean_type"":false,""char_type"":""M"""#
        ),
        "{first}"
    );
    assert_eq!(lines.count(), 4);
}

#[test]
fn closed_pipe_is_not_an_error() {
    let path = common::data("net.4.5.2.x86.etl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rhscope"))
        .args(["dump", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn bad_inputs_get_one_line_errors() {
    let dir = tempdir("bad-inputs");
    let missing = dir.join("missing.etl");
    assert_error(
        &rhscope(&["stats", missing.to_str().unwrap()]),
        &missing,
        "No such file",
    );
    assert_error(
        &rhscope(&["stats", dir.to_str().unwrap()]),
        &dir,
        "is a directory",
    );
    let empty = dir.join("empty.etl");
    std::fs::write(&empty, b"").unwrap();
    assert_error(
        &rhscope(&["stats", empty.to_str().unwrap()]),
        &empty,
        "empty file",
    );
    let tiny = dir.join("tiny.etl");
    std::fs::write(&tiny, b"0123456789").unwrap();
    assert_error(
        &rhscope(&["dump", tiny.to_str().unwrap()]),
        &tiny,
        "not an .etl file: 10 bytes",
    );
    let png = dir.join("picture.etl");
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.resize(4096, 7);
    std::fs::write(&png, &bytes).unwrap();
    assert_error(
        &rhscope(&["stats", png.to_str().unwrap()]),
        &png,
        "not an .etl file: no ETW buffer header: impossible buffer size 0x474e5089",
    );
    // A buffer header but no trace header record in it.
    let mut no_header = std::fs::read(common::data("AMSITrace.etl")).unwrap();
    no_header[0x48..0x50].copy_from_slice(&[0xff; 8]);
    let f = dir.join("no-header.etl");
    std::fs::write(&f, &no_header).unwrap();
    assert_error(
        &rhscope(&["stats", f.to_str().unwrap()]),
        &f,
        "(at byte offset 72)",
    );
}

#[test]
fn corrupt_buffers_are_skipped_counted_or_fatal_with_strict() {
    let dir = tempdir("corrupt");
    let mut bytes = std::fs::read(common::data("AMSITrace.etl")).unwrap();
    // Third buffer (cpu 3, one record): impossible size.
    bytes[0x20000..0x20004].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let f = dir.join("amsi-bad-buffer.etl");
    std::fs::write(&f, &bytes).unwrap();
    let o = rhscope(&["stats", "--json", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["records"], 20);
    assert_eq!(v["skipped"].as_array().unwrap().len(), 1);
    assert_eq!(v["skipped"][0]["offset"], 0x20000);
    assert_eq!(v["buffers"]["total"], 5);
    let strict = rhscope(&["stats", "--strict", f.to_str().unwrap()]);
    assert_error(
        &strict,
        &f,
        "corrupt buffer header at byte offset 131072: impossible buffer size 0xfffffff0",
    );
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rhscope-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn output_files_are_written_whole_and_never_over_an_input() {
    let dir = tempdir("outputs");
    let input = dir.join("trace.etl");
    std::fs::copy(common::data("lxcore_kernel.etl"), &input).unwrap();
    let out = dir.join("stats.json");
    let o = rhscope(&[
        "stats",
        "--json",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["records"], 4);

    let before = std::fs::read(&input).unwrap();
    let o = rhscope(&[
        "dump",
        input.to_str().unwrap(),
        "-o",
        input.to_str().unwrap(),
    ]);
    assert_error(&o, &input, "refusing to overwrite an input of this run");
    assert_eq!(std::fs::read(&input).unwrap(), before);

    let nowhere = dir.join("missing-dir/out.jsonl");
    let o = rhscope(&[
        "dump",
        input.to_str().unwrap(),
        "--output",
        nowhere.to_str().unwrap(),
    ]);
    assert_error(&o, &nowhere, "cannot write");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "no temporary files left: {names:?}");
}

/// Every entry of a folder, recursively, relative to it, sorted.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if p.is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn report_never_replaces_a_folder_holding_the_users_files() {
    let root = std::env::temp_dir().join(format!("rhscope-case-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let case = root.join("case");
    std::fs::create_dir_all(&case).unwrap();
    let trace = case.join("node1.etl");
    std::fs::copy(common::traces("mixed.etl"), &trace).unwrap();
    std::fs::write(case.join("notes.txt"), "notes\n").unwrap();
    let before = listing(&root);
    let report_into = |out: &Path| {
        rhscope(&[
            "report",
            trace.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "-q",
        ])
    };

    // The folder holds the input itself.
    let o = report_into(&case);
    assert_error(&o, &case, "refusing to write there");
    assert!(
        stderr(&o).contains("an input of this run"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        listing(&root),
        before,
        "nothing touched, nothing left beside"
    );
    assert_eq!(std::fs::read(case.join("notes.txt")).unwrap(), b"notes\n");

    // A folder of the user's notes alone, with the input elsewhere.
    let notes = root.join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("notes.txt"), "mine\n").unwrap();
    let o = report_into(&notes);
    assert_error(&o, &notes, "did not write (notes.txt)");
    assert_eq!(std::fs::read(notes.join("notes.txt")).unwrap(), b"mine\n");

    // A new folder, then the same folder again: rhscope replaces its own.
    let out = root.join("report");
    for _ in 0..2 {
        let o = report_into(&out);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let written = listing(&out);
    assert!(
        written.contains(&".rhscope-written".to_string()),
        "{written:?}"
    );
    assert!(written.contains(&"index.html".to_string()), "{written:?}");
    let marker = std::fs::read_to_string(out.join(".rhscope-written")).unwrap();
    assert!(marker.lines().any(|l| l == "findings.json"), "{marker}");
    // No litter beside it.
    let beside: Vec<String> = listing(&root)
        .into_iter()
        .filter(|p| p.starts_with('.'))
        .collect();
    assert!(beside.is_empty(), "{beside:?}");

    // Once the user adds a file to it, it is theirs too.
    std::fs::write(out.join("findings-reviewed.txt"), "ok\n").unwrap();
    let o = report_into(&out);
    assert_error(&o, &out, "findings-reviewed.txt");
    assert!(out.join("index.html").exists() && out.join("findings-reviewed.txt").exists());

    // diff --report follows the same rule.
    let fixed = common::traces("mixed-fixed.etl");
    let o = rhscope(&[
        "diff",
        trace.to_str().unwrap(),
        fixed.to_str().unwrap(),
        "--report",
        notes.to_str().unwrap(),
        "-q",
    ]);
    assert_error(&o, &notes, "did not write");
    std::fs::remove_dir_all(&root).unwrap();
}
