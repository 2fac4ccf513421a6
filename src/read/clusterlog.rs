//! cluster.log, the text log `Get-ClusterLog` writes on each node:
//!
//! ```text
//! 00000df4.00000c04::2009/10/17-19:20:47.093 ERR   [RHS] RhsCall::Perform_NativeEH: ...
//! ```
//!
//! process id and thread id in hex (zero-padded, or not in the older short
//! form), a UTC timestamp to the millisecond, a level, a component and the
//! message. A line without that header continues the entry before it.
//! Files are read as a stream (they reach gigabytes), UTF-8 or UTF-16LE
//! with a byte-order mark; bytes that are not valid text become U+FFFD.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Lines read before giving up on finding one entry: a file with none is
/// not a cluster.log.
const SNIFF_LINES: u64 = 200;
/// Longest line kept whole; longer ones are cut (a binary file has no line
/// ends, and must not be read into memory as one line).
const MAX_LINE: usize = 64 * 1024;
/// Continuation lines kept per entry; the rest are counted, not kept.
const MAX_CONTINUATION: usize = 64;
/// Unparsed lines remembered for `--verbose`; the rest are only counted.
const KEEP_UNPARSED: usize = 100;

/// One log entry (a header line and its continuation lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number of the header line.
    pub line: u64,
    pub pid: u32,
    pub tid: u32,
    /// Nanoseconds since 1970-01-01 UTC (millisecond resolution).
    pub time_ns: i64,
    pub level: String,
    /// RHS, RES, RCM, ...: empty when the line has none.
    pub component: String,
    /// The message, continuation lines joined with '\n'.
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterLogError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: not a cluster.log: {detail} (at byte offset {offset})", path.display())]
    NotClusterLog {
        path: PathBuf,
        offset: u64,
        detail: String,
    },
}

/// A line that has no entry header and continues no entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unparsed {
    pub line: u64,
    pub reason: String,
    /// The line's start, shortened.
    pub text: String,
}

/// What reading a file came to, besides the entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogCounts {
    pub lines: u64,
    pub entries: u64,
    pub continuation_lines: u64,
    pub unparsed_lines: u64,
    /// The first unparsed lines, for `--verbose`.
    pub unparsed: Vec<Unparsed>,
}

/// Streams the entries of a cluster.log.
pub struct ClusterLog {
    path: PathBuf,
    input: Box<dyn BufRead + Send>,
    /// UTF-16LE (a byte-order mark said so): lines end at the unit 0x000A.
    utf16: bool,
    line_no: u64,
    offset: u64,
    pending: Option<Entry>,
    counts: LogCounts,
    done: bool,
    buf: Vec<u8>,
    /// The node that wrote it, from `Current node:` in the header.
    node: Option<String>,
}

