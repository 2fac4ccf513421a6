//! rhscope's reader against the figures of an independent parser
//! (dissect.etl 3.14, see ../shared/fixtures/etl/README.md) for every real
//! fixture: records, records per header kind, distinct thread ids, and the
//! first and last timestamps.
//!
//! Timestamps: rhscope converts with exact integer arithmetic,
//! StartTime + (raw - raw time of the header record) * 10^7 / PerfFreq, and
//! keeps 100 ns. dissect.etl does the same sum but then converts the 100 ns
//! FILETIME count (about 1.3e17, past f64's 2^53 exact range, where one ulp
//! is 16 * 100 ns) with `float(ts) * 1e-7 - 11644473600` and rounds to the
//! microsecond. Its figures therefore differ from the exact time by up to
//! about 2 us (lxcore_kernel's first record: exact .1387363, reference
//! .138735). The table's values are not the truth here; the test asserts
//! rhscope's exact values and that dissect's float formula applied to them
//! gives the table's value to the microsecond, which shows the two readers
//! agree on the raw timestamps and the model and differ only by that
//! rounding.

mod common;

use rhscope::read::etl::{Trace, TraceStats};

struct Reference {
    file: &'static str,
    records: u64,
    kinds: &'static [(&'static str, u64)],
    threads: usize,
    /// Exact first/last time from rhscope, 100 ns resolution.
    first: &'static str,
    last: &'static str,
    /// The reference table's first/last time (dissect.etl, microseconds).
    reference_first: &'static str,
    reference_last: &'static str,
}

const REFERENCE: &[Reference] = &[
    Reference {
        file: "AMSITrace.etl",
        records: 21,
        kinds: &[("system", 2), ("event_header", 19)],
        threads: 8,
        first: "2020-02-17T12:48:30.420313800Z",
        last: "2020-02-17T12:49:50.402432900Z",
        reference_first: "2020-02-17 12:48:30.420313",
        reference_last: "2020-02-17 12:49:50.402433",
    },
    Reference {
        file: "lxcore_kernel.etl",
        records: 4,
        kinds: &[("system", 2), ("event_header", 2)],
        threads: 2,
        first: "2020-07-14T12:04:31.138736300Z",
        last: "2020-07-14T12:04:36.903871700Z",
        reference_first: "2020-07-14 12:04:31.138735",
        reference_last: "2020-07-14 12:04:36.903872",
    },
    Reference {
        file: "powershell.etl",
        records: 114,
        kinds: &[("system", 2), ("event_header", 112)],
        threads: 6,
        first: "2023-03-29T15:12:38.017544900Z",
        last: "2023-03-29T15:14:55.438943100Z",
        reference_first: "2023-03-29 15:12:38.017546",
        reference_last: "2023-03-29 15:14:55.438942",
    },
    Reference {
        file: "SelfDescribingSingleEvent.etl",
        records: 23,
        kinds: &[("system", 4), ("full_header", 18), ("event_header", 1)],
        threads: 3,
        first: "2022-04-20T21:27:15.272243500Z",
        last: "2022-04-20T21:27:18.637703500Z",
        reference_first: "2022-04-20 21:27:15.272243",
        reference_last: "2022-04-20 21:27:18.637703",
    },
    Reference {
        file: "primitive-types.etl",
        records: 7,
        kinds: &[("system", 2), ("event_header", 5)],
        threads: 2,
        first: "2021-09-09T14:59:32.857851000Z",
        last: "2021-09-09T14:59:37.484502700Z",
        reference_first: "2021-09-09 14:59:32.857851",
        reference_last: "2021-09-09 14:59:37.484501",
    },
    Reference {
        file: "gcevents.etl",
        records: 71,
        kinds: &[("system", 2), ("event_header", 69)],
        threads: 3,
        first: "2023-03-14T00:46:36.694654900Z",
        last: "2023-03-14T00:46:48.303550300Z",
        reference_first: "2023-03-14 00:46:36.694654",
        reference_last: "2023-03-14 00:46:48.303551",
    },
    Reference {
        file: "net.4.5.2.x86.etl",
        records: 168_298,
        kinds: &[
            ("system", 4474),
            ("perfinfo", 115_091),
            ("full_header", 8235),
            ("event_header", 40_498),
        ],
        threads: 715,
        first: "2020-07-29T00:06:19.798423000Z",
        last: "2020-07-29T00:06:33.006886600Z",
        reference_first: "2020-07-29 00:06:19.798422",
        reference_last: "2020-07-29 00:06:33.006886",
    },
];

