//! The charts: drawn once as SVG with plotters, then rasterised to PNG with
//! resvg from that same SVG, so both show the same layout and glyphs
//! (embedded DejaVu Sans, and a CJK fallback for resource names in
//! Chinese, Japanese or Korean). Every chart has its legend beside the
//! plot, naming every mark; thresholds are lines whose values the legend
//! gives, so no label sits on the data.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::ReportError;
use crate::analysis::Analysis;
use crate::model::{EntryPoint, UsageCode};

pub const WIDTH: u32 = 1400;
/// The strip right of the plot that holds the legend.
const LEGEND_WIDTH: u32 = 290;

pub type Area<DB> = DrawingArea<DB, Shift>;
type Plot<'a, DB, X, Y> = ChartContext<'a, DB, Cartesian2d<X, Y>>;

/// Errors from plotters, as text.
pub fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// The CJK fallback font: a subset of Droid Sans Fallback (see
/// `assets/fonts/README.md`).
const CJK_FONT: &[u8] = include_bytes!("../../assets/fonts/DroidSansFallback-subset.ttf");

/// The fonts charts are drawn with, for rasterising: DejaVu Sans for every
/// generic family, then the CJK fallback.
fn fonts() -> Arc<resvg::usvg::fontdb::Database> {
    static DB: OnceLock<Arc<resvg::usvg::fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = resvg::usvg::fontdb::Database::new();
        db.load_font_data(dejavu::sans::regular().to_vec());
        db.load_font_data(CJK_FONT.to_vec());
        db.set_sans_serif_family("DejaVu Sans");
        db.set_serif_family("DejaVu Sans");
        db.set_monospace_family("DejaVu Sans");
        Arc::new(db)
    })
    .clone()
}

/// An SVG drawn here as a PNG.
pub fn rasterise(svg: &str) -> Result<Vec<u8>, String> {
    let options = resvg::usvg::Options {
        fontdb: fonts(),
        font_family: "DejaVu Sans".into(),
        ..resvg::usvg::Options::default()
    };
    let tree = resvg::usvg::Tree::from_str(svg, &options).map_err(|e| e.to_string())?;
    let size = tree.size().to_int_size();
    let mut pixmap =
        resvg::tiny_skia::Pixmap::new(size.width(), size.height()).ok_or_else(|| {
            format!(
                "cannot rasterise a {}x{} chart",
                size.width(),
                size.height()
            )
        })?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().map_err(|e| e.to_string())
}

/// Draws a chart as `name.svg` and `name.png` in `dir`; an error names
/// the file.
pub fn render(
    dir: &Path,
    name: &str,
    height: u32,
    draw: impl FnOnce(&Area<SVGBackend>) -> Result<(), String>,
) -> Result<(), ReportError> {
    let chart_error = |file: &Path, detail: String| ReportError::Chart {
        file: file.display().to_string(),
        detail,
    };
    let svg_path = dir.join(format!("{name}.svg"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| chart_error(&svg_path, err(e)))?;
        draw(&root).map_err(|e| chart_error(&svg_path, e))?;
        root.present().map_err(|e| chart_error(&svg_path, err(e)))?;
    }
    let cannot = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Io { path, source }
    };
    std::fs::write(&svg_path, &svg).map_err(cannot(&svg_path))?;
    let png_path = dir.join(format!("{name}.png"));
    let png = rasterise(&svg).map_err(|e| chart_error(&png_path, e))?;
    std::fs::write(&png_path, png).map_err(cannot(&png_path))
}

/// One colour per entry point, the same in every report, none repeated;
/// none of them the reds, oranges and yellows of the usage codes.
pub fn entry_colour(ep: EntryPoint) -> RGBColor {
    match ep {
        EntryPoint::Open => RGBColor(31, 119, 180),
        EntryPoint::Close => RGBColor(120, 160, 210),
        EntryPoint::Online => RGBColor(44, 160, 44),
        EntryPoint::Offline => RGBColor(130, 200, 120),
        EntryPoint::Terminate => RGBColor(148, 103, 189),
        EntryPoint::LooksAlive => RGBColor(23, 170, 190),
        EntryPoint::IsAlive => RGBColor(120, 205, 220),
        EntryPoint::Arbitrate => RGBColor(140, 86, 75),
        EntryPoint::Release => RGBColor(196, 156, 148),
        EntryPoint::ResourceControl => RGBColor(227, 119, 194),
        EntryPoint::ResourceTypeControl => RGBColor(240, 175, 215),
        EntryPoint::OpenV2 => RGBColor(57, 59, 121),
        EntryPoint::OnlineV2 => RGBColor(99, 121, 57),
        EntryPoint::OfflineV2 => RGBColor(170, 190, 100),
        EntryPoint::Cancel => RGBColor(150, 150, 150),
    }
}

