//! Writes .etl files in the layout Windows writes: a header buffer holding
//! the TRACE_LOGFILE_HEADER record, then per-CPU buffers of a chosen size
//! flushed as they fill, records 8-byte aligned, unused space filled with
//! 0xFF, optionally compressed like a relogged file. Synthetic traces made
//! with it go through exactly the reader real files do.

use std::collections::BTreeMap;
use std::io::{self, Seek, SeekFrom, Write};

use super::buffer::{BUFFER_HEADER_SIZE, COMPRESSION_LZ77, FLAG_COMPRESSED, MAX_BUFFER_SIZE};
use super::guid::Guid;
use super::header::EVENT_TRACE_COMPRESSED_MODE;
use super::lz77;
use super::record::Descriptor;

/// What the trace header says about the recording.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Bytes per buffer (header included), 8-byte multiple, at least 1 KiB.
    pub buffer_size: u32,
    /// Compress data buffers (XPRESS plain LZ77), as relogged files do.
    pub compress: bool,
    /// Pointer size of the logging machine (4 or 8): header layouts and
    /// record header kinds follow it.
    pub pointer_size: u8,
    pub perf_freq: i64,
    /// Raw QPC timestamp of the header record and the FILETIME it stands for.
    pub start_raw: i64,
    pub start_filetime: i64,
    pub boot_filetime: i64,
    pub number_of_processors: u32,
    /// OS version (major, minor, sub, subminor) and build.
    pub os_version: [u8; 4],
    pub os_build: u32,
    pub logger_name: String,
    pub log_file_name: String,
    pub logger_id: u16,
    /// Events lost, as the header reports them.
    pub events_lost: u32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            buffer_size: 64 * 1024,
            compress: false,
            pointer_size: 8,
            perf_freq: 10_000_000,
            start_raw: 1_000_000_000,
            // 2026-01-01T00:00:00Z
            start_filetime: 134_116_992_000_000_000,
            boot_filetime: 134_116_982_000_000_000,
            number_of_processors: 2,
            os_version: [10, 0, 1, 5],
            os_build: 20348,
            logger_name: "rhscope".into(),
            log_file_name: "rhscope.etl".into(),
            logger_id: 1,
            events_lost: 0,
        }
    }
}

/// Kinds of kernel header (system, compact, perfinfo).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelHeader {
    System,
    Compact,
    Perfinfo,
}

/// An EVENT_HEADER record to write.
#[derive(Debug, Clone, Default)]
pub struct EventRecord {
    pub thread_id: u32,
    pub process_id: u32,
    pub timestamp: i64,
    pub provider: Guid,
    pub descriptor: Descriptor,
    pub activity_id: Guid,
    /// Extended data items: (EVENT_HEADER_EXT_TYPE, data).
    pub extended: Vec<(u16, Vec<u8>)>,
    pub payload: Vec<u8>,
}

/// Counts of what was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteSummary {
    pub buffers: u32,
    pub records: u64,
    pub bytes: u64,
}

struct CpuBuffer {
    data: Vec<u8>,
    last_ts: i64,
}

