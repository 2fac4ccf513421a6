//! The timeline: a lane per thread with its entry points, API calls and
//! waits over time, threshold lines and finding markers.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::*;
use crate::analysis::Analysis;
use crate::model::{EntryPoint, UsageCode};

/// One lane of the timeline: a thread, and what it is.
pub struct Lane {
    pub pid: u32,
    pub tid: u32,
    pub label: String,
}

/// Threads to draw, entry-point threads first, at most `cap`; the number
/// left out is returned with them. Lanes are named by thread id and the
/// resource whose calls they ran.
pub fn lanes(a: &Analysis, cap: usize) -> (Vec<Lane>, usize) {
    let s = &a.spans;
    // Calls seen only in logs that name no thread have no lane.
    let mut rhs: Vec<(u32, u32)> = s
        .entries
        .iter()
        .filter(|e| e.thread_known())
        .map(|e| (e.pid, e.tid))
        .collect();
    rhs.sort_unstable();
    rhs.dedup();
    let mut workers: Vec<(u32, u32)> = s
        .workers
        .iter()
        .map(|w| (w.pid, w.tid))
        .filter(|k| !rhs.contains(k))
        .collect();
    workers.sort_unstable();
    workers.dedup();
    let flagged = |k: &(u32, u32)| {
        a.findings
            .iter()
            .any(|f| (f.finding.pid, f.finding.tid) == *k)
    };
    let resource_of = |k: &(u32, u32)| {
        let mut names: Vec<&str> = s
            .entries
            .iter()
            .filter(|e| (e.pid, e.tid) == *k)
            .map(|e| &*e.resource)
            .chain(
                s.workers
                    .iter()
                    .filter(|w| (w.pid, w.tid) == *k)
                    .filter_map(|w| w.resource.as_deref()),
            )
            .collect();
        names.sort_unstable();
        names.dedup();
        match names.as_slice() {
            [one] => crate::report::width::elide(one, 14),
            [] => String::new(),
            _ => format!("{} resources", names.len()),
        }
    };
    let mut all: Vec<((u32, u32), String)> = rhs
        .iter()
        .map(|k| (*k, format!("{} {}", k.1, resource_of(k))))
        .chain(
            workers
                .iter()
                .map(|k| (*k, format!("{} worker {}", k.1, resource_of(k)))),
        )
        .collect();
    // Threads with findings first, so a capped chart still shows them.
    all.sort_by_key(|(k, _)| !flagged(k));
    let left_out = all.len().saturating_sub(cap);
    all.truncate(cap);
    // Row 0 is drawn at the bottom: the first lanes go on top.
    all.reverse();
    let lanes = all
        .into_iter()
        .map(|((pid, tid), label)| Lane {
            pid,
            tid,
            label: label.trim_end().to_string(),
        })
        .collect();
    (lanes, left_out)
}

/// Seconds since the trace's first event.
pub fn secs(a: &Analysis, ns: i64) -> f64 {
    (ns - a.spans.first_ns.unwrap_or(0)) as f64 / 1e9
}

/// A threshold line at `x` (seconds since the start) on a timeline.
pub struct Mark {
    pub x: f64,
    pub colour: RGBColor,
    pub label: String,
}

/// Thread timeline over [from, to] seconds since the trace start, with its
/// legend: every entry point drawn, the usage codes of API calls, waits,
/// findings and each threshold with its value.
pub fn timeline<DB: DrawingBackend>(
    root: &Area<DB>,
    a: &Analysis,
    (lanes, left_out): (&[Lane], usize),
    (from, to): (f64, f64),
    title: &str,
    marks: &[Mark],
) -> Result<(), String> {
    let (plot, side) = with_legend(root);
    let caption = if left_out > 0 {
        format!("{title} ({left_out} more threads not shown)")
    } else {
        title.to_string()
    };
    let n = lanes.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&plot)
        .caption(
            crate::report::width::elide(&caption, 120),
            ("sans-serif", 17),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(150)
        .build_cartesian_2d(from..to.max(from + 1e-6), -0.5f64..n - 0.5)
        .map_err(err)?;
    let labels: Vec<String> = lanes.iter().map(|l| l.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .y_labels(lanes.len() + 1)
        .y_label_formatter(&|y| category(&labels, *y))
        .x_desc("seconds since the first event")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    let drawn = spans(&mut chart, a, lanes, from, to)?;
    for m in marks.iter().filter(|m| m.x >= from && m.x <= to) {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(m.x, -0.5), (m.x, n - 0.5)],
                8,
                5,
                m.colour.stroke_width(2),
            ))
            .map_err(err)?;
    }
    let lane_of = |pid: u32, tid: u32| lanes.iter().position(|l| l.pid == pid && l.tid == tid);
    let findings: Vec<(f64, f64)> = a
        .findings
        .iter()
        .filter_map(|f| {
            let lane = lane_of(f.finding.pid, f.finding.tid)? as f64;
            let x = secs(a, f.finding.begin.ns());
            (x >= from && x <= to).then_some((x, lane))
        })
        .collect();
    chart
        .draw_series(
            findings
                .iter()
                .map(|&(x, lane)| TriangleMarker::new((x, lane - 0.38), 8, FINDING.filled())),
        )
        .map_err(err)?;
    let mut items: Vec<LegendItem> = drawn
        .entry_points
        .iter()
        .map(|ep| {
            LegendItem::new(
                Swatch::Bar(entry_colour(*ep)),
                format!("{ep} (entry point)"),
            )
        })
        .collect();
    for (u, label) in [
        (Some(UsageCode::DoNotUse), "API call: do not use"),
        (
            Some(UsageCode::WorkerThreadOnly),
            "API call: worker thread only",
        ),
        (
            Some(UsageCode::SomeEntryPointsOkay),
            "API call: not from Close/Offline/Online/Open/Terminate",
        ),
        (None, "API call not in the usage table"),
    ] {
        if drawn.usages.contains(&u) {
            items.push(LegendItem::new(Swatch::Inner(usage_colour(u)), label));
        }
    }
    if drawn.waits {
        items.push(LegendItem::new(
            Swatch::Bar(WAIT),
            "thread waiting (switched out)",
        ));
    }
    if !findings.is_empty() {
        items.push(LegendItem::new(
            Swatch::Triangle(FINDING),
            "finding (at the call's begin)",
        ));
    }
    for m in marks.iter().filter(|m| m.x >= from && m.x <= to) {
        items.push(LegendItem::new(Swatch::Dashed(m.colour), m.label.clone()));
    }
    legend(&side, &items)
}

