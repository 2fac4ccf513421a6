//! Reports for every bundled scenario: the files are there, SVGs parse,
//! PNGs decode at the expected size, the HTML links only local files and
//! lists exactly the scenario's findings; and the Perfetto export holds the
//! exact events.
#![cfg(feature = "report")]

mod common;

use common::analysis;

use std::path::{Path, PathBuf};

use rhscope::analysis::Analysis;
use rhscope::model::Finding;
use rhscope::report::html::write_report;
use rhscope::report::perfetto;
use rhscope::simulate::GroundTruth;

fn traces() -> PathBuf {
    common::traces("")
}

fn truth(name: &str) -> Vec<Finding> {
    let t: GroundTruth = serde_json::from_slice(
        &std::fs::read(traces().join(format!("{name}.expected.json"))).unwrap(),
    )
    .unwrap();
    t.findings
}

fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    // Not blank: more than one colour in the image.
    let first = &buf[..3];
    assert!(
        buf.chunks(3).any(|px| px != first),
        "{} is one colour",
        path.display()
    );
    (info.width, info.height)
}

#[test]
fn every_scenario_gets_a_complete_local_report() {
    let root = std::env::temp_dir().join(format!("rhscope-report-{}", std::process::id()));
    for name in common::SCENARIOS {
        let a = analysis(name);
        let dir = root.join(name);
        write_report(std::slice::from_ref(&a), &dir, &[]).unwrap();
        let mut charts: Vec<String> = [
            "t1-timeline",
            "t1-blocking-api",
            "t1-blocking-entry-point",
            "t1-durations",
        ]
        .map(String::from)
        .to_vec();
        // Calls that never returned get their chart.
        if a.spans.entries.iter().any(|e| e.end_ns().is_none()) {
            charts.push("t1-hangs".into());
        }
        // A timeline zoomed on each of the first six verdicts about calls,
        // twice (begin, end) for a call longer than ten seconds.
        let zoomed =
            a.verdicts.iter().enumerate().filter(|(_, v)| {
                a.findings[v.lead].finding.rule != rhscope::model::Rule::RhsRestart
            });
        for (n, v) in zoomed.take(6) {
            let f = &a.findings[v.lead].finding;
            let long = match f.rule {
                rhscope::model::Rule::PendingTimeout => true,
                _ => f.duration_ns.is_some_and(|d| d > 10_000_000_000),
            };
            for k in 1..=(1 + usize::from(long)) {
                charts.push(format!("t1-verdict-{}-{k}", n + 1));
            }
        }
        for c in &charts {
            let svg = std::fs::read_to_string(dir.join("charts").join(format!("{c}.svg"))).unwrap();
            let doc =
                roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{name} {c}.svg: {e}"));
            assert_eq!(doc.root_element().tag_name().name(), "svg");
            let (w, h) = png_size(&dir.join("charts").join(format!("{c}.png")));
            assert_eq!(w, 1400, "{name} {c}");
            assert!(h >= 150, "{name} {c}: {h}");
        }
        let files = std::fs::read_dir(dir.join("charts")).unwrap().count();
        assert_eq!(
            files,
            2 * charts.len(),
            "{name}: exactly the charts expected"
        );
        // The timeline has one lane per thread: RHS threads plus workers.
        let lanes = rhscope_lanes(&a);
        assert_eq!(
            png_size(&dir.join("charts/t1-timeline.png")).1,
            (160 + 34 * lanes.max(8)) as u32,
            "{name}"
        );

        let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
        for link in links(&html) {
            assert!(
                !link.contains("://") && !link.starts_with("//") && !link.starts_with('/'),
                "{name}: non-local link {link}"
            );
            assert!(dir.join(&link).is_file(), "{name}: {link} missing");
        }
        assert!(!html.contains("<script"), "{name}: no scripts");
        let want = truth(name);
        let rows = html.matches("<tr class=\"error\">").count()
            + html.matches("<tr class=\"warning\">").count();
        assert_eq!(rows, want.len(), "{name}: one table row per finding");
        // One verdict item each, the worst first.
        assert_eq!(
            html.matches("<li class=\"verdict ").count(),
            a.verdicts.len(),
            "{name}"
        );
        for f in &want {
            assert!(
                html.contains(&f.begin.rfc3339()),
                "{name}: finding at {} not listed",
                f.begin
            );
        }
        let json: Vec<Finding> =
            serde_json::from_slice(&std::fs::read(dir.join("findings.json")).unwrap()).unwrap();
        assert_eq!(json, want, "{name}: findings.json");
    }
    let _ = std::fs::remove_dir_all(&root);
}

