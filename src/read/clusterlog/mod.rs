//! cluster.log, the text log `Get-ClusterLog` writes on each node: from
//! Windows Server 2016 on, a header of `[=== Section ===]` blocks (the
//! node, the clock, the resources and their thresholds; see [`header`]),
//! sections of other channels' lines (`[System]`, `[Operational]`,
//! `[Verbose]`), then the log itself; before, the log alone. Each entry is
//! a line (see [`line`]) and the lines without a header that follow it.
//!
//! Files are read as a stream (they reach gigabytes), UTF-16LE with a
//! byte-order mark (or without one, known by its NULs: a piece cut from
//! such a log), or UTF-8 (8-bit ANSI lines read as Latin-1). The
//! channel sections come before the log but hold the same hours: they are
//! kept, then merged with the log by time, so entries come in time order.
//! Times written in local time are converted to UTC with the header's
//! offset.

pub mod header;
pub mod line;
mod lines;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub use header::{LogHeader, ResourceRow, ResourceTypeRow, Section, Thresholds};
pub use line::{format_line, format_time, Channel, Entry};
use lines::{Encoding, Lines};

/// Lines read before giving up on finding an entry or a section: a file
/// with neither is not a cluster.log.
const SNIFF_LINES: u64 = 200;
/// Continuation lines kept per entry; the rest are counted, not kept.
const MAX_CONTINUATION: usize = 64;
/// Unparsed lines remembered for `--verbose`; the rest are only counted.
const KEEP_UNPARSED: usize = 100;

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

/// A line that breaks the grammar: an entry with an impossible field, a
/// table row that does not fit its columns, text where an entry belongs.
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
    /// Lines of the header (sections before the log) read as such.
    pub header_lines: u64,
    /// Empty lines (or only white space).
    pub blank_lines: u64,
    pub unparsed_lines: u64,
    /// Lines longer than 64 KiB, cut there (the rest of the line is lost).
    pub cut_lines: u64,
    /// Continuation lines past the 64 kept of one entry (counted, not kept).
    pub dropped_continuation_lines: u64,
    /// The first unparsed lines, for `--verbose`.
    pub unparsed: Vec<Unparsed>,
    /// Read as UTF-16LE though no byte-order mark said so, known by the
    /// NUL high bytes of its text: most likely a piece cut from a node's
    /// log (`split -b`, a copy of its tail).
    pub utf16_without_bom: bool,
    /// Bytes skipped before the first whole unit: half a UTF-16 unit,
    /// where such a piece was cut inside one.
    pub skipped_bytes: u64,
}

