//! A small writer of Windows event log files (.evtx), for tests: it makes files
//! that the `evtx` crate (0.15.x) reads with `EvtxParser::from_path(..)` /
//! `from_buffer(..)` and `records_json_value()`.
//!
//! Only `std`. Written from the format (MS-EVEN6) and
//! checked against what evtx 0.15.1 reads; no code of that crate is in here.
//!
//! What it writes:
//! - the 4096-byte file header block ("ElfFile\0", version 3.1, CRC32);
//! - 64 KiB chunks ("ElfChnk\0"), as many as the records need (a new chunk
//!   when the next record does not fit), each with its string table and both
//!   CRC32s filled in;
//! - one record per event, whose BinXML is a plain element tree (no template
//!   instances): fragment header, `<Event xmlns=..>` with `<System>` and
//!   `<EventData>`, EOF. Names are written inline the first time a chunk
//!   uses them and referenced by offset after that, as Windows does.
//!
//! Values in `<System>` are typed as in real logs (EventID UInt16, Level UInt8,
//! EventRecordID UInt64, ProcessID/ThreadID UInt32, SystemTime FILETIME,
//! Keywords HexInt64), so the crate's JSON has the same numbers real logs
//! give. `<Data>` values are always UTF-16 strings.
//!
//! Use from a test: `#[path = "common/evtx_writer.rs"] mod evtx_writer;`,
//! then `std::fs::write(&path, evtx_writer::write_evtx(&events))`.

// A test helper: not every test that includes it uses every function.
#![allow(dead_code)]

use std::collections::HashMap;

/// The FailoverClustering provider as the System log names it.
pub const FAILOVER_PROVIDER: &str = "Microsoft-Windows-FailoverClustering";
/// Its provider GUID, as `<Provider Guid=..>` renders it.
pub const FAILOVER_GUID: &str = "{BAF908EA-3421-4CA9-9B84-6689B8C6F85F}";
/// The namespace of `<Event>`.
pub const EVENT_XMLNS: &str = "http://schemas.microsoft.com/win/2004/08/events/event";
/// FILETIME (100 ns ticks since 1601-01-01 UTC) of 1970-01-01T00:00:00Z.
pub const FILETIME_UNIX_EPOCH: u64 = 116_444_736_000_000_000;

/// The file header block: the header proper is 128 bytes, the rest of the
/// 4096 bytes are zero. Chunks start at 4096.
const FILE_HEADER_BLOCK: usize = 4096;
/// Every chunk is 64 KiB.
const CHUNK_SIZE: usize = 65536;
/// The chunk header, string table and template table: records start at 512.
const CHUNK_HEADER_SIZE: usize = 512;
/// Record header: magic, size, record ID, FILETIME.
const RECORD_HEADER_SIZE: usize = 24;
/// "Keywords" of classic System-log events (the top bit, 0x8000000000000000,
/// is what FailoverClustering's System-channel events carry).
const CLASSIC_KEYWORDS: u64 = 0x8000_0000_0000_0000;

/// One event to write.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// `EventRecordID`, also the record header's ID. Unique and increasing
    /// within a file (see the note: the crate stops a chunk at its last ID).
    pub record_id: u64,
    /// `TimeCreated/@SystemTime` and the record header's time, as a FILETIME.
    pub time_filetime: u64,
    /// `Provider/@Name`.
    pub provider: &'a str,
    /// `Provider/@Guid`, with braces, e.g. [`FAILOVER_GUID`]. Written as a
    /// string value; it renders exactly as given.
    pub provider_guid: Option<&'a str>,
    pub event_id: u16,
    /// 1 critical, 2 error, 3 warning, 4 information.
    pub level: u8,
    /// `Channel`, e.g. "System".
    pub channel: &'a str,
    /// `Computer`.
    pub computer: &'a str,
    /// `Execution/@ProcessID` and `@ThreadID`.
    pub pid: u32,
    pub tid: u32,
    /// The `<Data>` elements of `<EventData>`, in order: an optional `Name`
    /// attribute and the text. An empty text writes `<Data/>`.
    pub data: Vec<(Option<String>, String)>,
}

