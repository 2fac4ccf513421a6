//! One line of a cluster.log:
//!
//! ```text
//! [System] 00000b84.00001f3c::2024/03/12-10:05:00.247 ERR   text
//! 00001a40.00001e88::2024/03/12-10:05:00.231 ERR   [RHS] RhsCall::DeadlockMonitor: ...
//! 00000b84.00001f3c::2024/03/12-10:00:00.112 INFO  rcm::RcmResource::OnlineWorker[RCM] Issuing ...
//! ```
//!
//! An optional channel prefix (`[System] `, `[Operational] `, `[Verbose] `),
//! process and thread id in hex (1 to 8 digits), the time to the
//! millisecond, a level word (padded, or not), then either a function name
//! glued to a `[TAG]`, a `[TAG]` (which may hold spaces and colons, and be
//! followed by a colon), or no tag, and the message.

use crate::read::text::strip_ascii;

/// The event channel a line came from: the cluster log itself, or one of
/// the channels `Get-ClusterLog` adds in sections of their own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// The cluster log (DiagnosticChannel): `[=== Cluster Logs ===]`.
    Log,
    /// The System event log's FailoverClustering events.
    System,
    /// Microsoft-Windows-FailoverClustering/Operational.
    Operational,
    /// Microsoft-Windows-FailoverClustering/DiagnosticVerbose.
    Verbose,
    /// Any other channel a prefix names.
    Other(String),
}

impl Channel {
    fn from_prefix(p: &str) -> Channel {
        match p {
            "System" => Channel::System,
            "Operational" => Channel::Operational,
            "Verbose" => Channel::Verbose,
            other => Channel::Other(other.to_string()),
        }
    }
}

/// One log entry (a header line and its continuation lines). The line is
/// kept whole and its parts are ranges of it: a node's log has millions
/// of entries, and one allocation each is what reading them costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number of the header line.
    pub line: u64,
    pub pid: u32,
    pub tid: u32,
    /// Nanoseconds since 1970-01-01 UTC (millisecond resolution), converted
    /// from local time where the log says it was written in local time.
    pub time_ns: i64,
    pub channel: Channel,
    /// The header line, then each continuation line after a '\n'.
    raw: String,
    at: Ranges,
}

/// Where a line's parts lie in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ranges {
    level: (usize, usize),
    function: (usize, usize),
    component: (usize, usize),
    /// Where the message starts; it runs to the end of the entry's text.
    text: usize,
}

impl Entry {
    /// The level word (INFO, ERR, ...), as written; empty without one.
    pub fn level(&self) -> &str {
        &self.raw[self.at.level.0..self.at.level.1]
    }

    /// A function name glued before the tag (`rcm::RcmResource::OnlineWorker`).
    pub fn function(&self) -> &str {
        &self.raw[self.at.function.0..self.at.function.1]
    }

    /// RHS, RES, RCM, ...: empty when the line has none.
    pub fn component(&self) -> &str {
        &self.raw[self.at.component.0..self.at.component.1]
    }

    /// The message, continuation lines joined with '\n'.
    pub fn text(&self) -> &str {
        &self.raw[self.at.text..]
    }

    /// Bytes of text it holds (its line and continuation lines).
    pub fn raw_len(&self) -> usize {
        self.raw.len()
    }

    /// Adds a continuation line to the message.
    pub fn push_line(&mut self, line: &str) {
        self.raw.push('\n');
        self.raw.push_str(line);
    }
}

/// What [`parse`] found in a line: an entry's fields, as ranges of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parts {
    pid: u32,
    tid: u32,
    time_ns: i64,
    channel: Channel,
    at: Ranges,
}

impl Parts {
    /// The entry these parts are of, taking the line they were read from
    /// (and no other: the parts are ranges of it).
    pub(crate) fn entry(self, line: String) -> Entry {
        Entry {
            line: 0,
            pid: self.pid,
            tid: self.tid,
            time_ns: self.time_ns,
            channel: self.channel,
            raw: line,
            at: self.at,
        }
    }
}

/// A line that looks like an entry but is not one: a field is impossible.
pub type LineError = String;

/// Ok(None): the line is no entry (a continuation, a header line); Err: it
/// starts like one but a field of it is impossible.
pub fn parse(line: &str) -> Result<Option<Entry>, LineError> {
    Ok(parse_parts(line)?.map(|p| p.entry(line.to_string())))
}

