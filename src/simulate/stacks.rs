//! Kernel stacks of an uninstrumented node, as a WPR profile with
//! context-switch stacks records them: the images of the RHS process
//! (rundown at the start, each with its DbgID_RSDS), each wait's stack
//! when the thread switches back in (kernel and user halves by stack-cache
//! key, the keys defined at the end as the cache's rundown), the stack of
//! a thread still blocked at the end (thread rundown), and the Breakpad
//! symbols of the images (`X.symbols/`), the resource DLL's aside: nobody
//! has its PDB.
//!
//! The ground truth is planted as the waits are written: a wait inside a
//! usage-table function (not a control code, which a stack shows only as
//! ClusterResourceControl) made where the table forbids it.

use std::collections::HashMap;
use std::io::{self, Seek, Write};

use super::{Sim, RHS_PID};
use crate::model::{EntryPoint, Finding};
use crate::read::etl::stackwalk::KERNEL_TRACE_CONTROL;
use crate::read::etl::write::{EventRecord, KernelHeader};
use crate::read::etl::{Descriptor, Guid};

const GROUP_THREAD: u8 = 0x05;
const GROUP_IMAGE: u8 = 0x14;
const GROUP_STACKWALK: u8 = 0x18;

/// One image of the simulated node: where it is mapped, its PDB, its
/// functions (name, offset from the base).
struct ImageDef {
    name: &'static str,
    pid: u32,
    base: u64,
    size: u64,
    time_date_stamp: u32,
    guid: Guid,
    age: u32,
    /// No symbols for it (the third-party resource DLL).
    private: bool,
    functions: Vec<(String, u64)>,
}

/// The node's images and the functions the stacks pass through.
fn images(apis: &[&str]) -> Vec<ImageDef> {
    let guid = |n: u32| {
        Guid::from_fields(
            0x5157_0000 + n,
            0x1d2e,
            0x4f30,
            [0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7, n as u8],
        )
    };
    let funcs = |names: &[&str]| -> Vec<(String, u64)> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), 0x1000 + 0x1000 * i as u64))
            .collect()
    };
    let clusapi: Vec<&str> = apis
        .iter()
        .copied()
        .filter(|a| !a.starts_with("ResUtil") && !a.starts_with("ClusWorker"))
        .chain(["ClusterResourceControl"])
        .collect();
    let resutils: Vec<&str> = ["ClusWorkerCreate", "ClusWorkerStart"]
        .into_iter()
        .chain(apis.iter().copied().filter(|a| a.starts_with("ResUtil")))
        .collect();
    let entry_points: Vec<String> = EntryPoint::ALL
        .iter()
        .map(|e| format!("{e}Call::CallIntoResource"))
        .chain(["RhsThreadProc".to_string()])
        .collect();
    let dll: Vec<String> = EntryPoint::ALL
        .iter()
        .map(|e| e.to_string())
        .chain(["OnlineWorker".to_string()])
        .collect();
    let image = |n: u32, name, pid, base, size: u64, private, functions| ImageDef {
        name,
        pid,
        base,
        size,
        time_date_stamp: 0x6100_0000 + n,
        guid: guid(n),
        age: 1,
        private,
        functions,
    };
    vec![
        image(
            1,
            "ntoskrnl.exe",
            0,
            0xffff_f800_1000_0000,
            0x100_0000,
            false,
            funcs(&["KiSwapContext", "KeWaitForSingleObject"]),
        ),
        image(
            2,
            "rhs.exe",
            RHS_PID,
            0x7ff6_1000_0000,
            0x8_0000,
            false,
            funcs(&entry_points.iter().map(String::as_str).collect::<Vec<_>>()),
        ),
        image(
            3,
            "ntdll.dll",
            RHS_PID,
            0x7ffa_2000_0000,
            0x1f_0000,
            false,
            funcs(&["NtWaitForSingleObject", "RtlUserThreadStart"]),
        ),
        image(
            4,
            "kernelbase.dll",
            RHS_PID,
            0x7ffa_1f00_0000,
            0x2c_0000,
            false,
            funcs(&["WaitForSingleObjectEx"]),
        ),
        image(
            5,
            "kernel32.dll",
            RHS_PID,
            0x7ffa_1e00_0000,
            0xc_0000,
            false,
            funcs(&["BaseThreadInitThunk"]),
        ),
        image(
            6,
            "clusapi.dll",
            RHS_PID,
            0x7ffa_0100_0000,
            0x8_0000,
            false,
            funcs(&clusapi),
        ),
        image(
            7,
            "resutils.dll",
            RHS_PID,
            0x7ffa_0200_0000,
            0x4_0000,
            false,
            funcs(&resutils),
        ),
        image(
            8,
            super::nodelog::DLL,
            RHS_PID,
            0x7ffa_0300_0000,
            0x3_0000,
            true,
            funcs(&dll.iter().map(String::as_str).collect::<Vec<_>>()),
        ),
    ]
}

