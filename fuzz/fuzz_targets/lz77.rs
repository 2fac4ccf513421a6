//! Decompression of arbitrary bytes never panics or passes its limit, and
//! whatever compress() makes decompresses to the original.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rhscope::read::etl::lz77::{compress, decompress_into};

fuzz_target!(|data: &[u8]| {
    let limit = data.first().map_or(0, |&b| usize::from(b) * 300);
    let mut out = Vec::new();
    let _ = decompress_into(data, &mut out, limit);
    assert!(out.len() <= limit);

    let packed = compress(data);
    let mut back = Vec::new();
    decompress_into(&packed, &mut back, data.len()).expect("own output decompresses");
    assert_eq!(back, data);
});
