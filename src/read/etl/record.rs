//! Records inside a buffer: the header kinds Windows writes, finding record
//! boundaries (cheap, done for every record) and decoding a record's header
//! into an [`Event`] (done when the record is handed out).

use zerocopy::little_endian::{I64, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

use super::buffer::{BufferInfo, BUFFER_HEADER_SIZE};
use super::cursor::{read_struct, Cursor};
use super::error::{EtlError, Result};
use super::extended::ExtendedData;
use super::guid::Guid;
use super::known;

/// The record header kinds; the names are the keys `stats --json` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HeaderKind {
    /// SYSTEM_TRACE_HEADER: kernel events with thread, process and times.
    System,
    /// The compact system header: no kernel/user times.
    Compact,
    /// PERFINFO_TRACE_HEADER: high-rate kernel events (context switches).
    Perfinfo,
    /// EVENT_HEADER: manifest and TraceLogging events (Vista and later).
    EventHeader,
    /// EVENT_TRACE_HEADER: classic (MOF) events with a GUID.
    FullHeader,
    /// EVENT_INSTANCE_GUID_HEADER: classic events with instance ids.
    Instance,
    /// WPP / TraceMessage records.
    Wpp,
}

impl HeaderKind {
    pub const ALL: [HeaderKind; 7] = [
        HeaderKind::System,
        HeaderKind::Compact,
        HeaderKind::Perfinfo,
        HeaderKind::EventHeader,
        HeaderKind::FullHeader,
        HeaderKind::Instance,
        HeaderKind::Wpp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HeaderKind::System => "system",
            HeaderKind::Compact => "compact",
            HeaderKind::Perfinfo => "perfinfo",
            HeaderKind::EventHeader => "event_header",
            HeaderKind::FullHeader => "full_header",
            HeaderKind::Instance => "instance",
            HeaderKind::Wpp => "wpp",
        }
    }

    /// Bytes of fixed header before the payload (WPP headers vary).
    fn header_len(self) -> usize {
        match self {
            HeaderKind::System => 0x20,
            HeaderKind::Compact => 0x18,
            HeaderKind::Perfinfo => 0x10,
            HeaderKind::EventHeader => 0x50,
            HeaderKind::FullHeader => 0x30,
            HeaderKind::Instance => 0x48,
            HeaderKind::Wpp => 0x08,
        }
    }

    /// True where the record size is in the second u16 (Packet.Size).
    fn size_in_packet(self) -> bool {
        matches!(
            self,
            HeaderKind::System | HeaderKind::Compact | HeaderKind::Perfinfo
        )
    }
}

// Marker top-byte flags (evntrace.h TRACE_HEADER_FLAG, TRACE_HEADER_EVENT_TRACE,
// TRACE_MESSAGE).
const TRACE_HEADER_FLAG: u32 = 0x8000_0000;
const TRACE_HEADER_EVENT_TRACE: u32 = 0x4000_0000;
const TRACE_MESSAGE: u32 = 0x1000_0000;

/// Header kind and pointer size (4 or 8) from a record's first u32.
pub fn classify(marker: u32) -> Option<(HeaderKind, u8)> {
    if marker & (TRACE_HEADER_FLAG | TRACE_HEADER_EVENT_TRACE)
        == TRACE_HEADER_FLAG | TRACE_HEADER_EVENT_TRACE
    {
        let kind = match (marker >> 16) & 0xff {
            0x01 => (HeaderKind::System, 4),
            0x02 => (HeaderKind::System, 8),
            0x03 => (HeaderKind::Compact, 4),
            0x04 => (HeaderKind::Compact, 8),
            0x10 => (HeaderKind::Perfinfo, 4),
            0x11 => (HeaderKind::Perfinfo, 8),
            0x12 => (HeaderKind::EventHeader, 4),
            0x13 => (HeaderKind::EventHeader, 8),
            0x0a => (HeaderKind::FullHeader, 4),
            0x14 => (HeaderKind::FullHeader, 8),
            0x0b => (HeaderKind::Instance, 4),
            0x15 => (HeaderKind::Instance, 8),
            _ => return None,
        };
        return Some(kind);
    }
    if marker & (TRACE_HEADER_FLAG | TRACE_HEADER_EVENT_TRACE | TRACE_MESSAGE)
        == TRACE_HEADER_FLAG | TRACE_MESSAGE
    {
        // The pointer size is in the option flags; decode() reads it there.
        return Some((HeaderKind::Wpp, 8));
    }
    None
}