impl Event<'static> {
    /// A FailoverClustering event of the System log on node "NODE1", with
    /// positional (unnamed) insertion strings.
    pub fn failover_system(
        record_id: u64,
        time_filetime: u64,
        event_id: u16,
        level: u8,
        data: &[&str],
    ) -> Event<'static> {
        Event {
            record_id,
            time_filetime,
            provider: FAILOVER_PROVIDER,
            provider_guid: Some(FAILOVER_GUID),
            event_id,
            level,
            channel: "System",
            computer: "NODE1",
            pid: 1234,
            tid: 5678,
            data: data.iter().map(|s| (None, s.to_string())).collect(),
        }
    }
}

/// The FILETIME of a time in nanoseconds since the Unix epoch (the inverse
/// of what the crate's record timestamp gives through `as_nanosecond()`, to
/// the 100 ns a FILETIME keeps).
pub fn filetime_from_unix_ns(unix_ns: i64) -> u64 {
    let ticks = i128::from(unix_ns).div_euclid(100) + i128::from(FILETIME_UNIX_EPOCH);
    u64::try_from(ticks).expect("time before 1601")
}

/// Nanoseconds since the Unix epoch of a FILETIME.
pub fn unix_ns_from_filetime(filetime: u64) -> i64 {
    ((i128::from(filetime) - i128::from(FILETIME_UNIX_EPOCH)) * 100) as i64
}

/// CRC-32 (IEEE 802.3: reflected, polynomial 0xEDB88320, initial value and
/// final XOR 0xFFFFFFFF), the one `crc32fast` computes, over `parts` in turn.
pub fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = 0xFFFF_FFFF_u32;
    for part in parts {
        for &byte in *part {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                // All ones when the low bit is set, else zero.
                let mask = (crc & 1).wrapping_neg();
                crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
            }
        }
    }
    !crc
}

/// MS-EVEN6's NameHash: hash = hash * 65599 + code unit over the name's UTF-16
/// code units, low 16 bits. (evtx does not check it for chunk names; Windows
/// uses it and its low 6 bits pick the string table bucket.)
fn name_hash(name: &str) -> u16 {
    let mut hash: u32 = 0;
    for unit in name.encode_utf16() {
        hash = hash.wrapping_mul(65599).wrapping_add(u32::from(unit));
    }
    hash as u16
}

