#![allow(dead_code)]

use std::path::PathBuf;

pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub const FIXTURES: [&str; 7] = [
    "AMSITrace.etl",
    "lxcore_kernel.etl",
    "powershell.etl",
    "SelfDescribingSingleEvent.etl",
    "primitive-types.etl",
    "gcevents.etl",
    "net.4.5.2.x86.etl",
];