/// Where a record is and what the cheap scan learned about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSlot {
    /// Offset of the record within its buffer's (decompressed) bytes.
    pub offset: u32,
    pub size: u32,
    pub kind: HeaderKind,
    pub pointer_size: u8,
    pub timestamp: i64,
}

/// Finds the records of one buffer. A record that does not fit, or an
/// unknown marker, ends the buffer: the rest is skipped and reported.
pub fn scan(bytes: &[u8], info: &BufferInfo, slots: &mut Vec<RecordSlot>) -> Option<EtlError> {
    let end = bytes.len();
    let mut pos = BUFFER_HEADER_SIZE;
    let mut last_ts = info.timestamp;
    let at = |pos: usize| info.offset + if info.compressed { 0 } else { pos as u64 };
    while pos + 4 <= end {
        let marker =
            u32::from_le_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]);
        if marker == u32::MAX {
            // Fill pattern: ETW pads the unused end of a buffer with 0xFF.
            break;
        }
        let Some((kind, pointer_size)) = classify(marker) else {
            return Some(EtlError::corrupt(
                "record",
                at(pos),
                format!(
                    "unknown record marker {marker:#010x}{}; rest of buffer at {:#x} skipped",
                    in_compressed(info, pos),
                    info.offset
                ),
            ));
        };
        let size = if kind.size_in_packet() {
            match bytes.get(pos + 4..pos + 6) {
                Some(b) => u16::from_le_bytes([b[0], b[1]]) as usize,
                None => 0,
            }
        } else {
            (marker & 0xffff) as usize
        };
        if size < kind.header_len() || pos + size > end {
            return Some(EtlError::corrupt(
                "record",
                at(pos),
                format!(
                    "{} record of size {size} does not fit ({} bytes of buffer left){}",
                    kind.name(),
                    end - pos,
                    in_compressed(info, pos)
                ),
            ));
        }
        let record = &bytes[pos..pos + size];
        let timestamp = match kind {
            HeaderKind::Perfinfo => le_i64(record, 8),
            HeaderKind::Wpp => wpp_timestamp(record).unwrap_or(last_ts),
            _ => le_i64(record, 0x10),
        };
        last_ts = timestamp;
        slots.push(RecordSlot {
            offset: pos as u32,
            size: size as u32,
            kind,
            pointer_size,
            timestamp,
        });
        pos += (size + 7) & !7;
    }
    None
}

fn in_compressed(info: &BufferInfo, pos: usize) -> String {
    if info.compressed {
        format!(" (offset {pos:#x} in the decompressed buffer)")
    } else {
        String::new()
    }
}

fn le_i64(b: &[u8], at: usize) -> i64 {
    b.get(at..at + 8)
        .map(|s| i64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
        .unwrap_or(0)
}

// TRACE_MESSAGE_* option flags of a WPP record (evntrace.h).
const MSG_SEQUENCE: u16 = 0x01;
const MSG_GUID: u16 = 0x02;
const MSG_COMPONENTID: u16 = 0x04;
const MSG_TIMESTAMP: u16 = 0x08;
const MSG_PERFORMANCE_TIMESTAMP: u16 = 0x10;
const MSG_SYSTEMINFO: u16 = 0x20;

/// The optional fields of a WPP record header, in the order they are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct WppHeader {
    pub message_number: u16,
    pub flags: u16,
    pub sequence: Option<u32>,
    pub guid: Option<Guid>,
    pub component_id: Option<u32>,
    pub timestamp: Option<i64>,
    pub thread_id: Option<u32>,
    pub process_id: Option<u32>,
    pub header_len: usize,
}

