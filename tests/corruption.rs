//! A corruption matrix over the real fixtures: truncations, bad sizes,
//! zeroed and swapped buffers, appended garbage. For each: no panic, the
//! read finishes, and either a clear error or a result that counts what was
//! skipped while still reporting every intact record.

mod common;

use rhscope::providers::ProviderSet;
use rhscope::read::etl::{Trace, TraceError, TraceStats};
use rhscope::simulate::{simulate_with, Options, Scenario};
use rhscope::source::{EtlSource, EventSource, Observed};
use std::io::Cursor;

/// (buffer offset, record file offset or None, record size) of every record.
fn records(bytes: &[u8]) -> Vec<(u64, Option<u64>, u32)> {
    let t = Trace::from_bytes(bytes.to_vec(), "whole").unwrap();
    let mut out = Vec::new();
    let mut events = t.events();
    while let Some(ev) = events.next_event() {
        let ev = ev.unwrap();
        out.push((
            ev.location.buffer_offset,
            ev.location.file_offset(),
            ev.size,
        ));
    }
    out
}

fn read(bytes: Vec<u8>) -> Result<TraceStats, TraceError> {
    let t = Trace::from_bytes(bytes, "mutated.etl")?;
    Ok(TraceStats::collect(&t, false, |_, _| {}).unwrap())
}

#[test]
fn truncation_keeps_every_whole_record_before_the_cut() {
    for file in common::FIXTURES {
        let full = std::fs::read(common::data(file)).unwrap();
        let all = records(&full);
        let trace = Trace::from_bytes(full.clone(), file).unwrap();
        let buffers: Vec<(u64, u32, bool)> = trace
            .buffers()
            .iter()
            .map(|b| (b.offset, b.size, b.compressed))
            .collect();
        let mut cuts = vec![1, 0x10, 0x47, 0x48, 0x60, full.len() / 2, full.len() - 1];
        for &(offset, size, _) in buffers.iter().take(4) {
            cuts.extend([
                offset as usize,
                offset as usize + 0x48,
                offset as usize + size as usize / 2,
                offset as usize + size as usize - 3,
            ]);
        }
        cuts.retain(|&c| c > 0 && c < full.len());
        for cut in cuts {
            let result = read(full[..cut].to_vec());
            let first_size = buffers[0].1 as usize;
            let Ok(stats) = result else {
                // Only a file without a whole first buffer may fail to open.
                let e = result.unwrap_err();
                assert!(
                    cut < first_size.max(0x48 + 0x20),
                    "{file} cut at {cut}: {e}"
                );
                // The error names the file; its cause names the offset.
                assert_eq!(e.to_string(), "mutated.etl");
                let cause = std::error::Error::source(&e)
                    .map(|c| c.to_string())
                    .unwrap_or_default();
                assert!(cause.contains("byte offset"), "{cause}");
                continue;
            };
            // Whole buffers before the cut, plus whole records of an
            // uncompressed buffer the cut runs through.
            let expect = all
                .iter()
                .filter(|(buffer, record, size)| {
                    let (_, bsize, compressed) =
                        buffers.iter().find(|b| b.0 == *buffer).copied().unwrap();
                    if *buffer + u64::from(bsize) <= cut as u64 {
                        return true;
                    }
                    !compressed && record.is_some_and(|r| r + u64::from(*size) <= cut as u64)
                })
                .count() as u64;
            assert_eq!(stats.records, expect, "{file} cut at {cut}");
            let on_boundary = buffers.iter().any(|b| b.0 == cut as u64);
            assert_eq!(
                stats.skipped.is_empty(),
                on_boundary,
                "{file} cut at {cut}: {:?}",
                stats.skipped
            );
        }
    }
}

fn mutate_each_buffer(file: &str, what: &str, f: impl Fn(&mut Vec<u8>, usize, usize)) {
    let full = std::fs::read(common::data(file)).unwrap();
    let all = records(&full);
    let trace = Trace::from_bytes(full.clone(), file).unwrap();
    // Buffer 0 holds the trace header: breaking it is an open error, tested elsewhere.
    for b in trace.buffers().iter().skip(1).take(6) {
        let mut bytes = full.clone();
        f(&mut bytes, b.offset as usize, b.size as usize);
        let stats = read(bytes).unwrap_or_else(|e| panic!("{file} {what} at {}: {e}", b.offset));
        let lost = all.iter().filter(|r| r.0 == b.offset).count() as u64;
        assert_eq!(
            stats.records,
            all.len() as u64 - lost,
            "{file} {what} at {}",
            b.offset
        );
        assert!(!stats.skipped.is_empty(), "{file} {what} at {}", b.offset);
        let inside = b.offset..b.offset + u64::from(b.size);
        assert!(
            stats.skipped.iter().any(|s| inside.contains(&s.offset)),
            "{file} {what}: {:?}",
            stats.skipped
        );
    }
}