impl ClusterLog {
    pub fn open(path: &Path) -> Result<ClusterLog, ClusterLogError> {
        let file = File::open(path).map_err(|source| ClusterLogError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_reader(path, file)
    }

    /// Reads from any stream; `path` names it in errors.
    pub fn from_reader(
        path: &Path,
        input: impl Read + Send + 'static,
    ) -> Result<ClusterLog, ClusterLogError> {
        let io_err = |source| ClusterLogError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut input = BufReader::with_capacity(256 * 1024, input);
        let head = input.fill_buf().map_err(io_err)?;
        let (offset, utf16) = if head.starts_with(&[0xFF, 0xFE]) {
            (2, true)
        } else if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
            (3, false)
        } else {
            (0, false)
        };
        input.consume(offset as usize);
        let mut log = ClusterLog {
            path: path.to_path_buf(),
            input: Box::new(input),
            utf16,
            line_no: 0,
            offset,
            pending: None,
            counts: LogCounts::default(),
            done: false,
            buf: Vec::new(),
            node: None,
        };
        log.sniff()?;
        Ok(log)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn counts(&self) -> &LogCounts {
        &self.counts
    }

    /// The node that wrote the log, as its header says (`Current node:`).
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// Reads until the first entry, so a file that is not a cluster.log
    /// fails at open with the offset of its first line that is not text.
    fn sniff(&mut self) -> Result<(), ClusterLogError> {
        while self.pending.is_none() {
            let start = self.offset;
            let Some(line) = self.read_line()? else {
                return Err(self.not_log(0, "no log entries"));
            };
            if line.contains('\0') {
                return Err(self.not_log(start, "binary data (NUL bytes)"));
            }
            if let Some(node) = current_node(&line) {
                self.node = Some(node);
            }
            self.take_line(line);
            if self.pending.is_none() && self.line_no >= SNIFF_LINES {
                return Err(self.not_log(
                    0,
                    &format!(
                        "none of the first {SNIFF_LINES} lines starts with `PID.TID::YYYY/MM/DD-HH:MM:SS.mmm`"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn not_log(&self, offset: u64, detail: &str) -> ClusterLogError {
        ClusterLogError::NotClusterLog {
            path: self.path.clone(),
            offset,
            detail: detail.to_string(),
        }
    }

    /// The next line as text, without its line end; None at the end.
    /// Offsets count file bytes, whatever the encoding.
    fn read_line(&mut self) -> Result<Option<String>, ClusterLogError> {
        self.buf.clear();
        let total = if self.utf16 {
            self.raw_line_utf16()
        } else {
            self.raw_line_utf8()
        }
        .map_err(|source| ClusterLogError::Io {
            path: self.path.clone(),
            source,
        })?;
        if total == 0 {
            return Ok(None);
        }
        self.offset += total;
        self.line_no += 1;
        self.counts.lines += 1;
        let text = if self.utf16 {
            crate::read::text::utf16_lossy(&self.buf)
        } else {
            String::from_utf8_lossy(&self.buf).into_owned()
        };
        Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()))
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
            let (used, end) = match chunk.iter().position(|&b| b == b'\n') {
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
        let mut low: Option<u8> = None;
        loop {
            let chunk = fill(&mut *self.input)?;
            if chunk.is_empty() {
                break;
            }
            let mut used = 0;
            let mut end = false;
            for &b in chunk {
                used += 1;
                match low.take() {
                    None => low = Some(b),
                    Some(lo) => {
                        if self.buf.len() + 2 <= MAX_LINE * 2 {
                            self.buf.extend_from_slice(&[lo, b]);
                        }
                        if lo == b'\n' && b == 0 {
                            end = true;
                            break;
                        }
                    }
                }
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

    /// Files a line: a new entry (returned when it completes the one
    /// before), a continuation, or an unparsed line.
    fn take_line(&mut self, line: String) -> Option<Entry> {
        match parse_header(&line) {
            Ok(Some(mut entry)) => {
                entry.line = self.line_no;
                self.counts.entries += 1;
                self.pending.replace(entry)
            }
            Ok(None) if self.pending.is_some() && !line.contains('\0') => {
                self.counts.continuation_lines += 1;
                if let Some(p) = self.pending.as_mut() {
                    if p.text.matches('\n').count() < MAX_CONTINUATION {
                        p.text.push('\n');
                        p.text.push_str(&line);
                    }
                }
                None
            }
            Ok(None) => {
                self.unparsed(&line, "no `PID.TID::time` header");
                None
            }
            Err(reason) => {
                self.unparsed(&line, &reason);
                None
            }
        }
    }

    fn unparsed(&mut self, line: &str, reason: &str) {
        self.counts.unparsed_lines += 1;
        if self.counts.unparsed.len() < KEEP_UNPARSED {
            self.counts.unparsed.push(Unparsed {
                line: self.line_no,
                reason: reason.to_string(),
                text: line.chars().take(120).collect(),
            });
        }
    }

    /// The next entry; an error only when the file cannot be read.
    pub fn next_entry(&mut self) -> Option<Result<Entry, ClusterLogError>> {
        while !self.done {
            match self.read_line() {
                Ok(Some(line)) => {
                    if let Some(e) = self.take_line(line) {
                        return Some(Ok(e));
                    }
                }
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.pending.take().map(Ok)
    }
}

impl Iterator for ClusterLog {
    type Item = Result<Entry, ClusterLogError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry()
    }
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

/// The node of a header line `Current node: name (NODE) id (N)` (or the
/// older `Current node: NODE (X) id (N)`).
fn current_node(line: &str) -> Option<String> {
    let rest = line.trim().strip_prefix("Current node:")?.trim();
    let name = match rest.strip_prefix("name") {
        Some(r) if r.trim_start().starts_with('(') => {
            let r = r.trim_start().strip_prefix('(')?;
            &r[..r.find(')')?]
        }
        _ => rest.split_whitespace().next()?,
    };
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// The node a `Get-ClusterLog -Destination` file is named for:
/// `NODE_cluster.log` (any letter case).
pub fn node_from_file_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let cut = name.len().checked_sub("_cluster.log".len())?;
    let (node, tail) = (name.get(..cut)?, name.get(cut..)?);
    (tail.eq_ignore_ascii_case("_cluster.log") && !node.is_empty()).then(|| node.to_string())
}

/// Whether the start of a file looks like a cluster.log (for telling
/// inputs apart).
pub fn looks_like(head: &[u8]) -> bool {
    if head.starts_with(&[0xFF, 0xFE]) {
        return true;
    }
    let head = head.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(head);
    let text = String::from_utf8_lossy(head);
    text.lines()
        .take(SNIFF_LINES as usize)
        .any(|l| matches!(parse_header(l), Ok(Some(_))))
}

/// Ok(None): the line has no header (a continuation); Err: it has one but
/// a field of it is impossible.
fn parse_header(line: &str) -> Result<Option<Entry>, String> {
    let Some((ids, rest)) = line.split_once("::") else {
        return Ok(None);
    };
    let Some((pid, tid)) = ids.split_once('.') else {
        return Ok(None);
    };
    let hex = |s: &str| {
        (!s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u32::from_str_radix(s, 16).ok())
            .flatten()
    };
    let (Some(pid), Some(tid)) = (hex(pid), hex(tid)) else {
        return Ok(None);
    };
    // YYYY/MM/DD-HH:MM:SS.mmm
    let stamp = rest.get(..23).ok_or("timestamp cut short")?;
    let time_ns = parse_time(stamp).ok_or_else(|| format!("bad timestamp {stamp:?}"))?;
    let rest = rest[23..].trim_start();
    let (level, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let rest = rest.trim_start();
    let (component, text) = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((c, t)) => (c.trim(), t.strip_prefix(' ').unwrap_or(t)),
        None => ("", rest),
    };
    Ok(Some(Entry {
        line: 0,
        pid,
        tid,
        time_ns,
        level: level.to_string(),
        component: component.to_string(),
        text: text.to_string(),
    }))
}

fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let d = b.get(r)?;
        d.iter().all(u8::is_ascii_digit).then(|| {
            d.iter()
                .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'))
        })
    };
    let seps = [
        (4, b'/'),
        (7, b'/'),
        (10, b'-'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ];
    if seps.iter().any(|&(i, c)| b.get(i) != Some(&c)) {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let time = chrono::NaiveTime::from_hms_milli_opt(
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
        num(20..23)?,
    )?;
    date.and_time(time).and_utc().timestamp_nanos_opt()
}

/// Formats a time the way cluster.log does (for writing one).
pub fn format_time(time_ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(time_ns)
        .format("%Y/%m/%d-%H:%M:%S%.3f")
        .to_string()
}

/// One cluster.log line, as RHS's logger writes it.
pub fn format_line(
    pid: u32,
    tid: u32,
    time_ns: i64,
    level: &str,
    component: &str,
    text: &str,
) -> String {
    format!(
        "{pid:08x}.{tid:08x}::{} {level:<5} [{component}] {text}",
        format_time(time_ns)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: Vec<u8>) -> (Vec<Entry>, LogCounts) {
        let mut log = ClusterLog::from_reader(Path::new("t.log"), io::Cursor::new(bytes)).unwrap();
        let entries: Vec<Entry> = log.by_ref().map(|e| e.unwrap()).collect();
        (entries, log.counts().clone())
    }

    #[test]
    fn header_fields() {
        let (e, c) = read(
            b"00001894.000018a4::2013/03/08-08:13:01.001 ERR   [RHS] RhsCall::DeadlockMonitor: Call ONLINERESOURCE timed out for resource 'TSM-Server-TSM1'.\r\n"
                .to_vec(),
        );
        assert_eq!(c.entries, 1);
        assert_eq!(e[0].pid, 0x1894);
        assert_eq!(e[0].tid, 0x18a4);
        assert_eq!(e[0].level, "ERR");
        assert_eq!(e[0].component, "RHS");
        assert_eq!(format_time(e[0].time_ns), "2013/03/08-08:13:01.001");
        assert!(e[0].text.ends_with("'TSM-Server-TSM1'."));
    }

    #[test]
    fn utf16_with_bom_and_short_ids() {
        let text = "df4.c04::2009/10/17-19:20:47.093 INFO [CS] caf\u{e9} \u{1F600}\nnext\n";
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let (e, c) = read(bytes);
        assert_eq!((e[0].pid, e[0].tid), (0xdf4, 0xc04));
        assert_eq!(e[0].text, "caf\u{e9} \u{1F600}\nnext");
        assert_eq!(c.continuation_lines, 1);
    }

    #[test]
    fn node_names() {
        assert_eq!(
            current_node("Current node: name (NODE-A) id (1)").as_deref(),
            Some("NODE-A")
        );
        assert_eq!(
            current_node("Current node: SQL01 (1) id (1)").as_deref(),
            Some("SQL01")
        );
        assert_eq!(current_node("Current node:"), None);
        assert_eq!(
            node_from_file_name(Path::new("logs/NODE1_cluster.log")).as_deref(),
            Some("NODE1")
        );
        assert_eq!(
            node_from_file_name(Path::new("Node_2_Cluster.LOG")).as_deref(),
            Some("Node_2")
        );
        assert_eq!(node_from_file_name(Path::new("cluster.log")), None);
        assert_eq!(node_from_file_name(Path::new("mixed.cluster.log")), None);
    }

    #[test]
    fn format_round_trips() {
        let t = 1_700_000_000_123_000_000;
        let line = format_line(2000, 6004, t, "INFO", "RES", "x");
        assert_eq!(
            line,
            "000007d0.00001774::2023/11/14-22:13:20.123 INFO  [RES] x"
        );
        let e = parse_header(&line).unwrap().unwrap();
        assert_eq!(
            (e.pid, e.tid, e.time_ns, e.text.as_str()),
            (2000, 6004, t, "x")
        );
    }
}
