//! Provider definitions and usage tables from arbitrary text: errors, never
//! panics, and every error points inside the text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rhscope::providers::ProviderDef;
use rhscope::providers::usage::UsageTable;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lines = text.lines().count().max(1);
    if let Err(e) = ProviderDef::parse(text, Path::new("fuzz.toml")) {
        assert!(e.line <= lines + 1, "line {} of {lines}", e.line);
    }
    if let Err(e) = UsageTable::parse(text, Path::new("fuzz.toml")) {
        assert!(e.line <= lines + 1, "line {} of {lines}", e.line);
    }
});