/// [`parse`] without copying the line: where its parts are.
pub(crate) fn parse_parts(line: &str) -> Result<Option<Parts>, LineError> {
    let (channel, rest) = match channel_prefix(line) {
        Some((c, rest)) => (c, rest),
        None => (Channel::Log, line),
    };
    let Some((pid, tid, rest)) = ids(rest) else {
        return Ok(None);
    };
    // YYYY/MM/DD-HH:MM:SS.mmm
    let stamp = rest.get(..23).ok_or("timestamp cut short")?;
    let time_ns = parse_time(stamp).ok_or_else(|| format!("bad timestamp {stamp:?}"))?;
    let rest = rest[23..].trim_start();
    let (level, rest) = level(rest);
    let (function, component, text) = tag(rest);
    // Each part is a slice of `line`: its range is where it lies.
    let at = |part: &str| part.as_ptr() as usize - line.as_ptr() as usize;
    let range = |part: &str| (at(part), at(part) + part.len());
    Ok(Some(Parts {
        pid,
        tid,
        time_ns,
        channel,
        at: Ranges {
            level: range(level),
            function: range(function),
            component: range(component),
            text: at(text),
        },
    }))
}

/// `[System] ` and the like before the ids.
fn channel_prefix(line: &str) -> Option<(Channel, &str)> {
    let rest = strip_ascii(line, b'[')?;
    let (name, rest) = rest.split_once("] ")?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| (Channel::from_prefix(name), rest))
}

/// `pid.tid::` opening `s`, each 1 to 8 hex digits, and what follows.
/// Read byte by byte within the 18 bytes they can take: searching the line
/// for "::" and the ids for '.' cost as much as the rest of parsing it.
fn ids(s: &str) -> Option<(u32, u32, &str)> {
    let b = s.as_bytes();
    let colon = b.iter().take(18).position(|&c| c == b':')?;
    if b.get(colon + 1) != Some(&b':') {
        return None;
    }
    let dot = b[..colon].iter().position(|&c| c == b'.')?;
    let (pid, tid) = (hex(&b[..dot])?, hex(&b[dot + 1..colon])?);
    Some((pid, tid, &s[colon + 2..]))
}

fn hex(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    digits
        .iter()
        .try_fold(0u32, |n, &d| Some(n << 4 | char::from(d).to_digit(16)?))
}

const LEVELS: [&str; 6] = ["INFO", "WARN", "ERR", "DBG", "CRIT", "VERB"];

/// The level word, when there is one (padding or not). Every part
/// returned is a slice of `rest`, empty ones included: their place in the
/// line is what [`parse_parts`] keeps.
fn level(rest: &str) -> (&str, &str) {
    for l in LEVELS {
        if let Some(after) = rest.strip_prefix(l) {
            if after.is_empty() || after.starts_with([' ', '\t', '[']) {
                return (&rest[..l.len()], after.trim_start());
            }
        }
    }
    // Another word of capitals: an unknown level, kept as written.
    match rest.split_once(' ') {
        Some((w, after)) if !w.is_empty() && w.bytes().all(|b| b.is_ascii_uppercase()) => {
            (w, after.trim_start())
        }
        _ => (&rest[..0], rest),
    }
}

/// (function glued before the tag, tag, message), each a slice of `rest`.
fn tag(rest: &str) -> (&str, &str, &str) {
    let none = (&rest[..0], &rest[..0], rest);
    let b = rest.as_bytes();
    let open = match memchr::memchr(b'[', b) {
        // The tag opens the message, or closes a function name glued to
        // it (no space in between).
        Some(i) if !b[..i].contains(&b' ') => i,
        _ => return none,
    };
    let Some(close) = memchr::memchr(b']', &b[open..]) else {
        return none;
    };
    let function = &rest[..open];
    let component = rest[open + 1..open + close].trim();
    let mut text = &rest[open + close + 1..];
    text = strip_ascii(text, b':').unwrap_or(text);
    (function, component, strip_ascii(text, b' ').unwrap_or(text))
}