/// A thread's wait: its stack's kernel and user frames, and the finding
/// (index into the truth) it shows.
struct Blocked {
    kernel: Vec<u64>,
    user: Vec<u64>,
    planted: Option<usize>,
}

/// What the simulation writes of stacks, and the truth they show.
pub(crate) struct StackWriter {
    images: Vec<ImageDef>,
    /// Stack-cache keys by the frames they stand for (kernel or user).
    keys: HashMap<Vec<u64>, u64>,
    /// Where each blocked thread waits, and the truth finding its wait
    /// shows, if any.
    blocked: HashMap<u32, Blocked>,
    pub(crate) findings: Vec<Finding>,
    /// Threads of the RHS process alive now.
    alive: Vec<u32>,
}

impl StackWriter {
    pub(crate) fn new(apis: &[&str]) -> StackWriter {
        StackWriter {
            images: images(apis),
            keys: HashMap::new(),
            blocked: HashMap::new(),
            findings: Vec::new(),
            alive: Vec::new(),
        }
    }

    /// A function's address (an offset into it, as a return address is).
    fn at(&self, image: &str, function: &str, into: u64) -> u64 {
        self.images
            .iter()
            .find(|i| i.name == image)
            .and_then(|i| {
                i.functions
                    .iter()
                    .find(|f| f.0 == function)
                    .map(|f| i.base + f.1 + into)
            })
            .unwrap_or(0)
    }

    fn key(&mut self, frames: &[u64], kernel: bool) -> u64 {
        let next = self.keys.len() as u64;
        *self.keys.entry(frames.to_vec()).or_insert(if kernel {
            0xffff_c000_0000_1000 + next * 0x40
        } else {
            0x0000_0200_0000_1000 + next * 0x40
        })
    }

    /// Where a thread waits: in `api` (or outside any call) of the DLL's
    /// entry point `ep`, or of its worker.
    fn wait_stack(&self, ep: Option<EntryPoint>, api: Option<&str>) -> (Vec<u64>, Vec<u64>) {
        let kernel = vec![
            self.at("ntoskrnl.exe", "KiSwapContext", 0x5a),
            self.at("ntoskrnl.exe", "KeWaitForSingleObject", 0x1f3),
        ];
        let mut user = vec![
            self.at("ntdll.dll", "NtWaitForSingleObject", 0x14),
            self.at("kernelbase.dll", "WaitForSingleObjectEx", 0x9e),
        ];
        if let Some(api) = api {
            let (image, function) = if api.starts_with("ResUtil") {
                ("resutils.dll", api)
            } else if api.starts_with("CLUSCTL_") || api.starts_with("0x") {
                // A control code is a parameter: the stack shows the call.
                ("clusapi.dll", "ClusterResourceControl")
            } else {
                ("clusapi.dll", api)
            };
            user.push(self.at(image, function, 0x4c));
        }
        let dll = super::nodelog::DLL;
        match ep {
            Some(ep) => {
                user.push(self.at(dll, ep.name(), 0x2a));
                user.push(self.at("rhs.exe", &format!("{ep}Call::CallIntoResource"), 0x36));
                user.push(self.at("rhs.exe", "RhsThreadProc", 0x80));
            }
            None => {
                user.push(self.at(dll, "OnlineWorker", 0x2a));
                user.push(self.at("resutils.dll", "ClusWorkerStart", 0x44));
            }
        }
        user.push(self.at("kernel32.dll", "BaseThreadInitThunk", 0x14));
        user.push(self.at("ntdll.dll", "RtlUserThreadStart", 0x21));
        (kernel, user)
    }

