//! Every record header kind, in 32- and 64-bit layouts, plain and
//! compressed, written with rhscope's .etl writer and read back: header
//! kinds that the real fixtures lack (compact, 32-bit, instance, WPP) and
//! kernel payload layouts (context switch, ready thread, 32-bit process).

use std::io::Cursor;

use rhscope::read::etl::kernel::{KernelEvent, Lifetime};
use rhscope::read::etl::write::{
    tracelogging as tlw, EventRecord, KernelHeader, TraceWriter, WriterOptions,
};
use rhscope::read::etl::{Descriptor, Event, ExtendedItem, Guid, HeaderKind, Payload, Trace};

const THREAD: u8 = 5;
const PROCESS: u8 = 3;

fn guid(s: &str) -> Guid {
    s.parse().unwrap()
}

fn cswitch(new: u32, old: u32, reason: u8, state: u8) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&new.to_le_bytes());
    p.extend_from_slice(&old.to_le_bytes());
    p.extend_from_slice(&[9, 8, 1, 0, reason, 1, state, 3]);
    p.extend_from_slice(&1234u32.to_le_bytes());
    p.extend_from_slice(&0u32.to_le_bytes());
    p
}

fn process_v4(ptr: usize, pid: u32, parent: u32, image: &str, cmd: &str) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&0xffff_8000_1234_5678u64.to_le_bytes()[..ptr]);
    for v in [pid, parent, 1, 259] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p.extend_from_slice(&vec![0xab; ptr]); // DirectoryTableBase
    p.extend_from_slice(&0u32.to_le_bytes()); // Flags
    p.extend_from_slice(&vec![0x11; 2 * ptr]); // TOKEN_USER
    p.extend_from_slice(&[1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0]); // S-1-5-32-544
    p.extend_from_slice(image.as_bytes());
    p.push(0);
    p.extend(cmd.encode_utf16().chain([0]).flat_map(u16::to_le_bytes));
    p.extend_from_slice(&[0, 0, 0, 0]); // empty PackageFullName, ApplicationId
    p
}

