//! Chrome / Perfetto trace-event JSON: complete events for entry points and
//! API calls, instant events for findings and RHS messages, names for
//! processes and threads. Opens in ui.perfetto.dev and chrome://tracing.

use serde_json::{json, Value};

use crate::analysis::Analysis;
use crate::model::label;

fn us(ns: i64) -> f64 {
    ns as f64 / 1000.0
}

pub fn trace_events(a: &Analysis) -> Value {
    let s = &a.spans;
    let origin = s.first_ns.unwrap_or(0);
    let end = s.last_ns.unwrap_or(origin);
    let mut events = Vec::new();
    let mut threads: Vec<(u32, u32, String)> = Vec::new();
    for e in &s.entries {
        events.push(json!({
            "name": format!("{} {}", e.entry_point, e.resource), "cat": "entry-point", "ph": "X",
            "ts": us(e.begin_ns - origin), "dur": us(e.end_ns.unwrap_or(end) - e.begin_ns),
            "pid": e.pid, "tid": e.tid,
            "args": {"resource": e.resource, "resource_type": e.resource_type, "entry_point": e.entry_point.name(), "returned": e.end_ns.is_some(), "status": e.status},
        }));
        threads.push((e.pid, e.tid, "RHS entry point".into()));
    }
    for c in &s.calls {
        let facts = a.call(c);
        events.push(json!({
            "name": facts.api, "cat": "api-call", "ph": "X",
            "ts": us(c.begin_ns - origin), "dur": us(c.end_ns.unwrap_or(end) - c.begin_ns),
            "pid": c.pid, "tid": c.tid,
            "args": {"logged_as": c.api, "usage": facts.usage.map(|u| u.name()), "target": c.target, "returned": c.end_ns.is_some(), "status": c.status},
        }));
    }
    for w in &s.workers {
        threads.push((
            w.pid,
            w.tid,
            format!("cluster worker ({})", w.resource.as_deref().unwrap_or("?")),
        ));
    }
    for r in &a.findings {
        let f = &r.finding;
        let t = f.begin.ns();
        events.push(json!({
            "name": format!("{}: {}", label(&f.severity), label(&f.rule)), "cat": "finding", "ph": "i", "s": "t",
            "ts": us(t - origin), "pid": f.pid, "tid": f.tid, "args": f,
        }));
    }
    for m in s.deadlocks.iter().chain(&s.restarts).chain(&s.messages) {
        events.push(json!({
            "name": label(&m.kind), "cat": "rhs-message", "ph": "i", "s": "t",
            "ts": us(m.time_ns - origin), "pid": m.pid.unwrap_or(0), "tid": m.tid.unwrap_or(0),
            "args": {"message": m.message, "resource": m.resource},
        }));
    }
    threads.sort();
    threads.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    let mut pids: Vec<u32> = threads.iter().map(|t| t.0).collect();
    pids.dedup();
    for pid in pids {
        events.push(json!({"name": "process_name", "ph": "M", "pid": pid, "args": {"name": format!("rhs.exe ({pid})")}}));
    }
    for (pid, tid, name) in threads {
        events.push(json!({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": format!("{name} {tid}")}}));
    }
    json!({"traceEvents": events, "displayTimeUnit": "ms", "otherData": {"trace": a.trace, "start": a.first}})
}
