//! TraceLogging schemas and payloads from arbitrary bytes: the first byte
//! splits the input into schema and payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rhscope::read::etl::tracelogging::{Fields, Schema};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let at = (usize::from(split) * 4).min(rest.len());
    let (schema, payload) = rest.split_at(at);
    if let Ok(schema) = Schema::parse(schema, 0) {
        for pointer_size in [4, 8] {
            if let Ok(fields) = schema.decode(payload, pointer_size, 0) {
                let _ = serde_json::to_string(&Fields(&fields));
            }
        }
    }
});