fn write_all_kinds(pointer_size: u8, compress: bool) -> Vec<u8> {
    let opts = WriterOptions {
        pointer_size,
        compress,
        buffer_size: 4096,
        logger_name: "kinds".into(),
        ..WriterOptions::default()
    };
    let t0 = opts.start_raw;
    let ptr = usize::from(pointer_size);
    let mut w = TraceWriter::new(Cursor::new(Vec::new()), opts).unwrap();
    w.write_kernel(
        0,
        KernelHeader::System,
        PROCESS,
        1,
        4,
        100,
        4,
        t0 + 10,
        &process_v4(ptr, 4242, 4, "rhs.exe", "rhs.exe -x"),
    )
    .unwrap();
    let mut thread = Vec::new();
    thread.extend_from_slice(&4242u32.to_le_bytes());
    thread.extend_from_slice(&777u32.to_le_bytes());
    thread.extend_from_slice(&vec![0; 7 * ptr + 8]);
    w.write_kernel(
        1,
        KernelHeader::System,
        THREAD,
        1,
        3,
        100,
        4,
        t0 + 20,
        &thread,
    )
    .unwrap();
    w.write_kernel(
        1,
        KernelHeader::Compact,
        THREAD,
        36,
        2,
        0,
        0,
        t0 + 30,
        &cswitch(777, 0, 0, 2),
    )
    .unwrap();
    w.write_kernel(
        0,
        KernelHeader::Perfinfo,
        THREAD,
        36,
        2,
        0,
        0,
        t0 + 40,
        &cswitch(0, 777, 6, 5),
    )
    .unwrap();
    let mut ready = 777u32.to_le_bytes().to_vec();
    ready.extend_from_slice(&[2, 1, 0, 0]);
    w.write_kernel(
        0,
        KernelHeader::Perfinfo,
        THREAD,
        50,
        2,
        0,
        0,
        t0 + 50,
        &ready,
    )
    .unwrap();
    let (schema, payload) = tlw::event(
        "EntryPointBegin",
        &[
            ("Resource", tlw::FieldValue::Str("Disk Q:".into())),
            ("EntryPoint", tlw::FieldValue::U32(3)),
        ],
    );
    let related = (
        1u16,
        guid("11111111-2222-3333-4444-555555555555")
            .to_le_bytes()
            .to_vec(),
    );
    w.write_event(
        1,
        &EventRecord {
            thread_id: 777,
            process_id: 4242,
            timestamp: t0 + 60,
            provider: guid("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
            descriptor: Descriptor {
                id: 7,
                version: 1,
                channel: 11,
                level: 4,
                opcode: 1,
                task: 2,
                keyword: 0x8000_0000_0000_0001,
            },
            activity_id: guid("01020304-0506-0708-090a-0b0c0d0e0f10"),
            extended: vec![related, tlw::provider_traits("RhScope-ResourceDll"), schema],
            payload,
        },
    )
    .unwrap();
    let classic = guid("3b9c9951-3480-4220-9377-9c8e5184f5cd");
    w.write_classic(0, classic, 10, 4, 2, 778, 4242, t0 + 70, None, b"classic")
        .unwrap();
    w.write_classic(
        1,
        classic,
        11,
        4,
        2,
        778,
        4242,
        t0 + 80,
        Some((5, 6, guid("99999999-8888-7777-6666-555555555555"))),
        b"instance",
    )
    .unwrap();
    w.write_wpp(
        0,
        guid("12345678-1234-1234-1234-123456789abc"),
        17,
        99,
        779,
        4242,
        t0 + 90,
        b"wpp args",
    )
    .unwrap();
    let (out, summary) = w.finish().unwrap();
    assert_eq!(summary.records, 2 + 9);
    out.into_inner()
}

fn check(pointer_size: u8, compress: bool) {
    let bytes = write_all_kinds(pointer_size, compress);
    let trace = Trace::from_bytes(bytes, "kinds.etl").unwrap();
    assert_eq!(trace.header().logger_name, "kinds");
    assert_eq!(trace.header().pointer_size, u32::from(pointer_size));
    assert_eq!(
        trace.buffers().iter().filter(|b| b.compressed).count(),
        if compress { 2 } else { 0 }
    );
    let mut seen = Vec::new();
    let mut events = trace.events();
    while let Some(ev) = events.next_event() {
        let ev: Event<'_> = ev.unwrap();
        assert_eq!(ev.pointer_size, pointer_size);
        let decoded = ev.decode_payload().unwrap();
        seen.push((
            ev.kind,
            ev.cpu,
            ev.thread_id,
            ev.process_id,
            ev.timestamp - 1_000_000_000,
        ));
        match ev.timestamp - 1_000_000_000 {
            10 => {
                let Payload::Kernel(KernelEvent::Process {
                    lifetime,
                    process_id,
                    parent_id,
                    image_file_name,
                    command_line,
                    user_sid,
                    exit_status,
                    ..
                }) = decoded
                else {
                    panic!("{decoded:?}")
                };
                assert_eq!(
                    (lifetime, process_id, parent_id, exit_status),
                    (Lifetime::Start, 4242, 4, 259)
                );
                assert_eq!(image_file_name, "rhs.exe");
                assert_eq!(command_line.as_deref(), Some("rhs.exe -x"));
                assert_eq!(user_sid.as_deref(), Some("S-1-5-32-544"));
            }
            20 => assert_eq!(
                decoded_kernel(decoded),
                KernelEvent::Thread {
                    lifetime: Lifetime::Start,
                    process_id: 4242,
                    thread_id: 777,
                    start_address: Some(0)
                }
            ),
            30 | 40 => {
                let KernelEvent::CSwitch {
                    new_thread_id,
                    old_thread_id,
                    old_thread_wait_reason,
                    old_thread_state,
                    new_thread_wait_time,
                    new_thread_priority,
                    ..
                } = decoded_kernel(decoded)
                else {
                    panic!()
                };
                assert_eq!(new_thread_wait_time, 1234);
                assert_eq!(new_thread_priority, 9);
                if ev.kind == HeaderKind::Compact {
                    assert_eq!(
                        (
                            new_thread_id,
                            old_thread_id,
                            old_thread_wait_reason,
                            old_thread_state
                        ),
                        (777, 0, 0, 2)
                    );
                } else {
                    assert_eq!(
                        (
                            new_thread_id,
                            old_thread_id,
                            old_thread_wait_reason,
                            old_thread_state
                        ),
                        (0, 777, 6, 5)
                    );
                    assert_eq!(
                        rhscope::read::etl::kernel::wait_reason_name(old_thread_wait_reason),
                        "UserRequest"
                    );
                    assert_eq!(
                        rhscope::read::etl::kernel::thread_state_name(old_thread_state),
                        "Waiting"
                    );
                }
            }
            50 => assert_eq!(
                decoded_kernel(decoded),
                KernelEvent::ReadyThread {
                    thread_id: 777,
                    adjust_reason: 2,
                    adjust_increment: 1,
                    flag: 0
                }
            ),
            60 => {
                assert_eq!(ev.provider_name().as_deref(), Some("RhScope-ResourceDll"));
                assert_eq!(
                    ev.descriptor,
                    Descriptor {
                        id: 7,
                        version: 1,
                        channel: 11,
                        level: 4,
                        opcode: 1,
                        task: 2,
                        keyword: 0x8000_0000_0000_0001
                    }
                );
                assert_eq!(
                    ev.activity_id,
                    Some(guid("01020304-0506-0708-090a-0b0c0d0e0f10"))
                );
                let items: Vec<ExtendedItem> =
                    ev.extended.items().collect::<Result<_, _>>().unwrap();
                assert_eq!(
                    items[0],
                    ExtendedItem::RelatedActivityId(guid("11111111-2222-3333-4444-555555555555"))
                );
                let Payload::TraceLogging(tl) = decoded else {
                    panic!()
                };
                assert_eq!(tl.name, "EntryPointBegin");
                assert_eq!(tl.fields.len(), 2);
                assert_eq!(
                    tl.fields[0].value,
                    rhscope::read::etl::tracelogging::Value::Str("Disk Q:".into())
                );
                assert_eq!(
                    tl.fields[1].value,
                    rhscope::read::etl::tracelogging::Value::U64(3)
                );
            }
            70 => {
                assert_eq!(ev.payload, b"classic");
                assert_eq!(
                    (
                        ev.descriptor.opcode,
                        ev.descriptor.level,
                        ev.descriptor.version
                    ),
                    (10, 4, 2)
                );
                assert!(ev.instance.is_none());
            }
            80 => {
                assert_eq!(ev.payload, b"instance");
                let i = ev.instance.unwrap();
                assert_eq!((i.instance_id, i.parent_instance_id), (5, 6));
                assert_eq!(i.parent_guid, guid("99999999-8888-7777-6666-555555555555"));
            }
            90 => {
                let w = ev.wpp.unwrap();
                assert_eq!((w.message_number, w.sequence), (17, Some(99)));
                assert_eq!(ev.provider, guid("12345678-1234-1234-1234-123456789abc"));
                assert_eq!(ev.payload, b"wpp args");
            }
            _ => {}
        }
    }
    use HeaderKind::*;
    let want = vec![
        (System, 0, Some(0), Some(0), 0),
        (System, 0, Some(0), Some(0), 0),
        (System, 0, Some(100), Some(4), 10),
        (System, 1, Some(100), Some(4), 20),
        (Compact, 1, Some(0), Some(0), 30),
        (Perfinfo, 0, None, None, 40),
        (Perfinfo, 0, None, None, 50),
        (EventHeader, 1, Some(777), Some(4242), 60),
        (FullHeader, 0, Some(778), Some(4242), 70),
        (Instance, 1, Some(778), Some(4242), 80),
        (Wpp, 0, Some(779), Some(4242), 90),
    ];
    assert_eq!(
        seen, want,
        "pointer size {pointer_size}, compressed {compress}"
    );
}

fn decoded_kernel(p: Payload<'_>) -> KernelEvent {
    match p {
        Payload::Kernel(k) => k,
        other => panic!("not a kernel event: {other:?}"),
    }
}

#[test]
fn every_header_kind_64_bit() {
    check(8, false);
}

#[test]
fn every_header_kind_32_bit() {
    check(4, false);
}

#[test]
fn every_header_kind_compressed() {
    check(8, true);
    check(4, true);
}

/// A small deterministic generator, so the property test needs no crate.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Records come back in time order, ties by CPU then as written, however
/// many threads decode the buffers.
#[test]
fn random_traces_read_back_exactly() {
    for seed in 1..=12u64 {
        let mut rng = XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let compress = seed % 3 == 0;
        let pointer_size = if seed % 2 == 0 { 8 } else { 4 };
        let opts = WriterOptions {
            compress,
            pointer_size,
            buffer_size: 1024 * (1 + rng.below(8) as u32),
            ..WriterOptions::default()
        };
        let t0 = opts.start_raw;
        let mut w = TraceWriter::new(Cursor::new(Vec::new()), opts).unwrap();
        let mut written = Vec::new();
        // After the writer's own records, which are at t0.
        let mut ts = t0 + 1;
        // Every fourth trace has many records sharing a timestamp.
        let ties = seed % 4 == 1;
        for _ in 0..(200 + rng.below(2000)) {
            ts += if ties {
                rng.below(2) as i64
            } else {
                1 + rng.below(50) as i64
            };
            let cpu = rng.below(4) as u16;
            let payload: Vec<u8> = (0..rng.below(300)).map(|_| rng.below(256) as u8).collect();
            let tid = rng.below(5000) as u32;
            let kind = match rng.below(4) {
                0 => {
                    w.write_kernel(
                        cpu,
                        KernelHeader::System,
                        rng.below(30) as u8,
                        rng.below(60) as u8,
                        2,
                        tid,
                        4,
                        ts,
                        &payload,
                    )
                    .unwrap();
                    HeaderKind::System
                }
                1 => {
                    w.write_kernel(cpu, KernelHeader::Perfinfo, 15, 46, 2, 0, 0, ts, &payload)
                        .unwrap();
                    HeaderKind::Perfinfo
                }
                2 => {
                    let ev = EventRecord {
                        thread_id: tid,
                        process_id: 8,
                        timestamp: ts,
                        payload: payload.clone(),
                        ..Default::default()
                    };
                    w.write_event(cpu, &ev).unwrap();
                    HeaderKind::EventHeader
                }
                _ => {
                    w.write_classic(
                        cpu,
                        guid("3b9c9951-3480-4220-9377-9c8e5184f5cd"),
                        1,
                        4,
                        0,
                        tid,
                        8,
                        ts,
                        None,
                        &payload,
                    )
                    .unwrap();
                    HeaderKind::FullHeader
                }
            };
            written.push((ts, cpu, kind, payload));
        }
        let (out, summary) = w.finish().unwrap();
        let bytes = out.into_inner();
        assert_eq!(summary.bytes, bytes.len() as u64);
        let trace = Trace::from_bytes(bytes, "random.etl").unwrap();
        assert_eq!(trace.buffers().len() as u32, summary.buffers);
        written.sort_by_key(|&(ts, cpu, ..)| (ts, cpu));
        for workers in [None, Some(0), Some(1), Some(3)] {
            let mut events = trace.events_with_workers(workers);
            let mut read = Vec::new();
            while let Some(ev) = events.next_event() {
                let ev = ev.unwrap();
                if ev.timestamp > t0 {
                    read.push((ev.timestamp, ev.cpu, ev.kind, ev.payload.to_vec()));
                }
            }
            assert_eq!(read, written, "seed {seed}, {workers:?} workers");
        }
    }
}
