//! Stack-walk, image and image-identity events of a whole trace: the
//! stack-key resolution and the per-process image map on arbitrary bytes,
//! then every event's stack looked up and its frames placed in images.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rhscope::read::etl::{stacks, Trace};

fuzz_target!(|data: &[u8]| {
    let Ok(trace) = Trace::from_bytes(data.to_vec(), "fuzz.etl") else { return };
    let Ok(found) = stacks::collect(&trace, |_, _| true) else { return };
    let mut events = trace.events();
    while let Some(item) = events.next_event() {
        let Ok(ev) = item else { continue };
        let Some(thread) = ev.thread_id else { continue };
        let Some(frames) = found.of_event(thread, ev.timestamp) else { continue };
        let pid = found
            .process_of_event(thread, ev.timestamp)
            .or(ev.process_id)
            .unwrap_or(0);
        for address in frames {
            let _ = found.images.find(pid, address, found.pointer_size);
        }
    }
});
