//! CSV printers (RFC 4180): findings of `analyze`, events of `dump`.

use std::io::{self, Write};

use crate::analysis::Analysis;
use crate::model::label as name;
use crate::read::etl::EventRow;

/// RFC 4180 quoting: only where the cell needs it.
pub fn cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Every finding of every analysis, a row each.
pub fn write_findings(out: &mut dyn Write, all: &[Analysis]) -> io::Result<()> {
    writeln!(out, "trace,node,severity,rule,resource,entry_point,api,usage,thread_kind,pid,tid,begin,duration_ns,never_returned,blocking_source,waiting_ns,ready_ns,running_ns,evidence")?;
    for (a, r) in all
        .iter()
        .flat_map(|a| a.findings.iter().map(move |r| (a, r)))
    {
        let f = &r.finding;
        let b = r.blocking.as_ref();
        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        let evidence: Vec<String> = r.evidence.iter().map(|e| e.describe(&a.inputs)).collect();
        let cells = [
            r.trace.clone(),
            r.node.clone().unwrap_or_default(),
            name(&f.severity),
            name(&f.rule),
            f.resource.clone().unwrap_or_default(),
            f.entry_point.map(|e| e.to_string()).unwrap_or_default(),
            f.api.clone().unwrap_or_default(),
            f.usage.map(|u| u.to_string()).unwrap_or_default(),
            f.thread_kind.map(|k| name(&k)).unwrap_or_default(),
            f.pid.to_string(),
            f.tid.to_string(),
            f.begin.rfc3339(),
            opt(f.duration_ns),
            f.never_returned.to_string(),
            b.map(|b| b.source.to_string()).unwrap_or_default(),
            opt(b.and_then(|b| b.waiting_ns)),
            opt(b.and_then(|b| b.ready_ns)),
            opt(b.and_then(|b| b.running_ns)),
            evidence.join("; "),
        ];
        let line: Vec<String> = cells.iter().map(|c| cell(c)).collect();
        writeln!(out, "{}", line.join(","))?;
    }
    Ok(())
}

/// One event of `dump`.
pub fn write_event(out: &mut dyn Write, r: &EventRow) -> io::Result<()> {
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
    let line: Vec<String> = cells.iter().map(|c| cell(c)).collect();
    writeln!(out, "{}", line.join(","))
}

/// The header row of [`write_event`].
pub const EVENT_COLUMNS: &str =
    "time,timestamp,cpu,pid,tid,kind,provider,provider_name,id,version,level,opcode,task,keyword,event,fields,payload,decode_error";
