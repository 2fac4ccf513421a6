//! The model as polars DataFrames, one row per span, call, worker, wait or
//! message (never per raw event): for aggregates, and for Parquet export so
//! fleet-scale questions run in DataFusion, Spark or DuckDB.

use crate::model::label;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::analysis::Analysis;
use crate::usage::UsageTable;

/// Every model table of one trace.
pub struct Frames {
    pub entry_points: DataFrame,
    pub api_calls: DataFrame,
    pub worker_threads: DataFrame,
    pub waits: DataFrame,
    pub threads: DataFrame,
    pub rhs_messages: DataFrame,
    pub findings: DataFrame,
}

fn time(name: &str, ns: Vec<Option<i64>>) -> PolarsResult<Column> {
    // Naive datetimes in UTC: every time in a trace is UTC.
    Column::new(name.into(), ns).cast(&DataType::Datetime(TimeUnit::Nanoseconds, None))
}

fn text(name: &str, v: Vec<Option<String>>) -> Column {
    Column::new(name.into(), v)
}

impl Frames {
    pub fn new(a: &Analysis, table: &UsageTable) -> PolarsResult<Frames> {
        let s = &a.spans;
        let n = s.entries.len();
        let entry_points = DataFrame::new(
            n,
            vec![
                text("trace", vec![Some(a.trace.clone()); n]),
                Column::new(
                    "pid".into(),
                    s.entries.iter().map(|e| e.pid).collect::<Vec<_>>(),
                ),
                Column::new(
                    "tid".into(),
                    s.entries.iter().map(|e| e.tid).collect::<Vec<_>>(),
                ),
                text(
                    "resource",
                    s.entries.iter().map(|e| Some(e.resource.clone())).collect(),
                ),
                text(
                    "resource_type",
                    s.entries.iter().map(|e| e.resource_type.clone()).collect(),
                ),
                text(
                    "entry_point",
                    s.entries
                        .iter()
                        .map(|e| Some(e.entry_point.to_string()))
                        .collect(),
                ),
                time(
                    "begin",
                    s.entries.iter().map(|e| Some(e.begin_ns)).collect(),
                )?,
                time("end", s.entries.iter().map(|e| e.end_ns).collect())?,
                Column::new(
                    "duration_ns".into(),
                    s.entries
                        .iter()
                        .map(|e| e.end_ns.map(|x| x - e.begin_ns))
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "status".into(),
                    s.entries.iter().map(|e| e.status).collect::<Vec<_>>(),
                ),
                Column::new(
                    "parent".into(),
                    s.entries
                        .iter()
                        .map(|e| e.parent.map(|p| p as u64))
                        .collect::<Vec<_>>(),
                ),
            ],
        )?;
        let n = s.calls.len();
        let entry = |c: &crate::analysis::ApiSpan| c.entry.map(|i| &s.entries[i]);
        let row = |c: &crate::analysis::ApiSpan| table.resolve(&c.api);
        let is_worker = |c: &crate::analysis::ApiSpan| {
            s.workers.iter().any(|w| {
                w.pid == c.pid
                    && w.tid == c.tid
                    && w.created_ns <= c.begin_ns
                    && w.exited_ns.is_none_or(|x| x >= c.begin_ns)
            })
        };
        let api_calls = DataFrame::new(
            n,
            vec![
                text("trace", vec![Some(a.trace.clone()); n]),
                Column::new(
                    "pid".into(),
                    s.calls.iter().map(|c| c.pid).collect::<Vec<_>>(),
                ),
                Column::new(
                    "tid".into(),
                    s.calls.iter().map(|c| c.tid).collect::<Vec<_>>(),
                ),
                text(
                    "api_logged",
                    s.calls.iter().map(|c| Some(c.api.clone())).collect(),
                ),
                text(
                    "api",
                    s.calls
                        .iter()
                        .map(|c| Some(row(c).map_or(c.api.clone(), |r| r.name.clone())))
                        .collect(),
                ),
                text(
                    "usage",
                    s.calls
                        .iter()
                        .map(|c| row(c).map(|r| r.usage.to_string()))
                        .collect(),
                ),
                text("target", s.calls.iter().map(|c| c.target.clone()).collect()),
                time("begin", s.calls.iter().map(|c| Some(c.begin_ns)).collect())?,
                time("end", s.calls.iter().map(|c| c.end_ns).collect())?,
                Column::new(
                    "duration_ns".into(),
                    s.calls
                        .iter()
                        .map(|c| c.end_ns.map(|x| x - c.begin_ns))
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "status".into(),
                    s.calls.iter().map(|c| c.status).collect::<Vec<_>>(),
                ),
                text(
                    "entry_point",
                    s.calls
                        .iter()
                        .map(|c| entry(c).map(|e| e.entry_point.to_string()))
                        .collect(),
                ),
                text(
                    "resource",
                    s.calls
                        .iter()
                        .map(|c| entry(c).map(|e| e.resource.clone()))
                        .collect(),
                ),
                text(
                    "thread_kind",
                    s.calls
                        .iter()
                        .map(|c| {
                            Some(match (entry(c), is_worker(c)) {
                                (Some(_), _) => "rhs-entry-point".to_string(),
                                (None, true) => "cluster-worker".into(),
                                (None, false) => "other".into(),
                            })
                        })
                        .collect(),
                ),
            ],
        )?;
        let n = s.workers.len();
        let worker_threads = DataFrame::new(
            n,
            vec![
                text("trace", vec![Some(a.trace.clone()); n]),
                Column::new(
                    "pid".into(),
                    s.workers.iter().map(|w| w.pid).collect::<Vec<_>>(),
                ),
                Column::new(
                    "worker_tid".into(),
                    s.workers.iter().map(|w| w.tid).collect::<Vec<_>>(),
                ),
                Column::new(
                    "creator_tid".into(),
                    s.workers.iter().map(|w| w.creator).collect::<Vec<_>>(),
                ),
                text(
                    "resource",
                    s.workers.iter().map(|w| w.resource.clone()).collect(),
                ),
                time(
                    "created",
                    s.workers.iter().map(|w| Some(w.created_ns)).collect(),
                )?,
                time("exited", s.workers.iter().map(|w| w.exited_ns).collect())?,
            ],
        )?;
        let n = s.waits.len();
        let waits = DataFrame::new(
            n,
            vec![
                text("trace", vec![Some(a.trace.clone()); n]),
                Column::new(
                    "tid".into(),
                    s.waits.iter().map(|w| w.tid).collect::<Vec<_>>(),
                ),
                time(
                    "switched_out",
                    s.waits.iter().map(|w| Some(w.out_ns)).collect(),
                )?,
                time("readied", s.waits.iter().map(|w| w.ready_ns).collect())?,
                time("switched_in", s.waits.iter().map(|w| w.in_ns).collect())?,
                text(
                    "wait_reason",
                    s.waits
                        .iter()
                        .map(|w| {
                            Some(crate::etl::kernel::wait_reason_name(w.wait_reason).to_string())
                        })
                        .collect(),
                ),
                Column::new(
                    "readied_by".into(),
                    s.waits.iter().map(|w| w.readied_by).collect::<Vec<_>>(),
                ),
            ],
        )?;
        let messages: Vec<&crate::model::Record> = s
            .deadlocks
            .iter()
            .chain(&s.restarts)
            .chain(&s.statuses)
            .chain(&s.messages)
            .collect();
        let n = messages.len();
        let rhs_messages = DataFrame::new(
            n,
            vec![
                text("trace", vec![Some(a.trace.clone()); n]),
                time("time", messages.iter().map(|m| Some(m.time_ns)).collect())?,
                Column::new(
                    "pid".into(),
                    messages.iter().map(|m| m.pid).collect::<Vec<_>>(),
                ),
                Column::new(
                    "tid".into(),
                    messages.iter().map(|m| m.tid).collect::<Vec<_>>(),
                ),
                text(
                    "kind",
                    messages.iter().map(|m| Some(label(&m.kind))).collect(),
                ),
                text(
                    "resource",
                    messages.iter().map(|m| m.resource.clone()).collect(),
                ),
                text(
                    "entry_point",
                    messages
                        .iter()
                        .map(|m| m.entry_point.map(|e| e.to_string()))
                        .collect(),
                ),
                text("state", messages.iter().map(|m| m.state.clone()).collect()),
                text(
                    "message",
                    messages.iter().map(|m| m.message.clone()).collect(),
                ),
            ],
        )?;
        let threads = threads(&entry_points, &api_calls, &worker_threads)?;
        let f: Vec<&crate::model::Finding> = a.findings.iter().map(|r| &r.finding).collect();
        let n = f.len();
        let findings = DataFrame::new(
            n,
            vec![
                text("trace", vec![Some(a.trace.clone()); n]),
                text("rule", f.iter().map(|x| Some(label(&x.rule))).collect()),
                text(
                    "severity",
                    f.iter().map(|x| Some(label(&x.severity))).collect(),
                ),
                text("resource", f.iter().map(|x| x.resource.clone()).collect()),
                text(
                    "entry_point",
                    f.iter()
                        .map(|x| x.entry_point.map(|e| e.to_string()))
                        .collect(),
                ),
                text("api", f.iter().map(|x| x.api.clone()).collect()),
                text(
                    "usage",
                    f.iter().map(|x| x.usage.map(|u| u.to_string())).collect(),
                ),
                text(
                    "thread_kind",
                    f.iter().map(|x| x.thread_kind.map(|k| label(&k))).collect(),
                ),
                Column::new("pid".into(), f.iter().map(|x| x.pid).collect::<Vec<_>>()),
                Column::new("tid".into(), f.iter().map(|x| x.tid).collect::<Vec<_>>()),
                text("begin", f.iter().map(|x| Some(x.begin.clone())).collect()),
                Column::new(
                    "duration_ns".into(),
                    f.iter().map(|x| x.duration_ns).collect::<Vec<_>>(),
                ),
            ],
        )?;
        Ok(Frames {
            entry_points,
            api_calls,
            worker_threads,
            waits,
            threads,
            rhs_messages,
            findings,
        })
    }

