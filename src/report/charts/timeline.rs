//! The timeline: a lane per thread with its entry points, API calls and
//! waits over time, threshold lines and finding markers.

use foldhash::{HashMap, HashMapExt, HashSet};
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
        .filter(|k| rhs.binary_search(k).is_err())
        .collect();
    workers.sort_unstable();
    workers.dedup();
    let flagged: HashSet<(u32, u32)> = a
        .findings
        .iter()
        .map(|f| (f.finding.pid, f.finding.tid))
        .collect();
    // The resources each thread ran calls of, gathered in one pass (a
    // node's log has hundreds of thousands of calls over many threads).
    let mut names_of: HashMap<(u32, u32), HashSet<&str>> = HashMap::new();
    let named = s
        .entries
        .iter()
        .map(|e| ((e.pid, e.tid), &*e.resource))
        .chain(
            s.workers
                .iter()
                .filter_map(|w| Some(((w.pid, w.tid), w.resource.as_deref()?))),
        );
    for (k, name) in named {
        names_of.entry(k).or_default().insert(name);
    }
    let resource_of = |k: &(u32, u32)| match names_of.get(k) {
        Some(names) if names.len() > 1 => format!("{} resources", names.len()),
        Some(names) => names
            .iter()
            .next()
            .map_or_else(String::new, |one| crate::report::width::elide(one, 14)),
        None => String::new(),
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
    all.sort_by_key(|(k, _)| !flagged.contains(k));
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
    // Looked up for every span of the node (hundreds of thousands).
    let index: HashMap<(u32, u32), usize> = lanes
        .iter()
        .enumerate()
        .map(|(i, l)| ((l.pid, l.tid), i))
        .collect();
    let lane_of = |pid: u32, tid: u32| index.get(&(pid, tid)).copied();
    // Waits name a thread only (the first lane of the id).
    let mut by_tid: HashMap<u32, usize> = HashMap::new();
    for (i, l) in lanes.iter().enumerate() {
        by_tid.entry(l.tid).or_insert(i);
    }
    let end = a.spans.last_ns.unwrap_or(0);
    let s = &a.spans;
    let clip = |x: f64| x.clamp(from, to);
    // The thinnest bar drawn: a pixel or so.
    let min_width = (to - from) / 1500.0;
    let visible = |x0: f64, x1: f64| x1 >= from && x0 <= to;
    let pixel = |x: f64| chart.backend_coord(&(x, 0.0)).0;
    let bar = |b: f64, e: f64| {
        let x0 = clip(b);
        let x1 = clip(e).max(x0 + min_width);
        (x0, x1, pixel(x0), pixel(x1))
    };
    let mut waits = Runs::new(0.45);
    for w in &s.waits {
        let Some(&lane) = by_tid.get(&w.tid) else {
            continue;
        };
        let (b, e) = (secs(a, w.out_ns), secs(a, w.in_ns.unwrap_or(end)));
        if visible(b, e) {
            waits.add(lane, WAIT, bar(b, e));
        }
    }
    drawn.waits = !waits.is_empty();
    let mut bars = Runs::new(0.3);
    for e in &s.entries {
        let Some(lane) = lane_of(e.pid, e.tid) else {
            continue;
        };
        let (b, x) = (secs(a, e.begin_ns), secs(a, e.end_ns().unwrap_or(end)));
        if !visible(b, x) {
            continue;
        }
        bars.add(lane, entry_colour(e.entry_point), bar(b, x));
        if !drawn.entry_points.contains(&e.entry_point) {
            drawn.entry_points.push(e.entry_point);
        }
    }
    drawn.entry_points.sort();
    let mut calls = Runs::new(0.12);
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
        calls.add(lane, usage_colour(usage), bar(b, x));
    }
    for runs in [waits, bars, calls] {
        chart.draw_series(runs.rectangles()).map_err(err)?;
    }
    // A label on a bar wide enough for it (about 7 px a character over
    // about 1000 px of plot).
    let px_per_s = 1000.0 / (to - from).max(1e-9);
    let labels = s.entries.iter().filter_map(|e| {
        let lane = lane_of(e.pid, e.tid)? as f64;
        let (x0, x1) = (
            clip(secs(a, e.begin_ns)),
            clip(secs(a, e.end_ns().unwrap_or(end))),
        );
        // Most bars of a long timeline are too narrow for any label:
        // those are passed over before their text is made.
        let px = (x1 - x0) * px_per_s;
        if px <= 8.0 + 7.5 * 3.0 {
            return None;
        }
        let text = format!("{} {}", e.resource, e.entry_point);
        let fits = px > 7.5 * crate::report::width::width(&text) as f64 + 8.0;
        fits.then(|| Text::new(text, (x0 + 4.0 / px_per_s, lane + 0.29), ("sans-serif", 12)))
    });
    chart.draw_series(labels).map_err(err)?;
    Ok(drawn)
}