#[test]
fn a_bad_buffer_size_costs_that_buffer_only() {
    for file in common::FIXTURES {
        for (what, value) in [
            ("size 0", 0u32),
            ("size 0xffffffff", u32::MAX),
            ("size 0x47", 0x47),
        ] {
            mutate_each_buffer(file, what, |bytes, at, _| {
                bytes[at..at + 4].copy_from_slice(&value.to_le_bytes())
            });
        }
    }
}

#[test]
fn a_zeroed_buffer_costs_that_buffer_only() {
    for file in common::FIXTURES {
        mutate_each_buffer(file, "zeroed", |bytes, at, size| {
            bytes[at..at + size].fill(0)
        });
    }
}

#[test]
fn a_bad_first_record_costs_that_buffer_only() {
    for file in common::FIXTURES {
        let full = std::fs::read(common::data(file)).unwrap();
        let trace = Trace::from_bytes(full.clone(), file).unwrap();
        if trace.buffers()[1].compressed {
            continue; // the record is inside compressed data
        }
        mutate_each_buffer(file, "bad marker", |bytes, at, _| {
            bytes[at + 0x48..at + 0x4c].copy_from_slice(&[1, 2, 3, 4])
        });
    }
}

#[test]
fn a_corrupt_compressed_stream_is_reported() {
    for file in ["SelfDescribingSingleEvent.etl", "net.4.5.2.x86.etl"] {
        let full = std::fs::read(common::data(file)).unwrap();
        let all = records(&full);
        let trace = Trace::from_bytes(full.clone(), file).unwrap();
        let b = trace.buffers()[1];
        assert!(b.compressed);
        let mut bytes = full.clone();
        // A flag word of all matches at the start: the first match reaches
        // back before any output.
        bytes[b.offset as usize + 0x48..b.offset as usize + 0x50].fill(0xff);
        let stats = read(bytes).unwrap();
        let lost = all.iter().filter(|r| r.0 == b.offset).count() as u64;
        assert_eq!(stats.records, all.len() as u64 - lost, "{file}");
        assert_eq!(stats.skipped.len(), 1);
        assert!(
            stats.skipped[0].message.contains("does not decompress"),
            "{:?}",
            stats.skipped
        );
    }
}

#[test]
fn swapped_buffers_read_the_same_records() {
    let full = std::fs::read(common::data("AMSITrace.etl")).unwrap();
    let mut bytes = full.clone();
    let (a, b) = (0x10000usize, 0x30000usize);
    let tmp = bytes[a..a + 0x10000].to_vec();
    bytes.copy_within(b..b + 0x10000, a);
    bytes[b..b + 0x10000].copy_from_slice(&tmp);
    let before = read(full).unwrap();
    let after = read(bytes).unwrap();
    assert_eq!(after.records, before.records);
    assert_eq!(after.first, before.first);
    assert_eq!(after.last, before.last);
    assert!(after.skipped.is_empty());
}

#[test]
fn appended_garbage_is_reported_after_every_record() {
    for file in common::FIXTURES {
        let mut bytes = std::fs::read(common::data(file)).unwrap();
        let n = records(&bytes).len() as u64;
        let len = bytes.len() as u64;
        bytes.extend((0..5000u32).map(|i| (i * 7919 % 256) as u8));
        let stats = read(bytes).unwrap();
        assert_eq!(stats.records, n, "{file}");
        assert_eq!(stats.skipped.len(), 1, "{file}: {:?}", stats.skipped);
        assert_eq!(stats.skipped[0].offset, len, "{file}");
    }
}

#[test]
fn analysis_counts_what_it_skipped_and_strict_stops() {
    use rhscope::analysis::{analyze_trace, AnalysisError, Config};
    use rhscope::providers::usage::UsageTable;
    use rhscope::providers::ProviderSet;
    let mut bytes = std::fs::read(common::traces("mixed.etl")).unwrap();
    let t = Trace::from_bytes(bytes.clone(), "mixed.etl").unwrap();
    // The first record of the third buffer gets an impossible marker.
    let at = t.buffers()[2].offset as usize;
    bytes[at + 0x48..at + 0x4c].copy_from_slice(&[1, 2, 3, 4]);
    let t = Trace::from_bytes(bytes, "mutated.etl").unwrap();
    let (p, u, c) = (
        ProviderSet::embedded(),
        UsageTable::embedded(),
        Config::default(),
    );
    let a = analyze_trace(&t, &p, &u, &c, false).unwrap();
    assert_eq!(a.skipped, 1);
    let err = analyze_trace(&t, &p, &u, &c, true).unwrap_err();
    assert!(matches!(
        err,
        AnalysisError::Source(rhscope::source::SourceError::Corrupt { .. })
    ));
    assert!(err.to_string().starts_with("mutated.etl"), "{err}");
}

