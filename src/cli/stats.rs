//! `stats`: what a trace holds.

use std::path::PathBuf;

use anyhow::{Context, Result};
use rhscope::read::etl::{Trace, TraceStats};

use super::{progress, ReadOpts};

#[derive(clap::Args)]
pub struct Args {
    /// The .etl file.
    trace: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Write to this file (atomically) instead of standard output.
    #[arg(short, long, value_name = "PATH")]
    output: Option<PathBuf>,
    #[command(flatten)]
    read: ReadOpts,
}

pub fn run(a: &Args) -> Result<()> {
    let trace = Trace::open(&a.trace)?;
    let bar = progress::bar(trace.len(), a.read.quiet);
    let stats = TraceStats::collect(&trace, a.read.strict, |_, bytes| bar.set_position(bytes))
        .with_context(|| a.trace.display().to_string())?;
    bar.finish_and_clear();
    super::with_output(a.output.as_deref(), &[&a.trace], |out| {
        if a.json {
            serde_json::to_writer_pretty(&mut *out, &stats)?;
            writeln!(out)?;
        } else {
            rhscope::report::text::write_stats(out, &stats)?;
        }
        Ok(())
    })
}
