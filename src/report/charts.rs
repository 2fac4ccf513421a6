//! The charts, drawn once per backend (SVG and PNG) with plotters.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::analysis::Analysis;
use crate::model::{Rule, UsageCode};

/// Draws a chart as `name.svg` and `name.png` in `dir`; a backend's error
/// names the file.
macro_rules! render {
    ($dir:expr, $name:expr, $height:expr, |$root:ident| $body:expr) => {{
        let chart_error =
            |file: &std::path::Path, detail: String| $crate::report::ReportError::Chart {
                file: file.display().to_string(),
                detail,
            };
        let svg = $dir.join(format!("{}.svg", $name));
        {
            let $root =
                SVGBackend::new(&svg, ($crate::report::charts::WIDTH, $height)).into_drawing_area();
            $body.map_err(|e| chart_error(&svg, e))?;
            $root
                .present()
                .map_err(|e| chart_error(&svg, $crate::report::charts::err(e)))?;
        }
        let png = $dir.join(format!("{}.png", $name));
        {
            let $root = BitMapBackend::new(&png, ($crate::report::charts::WIDTH, $height))
                .into_drawing_area();
            $body.map_err(|e| chart_error(&png, e))?;
            $root
                .present()
                .map_err(|e| chart_error(&png, $crate::report::charts::err(e)))?;
        }
        Ok::<_, $crate::report::ReportError>(())
    }};
}

pub const WIDTH: u32 = 1400;

pub type Area<'a, DB> = DrawingArea<DB, Shift>;

/// Errors from any backend, as text (backend error types differ).
pub fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Colours: one per entry point, one per usage code, three for blocking.
const ENTRY_COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
    RGBColor(227, 119, 194),
];
pub const DO_NOT_USE: RGBColor = RGBColor(214, 39, 40);
pub const WORKER_ONLY: RGBColor = RGBColor(255, 127, 14);
pub const SOME_OK: RGBColor = RGBColor(230, 190, 0);
pub const OTHER_API: RGBColor = RGBColor(90, 90, 90);
pub const WAIT: RGBColor = RGBColor(225, 225, 225);
pub const RUNNING: RGBColor = RGBColor(44, 160, 44);
pub const READY: RGBColor = RGBColor(255, 187, 120);
pub const WAITING: RGBColor = RGBColor(174, 199, 232);

pub fn usage_colour(u: Option<UsageCode>) -> RGBColor {
    match u {
        Some(UsageCode::DoNotUse) => DO_NOT_USE,
        Some(UsageCode::WorkerThreadOnly) => WORKER_ONLY,
        Some(UsageCode::SomeEntryPointsOkay) => SOME_OK,
        None => OTHER_API,
    }
}

/// The label of a category axis tick: category i is centred on i.
fn category(names: &[String], v: f64) -> String {
    let i = v.round();
    if (v - i).abs() < 0.05 && i >= 0.0 {
        names.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// The legend of a chart's labelled series, in one style everywhere.
pub(crate) fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(err)
}

/// One labelled series of bars (corner pairs) in one colour, with its
/// legend swatch.
fn bar_series<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    bars: impl Iterator<Item = [(f64, f64); 2]>,
    colour: RGBColor,
    label: &str,
) -> Result<(), String> {
    chart
        .draw_series(bars.map(|corners| Rectangle::new(corners, colour.filled())))
        .map_err(err)?
        .label(label)
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.filled()));
    Ok(())
}

/// The frame of a horizontal bar chart: 0..max across, one row per name
/// (row i centred on i), names as the y labels.
pub(crate) fn bar_frame<'a, DB: DrawingBackend>(
    root: &'a Area<DB>,
    caption: String,
    names: &[String],
    max: f64,
    label_width: u32,
    x_desc: &str,
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>, String> {
    let n = names.len().max(1);
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(label_width)
        .build_cartesian_2d(0f64..max, -0.5f64..n as f64 - 0.5)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n + 1)
        .y_label_formatter(&|y| category(names, *y))
        .x_desc(x_desc)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// One lane of the timeline: a thread, and what it is.
pub struct Lane {
    pub pid: u32,
    pub tid: u32,
    pub label: String,
}