/// One series of a timeline's bars, a lane's consecutive bars of one
/// colour merged where they meet on screen: a week's log puts thousands of
/// a thread's calls on each pixel of the whole timeline, and they draw as
/// the runs they make. A bar merges only into its lane's last one, so no
/// bar drawn between the two is covered; the union of two bars sharing a
/// pixel column covers exactly the pixels the two did.
struct Runs {
    /// Half a bar's height, in lanes.
    half: f64,
    runs: Vec<Run>,
    /// Each lane's last run.
    last: HashMap<usize, usize>,
}

struct Run {
    lane: usize,
    colour: RGBColor,
    /// Its extent in seconds, and in pixels (left edge, right edge).
    x: (f64, f64),
    px: (i32, i32),
}

impl Runs {
    fn new(half: f64) -> Runs {
        Runs {
            half,
            runs: Vec::new(),
            last: HashMap::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// A bar from `x0` to `x1` s, at pixels `p0` to `p1`.
    fn add(&mut self, lane: usize, colour: RGBColor, (x0, x1, p0, p1): (f64, f64, i32, i32)) {
        if let Some(&i) = self.last.get(&lane) {
            let run = &mut self.runs[i];
            if run.colour == colour && p0 <= run.px.1 && p1 >= run.px.0 {
                run.x = (run.x.0.min(x0), run.x.1.max(x1));
                run.px = (run.px.0.min(p0), run.px.1.max(p1));
                return;
            }
        }
        self.last.insert(lane, self.runs.len());
        self.runs.push(Run {
            lane,
            colour,
            x: (x0, x1),
            px: (p0, p1),
        });
    }

    fn rectangles(self) -> impl Iterator<Item = Rectangle<(f64, f64)>> {
        let half = self.half;
        self.runs.into_iter().map(move |r| {
            let lane = r.lane as f64;
            Rectangle::new(
                [(r.x.0, lane - half), (r.x.1, lane + half)],
                r.colour.filled(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extents(runs: &Runs) -> Vec<(usize, (i32, i32))> {
        runs.runs.iter().map(|r| (r.lane, r.px)).collect()
    }

    #[test]
    fn a_lanes_bars_that_meet_on_screen_draw_as_one_run() {
        let (blue, red) = (RGBColor(0, 0, 255), RGBColor(255, 0, 0));
        let mut runs = Runs::new(0.3);
        // Three calls sharing pixel columns, one on another lane between.
        runs.add(0, blue, (1.0, 1.1, 100, 101));
        runs.add(1, blue, (1.05, 1.2, 100, 102));
        runs.add(0, blue, (1.1, 1.3, 101, 103));
        runs.add(0, blue, (1.3, 1.4, 103, 104));
        // A pixel apart: a gap shows, so a run of its own.
        runs.add(0, blue, (1.5, 1.6, 105, 106));
        // Another colour over it, then the first colour again: the red
        // bar would be covered by a merged blue one, so no merge.
        runs.add(0, red, (1.6, 1.7, 106, 107));
        runs.add(0, blue, (1.6, 1.7, 106, 107));
        assert_eq!(
            extents(&runs),
            [
                (0, (100, 104)),
                (1, (100, 102)),
                (0, (105, 106)),
                (0, (106, 107)),
                (0, (106, 107))
            ]
        );
        assert_eq!(runs.runs[0].x, (1.0, 1.4));
        let drawn: Vec<_> = runs.rectangles().collect();
        assert_eq!(drawn.len(), 5);
    }
}
