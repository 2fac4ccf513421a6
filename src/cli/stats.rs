use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};
use rhscope::etl::{Trace, TraceStats};

use super::{progress, ReadOpts};

pub fn run(path: &Path, json: bool, output: Option<&Path>, opts: ReadOpts) -> Result<()> {
    let trace = Trace::open(path)?;
    let bar = progress::bar(trace.len(), opts.quiet);
    let stats = TraceStats::collect(&trace, opts.strict, |_, bytes| bar.set_position(bytes))
        .with_context(|| path.display().to_string())?;
    bar.finish_and_clear();
    super::with_output(output, &[path], |out| {
        if json {
            serde_json::to_writer_pretty(&mut *out, &stats)?;
            writeln!(out)?;
        } else {
            write_text(out, &stats)?;
        }
        Ok(())
    })
}

fn write_text(out: &mut dyn Write, s: &TraceStats) -> io::Result<()> {
    let h = &s.header;
    writeln!(out, "file       {} ({} bytes)", s.file, s.bytes)?;
    writeln!(
        out,
        "logger     {} (Windows {} build {}, {} CPUs, pointer size {}, clock {:?} at {} Hz)",
        h.logger_name,
        h.os_version,
        h.os_build,
        h.number_of_processors,
        h.pointer_size,
        h.clock_type,
        h.perf_freq
    )?;
    match (&s.first, &s.last) {
        (Some(first), Some(last)) => writeln!(out, "time       {first} .. {last}")?,
        _ => writeln!(out, "time       (no records)")?,
    }
    writeln!(
        out,
        "buffers    {} ({} compressed, {} truncated)",
        s.buffers.total, s.buffers.compressed, s.buffers.truncated
    )?;
    let kinds: Vec<String> = s
        .kinds
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    writeln!(out, "records    {} ({})", s.records, kinds.join(", "))?;
    writeln!(out, "threads    {}", s.threads)?;
    writeln!(out, "processes  {}", s.processes)?;
    writeln!(
        out,
        "lost       {} events, {} buffers",
        s.events_lost, s.buffers_lost
    )?;
    writeln!(out, "providers  {}", s.providers.len())?;
    for p in &s.providers {
        writeln!(
            out,
            "  {:>9}  {}  {}",
            p.records,
            p.guid,
            p.name.as_deref().unwrap_or("-")
        )?;
    }
    writeln!(out, "skipped    {}", s.skipped.len())?;
    for k in &s.skipped {
        writeln!(out, "  {}", k.message)?;
    }
    Ok(())
}
