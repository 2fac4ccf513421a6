//! WMI buffers: the unit an .etl file is made of. Each buffer starts with a
//! 0x48-byte header and holds records of one CPU, in time order.

use zerocopy::little_endian::{I64, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

use super::cursor::read_struct;
use super::error::{EtlError, Result};
use super::lz77;

pub const BUFFER_HEADER_SIZE: usize = 0x48;

/// BufferFlag bit for a buffer whose payload is compressed.
pub const FLAG_COMPRESSED: u16 = 0x40;
/// The compression format value (low 16 bits of State) for plain LZ77.
pub const COMPRESSION_LZ77: u16 = 3;

/// Largest buffer ETW allows (BufferSize is capped at 16 MiB); anything
/// larger is corruption, and the cap bounds what a bad header can allocate.
pub const MAX_BUFFER_SIZE: u32 = 16 * 1024 * 1024;

/// WMI_BUFFER_HEADER as written to disk.
#[derive(Debug, Clone, Copy, FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct WmiBufferHeader {
    pub buffer_size: U32,
    pub saved_offset: U32,
    pub current_offset: U32,
    pub reference_count: U32,
    pub timestamp: I64,
    pub sequence_number: I64,
    pub clock: U64,
    pub processor_index: U16,
    pub logger_id: U16,
    pub state: U32,
    pub offset: U32,
    pub buffer_flag: U16,
    pub buffer_type: U16,
    pub reserved: [u8; 16],
}

const _: () = assert!(std::mem::size_of::<WmiBufferHeader>() == BUFFER_HEADER_SIZE);

/// What the reader keeps of one buffer after walking the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BufferInfo {
    /// File offset of the buffer header.
    pub offset: u64,
    /// Bytes the buffer occupies in the file.
    pub size: u32,
    /// Bytes of header and records once decompressed (== used bytes).
    pub filled: u32,
    pub timestamp: i64,
    pub processor: u16,
    pub logger_id: u16,
    pub flags: u16,
    pub buffer_type: u16,
    pub compressed: bool,
    /// The end of the file cut this buffer short.
    pub truncated: bool,
}

impl BufferInfo {
    /// Checks the buffer header at the start of `data` (the file from
    /// `offset` on) against the bytes the file has.
    pub fn parse(data: &[u8], offset: u64) -> Result<BufferInfo> {
        let h: &WmiBufferHeader =
            read_struct(data, 0, "buffer header").map_err(|e| e.rebased(offset))?;
        Self::from_header(h, offset, data.len() as u64)
    }

    fn from_header(h: &WmiBufferHeader, offset: u64, available: u64) -> Result<BufferInfo> {
        let size = h.buffer_size.get();
        if size < BUFFER_HEADER_SIZE as u32 || size > MAX_BUFFER_SIZE {
            return Err(EtlError::corrupt(
                "buffer header",
                offset,
                format!("impossible buffer size {size:#x}"),
            ));
        }
        if u64::from(size) > available {
            return Err(EtlError::Truncated {
                what: "buffer",
                offset,
                need: u64::from(size),
                have: available,
            });
        }
        let flags = h.buffer_flag.get();
        let compressed = flags & FLAG_COMPRESSED != 0;
        // `Offset` is the bytes used, header included; older writers leave it
        // zero and only set SavedOffset.
        let mut filled = h.offset.get();
        if filled == 0 {
            filled = h.saved_offset.get();
        }
        let max_filled = if compressed { MAX_BUFFER_SIZE } else { size };
        if filled < BUFFER_HEADER_SIZE as u32 || filled > max_filled {
            return Err(EtlError::corrupt(
                "buffer header",
                offset,
                format!("used size {filled:#x} does not fit buffer size {size:#x}"),
            ));
        }
        if compressed && (h.state.get() & 0xffff) as u16 != COMPRESSION_LZ77 {
            return Err(EtlError::corrupt(
                "buffer header",
                offset,
                format!("unknown compression format {}", h.state.get() & 0xffff),
            ));
        }
        Ok(BufferInfo {
            offset,
            size,
            filled,
            timestamp: h.timestamp.get(),
            processor: h.processor_index.get(),
            logger_id: h.logger_id.get(),
            flags,
            buffer_type: h.buffer_type.get(),
            compressed,
            truncated: false,
        })
    }

    /// The buffer's bytes as records see them: header followed by the used
    /// part of the payload, decompressed when the buffer is compressed.
    pub fn contents<'m>(&self, file: &'m [u8]) -> Result<BufferBytes<'m>> {
        let start = self.offset as usize;
        let raw = &file[start..start + self.size as usize];
        if !self.compressed {
            return Ok(BufferBytes::Mapped(
                &raw[..self.filled.min(self.size) as usize],
            ));
        }
        // Grow towards `filled` only as the data really decompresses: a
        // corrupt header must not make every attempt allocate 16 MiB.
        let guess = (self.size as usize)
            .saturating_mul(4)
            .min(self.filled as usize);
        let mut out = Vec::with_capacity(guess);
        out.extend_from_slice(&raw[..BUFFER_HEADER_SIZE]);
        lz77::decompress_into(&raw[BUFFER_HEADER_SIZE..], &mut out, self.filled as usize).map_err(
            |e| EtlError::Decompress {
                offset: self.offset,
                detail: e.to_string(),
            },
        )?;
        if out.len() != self.filled as usize {
            return Err(EtlError::Decompress {
                offset: self.offset,
                detail: format!("gives {} bytes, header says {}", out.len(), self.filled),
            });
        }
        Ok(BufferBytes::Decompressed(out))
    }
}

