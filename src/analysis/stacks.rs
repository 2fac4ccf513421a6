//! Calls a DLL blocked in, read from the stacks of its threads' waits,
//! for DLLs that log nothing of their own.
//!
//! A context switch's stack is the stack of the thread switching in:
//! where it had waited since it switched out (a thread still waiting when
//! the trace stops shows where in its rundown's stack). A wait whose
//! stack holds a usage-table function of clusapi.dll or resutils.dll was
//! inside that call: the outermost such frame below the first frame of
//! another image (the resource DLL) is the call the DLL made, not what the
//! cluster library called inside it. Consecutive waits of a thread in the
//! same call (same function, same return into the DLL) are one call,
//! from the switch-out that began the first wait to the switch-in that
//! ended the last; still waiting at the end, or ended with its thread, it
//! never returned. RHS's `<EntryPoint>Call::CallIntoResource` frame names
//! the entry point where rhs.exe's symbols are given; a thread that
//! started in resutils.dll (or whose outermost frames are there) is a
//! ClusWorkerCreate worker for its lifetime.

use std::collections::{HashMap, HashSet};

use crate::model::spans::{InferredCall, ThreadLife};
use crate::model::{ApiSpan, EntryPoint, Frame, Spans, Stack, Worker, WorkerIndex};
use crate::providers::usage::UsageTable;

/// Images of the cluster API the usage table's functions live in.
const CLUSTER_IMAGES: [&str; 2] = ["clusapi.dll", "resutils.dll"];

/// Images of the system a DLL's call passes through on its way to a wait.
fn system_image(module: &str) -> bool {
    matches!(
        module,
        "ntdll.dll"
            | "kernelbase.dll"
            | "kernel32.dll"
            | "win32u.dll"
            | "ucrtbase.dll"
            | "msvcrt.dll"
            | "rpcrt4.dll"
            | "sechost.dll"
            | "advapi32.dll"
            | "combase.dll"
            | "wow64.dll"
            | "wow64cpu.dll"
            | "wow64win.dll"
            | "ntoskrnl.exe"
            | "hal.dll"
    ) || module.ends_with(".sys")
}

/// Where a wait's stack says the thread waited: its innermost frame
/// outside the system's images (`clusapi.dll!GetClusterResourceState`,
/// `sqlcli.dll+0x1a2c`); None when every frame is the system's or unknown.
pub fn wait_site(stack: &Stack) -> Option<String> {
    let f = stack
        .iter()
        .find(|f| f.module.as_deref().is_some_and(|m| !system_image(m)))?;
    let module = f.module.as_deref()?;
    Some(match &f.function {
        Some(func) => format!("{module}!{}", bare(func)),
        None => format!("{module}+{:#x}", f.offset),
    })
}

/// A function name as a symbol file may decorate it (`_Name@8` for
/// 32-bit stdcall), bare.
fn bare(name: &str) -> &str {
    let name = name.strip_prefix('_').unwrap_or(name);
    match name.rfind('@') {
        Some(at) if name[at + 1..].chars().all(|c| c.is_ascii_digit()) => &name[..at],
        _ => name,
    }
}

/// What one wait's stack says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reading {
    /// The usage table's name of the call.
    api: String,
    /// The address it returns to in the DLL (two waits in one call share
    /// it).
    return_address: u64,
    dll: Option<String>,
    entry_point: Option<EntryPoint>,
}

/// The entry point RHS was calling, from `XxxCall::CallIntoResource`.
fn entry_point_of(stack: &[Frame]) -> Option<EntryPoint> {
    stack
        .iter()
        .filter(|f| f.in_module("rhs.exe"))
        .find_map(|f| {
            let name = f.function.as_deref()?;
            let at = name.find("Call::CallIntoResource")?;
            let head = &name[..at];
            let head = head.rsplit("::").next().unwrap_or(head);
            head.parse().ok()
        })
}

fn read(stack: &[Frame], table: &UsageTable) -> Option<Reading> {
    // The first frame of an image that is neither the system's nor the
    // cluster API's: the code that made the call.
    let dll_at = stack.iter().position(|f| {
        f.module
            .as_deref()
            .is_some_and(|m| !system_image(m) && !CLUSTER_IMAGES.contains(&m))
    })?;
    let (api, _) = stack[..dll_at]
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, f)| {
            f.module
                .as_deref()
                .is_some_and(|m| CLUSTER_IMAGES.contains(&m))
        })
        .find_map(|(i, f)| {
            let name = bare(f.function.as_deref()?);
            table.resolve(name).map(|row| (row.name.clone(), i))
        })?;
    let dll = &stack[dll_at];
    Some(Reading {
        api,
        return_address: dll.address,
        dll: dll.module.clone(),
        entry_point: entry_point_of(stack),
    })
}

