//! Windows event log files (.evtx), read with the `evtx` crate: each
//! event's id, provider, ids, time and insertion strings.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

/// File header: "ElfFile\0", ..., at 0x28 the header block size and at
/// 0x2A the chunk count; chunks of 64 KiB follow the 4 KiB header block.
const HEADER_BLOCK: u64 = 4096;
const CHUNK: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum EvtxError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not an .evtx file: {detail} (at byte offset {offset})", path.display())]
    NotEvtx {
        path: PathBuf,
        offset: u64,
        detail: String,
    },
    #[error("{}: truncated .evtx: the header lists {chunks} chunks, which end at byte offset {need}; the file has {have} bytes", path.display())]
    Truncated {
        path: PathBuf,
        chunks: u64,
        need: u64,
        have: u64,
    },
    #[error("{}: event record {record}: {detail}", path.display())]
    Record {
        path: PathBuf,
        record: String,
        detail: String,
    },
}

/// What one event of the log says, as rhscope needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub record_id: u64,
    pub time_ns: i64,
    pub provider: String,
    pub event_id: u64,
    pub pid: Option<u32>,
    pub tid: Option<u32>,
    /// The machine that logged it (System/Computer).
    pub computer: Option<String>,
    /// Every string of EventData / UserData, in document order.
    pub data: Vec<String>,
}

/// Reads the parts of an event's JSON (as the `evtx` crate renders it)
/// rhscope uses.
pub fn log_event(record_id: u64, time_ns: i64, json: &Json) -> LogEvent {
    let event = json.get("Event").unwrap_or(json);
    let system = event.get("System");
    let attr = |v: Option<&Json>, name: &str| -> Option<Json> {
        let v = v?;
        v.get("#attributes")
            .and_then(|a| a.get(name))
            .or_else(|| v.get(name))
            .cloned()
    };
    let number = |v: Option<Json>| -> Option<u64> {
        match v? {
            Json::Number(n) => n.as_u64(),
            Json::String(s) => crate::read::text::parse_u64(&s),
            _ => None,
        }
    };
    let provider = attr(system.and_then(|s| s.get("Provider")), "Name")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let event_id = system.and_then(|s| s.get("EventID")).and_then(|v| match v {
        Json::Object(_) => v.get("#text").cloned(),
        other => Some(other.clone()),
    });
    let execution = system.and_then(|s| s.get("Execution"));
    let mut data = Vec::new();
    for part in ["EventData", "UserData"] {
        if let Some(v) = event.get(part) {
            strings(v, &mut data);
        }
    }
    LogEvent {
        record_id,
        time_ns,
        provider,
        event_id: number(event_id).unwrap_or(0),
        pid: number(attr(execution, "ProcessID")).map(|v| v as u32),
        tid: number(attr(execution, "ThreadID")).map(|v| v as u32),
        computer: system
            .and_then(|s| s.get("Computer"))
            .and_then(Json::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        data,
    }
}

fn strings(v: &Json, out: &mut Vec<String>) {
    match v {
        Json::String(s) if !s.is_empty() => out.push(s.clone()),
        Json::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Json::Object(o) => o
            .iter()
            .filter(|(k, _)| *k != "#attributes")
            .for_each(|(_, x)| strings(x, out)),
        _ => {}
    }
}

/// Every event of an .evtx file that parses, and the errors of those that
/// do not (record problems do not end the file).
pub fn read_events(path: &Path) -> Result<(Vec<LogEvent>, Vec<EvtxError>), EvtxError> {
    // A cut-off file costs its missing chunks: the whole ones still read.
    let cut = check_header(path)?;
    let mut parser = evtx::EvtxParser::from_path(path).map_err(|e| EvtxError::NotEvtx {
        path: path.to_path_buf(),
        offset: 0,
        detail: e.to_string(),
    })?;
    let (mut events, mut bad) = (Vec::new(), Vec::from_iter(cut));
    for r in parser.records_json_value() {
        match r {
            Ok(r) => {
                let time_ns = i64::try_from(r.timestamp.as_nanosecond()).unwrap_or(i64::MAX);
                events.push(log_event(r.event_record_id, time_ns, &r.data));
            }
            Err(e) => bad.push(EvtxError::Record {
                path: path.to_path_buf(),
                record: format!(
                    "after {}",
                    events.last().map_or(0, |e: &LogEvent| e.record_id)
                ),
                detail: e.to_string(),
            }),
        }
    }
    Ok((events, bad))
}

/// The machine that logged the first event of the file that names one.
pub fn computer(path: &Path) -> Result<Option<String>, EvtxError> {
    check_header(path)?;
    let mut parser = evtx::EvtxParser::from_path(path).map_err(|e| EvtxError::NotEvtx {
        path: path.to_path_buf(),
        offset: 0,
        detail: e.to_string(),
    })?;
    let found = parser
        .records_json_value()
        .take(1000)
        .flatten()
        .find_map(|r| log_event(r.event_record_id, 0, &r.data).computer);
    Ok(found)
}

/// The file header, checked before the `evtx` crate reads chunks, so a
/// cut-off file says where it was cut (Some: the file is cut short, which
/// costs the chunks it lacks).
fn check_header(path: &Path) -> Result<Option<EvtxError>, EvtxError> {
    use std::io::Read;
    let io = |source| EvtxError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let have = f.metadata().map_err(io)?.len();
    let mut h = [0u8; 0x2C];
    let n = f.read(&mut h).map_err(io)?;
    if n < h.len() || &h[..8] != b"ElfFile\0" {
        return Err(EvtxError::NotEvtx {
            path: path.to_path_buf(),
            offset: 0,
            detail: if n >= 8 && &h[..8] != b"ElfFile\0" {
                "no \"ElfFile\" signature".into()
            } else {
                format!("file header needs {} bytes, the file has {n}", h.len())
            },
        });
    }
    let block = u64::from(u16::from_le_bytes([h[0x28], h[0x29]])).max(HEADER_BLOCK);
    let chunks = u64::from(u16::from_le_bytes([h[0x2A], h[0x2B]]));
    let need = block + chunks * CHUNK;
    Ok((have < need).then(|| EvtxError::Truncated {
        path: path.to_path_buf(),
        chunks,
        need,
        have,
    }))
}
