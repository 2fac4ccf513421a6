//! Record headers and payload decoders on arbitrary buffer contents.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rhscope::read::etl::buffer::{BufferInfo, BUFFER_HEADER_SIZE};
use rhscope::read::etl::record::{scan, Event};
use rhscope::read::etl::stackwalk;

fuzz_target!(|data: &[u8]| {
    let mut bytes = vec![0u8; BUFFER_HEADER_SIZE];
    bytes.extend_from_slice(data);
    let info = BufferInfo {
        offset: 0,
        size: bytes.len() as u32,
        filled: bytes.len() as u32,
        timestamp: 0,
        processor: 0,
        logger_id: 0,
        flags: 0,
        buffer_type: 0,
        compressed: false,
        truncated: false,
    };
    let mut slots = Vec::new();
    let _ = scan(&bytes, &info, &mut slots);
    for slot in &slots {
        if let Ok(ev) = Event::decode(&bytes, slot, &info) {
            let _ = ev.decode_payload();
            let _ = rhscope::read::etl::EventRow::new(&ev);
            let _ = stackwalk::stack_record(&ev);
            let _ = stackwalk::image_record(&ev);
            let _ = stackwalk::image_identity(&ev);
            for item in ev.extended.items() {
                let _ = item;
            }
        }
    }
});