    pub fn tables(&mut self) -> [(&'static str, &mut DataFrame); 7] {
        [
            ("entry_points", &mut self.entry_points),
            ("api_calls", &mut self.api_calls),
            ("worker_threads", &mut self.worker_threads),
            ("waits", &mut self.waits),
            ("threads", &mut self.threads),
            ("rhs_messages", &mut self.rhs_messages),
            ("findings", &mut self.findings),
        ]
    }

    /// Count, unreturned, p50, p95, max and total duration per `keys`
    /// group of a span table (`entry_points` or `api_calls`).
    pub fn durations(spans: &DataFrame, keys: &[&str]) -> PolarsResult<DataFrame> {
        let d = col("duration_ns");
        spans
            .clone()
            .lazy()
            .group_by(keys.iter().map(|k| col(*k)).collect::<Vec<_>>())
            .agg([
                len().alias("count"),
                d.clone().null_count().alias("unreturned"),
                d.clone()
                    .quantile(lit(0.5), QuantileMethod::Nearest)
                    .alias("p50_ns"),
                d.clone()
                    .quantile(lit(0.95), QuantileMethod::Nearest)
                    .alias("p95_ns"),
                d.clone().max().alias("max_ns"),
                d.sum().alias("total_ns"),
            ])
            .sort(
                keys.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
                SortMultipleOptions::default(),
            )
            .collect()
    }
}

/// One row per thread seen in the model: its kind and first/last activity.
fn threads(entries: &DataFrame, calls: &DataFrame, workers: &DataFrame) -> PolarsResult<DataFrame> {
    let spans = concat(
        [
            entries.clone().lazy().select([
                col("trace"),
                col("pid"),
                col("tid"),
                col("begin"),
                lit("rhs-entry-point").alias("kind"),
            ]),
            calls.clone().lazy().select([
                col("trace"),
                col("pid"),
                col("tid"),
                col("begin"),
                col("thread_kind").alias("kind"),
            ]),
            workers.clone().lazy().select([
                col("trace"),
                col("pid"),
                col("worker_tid").alias("tid"),
                col("created").alias("begin"),
                lit("cluster-worker").alias("kind"),
            ]),
        ],
        UnionArgs::default(),
    )?;
    spans
        .group_by([col("trace"), col("pid"), col("tid")])
        .agg([
            // An entry-point thread stays one even when it also runs other code.
            col("kind")
                .sort(SortOptions::default())
                .last()
                .alias("kind"),
            col("begin").min().alias("first_seen"),
            col("begin").max().alias("last_seen"),
        ])
        .sort(["pid", "tid"], SortMultipleOptions::default())
        .collect()
}

/// Writes every table as Parquet under `dir/<table>/trace=<name>/`, the
/// hive layout query engines read as a partitioned dataset.
pub fn export_parquet(
    dir: &Path,
    frames: &mut Frames,
    trace_name: &str,
) -> Result<Vec<PathBuf>, crate::output::OutputError> {
    let partition: String = trace_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut written = Vec::new();
    for (table, df) in frames.tables() {
        let folder = dir.join(table).join(format!("trace={partition}"));
        std::fs::create_dir_all(&folder).map_err(|source| crate::output::OutputError::Io {
            path: folder.clone(),
            source,
        })?;
        let path = folder.join("part-0.parquet");
        let mut file = crate::output::AtomicFile::create(&path, &[])?;
        ParquetWriter::new(file.writer()).finish(df).map_err(|e| {
            crate::output::OutputError::Io {
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            }
        })?;
        file.commit()?;
        written.push(path);
    }
    Ok(written)
}

/// Findings saved as Parquet (`analyze --format parquet`, or the findings
/// table of `--export-parquet`), read back for comparisons.
pub fn read_findings(path: &Path) -> Result<Vec<crate::model::Finding>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| format!("not a Parquet findings table: {e}"))?;
    const COLUMNS: [&str; 11] = [
        "rule",
        "severity",
        "resource",
        "entry_point",
        "api",
        "usage",
        "thread_kind",
        "pid",
        "tid",
        "begin",
        "duration_ns",
    ];
    let columns: Vec<&Column> = COLUMNS
        .iter()
        .map(|c| {
            df.column(c)
                .map_err(|_| format!("not a findings table: no column {c:?}"))
        })
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let mut row = serde_json::Map::new();
        for (name, col) in COLUMNS.iter().zip(&columns) {
            let v = col.get(i).map_err(|e| e.to_string())?;
            let json = match v {
                AnyValue::Null => serde_json::Value::Null,
                ref other => match other.get_str() {
                    Some(s) => serde_json::Value::String(s.to_string()),
                    None => other
                        .extract::<i64>()
                        .map_or(serde_json::Value::Null, serde_json::Value::from),
                },
            };
            row.insert((*name).to_string(), json);
        }
        let f = serde_json::from_value(serde_json::Value::Object(row))
            .map_err(|e| format!("finding {} does not read: {e}", i + 1))?;
        out.push(f);
    }
    Ok(out)
}
