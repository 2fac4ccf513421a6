//! A native reader of ETW .etl files: no Windows API, any OS.
//!
//! ```no_run
//! let trace = rhscope::read::etl::Trace::open("trace.etl")?;
//! println!("{} on {} CPUs", trace.header().logger_name, trace.header().number_of_processors);
//! let mut events = trace.events();
//! while let Some(item) = events.next_event() {
//!     match item {
//!         Ok(event) => println!("{} {:?}", event.time(), event.provider_name()),
//!         Err(problem) => eprintln!("skipped: {problem}"),
//!     }
//! }
//! # Ok::<(), rhscope::read::etl::TraceError>(())
//! ```
//!
//! The file is memory-mapped; buffers are walked by their own sizes,
//! decompressed when compressed, and their records merged across CPUs by
//! timestamp ([`Events`]). Events borrow from the mapping or from the
//! decompressed buffer holding them.

pub mod buffer;
pub mod copied;
pub mod cursor;
pub mod error;
pub mod extended;
pub mod filter;
pub mod guid;
pub mod header;
pub mod kernel;
pub mod known;
pub mod lz77;
pub mod payload;
pub mod record;
pub mod sorter;
pub mod stacks;
pub mod stackwalk;
pub mod stats;
pub mod tracelogging;
pub mod write;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

pub use buffer::BufferInfo;
pub use copied::RecordBatch;
pub use error::{EtlError, TraceError};
pub use extended::{ExtendedData, ExtendedItem};
pub use guid::Guid;
pub use header::{ClockType, TraceHeader};
pub use payload::{EventRow, Payload};
pub use record::{Descriptor, Event, HeaderKind, Location};
pub use sorter::{Events, RawRecord};
pub use stats::TraceStats;

enum Data {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Data {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Data::Mapped(m) => m,
            Data::Owned(v) => v,
        }
    }
}

/// An opened .etl file: its header, its buffer table and its events.
pub struct Trace {
    path: PathBuf,
    /// Shared with the threads that decode buffers ahead of the merge.
    data: Arc<Data>,
    header: TraceHeader,
    buffers: Arc<[BufferInfo]>,
    walk_problems: Vec<EtlError>,
}

