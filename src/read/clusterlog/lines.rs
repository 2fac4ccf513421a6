//! A cluster.log's bytes as lines of text: its encoding (a byte-order
//! mark, or the NULs of UTF-16 text without one), its line ends, and lines
//! too long to keep whole cut. What the lines say is the parent's business.

use std::io::{self, BufRead, BufReader, Read};

use crate::read::text::utf16_lossy;

/// Longest line kept whole; longer ones are cut (a binary file has no line
/// ends, and must not be read into memory as one line).
pub(super) const MAX_LINE: usize = 64 * 1024;

/// A line as the file gave it.
pub(super) struct Line {
    /// Its text, without its line end.
    pub text: String,
    /// Bytes of the file it took, its line end included.
    pub bytes: u64,
    /// Longer than MAX_LINE: cut there.
    pub cut: bool,
}

/// Lines of a stream, in its encoding.
pub(super) struct Lines {
    input: Box<dyn BufRead + Send>,
    /// UTF-16LE (a byte-order mark said so, or the NULs of its text):
    /// lines end at the unit 0x000A.
    utf16: bool,
    /// The line being read, as bytes.
    buf: Vec<u8>,
}

impl Lines {
    /// The lines of `input`, and the encoding its first bytes show (what
    /// comes before its text, a mark or half a unit, is skipped).
    pub(super) fn new(mut input: impl Read + Send + 'static) -> io::Result<(Lines, Encoding)> {
        // The encoding from the first bytes, however short the stream's
        // reads: a whole sample, then the rest after it.
        let mut head = Vec::with_capacity(Encoding::SAMPLE);
        (&mut input)
            .take(Encoding::SAMPLE as u64)
            .read_to_end(&mut head)?;
        let encoding = Encoding::of(&head);
        let mut first = io::Cursor::new(head);
        first.set_position(encoding.skip());
        let lines = Lines {
            input: Box::new(BufReader::with_capacity(256 * 1024, first.chain(input))),
            utf16: encoding.utf16(),
            buf: Vec::new(),
        };
        Ok((lines, encoding))
    }

    /// The next line; None at the end.
    pub(super) fn next_line(&mut self) -> io::Result<Option<Line>> {
        self.buf.clear();
        let total = if self.utf16 {
            self.raw_line_utf16()
        } else {
            self.raw_line_utf8()
        }?;
        if total == 0 {
            return Ok(None);
        }
        let cut = (self.buf.len() as u64) < total;
        // The line end goes before decoding: one String per line.
        let unit = if self.utf16 { 2 } else { 1 };
        let mut end = self.buf.len();
        while end >= unit
            && matches!(self.buf[end - unit], b'\n' | b'\r')
            && (unit == 1 || self.buf[end - 1] == 0)
        {
            end -= unit;
        }
        let bytes = &self.buf[..end];
        let text = if self.utf16 {
            utf16_lossy(bytes)
        } else {
            // UTF-8, or (older logs) 8-bit ANSI: read as Latin-1 rather
            // than losing the bytes.
            match std::str::from_utf8(bytes) {
                Ok(t) => t.to_string(),
                // UTF-8 cut inside its last character (an over-long line).
                Err(e) if cut && e.error_len().is_none() => {
                    String::from_utf8_lossy(bytes).into_owned()
                }
                Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
            }
        };
        Ok(Some(Line {
            text,
            bytes: total,
            cut,
        }))
    }

    /// Bytes up to and including the next '\n' into `buf` (at most
    /// MAX_LINE kept); returns how many the file gave.
    fn raw_line_utf8(&mut self) -> io::Result<u64> {
        let mut total = 0u64;
        loop {
            let chunk = fill(&mut *self.input)?;
            if chunk.is_empty() {
                return Ok(total);
            }
            let (used, end) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            let room = MAX_LINE.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&chunk[..used.min(room)]);
            self.input.consume(used);
            total += used as u64;
            if end {
                return Ok(total);
            }
        }
    }

    /// The same for UTF-16LE: up to and including the unit 0x000A (a 0x0A
    /// byte that is half of another unit does not end the line).
    fn raw_line_utf16(&mut self) -> io::Result<u64> {
        let mut total = 0u64;
        // A unit's first byte, when the reader's buffer ended between its
        // two bytes.
        let mut low: Option<u8> = None;
        loop {
            let chunk = fill(&mut *self.input)?;
            if chunk.is_empty() {
                break;
            }
            let mut used = 0;
            let mut end = false;
            if let Some(lo) = low.take() {
                let hi = chunk[0];
                used = 1;
                if self.buf.len() + 2 <= MAX_LINE * 2 {
                    self.buf.extend_from_slice(&[lo, hi]);
                }
                end = lo == b'\n' && hi == 0;
            }
            if !end {
                // Whole units at once: a node's log is UTF-16, and a unit
                // at a time was half of reading it.
                let body = &chunk[used..];
                let (take, found) = match unit_line_end(body) {
                    Some(n) => (n, true),
                    None => (body.len(), false),
                };
                let whole = take & !1;
                let room = (MAX_LINE * 2).saturating_sub(self.buf.len());
                self.buf.extend_from_slice(&body[..whole.min(room)]);
                if take != whole {
                    low = Some(body[whole]);
                }
                used += take;
                end = found;
            }
            self.input.consume(used);
            total += used as u64;
            if end {
                return Ok(total);
            }
        }
        // A last odd byte is half a unit; decoding drops it.
        self.buf.extend(low);
        Ok(total)
    }
}

