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
        let mut charts = vec![
            "t1-timeline",
            "t1-blocking-api",
            "t1-blocking-entry-point",
            "t1-durations",
            "t1-hangs",
        ];
        // A zoomed timeline per finding about a call (not restarts), six at most.
        let zoomable = a
            .findings
            .iter()
            .filter(|f| f.finding.rule != rhscope::model::Rule::RhsRestart)
            .count();
        let zooms: Vec<String> = (1..=zoomable.min(6))
            .map(|k| format!("t1-finding-{k}"))
            .collect();
        charts.extend(zooms.iter().map(String::as_str));
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
            (140 + 34 * lanes) as u32,
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
    let v = perfetto::trace_events(&a);
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
    assert_eq!(count("rhs-message", "i"), 2);
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
            "RHS entry point 3000",
            "RHS entry point 3004",
            "cluster worker (AppRes-2) 6000"
        ]
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["name"] == "process_name")
            .count(),
        1
    );
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

/// The report and the diff report in a real browser. Needs Debian's
/// `chromium`; `.ci/run` installs it and runs this with `--ignored`.
#[test]
#[ignore = "needs chromium; .ci/run installs it and runs this test"]
fn the_report_renders_in_headless_chromium() {
    let root = std::env::temp_dir().join(format!("rhscope-browser-{}", std::process::id()));
    let dir = root.join("report");
    write_report(&[analysis("mixed")], &dir, &[]).unwrap();
    renders_in_chromium(&dir, &root);
    let full = |name: &str| {
        #[allow(unused_mut)]
        let mut a = analysis(name);
        #[cfg(feature = "polars")]
        rhscope::analysis::fill_aggregates(&mut a).unwrap();
        a
    };
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