/// Threads to draw, entry-point threads first, at most `cap`; the number
/// left out is returned with them.
pub fn lanes(a: &Analysis, cap: usize) -> (Vec<Lane>, usize) {
    let s = &a.spans;
    let mut rhs: Vec<(u32, u32)> = s.entries.iter().map(|e| (e.pid, e.tid)).collect();
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
    // Threads with findings go first so a capped chart still shows them.
    let flagged = |k: &(u32, u32)| {
        a.findings
            .iter()
            .any(|f| (f.finding.pid, f.finding.tid) == *k)
    };
    let mut all: Vec<((u32, u32), String)> = rhs
        .iter()
        .map(|k| (*k, format!("RHS {}", k.1)))
        .chain(workers.iter().map(|k| (*k, format!("worker {}", k.1))))
        .collect();
    all.sort_by_key(|(k, _)| !flagged(k));
    let left_out = all.len().saturating_sub(cap);
    all.truncate(cap);
    let lanes = all
        .into_iter()
        .map(|((pid, tid), label)| Lane { pid, tid, label })
        .collect();
    (lanes, left_out)
}

fn secs(a: &Analysis, ns: i64) -> f64 {
    (ns - a.spans.first_ns.unwrap_or(0)) as f64 / 1e9
}

/// Thread timeline over [from, to] seconds since the trace start.
#[allow(clippy::too_many_arguments)]
pub fn timeline<DB: DrawingBackend>(
    root: &Area<DB>,
    a: &Analysis,
    lanes: &[Lane],
    left_out: usize,
    from: f64,
    to: f64,
    title: &str,
    thresholds: &[(f64, &str)],
) -> Result<(), String> {
    root.fill(&WHITE).map_err(err)?;
    let caption = if left_out > 0 {
        format!("{title} ({left_out} more threads not shown)")
    } else {
        title.to_string()
    };
    let n = lanes.len().max(1) as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(120)
        .build_cartesian_2d(from..to.max(from + 1e-6), -0.5f64..n - 0.5)
        .map_err(err)?;
    let labels: Vec<String> = lanes.iter().map(|l| l.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(lanes.len() + 1)
        .y_label_formatter(&|y| category(&labels, *y))
        .x_desc("seconds since trace start")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    spans(&mut chart, a, lanes, from, to)?;
    let lane_of = |pid: u32, tid: u32| lanes.iter().position(|l| l.pid == pid && l.tid == tid);
    for (x, label) in thresholds {
        if *x >= from && *x <= to {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(*x, -0.5), (*x, n - 0.5)],
                    RED.stroke_width(2),
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    label.to_string(),
                    (label_x(*x, from, to), n - 0.55),
                    ("sans-serif", 13).into_font().color(&RED),
                )))
                .map_err(err)?;
        }
    }
    let marks = a.findings.iter().filter_map(|f| {
        let lane = lane_of(f.finding.pid, f.finding.tid)? as f64;
        let x = secs(a, f.finding.begin.ns());
        (x >= from && x <= to).then(|| TriangleMarker::new((x, lane), 9, RED.filled()))
    });
    chart.draw_series(marks).map_err(err)?;
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    Ok(())
}

/// The timeline's bars: waits (background), entry points (a colour each,
/// in the legend), API calls (coloured by usage code) and entry-point
/// labels where a bar is wide enough.
fn spans<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    a: &Analysis,
    lanes: &[Lane],
    from: f64,
    to: f64,
) -> Result<(), String> {
    let lane_of = |pid: u32, tid: u32| lanes.iter().position(|l| l.pid == pid && l.tid == tid);
    let end = a.spans.last_ns.unwrap_or(0);
    let s = &a.spans;
    let clip = |x: f64| x.clamp(from, to);
    // Waits first, as background.
    let waits = s.waits.iter().filter_map(|w| {
        let lane = lanes.iter().position(|l| l.tid == w.tid)? as f64;
        let (x0, x1) = (
            clip(secs(a, w.out_ns)),
            clip(secs(a, w.in_ns.unwrap_or(end))),
        );
        (x1 > x0).then(|| Rectangle::new([(x0, lane - 0.45), (x1, lane + 0.45)], WAIT.filled()))
    });
    chart.draw_series(waits).map_err(err)?;
    let mut entry_kinds: Vec<crate::model::EntryPoint> =
        s.entries.iter().map(|e| e.entry_point).collect();
    entry_kinds.sort();
    entry_kinds.dedup();
    for (k, ep) in entry_kinds.iter().enumerate() {
        let colour = ENTRY_COLOURS[k % ENTRY_COLOURS.len()];
        let bars = s
            .entries
            .iter()
            .filter(|e| e.entry_point == *ep)
            .filter_map(|e| {
                let lane = lane_of(e.pid, e.tid)? as f64;
                let (x0, x1) = (
                    clip(secs(a, e.begin_ns)),
                    clip(secs(a, e.end_ns.unwrap_or(end))),
                );
                (x1 >= x0).then(|| {
                    [
                        (x0, lane - 0.3),
                        (x1.max(x0 + (to - from) / 2000.0), lane + 0.3),
                    ]
                })
            });
        bar_series(chart, bars, colour, ep.name())?;
    }
    let calls = s.calls.iter().filter_map(|c| {
        let lane = lane_of(c.pid, c.tid)? as f64;
        let (x0, x1) = (
            clip(secs(a, c.begin_ns)),
            clip(secs(a, c.end_ns.unwrap_or(end))),
        );
        let colour = usage_colour(a.call(c).usage);
        (x1 >= x0).then(|| {
            Rectangle::new(
                [
                    (x0, lane - 0.12),
                    (x1.max(x0 + (to - from) / 2000.0), lane + 0.12),
                ],
                colour.filled(),
            )
        })
    });
    chart.draw_series(calls).map_err(err)?;
    // Labels on spans wide enough to carry them.
    let labels = s.entries.iter().filter_map(|e| {
        let lane = lane_of(e.pid, e.tid)? as f64;
        let (x0, x1) = (
            clip(secs(a, e.begin_ns)),
            clip(secs(a, e.end_ns.unwrap_or(end))),
        );
        ((x1 - x0) > (to - from) * 0.12).then(|| {
            Text::new(
                format!("{} {}", e.resource, e.entry_point),
                (x0, lane + 0.45),
                ("sans-serif", 12),
            )
        })
    });
    chart.draw_series(labels).map_err(err)?;
    Ok(())
}