/// Streams records into an .etl file. Call [`TraceWriter::finish`] at the
/// end: it flushes every CPU's buffer and rewrites the header buffer with
/// the final counts.
pub struct TraceWriter<W: Write + Seek> {
    out: W,
    opts: WriterOptions,
    cpus: BTreeMap<u16, CpuBuffer>,
    header_len: u64,
    summary: WriteSummary,
    end_raw: i64,
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

impl<W: Write + Seek> TraceWriter<W> {
    pub fn new(mut out: W, opts: WriterOptions) -> io::Result<TraceWriter<W>> {
        if opts.buffer_size < 1024
            || opts.buffer_size % 8 != 0
            || opts.buffer_size > MAX_BUFFER_SIZE
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "buffer size {} is not a multiple of 8 in 1 KiB..16 MiB",
                    opts.buffer_size
                ),
            ));
        }
        if opts.pointer_size != 4 && opts.pointer_size != 8 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "pointer size must be 4 or 8",
            ));
        }
        // The header buffer is written now and rewritten by finish().
        let header = header_buffer(&opts, 0, opts.start_raw);
        out.write_all(&header)?;
        let header_len = header.len() as u64;
        Ok(TraceWriter {
            out,
            cpus: BTreeMap::new(),
            header_len,
            summary: WriteSummary {
                buffers: 1,
                records: 2,
                bytes: header_len,
            },
            end_raw: opts.start_raw,
            opts,
        })
    }

    fn record_capacity(&self) -> usize {
        self.opts.buffer_size as usize - BUFFER_HEADER_SIZE
    }

    /// Appends one record (already laid out) to a CPU's buffer, flushing
    /// the buffer first when the record does not fit.
    pub fn write_raw(&mut self, cpu: u16, timestamp: i64, record: &[u8]) -> io::Result<()> {
        if record.len() > self.record_capacity() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "record of {} bytes does not fit a {}-byte buffer",
                    record.len(),
                    self.opts.buffer_size
                ),
            ));
        }
        let cap = self.record_capacity();
        let full = self
            .cpus
            .get(&cpu)
            .is_some_and(|b| b.data.len() + record.len() > cap);
        if full {
            self.flush_cpu(cpu)?;
        }
        let buf = self.cpus.entry(cpu).or_insert_with(|| CpuBuffer {
            data: Vec::with_capacity(cap),
            last_ts: timestamp,
        });
        buf.data.extend_from_slice(record);
        buf.data.resize(align8(buf.data.len()).min(cap), 0);
        buf.last_ts = timestamp;
        self.end_raw = self.end_raw.max(timestamp);
        self.summary.records += 1;
        Ok(())
    }

    fn flush_cpu(&mut self, cpu: u16) -> io::Result<()> {
        let Some(buf) = self.cpus.remove(&cpu) else {
            return Ok(());
        };
        if buf.data.is_empty() {
            return Ok(());
        }
        let filled = (BUFFER_HEADER_SIZE + buf.data.len()) as u32;
        let bytes = if self.opts.compress {
            let packed = lz77::compress(&buf.data);
            let size = (BUFFER_HEADER_SIZE + packed.len()) as u32;
            let mut b = buffer_header(
                size,
                filled,
                buf.last_ts,
                cpu,
                self.opts.logger_id,
                0x20 | FLAG_COMPRESSED,
                0,
                u32::from(COMPRESSION_LZ77),
            );
            b.extend_from_slice(&packed);
            b
        } else {
            let mut b = buffer_header(
                self.opts.buffer_size,
                filled,
                buf.last_ts,
                cpu,
                self.opts.logger_id,
                0x20,
                0,
                3,
            );
            b.extend_from_slice(&buf.data);
            b.resize(self.opts.buffer_size as usize, 0xff);
            b
        };
        self.out.write_all(&bytes)?;
        self.summary.buffers += 1;
        self.summary.bytes += bytes.len() as u64;
        Ok(())
    }

    /// A kernel event with a system, compact or perfinfo header.
    #[allow(clippy::too_many_arguments)]
    pub fn write_kernel(
        &mut self,
        cpu: u16,
        header: KernelHeader,
        group: u8,
        opcode: u8,
        version: u16,
        thread_id: u32,
        process_id: u32,
        timestamp: i64,
        payload: &[u8],
    ) -> io::Result<()> {
        let wide = self.opts.pointer_size == 8;
        let (kind, len) = match header {
            KernelHeader::System => (if wide { 0x02 } else { 0x01 }, 0x20),
            KernelHeader::Compact => (if wide { 0x04 } else { 0x03 }, 0x18),
            KernelHeader::Perfinfo => (if wide { 0x11 } else { 0x10 }, 0x10),
        };
        let mut r = Vec::with_capacity(len + payload.len());
        r.extend_from_slice(&version.to_le_bytes());
        r.extend_from_slice(&[kind, 0xc0]);
        r.extend_from_slice(&((len + payload.len()) as u16).to_le_bytes());
        r.extend_from_slice(&[opcode, group]);
        if header == KernelHeader::Perfinfo {
            r.extend_from_slice(&timestamp.to_le_bytes());
        } else {
            r.extend_from_slice(&thread_id.to_le_bytes());
            r.extend_from_slice(&process_id.to_le_bytes());
            r.extend_from_slice(&timestamp.to_le_bytes());
            if header == KernelHeader::System {
                r.extend_from_slice(&[0; 8]);
            }
        }
        r.extend_from_slice(payload);
        self.write_raw(cpu, timestamp, &r)
    }

    /// An EVENT_HEADER record, with extended data items when given.
    pub fn write_event(&mut self, cpu: u16, ev: &EventRecord) -> io::Result<()> {
        let ext_len: usize = ev.extended.iter().map(|(_, d)| align8(8 + d.len())).sum();
        let size = 0x50 + ext_len + ev.payload.len();
        if size > 0xffff {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "event larger than 64 KiB",
            ));
        }
        let mut r = Vec::with_capacity(size);
        r.extend_from_slice(&(size as u16).to_le_bytes());
        let kind = if self.opts.pointer_size == 8 {
            0x13
        } else {
            0x12
        };
        r.extend_from_slice(&[kind, 0xc0]);
        let mut flags: u16 = if self.opts.pointer_size == 8 {
            0x40
        } else {
            0x20
        };
        if !ev.extended.is_empty() {
            flags |= 0x01;
        }
        r.extend_from_slice(&flags.to_le_bytes());
        r.extend_from_slice(&0u16.to_le_bytes());
        r.extend_from_slice(&ev.thread_id.to_le_bytes());
        r.extend_from_slice(&ev.process_id.to_le_bytes());
        r.extend_from_slice(&ev.timestamp.to_le_bytes());
        r.extend_from_slice(&ev.provider.to_le_bytes());
        let d = &ev.descriptor;
        r.extend_from_slice(&d.id.to_le_bytes());
        r.extend_from_slice(&[d.version, d.channel, d.level, d.opcode]);
        r.extend_from_slice(&d.task.to_le_bytes());
        r.extend_from_slice(&d.keyword.to_le_bytes());
        r.extend_from_slice(&0u64.to_le_bytes());
        r.extend_from_slice(&ev.activity_id.to_le_bytes());
        let items: Vec<(u16, &[u8])> = ev.extended.iter().map(|(t, d)| (*t, &d[..])).collect();
        r.extend_from_slice(&super::extended::encode_items(&items));
        r.extend_from_slice(&ev.payload);
        self.write_raw(cpu, ev.timestamp, &r)
    }

    /// A classic event: EVENT_TRACE_HEADER, or EVENT_INSTANCE_GUID_HEADER
    /// when `instance` gives (instance id, parent instance id, parent GUID).
    #[allow(clippy::too_many_arguments)]
    pub fn write_classic(
        &mut self,
        cpu: u16,
        guid: Guid,
        opcode: u8,
        level: u8,
        version: u16,
        thread_id: u32,
        process_id: u32,
        timestamp: i64,
        instance: Option<(u32, u32, Guid)>,
        payload: &[u8],
    ) -> io::Result<()> {
        let wide = self.opts.pointer_size == 8;
        let (kind, len) = match (instance.is_some(), wide) {
            (false, false) => (0x0a, 0x30),
            (false, true) => (0x14, 0x30),
            (true, false) => (0x0b, 0x48),
            (true, true) => (0x15, 0x48),
        };
        let mut r = Vec::with_capacity(len + payload.len());
        r.extend_from_slice(&((len + payload.len()) as u16).to_le_bytes());
        r.extend_from_slice(&[kind, 0xc0, opcode, level]);
        r.extend_from_slice(&version.to_le_bytes());
        r.extend_from_slice(&thread_id.to_le_bytes());
        r.extend_from_slice(&process_id.to_le_bytes());
        r.extend_from_slice(&timestamp.to_le_bytes());
        r.extend_from_slice(&guid.to_le_bytes());
        r.extend_from_slice(&[0; 8]);
        if let Some((id, parent, parent_guid)) = instance {
            r.extend_from_slice(&id.to_le_bytes());
            r.extend_from_slice(&parent.to_le_bytes());
            r.extend_from_slice(&parent_guid.to_le_bytes());
        }
        r.extend_from_slice(payload);
        self.write_raw(cpu, timestamp, &r)
    }

    /// A WPP (TraceMessage) record with sequence, GUID, timestamp and
    /// system information.
    #[allow(clippy::too_many_arguments)]
    pub fn write_wpp(
        &mut self,
        cpu: u16,
        message_guid: Guid,
        message_number: u16,
        sequence: u32,
        thread_id: u32,
        process_id: u32,
        timestamp: i64,
        payload: &[u8],
    ) -> io::Result<()> {
        let size = 8 + 4 + 16 + 8 + 8 + payload.len();
        let mut r = Vec::with_capacity(size);
        r.extend_from_slice(&(size as u16).to_le_bytes());
        r.extend_from_slice(&[0, 0x90]);
        r.extend_from_slice(&message_number.to_le_bytes());
        let pointer = if self.opts.pointer_size == 8 {
            0x80
        } else {
            0x40
        };
        // SEQUENCE | GUID | TIMESTAMP | SYSTEMINFO
        r.extend_from_slice(&(0x2bu16 | pointer).to_le_bytes());
        r.extend_from_slice(&sequence.to_le_bytes());
        r.extend_from_slice(&message_guid.to_le_bytes());
        r.extend_from_slice(&timestamp.to_le_bytes());
        r.extend_from_slice(&thread_id.to_le_bytes());
        r.extend_from_slice(&process_id.to_le_bytes());
        r.extend_from_slice(payload);
        self.write_raw(cpu, timestamp, &r)
    }

    /// Flushes every CPU's buffer and rewrites the header buffer with the
    /// buffer count and end time.
    pub fn finish(mut self) -> io::Result<(W, WriteSummary)> {
        let cpus: Vec<u16> = self.cpus.keys().copied().collect();
        for cpu in cpus {
            self.flush_cpu(cpu)?;
        }
        let header = header_buffer(&self.opts, self.summary.buffers, self.end_raw);
        debug_assert_eq!(header.len() as u64, self.header_len);
        self.out.seek(SeekFrom::Start(0))?;
        self.out.write_all(&header)?;
        self.out.seek(SeekFrom::End(0))?;
        self.out.flush()?;
        Ok((self.out, self.summary))
    }
}