/// dissect.etl's conversion of an exact time: f64 seconds from the FILETIME
/// count, then Python's datetime.fromtimestamp (microseconds, ties to even).
fn dissect_time(rfc3339: &str) -> String {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap();
    let ns = t.timestamp_nanos_opt().unwrap();
    assert_eq!(ns % 100, 0, "ETW times have 100 ns resolution");
    let filetime = ns / 100 + 116_444_736_000_000_000;
    let secs = (filetime as f64) * 1e-7 - 11_644_473_600.0;
    let whole = secs.trunc();
    let mut micros = (secs.fract() * 1e6).round_ties_even() as i64;
    let mut whole = whole as i64;
    if micros >= 1_000_000 {
        micros -= 1_000_000;
        whole += 1;
    }
    let dt = chrono::DateTime::from_timestamp(whole, (micros * 1000) as u32).unwrap();
    dt.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

#[test]
fn every_fixture_matches_the_independent_parser() {
    for r in REFERENCE {
        let trace = Trace::open(common::data(r.file)).unwrap();
        let s = TraceStats::collect(&trace, true, |_, _| {}).unwrap();
        assert_eq!(s.records, r.records, "{}: records", r.file);
        for (kind, n) in s.kinds.iter() {
            let want = r
                .kinds
                .iter()
                .find(|(k, _)| k == kind)
                .map_or(0, |(_, n)| *n);
            assert_eq!(*n, want, "{}: {kind} records", r.file);
        }
        assert_eq!(s.threads, r.threads, "{}: distinct thread ids", r.file);
        assert_eq!(s.first.as_deref(), Some(r.first), "{}: first", r.file);
        assert_eq!(s.last.as_deref(), Some(r.last), "{}: last", r.file);
        assert_eq!(
            dissect_time(r.first),
            r.reference_first,
            "{}: reference first",
            r.file
        );
        assert_eq!(
            dissect_time(r.last),
            r.reference_last,
            "{}: reference last",
            r.file
        );
        assert!(s.skipped.is_empty(), "{}: {:?}", r.file, s.skipped);
    }
}

#[test]
fn buffer_tables_of_plain_and_relogged_files() {
    let t = Trace::open(common::data("SelfDescribingSingleEvent.etl")).unwrap();
    let sizes: Vec<u32> = t.buffers().iter().map(|b| b.size).collect();
    assert_eq!(sizes, [1024, 6153, 226]);
    let offsets: Vec<u64> = t.buffers().iter().map(|b| b.offset).collect();
    assert_eq!(offsets, [0, 0x400, 0x1c09]);
    let compressed: Vec<bool> = t.buffers().iter().map(|b| b.compressed).collect();
    assert_eq!(compressed, [false, true, true]);
    // Decompressed sizes as the headers state them.
    let filled: Vec<u32> = t.buffers().iter().map(|b| b.filled).collect();
    assert_eq!(filled, [520, 7168, 240]);

    let t = Trace::open(common::data("net.4.5.2.x86.etl")).unwrap();
    assert_eq!(t.buffers().len(), 276);
    assert_eq!(t.buffers().iter().filter(|b| b.compressed).count(), 275);

    let t = Trace::open(common::data("AMSITrace.etl")).unwrap();
    assert!(t.buffers().iter().all(|b| b.size == 65536 && !b.compressed));
    let cpus: Vec<u16> = t.buffers().iter().map(|b| b.processor).collect();
    assert_eq!(cpus, [0, 7, 3, 5, 0, 2]);
}

#[test]
fn events_come_out_in_time_order_across_cpus() {
    for file in common::FIXTURES {
        let trace = Trace::open(common::data(file)).unwrap();
        let mut events = trace.events();
        let mut last = i64::MIN;
        let mut n = 0;
        while let Some(ev) = events.next_event() {
            let ev = ev.unwrap();
            assert!(ev.timestamp >= last, "{file}: event {n} goes back in time");
            last = ev.timestamp;
            n += 1;
        }
    }
}
