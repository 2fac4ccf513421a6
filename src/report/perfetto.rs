//! Chrome / Perfetto trace-event JSON (ui.perfetto.dev, chrome://tracing):
//! entry points, API calls and waits as slices on their threads, flow
//! arrows from the thread that created a worker to the worker and from the
//! thread that readied a waiting one to it, findings and RHS's and the
//! cluster's messages as instants, and every process and thread named by
//! what it is (an RHS entry-point thread of a resource, a worker of one).
//! Each timeline (node) is its own set of processes: nodes have separate
//! pid spaces, so a node's pids are moved into a range of its own.

use std::collections::{BTreeMap, BTreeSet};

use foldhash::HashSet;
use serde::Serialize;
use serde_json::{json, Value};

use crate::analysis::Analysis;
use crate::model::{label, Record};

fn us(ns: i64) -> f64 {
    ns as f64 / 1000.0
}

/// Pids of the n-th timeline: its own range, so nodes never share one.
fn pid_of(node: usize, pid: u32) -> u64 {
    node as u64 * 1_000_000_000 + u64::from(pid)
}

/// What each thread of a timeline is, from what ran on it.
fn thread_names(a: &Analysis) -> BTreeMap<(u32, u32), String> {
    let s = &a.spans;
    // Each thread's roles in the order first seen, gathered in one pass
    // over a node's calls (hundreds of thousands, a few roles each).
    let mut names: BTreeMap<(u32, u32), Vec<String>> = BTreeMap::new();
    let mut seen: HashSet<((u32, u32), &str)> = HashSet::default();
    for e in &s.entries {
        if seen.insert(((e.pid, e.tid), &e.resource)) {
            names
                .entry((e.pid, e.tid))
                .or_default()
                .push(format!("entry points of {}", e.resource));
        }
    }
    for w in &s.workers {
        let what = format!("worker of {}", w.resource.as_deref().unwrap_or("?"));
        let list = names.entry((w.pid, w.tid)).or_default();
        if !list.contains(&what) {
            list.push(what);
        }
    }
    let mut out: BTreeMap<(u32, u32), String> = names
        .into_iter()
        .map(|(k, v)| {
            let role = if v.len() > 3 {
                format!("{}, and {} more", v[..3].join(", "), v.len() - 3)
            } else {
                v.join(", ")
            };
            (k, format!("{} ({role})", k.1))
        })
        .collect();
    // Threads known only from messages: the deadlock monitor, RCM's.
    for r in s.deadlocks.iter().chain(&s.restarts) {
        if let (Some(pid), Some(tid)) = (r.pid, r.tid) {
            out.entry((pid, tid))
                .or_insert_with(|| format!("{tid} (RHS deadlock monitor)"));
        }
    }
    out
}

/// The events being written: each one as it is made (a node's log makes
/// millions), comma-separated.
struct Events<'w, W: std::io::Write + ?Sized> {
    w: &'w mut W,
    first: bool,
}

impl<W: std::io::Write + ?Sized> Events<'_, W> {
    fn event<T: Serialize + ?Sized>(&mut self, event: &T) -> serde_json::Result<()> {
        if !std::mem::take(&mut self.first) {
            self.w.write_all(b",").map_err(serde_json::Error::io)?;
        }
        serde_json::to_writer(&mut *self.w, event)
    }
}

/// A slice ("X" event): the entry points, API calls and waits that are
/// most of an export, written as they are rather than through a JSON value
/// each. Fields in the order the JSON has them.
#[derive(Serialize)]
struct Slice<N, A> {
    name: N,
    cat: &'static str,
    ph: &'static str,
    ts: f64,
    dur: f64,
    pid: u64,
    tid: u32,
    args: A,
}

#[derive(Serialize)]
struct EntryArgs<'a> {
    resource: &'a str,
    resource_type: Option<&'a str>,
    entry_point: &'static str,
    returned: bool,
    status: Option<u64>,
}

#[derive(Serialize)]
struct CallArgs<'a> {
    logged_as: &'a str,
    usage: Option<&'static str>,
    target: Option<&'a str>,
    returned: bool,
    status: Option<u64>,
}

#[derive(Serialize)]
struct WaitArgs {
    readied_by: Option<u32>,
    ready_at_us: Option<f64>,
}

/// Text written as it is formatted, not made first.
struct Formatted<T>(T);

