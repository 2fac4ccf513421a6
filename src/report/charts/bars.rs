//! Bar charts on log axes: blocking time, durations against their
//! budgets, hangs against their thresholds, and before/after a fix.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::*;

/// An axis value in ms, short: "10 ns", "0.1 ms", "20 ms", "300 s".
/// Below a microsecond in ns (a call logged with its begin's timestamp
/// lasts 0, drawn at 1 ns), so ticks there are not all "0 ms".
fn short_ms(ms: f64) -> String {
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    let trim = |v: f64| format!("{}", round(v));
    if ms >= 1000.0 {
        format!("{} s", trim(ms / 1000.0))
    } else if round(ms) >= 0.001 {
        format!("{} ms", trim(ms))
    } else {
        format!("{} ns", trim(ms * 1e6))
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
        .y_label_formatter(&|y| crate::report::width::elide(&category(names, *y), 46))
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
                format!(
                    "{} in all",
                    crate::report::story::duration((total(r) * 1e6) as i64)
                ),
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

/// One entry-point call on the durations chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DurationPoint {
    /// Its entry point's column (an index into the columns' names).
    pub column: usize,
    pub ms: f64,
    /// It never returned: drawn as a cross at the time it had run.
    pub unreturned: bool,
}

/// Entry-point durations per entry point (log scale) with each budget over
/// its own column and the timeouts across; unreturned calls as crosses at
/// their elapsed time. `columns` are the entry points' names, in order.
pub fn durations<DB: DrawingBackend>(
    root: &Area<DB>,
    columns: &[String],
    points: &[DurationPoint],
    thresholds: &[Threshold],
) -> Result<(), String> {
    let (plot, side) = with_legend(root);
    let (lo, hi) = log_range(
        points
            .iter()
            .map(|p| p.ms)
            .chain(thresholds.iter().map(|t| t.ms)),
    );
    let mut chart = ChartBuilder::on(&plot)
        .caption("Entry-point durations", ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(
            -0.5f64..columns.len().max(1) as f64 - 0.5,
            (lo..hi).log_scale(),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(columns.len() + 1)
        .x_label_formatter(&|x| category(columns, *x))
        .y_desc("duration (log scale)")
        .light_line_style(WHITE)
        .y_labels(8)
        .y_label_formatter(&|y| short_ms(*y))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    let column_of = |c: &str| columns.iter().position(|x| x == c);
    // Points spread sideways (deterministically) so they do not pile up.
    let at = |k: usize, p: &DurationPoint| {
        let x = p.column as f64 - 0.3 + 0.6 * ((k % 100 * 7919) % 100) as f64 / 100.0;
        (x, p.ms)
    };
    let of_kind = |unreturned: bool| {
        points
            .iter()
            .enumerate()
            .filter(move |(_, p)| p.unreturned == unreturned)
            .map(|(k, p)| at(k, p))
    };
    let returned = RGBColor(31, 119, 180);
    let opacity = 0.6;
    chart
        .draw_series(spots(&chart, of_kind(false)).into_iter().map(|s| {
            Circle::new(
                s.at,
                3,
                returned.mix(stacked_opacity(opacity, s.count)).filled(),
            )
        }))
        .map_err(err)?;
    // Crosses are opaque: those on one spot draw as one.
    chart
        .draw_series(
            spots(&chart, of_kind(true))
                .into_iter()
                .map(|s| Cross::new(s.at, 7, FINDING.stroke_width(2))),
        )
        .map_err(err)?;
    let right = columns.len().max(1) as f64 - 0.5;
    for t in thresholds {
        let (x0, x1) = match &t.category {
            Some(c) => match column_of(c) {
                Some(i) => (i as f64 - 0.45, i as f64 + 0.45),
                None => continue,
            },
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
    if points.iter().any(|p| p.unreturned) {
        items.push(LegendItem::new(
            Swatch::Cross(FINDING),
            "never returned (time it had run when the inputs end)",
        ));
    }
    for t in thresholds {
        let drawn = t.category.as_deref().is_none_or(|c| column_of(c).is_some());
        if drawn && !items.iter().any(|i| i.label == t.label) {
            items.push(LegendItem::new(Swatch::Dashed(t.colour), t.label.clone()));
        }
    }
    legend(&side, &items)
}

/// Marks that land on one pixel, drawn there once.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Spot {
    /// Where the first of them is (data coordinates).
    at: (f64, f64),
    count: u32,
}

/// The spots `points` land on, in the order each was first landed on. A
/// node's log holds hundreds of thousands of calls and most land where an
/// earlier one did; drawing each spot once keeps a chart's size bounded
/// by its pixels rather than by the calls.
fn spots<DB: DrawingBackend>(
    chart: &Plot<'_, DB, RangedCoordf64, LogCoord<f64>>,
    points: impl Iterator<Item = (f64, f64)>,
) -> Vec<Spot> {
    let mut index: foldhash::HashMap<(i32, i32), usize> = foldhash::HashMap::default();
    let mut out: Vec<Spot> = Vec::new();
    for at in points {
        let pixel = chart.backend_coord(&at);
        match index.entry(pixel) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let spot = &mut out[*e.get()];
                spot.count = spot.count.saturating_add(1);
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(out.len());
                out.push(Spot { at, count: 1 });
            }
        }
    }
    out
}

/// The opacity of `count` marks of opacity `alpha` drawn on one spot
/// (alpha over itself: same colour, so the order does not matter), to
/// three places (the SVG writes it as text).
fn stacked_opacity(alpha: f64, count: u32) -> f64 {
    if count <= 1 {
        return alpha;
    }
    let clear = (1.0 - alpha).powi(count.min(64) as i32);
    ((1.0 - clear) * 1000.0).round() / 1000.0
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
                crate::report::story::duration((r.1 * 1e6) as i64),
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
        // The rows with a value on this side, each with its value.
        let shown: Vec<(f64, f64)> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (i as f64 + side_of_row, if pick == 1 { r.1 } else { r.2 }))
            .filter(|&(_, v)| v > 0.0)
            .collect();
        chart
            .draw_series(
                shown
                    .iter()
                    .map(|&(y, v)| Rectangle::new([(lo, y), (v, y + 0.36)], colour.filled())),
            )
            .map_err(err)?;
        chart
            .draw_series(shown.iter().map(|&(y, v)| {
                value_label(
                    v,
                    y + 0.06,
                    crate::report::story::duration((v * 1e6) as i64),
                )
            }))
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

    /// The durations chart of `points` as SVG text.
    fn durations_svg(points: &[DurationPoint]) -> String {
        let mut svg = String::new();
        {
            crate::report::html::register_fonts().unwrap();
            let root = SVGBackend::with_string(&mut svg, (WIDTH, 560)).into_drawing_area();
            let columns = ["IsAlive".to_string(), "Online".to_string()];
            durations(&root, &columns, points, &[]).unwrap();
            root.present().unwrap();
        }
        svg
    }

    /// The opacity of each circle of an SVG.
    fn circles(svg: &str) -> Vec<String> {
        svg.split("<circle ")
            .skip(1)
            .filter_map(|c| Some(c.split("opacity=\"").nth(1)?.split('"').next()?.to_string()))
            .collect()
    }

    #[test]
    fn calls_on_one_spot_are_drawn_once_as_dark_as_their_stack() {
        let at = |column, ms| DurationPoint {
            column,
            ms,
            unreturned: false,
        };
        // The 1st and 101st of the same duration take the same sideways
        // slot (100 slots): one circle, as dark as two at 0.6 (0.84).
        let mut points = vec![at(0, 5.0); 101];
        for (k, p) in points.iter_mut().enumerate().skip(1).take(99) {
            p.ms = 1000.0 + k as f64 * 10.0;
        }
        let svg = durations_svg(&points);
        let drawn = circles(&svg);
        // The legend's dot is a circle too.
        assert_eq!(drawn.len(), 100 + 1, "{drawn:?}");
        assert_eq!(drawn.iter().filter(|o| *o == "0.84").count(), 1);
        assert_eq!(drawn.iter().filter(|o| *o == "0.6").count(), 99);
        // 200,000 calls of two durations in two columns: at most a circle
        // per slot, duration and column, however many calls.
        let many: Vec<DurationPoint> = (0..200_000)
            .map(|k| at(k % 2, if k % 3 == 0 { 2.0 } else { 40.0 }))
            .collect();
        let svg = durations_svg(&many);
        let drawn = circles(&svg);
        // Odd and even calls take 50 slots each (7919 is odd), so each
        // column has 50 slots x 2 durations.
        assert_eq!(drawn.len(), 2 * 2 * 50 + 1);
        assert!(svg.len() < 200_000, "{}", svg.len());
        // Each spot holds hundreds of calls: drawn opaque.
        assert!(drawn.iter().filter(|o| *o == "1").count() >= 2 * 2 * 50);
        // Unreturned calls on one spot: one cross.
        let crosses = vec![
            DurationPoint {
                unreturned: true,
                ..at(1, 300_000.0)
            };
            101
        ];
        // (Each cross is two lines; the 101st shares the 1st's slot.)
        let lines = |svg: &str| svg.matches("<line ").count();
        assert_eq!(
            lines(&durations_svg(&crosses)) - lines(&durations_svg(&crosses[..1])),
            2 * 99
        );
    }

    #[test]
    fn stacked_opacity_is_that_of_marks_drawn_over_each_other() {
        assert_eq!(stacked_opacity(0.6, 1), 0.6);
        assert_eq!(stacked_opacity(0.6, 2), 0.84);
        assert_eq!(stacked_opacity(0.6, 3), 0.936);
        assert_eq!(stacked_opacity(0.6, 1_000_000), 1.0);
    }

    #[test]
    fn axis_values_below_a_microsecond_read_in_ns() {
        assert_eq!(short_ms(300_000.0), "300 s");
        assert_eq!(short_ms(20.0), "20 ms");
        assert_eq!(short_ms(0.001), "0.001 ms");
        // A tick a hair under 0.001 ms (floating point) reads as 0.001 ms.
        assert_eq!(short_ms(0.000_999_999_999_8), "0.001 ms");
        assert_eq!(short_ms(0.0001), "100 ns");
        assert_eq!(short_ms(0.000001), "1 ns");
    }
}