fn rhscope_lanes(a: &Analysis) -> usize {
    let mut t: Vec<(u32, u32)> = a
        .spans
        .entries
        .iter()
        .filter(|e| e.thread_known())
        .map(|e| (e.pid, e.tid))
        .chain(a.spans.workers.iter().map(|w| (w.pid, w.tid)))
        .collect();
    t.sort_unstable();
    t.dedup();
    t.len().min(30)
}

/// Every src= and href= value of a page.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            if let Some(j) = rest.find('"') {
                out.push(rest[..j].to_string());
            }
        }
    }
    out
}

#[test]
fn a_report_replaces_an_old_one_whole() {
    let dir = std::env::temp_dir().join(format!("rhscope-report-replace-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // An older report of a run with two traces: a chart this run does not
    // write, listed as rhscope's own.
    write_report(&[analysis("healthy")], &dir, &[]).unwrap();
    std::fs::write(dir.join("charts/t2-timeline.svg"), "old").unwrap();
    let marker = dir.join(".rhscope-written");
    let list = std::fs::read_to_string(&marker).unwrap() + "charts/t2-timeline.svg\n";
    std::fs::write(&marker, list).unwrap();
    write_report(&[analysis("healthy")], &dir, &[]).unwrap();
    assert!(!dir.join("charts/t2-timeline.svg").exists());
    assert!(dir.join("index.html").is_file());
    let parent = dir.parent().unwrap();
    let leftovers = std::fs::read_dir(parent)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".rhscope-")
        })
        .count();
    assert_eq!(leftovers, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn perfetto_export_holds_the_exact_events() {
    let a = analysis("do-not-use-in-online");
    let mut written = Vec::new();
    perfetto::write_trace_events(std::slice::from_ref(&a), &mut written).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&written).unwrap();
    // The events first (written as they are made), then what they are.
    let text = String::from_utf8(written).unwrap();
    assert!(
        text.starts_with(r#"{"traceEvents":[{"#),
        "{:?}",
        text.get(..40)
    );
    assert!(text.contains(r#"],"displayTimeUnit":"ms","otherData":{"start":"#));
    assert_eq!(v.as_object().unwrap().len(), 3);
    assert_eq!(v["otherData"]["timelines"][0]["pids_from"], 0);
    let events = v["traceEvents"].as_array().unwrap();
    let count = |cat: &str, ph: &str| {
        events
            .iter()
            .filter(|e| e["cat"] == cat && e["ph"] == ph)
            .count()
    };
    assert_eq!(count("entry-point", "X"), a.spans.entries.len());
    assert_eq!(count("api-call", "X"), a.spans.calls.len());
    assert_eq!(count("finding", "i"), truth("do-not-use-in-online").len());
    // Deadlock-monitor and restart messages.
    assert_eq!(count("message", "i"), 2);
    // The worker's creation and the readying of waits as arrows.
    assert_eq!(count("worker", "s"), a.spans.workers.len());
    assert_eq!(count("worker", "f"), a.spans.workers.len());
    let readied = a
        .spans
        .waits
        .iter()
        .filter(|w| w.readied_by.is_some())
        .count();
    assert_eq!(
        (count("ready", "s"), count("ready", "f")),
        (readied, readied)
    );
    assert_eq!(count("wait", "X"), a.spans.waits.len());
    let online = events
        .iter()
        .find(|e| e["cat"] == "entry-point" && e["args"]["returned"] == false)
        .unwrap();
    assert_eq!(online["name"], "Online AppRes-1");
    assert_eq!(
        (online["pid"].as_u64(), online["tid"].as_u64()),
        (Some(2000), Some(3000))
    );
    // Unreturned: it lasts to the end of the trace (300.006 s, in us).
    assert_eq!(online["dur"].as_f64().unwrap(), 300_006_000.0);
    let api = events
        .iter()
        .find(|e| e["cat"] == "api-call" && e["name"] == "OnlineClusterResource")
        .unwrap();
    assert_eq!(api["args"]["usage"], "do-not-use");
    let threads: Vec<&str> = events
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        threads,
        [
            "2004 (RHS deadlock monitor)",
            "3000 (entry points of AppRes-1)",
            "3004 (entry points of AppRes-2)",
            "6000 (worker of AppRes-2)"
        ]
    );
    // Every thread with an event has a name, every process too.
    let named: std::collections::BTreeSet<(u64, u64)> = events
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .map(|e| (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()))
        .collect();
    for e in events.iter().filter(|e| e["ph"] != "M") {
        let key = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        assert!(named.contains(&key), "unnamed thread {key:?}: {e}");
    }
    let processes: Vec<&str> = events
        .iter()
        .filter(|e| e["name"] == "process_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(processes.len(), 1);
    assert!(
        processes[0].starts_with("rhs.exe 2000 on ")
            && processes[0].ends_with("traces/do-not-use-in-online.etl"),
        "{processes:?}"
    );
}

/// Several timelines in one export: one JSON document, each node's events
/// in its own pid range, each node listed with where its pids start.
#[test]
fn perfetto_export_of_several_nodes_is_one_document() {
    let names = ["do-not-use-in-online", "healthy", "mixed"];
    let all: Vec<Analysis> = names.iter().map(|n| analysis(n)).collect();
    let mut written = Vec::new();
    perfetto::write_trace_events(&all, &mut written).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&written).unwrap();
    let events = v["traceEvents"].as_array().unwrap();
    let timelines = v["otherData"]["timelines"].as_array().unwrap();
    let starts: Vec<u64> = timelines
        .iter()
        .map(|t| t["pids_from"].as_u64().unwrap())
        .collect();
    assert_eq!(starts, [0, 1_000_000_000, 2_000_000_000]);
    for (node, a) in all.iter().enumerate() {
        let range = starts[node]..starts[node] + 1_000_000_000;
        let mine = |cat: &str| {
            events
                .iter()
                .filter(|e| e["cat"] == cat && range.contains(&e["pid"].as_u64().unwrap()))
                .count()
        };
        assert_eq!(
            mine("entry-point"),
            a.spans.entries.len(),
            "{}",
            names[node]
        );
        assert_eq!(mine("api-call"), a.spans.calls.len(), "{}", names[node]);
        assert_eq!(mine("finding"), a.findings.len(), "{}", names[node]);
        assert!(timelines[node]["trace"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{}.etl", names[node])));
    }
    // Every event is in some node's range.
    assert!(events
        .iter()
        .all(|e| e["pid"].as_u64().unwrap() < 3_000_000_000));
}

/// Loads `index.html` of `dir` in headless Chromium: the screenshot is not
/// blank and the page logs no console errors or failed loads.
fn renders_in_chromium(dir: &Path, root: &Path) {
    let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("chromium is not installed (apt-get install chromium)");
    let shot = root.join("shot.png");
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1400,1800",
        ])
        .arg(format!(
            "--user-data-dir={}",
            root.join("profile").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", dir.join("index.html").display()))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = log
        .lines()
        .filter(|l| {
            (l.contains("CONSOLE") && (l.contains("rror") || l.contains("Uncaught")))
                || l.contains("Failed to load resource")
                || l.contains("net::ERR_")
        })
        .collect();
    assert!(problems.is_empty(), "console errors: {problems:#?}");
    let decoder = png::Decoder::new(std::fs::File::open(&shot).expect("a screenshot"));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let non_white = buf
        .chunks(channels)
        .filter(|px| px.iter().take(3).any(|&c| c < 200))
        .count();
    let total = (info.width * info.height) as usize;
    assert!(
        non_white * 100 > total,
        "screenshot is blank: {non_white} of {total} pixels drawn"
    );
}

/// Loads `index.html` of `dir` in headless Chromium inside a test page
/// that measures, after layout, every text box of the summary (headings,
/// the summary table, each verdict's lines) and lists those that overlap.
fn overlapping_text(dir: &Path, root: &Path) -> Vec<String> {
    let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("chromium is not installed (apt-get install chromium)");
    let check = root.join("overlaps.html");
    let page = r#"<!DOCTYPE html><html><body><iframe id="f" src="REPORT" style="width:1400px;height:2000px"></iframe><pre id="out">not measured</pre>
<script>
document.getElementById('f').onload = function () {
  const d = this.contentDocument, out = document.getElementById('out');
  if (!d) { out.textContent = 'no access to the report'; return; }
  const sel = 'h1, h2, h3, p, table.summary th, table.summary td, li.verdict .sev, li.verdict .what, li.verdict .why, li.verdict .fix, li.verdict .then, li.verdict .evidence';
  const boxes = [];
  for (const e of d.querySelectorAll(sel)) for (const r of e.getClientRects()) if (r.width > 0 && r.height > 0) boxes.push([e, r]);
  const found = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [a, ra] = boxes[i], [b, rb] = boxes[j];
    if (a === b || a.contains(b) || b.contains(a)) continue;
    const w = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
    const h = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
    if (w > 1 && h > 1) found.push(a.textContent.slice(0, 40) + ' | ' + b.textContent.slice(0, 40));
  }
  out.textContent = 'measured ' + boxes.length + '\n' + found.join('\n');
};
</script></body></html>"#
        .replace("REPORT", &format!("file://{}", dir.join("index.html").display()));
    std::fs::write(&check, page).unwrap();
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!(
            "--user-data-dir={}",
            root.join("profile").display()
        ))
        .arg(format!("file://{}", check.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let text = dom
        .split("<pre id=\"out\">")
        .nth(1)
        .and_then(|t| t.split("</pre>").next())
        .unwrap_or("");
    let mut lines = text.lines();
    let measured = lines.next().unwrap_or("");
    assert!(
        measured.starts_with("measured ") && measured != "measured 0",
        "the page was not measured: {text}"
    );
    lines.map(str::to_string).collect()
}

/// The report and the diff report in a real browser. Needs Debian's
/// `chromium`; `.ci/run` installs it and runs this with `--ignored`.
#[test]
#[ignore = "needs chromium; .ci/run installs it and runs this test"]
fn the_report_renders_in_headless_chromium() {
    let root = std::env::temp_dir().join(format!("rhscope-browser-{}", std::process::id()));
    let dir = root.join("report");
    write_report(&[analysis("mixed")], &dir, &[]).unwrap();
    renders_in_chromium(&dir, &root);
    assert_eq!(overlapping_text(&dir, &root), Vec::<String>::new());
    let full = analysis;
    use rhscope::analysis::diff::{Diff, Side};
    let diff = Diff::new(
        &Side::of("mixed", &[full("mixed")]),
        &Side::of("mixed-fixed", &[full("mixed-fixed")]),
    );
    let diff_dir = root.join("diff");
    rhscope::report::html_diff::write_diff_report(&diff, &diff_dir, &[]).unwrap();
    renders_in_chromium(&diff_dir, &root);
    let _ = std::fs::remove_dir_all(&root);
}

/// The page opens with the worst verdict: the deadlock, its call, why and
/// what to do; identical misuses are one item with their count.
#[test]
fn the_page_opens_with_the_worst_incident() {
    let dir = common::temp_dir("report-verdict");
    write_report(&[analysis("mixed")], &dir.join("r"), &[]).unwrap();
    let html = std::fs::read_to_string(dir.join("r/index.html")).unwrap();
    let items: Vec<&str> = html.split("<li class=\"verdict ").skip(1).collect();
    assert_eq!(items.len(), 5);
    assert!(
        items[0].contains("<div class=\"what\">AppRes-2's Online (thread 3004) blocked 300.000 s in OnlineClusterResource(AppRes-3) (do not use) until RHS's deadlock monitor fired"),
        "{}",
        &items[0][..400.min(items[0].len())]
    );
    assert!(items[0].contains("<b>What to do:</b> Never call it from a resource DLL"));
    assert!(items[1]
        .contains("CLUSCTL_RESOURCE_GET_CLASS_INFO(AppRes-7) (worker thread only) 15 times"));
    // The verdict comes before the details.
    assert!(html.find("Verdict, most severe first") < html.find("Every finding (25)"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--budget IsAlive=500`: the durations chart draws IsAlive's budget at
/// 500 ms, the other entry points' at 300 ms, and says so in its legend.
#[test]
fn the_durations_chart_draws_each_entry_points_own_budget() {
    let dir = common::temp_dir("report-budget");
    let out = dir.join("r");
    let o = common::rhscope(&[
        "report",
        common::traces("mixed.etl").to_str().unwrap(),
        "--budget",
        "IsAlive=500",
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(out.join("charts/t1-durations.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    assert!(texts.contains(&"IsAlive budget 500 ms"), "{texts:?}");
    assert!(texts.contains(&"LooksAlive budget 300 ms"), "{texts:?}");
    assert!(!texts.iter().any(|t| t.starts_with("IsAlive budget 300")));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every piece of evidence of every finding names a place `dump --at`
/// prints as exactly that event, at the evidence's time; records of
/// compressed buffers too.
#[test]
fn dump_at_prints_each_evidence_event() {
    let trace = common::traces("mixed.etl");
    let o = common::rhscope(&["analyze", trace.to_str().unwrap(), "--format", "json", "-q"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut checked = 0;
    for f in v["analyses"][0]["findings"].as_array().unwrap() {
        for e in f["evidence"].as_array().unwrap() {
            let at = e["at"].as_str().unwrap();
            let o = common::rhscope(&["dump", trace.to_str().unwrap(), "--at", at, "-q"]);
            assert!(
                o.status.success(),
                "{at}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let lines: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap().lines().collect();
            assert_eq!(lines.len(), 1, "{at}");
            let ev: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
            assert_eq!(ev["time"], e["time"], "{at}");
            assert_eq!(ev["location"]["buffer_offset"], e["buffer_offset"]);
            assert_eq!(ev["location"]["record_offset"], e["record_offset"]);
            checked += 1;
        }
    }
    assert!(checked >= 40, "{checked}");
    // A compressed trace: the places dump gives are places --at finds.
    let fixture = common::data("net.4.5.2.x86.etl");
    let o = common::rhscope(&["dump", fixture.to_str().unwrap(), "--limit", "3000", "-q"]);
    let out = String::from_utf8(o.stdout).unwrap();
    let compressed: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("\"compressed\":true"))
        .collect();
    assert!(compressed.len() > 1000, "{}", compressed.len());
    for line in compressed.iter().step_by(397) {
        let ev: serde_json::Value = serde_json::from_str(line).unwrap();
        let loc = &ev["location"];
        let at = format!(
            "{:#x}+{:#x}",
            loc["buffer_offset"].as_u64().unwrap(),
            loc["record_offset"].as_u64().unwrap()
        );
        let o = common::rhscope(&["dump", fixture.to_str().unwrap(), "--at", &at, "-q"]);
        assert_eq!(
            std::str::from_utf8(&o.stdout).unwrap().trim_end(),
            *line,
            "{at}"
        );
    }
    let missing = common::rhscope(&["dump", trace.to_str().unwrap(), "--at", "0x10+0x10"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no record at 0x10+0x10"));
}
