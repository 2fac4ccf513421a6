//! Manifests from arbitrary text, and payloads decoded with what parsed:
//! errors point inside the text; decoding never panics and never reads
//! past the payload.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rhscope::capture::RawEvent;
use rhscope::read::etl::Descriptor;
use rhscope::providers::manifest::ManifestSet;

fuzz_target!(|data: &[u8]| {
    // XML, then a NUL, then the payload to decode.
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let Ok(text) = std::str::from_utf8(&data[..split]) else { return };
    let payload = data.get(split + 1..).unwrap_or(&[]).to_vec();
    let lines = text.lines().count().max(1);
    let mut set = ManifestSet::default();
    match set.add_text(text, Path::new("fuzz.man")) {
        Err(e) => assert!(e.line <= lines + 1, "line {} of {lines}", e.line),
        Ok(()) => {
            for p in set.providers() {
                for (id, version) in p.events() {
                    for width in [0x20u16, 0x40] {
                        let raw = RawEvent::new(
                            1,
                            p.guid,
                            Descriptor { id, version, ..Descriptor::default() },
                            Some(1),
                            Some(2),
                            0,
                            0,
                            width,
                            &[],
                            payload.clone(),
                        );
                        let ev = raw.event().expect("no extended items");
                        if let Some(Ok(m)) = set.decode(&ev) {
                            assert!(m.trailing <= payload.len());
                        }
                    }
                }
            }
        }
    }
});
