//! The Windows side: real-time ETW sessions and file replay through
//! ferrisetw. Kept small: it copies each EVENT_RECORD into a [`RawEvent`]
//! and hands it to a channel; everything after that is OS-neutral.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use ferrisetw::parser::{Parser, Pointer};
use ferrisetw::provider::Provider;
use ferrisetw::schema_locator::SchemaLocator;
use ferrisetw::trace::{
    stop_trace_by_name, DumpFileParams, FileTrace, KernelTrace, TraceError, TraceTrait, UserTrace,
};
use ferrisetw::EventRecord;
use windows::Win32::System::Diagnostics::Etw::EVENT_RECORD;

use super::compare::DecodedEvent;
use super::event::RawEvent;
use super::plan::{kernel_path, CaptureError, Enable, SessionPlan, KERNEL_SESSION};
use crate::read::etl::{Descriptor, Guid};

fn guid(g: &windows::core::GUID) -> Guid {
    Guid::from_fields(g.data1, g.data2, g.data3, g.data4)
}

fn win_guid(g: &Guid) -> windows::core::GUID {
    windows::core::GUID::from_u128(u128::from_be_bytes({
        // Guid's little-endian fields to the big-endian u128 GUID layout.
        let b = g.to_le_bytes();
        [
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
            b[14], b[15],
        ]
    }))
}

/// Copies what rhscope needs out of an EVENT_RECORD.
fn raw_event(sequence: u64, record: &EventRecord) -> RawEvent {
    // SAFETY: ferrisetw's EventRecord is #[repr(transparent)] over
    // EVENT_RECORD, and the record is valid for the callback's duration.
    let er: &EVENT_RECORD = unsafe { &*(record as *const EventRecord).cast::<EVENT_RECORD>() };
    let bytes = |p: *const u8, n: usize| -> Vec<u8> {
        if p.is_null() || n == 0 {
            Vec::new()
        } else {
            // SAFETY: ETW gives the pointer and its length together.
            unsafe { std::slice::from_raw_parts(p, n) }.to_vec()
        }
    };
    let mut items: Vec<(u16, Vec<u8>)> = Vec::new();
    if !er.ExtendedData.is_null() {
        for i in 0..usize::from(er.ExtendedDataCount) {
            // SAFETY: ExtendedData points at ExtendedDataCount items.
            let item = unsafe { &*er.ExtendedData.add(i) };
            items.push((
                item.ExtType,
                bytes(
                    item.DataPtr as usize as *const u8,
                    usize::from(item.DataSize),
                ),
            ));
        }
    }
    let h = &er.EventHeader;
    let d = &h.EventDescriptor;
    let item_refs: Vec<(u16, &[u8])> = items.iter().map(|(t, d)| (*t, &d[..])).collect();
    // SAFETY: both union members are plain integers over the same bytes.
    let cpu = unsafe { er.BufferContext.Anonymous.ProcessorIndex };
    let mut raw = RawEvent::new(
        sequence,
        guid(&h.ProviderId),
        Descriptor {
            id: d.Id,
            version: d.Version,
            channel: d.Channel,
            level: d.Level,
            opcode: d.Opcode,
            task: d.Task,
            keyword: d.Keyword,
        },
        Some(h.ProcessId),
        Some(h.ThreadId),
        h.TimeStamp,
        cpu,
        h.Flags,
        &item_refs,
        bytes(er.UserData as *const u8, usize::from(er.UserDataLength)),
    );
    raw.event_property = h.EventProperty;
    raw.activity_id = guid(&h.ActivityId);
    raw
}

fn os_error(e: &TraceError, what: &str, session: &str) -> CaptureError {
    match e {
        TraceError::EtwNativeError(ferrisetw::native::EvntraceNativeError::AlreadyExist) => {
            CaptureError::SessionExists(session.to_string())
        }
        TraceError::EtwNativeError(ferrisetw::native::EvntraceNativeError::IoError(io)) => {
            CaptureError::from_os(io.raw_os_error().unwrap_or(0) as u32, what, session, None)
        }
        other => CaptureError::Os {
            what: format!("{what}: {other:?}"),
            code: 0,
        },
    }
}

/// A running capture: the user session and, if asked for, the kernel one.
/// Dropping it stops both (ferrisetw stops sessions on drop), so no
/// session is left behind on an error or a panic.
pub struct Capture {
    user: Option<UserTrace>,
    kernel: Option<KernelTrace>,
    session: String,
}

fn callback(tx: Sender<RawEvent>, seq: Arc<AtomicU64>) -> impl FnMut(&EventRecord, &SchemaLocator) {
    let tx = Mutex::new(tx);
    move |record: &EventRecord, _: &SchemaLocator| {
        let n = seq.fetch_add(1, Ordering::Relaxed) + 1;
        if let Ok(tx) = tx.lock() {
            // A closed channel means the consumer is gone: nothing to do.
            let _ = tx.send(raw_event(n, record));
        }
    }
}

