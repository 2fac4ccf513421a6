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
        match self.in_file(file) {
            Some(bytes) => Ok(BufferBytes::Mapped(bytes)),
            None => {
                let mut out = Vec::new();
                self.decompress(file, &mut out)?;
                Ok(BufferBytes::Decompressed(out))
            }
        }
    }

    /// The bytes of an uncompressed buffer, where they lie in the file;
    /// None for a compressed one.
    pub fn in_file<'m>(&self, file: &'m [u8]) -> Option<&'m [u8]> {
        let start = self.offset as usize;
        (!self.compressed).then(|| &file[start..start + self.filled.min(self.size) as usize])
    }

    /// Decompresses a compressed buffer (header included) into `out`,
    /// replacing what it held: a reader reuses one vector for many buffers.
    pub fn decompress(&self, file: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let start = self.offset as usize;
        let raw = &file[start..start + self.size as usize];
        out.clear();
        // Grow towards `filled` only as the data really decompresses: a
        // corrupt header must not make every attempt allocate 16 MiB.
        let guess = (self.size as usize)
            .saturating_mul(4)
            .min(self.filled as usize);
        out.reserve(guess);
        out.extend_from_slice(&raw[..BUFFER_HEADER_SIZE]);
        lz77::decompress_into(&raw[BUFFER_HEADER_SIZE..], out, self.filled as usize).map_err(
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
        Ok(())
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
/// walk: the reader looks for the next buffer that reads cleanly, so one
/// corrupt buffer costs that buffer and not the rest of the trace. A buffer
/// cut short by the end of the file keeps the records that are whole.
///
/// `nominal` is the trace header's BufferSize: no uncompressed buffer of
/// the file is larger (relogged files have smaller ones; compressed
/// buffers declare their own size), so a larger size is a corrupt one, read
/// as the nominal size when a buffer follows there. A size whose end is not followed by a
/// buffer, while one starts inside it, swallowed that one and is corrupt
/// too. Every skip is a problem naming what was skipped.
pub fn walk(file: &[u8], nominal: Option<u32>) -> BufferWalk {
    walk_releasing(file, nominal, |_, _| {})
}

/// [`walk`], calling `release(offset, len)` for each 4 MiB it has passed,
/// so a caller holding a mapping can drop those pages as the walk goes.
pub fn walk_releasing(
    file: &[u8],
    nominal: Option<u32>,
    mut release: impl FnMut(usize, usize),
) -> BufferWalk {
    const CHUNK: usize = 4 << 20;
    let nominal = nominal.filter(|n| (BUFFER_HEADER_SIZE as u32..=MAX_BUFFER_SIZE).contains(n));
    let mut released = 0usize;
    let mut walk = BufferWalk::default();
    let mut pos = 0usize;
    // Where buffers of the nominal size are laid out from: resynchronising
    // tries those offsets before every byte.
    let mut grid: Option<usize> = None;
    while pos < file.len() {
        let checked = match BufferInfo::parse(&file[pos..], pos as u64) {
            Ok(info) => check_size(file, info, nominal),
            // A size past the end of the file, mid-file: the nominal size
            // may still be right.
            Err(e) => nominal_instead(file, pos, nominal, &e).ok_or(e),
        };
        match checked {
            Ok((info, repaired)) => {
                walk.problems.extend(repaired);
                if Some(info.size) == nominal {
                    grid.get_or_insert(pos);
                }
                pos += info.size as usize;
                walk.buffers.push(info);
                if pos - released >= CHUNK {
                    release(released, pos - released);
                    released = pos;
                }
            }
            Err(e) => {
                let stride = nominal.zip(grid).map(|(n, g)| (n as usize, g));
                match resync(file, pos + 1, stride) {
                    Some(next) => {
                        walk.problems.push(skipped(e, pos, next));
                        pos = next;
                    }
                    None => {
                        if let Some(info) = truncated_tail(file, pos, &e) {
                            walk.problems.push(e);
                            walk.buffers.push(info);
                        } else {
                            walk.problems.push(skipped(e, pos, file.len()));
                        }
                        break;
                    }
                }
            }
        }
    }
    release(released, file.len().saturating_sub(released));
    walk
}

/// The problem that made the walk skip `from..to`, saying so.
fn skipped(e: EtlError, from: usize, to: usize) -> EtlError {
    let what = match &e {
        EtlError::Truncated { what, .. } | EtlError::Corrupt { what, .. } => what,
        _ => "buffer",
    };
    let detail = match &e {
        EtlError::Corrupt { detail, .. } | EtlError::Decompress { detail, .. } => detail.clone(),
        EtlError::Truncated { need, have, .. } => {
            format!("claims {need} bytes, the file has {have} from there")
        }
        other => other.to_string(),
    };
    let skip = if to < usize::MAX && to > from {
        format!("; {} bytes skipped, up to byte offset {to}", to - from)
    } else {
        String::new()
    };
    EtlError::corrupt(what, e.offset(), format!("{detail}{skip}"))
}

/// Whether a buffer header that parses (or the start of a last buffer the
/// file cut short) is at `at`.
fn header_at(file: &[u8], at: usize) -> bool {
    at == file.len()
        || match BufferInfo::parse(&file[at..], at as u64) {
            Ok(_) => true,
            Err(e) => matches!(e, EtlError::Truncated { what: "buffer", .. }),
        }
}

/// The buffer at `pos` read with the trace's nominal size instead of the
/// one its header claims, when a buffer follows there, with the problem.
fn nominal_instead(
    file: &[u8],
    pos: usize,
    nominal: Option<u32>,
    e: &EtlError,
) -> Option<(BufferInfo, Option<EtlError>)> {
    let n = nominal?;
    let EtlError::Truncated { need, .. } = e else {
        return None;
    };
    let end = pos.checked_add(n as usize)?;
    if end > file.len() || !header_at(file, end) {
        return None;
    }
    let info = with_size(file, pos, n)?;
    if info.compressed {
        return None;
    }
    let problem = EtlError::corrupt(
        "buffer header",
        pos as u64,
        format!(
            "buffer size {need:#x} is larger than the trace's buffer size {n:#x}: read as {n:#x}"
        ),
    );
    Some((info, Some(problem)))
}

/// The header at `pos` parsed as if its size (and used sizes) were at
/// most `size`.
fn with_size(file: &[u8], pos: usize, size: u32) -> Option<BufferInfo> {
    let mut header = [0u8; BUFFER_HEADER_SIZE];
    header.copy_from_slice(file.get(pos..pos + BUFFER_HEADER_SIZE)?);
    for field in [0x00, 0x04, 0x30] {
        let old = u32::from_le_bytes([
            header[field],
            header[field + 1],
            header[field + 2],
            header[field + 3],
        ]);
        let new = if field == 0 { size } else { old.min(size) };
        header[field..field + 4].copy_from_slice(&new.to_le_bytes());
    }
    let h: &WmiBufferHeader = read_struct(&header, 0, "buffer header").ok()?;
    BufferInfo::from_header(h, pos as u64, (file.len() - pos) as u64).ok()
}

/// Checks a buffer's size against the file: a size over the nominal one is
/// corrupt (read as the nominal size when a buffer follows there, with a
/// problem saying so); a size that runs past a buffer starting inside it is
/// corrupt.
fn check_size(
    file: &[u8],
    mut info: BufferInfo,
    nominal: Option<u32>,
) -> Result<(BufferInfo, Option<EtlError>)> {
    let pos = info.offset as usize;
    if let Some(n) = nominal.filter(|&n| info.size > n && !info.compressed) {
        let wrong = format!(
            "buffer size {:#x} is larger than the trace's buffer size {n:#x}",
            info.size
        );
        if header_at(file, pos + n as usize) && info.filled <= n {
            info.size = n;
            let problem = EtlError::corrupt(
                "buffer header",
                pos as u64,
                format!("{wrong}: read as {n:#x}"),
            );
            return Ok((info, Some(problem)));
        }
        return Err(EtlError::corrupt("buffer header", pos as u64, wrong));
    }
    let end = pos + info.size as usize;
    if header_at(file, end) {
        return Ok((info, None));
    }
    // Not followed by a buffer, while one follows at the nominal size: the
    // size is wrong, not the next buffer.
    if let Some(n) = nominal.filter(|&n| n > info.size && !info.compressed) {
        if pos + n as usize <= file.len() && header_at(file, pos + n as usize) {
            let was = info.size;
            if let Some(fixed) = with_size(file, pos, n) {
                let problem = EtlError::corrupt(
                    "buffer header",
                    pos as u64,
                    format!("buffer size {was:#x} is not followed by a buffer, the trace's buffer size {n:#x} is: read as {n:#x}"),
                );
                return Ok((fixed, Some(problem)));
            }
        }
    }
    // No buffer where this one says it ends: if one starts inside it, the
    // size swallowed it.
    match resync_within(
        file,
        pos + BUFFER_HEADER_SIZE,
        end,
        nominal.map(|n| (n as usize, pos)),
    ) {
        Some(inner) => Err(EtlError::corrupt(
            "buffer header",
            pos as u64,
            format!(
                "buffer size {:#x} runs past the buffer at byte offset {inner}",
                info.size
            ),
        )),
        None => Ok((info, None)),
    }
}

/// The readable part of a last buffer that the end of the file cut short.
fn truncated_tail(file: &[u8], pos: usize, e: &EtlError) -> Option<BufferInfo> {
    if !matches!(e, EtlError::Truncated { what: "buffer", .. }) {
        return None;
    }
    let mut info = with_size(file, pos, (file.len() - pos) as u32)?;
    if info.compressed {
        return None;
    }
    info.truncated = true;
    Some(info)
}

/// Finds the next offset at or after `from` holding a buffer that reads
/// cleanly: its header parses, it decompresses if compressed, and its
/// records chain from the header to the used size. Anything weaker is
/// fooled by record bytes that LZ77 literals or payloads carry. Offsets on
/// the grid of nominal-size buffers (`stride`: size, origin) are tried
/// first, then every byte.
fn resync(file: &[u8], from: usize, stride: Option<(usize, usize)>) -> Option<usize> {
    resync_within(file, from, file.len(), stride)
}

fn resync_within(
    file: &[u8],
    from: usize,
    to: usize,
    stride: Option<(usize, usize)>,
) -> Option<usize> {
    let to = to.min(file.len());
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
    let on_grid = stride.filter(|&(n, _)| n > 0).and_then(|(n, origin)| {
        let first = origin + from.saturating_sub(origin).div_ceil(n) * n;
        (first..to)
            .step_by(n)
            .find(|&at| at >= from && plausible(at))
    });
    on_grid.or_else(|| (from..to).find(|&at| plausible(at)))
}