#[allow(clippy::too_many_arguments)]
fn buffer_header(
    size: u32,
    filled: u32,
    ts: i64,
    cpu: u16,
    logger: u16,
    flag: u16,
    buffer_type: u16,
    state: u32,
) -> Vec<u8> {
    let mut b = Vec::with_capacity(BUFFER_HEADER_SIZE);
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(&filled.to_le_bytes()); // SavedOffset
    b.extend_from_slice(&filled.to_le_bytes()); // CurrentOffset
    b.extend_from_slice(&0u32.to_le_bytes()); // ReferenceCount
    b.extend_from_slice(&ts.to_le_bytes());
    b.extend_from_slice(&0i64.to_le_bytes()); // SequenceNumber
    b.extend_from_slice(&0u64.to_le_bytes()); // clock / list entry
    b.extend_from_slice(&cpu.to_le_bytes());
    b.extend_from_slice(&logger.to_le_bytes());
    b.extend_from_slice(&state.to_le_bytes());
    b.extend_from_slice(&filled.to_le_bytes()); // Offset
    b.extend_from_slice(&flag.to_le_bytes());
    b.extend_from_slice(&buffer_type.to_le_bytes());
    b.extend_from_slice(&[0; 16]);
    b
}

fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// The header buffer: the TRACE_LOGFILE_HEADER record and the end-of-header
/// record Windows puts beside it, in a buffer of type 4 on CPU 0.
fn header_buffer(o: &WriterOptions, buffers_written: u32, end_raw: i64) -> Vec<u8> {
    let p = usize::from(o.pointer_size);
    let mut h = Vec::new();
    h.extend_from_slice(&o.buffer_size.to_le_bytes());
    h.extend_from_slice(&o.os_version);
    h.extend_from_slice(&o.os_build.to_le_bytes());
    h.extend_from_slice(&o.number_of_processors.to_le_bytes());
    let ticks =
        (i128::from(end_raw - o.start_raw) * 10_000_000 / i128::from(o.perf_freq.max(1))) as i64;
    h.extend_from_slice(&(o.start_filetime + ticks).to_le_bytes()); // EndTime
    h.extend_from_slice(&156_250u32.to_le_bytes()); // TimerResolution
    h.extend_from_slice(&0u32.to_le_bytes()); // MaximumFileSize
    let mode = 0x0000_0001
        | if o.compress {
            EVENT_TRACE_COMPRESSED_MODE
        } else {
            0
        };
    h.extend_from_slice(&mode.to_le_bytes());
    h.extend_from_slice(&buffers_written.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes()); // StartBuffers
    h.extend_from_slice(&u32::from(o.pointer_size).to_le_bytes());
    h.extend_from_slice(&o.events_lost.to_le_bytes());
    h.extend_from_slice(&3000u32.to_le_bytes()); // CpuSpeedInMHz
    h.resize(h.len() + 2 * p, 0); // LoggerName, LogFileName pointers
    let mut tz = vec![0u8; 0xac];
    tz[..4].copy_from_slice(&0i32.to_le_bytes());
    h.extend_from_slice(&tz);
    h.resize(align8(h.len()), 0);
    h.extend_from_slice(&o.boot_filetime.to_le_bytes());
    h.extend_from_slice(&o.perf_freq.to_le_bytes());
    h.extend_from_slice(&o.start_filetime.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes()); // ReservedFlags: QPC
    h.extend_from_slice(&0u32.to_le_bytes()); // BuffersLost
    h.extend_from_slice(&utf16z(&o.logger_name));
    h.extend_from_slice(&utf16z(&o.log_file_name));

    let kind = if p == 8 { 0x02 } else { 0x01 };
    let mut records = Vec::new();
    for (opcode, payload) in [(0u8, h), (80u8, vec![0u8; 48])] {
        let start = records.len();
        records.extend_from_slice(&2u16.to_le_bytes());
        records.extend_from_slice(&[kind, 0xc0]);
        records.extend_from_slice(&((0x20 + payload.len()) as u16).to_le_bytes());
        records.extend_from_slice(&[opcode, 0]);
        records.extend_from_slice(&0u32.to_le_bytes());
        records.extend_from_slice(&0u32.to_le_bytes());
        records.extend_from_slice(&o.start_raw.to_le_bytes());
        records.extend_from_slice(&[0; 8]);
        records.extend_from_slice(&payload);
        records.resize(start + align8(records.len() - start), 0);
    }
    let filled = (BUFFER_HEADER_SIZE + records.len()) as u32;
    let size = align8(filled as usize).max(1024) as u32;
    let mut b = buffer_header(size, filled, 0, 0, o.logger_id, 0x01, 4, 3);
    b.extend_from_slice(&records);
    b.resize(size as usize, 0xff);
    b
}

