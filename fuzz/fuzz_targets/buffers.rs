//! Walking buffers of arbitrary bytes, decompressing and scanning each.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rhscope::read::etl::buffer::walk;
use rhscope::read::etl::record::scan;

fuzz_target!(|data: &[u8]| {
    // The nominal size as the trace header would give it: none, or the
    // first four bytes (any value, sane or not).
    let nominal = data.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    for w in [walk(data, None), walk(data, nominal)] {
        check(data, &w);
    }
});

fn check(data: &[u8], w: &rhscope::read::etl::buffer::BufferWalk) {
    for info in &w.buffers {
        assert!(info.offset + u64::from(info.size) <= data.len() as u64);
        if let Ok(bytes) = info.contents(data) {
            let mut slots = Vec::new();
            let _ = scan(&bytes, info, &mut slots);
            for s in &slots {
                assert!(s.offset as usize + s.size as usize <= bytes.len());
            }
        }
    }
}