    /// The images' Breakpad symbol files: (relative path, contents), in a
    /// symbol-server layout (`name.pdb/GUIDAGE/name.sym`).
    pub(crate) fn symbol_files(&self) -> Vec<(String, String)> {
        self.images
            .iter()
            .filter(|i| !i.private)
            .map(|i| {
                let stem = i.name.rsplit_once('.').map_or(i.name, |(s, _)| s);
                let g = i.guid;
                let id = format!(
                    "{:08X}{:04X}{:04X}{}{:X}",
                    g.data1,
                    g.data2,
                    g.data3,
                    g.data4
                        .iter()
                        .map(|b| format!("{b:02X}"))
                        .collect::<String>(),
                    i.age
                );
                let mut text = format!(
                    "MODULE windows x86_64 {id} {stem}.pdb\nINFO CODE_ID {:08X}{:x} {}\n",
                    i.time_date_stamp, i.size, i.name
                );
                for (name, rva) in &i.functions {
                    text.push_str(&format!("FUNC {rva:x} 800 0 {name}\n"));
                }
                (format!("{stem}.pdb/{id}/{stem}.sym"), text)
            })
            .collect()
    }
}

/// Image payload (version 3, 64-bit).
fn image_payload(i: &ImageDef) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&i.base.to_le_bytes());
    p.extend_from_slice(&i.size.to_le_bytes());
    p.extend_from_slice(&i.pid.to_le_bytes());
    p.extend_from_slice(&0u32.to_le_bytes()); // checksum
    p.extend_from_slice(&i.time_date_stamp.to_le_bytes());
    p.extend_from_slice(&[0x0c, 0x01, 0, 0]); // signature level, type
    p.extend_from_slice(&i.base.to_le_bytes()); // default base
    p.extend_from_slice(&[0; 16]);
    let path = if i.pid == 0 {
        format!("\\SystemRoot\\system32\\{}", i.name)
    } else {
        format!("\\Device\\HarddiskVolume2\\Windows\\System32\\{}", i.name)
    };
    p.extend(path.encode_utf16().chain([0]).flat_map(u16::to_le_bytes));
    p
}

/// DbgID_RSDS payload (64-bit).
fn rsds_payload(i: &ImageDef) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&i.base.to_le_bytes());
    p.extend_from_slice(&i.pid.to_le_bytes());
    p.extend_from_slice(&i.guid.to_le_bytes());
    p.extend_from_slice(&i.age.to_le_bytes());
    let stem = i.name.rsplit_once('.').map_or(i.name, |(s, _)| s);
    p.extend_from_slice(format!("{stem}.pdb").as_bytes());
    p.push(0);
    p
}

/// A thread payload (version 3, 64-bit) with its start address.
pub(crate) fn thread_payload(pid: u32, tid: u32, start: u64) -> Vec<u8> {
    let mut p = super::payloads::thread(pid, tid);
    p[48..56].copy_from_slice(&start.to_le_bytes());
    p
}