pub const DO_NOT_USE: RGBColor = RGBColor(214, 39, 40);
pub const WORKER_ONLY: RGBColor = RGBColor(255, 127, 14);
pub const SOME_OK: RGBColor = RGBColor(230, 190, 0);
pub const OTHER_API: RGBColor = RGBColor(60, 60, 60);
pub const WAIT: RGBColor = RGBColor(225, 225, 225);
pub const RUNNING: RGBColor = RGBColor(44, 160, 44);
pub const READY: RGBColor = RGBColor(255, 187, 120);
pub const WAITING: RGBColor = RGBColor(120, 150, 200);
pub const FINDING: RGBColor = RGBColor(200, 0, 0);
/// Threshold lines: budget, PendingTimeout, DeadlockTimeout.
pub const BUDGET: RGBColor = RGBColor(255, 127, 14);
pub const PENDING: RGBColor = RGBColor(148, 103, 189);
pub const DEADLOCK: RGBColor = RGBColor(200, 0, 0);
pub const END: RGBColor = RGBColor(90, 90, 90);

pub fn usage_colour(u: Option<UsageCode>) -> RGBColor {
    match u {
        Some(UsageCode::DoNotUse) => DO_NOT_USE,
        Some(UsageCode::WorkerThreadOnly) => WORKER_ONLY,
        Some(UsageCode::SomeEntryPointsOkay) => SOME_OK,
        None => OTHER_API,
    }
}

/// A legend entry's mark.
#[derive(Clone, Copy)]
pub enum Swatch {
    Bar(RGBColor),
    /// A thinner bar inside another (API calls).
    Inner(RGBColor),
    Dashed(RGBColor),
    Triangle(RGBColor),
    Cross(RGBColor),
    Dot(RGBColor),
}

pub struct LegendItem {
    pub swatch: Swatch,
    pub label: String,
}

impl LegendItem {
    pub fn new(swatch: Swatch, label: impl Into<String>) -> LegendItem {
        LegendItem {
            swatch,
            label: label.into(),
        }
    }
}

/// Splits a chart into the plot and the legend strip beside it.
pub fn with_legend<DB: DrawingBackend>(root: &Area<DB>) -> (Area<DB>, Area<DB>) {
    root.split_horizontally(WIDTH - LEGEND_WIDTH)
}

/// The legend, top to bottom in the strip; labels wrap at the strip's
/// width.
pub fn legend<DB: DrawingBackend>(area: &Area<DB>, items: &[LegendItem]) -> Result<(), String> {
    let font = ("sans-serif", 13).into_font();
    area.draw(&Text::new(
        "Legend",
        (8, 14),
        ("sans-serif", 15).into_font(),
    ))
    .map_err(err)?;
    let mut y = 42;
    for item in items {
        let (x0, x1) = (8, 30);
        match item.swatch {
            Swatch::Bar(c) => area.draw(&Rectangle::new([(x0, y - 6), (x1, y + 6)], c.filled())),
            Swatch::Inner(c) => area.draw(&Rectangle::new([(x0, y - 3), (x1, y + 3)], c.filled())),
            Swatch::Dashed(c) => area
                .draw(&PathElement::new(
                    vec![(x0, y), (x0 + 8, y)],
                    c.stroke_width(2),
                ))
                .and_then(|_| {
                    area.draw(&PathElement::new(
                        vec![(x0 + 14, y), (x1, y)],
                        c.stroke_width(2),
                    ))
                }),
            Swatch::Triangle(c) => area.draw(&TriangleMarker::new((x0 + 11, y), 7, c.filled())),
            Swatch::Cross(c) => area.draw(&Cross::new((x0 + 11, y), 5, c.stroke_width(2))),
            Swatch::Dot(c) => area.draw(&Circle::new((x0 + 11, y), 4, c.filled())),
        }
        .map_err(err)?;
        for (k, line) in super::width::wrap(&item.label, 34).iter().enumerate() {
            area.draw(&Text::new(
                line.clone(),
                (x1 + 8, y - 7 + 16 * k as i32),
                font.clone(),
            ))
            .map_err(err)?;
            if k > 0 {
                y += 16;
            }
        }
        y += 22;
    }
    Ok(())
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
            .map(|e| e.resource.as_str())
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
            [one] => super::width::elide(one, 14),
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

fn secs(a: &Analysis, ns: i64) -> f64 {
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
        .caption(super::width::elide(&caption, 120), ("sans-serif", 17))
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
        let fits = (x1 - x0) * px_per_s > 7.5 * super::width::width(&text) as f64 + 8.0;
        fits.then(|| Text::new(text, (x0 + 4.0 / px_per_s, lane + 0.29), ("sans-serif", 12)))
    });
    chart.draw_series(labels).map_err(err)?;
    Ok(drawn)
}