impl Trace {
    /// Opens and maps a trace, reads its header and walks its buffers.
    /// Errors name the file and, for format problems, the byte offset.
    pub fn open(path: impl AsRef<Path>) -> Result<Trace, TraceError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| TraceError::Io {
            path: path.clone(),
            source,
        };
        let meta = std::fs::metadata(&path).map_err(io)?;
        if meta.is_dir() {
            return Err(TraceError::IsDirectory { path });
        }
        if meta.len() == 0 {
            return Err(TraceError::Empty { path });
        }
        let file = File::open(&path).map_err(io)?;
        // SAFETY: the mapping is read-only; a trace being rewritten while we
        // read it is outside what the tool supports (as for every reader
        // that maps its input), and all reads are bounds-checked.
        #[allow(unsafe_code)]
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Self::from_data(path, Data::Mapped(map))
    }

    /// A trace from bytes in memory; `name` stands for the path in errors.
    pub fn from_bytes(bytes: Vec<u8>, name: impl Into<PathBuf>) -> Result<Trace, TraceError> {
        let path = name.into();
        if bytes.is_empty() {
            return Err(TraceError::Empty { path });
        }
        Self::from_data(path, Data::Owned(bytes))
    }

    fn from_data(path: PathBuf, data: Data) -> Result<Trace, TraceError> {
        let format = |source| TraceError::Format {
            path: path.clone(),
            source,
        };
        let first = first_buffer(&data).map_err(format)?;
        let header = read_header(&data, &first).map_err(format)?;
        let walk = match &data {
            Data::Mapped(map) => {
                buffer::walk_releasing(map, Some(header.buffer_size), |offset, len| {
                    release(map, offset, len)
                })
            }
            Data::Owned(bytes) => buffer::walk(bytes, Some(header.buffer_size)),
        };
        Ok(Trace {
            path,
            data: Arc::new(data),
            header,
            buffers: walk.buffers.into(),
            walk_problems: walk.problems,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the file in bytes.
    pub fn len(&self) -> u64 {
        self.data.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    /// Every buffer found, in file order.
    pub fn buffers(&self) -> &[BufferInfo] {
        &self.buffers
    }

    /// Byte ranges where no buffer could be read (also yielded by events()).
    pub fn walk_problems(&self) -> &[EtlError] {
        &self.walk_problems
    }

    /// Events of all CPUs merged in time order, with buffers decoded ahead
    /// on other threads when the machine has cores to spare.
    pub fn events(&self) -> Events<'_> {
        self.events_with_workers(None)
    }

    /// [`Trace::events`] with `workers` decoding threads (0: all on the
    /// caller's); None chooses by the machine and the trace's size. The
    /// events, and the problems between them, come in the same order.
    pub fn events_with_workers(&self, workers: Option<usize>) -> Events<'_> {
        Events::new(
            &self.data,
            &self.buffers,
            self.header.clock,
            &self.walk_problems,
            workers,
        )
    }
}

/// Drops pages of a mapped trace from this process: the walk touches one
/// page per buffer (and the kernel maps its neighbours), which for a large
/// trace would otherwise keep the whole file resident.
pub(crate) fn release(map: &Mmap, offset: usize, len: usize) {
    #[cfg(unix)]
    {
        // SAFETY: the mapping is a read-only view of a file; MADV_DONTNEED
        // only unmaps the pages from this process, and a later read faults
        // the same file contents back in. So bytes still borrowed (madvise
        // works on whole pages: the page of the next unfinished buffer can
        // be among them, and decoding threads read ahead) read the same
        // after the call. A failure only costs memory.
        #[allow(unsafe_code)]
        let _ =
            unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len) };
    }
    #[cfg(not(unix))]
    let _ = (map, offset, len);
}

/// The first buffer must be a readable buffer header: anything else means
/// the file is not a trace (or lost its start), and nothing else is tried.
fn first_buffer(data: &[u8]) -> Result<BufferInfo, EtlError> {
    if data.len() < buffer::BUFFER_HEADER_SIZE {
        return Err(EtlError::NotEtl {
            offset: 0,
            detail: format!(
                "{} bytes is smaller than one buffer header ({} bytes)",
                data.len(),
                buffer::BUFFER_HEADER_SIZE
            ),
        });
    }
    BufferInfo::parse(data, 0).map_err(|e| match e {
        EtlError::Corrupt { detail, .. } => EtlError::NotEtl {
            offset: 0,
            detail: format!("no ETW buffer header: {detail}"),
        },
        other => other,
    })
}

/// Reads TRACE_LOGFILE_HEADER from the first record of the first buffer.
fn read_header(data: &[u8], first: &BufferInfo) -> Result<TraceHeader, EtlError> {
    let bytes = first.contents(data)?;
    let mut slots = Vec::new();
    let problem = record::scan(&bytes, first, &mut slots);
    let not_header = |detail: String| EtlError::NotEtl {
        offset: buffer::BUFFER_HEADER_SIZE as u64,
        detail,
    };
    let Some(slot) = slots.first() else {
        return Err(match problem {
            Some(p) => not_header(format!("first buffer has no readable record ({p})")),
            None => not_header("first buffer holds no records".into()),
        });
    };
    let event = Event::decode(&bytes, slot, first)?;
    if event.kind != HeaderKind::System
        || event.kernel_group != Some(known::GROUP_HEADER)
        || event.descriptor.opcode != 0
    {
        return Err(not_header(format!(
            "first record is a {} record, not the trace header",
            event.kind.name()
        )));
    }
    let base = first.offset + u64::from(slot.offset) + 0x20;
    TraceHeader::parse(event.payload, event.pointer_size, event.timestamp, base)
}