/// How a cluster.log's bytes are encoded, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    /// UTF-8 (or 8-bit ANSI, read as Latin-1), after a byte-order mark or
    /// not.
    Utf8 { bom: bool },
    /// UTF-16LE after its byte-order mark: what `Get-ClusterLog` writes.
    Utf16,
    /// UTF-16LE without one: a piece cut from such a log. `skip` is 1
    /// where the cut fell inside a unit (its high byte comes first).
    Utf16Headless { skip: u64 },
}

impl Encoding {
    /// Bytes of the head looked at for NULs: a few dozen lines.
    const SAMPLE: usize = 4096;

    pub(super) fn of(head: &[u8]) -> Encoding {
        if head.starts_with(&[0xFF, 0xFE]) {
            return Encoding::Utf16;
        }
        if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
            return Encoding::Utf8 { bom: true };
        }
        // Text never holds NUL in UTF-8; in UTF-16LE every ASCII unit's
        // high byte is one, and a node's log is mostly ASCII (its ids and
        // times at least). NULs at one parity of offset and (nearly)
        // never at the other are UTF-16; scattered ones are binary data,
        // which the reader then refuses by its first NUL.
        let sample = &head[..head.len().min(Self::SAMPLE) & !1];
        let pairs = sample.len() / 2;
        let (mut even, mut odd) = (0, 0);
        for pair in sample.chunks_exact(2) {
            even += usize::from(pair[0] == 0);
            odd += usize::from(pair[1] == 0);
        }
        // A few units of other scripts have a zero low byte (U+0100,
        // U+4E00): tolerated at one in sixteen.
        let mostly = |a: usize, b: usize| pairs >= 8 && a * 2 >= pairs && b * 16 <= a;
        let guess = if mostly(odd, even) {
            Encoding::Utf16Headless { skip: 0 }
        } else if mostly(even, odd) {
            Encoding::Utf16Headless { skip: 1 }
        } else {
            return Encoding::Utf8 { bom: false };
        };
        // Binary data of small 16-bit numbers has that shape too: UTF-16
        // only where the text it makes holds an entry or a section, and
        // binary data is refused as such by its NULs.
        match super::has_log_line(&guess.text(sample)) {
            true => guess,
            false => Encoding::Utf8 { bom: false },
        }
    }

    /// Bytes before the text: a byte-order mark, half a unit.
    pub(super) fn skip(self) -> u64 {
        match self {
            Encoding::Utf8 { bom } => 3 * u64::from(bom),
            Encoding::Utf16 => 2,
            Encoding::Utf16Headless { skip } => skip,
        }
    }

    fn utf16(self) -> bool {
        !matches!(self, Encoding::Utf8 { .. })
    }

    /// The head's text, to look for log lines in (8-bit bytes that are not
    /// UTF-8 replaced, where the reader would read them as Latin-1: only
    /// the ASCII of ids, times and sections is looked at).
    pub(super) fn text(self, head: &[u8]) -> String {
        let text = head.get(self.skip() as usize..).unwrap_or_default();
        match self.utf16() {
            true => utf16_lossy(text),
            false => String::from_utf8_lossy(text).into_owned(),
        }
    }
}

/// How many bytes of `units` (UTF-16LE from a unit's start) run up to and
/// including the first unit 0x000A; None without one. A 0x0A byte that is
/// a unit's second byte, or the first of another unit (U+010A), is not it.
fn unit_line_end(units: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'\n', &units[from..]) {
        let at = from + i;
        if at % 2 == 0 && *units.get(at + 1)? == 0 {
            return Some(at + 2);
        }
        from = at + 1;
    }
    None
}

/// The reader's next bytes, retrying reads a signal interrupted.
fn fill(input: &mut dyn BufRead) -> io::Result<&[u8]> {
    // Returning the first successful borrow from inside the loop is not
    // accepted by today's borrow checker; asking again costs nothing when
    // the buffer holds data (and one empty read at the end of the file).
    loop {
        match input.fill_buf() {
            Ok(_) => return input.fill_buf(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