impl<T: std::fmt::Display> Serialize for Formatted<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// One timeline's events, its pids moved to range `node`.
fn timeline_events<W: std::io::Write + ?Sized>(
    a: &Analysis,
    node: usize,
    origin: i64,
    out: &mut Events<'_, W>,
) -> serde_json::Result<()> {
    let s = &a.spans;
    let end = s.last_ns.unwrap_or(origin);
    let pid = |p: u32| pid_of(node, p);
    let mut seen: BTreeSet<(u32, u32)> = BTreeSet::new();
    let mut touch = |p: u32, t: u32| {
        seen.insert((p, t));
    };
    for e in s.entries.iter().filter(|e| e.thread_known()) {
        touch(e.pid, e.tid);
        out.event(&Slice {
            name: Formatted(format_args!("{} {}", e.entry_point, e.resource)),
            cat: "entry-point",
            ph: "X",
            ts: us(e.begin_ns - origin),
            dur: us(e.end_ns().or(e.end_lost_ns()).unwrap_or(end) - e.begin_ns),
            pid: pid(e.pid),
            tid: e.tid,
            args: EntryArgs {
                resource: &e.resource,
                resource_type: e.resource_type.as_deref(),
                entry_point: e.entry_point.name(),
                returned: e.end_ns().is_some(),
                status: e.status(),
            },
        })?;
    }
    for c in &s.calls {
        touch(c.pid, c.tid);
        let facts = a.call(c);
        out.event(&Slice {
            name: &facts.api,
            cat: "api-call",
            ph: "X",
            ts: us(c.begin_ns - origin),
            dur: us(c.end_ns.or(c.end_lost_ns).unwrap_or(end) - c.begin_ns),
            pid: pid(c.pid),
            tid: c.tid,
            args: CallArgs {
                logged_as: &c.api,
                usage: facts.usage.map(|u| u.name()),
                target: c.target.as_deref(),
                returned: c.end_ns.is_some(),
                status: c.status,
            },
        })?;
    }
    // Waits, on the threads the timeline knows the process of.
    let process_of: BTreeMap<u32, u32> = s
        .entries
        .iter()
        .map(|e| (e.tid, e.pid))
        .chain(s.workers.iter().map(|w| (w.tid, w.pid)))
        .collect();
    let mut flow = 0u64;
    for w in &s.waits {
        let Some(&p) = process_of.get(&w.tid) else {
            continue;
        };
        touch(p, w.tid);
        let back = w.in_ns.unwrap_or(end);
        out.event(&Slice {
            name: Formatted(format_args!(
                "waiting ({})",
                crate::read::etl::kernel::wait_reason_name(w.wait_reason)
            )),
            cat: "wait",
            ph: "X",
            ts: us(w.out_ns - origin),
            dur: us(back - w.out_ns),
            pid: pid(p),
            tid: w.tid,
            args: WaitArgs {
                readied_by: w.readied_by,
                ready_at_us: w.ready_ns.map(|r| us(r - origin)),
            },
        })?;
        // The readier's arrow to the thread it readied.
        // (A readier outside the processes the timeline knows goes under
        // process 0.)
        if let (Some(by), Some(ready)) = (w.readied_by, w.ready_ns) {
            let bp = process_of.get(&by).copied().unwrap_or(0);
            touch(bp, by);
            flow += 1;
            let id = format!("ready-{node}-{flow}");
            out.event(&json!({"name": "readied", "cat": "ready", "ph": "s", "id": id, "ts": us(ready - origin), "pid": pid(bp), "tid": by}),
            )?;
            out.event(&json!({"name": "readied", "cat": "ready", "ph": "f", "bp": "e", "id": id, "ts": us(ready - origin), "pid": pid(p), "tid": w.tid}),
            )?;
        }
    }
    // ClusWorkerCreate: the creator's arrow to the worker.
    for w in &s.workers {
        touch(w.pid, w.tid);
        touch(w.pid, w.creator);
        flow += 1;
        let id = format!("worker-{node}-{flow}");
        out.event(&json!({"name": "ClusWorkerCreate", "cat": "worker", "ph": "s", "id": id, "ts": us(w.created_ns - origin), "pid": pid(w.pid), "tid": w.creator}),
        )?;
        out.event(&json!({"name": "ClusWorkerCreate", "cat": "worker", "ph": "f", "bp": "e", "id": id, "ts": us(w.started_ns.max(w.created_ns) - origin), "pid": pid(w.pid), "tid": w.tid}),
        )?;
    }
    for r in &a.findings {
        let f = &r.finding;
        touch(f.pid, f.tid);
        out.event(&json!({
            "name": format!("{}: {}", label(&f.severity), label(&f.rule)), "cat": "finding", "ph": "i", "s": "t",
            "ts": us(f.begin.ns() - origin), "pid": pid(f.pid), "tid": f.tid, "args": f,
        }))?;
    }
    let messages = s
        .deadlocks
        .iter()
        .chain(&s.restarts)
        .chain(&s.messages)
        .chain(&s.events)
        .chain(&s.health_failures);
    for m in messages {
        let (p, t) = (m.pid.unwrap_or(0), m.tid.unwrap_or(0));
        touch(p, t);
        out.event(&message(m, pid(p), t, origin))?;
    }
    // Every process and thread that has an event gets a name.
    let names = thread_names(a);
    let mut pids: Vec<u32> = seen.iter().map(|k| k.0).collect();
    pids.dedup();
    let node_name = a.node.as_deref().unwrap_or(&a.trace);
    for p in pids {
        let rhs = s.entries.iter().any(|e| e.pid == p && e.thread_known());
        let name = match (p, rhs) {
            (0, _) => format!("process not known on {node_name}"),
            (_, true) => format!("rhs.exe {p} on {node_name}"),
            (_, false) => format!("process {p} on {node_name}"),
        };
        out.event(
            &json!({"name": "process_name", "ph": "M", "pid": pid(p), "args": {"name": name}}),
        )?;
    }
    for &(p, t) in &seen {
        let name = names
            .get(&(p, t))
            .cloned()
            .unwrap_or_else(|| format!("{t}"));
        out.event(&json!({"name": "thread_name", "ph": "M", "pid": pid(p), "tid": t, "args": {"name": name}}),
        )?;
    }
    Ok(())
}

