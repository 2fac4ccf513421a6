//! The whole `stats` path (open, header, walk, merge, decode) on arbitrary
//! bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rhscope::read::etl::{EventRow, Trace, TraceStats};

fuzz_target!(|data: &[u8]| {
    let Ok(trace) = Trace::from_bytes(data.to_vec(), "fuzz.etl") else { return };
    let _ = TraceStats::collect(&trace, false, |_, _| {});
    let mut events = trace.events();
    while let Some(item) = events.next_event() {
        if let Ok(ev) = item {
            let _ = EventRow::new(&ev);
        }
    }
});
