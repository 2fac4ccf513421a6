//! Charts drawn as SVG, and the same SVG rasterised to PNG.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use plotters::prelude::*;

use super::{err, Area, WIDTH};
use crate::report::ReportError;

/// The CJK fallback font: a subset of Droid Sans Fallback (see
/// `assets/fonts/README.md`).
const CJK_FONT: &[u8] = include_bytes!("../../../assets/fonts/DroidSansFallback-subset.ttf");

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
