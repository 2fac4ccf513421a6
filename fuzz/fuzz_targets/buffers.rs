//! Walking buffers of arbitrary bytes, decompressing and scanning each.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rhscope::read::etl::buffer::walk;
use rhscope::read::etl::record::scan;

fuzz_target!(|data: &[u8]| {
    let w = walk(data);
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
});
