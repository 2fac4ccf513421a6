//! cluster.log from arbitrary bytes: an error or entries, never a panic or
//! a hang; no two entries share a line (channel sections merge with the
//! log by time, so lines need not grow); every line is counted once; each
//! entry's parts are slices of its line; the message prefilter never drops
//! a pattern that matches.
#![no_main]

use std::collections::HashSet;
use std::io::Cursor;
use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rhscope::providers::prefilter::MessageIndex;
use rhscope::providers::ProviderSet;
use rhscope::read::clusterlog::{ClusterLog, ClusterLogError};

/// The built-in patterns, each compiled alone, and their index.
fn patterns() -> &'static (Vec<regex::Regex>, MessageIndex) {
    static PATTERNS: OnceLock<(Vec<regex::Regex>, MessageIndex)> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let set = ProviderSet::embedded();
        let sources: Vec<&str> = set
            .definitions()
            .iter()
            .flat_map(|d| d.pattern_sources())
            .collect();
        let each = sources
            .iter()
            .map(|s| regex::Regex::new(s).expect("built-in patterns compile"))
            .collect();
        let index = MessageIndex::new(&sources).expect("built-in patterns index");
        (each, index)
    })
}

fuzz_target!(|data: &[u8]| {
    match ClusterLog::from_reader(Path::new("fuzz.log"), Cursor::new(data.to_vec())) {
        Err(ClusterLogError::NotClusterLog { offset, .. }) => {
            assert!(offset <= data.len() as u64)
        }
        Err(e) => panic!("{e}"),
        Ok(mut log) => {
            let (each, index) = patterns();
            let mut lines = HashSet::new();
            let mut n = 0u64;
            for e in log.by_ref() {
                let e = e.expect("reading from memory cannot fail");
                assert!(e.line >= 1 && lines.insert(e.line), "line {} again", e.line);
                n += 1;
                let (_, _, _, text) = (e.level(), e.function(), e.component(), e.text());
                let mut candidates = Vec::new();
                index.find_map(text, |i| {
                    candidates.push(i);
                    None::<()>
                });
                for (i, re) in each.iter().enumerate() {
                    if re.is_match(text) {
                        assert!(candidates.contains(&i), "pattern {i} matches {text:?}");
                    }
                }
            }
            let c = log.counts();
            assert_eq!(c.entries, n);
            assert!(lines.iter().all(|&l| l <= c.lines), "{c:?}");
            let kinds = [
                c.entries,
                c.continuation_lines,
                c.header_lines,
                c.blank_lines,
                c.unparsed_lines,
            ];
            assert_eq!(kinds.iter().sum::<u64>(), c.lines, "{c:?}");
        }
    }
});
