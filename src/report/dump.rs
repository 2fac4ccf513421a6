//! `dump`: every event of a trace, one line each (JSON lines or CSV), with
//! its decoded fields or its payload in hex.

use std::io::Write;

use crate::model::Stack;
use crate::providers::manifest::ManifestSet;
use crate::read::etl::filter::ProviderFilter;
use crate::read::etl::kernel::{self, KernelEvent};
use crate::read::etl::Event;
use crate::read::etl::{EtlError, EventRow, Trace};
use crate::source::stacks::StackContext;

/// The line formats of a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpFormat {
    Jsonl,
    Csv,
}

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("writing the dump")]
    Io(#[from] std::io::Error),
    #[error("{}: no record at {at} (buffer offset + record offset, as a finding's evidence gives it)", path.display())]
    NotFound {
        path: std::path::PathBuf,
        at: String,
    },
    #[error("{}: {source}", path.display())]
    Corrupt {
        path: std::path::PathBuf,
        #[source]
        source: EtlError,
    },
}

impl From<serde_json::Error> for DumpError {
    fn from(e: serde_json::Error) -> DumpError {
        DumpError::Io(e.into())
    }
}

/// What to dump and how.
pub struct DumpOptions<'a> {
    pub format: DumpFormat,
    pub filter: &'a ProviderFilter,
    /// Stop after this many events.
    pub limit: Option<u64>,
    pub manifests: &'a ManifestSet,
    /// Stop at the first corrupt record instead of reporting and skipping it.
    pub strict: bool,
    /// Only the record at this place (buffer offset, record offset in the
    /// buffer, decompressed if it was): an evidence item's `at`.
    pub at: Option<(u64, u32)>,
}

/// Writes the events; `skipped` hears of each corrupt record passed over,
/// `progress` of the file offset reached now and then.
pub fn write_events(
    trace: &Trace,
    out: &mut dyn Write,
    opts: &DumpOptions<'_>,
    mut stacks: Option<&mut StackContext<'_>>,
    mut skipped: impl FnMut(&EtlError),
    mut progress: impl FnMut(u64),
) -> Result<(), DumpError> {
    if opts.format == DumpFormat::Csv {
        writeln!(out, "{}", super::csv::EVENT_COLUMNS)?;
    }
    let mut written = 0u64;
    let mut seen = 0u64;
    let mut events = trace.events();
    while let Some(item) = events.next_event() {
        if opts.limit.is_some_and(|n| written >= n) {
            break;
        }
        let ev = match item {
            Ok(ev) => ev,
            Err(source) if opts.strict => {
                return Err(DumpError::Corrupt {
                    path: trace.path().to_path_buf(),
                    source,
                })
            }
            Err(e) => {
                skipped(&e);
                continue;
            }
        };
        seen += 1;
        if seen % 65_536 == 0 {
            // Buffers are read in time order, not file order: the offset of
            // the current one is close enough for a progress bar.
            progress(ev.location.buffer_offset);
        }
        if let Some((buffer, record)) = opts.at {
            if (ev.location.buffer_offset, ev.location.record_offset) != (buffer, record) {
                continue;
            }
        }
        if !opts.filter.keeps(&ev) {
            continue;
        }
        let mut row = EventRow::new(&ev);
        opts.manifests.fill_row(&ev, &mut row);
        if let Some(st) = stacks.as_deref_mut() {
            row.stack = stack_of(st, &ev).map(|s| s.iter().map(ToString::to_string).collect());
        }
        match opts.format {
            DumpFormat::Jsonl => {
                serde_json::to_writer(&mut *out, &row)?;
                writeln!(out)?;
            }
            DumpFormat::Csv => super::csv::write_event(out, &row)?,
        }
        written += 1;
        if opts.at.is_some() {
            break;
        }
    }
    if let (Some((buffer, record)), 0) = (opts.at, written) {
        return Err(DumpError::NotFound {
            path: trace.path().to_path_buf(),
            at: format!("{buffer:#x}+{record:#x}"),
        });
    }
    Ok(())
}

/// The stack walked with an event: the stack of the event's thread at its
/// timestamp (a context switch's: the thread switching in; a thread
/// event's: that thread).
fn stack_of(st: &mut StackContext<'_>, ev: &Event<'_>) -> Option<Stack> {
    let thread = match kernel::decode(ev) {
        Some(Ok(KernelEvent::CSwitch { new_thread_id, .. })) => Some(new_thread_id),
        Some(Ok(KernelEvent::Thread { thread_id, .. })) => Some(thread_id),
        _ => ev.thread_id,
    }?;
    st.stack(thread, ev.timestamp)
}
