//! The model as polars tables: shapes, resolved names, thread kinds,
//! Parquet round trip.
#![cfg(feature = "polars")]

mod common;

use common::analysis;

use polars::prelude::*;
use rhscope::analysis::frames::Frames;
use rhscope::report::parquet::export_parquet;

fn strings(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    df.column(name)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

#[test]
fn tables_hold_one_row_per_span_with_names_resolved() {
    let a = analysis("control-code-by-number");
    let f = Frames::new(&a).unwrap();
    assert_eq!(f.entry_points.height(), a.spans.entries.len());
    assert_eq!(f.api_calls.height(), a.spans.calls.len());
    assert_eq!(f.findings.height(), a.findings.len());
    // Logged as a number, named from the usage table.
    let logged = strings(&f.api_calls, "api_logged");
    let named = strings(&f.api_calls, "api");
    let usage = strings(&f.api_calls, "usage");
    for ((l, n), u) in logged.iter().zip(&named).zip(&usage) {
        match l.as_deref() {
            Some("0x0100000d") => {
                assert_eq!(n.as_deref(), Some("CLUSCTL_RESOURCE_GET_CLASS_INFO"));
                assert_eq!(u.as_deref(), Some("worker-thread-only"));
            }
            _ => assert_eq!(l, n),
        }
    }
    assert_eq!(
        f.api_calls.column("begin").unwrap().dtype(),
        &DataType::Datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC))
    );
    // The RHS thread runs entry points; the Online worker is a cluster worker.
    let kinds: Vec<(u32, String)> = f
        .threads
        .column("tid")
        .unwrap()
        .u32()
        .unwrap()
        .iter()
        .zip(strings(&f.threads, "kind"))
        .map(|(t, k)| (t.unwrap(), k.unwrap()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (3000, "rhs-entry-point".to_string()),
            (6000, "cluster-worker".to_string())
        ]
    );
}

#[test]
fn parquet_export_reads_back() {
    let a = analysis("pending-timeout");
    let mut f = Frames::new(&a).unwrap();
    let dir = std::env::temp_dir().join(format!("rhscope-parquet-{}", std::process::id()));
    let written = export_parquet(&dir, &mut f, "pending-timeout.etl").unwrap();
    assert_eq!(written.len(), 7);
    let back = ParquetReader::new(
        std::fs::File::open(dir.join("entry_points/input=pending-timeout.etl/part-0.parquet"))
            .unwrap(),
    )
    .finish()
    .unwrap();
    assert_eq!(back.height(), f.entry_points.height());
    assert_eq!(back.get_column_names(), f.entry_points.get_column_names());
    let findings = ParquetReader::new(
        std::fs::File::open(dir.join("findings/input=pending-timeout.etl/part-0.parquet")).unwrap(),
    )
    .finish()
    .unwrap();
    assert_eq!(
        strings(&findings, "rule"),
        vec![Some("pending-timeout".to_string())]
    );
}
