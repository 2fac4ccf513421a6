//! What each script step writes: ETW events into the .etl (TraceLogging
//! events of the DLL, FailoverClustering messages, kernel process, thread
//! and context-switch records) and, when asked for, the same events as
//! cluster.log lines.

use std::io::{self, Seek, Write};

use super::{
    nodelog, payloads, scenario, Sim, Step, KERNEL_PROCESS, KERNEL_THREAD, MS, RESOURCE_TYPE,
    RHS_PID,
};
use crate::read::etl::write::tracelogging::{event as tl_event, provider_traits, FieldValue};
use crate::read::etl::write::{EventRecord, KernelHeader};
use crate::read::etl::{Descriptor, Guid};

impl<W: Write + Seek> Sim<'_, W> {
    fn write_tl(&mut self, tid: u32, name: &str, fields: &[(&str, FieldValue)]) -> io::Result<()> {
        // An uninstrumented DLL writes no events of its own.
        if self.uninstrumented {
            return Ok(());
        }
        let (schema, payload) = tl_event(name, fields);
        let ev = EventRecord {
            thread_id: tid,
            process_id: RHS_PID,
            timestamp: self.now,
            provider: self.provider,
            descriptor: Descriptor {
                level: 4,
                channel: 11,
                ..Descriptor::default()
            },
            activity_id: Guid::NIL,
            extended: vec![provider_traits("RhScope-ResourceDll"), schema],
            payload,
        };
        self.writer.write_event(Self::cpu(tid), &ev)
    }

    pub(super) fn write_kernel(
        &mut self,
        tid: u32,
        group: u8,
        opcode: u8,
        version: u16,
        payload: &[u8],
    ) -> io::Result<()> {
        let header = if opcode == 36 || opcode == 50 {
            KernelHeader::Perfinfo
        } else {
            KernelHeader::System
        };
        self.writer.write_kernel(
            Self::cpu(tid),
            header,
            group,
            opcode,
            version,
            tid,
            RHS_PID,
            self.now,
            payload,
        )
    }

    /// A line of the cluster.log, when one is being written.
    fn log_line(&mut self, tid: u32, component: &str, text: &str) -> io::Result<()> {
        let time = self.ns(self.now);
        let level = if text.contains("timed out") || text.contains("deadlock") {
            "ERR"
        } else {
            "INFO"
        };
        if self.node.is_some() {
            self.node_line(RHS_PID, tid, level, component, text);
            return Ok(());
        }
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        let line = crate::read::clusterlog::format_line(RHS_PID, tid, time, level, component, text);
        writeln!(log, "{line}")
    }

    /// What the DLL logs through RHS's LogEvent callback: RHS prefixes the
    /// resource type and name.
    fn res_line(&mut self, tid: u32, r: Option<usize>, text: String) -> io::Result<()> {
        if self.log.is_none() || self.node.is_some() {
            return Ok(());
        }
        let line = match r {
            Some(r) => format!("{RESOURCE_TYPE} <{}>: rhscope: {text}", self.resources[r]),
            None => format!("rhscope: {text}"),
        };
        self.log_line(tid, "RES", &line)
    }

    fn cluster_log(&mut self, tid: u32, text: &str) -> io::Result<()> {
        self.log_line(tid, "RHS", text)?;
        // The uninstrumented node's trace is a kernel trace (WPR's
        // profile); its cluster events are in the log alone.
        if self.uninstrumented {
            return Ok(());
        }
        self.fc_seq += 1;
        let payload: Vec<u8> = text
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect();
        let ev = EventRecord {
            thread_id: tid,
            process_id: RHS_PID,
            timestamp: self.now,
            provider: self.clustering,
            // Any id: the provider definition maps every event by its text.
            descriptor: Descriptor {
                id: 2,
                version: 0,
                level: 4,
                ..Descriptor::default()
            },
            activity_id: Guid::NIL,
            extended: Vec::new(),
            payload,
        };
        self.writer.write_event(Self::cpu(tid), &ev)
    }

    /// Writes the rundown of the RHS process and its resource threads.
    pub(super) fn rundown(&mut self) -> io::Result<()> {
        self.write_kernel(
            0,
            KERNEL_PROCESS,
            3,
            4,
            &payloads::process(RHS_PID, 700, "rhs.exe"),
        )?;
        self.stack_rundown()?;
        for r in 0..self.resources.len() {
            let tid = Self::rhs_thread(r);
            let payload = self
                .stack_thread_rundown(tid)
                .unwrap_or_else(|| payloads::thread(RHS_PID, tid));
            self.write_kernel(tid, KERNEL_THREAD, 3, 3, &payload)?;
        }
        Ok(())
    }

    pub(super) fn step(&mut self, id: usize, tid: u32, step: Step) -> io::Result<()> {
        self.node_story(tid, &step);
        match step {
            Step::EntryBegin(r, ep) => self.entry(tid, r, ep, None),
            Step::EntryEnd(r, ep, status) => self.entry(tid, r, ep, Some(status)),
            Step::ApiBegin(api, target) => self.api_begin(id, tid, api, target),
            Step::ApiEnd(api, target, status) => self.api_end(id, tid, api, target, status),
            Step::Block => {
                self.stack_block(id, tid);
                self.write_kernel(
                    tid,
                    KERNEL_THREAD,
                    36,
                    2,
                    &payloads::cswitch(
                        0,
                        tid,
                        payloads::WAIT_USER_REQUEST,
                        payloads::STATE_WAITING,
                    ),
                )
            }
            Step::Wake => {
                self.write_kernel(0, KERNEL_THREAD, 50, 2, &payloads::ready_thread(tid))?;
                self.write_kernel(
                    tid,
                    KERNEL_THREAD,
                    36,
                    2,
                    &payloads::cswitch(tid, 0, 0, payloads::STATE_RUNNING),
                )?;
                self.stack_wake(tid)
            }
            Step::CreateWorker(r, steps) => self.create_worker(tid, r, steps),
            Step::WorkerExit(r) => {
                self.res_line(tid, Some(r), "worker-exit".into())?;
                let name = self.resources[r].clone();
                self.write_tl(tid, "WorkerExit", &[("Resource", FieldValue::Str(name))])?;
                self.stack_thread_end(tid);
                self.write_kernel(tid, KERNEL_THREAD, 2, 3, &payloads::thread(RHS_PID, tid))
            }
            Step::Status(r, state) => {
                self.res_line(tid, Some(r), format!("resource-status {state}"))?;
                let name = self.resources[r].clone();
                self.write_tl(
                    tid,
                    "ResourceStatus",
                    &[
                        ("Resource", FieldValue::Str(name)),
                        ("State", FieldValue::Str(state.into())),
                    ],
                )
            }
            Step::DeadlockMonitor(r, ep) => {
                let text = format!(
                    "RhsCall::DeadlockMonitor: Call {} timed out for resource '{}'.",
                    nodelog::rhs_call(ep),
                    self.resources[r]
                );
                self.cluster_log(tid, &text)
            }
            Step::HandlingDeadlock(r) => {
                let text = format!(
                    "Resource {} handling deadlock. Cleaning current operation and terminating RHS process.",
                    self.resources[r]
                );
                self.cluster_log(tid, &text)
            }
            Step::Tick(t) => {
                scenario::tick(self, t);
                Ok(())
            }
            Step::RhsExit(_) => {
                self.stack_exit()?;
                self.write_kernel(
                    tid,
                    KERNEL_PROCESS,
                    2,
                    4,
                    &payloads::process(RHS_PID, 700, "rhs.exe"),
                )?;
                self.stopped = true;
                Ok(())
            }
        }
    }

    /// An entry point begins (no status) or returns (with its status).
    fn entry(
        &mut self,
        tid: u32,
        r: usize,
        ep: crate::model::EntryPoint,
        status: Option<u32>,
    ) -> io::Result<()> {
        let line = match status {
            None => format!("entry-point-begin {}", ep.name()),
            Some(status) => format!("entry-point-end {} status {status:#x}", ep.name()),
        };
        self.res_line(tid, Some(r), line)?;
        let mut fields = vec![
            ("Resource", FieldValue::Str(self.resources[r].clone())),
            ("ResourceType", FieldValue::Str(RESOURCE_TYPE.into())),
            ("EntryPoint", FieldValue::Str(ep.name().into())),
        ];
        let event = match status {
            None => "EntryPointBegin",
            Some(status) => {
                fields.push(("Status", FieldValue::Hex32(status)));
                "EntryPointEnd"
            }
        };
        self.write_tl(tid, event, &fields)
    }

    fn api_begin(&mut self, id: usize, tid: u32, api: String, target: String) -> io::Result<()> {
        let context = self.scripts[id].as_ref().and_then(|sc| sc.context);
        self.res_line(
            tid,
            context.map(|c| c.0),
            format!("api-call-begin {api} target {target}"),
        )?;
        if let Some((r, ep)) = context {
            let planted = self.plant_misuse(r, ep, &api, tid);
            if let Some(sc) = self.scripts[id].as_mut() {
                sc.open_calls.extend(planted);
            }
        }
        if let Some(sc) = self.scripts[id].as_mut() {
            sc.apis.push(api.clone());
        }
        self.write_tl(
            tid,
            "ApiCallBegin",
            &[
                ("Api", FieldValue::Str(api)),
                ("Target", FieldValue::Str(target)),
            ],
        )
    }

    fn api_end(
        &mut self,
        id: usize,
        tid: u32,
        api: String,
        target: String,
        status: u32,
    ) -> io::Result<()> {
        let context = self.scripts[id].as_ref().and_then(|sc| sc.context);
        self.res_line(
            tid,
            context.map(|c| c.0),
            format!("api-call-end {api} status {status:#x} target {target}"),
        )?;
        if let Some(sc) = self.scripts[id].as_mut() {
            sc.apis.pop();
        }
        let begun = self.scripts[id].as_mut().and_then(|sc| sc.open_calls.pop());
        if let Some(i) = begun {
            let begin = self.findings[i].begin.ns();
            self.findings[i].duration_ns = Some(self.ns(self.now) - begin);
        }
        self.write_tl(
            tid,
            "ApiCallEnd",
            &[
                ("Api", FieldValue::Str(api)),
                ("Target", FieldValue::Str(target)),
                ("Status", FieldValue::Hex32(status)),
            ],
        )
    }

    /// ClusWorkerCreate: the worker thread starts and runs `steps`.
    fn create_worker(&mut self, tid: u32, r: usize, steps: Vec<(i64, Step)>) -> io::Result<()> {
        // Thread ids of live threads are never handed out again: not an RHS
        // thread's (they live as long as RHS), nor an earlier worker's.
        let rhs_threads = Self::rhs_thread(0)..Self::rhs_thread(self.resources.len());
        while rhs_threads.contains(&self.next_worker)
            && self.next_worker % 4 == rhs_threads.start % 4
        {
            self.next_worker += 4;
        }
        let worker = self.next_worker;
        self.next_worker += 4;
        let payload = self
            .stack_worker_start(worker)
            .unwrap_or_else(|| payloads::thread(RHS_PID, worker));
        self.write_kernel(worker, KERNEL_THREAD, 1, 3, &payload)?;
        self.res_line(tid, Some(r), format!("worker-create {worker}"))?;
        let name = self.resources[r].clone();
        self.write_tl(
            tid,
            "WorkerCreate",
            &[
                ("Resource", FieldValue::Str(name)),
                ("Worker", FieldValue::U32(worker)),
            ],
        )?;
        // The worker's own events start a little later.
        let when = self.now + self.rng.between(MS / 10, MS);
        self.plant_pending_timeout(r, worker, when, &steps);
        self.spawn_in(worker, Some((r, None)), when, steps);
        Ok(())
    }
}