/// Records of a possibly damaged trace, by (buffer offset, record offset):
/// problems are skipped, as `stats` skips them.
fn surviving(bytes: Vec<u8>) -> (Vec<(u64, Option<u64>)>, Vec<String>) {
    let t = Trace::from_bytes(bytes, "mutated.etl").unwrap();
    let (mut kept, mut problems) = (Vec::new(), Vec::new());
    let mut events = t.events();
    while let Some(ev) = events.next_event() {
        match ev {
            Ok(ev) => kept.push((ev.location.buffer_offset, ev.location.file_offset())),
            Err(e) => problems.push(e.to_string()),
        }
    }
    (kept, problems)
}

/// A buffer size that disagrees with the trace's (one bit flipped, or
/// grown to swallow the buffers after it) costs at most that buffer: every
/// record outside it is kept, and the problem is said.
fn wrong_size_keeps_the_rest(name: &str, full: &[u8], sizes: impl Fn(u32) -> Vec<u32>) {
    let all = records(full);
    let trace = Trace::from_bytes(full.to_vec(), name).unwrap();
    let nominal = trace.header().buffer_size;
    for b in trace
        .buffers()
        .iter()
        .skip(1)
        .filter(|b| !b.compressed)
        .take(8)
    {
        for size in sizes(b.size) {
            let mut bytes = full.to_vec();
            let at = b.offset as usize;
            bytes[at..at + 4].copy_from_slice(&size.to_le_bytes());
            let (kept, problems) = surviving(bytes);
            let what = format!(
                "{name}: buffer at {:#x} size {:#x} -> {size:#x}",
                b.offset, b.size
            );
            for r in all.iter().filter(|r| r.0 != b.offset) {
                assert!(
                    kept.contains(&(r.0, r.1)),
                    "{what}: lost {r:?}; {problems:?}"
                );
            }
            assert!(kept.len() <= all.len(), "{what}");
            assert!(
                problems
                    .iter()
                    .any(|p| p.contains(&format!("byte offset {}", b.offset))),
                "{what}: {problems:?}"
            );
            // Larger than the trace's buffer size with a buffer where the
            // nominal size ends: read as the nominal size, nothing lost.
            let last = b.offset + u64::from(b.size) == full.len() as u64;
            if size > nominal && b.size == nominal && !last {
                assert_eq!(kept.len(), all.len(), "{what}: {problems:?}");
                assert!(problems.iter().any(|p| p.contains("read as")), "{what}");
            }
        }
    }
}

#[test]
fn a_wrong_buffer_size_costs_at_most_that_buffer() {
    for file in common::FIXTURES {
        let full = std::fs::read(common::data(file)).unwrap();
        wrong_size_keeps_the_rest(file, &full, |size| {
            let mut v = vec![size ^ 0x4000, size * 2, 0x20000, 0x810000, size / 2];
            v.retain(|&s| s != size && s >= 0x48);
            v
        });
    }
}

#[test]
fn one_flipped_size_bit_in_a_long_trace_costs_nothing_else() {
    use rhscope::simulate::{simulate, Scenario};
    let (out, _) = simulate(Scenario::Large, 1, 30_000, std::io::Cursor::new(Vec::new())).unwrap();
    let full = out.into_inner();
    let trace = Trace::from_bytes(full.clone(), "large.etl").unwrap();
    assert!(trace.buffers().len() > 20, "{}", trace.buffers().len());
    let all = records(&full);
    let mid = trace.buffers()[trace.buffers().len() / 2];
    let mut bytes = full.clone();
    let at = mid.offset as usize;
    let flipped = mid.size ^ 0x4000;
    bytes[at..at + 4].copy_from_slice(&flipped.to_le_bytes());
    let (kept, problems) = surviving(bytes);
    assert_eq!(kept.len(), all.len(), "{problems:?}");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains(&format!(
            "buffer size {flipped:#x} is larger than the trace's buffer size {:#x}: read as",
            mid.size
        )),
        "{problems:?}"
    );
}