impl Capture {
    /// Starts the sessions of `plan`, writing `etl` (and, with the kernel
    /// session, `<etl stem>.kernel.etl`) and sending every event to `tx`.
    /// With `force`, a session of the same name is stopped first.
    pub fn start(
        plan: &SessionPlan,
        etl: &Path,
        force: bool,
        tx: Sender<RawEvent>,
    ) -> Result<Capture, CaptureError> {
        if force {
            let _ = stop_trace_by_name(&plan.session);
            if plan.kernel_flags.is_some() {
                let _ = stop_trace_by_name(KERNEL_SESSION);
            }
        }
        let seq = Arc::new(AtomicU64::new(0));
        let mut builder = UserTrace::new().named(plan.session.clone());
        for p in &plan.providers {
            builder = builder.enable(
                Provider::by_guid(win_guid(&p.guid))
                    .level(p.level)
                    .any(p.keywords)
                    .add_callback(callback(tx.clone(), seq.clone()))
                    .build(),
            );
        }
        let user = builder
            .set_etl_dump_file(DumpFileParams {
                file_path: etl.to_path_buf(),
                ..DumpFileParams::default()
            })
            .start_and_process()
            .map_err(|e| os_error(&e, "starting the session", &plan.session))?;
        let kernel = match plan.kernel_flags {
            None => None,
            Some(flags) => {
                use super::plan::KERNEL_PROCESS;
                use ferrisetw::provider::kernel_providers::{
                    KernelProvider, PROCESS_PROVIDER, THREAD_PROVIDER,
                };
                // ferrisetw hands an event to the providers whose GUID is
                // its group's: one provider per group, flags combined.
                let mut builder = KernelTrace::new().named(KERNEL_SESSION.to_string());
                for (group, bits) in [
                    (PROCESS_PROVIDER.guid, flags & KERNEL_PROCESS),
                    (THREAD_PROVIDER.guid, flags & !KERNEL_PROCESS),
                ] {
                    if bits != 0 {
                        builder = builder.enable(
                            Provider::kernel(&KernelProvider::new(group, bits))
                                .add_callback(callback(tx.clone(), seq.clone()))
                                .build(),
                        );
                    }
                }
                let trace = builder
                    .set_etl_dump_file(DumpFileParams {
                        file_path: kernel_path(etl),
                        ..DumpFileParams::default()
                    })
                    .start_and_process()
                    .map_err(|e| os_error(&e, "starting the kernel session", KERNEL_SESSION))?;
                enable_stacks(KERNEL_SESSION)?;
                Some(trace)
            }
        };
        Ok(Capture {
            user: Some(user),
            kernel,
            session: plan.session.clone(),
        })
    }