/// Whether a stack's outermost frames below the system's thread start are
/// resutils.dll's: the thread runs a ClusWorkerCreate routine.
fn worker_stack(stack: &[Frame]) -> bool {
    stack
        .iter()
        .rev()
        .find(|f| f.module.as_deref().is_some_and(|m| !system_image(m)))
        .is_some_and(|f| f.in_module("resutils.dll"))
}

/// The lives of each thread id, in the order the kernel's thread events
/// gave them (ids are reused).
fn lives_by_tid(threads: &[ThreadLife]) -> HashMap<u32, Vec<&ThreadLife>> {
    let mut by: HashMap<u32, Vec<&ThreadLife>> = HashMap::new();
    for t in threads {
        by.entry(t.tid).or_default().push(t);
    }
    by
}

/// The life of thread `tid` at `time_ns`: the last one begun by then.
fn life_at<'a>(
    lives: &HashMap<u32, Vec<&'a ThreadLife>>,
    tid: u32,
    time_ns: i64,
) -> Option<&'a ThreadLife> {
    lives.get(&tid)?.iter().rev().copied().find(|t| {
        t.start_ns.unwrap_or(i64::MIN) <= time_ns && t.end_ns.is_none_or(|e| e >= time_ns)
    })
}

/// How close a thread's end after its last wait means it was killed in
/// the call, not that it returned.
const ENDED_IN_CALL_NS: i64 = 1_000_000_000;

/// The longest a thread runs between two waits of one call: longer, and
/// two waits in the same place are two calls (a health check's call made
/// again a minute later).
const SAME_CALL_GAP_NS: i64 = 1_000_000_000;

/// Adds the calls the waits' stacks show, and the workers the threads'
/// starts and stacks show; returns how many calls it added.
pub fn infer(spans: &mut Spans, table: &UsageTable) -> usize {
    if spans.wait_stacks.is_empty() && spans.threads.iter().all(|t| t.start_module.is_none()) {
        return 0;
    }
    add_workers(spans);
    let lives = lives_by_tid(&spans.threads);
    // The open inferred call of each thread: (span index, its reading).
    let mut open: HashMap<u32, (usize, Reading)> = HashMap::new();
    let mut added = Vec::new();
    for ws in &spans.wait_stacks {
        let (w, stack) = (&spans.waits[ws.wait], &ws.stack);
        let reading = read(stack, table);
        if let (Some(r), Some((i, current))) = (&reading, open.get(&w.tid)) {
            let span: &mut ApiSpan = &mut added[*i];
            let near = span
                .end_ns
                .is_some_and(|e| w.out_ns.saturating_sub(e) <= SAME_CALL_GAP_NS);
            if near && r.api == current.api && r.return_address == current.return_address {
                span.end_ns = w.in_ns;
                continue;
            }
        }
        open.remove(&w.tid);
        let Some(r) = reading else { continue };
        let pid = life_at(&lives, w.tid, w.out_ns).map_or(0, |t| t.pid);
        added.push(ApiSpan {
            id: 0,
            pid,
            tid: w.tid,
            api: r.api.clone(),
            target: None,
            begin_ns: w.out_ns,
            end_ns: w.in_ns,
            end_lost_ns: None,
            status: None,
            entry: None,
            evidence: ws.evidence,
            inferred: Some(Box::new(InferredCall {
                entry_point: r.entry_point,
                dll: r.dll.clone(),
                stack: stack.clone(),
            })),
        });
        open.insert(w.tid, (added.len() - 1, r));
    }
    // The calls the DLL's own events logged, by thread.
    let mut logged_calls: HashMap<u32, Vec<(i64, Option<i64>)>> = HashMap::new();
    for c in spans.calls.iter().filter(|c| c.inferred.is_none()) {
        logged_calls
            .entry(c.tid)
            .or_default()
            .push((c.begin_ns, c.end_ns));
    }
    // Each thread's entry points, in order.
    let mut entries_of: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, e) in spans.entries.iter().enumerate() {
        entries_of.entry(e.tid).or_default().push(i);
    }
    let mut count = 0;
    for mut call in added {
        // Killed while in the call: its thread ended right after the wait.
        let life = life_at(&lives, call.tid, call.begin_ns);
        if let (Some(end), Some(t_end)) = (call.end_ns, life.and_then(|t| t.end_ns)) {
            if t_end >= end && t_end.saturating_sub(end) <= ENDED_IN_CALL_NS {
                call.end_ns = None;
            }
        }
        // The instrumented DLL's own event of the same call says more.
        let logged = logged_calls.get(&call.tid).is_some_and(|l| {
            l.iter()
                .any(|&(b, e)| b <= call.begin_ns && e.is_none_or(|e| e >= call.begin_ns))
        });
        if logged {
            continue;
        }
        call.entry = entries_of
            .get(&call.tid)
            .into_iter()
            .flatten()
            .rev()
            .map(|&i| &spans.entries[i])
            .find(|e| {
                (e.pid == call.pid || call.pid == 0)
                    && e.begin_ns <= call.begin_ns
                    && e.end_ns()
                        .or(e.end_lost_ns())
                        .is_none_or(|x| x >= call.begin_ns)
            })
            .map(|e| e.id);
        call.id = spans.calls.len();
        spans.calls.push(call);
        count += 1;
    }
    count
}