/// Writes an .evtx file holding `events`, in the order given.
///
/// An empty slice gives a file of the header alone (no chunk), which the crate
/// reads as a log without records. Panics on an event too large for a chunk
/// (about 64 KiB of BinXML) or a string over 65535 UTF-16 code units.
pub fn write_evtx(events: &[Event<'_>]) -> Vec<u8> {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut current = Chunk::new();
    for event in events {
        if !current.try_push(event) {
            assert!(
                current.records > 0,
                "event record {} does not fit in an empty 64 KiB chunk",
                event.record_id
            );
            let full = std::mem::replace(&mut current, Chunk::new());
            chunks.push(full.finish());
            assert!(current.try_push(event), "fits in an empty chunk");
        }
    }
    if current.records > 0 {
        chunks.push(current.finish());
    }
    let next_record_id = events
        .iter()
        .map(|e| e.record_id)
        .max()
        .map_or(1, |id| id + 1);
    let mut file = file_header(chunks.len(), next_record_id);
    for chunk in &chunks {
        file.extend_from_slice(chunk);
    }
    file
}

/// The 4096-byte file header block.
///
/// | offset | size | field                                          |
/// |--------|------|------------------------------------------------|
/// | 0      | 8    | "ElfFile\0"                                    |
/// | 8      | 8    | first (oldest) chunk number: 0                 |
/// | 16     | 8    | last (current) chunk number: chunks - 1        |
/// | 24     | 8    | next record ID: highest ID + 1                 |
/// | 32     | 4    | header size: 128                               |
/// | 36     | 2    | minor version: 1                               |
/// | 38     | 2    | major version: 3                               |
/// | 40     | 2    | header block size: 4096                        |
/// | 42     | 2    | number of chunks                               |
/// | 44     | 76   | unknown, zero                                  |
/// | 120    | 4    | flags: 0 (not dirty, not full, CRC32 present)  |
/// | 124    | 4    | CRC32 of bytes 0..120                          |
/// | 128    | 3968 | zero                                           |
fn file_header(chunks: usize, next_record_id: u64) -> Vec<u8> {
    let chunk_count = u16::try_from(chunks).expect("at most 65535 chunks");
    let mut h = vec![0_u8; FILE_HEADER_BLOCK];
    h[0..8].copy_from_slice(b"ElfFile\0");
    h[8..16].copy_from_slice(&0_u64.to_le_bytes());
    h[16..24].copy_from_slice(&(chunks.saturating_sub(1) as u64).to_le_bytes());
    h[24..32].copy_from_slice(&next_record_id.to_le_bytes());
    h[32..36].copy_from_slice(&128_u32.to_le_bytes());
    h[36..38].copy_from_slice(&1_u16.to_le_bytes());
    h[38..40].copy_from_slice(&3_u16.to_le_bytes());
    h[40..42].copy_from_slice(&(FILE_HEADER_BLOCK as u16).to_le_bytes());
    h[42..44].copy_from_slice(&chunk_count.to_le_bytes());
    h[120..124].copy_from_slice(&0_u32.to_le_bytes());
    let checksum = crc32(&[&h[..120]]);
    h[124..128].copy_from_slice(&checksum.to_le_bytes());
    h
}

/// The names one chunk has defined so far. Name references are offsets from
/// the start of the chunk, so every chunk has its own.
#[derive(Debug, Clone, Default)]
struct Names {
    /// Name -> chunk offset of its name structure (its NextString field).
    offsets: HashMap<String, u32>,
    /// (offset, hash) of each name defined, in the order written.
    defined: Vec<(u32, u16)>,
}

/// A chunk being filled.
struct Chunk {
    /// The whole 64 KiB; the header is written by `finish`.
    buf: Vec<u8>,
    /// Where the next record goes (= the free space offset).
    used: usize,
    names: Names,
    first_id: u64,
    last_id: u64,
    /// Offset of the last record written.
    last_record_at: usize,
    records: usize,
}

impl Chunk {
    fn new() -> Chunk {
        Chunk {
            buf: vec![0; CHUNK_SIZE],
            used: CHUNK_HEADER_SIZE,
            names: Names::default(),
            first_id: 0,
            last_id: 0,
            last_record_at: 0,
            records: 0,
        }
    }

    /// Appends `event`'s record, or returns false, changing nothing, when it
    /// does not fit in what is left of the chunk.
    ///
    /// Record layout (all little-endian), at chunk offset `at`:
    ///
    /// | offset   | size | field                                        |
    /// |----------|------|----------------------------------------------|
    /// | 0        | 4    | magic 2A 2A 00 00                            |
    /// | 4        | 4    | size of the whole record (header to copy)    |
    /// | 8        | 8    | record ID                                    |
    /// | 16       | 8    | FILETIME                                     |
    /// | 24       | n    | BinXML: n = size - 28                        |
    /// | size - 4 | 4    | copy of the size                             |
    fn try_push(&mut self, event: &Event<'_>) -> bool {
        let at = self.used;
        // Names are added to a copy, kept only if the record fits: a record
        // that goes to the next chunk must define its names there.
        let mut names = self.names.clone();
        let binxml = encode_event(event, (at + RECORD_HEADER_SIZE) as u32, &mut names);
        let size = RECORD_HEADER_SIZE + binxml.len() + 4;
        if at + size > CHUNK_SIZE {
            return false;
        }
        let record = &mut self.buf[at..at + size];
        record[0..4].copy_from_slice(&[0x2a, 0x2a, 0x00, 0x00]);
        record[4..8].copy_from_slice(&(size as u32).to_le_bytes());
        record[8..16].copy_from_slice(&event.record_id.to_le_bytes());
        record[16..24].copy_from_slice(&event.time_filetime.to_le_bytes());
        record[RECORD_HEADER_SIZE..RECORD_HEADER_SIZE + binxml.len()].copy_from_slice(&binxml);
        record[size - 4..size].copy_from_slice(&(size as u32).to_le_bytes());
        if self.records == 0 {
            self.first_id = event.record_id;
        }
        self.last_id = event.record_id;
        self.last_record_at = at;
        self.used = at + size;
        self.records += 1;
        self.names = names;
        true
    }

    /// Fills in the string table and the chunk header, and returns the 64 KiB.
    ///
    /// Chunk header layout:
    ///
    /// | offset | size | field                                                |
    /// |--------|------|------------------------------------------------------|
    /// | 0      | 8    | "ElfChnk\0"                                          |
    /// | 8      | 8    | first event record number                            |
    /// | 16     | 8    | last event record number                             |
    /// | 24     | 8    | first event record ID                                |
    /// | 32     | 8    | last event record ID                                 |
    /// | 40     | 4    | header size: 128                                     |
    /// | 44     | 4    | offset of the last record                            |
    /// | 48     | 4    | free space offset (end of the last record)           |
    /// | 52     | 4    | CRC32 of the records: bytes 512..free space offset   |
    /// | 56     | 64   | unknown, zero                                        |
    /// | 120    | 4    | flags: 0                                             |
    /// | 124    | 4    | CRC32 of bytes 0..120 and 128..512                   |
    /// | 128    | 256  | string table: 64 u32 offsets (bucket = hash % 64)    |
    /// | 384    | 128  | template table: 32 u32 offsets (no templates: zero)  |
    ///
    /// Record numbers are set to the record IDs, as in a log that never
    /// wrapped around (the crate does not use them).
    fn finish(mut self) -> Vec<u8> {
        // String table: each bucket holds the offset of the first name whose
        // hash falls in it; each name's NextString field (its first 4 bytes)
        // links to the next name of the same bucket, 0 ending the chain.
        let mut heads = [0_u32; 64];
        let mut tails = [0_u32; 64];
        for &(offset, hash) in &self.names.defined {
            let bucket = usize::from(hash) % 64;
            if heads[bucket] == 0 {
                heads[bucket] = offset;
            } else {
                let tail = tails[bucket] as usize;
                self.buf[tail..tail + 4].copy_from_slice(&offset.to_le_bytes());
            }
            tails[bucket] = offset;
        }
        for (i, head) in heads.iter().enumerate() {
            let at = 128 + 4 * i;
            self.buf[at..at + 4].copy_from_slice(&head.to_le_bytes());
        }

        let b = &mut self.buf;
        b[0..8].copy_from_slice(b"ElfChnk\0");
        b[8..16].copy_from_slice(&self.first_id.to_le_bytes());
        b[16..24].copy_from_slice(&self.last_id.to_le_bytes());
        b[24..32].copy_from_slice(&self.first_id.to_le_bytes());
        b[32..40].copy_from_slice(&self.last_id.to_le_bytes());
        b[40..44].copy_from_slice(&128_u32.to_le_bytes());
        b[44..48].copy_from_slice(&(self.last_record_at as u32).to_le_bytes());
        b[48..52].copy_from_slice(&(self.used as u32).to_le_bytes());
        // The records' CRC32 first: the header's CRC32 covers where it is
        // stored (52..56), and the string table (128..384) too, which is why
        // both come after everything else is written.
        let events_crc = crc32(&[&b[CHUNK_HEADER_SIZE..self.used]]);
        b[52..56].copy_from_slice(&events_crc.to_le_bytes());
        b[120..124].copy_from_slice(&0_u32.to_le_bytes());
        let header_crc = crc32(&[&b[..120], &b[128..CHUNK_HEADER_SIZE]]);
        b[124..128].copy_from_slice(&header_crc.to_le_bytes());
        self.buf
    }
}

/// A value in the BinXML stream, with its MS-EVEN6 value type.
#[derive(Debug, Clone, Copy)]
enum Val<'v> {
    /// 0x01 StringType: u16 count of UTF-16 code units, then the code units
    /// (no NUL).
    Str(&'v str),
    /// 0x04 UInt8.
    U8(u8),
    /// 0x06 UInt16.
    U16(u16),
    /// 0x08 UInt32.
    U32(u32),
    /// 0x0A UInt64.
    U64(u64),
    /// 0x15 HexInt64 (renders "0x..." in lower-case hex).
    Hex64(u64),
    /// 0x11 FileTime (renders "YYYY-MM-DDThh:mm:ss.fffffffZ").
    FileTime(u64),
}

/// An element to write.
struct Elem<'v> {
    name: &'v str,
    attrs: Vec<(&'v str, Val<'v>)>,
    body: Body<'v>,
}