/// A buffer's bytes: straight from the mapping, or decompressed.
#[derive(Debug)]
pub enum BufferBytes<'m> {
    Mapped(&'m [u8]),
    Decompressed(Vec<u8>),
}

impl std::ops::Deref for BufferBytes<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            BufferBytes::Mapped(s) => s,
            BufferBytes::Decompressed(v) => v,
        }
    }
}

/// Result of walking a file's buffer chain.
#[derive(Debug, Default)]
pub struct BufferWalk {
    pub buffers: Vec<BufferInfo>,
    /// Byte ranges that held no readable buffer, with why.
    pub problems: Vec<EtlError>,
}

/// Walks buffers by their own sizes. A bad header mid-file does not end the
/// walk: the reader looks for the next plausible buffer header, so one
/// corrupt buffer costs that buffer and not the rest of the trace. A buffer
/// cut short by the end of the file keeps the records that are whole.
pub fn walk(file: &[u8]) -> BufferWalk {
    walk_releasing(file, |_, _| {})
}

/// [`walk`], calling `release(offset, len)` for each 32 MiB it has passed,
/// so a caller holding a mapping can drop those pages as the walk goes.
pub fn walk_releasing(file: &[u8], mut release: impl FnMut(usize, usize)) -> BufferWalk {
    const CHUNK: usize = 4 << 20;
    let mut released = 0usize;
    let mut walk = BufferWalk::default();
    let mut pos = 0usize;
    // While every buffer so far (two at least) has had one size,
    // resynchronisation looks only at multiples of it; otherwise (relogged
    // files) at every byte.
    let mut same_size = true;
    while pos < file.len() {
        match BufferInfo::parse(&file[pos..], pos as u64) {
            Ok(info) => {
                same_size = match walk.buffers.first() {
                    None => true,
                    Some(first) => same_size && first.size == info.size,
                };
                pos += info.size as usize;
                walk.buffers.push(info);
                if pos - released >= CHUNK {
                    release(released, pos - released);
                    released = pos;
                }
            }
            Err(e) => {
                if let Some(info) = truncated_tail(file, pos, &e) {
                    walk.problems.push(e);
                    walk.buffers.push(info);
                    break;
                }
                walk.problems.push(e);
                let stride = match walk.buffers.as_slice() {
                    [first, _, ..] if same_size => Some(first.size as usize),
                    _ => None,
                };
                match resync(file, pos + 1, stride) {
                    Some(next) => pos = next,
                    None => break,
                }
            }
        }
    }
    release(released, file.len().saturating_sub(released));
    walk
}

/// The readable part of a last buffer that the end of the file cut short.
fn truncated_tail(file: &[u8], pos: usize, e: &EtlError) -> Option<BufferInfo> {
    if !matches!(e, EtlError::Truncated { what: "buffer", .. }) {
        return None;
    }
    let available = (file.len() - pos) as u32;
    // Parse a copy of the header that claims only the bytes that exist.
    let mut header = [0u8; BUFFER_HEADER_SIZE];
    header.copy_from_slice(file.get(pos..pos + BUFFER_HEADER_SIZE)?);
    for field in [0x00, 0x04, 0x30] {
        let old = u32::from_le_bytes([
            header[field],
            header[field + 1],
            header[field + 2],
            header[field + 3],
        ]);
        header[field..field + 4].copy_from_slice(&old.min(available).to_le_bytes());
    }
    let h: &WmiBufferHeader = read_struct(&header, 0, "buffer header").ok()?;
    if h.buffer_flag.get() & FLAG_COMPRESSED != 0 {
        return None;
    }
    let mut info = BufferInfo::from_header(h, pos as u64, u64::from(available)).ok()?;
    info.truncated = true;
    Some(info)
}

/// Finds the next offset at or after `from` holding a buffer that reads
/// cleanly: its header parses, it decompresses if compressed, and its
/// records chain from the header to the used size. Anything weaker is
/// fooled by record bytes that LZ77 literals or payloads carry.
fn resync(file: &[u8], from: usize, stride: Option<usize>) -> Option<usize> {
    let plausible = |at: usize| -> bool {
        let Ok(info) = BufferInfo::parse(&file[at..], at as u64) else {
            return false;
        };
        let Ok(bytes) = info.contents(file) else {
            return false;
        };
        let mut slots = Vec::new();
        super::record::scan(&bytes, &info, &mut slots).is_none() && !slots.is_empty()
    };
    match stride.filter(|&n| n > 0) {
        Some(n) => (from.div_ceil(n)..)
            .map(|k| k * n)
            .take_while(|&at| at < file.len())
            .find(|&at| plausible(at)),
        None => (from..file.len()).find(|&at| plausible(at)),
    }
}
