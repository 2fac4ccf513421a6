#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use rhscope::analysis::{analyze_trace, Analysis, Config};
use rhscope::providers::usage::UsageTable;
use rhscope::providers::ProviderSet;
use rhscope::read::clusterlog::{ClusterLog, LogCounts};
use rhscope::read::etl::Trace;
use rhscope::source::ClusterLogSource;

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

/// The simulated scenarios bundled in traces/, with their ground truth.
pub const SCENARIOS: [&str; 8] = [
    "healthy",
    "do-not-use-in-online",
    "worker-only-from-isalive",
    "some-ok-from-offline",
    "correct-worker",
    "pending-timeout",
    "control-code-by-number",
    "mixed",
];

pub fn traces(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("traces")
        .join(name)
}

/// A fresh, empty folder of this test process for `name`.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rhscope-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temporary folder");
    dir
}

/// Runs the rhscope binary with these arguments.
pub fn rhscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rhscope"))
        .args(args)
        .output()
        .expect("run rhscope")
}

/// The strict analysis of a bundled trace, with the built-in definitions.
pub fn analysis(name: &str) -> Analysis {
    let trace = Trace::open(traces(&format!("{name}.etl"))).unwrap();
    analyze_trace(
        &trace,
        &ProviderSet::embedded(),
        &UsageTable::embedded(),
        &Config::default(),
        true,
    )
    .unwrap()
}

/// The strict analysis of one cluster.log with the built-in definitions,
/// and what reading it counted.
pub fn log_analysis(path: &std::path::Path) -> (Analysis, LogCounts) {
    let providers = ProviderSet::embedded();
    let mut src = ClusterLogSource::new(ClusterLog::open(path).unwrap(), &providers);
    let a = rhscope::analysis::analyze_sources(
        vec![&mut src],
        &UsageTable::embedded(),
        &Config::default(),
        true,
    )
    .unwrap();
    (a, src.counts().clone())
}