fn message(m: &Record, pid: u64, tid: u32, origin: i64) -> Value {
    json!({
        "name": label(&m.kind), "cat": "message", "ph": "i", "s": "t",
        "ts": us(m.time_ns - origin), "pid": pid, "tid": tid,
        "args": {"message": m.message, "resource": m.resource, "event": m.event, "state": m.state},
    })
}

/// Writes the trace-event JSON of every timeline together, on one time
/// axis, event by event: memory stays that of one event however many the
/// inputs hold.
pub fn write_trace_events<W: std::io::Write + ?Sized>(
    all: &[Analysis],
    w: &mut W,
) -> serde_json::Result<()> {
    let origin = all
        .iter()
        .filter_map(|a| a.spans.first_ns)
        .min()
        .unwrap_or(0);
    let timelines: Vec<Value> = all
        .iter()
        .enumerate()
        .map(|(i, a)| json!({"node": a.node, "trace": a.trace, "pids_from": pid_of(i, 0)}))
        .collect();
    let other = json!({"start": crate::model::Timestamp(origin), "timelines": timelines});
    let io = serde_json::Error::io;
    w.write_all(br#"{"traceEvents":["#).map_err(io)?;
    let mut out = Events {
        w: &mut *w,
        first: true,
    };
    for (node, a) in all.iter().enumerate() {
        timeline_events(a, node, origin, &mut out)?;
    }
    w.write_all(br#"],"displayTimeUnit":"ms","otherData":"#)
        .map_err(io)?;
    serde_json::to_writer(&mut *w, &other)?;
    w.write_all(b"}").map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EntryPoint;

    /// The typed slices write what a JSON value of the same event wrote
    /// (key order, nulls, escaping, numbers), byte for byte.
    #[test]
    fn a_slice_writes_what_its_json_value_would() {
        let resource = "App \"Res\"\\1\u{1}\t资源";
        let mut written = Vec::new();
        let mut out = Events {
            w: &mut written,
            first: true,
        };
        for status in [None, Some(0x8007_1392)] {
            out.event(&Slice {
                name: Formatted(format_args!("{} {}", EntryPoint::Online, resource)),
                cat: "entry-point",
                ph: "X",
                ts: us(1_035_267_200),
                dur: us(-5),
                pid: pid_of(1, 2000),
                tid: 3000,
                args: EntryArgs {
                    resource,
                    resource_type: status.map(|_| "Contoso App"),
                    entry_point: EntryPoint::Online.name(),
                    returned: status.is_some(),
                    status,
                },
            })
            .unwrap();
        }
        out.event(&Slice {
            name: "ClusterResourceControl",
            cat: "api-call",
            ph: "X",
            ts: 0.0,
            dur: f64::NAN,
            pid: 0,
            tid: u32::MAX,
            args: WaitArgs {
                readied_by: None,
                ready_at_us: Some(1.5e-3),
            },
        })
        .unwrap();
        let values: Vec<Value> = [None, Some(0x8007_1392u64)]
            .into_iter()
            .map(|status| {
                json!({
                    "name": format!("Online {resource}"), "cat": "entry-point", "ph": "X",
                    "ts": us(1_035_267_200), "dur": us(-5), "pid": 1_000_002_000u64, "tid": 3000,
                    "args": {"resource": resource, "resource_type": status.map(|_| "Contoso App"), "entry_point": "Online", "returned": status.is_some(), "status": status},
                })
            })
            .chain([json!({
                "name": "ClusterResourceControl", "cat": "api-call", "ph": "X",
                "ts": 0.0, "dur": f64::NAN, "pid": 0, "tid": u32::MAX,
                "args": {"readied_by": null, "ready_at_us": 1.5e-3},
            })])
            .collect();
        let expected: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        assert_eq!(String::from_utf8(written).unwrap(), expected.join(","));
    }
}