    /// Stops the sessions; ETW flushes the .etl files and delivers what it
    /// still holds, then the event channel closes.
    pub fn stop(mut self) -> Result<(), CaptureError> {
        let mut first = None;
        if let Some(k) = self.kernel.take() {
            if let Err(e) = k.stop() {
                first.get_or_insert(os_error(&e, "stopping the kernel session", KERNEL_SESSION));
            }
        }
        if let Some(u) = self.user.take() {
            if let Err(e) = u.stop() {
                first.get_or_insert(os_error(&e, "stopping the session", &self.session));
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// Asks the kernel session to walk stacks on the plan's stack events
/// (TraceStackTracingInfo): ferrisetw does not expose the session's
/// control handle, so it is queried by the session's name.
fn enable_stacks(session: &str) -> Result<(), CaptureError> {
    use std::mem::size_of;
    use windows::core::PCWSTR;
    use windows::Win32::System::Diagnostics::Etw::{
        ControlTraceW, TraceSetInformation, TraceStackTracingInfo, CLASSIC_EVENT_ID,
        CONTROLTRACE_HANDLE, EVENT_TRACE_CONTROL_QUERY, EVENT_TRACE_PROPERTIES,
    };
    let fail = |code: u32, what: &str| CaptureError::from_os(code, what, session, None);
    // EVENT_TRACE_PROPERTIES, then room for the session and file names
    // (u64s keep the structure aligned).
    let props_len = size_of::<EVENT_TRACE_PROPERTIES>();
    let mut buf = vec![0u64; (props_len + 2048).div_ceil(8)];
    let props = buf.as_mut_ptr().cast::<EVENT_TRACE_PROPERTIES>();
    let name: Vec<u16> = session.encode_utf16().chain([0]).collect();
    // SAFETY: `buf` is zeroed, aligned and large enough for the structure
    // and the two name strings whose offsets it is given; ControlTraceW
    // writes only within BufferSize.
    let handle = unsafe {
        (*props).Wnode.BufferSize = (buf.len() * 8) as u32;
        (*props).LoggerNameOffset = props_len as u32;
        (*props).LogFileNameOffset = (props_len + 1024) as u32;
        let err = ControlTraceW(
            CONTROLTRACE_HANDLE::default(),
            PCWSTR(name.as_ptr()),
            props,
            EVENT_TRACE_CONTROL_QUERY,
        );
        if err.0 != 0 {
            return Err(fail(err.0, "querying the kernel session for stack walking"));
        }
        CONTROLTRACE_HANDLE {
            Value: (*props).Wnode.Anonymous1.HistoricalContext,
        }
    };
    let thread_group = crate::read::etl::known::kernel_group(crate::read::etl::known::GROUP_THREAD)
        .map(|g| g.guid)
        .unwrap_or(Guid::NIL);
    let ids: Vec<CLASSIC_EVENT_ID> = super::plan::STACK_EVENTS
        .iter()
        .map(|(opcode, _, _)| CLASSIC_EVENT_ID {
            EventGuid: win_guid(&thread_group),
            Type: *opcode,
            Reserved: [0; 7],
        })
        .collect();
    // SAFETY: `ids` is a live array of CLASSIC_EVENT_ID of the length
    // given.
    let err = unsafe {
        TraceSetInformation(
            handle,
            TraceStackTracingInfo,
            ids.as_ptr().cast(),
            (ids.len() * size_of::<CLASSIC_EVENT_ID>()) as u32,
        )
    };
    if err.0 != 0 {
        return Err(fail(err.0, "asking the kernel session for stacks"));
    }
    Ok(())
}

/// Providers of the plan that Windows does not know by GUID (manifest
/// providers that are not installed); TraceLogging providers never are
/// registered and are not listed.
pub fn unregistered(plan: &SessionPlan, manifest_guids: &[Guid]) -> Vec<Enable> {
    plan.providers
        .iter()
        .filter(|p| manifest_guids.contains(&p.guid))
        .filter(|p| Provider::by_name(&p.name).is_err())
        .cloned()
        .collect()
}

/// Replays a file through Windows' reader: its events, in the order ETW
/// delivers them, on a channel that closes at the end of the file.
pub fn replay(path: &Path) -> Result<Receiver<RawEvent>, CaptureError> {
    let (tx, rx) = channel();
    let seq = Arc::new(AtomicU64::new(0));
    let (trace, handle) = FileTrace::new(path.to_path_buf(), callback(tx, seq))
        .start()
        .map_err(|e| os_error(&e, &format!("opening {}", path.display()), "file"))?;
    std::thread::spawn(move || {
        let _ = FileTrace::process_from_handle(handle);
        // Closing the trace drops the callback and its sender.
        drop(trace);
    });
    Ok(rx)
}

/// What TDH decodes of a file's events: for each event, the fields named in
/// `names` (by provider, id, version: the native decoder's field names).
pub fn windows_decode(
    path: &Path,
    names: HashMap<(Guid, u16, u8), Vec<String>>,
) -> Result<Vec<DecodedEvent>, CaptureError> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = out.clone();
    let cb = move |record: &EventRecord, locator: &SchemaLocator| {
        let raw = raw_event(0, record);
        let key = (raw.provider, raw.descriptor.id, raw.descriptor.version);
        let mut fields = Vec::new();
        if let (Some(wanted), Ok(schema)) = (names.get(&key), locator.event_schema(record)) {
            let parser = Parser::create(record, &schema);
            for name in wanted {
                if let Some(v) = parse_any(&parser, name) {
                    fields.push((name.clone(), v));
                }
            }
        }
        let e = DecodedEvent {
            timestamp: raw.timestamp,
            provider: raw.provider,
            id: raw.descriptor.id,
            version: raw.descriptor.version,
            opcode: raw.descriptor.opcode,
            level: raw.descriptor.level,
            pid: raw.process_id,
            tid: raw.thread_id,
            fields,
        };
        if let Ok(mut v) = sink.lock() {
            v.push(e);
        }
    };
    let (trace, handle) = FileTrace::new(path.to_path_buf(), cb)
        .start()
        .map_err(|e| os_error(&e, &format!("opening {}", path.display()), "file"))?;
    FileTrace::process_from_handle(handle)
        .map_err(|e| os_error(&e, &format!("reading {}", path.display()), "file"))?;
    drop(trace);
    let v = out.lock().map(|v| v.clone()).unwrap_or_default();
    Ok(v)
}

/// A property as text, by whichever type TDH accepts for it.
fn parse_any(p: &Parser, name: &str) -> Option<String> {
    if let Ok(s) = p.try_parse::<String>(name) {
        return Some(s);
    }
    macro_rules! try_num {
        ($($t:ty),*) => {$(
            if let Ok(v) = p.try_parse::<$t>(name) {
                return Some(v.to_string());
            }
        )*};
    }
    try_num!(u64, i64, u32, i32, u16, i16, u8, i8, f64, f32, bool);
    if let Ok(g) = p.try_parse::<windows::core::GUID>(name) {
        return Some(guid(&g).to_string());
    }
    if let Ok(ptr) = p.try_parse::<Pointer>(name) {
        return Some(format!("{:#x}", *ptr));
    }
    None
}