/// Streams the entries of a cluster.log, in time order.
pub struct ClusterLog {
    path: PathBuf,
    /// Its bytes as lines of text.
    lines: Lines,
    line_no: u64,
    offset: u64,
    counts: LogCounts,
    done: bool,
    header: LogHeader,
    /// The section being read; None before the first.
    section: Option<Section>,
    /// The current table's column names (from its first row).
    columns: Vec<String>,
    /// The entry being read (its continuation lines may follow), and
    /// whether it belongs to a channel section.
    pending: Option<(Entry, bool)>,
    /// Continuation lines the pending entry holds.
    pending_continuations: usize,
    /// Entries of channel sections, each section's in its order.
    channels: Vec<VecDeque<Entry>>,
    /// The log's next entry, read ahead.
    body: Option<Entry>,
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
        let (lines, encoding) = Lines::new(input).map_err(|source| ClusterLogError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let counts = LogCounts {
            utf16_without_bom: matches!(encoding, Encoding::Utf16Headless { .. }),
            skipped_bytes: match encoding {
                Encoding::Utf16Headless { skip } => skip,
                _ => 0,
            },
            ..LogCounts::default()
        };
        let mut log = ClusterLog {
            path: path.to_path_buf(),
            lines,
            line_no: 0,
            offset: encoding.skip(),
            counts,
            done: false,
            header: LogHeader::default(),
            section: None,
            columns: Vec::new(),
            pending: None,
            pending_continuations: 0,
            channels: Vec::new(),
            body: None,
        };
        log.sniff()?;
        Ok(log)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of the file read so far.
    pub fn bytes_read(&self) -> u64 {
        self.offset
    }

    pub fn counts(&self) -> &LogCounts {
        &self.counts
    }

    /// What the header says (empty for logs without one).
    pub fn header(&self) -> &LogHeader {
        &self.header
    }

    /// The node that wrote the log, as its header says (`Current node:`).
    pub fn node(&self) -> Option<&str> {
        self.header.node.as_deref()
    }

    /// Reads the header and up to the log's first entry, so a file that is
    /// not a cluster.log fails at open with the offset of its first line
    /// that is not text, and the channel sections are in hand.
    fn sniff(&mut self) -> Result<(), ClusterLogError> {
        let mut plain = 0u64;
        while self.body.is_none() && !self.done {
            let start = self.offset;
            let Some(line) = self.read_line()? else {
                self.finish_pending();
                self.done = true;
                break;
            };
            let known = self.section.is_some() || self.counts.entries > 0;
            if line.contains('\0') && !known {
                return Err(self.not_log(start, "binary data (NUL bytes)"));
            }
            if self.section.is_none() && line::parse_parts(&line).ok().flatten().is_none() {
                plain += 1;
            }
            self.take_line(line);
            let known = self.section.is_some() || self.counts.entries > 0;
            if !known && plain >= SNIFF_LINES {
                return Err(self.not_log(
                    0,
                    &format!(
                        "none of the first {SNIFF_LINES} lines starts with `PID.TID::YYYY/MM/DD-HH:MM:SS.mmm` or a `[=== Section ===]`"
                    ),
                ));
            }
        }
        if self.counts.entries == 0 && self.section.is_none() {
            return Err(self.not_log(0, "no log entries"));
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
        let line = self
            .lines
            .next_line()
            .map_err(|source| ClusterLogError::Io {
                path: self.path.clone(),
                source,
            })?;
        let Some(line) = line else {
            return Ok(None);
        };
        self.offset += line.bytes;
        self.line_no += 1;
        self.counts.lines += 1;
        if line.cut {
            self.counts.cut_lines += 1;
        }
        Ok(Some(line.text))
    }

    /// Files a line: a section change, a header line, a new entry (the one
    /// before it complete), a continuation, or an unparsed line.
    fn take_line(&mut self, line: String) {
        if let Some(section) = Section::open(&line) {
            self.finish_pending();
            self.counts.header_lines += 1;
            if matches!(section, Section::Channel(_)) {
                self.channels.push(VecDeque::new());
            }
            self.columns.clear();
            self.section = Some(section);
            return;
        }
        if line.trim().is_empty() {
            self.counts.blank_lines += 1;
            return;
        }
        // An entry where the header should be: the log began without its
        // `[=== Cluster Logs ===]` line (hand-trimmed files).
        let header_section = matches!(
            self.section,
            Some(Section::Cluster | Section::Table(_) | Section::Other(_))
        );
        if header_section && matches!(line::parse_parts(&line), Ok(Some(_))) {
            self.section = Some(Section::Log);
        }
        match self.section.clone() {
            Some(Section::Cluster) => {
                self.counts.header_lines += 1;
                self.header.cluster_line(&line);
            }
            Some(Section::Table(name)) => {
                if self.columns.is_empty() {
                    self.counts.header_lines += 1;
                    self.columns = header::columns(&line);
                } else if let Err(why) = self.header.table_row(&name, &self.columns, &line) {
                    self.unparsed(&line, &why);
                } else {
                    self.counts.header_lines += 1;
                }
            }
            Some(Section::Other(_)) => self.counts.header_lines += 1,
            Some(Section::Channel(_) | Section::Log) | None => self.log_line(line),
        }
    }

    /// A line of the log or of a channel section.
    fn log_line(&mut self, line: String) {
        match line::parse_parts(&line) {
            Ok(Some(parts)) => {
                let mut entry = parts.entry(line);
                self.finish_pending();
                entry.line = self.line_no;
                self.counts.entries += 1;
                let in_channel = matches!(self.section, Some(Section::Channel(_)));
                self.pending = Some((entry, in_channel));
                self.pending_continuations = 0;
            }
            Ok(None) if line.contains('\0') => self.unparsed(&line, "binary data (NUL bytes)"),
            Ok(None) => match self.pending.as_mut() {
                Some((p, _)) => {
                    self.counts.continuation_lines += 1;
                    if self.pending_continuations < MAX_CONTINUATION {
                        self.pending_continuations += 1;
                        p.push_line(&line);
                    } else {
                        self.counts.dropped_continuation_lines += 1;
                    }
                }
                None => self.unparsed(&line, "no `PID.TID::time` header"),
            },
            Err(reason) => self.unparsed(&line, &reason),
        }
    }

    /// The entry read so far is complete: into its channel's queue, or
    /// ahead as the log's next.
    fn finish_pending(&mut self) {
        let Some((mut entry, in_channel)) = self.pending.take() else {
            return;
        };
        if self.header.local_time {
            if let Some(minutes) = self.header.utc_offset_minutes {
                entry.time_ns = entry
                    .time_ns
                    .saturating_add(i64::from(minutes) * 60_000_000_000);
            }
        }
        match (in_channel, self.channels.last_mut()) {
            (true, Some(queue)) => queue.push_back(entry),
            _ => self.body = Some(entry),
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

    /// Reads until the log's next entry is complete (or the file ends).
    fn fill_body(&mut self) -> Result<(), ClusterLogError> {
        while self.body.is_none() && !self.done {
            match self.read_line()? {
                Some(line) => self.take_line(line),
                None => {
                    self.done = true;
                    self.finish_pending();
                }
            }
        }
        Ok(())
    }

    /// The next entry in time order; an error only when the file cannot be
    /// read.
    pub fn next_entry(&mut self) -> Option<Result<Entry, ClusterLogError>> {
        if let Err(e) = self.fill_body() {
            self.done = true;
            return Some(Err(e));
        }
        // The earliest of the log's next entry and each channel's.
        let channel = self
            .channels
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.front().map(|e| (e.time_ns, i)))
            .min();
        match (channel, &self.body) {
            (Some((t, i)), Some(b)) if t < b.time_ns => self.channels[i].pop_front().map(Ok),
            (Some((_, i)), None) => self.channels[i].pop_front().map(Ok),
            (_, Some(_)) => self.body.take().map(Ok),
            (None, None) => None,
        }
    }
}

impl Iterator for ClusterLog {
    type Item = Result<Entry, ClusterLogError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry()
    }
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
/// inputs apart): an entry, or a header section, among its first lines.
pub fn looks_like(head: &[u8]) -> bool {
    has_log_line(&Encoding::of(head).text(head))
}

/// Whether an entry or a section's line is among the first lines of `text`.
fn has_log_line(text: &str) -> bool {
    text.lines()
        .take(SNIFF_LINES as usize)
        .any(|l| matches!(line::parse_parts(l), Ok(Some(_))) || Section::open(l).is_some())
}

#[cfg(test)]
mod tests {
    use super::lines::MAX_LINE;
    use super::*;

    fn read(bytes: Vec<u8>) -> (Vec<Entry>, LogCounts, LogHeader) {
        let mut log = ClusterLog::from_reader(Path::new("t.log"), io::Cursor::new(bytes)).unwrap();
        let entries: Vec<Entry> = log.by_ref().map(|e| e.unwrap()).collect();
        (entries, log.counts().clone(), log.header().clone())
    }

    fn utf16(text: &str) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        bytes
    }

    #[test]
    fn utf16_with_bom_and_short_ids() {
        let (e, c, _) = read(utf16(
            "df4.c04::2009/10/17-19:20:47.093 INFO [CS] caf\u{e9} \u{1F600}\nnext\n",
        ));
        assert_eq!((e[0].pid, e[0].tid), (0xdf4, 0xc04));
        assert_eq!(e[0].text(), "caf\u{e9} \u{1F600}\nnext");
        assert_eq!(c.continuation_lines, 1);
    }

    /// A stream that gives at most `most` bytes a read, as pipes and
    /// network files may.
    struct Trickle {
        bytes: io::Cursor<Vec<u8>>,
        most: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = out.len().min(self.most);
            self.bytes.read(&mut out[..n])
        }
    }

    #[test]
    fn utf16_lines_end_only_at_the_unit_0x000a_wherever_reads_split_them() {
        // U+010A and U+0A0D hold a 0x0A byte that ends no line (in the
        // first read, and again past it); CRLF and LF ends; a line over
        // MAX_LINE units; a last odd byte.
        let long = format!(
            "1.2::2020/01/01-00:00:03.000 INFO  [RES] {}",
            "z".repeat(MAX_LINE + 9)
        );
        let text = format!(
            "1.2::2020/01/01-00:00:00.000 INFO  [RES] a\u{10a}b\u{a0d}\u{100}c\r\n\
             more\u{10a}\n\
             1.2::2020/01/01-00:00:01.000 INFO  [RES] \u{1F600}\n{long}\n\
             1.2::2020/01/01-00:00:04.000 INFO  [RES] d\u{10a}e\u{a0d}\u{100}f\r\n\
             1.2::2020/01/01-00:00:05.000 INFO  [RES] last"
        );
        let mut bytes = utf16(&text);
        bytes.push(b'!');
        for most in [1, 2, 3, 5, 8, 4096] {
            let input = Trickle {
                bytes: io::Cursor::new(bytes.clone()),
                most,
            };
            let mut log = ClusterLog::from_reader(Path::new("t.log"), input).unwrap();
            let e: Vec<Entry> = log.by_ref().map(|e| e.unwrap()).collect();
            let texts: Vec<&str> = e.iter().map(Entry::text).collect();
            let cut = "z".repeat(MAX_LINE - 41);
            assert_eq!(
                texts,
                [
                    "a\u{10a}b\u{a0d}\u{100}c\nmore\u{10a}",
                    "\u{1F600}",
                    &cut,
                    "d\u{10a}e\u{a0d}\u{100}f",
                    "last"
                ],
                "{most} bytes a read"
            );
            let c = log.counts();
            assert_eq!((c.lines, c.cut_lines, c.continuation_lines), (6, 1, 1));
        }
    }

    #[test]
    fn utf16_cut_from_a_log_without_its_byte_order_mark() {
        let text = "1.2::2020/01/01-00:00:00.000 INFO  [RES] a\r\n\
                    1.2::2020/01/01-00:00:01.000 INFO  [RES] b\r\n\
                    1.2::2020/01/01-00:00:02.000 INFO  [RES] \u{4e00}\u{100}c\r\n";
        let whole = utf16(text);
        let texts = |e: &[Entry]| e.iter().map(|e| e.text().to_string()).collect::<Vec<_>>();
        // Cut at a unit: read as the whole log is.
        let (e, c, _) = read(whole[2..].to_vec());
        assert_eq!(texts(&e), ["a", "b", "\u{4e00}\u{100}c"]);
        assert_eq!(
            (c.utf16_without_bom, c.skipped_bytes, c.entries),
            (true, 0, 3)
        );
        // Cut inside one: its high byte skipped, the first line's rest is
        // no entry.
        let (e, c, _) = read(whole[3..].to_vec());
        assert_eq!(texts(&e), ["b", "\u{4e00}\u{100}c"]);
        assert_eq!((c.utf16_without_bom, c.skipped_bytes), (true, 1));
        assert_eq!(c.unparsed_lines + c.continuation_lines, 1);
        assert!(looks_like(&whole[2..]) && looks_like(&whole[3..]));
        // With the mark, none of it is said.
        let (_, c, _) = read(whole.clone());
        assert_eq!((c.utf16_without_bom, c.skipped_bytes), (false, 0));
        // NULs at both parities are binary data, refused as before.
        let refusal = |bytes: Vec<u8>| {
            ClusterLog::from_reader(Path::new("t.log"), io::Cursor::new(bytes))
                .err()
                .map(|e| e.to_string())
        };
        let mut binary = text.as_bytes().to_vec();
        for i in (0..binary.len()).step_by(3) {
            binary[i] = 0;
        }
        let err = refusal(binary);
        assert!(
            err.as_deref().is_some_and(|e| e.contains("binary data")),
            "{err:?}"
        );
        // So are small 16-bit numbers, NULs at one parity though they have:
        // no line of a log in them.
        let numbers: Vec<u8> = (0u16..2000)
            .flat_map(|n| (n % 200 + 1).to_le_bytes())
            .collect();
        let err = refusal(numbers);
        assert!(
            err.as_deref().is_some_and(|e| e.contains("binary data")),
            "{err:?}"
        );
    }

    #[test]
    fn over_long_lines_and_continuations_are_counted_where_cut() {
        let mut log = b"1.2::2020/01/01-00:00:00.000 INFO  [RES] start\n".to_vec();
        for i in 0..70 {
            log.extend(format!("more {i}\n").bytes());
        }
        // 70 KiB of one line, cut inside a two-byte character.
        let start = log.len();
        log.extend(b"1.2::2020/01/01-00:00:01.000 INFO  [RES] ");
        log.resize(start + MAX_LINE - 1, b'x');
        log.extend("\u{e9}\u{e9}\u{e9}".bytes());
        log.extend(std::iter::repeat_n(b'y', 6 * 1024));
        log.push(b'\n');
        let (e, c, _) = read(log);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].text().lines().count(), 1 + MAX_CONTINUATION);
        assert_eq!(
            (c.continuation_lines, c.dropped_continuation_lines),
            (70, 6)
        );
        assert_eq!(c.cut_lines, 1);
        assert!(
            e[1].text().ends_with("xx\u{fffd}"),
            "{:?}",
            &e[1].text()[e[1].text().len() - 8..]
        );
    }

    #[test]
    fn a_time_zone_offset_past_a_day_is_damage_not_a_shift() {
        let (e, _, h) = read(
            b"[=== Cluster ===]\r\n\
the time zone offset of this machine is 200000000 minutes, or 3333333 hours\r\n\
The logs were generated using local time.\r\n\
[=== Cluster Logs ===]\r\n\
1.2::2020/01/01-00:00:00.000 INFO  [RES] x\r\n"
                .to_vec(),
        );
        assert_eq!(h.utc_offset_minutes, None);
        assert_eq!(e[0].time_ns, 1_577_836_800_000_000_000);
    }

    #[test]
    fn ansi_lines_read_as_latin1() {
        let (e, _, _) = read(b"1.2::2020/01/01-00:00:00.000 INFO  [RES] caf\xe9\r\n".to_vec());
        assert_eq!(e[0].text(), "caf\u{e9}");
    }

    #[test]
    fn header_sections_channels_and_local_time() {
        let log = "[=== Cluster ===]\r\n\
UTC = localtime + time zone offset;the time zone offset of this machine is -60 minutes, or -1 hours\r\n\
The logs were generated using local time. Use Get-ClusterLog without -UseLocalTime for UTC.\r\n\
Current node: name (NODE-A) id (1)\r\n\
[=== Resources ===]\r\n\
Name,_deadlockTimeout,resourceType\r\n\
ContosoApp,600000,Contoso Application\r\n\
broken row\r\n\
[=== Performance ===]\r\n\
anything at all\r\n\
[=== System ===]\r\n\
[System] 00000b84.00001f3c::2024/03/12-11:05:00.731 DBG   The cluster Resource Hosting Subsystem (RHS) process was terminated and will be restarted.\r\n\
[System] 00000b84.00001f3c::2024/03/12-11:05:00.741 ERR   Cluster resource 'ContosoApp' in clustered role 'ContosoApp' failed.\r\n\
Based on the failure policies for the resource and role, ...\r\n\
[=== Cluster Logs ===]\r\n\
00001a40.00001e88::2024/03/12-11:05:00.231 ERR   [RHS] RhsCall::DeadlockMonitor: Call ONLINERESOURCE timed out by 118 milliseconds for resource 'ContosoApp'.\r\n\
00000b84.00001f3c::2024/03/12-11:05:00.735 INFO  [RCM] Separate monitor flag has changed for resource 'ContosoApp'.  Now hosted by RHS process 0\r\n\
00000b84.00001f3c::2024/03/12-11:05:00.742 INFO  [RCM] Res ContosoApp: OnlineCallIssued -> ProcessingFailure( StateUnknown )\r\n";
        for bytes in [log.as_bytes().to_vec(), utf16(log)] {
            let (e, c, h) = read(bytes);
            assert_eq!(h.node.as_deref(), Some("NODE-A"));
            assert_eq!(h.thresholds("ContosoApp").deadlock_timeout_ms, Some(600000));
            // Merged by time, converted from local time (UTC = local - 60 min).
            let got: Vec<(String, &str)> = e
                .iter()
                .map(|e| (format_time(e.time_ns), e.component()))
                .collect();
            assert_eq!(
                got,
                [
                    ("2024/03/12-10:05:00.231".to_string(), "RHS"),
                    ("2024/03/12-10:05:00.731".to_string(), ""),
                    ("2024/03/12-10:05:00.735".to_string(), "RCM"),
                    ("2024/03/12-10:05:00.741".to_string(), ""),
                    ("2024/03/12-10:05:00.742".to_string(), "RCM"),
                ]
            );
            assert_eq!(e[1].channel, Channel::System);
            assert!(e[3].text().ends_with(
                "failed.\nBased on the failure policies for the resource and role, ..."
            ));
            assert_eq!(
                (c.entries, c.continuation_lines, c.unparsed_lines),
                (5, 1, 1)
            );
            assert_eq!(c.unparsed[0].line, 8);
            // The broken row is unparsed, not a header line too: every
            // line is one kind.
            assert_eq!(c.header_lines, 11);
            assert_eq!(
                c.entries
                    + c.continuation_lines
                    + c.header_lines
                    + c.blank_lines
                    + c.unparsed_lines,
                c.lines
            );
        }
    }

    #[test]
    fn a_header_alone_is_a_log_with_no_entries() {
        let (e, c, h) = read(
            b"[=== Cluster ===]\nCurrent node: name (N1) id (1)\n[=== Cluster Logs ===]\n".to_vec(),
        );
        assert!(e.is_empty());
        assert_eq!((c.entries, h.node.as_deref()), (0, Some("N1")));
    }

    #[test]
    fn node_names() {
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
}