enum Body<'v> {
    /// `<name .../>`: CloseEmptyElement.
    Empty,
    /// `<name ...>value</name>`.
    Value(Val<'v>),
    /// `<name ...>children</name>`.
    Children(Vec<Elem<'v>>),
}

fn elem<'v>(name: &'v str, attrs: Vec<(&'v str, Val<'v>)>, body: Body<'v>) -> Elem<'v> {
    Elem { name, attrs, body }
}

/// `<name>value</name>`.
fn leaf<'v>(name: &'v str, value: Val<'v>) -> Elem<'v> {
    elem(name, Vec::new(), Body::Value(value))
}

/// `<name>text</name>`, or `<name/>` for an empty text.
fn text<'v>(name: &'v str, text: &'v str) -> Elem<'v> {
    if text.is_empty() {
        elem(name, Vec::new(), Body::Empty)
    } else {
        leaf(name, Val::Str(text))
    }
}

/// The element tree of one event, as Windows' System-log events have it:
///
/// ```xml
/// <Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">
///   <System>
///     <Provider Name=".." Guid=".."/>
///     <EventID>1230</EventID>
///     <Version>0</Version>
///     <Level>2</Level>
///     <Task>0</Task>
///     <Opcode>0</Opcode>
///     <Keywords>0x8000000000000000</Keywords>
///     <TimeCreated SystemTime=".."/>
///     <EventRecordID>7</EventRecordID>
///     <Correlation/>
///     <Execution ProcessID="1234" ThreadID="5678"/>
///     <Channel>System</Channel>
///     <Computer>NODE1</Computer>
///     <Security/>
///   </System>
///   <EventData>
///     <Data>..</Data> (or <Data Name="..">..</Data>)
///   </EventData>
/// </Event>
/// ```
fn event_tree<'v>(e: &'v Event<'_>) -> Elem<'v> {
    let mut provider_attrs = vec![("Name", Val::Str(e.provider))];
    if let Some(guid) = e.provider_guid {
        provider_attrs.push(("Guid", Val::Str(guid)));
    }
    let system = vec![
        elem("Provider", provider_attrs, Body::Empty),
        leaf("EventID", Val::U16(e.event_id)),
        leaf("Version", Val::U8(0)),
        leaf("Level", Val::U8(e.level)),
        leaf("Task", Val::U16(0)),
        leaf("Opcode", Val::U8(0)),
        leaf("Keywords", Val::Hex64(CLASSIC_KEYWORDS)),
        elem(
            "TimeCreated",
            vec![("SystemTime", Val::FileTime(e.time_filetime))],
            Body::Empty,
        ),
        leaf("EventRecordID", Val::U64(e.record_id)),
        elem("Correlation", Vec::new(), Body::Empty),
        elem(
            "Execution",
            vec![
                ("ProcessID", Val::U32(e.pid)),
                ("ThreadID", Val::U32(e.tid)),
            ],
            Body::Empty,
        ),
        text("Channel", e.channel),
        text("Computer", e.computer),
        elem("Security", Vec::new(), Body::Empty),
    ];
    let data: Vec<Elem<'v>> = e
        .data
        .iter()
        .map(|(name, value)| {
            let attrs = match name {
                Some(name) => vec![("Name", Val::Str(name.as_str()))],
                None => Vec::new(),
            };
            let body = if value.is_empty() {
                Body::Empty
            } else {
                Body::Value(Val::Str(value.as_str()))
            };
            elem("Data", attrs, body)
        })
        .collect();
    let event_data = if data.is_empty() {
        elem("EventData", Vec::new(), Body::Empty)
    } else {
        elem("EventData", Vec::new(), Body::Children(data))
    };
    elem(
        "Event",
        vec![("xmlns", Val::Str(EVENT_XMLNS))],
        Body::Children(vec![
            elem("System", Vec::new(), Body::Children(system)),
            event_data,
        ]),
    )
}

/// The BinXML of one record, which starts at chunk offset `base`:
///
/// ```text
/// 0F 01 01 00        fragment header: token, major 1, minor 1, flags 0
/// <Event ...>        element tree (see `BinXml::element`)
/// 00                 EOF
/// ```
fn encode_event(event: &Event<'_>, base: u32, names: &mut Names) -> Vec<u8> {
    let tree = event_tree(event);
    let mut w = BinXml {
        buf: Vec::with_capacity(1024),
        base,
        names,
    };
    w.bytes(&[0x0f, 0x01, 0x01, 0x00]);
    w.element(&tree);
    w.u8(0x00);
    w.buf
}

/// A BinXML stream being written at a known chunk offset (`base` is the
/// chunk offset of `buf[0]`), since name references are chunk offsets.
struct BinXml<'n> {
    buf: Vec<u8>,
    base: u32,
    names: &'n mut Names,
}