/// A record's (buffer offset, offset in its buffer, timestamp), or a
/// problem's (offset, message).
type Item = Result<(u64, u32, i64), (u64, String)>;

/// Every item a read yields, problems included, in order.
fn items(trace: &Trace, workers: usize) -> Vec<Item> {
    let mut out = Vec::new();
    let mut events = trace.events_with_workers(Some(workers));
    while let Some(item) = events.next_event() {
        out.push(match item {
            Ok(ev) => Ok((
                ev.location.buffer_offset,
                ev.location.record_offset,
                ev.timestamp,
            )),
            Err(e) => Err((e.offset(), e.to_string())),
        });
    }
    out
}

#[test]
fn damaged_traces_read_the_same_on_any_number_of_threads() {
    for file in common::FIXTURES {
        let full = std::fs::read(common::data(file)).unwrap();
        let trace = Trace::from_bytes(full.clone(), file).unwrap();
        // Every third buffer zeroed, and the stream of the second broken
        // where it is compressed.
        let mut bytes = full.clone();
        for b in trace.buffers().iter().skip(1).step_by(3) {
            let at = b.offset as usize;
            bytes[at..at + b.size as usize].fill(0);
        }
        if let Some(b) = trace.buffers().get(2).filter(|b| b.compressed) {
            let at = b.offset as usize + 0x48;
            bytes[at..at + 8].fill(0xff);
        }
        let damaged = Trace::from_bytes(bytes, file).unwrap();
        let alone = items(&damaged, 0);
        let problems = alone.iter().filter(|i| i.is_err()).count();
        if trace.buffers().len() > 2 {
            assert!(problems > 0, "{file}");
        }
        assert!(alone.len() > problems, "{file}: no record survived");
        for workers in [1, 3] {
            assert_eq!(items(&damaged, workers), alone, "{file}, {workers} workers");
        }
    }
}

/// Everything a source yields, problems as their text, and how far it read.
fn observed(trace: &Trace, mappers: usize) -> (Vec<Result<Observed, String>>, u64) {
    let providers = ProviderSet::embedded();
    let mut source = EtlSource::with_mappers(trace, &providers, mappers);
    let mut out = Vec::new();
    while let Some(item) = source.next_observed() {
        out.push(item.map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e))));
    }
    (out, source.bytes_read())
}

/// Mapped on threads of their own (the merge's records copied out in
/// batches and taken back in turn), damaged traces give what mapping them
/// on the reading thread gives: every record, problem and time, in order.
#[test]
fn damaged_traces_map_the_same_on_any_number_of_threads() {
    let mut files: Vec<(String, Vec<u8>)> = common::FIXTURES
        .iter()
        .map(|f| (f.to_string(), std::fs::read(common::data(f)).unwrap()))
        .collect();
    let mixed = std::fs::read(common::traces("mixed.etl")).unwrap();
    files.push(("mixed.etl".into(), mixed));
    // Past the batches each thread may have out (3 of 1,024 records), so
    // the turns wrap and the merge waits on the threads.
    let opts = Options {
        seed: 3,
        scale: 30_000,
        cluster_log: None,
        fixed: Vec::new(),
        uninstrumented: false,
        symbols: None,
    };
    let (large, _) = simulate_with(Scenario::Large, opts, Cursor::new(Vec::new())).unwrap();
    files.push(("large.etl".into(), large.into_inner()));
    for (file, full) in files {
        let trace = Trace::from_bytes(full.clone(), &file).unwrap();
        let mut bytes = full.clone();
        for b in trace.buffers().iter().skip(1).step_by(3) {
            let at = b.offset as usize;
            bytes[at..at + b.size as usize].fill(0);
        }
        for input in [full, bytes] {
            let trace = Trace::from_bytes(input, &file).unwrap();
            let (alone, read) = observed(&trace, 0);
            let records = alone
                .iter()
                .filter(|o| matches!(o, Ok(Observed::Record(_))))
                .count();
            if file.ends_with("mixed.etl") {
                assert!(records > 100, "{file}: {records} records");
            }
            if file == "large.etl" {
                assert!(records > 3 * 3 * 1024 * 2, "{file}: {records} records");
            }
            for mappers in [1, 3] {
                let (threaded, threaded_read) = observed(&trace, mappers);
                assert_eq!(threaded.len(), alone.len(), "{file}, {mappers} mappers");
                assert!(threaded == alone, "{file}, {mappers} mappers");
                assert_eq!(threaded_read, read, "{file}, {mappers} mappers");
            }
        }
    }
}
