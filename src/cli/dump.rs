//! `dump`: one line per event.

use std::path::PathBuf;

use anyhow::Result;
use rhscope::read::etl::filter::ProviderFilter;
use rhscope::read::etl::Trace;
use rhscope::report::dump::{write_events, DumpFormat, DumpOptions};

use super::{progress, ReadOpts};

#[derive(clap::Args)]
pub struct Args {
    /// The .etl file.
    trace: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    format: Format,
    /// Only events of this provider (GUID or name); repeatable.
    #[arg(long, value_name = "GUID|NAME")]
    provider: Vec<String>,
    /// Stop after this many events.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// Only the event at this place: a finding's evidence `at`
    /// (`0x1a000+0x198`: buffer offset + record offset in the buffer,
    /// decompressed if it was).
    #[arg(long, value_name = "AT", value_parser = parse_at)]
    at: Option<(u64, u32)>,
    /// Add each event's stack (`"stack"`: frames innermost first, as
    /// `module!Function+0xOFF` where symbols name it, `module+0xOFF` where
    /// only the image is known, the address otherwise).
    #[arg(long)]
    symbolize: bool,
    /// Symbols for --symbolize: folders of PE files, PDBs and Breakpad
    /// .sym files (repeatable; flat or a symbol-server layout).
    #[arg(long, value_name = "DIR", requires = "symbolize")]
    symbols: Vec<PathBuf>,
    /// Instrumentation manifest (.man, or a folder of them) to decode
    /// manifest events with, besides the built-in ones; repeatable.
    #[arg(long, value_name = "FILE|DIR")]
    manifest: Vec<PathBuf>,
    /// Write to this file (atomically) instead of standard output.
    #[arg(short, long, value_name = "PATH")]
    output: Option<PathBuf>,
    #[command(flatten)]
    read: ReadOpts,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Jsonl,
    Csv,
}

pub fn run(a: &Args) -> Result<()> {
    let manifests = rhscope::providers::manifests(&a.manifest)?;
    let trace = Trace::open(&a.trace)?;
    let filter = ProviderFilter::new(&a.provider);
    let opts = DumpOptions {
        format: match a.format {
            Format::Jsonl => DumpFormat::Jsonl,
            Format::Csv => DumpFormat::Csv,
        },
        filter: &filter,
        limit: a.limit,
        manifests: &manifests,
        strict: a.read.strict,
        at: a.at,
    };
    let symbols = super::setup::scan_symbols(&a.symbols)?;
    let mut stacks = if a.symbolize {
        Some(rhscope::source::stacks::StackContext::read(
            &trace,
            &symbols,
            |_, _| true,
        )?)
    } else {
        None
    };
    let bar = progress::bar(trace.len(), a.read.quiet);
    let path = a.trace.display();
    super::with_output(a.output.as_deref(), &[&a.trace], |out| {
        write_events(
            &trace,
            out,
            &opts,
            stacks.as_mut(),
            |e| bar.suspend(|| eprintln!("rhscope: warning: {path}: {e}")),
            |offset| bar.set_position(offset),
        )?;
        bar.finish_and_clear();
        super::setup::say_failed_symbols(&symbols);
        Ok(())
    })
}

fn parse_at(s: &str) -> Result<(u64, u32), String> {
    rhscope::model::evidence::parse_etl_at(s).ok_or_else(|| {
        format!("{s:?} is not an .etl place: BUFFER+RECORD offsets, e.g. 0x1a000+0x198")
    })
}