fn wpp_header(record: &[u8], base: u64) -> Result<WppHeader> {
    let mut c = Cursor::new(record, base);
    c.skip(4, "WPP marker")?;
    let message_number = c.u16("WPP message number")?;
    let flags = c.u16("WPP option flags")?;
    let mut h = WppHeader {
        message_number,
        flags,
        ..Default::default()
    };
    if flags & MSG_SEQUENCE != 0 {
        h.sequence = Some(c.u32("WPP sequence number")?);
    }
    if flags & MSG_GUID != 0 {
        h.guid = Some(c.guid("WPP message GUID")?);
    } else if flags & MSG_COMPONENTID != 0 {
        h.component_id = Some(c.u32("WPP component id")?);
    }
    if flags & (MSG_TIMESTAMP | MSG_PERFORMANCE_TIMESTAMP) != 0 {
        h.timestamp = Some(c.i64("WPP timestamp")?);
    }
    if flags & MSG_SYSTEMINFO != 0 {
        h.thread_id = Some(c.u32("WPP thread id")?);
        h.process_id = Some(c.u32("WPP process id")?);
    }
    h.header_len = c.position();
    Ok(h)
}

fn wpp_timestamp(record: &[u8]) -> Option<i64> {
    wpp_header(record, 0).ok()?.timestamp
}

/// SYSTEM_TRACE_HEADER (0x20 bytes); the compact header is its first 0x18.
#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct SystemTraceHeader {
    version: U16,
    header_type: u8,
    marker_flags: u8,
    size: U16,
    opcode: u8,
    group: u8,
    thread_id: U32,
    process_id: U32,
    system_time: I64,
}

/// PERFINFO_TRACE_HEADER (0x10 bytes).
#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct PerfinfoTraceHeader {
    version: U16,
    header_type: u8,
    marker_flags: u8,
    size: U16,
    opcode: u8,
    group: u8,
    system_time: I64,
}

/// EVENT_HEADER as stored in a buffer (0x50 bytes).
#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct EventHeaderRecord {
    size: U16,
    header_type: U16,
    flags: U16,
    event_property: U16,
    thread_id: U32,
    process_id: U32,
    timestamp: I64,
    provider_id: [u8; 16],
    id: U16,
    version: u8,
    channel: u8,
    level: u8,
    opcode: u8,
    task: U16,
    keyword: U64,
    processor_time: U64,
    activity_id: [u8; 16],
}

/// EVENT_TRACE_HEADER (0x30 bytes); EVENT_INSTANCE_GUID_HEADER extends it.
#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct ClassicHeader {
    size: U16,
    header_type: u8,
    marker_flags: u8,
    opcode: u8,
    level: u8,
    version: U16,
    thread_id: U32,
    process_id: U32,
    timestamp: I64,
    guid: [u8; 16],
    processor_time: U64,
}

#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct InstanceTail {
    instance_id: U32,
    parent_instance_id: U32,
    parent_guid: [u8; 16],
}

/// EVENT_DESCRIPTOR fields. Classic and kernel records fill opcode, level
/// and version only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Descriptor {
    pub id: u16,
    pub version: u8,
    pub channel: u8,
    pub level: u8,
    pub opcode: u8,
    pub task: u16,
    pub keyword: u64,
}

/// Instance ids of an EVENT_INSTANCE_GUID_HEADER record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct InstanceIds {
    pub instance_id: u32,
    pub parent_instance_id: u32,
    pub parent_guid: Guid,
}

/// Where a record was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    /// File offset of the buffer holding the record.
    pub buffer_offset: u64,
    /// Offset of the record within the buffer, decompressed if it was.
    pub record_offset: u32,
    pub compressed: bool,
}

