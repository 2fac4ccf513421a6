//! The colours every chart shares (entry points, usage codes, thresholds)
//! and the legend beside the plot.

use plotters::prelude::*;

use super::{err, Area, LEGEND_WIDTH, WIDTH};
use crate::model::{EntryPoint, UsageCode};

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
        for (k, line) in crate::report::width::wrap(&item.label, 34)
            .iter()
            .enumerate()
        {
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