/// An axis value in ms, short: "0.1 ms", "20 ms", "300 s".
fn short_ms(ms: f64) -> String {
    let trim = |v: f64| format!("{}", (v * 1000.0).round() / 1000.0);
    if ms >= 1000.0 {
        format!("{} s", trim(ms / 1000.0))
    } else {
        format!("{} ms", trim(ms))
    }
}

/// The frame of a horizontal bar chart on a log axis: one row per name
/// (row i centred on i), names as the y labels.
fn log_bar_frame<'a, DB: DrawingBackend>(
    area: &'a Area<DB>,
    caption: &str,
    names: &[String],
    (lo, hi): (f64, f64),
    x_desc: &str,
) -> Result<Plot<'a, DB, LogCoord<f64>, RangedCoordf64>, String> {
    let n = names.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(340)
        .build_cartesian_2d((lo..hi).log_scale(), -0.5f64..n as f64 - 0.5)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n + 1)
        .y_label_formatter(&|y| super::width::elide(&category(names, *y), 46))
        .light_line_style(WHITE)
        .x_labels(8)
        .x_label_formatter(&|x| short_ms(*x))
        .x_desc(x_desc)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// A value label right of a bar's end.
fn value_label(x: f64, row: f64, text: String) -> Text<'static, (f64, f64), String> {
    Text::new(text, (x * 1.08, row + 0.12), ("sans-serif", 12).into_font())
}

/// The log axis' range for values in `values` (ms): whole decades, a
/// decade below the smallest, room for value labels past the largest, and
/// at least three decades (so the axis labels only powers of ten).
fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::MAX, 0f64);
    for v in values.filter(|v| *v > 0.0) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi <= 0.0 {
        return (1e-3, 1.0);
    }
    let decade = |v: f64| 10f64.powf(v.log10().floor());
    let hi = decade(hi) * 100.0;
    let lo = (decade(lo) / 10.0).min(hi / 1000.0);
    (lo, hi)
}

/// Stacked horizontal bars on a log axis: running, ready, waiting per key
/// (ms), each total written at its bar's end.
pub fn blocking<DB: DrawingBackend>(
    root: &Area<DB>,
    title: &str,
    rows: &[(String, f64, f64, f64)],
    wall_clock_only: bool,
) -> Result<(), String> {
    let (plot, side) = with_legend(root);
    let total = |r: &(String, f64, f64, f64)| r.1 + r.2 + r.3;
    let (lo, hi) = log_range(rows.iter().flat_map(|r| [r.1, r.2, r.3, total(r)]));
    let caption = if wall_clock_only {
        format!("{title} (no context switches: wall clock only)")
    } else {
        title.to_string()
    };
    let names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let mut chart = log_bar_frame(
        &plot,
        &caption,
        &names,
        (lo, hi),
        "blocking time (log scale)",
    )?;
    let parts: &[(usize, RGBColor, &str)] = if wall_clock_only {
        &[(0, RUNNING, "elapsed (wall clock)")]
    } else {
        &[
            (0, RUNNING, "running"),
            (1, READY, "ready (runnable, waiting for a CPU)"),
            (2, WAITING, "waiting (switched out)"),
        ]
    };
    let mut items = Vec::new();
    // One thin bar per part (a log axis cannot stack), the total at the
    // end of the longest.
    let count = parts.len() as f64;
    for (k, &(part, colour, label)) in parts.iter().enumerate() {
        let offset = 0.3 - 0.6 * (k as f64 + 0.5) / count;
        let half = 0.28 / count;
        let bars = rows.iter().enumerate().filter_map(|(i, r)| {
            let v = [r.1, r.2, r.3][part];
            (v > 0.0).then(|| {
                let y = i as f64 + offset;
                Rectangle::new([(lo, y - half), (v.max(lo), y + half)], colour.filled())
            })
        });
        chart.draw_series(bars).map_err(err)?;
        if rows.iter().any(|r| [r.1, r.2, r.3][part] > 0.0) {
            items.push(LegendItem::new(Swatch::Bar(colour), label));
        }
    }
    chart
        .draw_series(rows.iter().enumerate().map(|(i, r)| {
            let longest = r.1.max(r.2).max(r.3).max(lo);
            value_label(
                longest,
                i as f64,
                format!("{} in all", super::story::duration((total(r) * 1e6) as i64)),
            )
        }))
        .map_err(err)?;
    legend(&side, &items)
}

