//! What an event's payload decodes to, whichever decoder applies, and the
//! owned row form `rhscope dump` prints.

use super::extended::hex;
use super::kernel::{self, KernelEvent, Lifetime};
use super::known;
use super::record::{Event, Location};
use super::stackwalk::{self, ImageIdentity, StackRecord};
use super::stats::rfc3339;
use super::tracelogging::{self, Fields, TlEvent};
use super::{EtlError, Guid};

/// A decoded payload.
#[derive(Debug, Clone)]
pub enum Payload<'a> {
    TraceLogging(TlEvent<'a>),
    Kernel(KernelEvent),
    /// No decoder applies (manifest and classic events until a manifest is
    /// given, kernel events rhscope does not model, WPP).
    Raw,
}

impl<'a> Event<'a> {
    /// Decodes the payload with the decoder the event calls for.
    pub fn decode_payload(&self) -> Result<Payload<'a>, EtlError> {
        if let Some(tl) = tracelogging::decode(self) {
            return tl.map(Payload::TraceLogging);
        }
        if let Some(k) = kernel::decode(self) {
            return k.map(Payload::Kernel);
        }
        Ok(Payload::Raw)
    }
}

/// Name of a kernel event rhscope decodes, e.g. "Thread/DCStart".
pub fn kernel_event_name(k: &KernelEvent) -> String {
    let life = |l: &Lifetime| match l {
        Lifetime::Start => "Start",
        Lifetime::End => "End",
        Lifetime::DcStart => "DCStart",
        Lifetime::DcEnd => "DCEnd",
        Lifetime::Defunct => "Defunct",
    };
    match k {
        KernelEvent::Process { lifetime, .. } => format!("Process/{}", life(lifetime)),
        KernelEvent::Thread { lifetime, .. } => format!("Thread/{}", life(lifetime)),
        KernelEvent::CSwitch { .. } => "Thread/CSwitch".into(),
        KernelEvent::ReadyThread { .. } => "Thread/ReadyThread".into(),
        KernelEvent::StackWalk(r) => match r {
            StackRecord::Stack { .. } => "StackWalk/Stack".into(),
            StackRecord::KeyReference { kernel: true, .. } => "StackWalk/StackKeyKernel".into(),
            StackRecord::KeyReference { .. } => "StackWalk/StackKeyUser".into(),
            StackRecord::KeyDefinition { opcode, .. } => match *opcode {
                stackwalk::OPCODE_KEY_CREATE => "StackWalk/KeyCreate",
                stackwalk::OPCODE_KEY_DELETE => "StackWalk/KeyDelete",
                _ => "StackWalk/KeyRundown",
            }
            .into(),
        },
        KernelEvent::Image(i) => match i.opcode {
            stackwalk::OPCODE_IMAGE_LOAD => "Image/Load",
            stackwalk::OPCODE_IMAGE_UNLOAD => "Image/Unload",
            stackwalk::OPCODE_IMAGE_DC_START => "Image/DCStart",
            _ => "Image/DCEnd",
        }
        .into(),
        KernelEvent::ImageIdentity(ImageIdentity::ImageId { .. }) => "ImageID/ImageID".into(),
        KernelEvent::ImageIdentity(ImageIdentity::DbgIdRsds { .. }) => "ImageID/DbgID_RSDS".into(),
    }
}

/// One event as an owned, serialisable row.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventRow {
    pub time: String,
    pub timestamp: i64,
    pub cpu: u16,
    pub pid: Option<u32>,
    pub tid: Option<u32>,
    pub kind: &'static str,
    pub provider: Guid,
    pub provider_name: Option<String>,
    pub id: u16,
    pub version: u8,
    pub level: u8,
    pub opcode: u8,
    pub task: u16,
    pub keyword: String,
    pub event: Option<String>,
    pub fields: Option<serde_json::Value>,
    /// Payload hex where no decoder applied or decoding failed.
    pub payload: Option<String>,
    pub decode_error: Option<String>,
    pub location: Location,
    /// The stack walked with the event, frame by frame, innermost first
    /// (`dump --symbolize`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<Vec<String>>,
}

impl EventRow {
    pub fn new(ev: &Event<'_>) -> EventRow {
        let mut row = EventRow {
            time: rfc3339(ev.time_ns),
            timestamp: ev.timestamp,
            cpu: ev.cpu,
            pid: ev.process_id,
            tid: ev.thread_id,
            kind: ev.kind.name(),
            provider: ev.provider,
            provider_name: ev.provider_name().map(|n| n.into_owned()),
            id: ev.descriptor.id,
            version: ev.descriptor.version,
            level: ev.descriptor.level,
            opcode: ev.descriptor.opcode,
            task: ev.descriptor.task,
            keyword: format!("{:#x}", ev.descriptor.keyword),
            event: None,
            fields: None,
            payload: None,
            decode_error: None,
            location: ev.location,
            stack: None,
        };
        match ev.decode_payload() {
            Ok(Payload::TraceLogging(tl)) => {
                row.event = Some(tl.name.into_owned());
                row.fields = serde_json::to_value(Fields(&tl.fields)).ok();
            }
            Ok(Payload::Kernel(k)) => {
                row.event = Some(kernel_event_name(&k));
                row.fields = serde_json::to_value(&k).ok().map(|mut v| {
                    if let Some(obj) = v.as_object_mut() {
                        obj.remove("event");
                    }
                    v
                });
            }
            Ok(Payload::Raw) => {
                if ev.kernel_group.is_some() && ev.provider_name().is_some() {
                    let group = ev
                        .kernel_group
                        .and_then(known::kernel_group)
                        .map_or("Kernel", |g| g.name);
                    row.event = Some(format!(
                        "{}/opcode {}",
                        group.trim_start_matches("Kernel/"),
                        ev.descriptor.opcode
                    ));
                }
                row.payload = Some(hex(ev.payload));
            }
            Err(e) => {
                row.decode_error = Some(e.to_string());
                row.payload = Some(hex(ev.payload));
            }
        }
        row
    }
}