/// What a timeline drew, for its legend.
#[derive(Default)]
struct Drawn {
    entry_points: Vec<EntryPoint>,
    usages: Vec<Option<UsageCode>>,
    waits: bool,
}

/// The timeline's bars: waits (background), entry points (a colour each),
/// API calls (coloured by usage code) and entry-point labels where a bar
/// is wide enough to hold one.
fn spans<'a, DB: DrawingBackend + 'a>(
    chart: &mut Plot<'a, DB, RangedCoordf64, RangedCoordf64>,
    a: &Analysis,
    lanes: &[Lane],
    from: f64,
    to: f64,
) -> Result<Drawn, String> {
    let mut drawn = Drawn::default();
    let lane_of = |pid: u32, tid: u32| lanes.iter().position(|l| l.pid == pid && l.tid == tid);
    let end = a.spans.last_ns.unwrap_or(0);
    let s = &a.spans;
    let clip = |x: f64| x.clamp(from, to);
    // The thinnest bar drawn: a pixel or so.
    let min_width = (to - from) / 1500.0;
    let visible = |x0: f64, x1: f64| x1 >= from && x0 <= to;
    let waits: Vec<_> = s
        .waits
        .iter()
        .filter_map(|w| {
            let lane = lanes.iter().position(|l| l.tid == w.tid)? as f64;
            let (b, e) = (secs(a, w.out_ns), secs(a, w.in_ns.unwrap_or(end)));
            visible(b, e).then(|| {
                Rectangle::new(
                    [
                        (clip(b), lane - 0.45),
                        (clip(e).max(clip(b) + min_width), lane + 0.45),
                    ],
                    WAIT.filled(),
                )
            })
        })
        .collect();
    drawn.waits = !waits.is_empty();
    chart.draw_series(waits).map_err(err)?;
    let mut bars: Vec<(EntryPoint, Rectangle<(f64, f64)>)> = Vec::new();
    for e in &s.entries {
        let Some(lane) = lane_of(e.pid, e.tid) else {
            continue;
        };
        let (b, x) = (secs(a, e.begin_ns), secs(a, e.end_ns.unwrap_or(end)));
        if !visible(b, x) {
            continue;
        }
        let lane = lane as f64;
        bars.push((
            e.entry_point,
            Rectangle::new(
                [
                    (clip(b), lane - 0.3),
                    (clip(x).max(clip(b) + min_width), lane + 0.3),
                ],
                entry_colour(e.entry_point).filled(),
            ),
        ));
        if !drawn.entry_points.contains(&e.entry_point) {
            drawn.entry_points.push(e.entry_point);
        }
    }
    drawn.entry_points.sort();
    chart
        .draw_series(bars.into_iter().map(|(_, r)| r))
        .map_err(err)?;
    let mut calls = Vec::new();
    for c in &s.calls {
        let Some(lane) = lane_of(c.pid, c.tid) else {
            continue;
        };
        let (b, x) = (secs(a, c.begin_ns), secs(a, c.end_ns.unwrap_or(end)));
        if !visible(b, x) {
            continue;
        }
        let usage = a.call(c).usage;
        if !drawn.usages.contains(&usage) {
            drawn.usages.push(usage);
        }
        let lane = lane as f64;
        calls.push(Rectangle::new(
            [
                (clip(b), lane - 0.12),
                (clip(x).max(clip(b) + min_width), lane + 0.12),
            ],
            usage_colour(usage).filled(),
        ));
    }
    chart.draw_series(calls).map_err(err)?;
    // A label on a bar wide enough for it (about 7 px a character over
    // about 1000 px of plot).
    let px_per_s = 1000.0 / (to - from).max(1e-9);
    let labels = s.entries.iter().filter_map(|e| {
        let lane = lane_of(e.pid, e.tid)? as f64;
        let (x0, x1) = (
            clip(secs(a, e.begin_ns)),
            clip(secs(a, e.end_ns.unwrap_or(end))),
        );
        let text = format!("{} {}", e.resource, e.entry_point);
        let fits = (x1 - x0) * px_per_s > 7.5 * crate::report::width::width(&text) as f64 + 8.0;
        fits.then(|| Text::new(text, (x0 + 4.0 / px_per_s, lane + 0.29), ("sans-serif", 12)))
    });
    chart.draw_series(labels).map_err(err)?;
    Ok(drawn)
}