impl Location {
    /// The record's own file offset, where it has one (records of
    /// compressed buffers exist only after decompression).
    pub fn file_offset(&self) -> Option<u64> {
        (!self.compressed).then_some(self.buffer_offset + u64::from(self.record_offset))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.file_offset() {
            Some(o) => write!(f, "byte offset {o}"),
            None => write!(
                f,
                "offset {:#x} of compressed buffer at byte offset {}",
                self.record_offset, self.buffer_offset
            ),
        }
    }
}

/// One decoded record header with its payload, borrowed from its buffer.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub location: Location,
    /// Bytes of the whole record, header included.
    pub size: u32,
    pub kind: HeaderKind,
    /// Pointer size of the process that logged the event (4 or 8).
    pub pointer_size: u8,
    /// Raw timestamp as stored (QPC ticks, FILETIME or CPU cycles).
    pub timestamp: i64,
    /// Absolute time, nanoseconds since 1970-01-01 UTC.
    pub time_ns: i64,
    pub cpu: u16,
    pub process_id: Option<u32>,
    pub thread_id: Option<u32>,
    /// Provider GUID; for kernel records the GUID of their event group,
    /// nil where the group has none known.
    pub provider: Guid,
    /// Kernel event group (the HookId's high byte) for system, compact and
    /// perfinfo records.
    pub kernel_group: Option<u8>,
    pub descriptor: Descriptor,
    /// EVENT_HEADER flags, or the marker flags of other kinds.
    pub header_flags: u16,
    pub event_property: u16,
    pub activity_id: Option<Guid>,
    pub extended: ExtendedData<'a>,
    pub instance: Option<InstanceIds>,
    pub wpp: Option<WppHeader>,
    pub payload: &'a [u8],
}

