//! Kernel (classic MOF) events the analysis needs: process and thread
//! lifetimes, context switches and ready-thread events, decoded by group,
//! opcode and version, with 32- and 64-bit layouts.

use super::cursor::{ansi_lossy, Cursor};
use super::error::Result;
use super::known::{self, GROUP_IMAGE, GROUP_PROCESS, GROUP_STACKWALK, GROUP_THREAD};
use super::record::Event;
use super::stackwalk::{
    self, ImageIdentity, ImageRecord, StackRecord, OPCODE_IMAGE_DC_END, OPCODE_IMAGE_LOAD,
    OPCODE_IMAGE_UNLOAD,
};

pub const OPCODE_START: u8 = 1;
pub const OPCODE_END: u8 = 2;
pub const OPCODE_DC_START: u8 = 3;
pub const OPCODE_DC_END: u8 = 4;
pub const OPCODE_PROCESS_DEFUNCT: u8 = 39;
pub const OPCODE_CSWITCH: u8 = 36;
pub const OPCODE_READY_THREAD: u8 = 50;

/// Which lifetime event a process or thread record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifetime {
    Start,
    End,
    /// Already running when the trace started (rundown at start).
    DcStart,
    /// Still running when the trace stopped (rundown at end).
    DcEnd,
    /// Exited, but its object still existed at rundown.
    Defunct,
}