/// A threshold drawn across a chart (ms), named in the legend.
pub struct Threshold {
    pub ms: f64,
    pub colour: RGBColor,
    pub label: String,
    /// Which categories it applies to (None: all).
    pub category: Option<String>,
}

/// Entry-point durations per entry point (log scale) with each budget over
/// its own column and the timeouts across; unreturned calls as crosses at
/// their elapsed time.
pub fn durations<DB: DrawingBackend>(
    root: &Area<DB>,
    points: &[(String, f64, bool)],
    thresholds: &[Threshold],
) -> Result<(), String> {
    let (plot, side) = with_legend(root);
    let mut cats: Vec<String> = points.iter().map(|p| p.0.clone()).collect();
    cats.sort();
    cats.dedup();
    let (lo, hi) = log_range(
        points
            .iter()
            .map(|p| p.1)
            .chain(thresholds.iter().map(|t| t.ms)),
    );
    let mut chart = ChartBuilder::on(&plot)
        .caption("Entry-point durations", ("sans-serif", 17))
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
        .y_desc("duration (log scale)")
        .light_line_style(WHITE)
        .y_labels(8)
        .y_label_formatter(&|y| short_ms(*y))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    let column = |c: &str| cats.iter().position(|x| x == c).unwrap_or(0) as f64;
    // Points spread sideways (deterministically) so they do not pile up.
    let x_of = |c: &str, k: usize| column(c) - 0.3 + 0.6 * ((k * 7919) % 100) as f64 / 100.0;
    let returned = RGBColor(31, 119, 180);
    chart
        .draw_series(
            points
                .iter()
                .enumerate()
                .filter(|(_, p)| !p.2)
                .map(|(k, p)| Circle::new((x_of(&p.0, k), p.1), 3, returned.mix(0.6).filled())),
        )
        .map_err(err)?;
    chart
        .draw_series(
            points
                .iter()
                .enumerate()
                .filter(|(_, p)| p.2)
                .map(|(k, p)| Cross::new((x_of(&p.0, k), p.1), 7, FINDING.stroke_width(2))),
        )
        .map_err(err)?;
    let right = cats.len().max(1) as f64 - 0.5;
    for t in thresholds {
        let (x0, x1) = match &t.category {
            Some(c) if cats.contains(c) => (column(c) - 0.45, column(c) + 0.45),
            Some(_) => continue,
            None => (-0.5, right),
        };
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x0, t.ms), (x1, t.ms)],
                8,
                5,
                t.colour.stroke_width(2),
            ))
            .map_err(err)?;
    }
    let mut items = vec![LegendItem::new(
        Swatch::Dot(returned),
        "a call that returned",
    )];
    if points.iter().any(|p| p.2) {
        items.push(LegendItem::new(
            Swatch::Cross(FINDING),
            "never returned (time it had run when the inputs end)",
        ));
    }
    for t in thresholds {
        let drawn = t.category.as_ref().is_none_or(|c| cats.contains(c));
        if drawn && !items.iter().any(|i| i.label == t.label) {
            items.push(LegendItem::new(Swatch::Dashed(t.colour), t.label.clone()));
        }
    }
    legend(&side, &items)
}