/// Stacked horizontal bars: running / ready / waiting per key (ms).
pub fn blocking<DB: DrawingBackend>(
    root: &Area<DB>,
    title: &str,
    rows: &[(String, f64, f64, f64)],
    wall_clock_only: bool,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(err)?;
    let max = rows
        .iter()
        .map(|r| r.1 + r.2 + r.3)
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.05;
    let caption = if wall_clock_only {
        format!("{title} (no context switches: wall clock)")
    } else {
        title.to_string()
    };
    let names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let mut chart = bar_frame(root, caption, &names, max, 280, "total blocking time (ms)")?;
    for (part, colour, label) in [
        (0usize, RUNNING, "running"),
        (1, READY, "ready"),
        (2, WAITING, "waiting"),
    ] {
        let bars = rows.iter().enumerate().map(|(i, r)| {
            let parts = [r.1, r.2, r.3];
            let x0: f64 = parts[..part].iter().sum();
            [(x0, i as f64 - 0.35), (x0 + parts[part], i as f64 + 0.35)]
        });
        bar_series(&mut chart, bars, colour, label)?;
    }
    legend(&mut chart, SeriesLabelPosition::MiddleRight)?;
    Ok(())
}

/// Entry-point durations per entry point (log scale) with the budgets and
/// timeouts marked; unreturned calls as red crosses at their elapsed time.
pub fn durations<DB: DrawingBackend>(
    root: &Area<DB>,
    points: &[(String, f64, bool)],
    thresholds: &[(i64, String); 3],
) -> Result<(), String> {
    root.fill(&WHITE).map_err(err)?;
    let mut cats: Vec<String> = points.iter().map(|p| p.0.clone()).collect();
    cats.sort();
    cats.dedup();
    let lo = points
        .iter()
        .map(|p| p.1)
        .fold(f64::MAX, f64::min)
        .clamp(1e-3, 1.0)
        / 2.0;
    let hi = points
        .iter()
        .map(|p| p.1)
        .fold(0.0, f64::max)
        .max(400_000.0)
        * 1.5;
    let mut chart = ChartBuilder::on(root)
        .caption("Entry-point durations", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(
            -0.5f64..cats.len().max(1) as f64 - 0.5,
            (lo..hi).log_scale(),
        )
        .map_err(err)?;
    let names = cats.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(cats.len() + 1)
        .x_label_formatter(&|x| category(&names, *x))
        .y_desc("duration (ms, log scale)")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    // Points spread sideways (deterministically) so they do not pile up.
    let x_of = |c: &str, k: usize| {
        cats.iter().position(|x| x == c).unwrap_or(0) as f64 - 0.3
            + 0.6 * ((k * 7919) % 100) as f64 / 100.0
    };
    chart
        .draw_series(
            points
                .iter()
                .enumerate()
                .filter(|(_, p)| !p.2)
                .map(|(k, p)| {
                    Circle::new((x_of(&p.0, k), p.1), 3, ENTRY_COLOURS[0].mix(0.6).filled())
                }),
        )
        .map_err(err)?
        .label("returned")
        .legend(|(x, y)| Circle::new((x + 7, y), 4, ENTRY_COLOURS[0].filled()));
    chart
        .draw_series(
            points
                .iter()
                .enumerate()
                .filter(|(_, p)| p.2)
                .map(|(k, p)| Cross::new((x_of(&p.0, k), p.1), 7, RED.stroke_width(2))),
        )
        .map_err(err)?
        .label("never returned (elapsed)")
        .legend(|(x, y)| Cross::new((x + 7, y), 5, RED.stroke_width(2)));
    let width = cats.len().max(1) as f64 - 0.5;
    // Labels sit above their lines, spread along x so they do not collide.
    let colours = [RGBColor(255, 127, 14), RGBColor(148, 103, 189), RED];
    for (k, ((ns, label), colour)) in thresholds.iter().zip(colours).enumerate() {
        let ms = *ns as f64 / 1e6;
        let x = -0.48 + width * 0.3 * k as f64;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(-0.5, ms), (width, ms)],
                colour.stroke_width(2),
            )))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(Text::new(
                label.clone(),
                (x, ms * 1.9),
                ("sans-serif", 13).into_font().color(&colour),
            )))
            .map_err(err)?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    Ok(())
}