impl<W: Write + Seek> Sim<'_, W> {
    fn stack_record(&mut self, tid: u32, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let now = self.now;
        self.writer.write_kernel(
            Self::cpu(tid),
            KernelHeader::Perfinfo,
            GROUP_STACKWALK,
            opcode,
            2,
            tid,
            RHS_PID,
            now,
            payload,
        )
    }

    /// The images (one raw timestamp each, as a rundown logs them, so
    /// each DbgID_RSDS pairs with its image) and the RHS threads' starts.
    pub(super) fn stack_rundown(&mut self) -> io::Result<()> {
        let Some(st) = self.stacks.take() else {
            return Ok(());
        };
        let start = self.now;
        for (k, i) in st.images.iter().enumerate() {
            self.now = start + k as i64;
            self.writer.write_kernel(
                0,
                KernelHeader::System,
                GROUP_IMAGE,
                3,
                3,
                0,
                i.pid,
                self.now,
                &image_payload(i),
            )?;
            let ev = EventRecord {
                thread_id: 0,
                process_id: i.pid,
                timestamp: self.now,
                provider: KERNEL_TRACE_CONTROL,
                descriptor: Descriptor {
                    opcode: 36,
                    version: 2,
                    level: 4,
                    ..Descriptor::default()
                },
                activity_id: Guid::NIL,
                extended: Vec::new(),
                payload: rsds_payload(i),
            };
            self.writer.write_event(0, &ev)?;
        }
        self.now = start;
        self.stacks = Some(st);
        Ok(())
    }

    /// An RHS thread already running: it started in RHS's thread routine.
    pub(super) fn stack_thread_rundown(&mut self, tid: u32) -> Option<Vec<u8>> {
        let st = self.stacks.as_mut()?;
        st.alive.push(tid);
        let start = st.at("rhs.exe", "RhsThreadProc", 0);
        Some(thread_payload(RHS_PID, tid, start))
    }

    /// A thread ended.
    pub(super) fn stack_thread_end(&mut self, tid: u32) {
        if let Some(st) = self.stacks.as_mut() {
            st.alive.retain(|&t| t != tid);
        }
    }

    /// A worker starts in resutils.dll's worker routine.
    pub(super) fn stack_worker_start(&mut self, worker: u32) -> Option<Vec<u8>> {
        let st = self.stacks.as_mut()?;
        st.alive.push(worker);
        let start = st.at("resutils.dll", "ClusWorkerStart", 0);
        Some(thread_payload(RHS_PID, worker, start))
    }

    /// A thread of script `id` switches out: where it waits, and the
    /// finding the wait shows.
    pub(super) fn stack_block(&mut self, id: usize, tid: u32) {
        let Some(script) = self.scripts[id].as_ref() else {
            return;
        };
        let context = script.context;
        let api = script.apis.last().cloned();
        let Some(st) = self.stacks.as_ref() else {
            return;
        };
        let (r, ep) = context.map_or((None, None), |(r, ep)| (Some(r), ep));
        let (kernel, user) = st.wait_stack(ep, api.as_deref());
        let planted = match (r, api.as_deref()) {
            (Some(_), Some(api)) => self.plant_stack_misuse(ep, api, tid),
            _ => None,
        };
        if let Some(st) = self.stacks.as_mut() {
            st.blocked.insert(
                tid,
                Blocked {
                    kernel,
                    user,
                    planted,
                },
            );
        }
    }

    /// A wait the stacks can show, where the table forbids its call.
    fn plant_stack_misuse(&mut self, ep: Option<EntryPoint>, api: &str, tid: u32) -> Option<usize> {
        // A control code's stack shows ClusterResourceControl only.
        if self.table.resolve(api)?.kind != crate::providers::usage::ApiKind::Function {
            return None;
        }
        // No log line names the resource to the stacks.
        let f = self.misuse(None, ep, api, tid)?;
        let st = self.stacks.as_mut()?;
        st.findings.push(f);
        Some(st.findings.len() - 1)
    }

    /// The thread switched back in: its wait's stack, by cache key.
    pub(super) fn stack_wake(&mut self, tid: u32) -> io::Result<()> {
        let Some(Blocked {
            kernel,
            user,
            planted,
        }) = self.stacks.as_mut().and_then(|st| st.blocked.remove(&tid))
        else {
            return Ok(());
        };
        let now_ns = self.ns(self.now);
        let Some(st) = self.stacks.as_mut() else {
            return Ok(());
        };
        if let Some(f) = planted.and_then(|i| st.findings.get_mut(i)) {
            f.duration_ns = Some(now_ns - f.begin.ns());
        }
        let kernel_key = st.key(&kernel, true);
        let user_key = st.key(&user, false);
        for (opcode, key) in [(37u8, kernel_key), (38, user_key)] {
            let mut p = Vec::with_capacity(24);
            p.extend_from_slice(&self.now.to_le_bytes());
            p.extend_from_slice(&RHS_PID.to_le_bytes());
            p.extend_from_slice(&tid.to_le_bytes());
            p.extend_from_slice(&key.to_le_bytes());
            self.stack_record(tid, opcode, &p)?;
        }
        Ok(())
    }

    /// RHS is being terminated: each blocked thread runs once more (to
    /// die), its stack showing where it was; then every thread ends. The
    /// calls they were in never returned.
    pub(super) fn stack_exit(&mut self) -> io::Result<()> {
        let Some(st) = self.stacks.as_ref() else {
            return Ok(());
        };
        let mut blocked: Vec<u32> = st.blocked.keys().copied().collect();
        blocked.sort_unstable();
        let planted: Vec<usize> = st.blocked.values().filter_map(|b| b.planted).collect();
        for tid in blocked {
            self.write_kernel(
                tid,
                GROUP_THREAD,
                36,
                2,
                &super::payloads::cswitch(tid, 0, 0, super::payloads::STATE_RUNNING),
            )?;
            self.stack_wake(tid)?;
        }
        if let Some(st) = self.stacks.as_mut() {
            for i in planted {
                if let Some(f) = st.findings.get_mut(i) {
                    f.duration_ns = None;
                    f.never_returned = true;
                }
            }
        }
        let alive = self.stacks.as_mut().map(|s| std::mem::take(&mut s.alive));
        for tid in alive.unwrap_or_default() {
            self.write_kernel(
                tid,
                GROUP_THREAD,
                2,
                3,
                &super::payloads::thread(RHS_PID, tid),
            )?;
        }
        Ok(())
    }

    /// The trace stops: the threads still there are run down (a blocked
    /// one with its whole stack), and the stack cache's keys defined.
    pub(super) fn stack_finish(&mut self) -> io::Result<()> {
        let Some(mut st) = self.stacks.take() else {
            return Ok(());
        };
        let alive = std::mem::take(&mut st.alive);
        let blocked = std::mem::take(&mut st.blocked);
        self.stacks = Some(st);
        for tid in alive {
            self.write_kernel(
                tid,
                GROUP_THREAD,
                4,
                3,
                &super::payloads::thread(RHS_PID, tid),
            )?;
            if let Some(Blocked {
                kernel,
                user,
                planted,
            }) = blocked.get(&tid)
            {
                let mut p = Vec::new();
                p.extend_from_slice(&self.now.to_le_bytes());
                p.extend_from_slice(&RHS_PID.to_le_bytes());
                p.extend_from_slice(&tid.to_le_bytes());
                for f in kernel.iter().chain(user) {
                    p.extend_from_slice(&f.to_le_bytes());
                }
                self.stack_record(tid, 32, &p)?;
                if let (Some(i), Some(st)) = (planted, self.stacks.as_mut()) {
                    if let Some(f) = st.findings.get_mut(*i) {
                        f.never_returned = true;
                    }
                }
            }
        }
        let Some(st) = self.stacks.as_ref() else {
            return Ok(());
        };
        let mut defs: Vec<(u64, Vec<u64>)> = st.keys.iter().map(|(f, k)| (*k, f.clone())).collect();
        defs.sort_unstable();
        // The cache's rundown comes after every reference to it.
        self.now += 1;
        for (key, frames) in defs {
            let mut p = key.to_le_bytes().to_vec();
            for f in frames {
                p.extend_from_slice(&f.to_le_bytes());
            }
            self.stack_record(0, 36, &p)?;
        }
        Ok(())
    }
}