/// Threads that started in resutils.dll, or whose stacks bottom out
/// there, are workers for their lifetime (where no event said so).
fn add_workers(spans: &mut Spans) {
    let by_stack: HashSet<u32> = spans
        .wait_stacks
        .iter()
        .filter(|s| worker_stack(&s.stack))
        .map(|s| spans.waits[s.wait].tid)
        .collect();
    let lives: Vec<ThreadLife> = spans
        .threads
        .iter()
        .filter(|t| t.start_module.as_deref() == Some("resutils.dll") || by_stack.contains(&t.tid))
        .cloned()
        .collect();
    // Each thread's workers, the ones added here too: a look at a few, not
    // a walk over all of them for each life.
    let mut index = WorkerIndex::new(&spans.workers);
    for t in lives {
        let begin = t.start_ns.unwrap_or(t.seen_ns);
        if index.at(&spans.workers, t.pid, t.tid, begin).is_some() {
            continue;
        }
        let worker = Worker {
            pid: t.pid,
            tid: t.tid,
            creator: 0,
            resource: None,
            created_ns: begin,
            started_ns: begin,
            exited_ns: t.end_ns,
        };
        index.push(&mut spans.workers, worker);
    }
}

/// A stack as text, frame by frame.
pub fn describe(stack: &Stack) -> Vec<String> {
    stack.iter().map(ToString::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(module: &str, function: &str, address: u64) -> Frame {
        Frame {
            address,
            module: Some(module.into()),
            function: (!function.is_empty()).then(|| function.into()),
            offset: 0x10,
        }
    }

    #[test]
    fn the_call_is_the_outermost_table_function_below_the_dll() {
        let table = UsageTable::embedded();
        let stack = [
            frame("ntoskrnl.exe", "KiSwapContext", 1),
            frame("ntdll.dll", "NtWaitForSingleObject", 2),
            frame("kernelbase.dll", "WaitForSingleObjectEx", 3),
            // A table function the cluster library calls inside.
            frame("clusapi.dll", "GetClusterResourceState", 4),
            frame("clusapi.dll", "_OnlineClusterResource@4", 5),
            frame("contosoapp.dll", "", 6),
            frame("rhs.exe", "rhs::OnlineCall::CallIntoResource", 7),
            frame("kernel32.dll", "BaseThreadInitThunk", 8),
        ];
        let r = read(&stack, &table).unwrap();
        assert_eq!(r.api, "OnlineClusterResource");
        assert_eq!(r.return_address, 6);
        assert_eq!(r.dll.as_deref(), Some("contosoapp.dll"));
        assert_eq!(r.entry_point, Some(EntryPoint::Online));
        // No DLL frame above the table function: RHS's own call, no
        // finding.
        assert_eq!(read(&stack[..5], &table), None);
        assert!(!worker_stack(&stack));
        let worker = [
            frame("clusapi.dll", "ClusterRegSetValue", 1),
            frame("contosoapp.dll", "", 2),
            frame("resutils.dll", "", 3),
            frame("kernel32.dll", "BaseThreadInitThunk", 4),
            frame("ntdll.dll", "RtlUserThreadStart", 5),
        ];
        assert!(worker_stack(&worker));
        assert_eq!(bare("_ClusterRegSetValue@20"), "ClusterRegSetValue");
    }
}