/// Calls that never returned, with how long they had been running at the
/// end of the trace, and the deadlock-monitor reports.
pub fn hangs<DB: DrawingBackend>(
    root: &Area<DB>,
    rows: &[(String, f64)],
    unreturned: usize,
    deadlocks: usize,
    (deadlock_s, deadlock_label): (f64, &str),
) -> Result<(), String> {
    root.fill(&WHITE).map_err(err)?;
    let n = rows.len().max(1);
    let max = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(deadlock_s) * 1.1;
    let shown = if unreturned > rows.len() {
        format!(" ({} longest shown)", rows.len())
    } else {
        String::new()
    };
    let caption = format!(
        "Hang summary: {unreturned} unreturned calls{shown}, {deadlocks} deadlock-monitor reports"
    );
    let names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let mut chart = bar_frame(
        root,
        caption,
        &names,
        max,
        380,
        "seconds running at the end of the trace",
    )?;
    chart
        .draw_series(rows.iter().enumerate().map(|(i, r)| {
            Rectangle::new(
                [(0.0, i as f64 - 0.3), (r.1, i as f64 + 0.3)],
                DO_NOT_USE.mix(0.8).filled(),
            )
        }))
        .map_err(err)?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(deadlock_s, -0.5), (deadlock_s, n as f64 - 0.5)],
            BLACK.stroke_width(2),
        )))
        .map_err(err)?;
    chart
        .draw_series(std::iter::once(Text::new(
            deadlock_label.to_string(),
            (deadlock_s, n as f64 - 0.55),
            ("sans-serif", 13),
        )))
        .map_err(err)?;
    Ok(())
}

/// Where a threshold's label starts: right of its line, or left of it when
/// the line is near the right edge (so the text is not cut off).
fn label_x(x: f64, from: f64, to: f64) -> f64 {
    let span = to - from;
    if x > from + 0.8 * span {
        x - 0.14 * span
    } else {
        x + 0.005 * span
    }
}

/// Whether a finding's rule calls for a timeline zoomed on it.
pub fn zoomable(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::ApiMisuse
            | Rule::Hang
            | Rule::DeadlockTimeout
            | Rule::PendingTimeout
            | Rule::SlowEntryPoint
    )
}

/// Paired horizontal bars per key: before (grey) and after (blue), ms.
pub fn before_after<DB: DrawingBackend>(
    root: &Area<DB>,
    title: &str,
    rows: &[(String, f64, f64)],
) -> Result<(), String> {
    root.fill(&WHITE).map_err(err)?;
    let max = rows
        .iter()
        .map(|r| r.1.max(r.2))
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.05;
    let names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let mut chart = bar_frame(root, title.to_string(), &names, max, 280, "total time (ms)")?;
    let before = RGBColor(150, 150, 150);
    let after = RGBColor(40, 100, 200);
    // Before in the upper half of each row, after in the lower.
    let bar =
        |i: usize, v: f64, offset: f64| [(0.0, i as f64 + offset), (v, i as f64 + offset + 0.36)];
    let befores = rows.iter().enumerate().map(|(i, r)| bar(i, r.1, 0.02));
    bar_series(&mut chart, befores, before, "before")?;
    let afters = rows.iter().enumerate().map(|(i, r)| bar(i, r.2, -0.38));
    bar_series(&mut chart, afters, after, "after")?;
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    Ok(())
}