impl BinXml<'_> {
    /// Chunk offset of the next byte written.
    fn pos(&self) -> u32 {
        self.base + self.buf.len() as u32
    }

    fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    /// Overwrites the u32 at `buf[at..at + 4]`.
    fn patch_u32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// Count-prefixed UTF-16LE text (no NUL): u16 code units, then them.
    fn counted_utf16(&mut self, s: &str) {
        let units: Vec<u16> = s.encode_utf16().collect();
        let count = u16::try_from(units.len()).expect("string over 65535 UTF-16 code units");
        self.u16(count);
        for unit in units {
            self.u16(unit);
        }
    }

    /// A name reference: a u32 chunk offset of the name structure. The first
    /// time the chunk uses a name, the structure follows the reference
    /// directly, and the reference holds the offset of its own end (that is
    /// how readers tell an inline name from a reference to an earlier one):
    ///
    /// ```text
    /// u32  offset of the name structure (= chunk offset of the next byte)
    /// -- name structure, when inline --
    /// u32  NextString: next name of the same string-table bucket (0 = none;
    ///      patched by Chunk::finish)
    /// u16  NameHash (see name_hash)
    /// u16  number of UTF-16 code units, without the NUL
    /// ..   the code units
    /// u16  NUL
    /// ```
    fn name_ref(&mut self, name: &str) {
        if let Some(&offset) = self.names.offsets.get(name) {
            self.u32(offset);
            return;
        }
        let offset = self.pos() + 4;
        self.u32(offset);
        self.u32(0);
        let hash = name_hash(name);
        self.u16(hash);
        self.counted_utf16(name);
        self.u16(0);
        self.names.offsets.insert(name.to_string(), offset);
        self.names.defined.push((offset, hash));
    }

    /// A value: ValueText token 0x05 (0x45 would say more content follows;
    /// each value here is alone), the value type, the value.
    fn value(&mut self, v: Val<'_>) {
        self.u8(0x05);
        match v {
            Val::Str(s) => {
                self.u8(0x01);
                self.counted_utf16(s);
            }
            Val::U8(x) => {
                self.u8(0x04);
                self.u8(x);
            }
            Val::U16(x) => {
                self.u8(0x06);
                self.u16(x);
            }
            Val::U32(x) => {
                self.u8(0x08);
                self.u32(x);
            }
            Val::U64(x) => {
                self.u8(0x0a);
                self.u64(x);
            }
            Val::Hex64(x) => {
                self.u8(0x15);
                self.u64(x);
            }
            Val::FileTime(x) => {
                self.u8(0x11);
                self.u64(x);
            }
        }
    }

    /// An element outside a template definition:
    ///
    /// ```text
    /// 01 (41 with attributes)   OpenStartElement; NO DependencyId (u16),
    ///                           which only template definitions carry
    /// u32  ElementByteLength: bytes after this field up to and including
    ///      the element's EndElement / CloseEmptyElement token
    /// ..   name reference (see name_ref)
    /// -- with attributes --
    /// u32  AttributeListByteLength: bytes after this field up to, not
    ///      including, the CloseStartElement / CloseEmptyElement token
    /// per attribute: 46 (06 for the last) Attribute, name reference, value
    /// --
    /// 03                        CloseEmptyElement, for <name .../>
    /// or 02 content.. 04        CloseStartElement, content, EndElement
    /// ```
    ///
    /// (evtx skips both lengths; they are right here for other readers.)
    fn element(&mut self, e: &Elem<'_>) {
        let has_attrs = !e.attrs.is_empty();
        self.u8(if has_attrs { 0x41 } else { 0x01 });
        let size_at = self.buf.len();
        self.u32(0);
        self.name_ref(e.name);
        if has_attrs {
            let attrs_at = self.buf.len();
            self.u32(0);
            for (i, (name, value)) in e.attrs.iter().enumerate() {
                let last = i + 1 == e.attrs.len();
                self.u8(if last { 0x06 } else { 0x46 });
                self.name_ref(name);
                self.value(*value);
            }
            let attrs_len = (self.buf.len() - attrs_at - 4) as u32;
            self.patch_u32(attrs_at, attrs_len);
        }
        match &e.body {
            Body::Empty => self.u8(0x03),
            Body::Value(v) => {
                self.u8(0x02);
                self.value(*v);
                self.u8(0x04);
            }
            Body::Children(children) => {
                self.u8(0x02);
                for child in children {
                    self.element(child);
                }
                self.u8(0x04);
            }
        }
        let len = (self.buf.len() - size_at - 4) as u32;
        self.patch_u32(size_at, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    fn sample() -> Vec<Event<'static>> {
        let t = filetime_from_unix_ns(1_362_730_381_001_000_000);
        vec![
            Event::failover_system(
                1,
                t,
                1230,
                2,
                &["TSM-Server-TSM1", "Generic Service", "clusres.dll"],
            ),
            Event::failover_system(2, t + 10_000_000, 1146, 1, &[]),
            Event::failover_system(
                3,
                t + 20_000_000,
                1069,
                2,
                &["TSM-Server-TSM1", "Generic Service", "TSM"],
            ),
        ]
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
        assert_eq!(crc32(&[b"1234", b"56789"]), 0xCBF4_3926);
        assert_eq!(crc32(&[]), 0);
    }

    #[test]
    fn filetime_round_trip() {
        let ns = 1_362_730_381_001_000_000;
        assert_eq!(unix_ns_from_filetime(filetime_from_unix_ns(ns)), ns);
        assert_eq!(filetime_from_unix_ns(0), FILETIME_UNIX_EPOCH);
    }

    #[test]
    fn layout_and_checksums() {
        let file = write_evtx(&sample());
        assert_eq!(file.len(), FILE_HEADER_BLOCK + CHUNK_SIZE);
        assert_eq!(&file[..8], b"ElfFile\0");
        assert_eq!(u32_at(&file, 124), crc32(&[&file[..120]]));
        assert_eq!(u64_at(&file, 24), 4);
        assert_eq!(u16::from_le_bytes([file[42], file[43]]), 1);

        let chunk = &file[FILE_HEADER_BLOCK..];
        assert_eq!(&chunk[..8], b"ElfChnk\0");
        assert_eq!((u64_at(chunk, 24), u64_at(chunk, 32)), (1, 3));
        let free = u32_at(chunk, 48) as usize;
        assert_eq!(u32_at(chunk, 52), crc32(&[&chunk[512..free]]));
        assert_eq!(
            u32_at(chunk, 124),
            crc32(&[&chunk[..120], &chunk[128..512]])
        );

        // Walk the records by their sizes.
        let mut at = 512;
        let mut ids = Vec::new();
        while at < free {
            assert_eq!(&chunk[at..at + 4], &[0x2a, 0x2a, 0, 0]);
            let size = u32_at(chunk, at + 4) as usize;
            assert_eq!(u32_at(chunk, at + size - 4) as usize, size);
            assert_eq!(&chunk[at + 24..at + 28], &[0x0f, 1, 1, 0]);
            assert_eq!(chunk[at + size - 5], 0x00, "EOF ends the BinXML");
            ids.push(u64_at(chunk, at + 8));
            if u64_at(chunk, at + 8) == 3 {
                assert_eq!(u32_at(chunk, 44) as usize, at);
            }
            at += size;
        }
        assert_eq!(at, free);
        assert_eq!(ids, [1, 2, 3]);

        // Every string-table entry is a name structure, and its chain ends.
        for bucket in 0..64 {
            let mut offset = u32_at(chunk, 128 + 4 * bucket) as usize;
            while offset != 0 {
                assert!(offset > 512 && offset < free);
                let chars = u16::from_le_bytes([chunk[offset + 6], chunk[offset + 7]]) as usize;
                let nul = offset + 8 + 2 * chars;
                assert_eq!(&chunk[nul..nul + 2], &[0, 0]);
                offset = u32_at(chunk, offset) as usize;
            }
        }
    }

    #[test]
    fn records_spill_into_more_chunks() {
        let long = "x".repeat(4000);
        let events: Vec<Event<'static>> = (1..=40)
            .map(|id| {
                Event::failover_system(id, FILETIME_UNIX_EPOCH + id, 1230, 2, &[long.as_str()])
            })
            .collect();
        let file = write_evtx(&events);
        let chunks = (file.len() - FILE_HEADER_BLOCK) / CHUNK_SIZE;
        assert!(chunks > 1);
        assert_eq!(
            usize::from(u16::from_le_bytes([file[42], file[43]])),
            chunks
        );
        assert_eq!((file.len() - FILE_HEADER_BLOCK) % CHUNK_SIZE, 0);
    }

    #[test]
    fn no_events_no_chunks() {
        let file = write_evtx(&[]);
        assert_eq!(file.len(), FILE_HEADER_BLOCK);
        assert_eq!(u64_at(&file, 24), 1);
    }

    /// What the `evtx` crate reads back (rhscope's `evtx` feature).
    #[cfg(feature = "evtx")]
    #[test]
    fn evtx_crate_reads_it() {
        let file = write_evtx(&sample());
        let mut parser = evtx::EvtxParser::from_buffer(file)
            .unwrap()
            .with_configuration(evtx::ParserSettings::new().validate_checksums(true));
        let records: Vec<_> = parser
            .records_json_value()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(records.len(), 3);
        let r = &records[0];
        assert_eq!(r.event_record_id, 1);
        assert_eq!(r.timestamp.as_nanosecond(), 1_362_730_381_001_000_000);
        let system = &r.data["Event"]["System"];
        assert_eq!(system["Provider"]["#attributes"]["Name"], FAILOVER_PROVIDER);
        assert_eq!(system["EventID"], 1230);
        assert_eq!(system["EventRecordID"], 1);
        assert_eq!(system["Execution"]["#attributes"]["ProcessID"], 1234);
        assert_eq!(system["Execution"]["#attributes"]["ThreadID"], 5678);
        assert_eq!(
            r.data["Event"]["EventData"]["Data"]["#text"],
            serde_json::json!(["TSM-Server-TSM1", "Generic Service", "clusres.dll"])
        );
        // No <Data>: EventData renders as null.
        assert!(records[1].data["Event"]["EventData"].is_null());
    }
}