impl<'a> Event<'a> {
    /// Decodes the record header of `slot` from its buffer bytes.
    pub fn decode(bytes: &'a [u8], slot: &RecordSlot, info: &BufferInfo) -> Result<Event<'a>> {
        let start = slot.offset as usize;
        Event::decode_record(&bytes[start..start + slot.size as usize], slot, info)
    }

    /// Decodes the record of `slot` from its own bytes (`slot.size` of
    /// them, wherever they are now: copied out of the buffer, say).
    pub fn decode_record(
        record: &'a [u8],
        slot: &RecordSlot,
        info: &BufferInfo,
    ) -> Result<Event<'a>> {
        let location = Location {
            buffer_offset: info.offset,
            record_offset: slot.offset,
            compressed: info.compressed,
        };
        let base = location.file_offset().unwrap_or(info.offset);
        let rebase = |e: EtlError| e.rebased(base);
        let mut ev = Event {
            location,
            size: slot.size,
            kind: slot.kind,
            pointer_size: slot.pointer_size,
            timestamp: slot.timestamp,
            time_ns: 0,
            cpu: info.processor,
            process_id: None,
            thread_id: None,
            provider: Guid::NIL,
            kernel_group: None,
            descriptor: Descriptor::default(),
            header_flags: 0,
            event_property: 0,
            activity_id: None,
            extended: ExtendedData::empty(),
            instance: None,
            wpp: None,
            payload: &[],
        };
        match slot.kind {
            HeaderKind::System | HeaderKind::Compact => {
                let h: &SystemTraceHeader =
                    read_struct(record, 0, "system header").map_err(rebase)?;
                ev.thread_id = Some(h.thread_id.get());
                ev.process_id = Some(h.process_id.get());
                ev.kernel(h.group, h.opcode, h.version.get(), h.marker_flags);
                ev.payload = &record[slot.kind.header_len()..];
            }
            HeaderKind::Perfinfo => {
                let h: &PerfinfoTraceHeader =
                    read_struct(record, 0, "perfinfo header").map_err(rebase)?;
                ev.kernel(h.group, h.opcode, h.version.get(), h.marker_flags);
                ev.payload = &record[slot.kind.header_len()..];
            }
            HeaderKind::EventHeader => {
                let h: &EventHeaderRecord =
                    read_struct(record, 0, "event header").map_err(rebase)?;
                ev.thread_id = Some(h.thread_id.get());
                ev.process_id = Some(h.process_id.get());
                ev.provider = Guid::from_le_bytes(h.provider_id);
                ev.descriptor = Descriptor {
                    id: h.id.get(),
                    version: h.version,
                    channel: h.channel,
                    level: h.level,
                    opcode: h.opcode,
                    task: h.task.get(),
                    keyword: h.keyword.get(),
                };
                ev.header_flags = h.flags.get();
                ev.event_property = h.event_property.get();
                let activity = Guid::from_le_bytes(h.activity_id);
                ev.activity_id = (!activity.is_nil()).then_some(activity);
                // The header's own 32/64-bit flags win over the marker's.
                if ev.header_flags & 0x20 != 0 {
                    ev.pointer_size = 4;
                } else if ev.header_flags & 0x40 != 0 {
                    ev.pointer_size = 8;
                }
                let mut rest = &record[0x50..];
                if ev.header_flags & 0x01 != 0 {
                    let (ext, after) = ExtendedData::split(rest, base + 0x50)?;
                    ev.extended = ext;
                    rest = after;
                }
                ev.payload = rest;
            }
            HeaderKind::FullHeader | HeaderKind::Instance => {
                let h: &ClassicHeader =
                    read_struct(record, 0, "classic event header").map_err(rebase)?;
                ev.thread_id = Some(h.thread_id.get());
                ev.process_id = Some(h.process_id.get());
                ev.provider = Guid::from_le_bytes(h.guid);
                ev.descriptor.opcode = h.opcode;
                ev.descriptor.level = h.level;
                ev.descriptor.version = h.version.get().min(255) as u8;
                ev.header_flags = u16::from(h.marker_flags);
                if slot.kind == HeaderKind::Instance {
                    let t: &InstanceTail =
                        read_struct(record, 0x30, "instance header").map_err(rebase)?;
                    ev.instance = Some(InstanceIds {
                        instance_id: t.instance_id.get(),
                        parent_instance_id: t.parent_instance_id.get(),
                        parent_guid: Guid::from_le_bytes(t.parent_guid),
                    });
                }
                ev.payload = &record[slot.kind.header_len()..];
            }
            HeaderKind::Wpp => {
                let w = wpp_header(record, base)?;
                ev.thread_id = w.thread_id;
                ev.process_id = w.process_id;
                ev.provider = w.guid.unwrap_or(Guid::NIL);
                ev.descriptor.id = w.message_number;
                ev.header_flags = w.flags;
                if w.flags & 0x40 != 0 {
                    ev.pointer_size = 4;
                }
                ev.payload = &record[w.header_len..];
                ev.wpp = Some(w);
            }
        }
        Ok(ev)
    }

    fn kernel(&mut self, group: u8, opcode: u8, version: u16, marker_flags: u8) {
        self.kernel_group = Some(group);
        self.provider = known::kernel_group(group)
            .map(|g| g.guid)
            .unwrap_or(Guid::NIL);
        self.descriptor.opcode = opcode;
        self.descriptor.version = version.min(255) as u8;
        self.header_flags = u16::from(marker_flags);
    }

    /// Provider name where the trace or rhscope knows it: TraceLogging
    /// provider traits, the kernel group, or a well-known GUID.
    pub fn provider_name(&self) -> Option<std::borrow::Cow<'a, str>> {
        if let Some(name) = self.extended.provider_name() {
            return Some(name);
        }
        if let Some(group) = self.kernel_group {
            return Some(match known::kernel_group(group) {
                Some(g) => std::borrow::Cow::Borrowed(g.name),
                None => std::borrow::Cow::Owned(format!("Kernel/Group{group:#04x}")),
            });
        }
        known::provider_name(&self.provider).map(std::borrow::Cow::Borrowed)
    }

    /// Absolute time as a chrono value.
    pub fn time(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_nanos(self.time_ns)
    }
}