fn lifetime(opcode: u8) -> Option<Lifetime> {
    Some(match opcode {
        OPCODE_START => Lifetime::Start,
        OPCODE_END => Lifetime::End,
        OPCODE_DC_START => Lifetime::DcStart,
        OPCODE_DC_END => Lifetime::DcEnd,
        OPCODE_PROCESS_DEFUNCT => Lifetime::Defunct,
        _ => return None,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum KernelEvent {
    Process {
        lifetime: Lifetime,
        process_id: u32,
        parent_id: u32,
        session_id: u32,
        exit_status: i32,
        unique_process_key: u64,
        user_sid: Option<String>,
        image_file_name: String,
        command_line: Option<String>,
    },
    Thread {
        lifetime: Lifetime,
        process_id: u32,
        thread_id: u32,
        /// Where the thread began running user code (Win32StartAddr),
        /// version 2 and later.
        #[serde(skip_serializing_if = "Option::is_none")]
        start_address: Option<u64>,
    },
    /// A context switch on the record's CPU from `old_thread_id` to
    /// `new_thread_id`.
    CSwitch {
        new_thread_id: u32,
        old_thread_id: u32,
        new_thread_priority: i8,
        old_thread_priority: i8,
        previous_c_state: u8,
        old_thread_wait_reason: u8,
        old_thread_wait_mode: u8,
        old_thread_state: u8,
        old_thread_wait_ideal_processor: u8,
        new_thread_wait_time: u32,
    },
    /// `thread_id` was made ready to run (by the record's thread, when the
    /// header names one).
    ReadyThread {
        thread_id: u32,
        adjust_reason: i8,
        adjust_increment: i8,
        flag: i8,
    },
    /// A stack walk record.
    StackWalk(StackRecord),
    /// An image load, unload or rundown.
    Image(ImageRecord),
    /// KernelTraceControl's identity of an image.
    ImageIdentity(ImageIdentity),
}

/// The kernel group of an event: from its system/perfinfo header, or from
/// its provider GUID for classic records of a kernel provider.
fn group_of(event: &Event<'_>) -> Option<u8> {
    event
        .kernel_group
        .or_else(|| known::kernel_group_by_guid(&event.provider).map(|g| g.group))
}

/// Decodes the kernel events rhscope models; None for anything else
/// (including versions whose layout it does not know).
pub fn decode(event: &Event<'_>) -> Option<Result<KernelEvent>> {
    if let Some(id) = stackwalk::image_identity(event) {
        return Some(id.map(KernelEvent::ImageIdentity));
    }
    let group = group_of(event)?;
    let op = event.descriptor.opcode;
    let version = event.descriptor.version;
    let base = event
        .location
        .file_offset()
        .unwrap_or(event.location.buffer_offset);
    let mut c = Cursor::new(event.payload, base);
    let ptr = event.pointer_size;
    match (group, op) {
        // Windows 10 logs live image loads under the Process group.
        (GROUP_PROCESS, OPCODE_IMAGE_LOAD) => {
            stackwalk::image_record(event).map(|r| r.map(KernelEvent::Image))
        }
        (GROUP_PROCESS, _) if version >= 2 => {
            let lifetime = lifetime(op)?;
            Some(process(&mut c, lifetime, version, ptr))
        }
        (GROUP_THREAD, OPCODE_START..=OPCODE_DC_END) => {
            let lifetime = lifetime(op)?;
            Some((|| {
                let (a, b) = (
                    c.u32("thread event first id")?,
                    c.u32("thread event second id")?,
                );
                // Version 0 put the thread id first.
                let (process_id, thread_id) = if version == 0 { (b, a) } else { (a, b) };
                // StackBase, StackLimit, UserStackBase, UserStackLimit,
                // StartAddr (v2) or Affinity (v3+), then Win32StartAddr.
                let start_address = if version >= 2 && c.remaining() >= 6 * usize::from(ptr) {
                    c.skip(5 * usize::from(ptr), "thread stack bounds")?;
                    Some(c.pointer(ptr, "thread start address")?)
                } else {
                    None
                };
                Ok(KernelEvent::Thread {
                    lifetime,
                    process_id,
                    thread_id,
                    start_address,
                })
            })())
        }
        (GROUP_THREAD, OPCODE_CSWITCH) if version >= 2 => Some((|| {
            Ok(KernelEvent::CSwitch {
                new_thread_id: c.u32("CSwitch new thread id")?,
                old_thread_id: c.u32("CSwitch old thread id")?,
                new_thread_priority: c.u8("CSwitch new thread priority")? as i8,
                old_thread_priority: c.u8("CSwitch old thread priority")? as i8,
                previous_c_state: c.u8("CSwitch previous C-state")?,
                old_thread_wait_reason: {
                    c.skip(1, "CSwitch spare byte")?;
                    c.u8("CSwitch old thread wait reason")?
                },
                old_thread_wait_mode: c.u8("CSwitch old thread wait mode")?,
                old_thread_state: c.u8("CSwitch old thread state")?,
                old_thread_wait_ideal_processor: c.u8("CSwitch wait ideal processor")?,
                new_thread_wait_time: c.u32("CSwitch new thread wait time")?,
            })
        })()),
        (GROUP_STACKWALK, _) => {
            stackwalk::stack_record(event).map(|r| r.map(KernelEvent::StackWalk))
        }
        (GROUP_IMAGE, OPCODE_IMAGE_UNLOAD..=OPCODE_IMAGE_DC_END | OPCODE_IMAGE_LOAD) => {
            stackwalk::image_record(event).map(|r| r.map(KernelEvent::Image))
        }
        (GROUP_THREAD, OPCODE_READY_THREAD) if version >= 2 => Some((|| {
            Ok(KernelEvent::ReadyThread {
                thread_id: c.u32("ReadyThread thread id")?,
                adjust_reason: c.u8("ReadyThread adjust reason")? as i8,
                adjust_increment: c.u8("ReadyThread adjust increment")? as i8,
                flag: c.u8("ReadyThread flag")? as i8,
            })
        })()),
        _ => None,
    }
}

fn process(c: &mut Cursor<'_>, lifetime: Lifetime, version: u8, ptr: u8) -> Result<KernelEvent> {
    let unique_process_key = c.pointer(ptr, "process key")?;
    let process_id = c.u32("process id")?;
    let parent_id = c.u32("parent process id")?;
    let session_id = c.u32("session id")?;
    let exit_status = c.u32("exit status")? as i32;
    if version >= 3 {
        c.pointer(ptr, "directory table base")?;
    }
    if version >= 4 {
        c.u32("process flags")?;
    }
    // The user SID is a TOKEN_USER (two pointer-sized words) followed by the
    // SID, or a single zero u32 when the process has no token.
    let user_sid = if c.rest().get(..4) == Some(&[0, 0, 0, 0]) {
        c.skip(4, "empty user SID")?;
        None
    } else {
        c.skip(2 * usize::from(ptr), "TOKEN_USER")?;
        let sid = c.sid("process user SID")?;
        Some(sid)
    };
    let image_file_name = ansi_lossy(c.cstr("process image file name")?);
    let command_line = c.utf16z("process command line").ok();
    Ok(KernelEvent::Process {
        lifetime,
        process_id,
        parent_id,
        session_id,
        exit_status,
        unique_process_key,
        user_sid,
        image_file_name,
        command_line,
    })
}

/// KWAIT_REASON names, as WPA and xperf show them.
pub fn wait_reason_name(reason: u8) -> &'static str {
    const NAMES: [&str; 41] = [
        "Executive",
        "FreePage",
        "PageIn",
        "PoolAllocation",
        "DelayExecution",
        "Suspended",
        "UserRequest",
        "WrExecutive",
        "WrFreePage",
        "WrPageIn",
        "WrPoolAllocation",
        "WrDelayExecution",
        "WrSuspended",
        "WrUserRequest",
        "WrEventPair",
        "WrQueue",
        "WrLpcReceive",
        "WrLpcReply",
        "WrVirtualMemory",
        "WrPageOut",
        "WrRendezvous",
        "WrKeyedEvent",
        "WrTerminated",
        "WrProcessInSwap",
        "WrCpuRateControl",
        "WrCalloutStack",
        "WrKernel",
        "WrResource",
        "WrPushLock",
        "WrMutex",
        "WrQuantumEnd",
        "WrDispatchInt",
        "WrPreempted",
        "WrYieldExecution",
        "WrFastMutex",
        "WrGuardedMutex",
        "WrRundown",
        "WrAlertByThreadId",
        "WrDeferredPreempt",
        "WrPhysicalFault",
        "WrIoRing",
    ];
    NAMES.get(usize::from(reason)).copied().unwrap_or("Unknown")
}

/// KTHREAD_STATE names.
pub fn thread_state_name(state: u8) -> &'static str {
    const NAMES: [&str; 10] = [
        "Initialized",
        "Ready",
        "Running",
        "Standby",
        "Terminated",
        "Waiting",
        "Transition",
        "DeferredReady",
        "GateWaitObsolete",
        "WaitingForProcessInSwap",
    ];
    NAMES.get(usize::from(state)).copied().unwrap_or("Unknown")
}