pub(super) fn parse_time(s: &str) -> Option<i64> {
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

/// One cluster.log line, as the cluster's logger writes it: the level
/// padded so the tag starts six columns later; no tag when `component` is
/// empty (the event text of a `[System]` line, say).
pub fn format_line(
    pid: u32,
    tid: u32,
    time_ns: i64,
    level: &str,
    component: &str,
    text: &str,
) -> String {
    let head = format!("{pid:08x}.{tid:08x}::{} {level:<5}", format_time(time_ns));
    if component.is_empty() {
        format!("{head} {text}")
    } else {
        format!("{head} [{component}] {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(line: &str) -> Entry {
        parse(line).unwrap().unwrap()
    }

    #[test]
    fn every_shape_of_line() {
        let e = entry("00001894.000018a4::2013/03/08-08:13:01.001 ERR   [RHS] RhsCall::DeadlockMonitor: Call ONLINERESOURCE timed out for resource 'TSM-Server-TSM1'.");
        assert_eq!((e.pid, e.tid, e.level()), (0x1894, 0x18a4, "ERR"));
        assert_eq!((e.channel.clone(), e.component()), (Channel::Log, "RHS"));
        assert_eq!(format_time(e.time_ns), "2013/03/08-08:13:01.001");
        assert!(e.text().starts_with("RhsCall::DeadlockMonitor: Call"));

        let e = entry("00000b84.00001f3c::2024/03/12-10:00:00.112 INFO  rcm::RcmResource::OnlineWorker[RCM] Issuing Online(ContosoApp) to RHS.");
        assert_eq!(
            (e.function(), e.component(), e.text()),
            (
                "rcm::RcmResource::OnlineWorker",
                "RCM",
                "Issuing Online(ContosoApp) to RHS."
            )
        );
        // Collapsed padding, a level glued to the tag, a tag with spaces and
        // colons, a tag followed by a colon, no tag at all.
        assert_eq!(
            entry("1.2::2020/01/01-00:00:00.000 WARN [RHS] x").component(),
            "RHS"
        );
        assert_eq!(
            entry("1.2::2020/01/01-00:00:00.000 ERR[QUORUM] x").component(),
            "QUORUM"
        );
        let e =
            entry("1.2::2020/01/01-00:00:00.000 INFO  [CHANNEL XX.X.1.X13:~49258~] graceful close");
        assert_eq!(
            (e.component(), e.text()),
            ("CHANNEL XX.X.1.X13:~49258~", "graceful close")
        );
        let e = entry("1.2::2020/01/01-00:00:00.000 INFO  [DM]: Shutting down");
        assert_eq!((e.component(), e.text()), ("DM", "Shutting down"));
        let e = entry("1.2::2020/01/01-00:00:00.000 WARN  lost quorum (status = 5925)");
        assert_eq!(
            (e.component(), e.text()),
            ("", "lost quorum (status = 5925)")
        );
        let e = entry("1.2::2020/01/01-00:00:00.000 WARN  cxl::ConnectWorker::operator (): GracefulClose(1226)' because of 'x'");
        assert_eq!(e.component(), "");
        // Channel prefixes; an event text has no tag.
        let e = entry("[System] 00000b84.00001f3c::2024/03/12-10:05:00.731 DBG   The cluster Resource Hosting Subsystem (RHS) process was terminated and will be restarted.");
        assert_eq!(
            (e.channel.clone(), e.level(), e.component()),
            (Channel::System, "DBG", "")
        );
        let e = entry("[Verbose] 00001a40.000024d0::2024/03/12-10:00:12.604 DBG   [RHS] IsAliveCall::CallIntoResource(FS1-FileServer)");
        assert_eq!(
            (e.channel.clone(), e.component()),
            (Channel::Verbose, "RHS")
        );
        // Not entries: times inside messages, header lines.
        assert_eq!(
            parse("lastFailoverTime=2020/08/05-02:08:54.524 targeted=true"),
            Ok(None)
        );
        assert_eq!(parse("Current node: name (NODE-A) id (1)"), Ok(None));
        assert!(parse("1.2::2013/13/08-08:10:00.000 INFO x").is_err());
    }

    #[test]
    fn ids_are_one_to_eight_hex_digits_each_before_two_colons() {
        let ids = |line: &str| parse(line).map(|e| e.map(|e| (e.pid, e.tid)));
        let t = "2020/01/01-00:00:00.000 INFO  [RES] x";
        assert_eq!(
            ids(&format!("FFFFFFFF.aBc0E9f1::{t}")),
            Ok(Some((u32::MAX, 0xabc0e9f1)))
        );
        assert_eq!(ids(&format!("0.0::{t}")), Ok(Some((0, 0))));
        // Not entries: nine digits, none, a stray colon or dot, no dot, one
        // colon, a non-hex digit, a character past ASCII.
        for head in [
            "123456789.1::",
            "1.123456789::",
            ".1::",
            "1.::",
            "1:2.3::",
            "1.2.3::",
            "12::",
            "1.2:",
            "1.2g::",
            "1.\u{e9}::",
            "::",
        ] {
            assert_eq!(ids(&format!("{head}{t}")), Ok(None), "{head}");
        }
        // A message holding "::" is no entry either.
        assert_eq!(ids("rcm::RcmApi::OnlineResource x"), Ok(None));
    }

    #[test]
    fn format_round_trips() {
        let t = 1_700_000_000_123_000_000;
        let line = format_line(2000, 6004, t, "INFO", "RES", "x");
        assert_eq!(
            line,
            "000007d0.00001774::2023/11/14-22:13:20.123 INFO  [RES] x"
        );
        let e = entry(&line);
        assert_eq!((e.pid, e.tid, e.time_ns, e.text()), (2000, 6004, t, "x"));
        let sys = format!(
            "[System] {}",
            format_line(1, 2, t, "ERR", "", "Cluster resource 'R' failed.")
        );
        assert_eq!(entry(&sys).text(), "Cluster resource 'R' failed.");
    }
}