/// Builds TraceLogging metadata and payloads for [`EventRecord`]s.
pub mod tracelogging {
    use super::super::extended::{EXT_EVENT_SCHEMA_TL, EXT_PROV_TRAITS};
    use super::super::tracelogging as tl;
    use super::Guid;

    /// A field value to write.
    #[derive(Debug, Clone, PartialEq)]
    pub enum FieldValue {
        Str(String),
        U32(u32),
        I32(i32),
        U64(u64),
        Hex32(u32),
        Guid(Guid),
        Bool(bool),
    }

    impl FieldValue {
        fn in_type(&self) -> u8 {
            match self {
                FieldValue::Str(_) => tl::IN_UNICODESTRING,
                FieldValue::U32(_) => tl::IN_UINT32,
                FieldValue::I32(_) => tl::IN_INT32,
                FieldValue::U64(_) => tl::IN_UINT64,
                FieldValue::Hex32(_) => tl::IN_HEXINT32,
                FieldValue::Guid(_) => tl::IN_GUID,
                FieldValue::Bool(_) => tl::IN_BOOL32,
            }
        }

        fn write(&self, out: &mut Vec<u8>) {
            match self {
                FieldValue::Str(s) => {
                    out.extend(s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes))
                }
                FieldValue::U32(v) | FieldValue::Hex32(v) => {
                    out.extend_from_slice(&v.to_le_bytes())
                }
                FieldValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
                FieldValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
                FieldValue::Guid(g) => out.extend_from_slice(&g.to_le_bytes()),
                FieldValue::Bool(b) => out.extend_from_slice(&u32::from(*b).to_le_bytes()),
            }
        }
    }

    /// Provider traits (extended item 12) naming the provider.
    pub fn provider_traits(name: &str) -> (u16, Vec<u8>) {
        let mut t = Vec::new();
        let size = (2 + name.len() + 1) as u16;
        t.extend_from_slice(&size.to_le_bytes());
        t.extend_from_slice(name.as_bytes());
        t.push(0);
        (EXT_PROV_TRAITS, t)
    }

    /// Schema (extended item 11) and payload of an event with these fields.
    pub fn event(name: &str, fields: &[(&str, FieldValue)]) -> ((u16, Vec<u8>), Vec<u8>) {
        let mut schema = vec![0, 0, 0];
        schema.extend_from_slice(name.as_bytes());
        schema.push(0);
        let mut payload = Vec::new();
        for (field, value) in fields {
            schema.extend_from_slice(field.as_bytes());
            schema.push(0);
            schema.push(value.in_type());
            value.write(&mut payload);
        }
        let size = schema.len() as u16;
        schema[..2].copy_from_slice(&size.to_le_bytes());
        ((EXT_EVENT_SCHEMA_TL, schema), payload)
    }
}
