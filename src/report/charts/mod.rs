//! The charts: drawn once as SVG with plotters, then rasterised to PNG with
//! resvg from that same SVG, so both show the same layout and glyphs
//! (embedded DejaVu Sans, and a CJK fallback for resource names in
//! Chinese, Japanese or Korean). Every chart has its legend beside the
//! plot, naming every mark; thresholds are lines whose values the legend
//! gives, so no label sits on the data.
//!
//! `render` draws and rasterises; `style` holds the colours and legends
//! every chart shares; `timeline` draws lanes of entry points and calls
//! over time; `bars` draws the bar charts on log axes.

mod bars;
mod render;
mod style;
mod timeline;

pub use bars::*;
pub use render::*;
pub use style::*;
pub use timeline::*;

use plotters::coord::Shift;
use plotters::prelude::*;

pub const WIDTH: u32 = 1400;
/// The strip right of the plot that holds the legend.
const LEGEND_WIDTH: u32 = 290;

pub type Area<DB> = DrawingArea<DB, Shift>;
type Plot<'a, DB, X, Y> = ChartContext<'a, DB, Cartesian2d<X, Y>>;

/// Errors from plotters, as text.
pub fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
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
