//! cluster.log from arbitrary bytes: an error or entries, never a panic or
//! a hang; line numbers grow; every line is counted once.
#![no_main]

use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rhscope::read::clusterlog::{ClusterLog, ClusterLogError};

fuzz_target!(|data: &[u8]| {
    match ClusterLog::from_reader(Path::new("fuzz.log"), Cursor::new(data.to_vec())) {
        Err(ClusterLogError::NotClusterLog { offset, .. }) => {
            assert!(offset <= data.len() as u64)
        }
        Err(e) => panic!("{e}"),
        Ok(mut log) => {
            let mut last = 0;
            let mut n = 0u64;
            for e in log.by_ref() {
                let e = e.expect("reading from memory cannot fail");
                assert!(e.line > last, "line {} after {last}", e.line);
                last = e.line;
                n += 1;
            }
            let c = log.counts();
            assert_eq!(c.entries, n);
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
