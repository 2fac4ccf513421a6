//! What ETW hands a consumer for one event (an EVENT_RECORD), as owned
//! bytes with no Windows types, and the adapter that turns it into the
//! reader's [`Event`]: live and replayed events then go through the same
//! decoders and provider definitions as events read from a file. Built and
//! tested on every OS; only filling a `RawEvent` from a live record is
//! Windows code (`session.rs`).

use crate::read::etl::extended::encode_items;
use crate::read::etl::header::FILETIME_UNIX_EPOCH;
use crate::read::etl::{
    known, Descriptor, EtlError, Event, ExtendedData, Guid, HeaderKind, Location,
};

/// EVENT_HEADER flags that matter here.
pub const FLAG_EXTENDED_INFO: u16 = 0x0001;
pub const FLAG_32_BIT_HEADER: u16 = 0x0020;
pub const FLAG_64_BIT_HEADER: u16 = 0x0040;
pub const FLAG_CLASSIC_HEADER: u16 = 0x0100;

/// One event as ETW delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    /// Position in the session or file (1-based), for evidence.
    pub sequence: u64,
    pub provider: Guid,
    pub descriptor: Descriptor,
    /// None where the record has none (some kernel records).
    pub process_id: Option<u32>,
    pub thread_id: Option<u32>,
    /// EVENT_HEADER.TimeStamp: a FILETIME (ETW's default for consumers).
    pub timestamp: i64,
    /// BufferContext.ProcessorNumber.
    pub cpu: u16,
    pub header_flags: u16,
    pub event_property: u16,
    pub activity_id: Guid,
    /// Extended data items in their on-disk layout.
    extended: Vec<u8>,
    pub payload: Vec<u8>,
}

impl RawEvent {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        sequence: u64,
        provider: Guid,
        descriptor: Descriptor,
        process_id: Option<u32>,
        thread_id: Option<u32>,
        timestamp: i64,
        cpu: u16,
        header_flags: u16,
        extended: &[(u16, &[u8])],
        payload: Vec<u8>,
    ) -> RawEvent {
        RawEvent {
            sequence,
            provider,
            descriptor,
            process_id,
            thread_id,
            timestamp,
            cpu,
            header_flags,
            event_property: 0,
            activity_id: Guid::NIL,
            extended: encode_items(extended),
            payload,
        }
    }

    /// The same event as the native reader saw it in a file (to replay a
    /// file as if it were live, and to compare readers).
    pub fn from_event(sequence: u64, ev: &Event<'_>, filetime: i64) -> RawEvent {
        let items: Vec<(u16, &[u8])> = ev.extended.raw_items().collect();
        // ETW marks the logger's pointer size in the flags; in a file the
        // record's marker says it.
        let width = if ev.pointer_size == 4 {
            FLAG_32_BIT_HEADER
        } else {
            FLAG_64_BIT_HEADER
        };
        let flags = if ev.kind == HeaderKind::EventHeader {
            ev.header_flags & !(FLAG_32_BIT_HEADER | FLAG_64_BIT_HEADER) | width
        } else {
            FLAG_CLASSIC_HEADER | width
        };
        let mut raw = RawEvent::new(
            sequence,
            ev.provider,
            ev.descriptor,
            ev.process_id,
            ev.thread_id,
            filetime,
            ev.cpu,
            flags,
            &items,
            ev.payload.to_vec(),
        );
        raw.event_property = ev.event_property;
        raw.activity_id = ev.activity_id.unwrap_or(Guid::NIL);
        raw
    }

    /// Nanoseconds since 1970-01-01 UTC.
    pub fn time_ns(&self) -> i64 {
        self.timestamp
            .saturating_sub(FILETIME_UNIX_EPOCH)
            .saturating_mul(100)
    }

    /// The reader's view of this event. Classic kernel events (a kernel
    /// session's) are recognised by their group GUID, as in a file.
    pub fn event(&self) -> Result<Event<'_>, EtlError> {
        let (extended, rest) = if self.extended.is_empty() {
            (ExtendedData::empty(), &[][..])
        } else {
            ExtendedData::split(&self.extended, 0)?
        };
        if !rest.is_empty() {
            return Err(EtlError::corrupt(
                "extended data items",
                0,
                "bytes after the last item",
            ));
        }
        let classic = self.header_flags & FLAG_CLASSIC_HEADER != 0;
        let kernel_group = known::kernel_group_by_guid(&self.provider).map(|g| g.group);
        Ok(Event {
            // No file offset: decoding errors give offsets in the payload.
            location: Location {
                buffer_offset: 0,
                record_offset: 0,
                compressed: true,
            },
            size: 0,
            kind: match (classic, kernel_group) {
                (true, Some(_)) => HeaderKind::System,
                (true, None) => HeaderKind::FullHeader,
                (false, _) => HeaderKind::EventHeader,
            },
            pointer_size: if self.header_flags & FLAG_32_BIT_HEADER != 0 {
                4
            } else {
                8
            },
            timestamp: self.timestamp,
            time_ns: self.time_ns(),
            cpu: self.cpu,
            process_id: self.process_id,
            thread_id: self.thread_id,
            provider: self.provider,
            kernel_group: kernel_group.filter(|_| classic),
            descriptor: self.descriptor,
            header_flags: self.header_flags,
            event_property: self.event_property,
            activity_id: (self.activity_id != Guid::NIL).then_some(self.activity_id),
            extended,
            instance: None,
            wpp: None,
            payload: &self.payload,
        })
    }
}
