//! A progress bar on stderr for long reads; hidden when stderr is not a
//! terminal or with --quiet, so pipes and CI logs stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

pub fn bar(total_bytes: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total_bytes);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {wide_bar} {eta}")
    {
        bar.set_style(style);
    }
    bar
}