/// Calls that never returned, with how long they had been running when
/// the inputs end (ms, log scale), and the DeadlockTimeouts (ms) they are
/// held to.
pub fn hangs<DB: DrawingBackend>(
    root: &Area<DB>,
    rows: &[(String, f64)],
    caption: &str,
    deadlocks: &[(f64, String)],
) -> Result<(), String> {
    let (plot, side) = with_legend(root);
    let n = rows.len().max(1);
    let (lo, hi) = log_range(
        rows.iter()
            .map(|r| r.1)
            .chain(deadlocks.iter().map(|d| d.0)),
    );
    let names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let mut chart = log_bar_frame(
        &plot,
        caption,
        &names,
        (lo, hi),
        "time running when the inputs end (log scale)",
    )?;
    chart
        .draw_series(rows.iter().enumerate().map(|(i, r)| {
            Rectangle::new(
                [(lo, i as f64 - 0.3), (r.1.max(lo), i as f64 + 0.3)],
                DO_NOT_USE.filled(),
            )
        }))
        .map_err(err)?;
    chart
        .draw_series(rows.iter().enumerate().map(|(i, r)| {
            value_label(
                r.1.max(lo),
                i as f64,
                super::story::duration((r.1 * 1e6) as i64),
            )
        }))
        .map_err(err)?;
    let mut items = vec![LegendItem::new(
        Swatch::Bar(DO_NOT_USE),
        "a call that never returned",
    )];
    for (s, label) in deadlocks {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(*s, -0.5), (*s, n as f64 - 0.5)],
                8,
                5,
                BLACK.stroke_width(2),
            ))
            .map_err(err)?;
        items.push(LegendItem::new(Swatch::Dashed(BLACK), label.clone()));
    }
    legend(&side, &items)
}

/// Paired horizontal bars per key on a log axis: before (grey) and after
/// (blue), ms, each with its value.
pub fn before_after<DB: DrawingBackend>(
    root: &Area<DB>,
    title: &str,
    rows: &[(String, f64, f64)],
) -> Result<(), String> {
    let (plot, side) = with_legend(root);
    let (lo, hi) = log_range(rows.iter().flat_map(|r| [r.1, r.2]));
    let names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let mut chart = log_bar_frame(&plot, title, &names, (lo, hi), "total time (log scale)")?;
    let before = RGBColor(150, 150, 150);
    let after = RGBColor(40, 100, 200);
    // Before in the upper half of each row, after in the lower.
    for (side_of_row, colour, pick) in [(0.02, before, 1usize), (-0.38, after, 2usize)] {
        let value = |r: &(String, f64, f64)| if pick == 1 { r.1 } else { r.2 };
        chart
            .draw_series(
                rows.iter()
                    .enumerate()
                    .filter(|(_, r)| value(r) > 0.0)
                    .map(|(i, r)| {
                        Rectangle::new(
                            [
                                (lo, i as f64 + side_of_row),
                                (value(r), i as f64 + side_of_row + 0.36),
                            ],
                            colour.filled(),
                        )
                    }),
            )
            .map_err(err)?;
        chart
            .draw_series(
                rows.iter()
                    .enumerate()
                    .filter(|(_, r)| value(r) > 0.0)
                    .map(|(i, r)| {
                        value_label(
                            value(r),
                            i as f64 + side_of_row + 0.06,
                            super::story::duration((value(r) * 1e6) as i64),
                        )
                    }),
            )
            .map_err(err)?;
    }
    legend(
        &side,
        &[
            LegendItem::new(Swatch::Bar(before), "before"),
            LegendItem::new(Swatch::Bar(after), "after"),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dark pixels of each column of a PNG.
    fn ink_columns(png: &[u8]) -> Vec<u32> {
        let decoder = png::Decoder::new(png);
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        let (w, h) = (info.width as usize, info.height as usize);
        let bpp = info.line_size / w;
        (0..w)
            .map(|x| {
                (0..h)
                    .filter(|y| buf[y * info.line_size + x * bpp] < 128)
                    .count() as u32
            })
            .collect()
    }

    fn text_png(text: &str) -> Vec<u8> {
        let svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"><text x="4" y="28" font-family="sans-serif" font-size="24">{text}</text></svg>"#
        );
        rasterise(&svg).unwrap()
    }

    #[test]
    fn glyphs_keep_their_spacing() {
        // "Cl": the C and the l are apart (a blank column between them).
        let cols = ink_columns(&text_png("Cl"));
        let inked: Vec<usize> = (0..cols.len()).filter(|&x| cols[x] > 0).collect();
        let gaps = inked.windows(2).filter(|w| w[1] > w[0] + 1).count();
        assert!(gaps >= 1, "{cols:?}");
    }

    #[test]
    fn cjk_names_are_drawn_not_boxed() {
        // Two different characters render differently (the same box
        // otherwise), and with ink.
        let (a, b) = (ink_columns(&text_png("资")), ink_columns(&text_png("源")));
        assert!(a.iter().sum::<u32>() > 20 && b.iter().sum::<u32>() > 20);
        assert_ne!(a, b);
        let (k, j) = (ink_columns(&text_png("리")), ink_columns(&text_png("ソ")));
        assert!(k.iter().sum::<u32>() > 10 && j.iter().sum::<u32>() > 10);
    }
}
