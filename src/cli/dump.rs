use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use rhscope::etl::{known, EventRow, Guid, Trace};
use rhscope::manifest::ManifestSet;

use super::{progress, DumpFormat, ReadOpts};

/// Which providers to keep: by GUID, or by name (case-insensitive) as the
/// trace or rhscope's table of well-known providers names them.
struct ProviderFilter {
    guids: Vec<Guid>,
    names: Vec<String>,
}

impl ProviderFilter {
    fn new(specs: &[String]) -> ProviderFilter {
        let mut f = ProviderFilter {
            guids: Vec::new(),
            names: Vec::new(),
        };
        for spec in specs {
            match spec.parse::<Guid>() {
                Ok(g) => f.guids.push(g),
                Err(_) => {
                    f.guids.extend(known::guids_named(spec));
                    f.names.push(spec.to_ascii_lowercase());
                }
            }
        }
        f
    }

    fn is_empty(&self) -> bool {
        self.guids.is_empty() && self.names.is_empty()
    }

    fn keeps(&self, ev: &rhscope::etl::Event<'_>) -> bool {
        self.is_empty()
            || self.guids.contains(&ev.provider)
            || ev
                .provider_name()
                .is_some_and(|n| self.names.iter().any(|want| n.eq_ignore_ascii_case(want)))
    }
}

const CSV_COLUMNS: &str =
    "time,timestamp,cpu,pid,tid,kind,provider,provider_name,id,version,level,opcode,task,keyword,event,fields,payload,decode_error";

pub fn run(
    path: &Path,
    format: DumpFormat,
    providers: &[String],
    limit: Option<u64>,
    output: Option<&Path>,
    manifests: &[PathBuf],
    opts: ReadOpts,
) -> Result<()> {
    let manifests = super::manifests(manifests)?;
    let trace = Trace::open(path)?;
    let filter = ProviderFilter::new(providers);
    super::with_output(output, &[path], |out| {
        dump(&trace, out, format, &filter, limit, &manifests, opts)
    })
}

fn dump(
    trace: &Trace,
    out: &mut dyn Write,
    format: DumpFormat,
    filter: &ProviderFilter,
    limit: Option<u64>,
    manifests: &ManifestSet,
    opts: ReadOpts,
) -> Result<()> {
    let path = trace.path();
    let bar = progress::bar(trace.len(), opts.quiet);
    if matches!(format, DumpFormat::Csv) {
        writeln!(out, "{CSV_COLUMNS}")?;
    }
    let mut written = 0u64;
    let mut seen = 0u64;
    let mut events = trace.events();
    while let Some(item) = events.next_event() {
        if limit.is_some_and(|n| written >= n) {
            break;
        }
        let ev = match item {
            Ok(ev) => ev,
            Err(e) if opts.strict => bail!("{}: {e}", path.display()),
            Err(e) => {
                bar.suspend(|| eprintln!("rhscope: warning: {}: {e}", path.display()));
                continue;
            }
        };
        seen += 1;
        if seen % 65_536 == 0 {
            // Buffers are read in time order, not file order: the offset of
            // the current one is close enough for a progress bar.
            bar.set_position(ev.location.buffer_offset);
        }
        if !filter.keeps(&ev) {
            continue;
        }
        let mut row = EventRow::new(&ev);
        manifests.fill_row(&ev, &mut row);
        match format {
            DumpFormat::Jsonl => {
                serde_json::to_writer(&mut *out, &row)?;
                writeln!(out)?;
            }
            DumpFormat::Csv => write_csv(out, &row)?,
        }
        written += 1;
    }
    bar.finish_and_clear();
    Ok(())
}

fn write_csv(out: &mut dyn Write, r: &EventRow) -> io::Result<()> {
    let opt = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
    let cells = [
        r.time.clone(),
        r.timestamp.to_string(),
        r.cpu.to_string(),
        opt(r.pid),
        opt(r.tid),
        r.kind.to_string(),
        r.provider.to_string(),
        r.provider_name.clone().unwrap_or_default(),
        r.id.to_string(),
        r.version.to_string(),
        r.level.to_string(),
        r.opcode.to_string(),
        r.task.to_string(),
        r.keyword.clone(),
        r.event.clone().unwrap_or_default(),
        r.fields.as_ref().map(|f| f.to_string()).unwrap_or_default(),
        r.payload.clone().unwrap_or_default(),
        r.decode_error.clone().unwrap_or_default(),
    ];
    let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
    writeln!(out, "{}", line.join(","))
}

/// RFC 4180 quoting: only where the cell needs it.
fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
