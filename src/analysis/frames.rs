//! The model as polars DataFrames, one row per span, call, worker, wait or
//! message (never per raw event): for aggregates, and for Parquet export so
//! fleet-scale questions run in DataFusion, Spark or DuckDB.

use polars::prelude::*;

use super::{Aggregate, Analysis};
use crate::model::label;

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
    pub fn new(a: &Analysis) -> PolarsResult<Frames> {
        let entry_points = entry_points(a)?;
        let api_calls = api_calls(a)?;
        let worker_threads = worker_threads(a)?;
        let threads = threads(&entry_points, &api_calls, &worker_threads)?;
        Ok(Frames {
            entry_points,
            api_calls,
            worker_threads,
            waits: waits(a)?,
            threads,
            rhs_messages: rhs_messages(a)?,
            findings: findings(a)?,
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

/// One row per entry-point call.
fn entry_points(a: &Analysis) -> PolarsResult<DataFrame> {
    let s = &a.spans;
    let n = s.entries.len();
    DataFrame::new(
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
    )
}

/// One row per API call, with its usage-table row and thread kind.
fn api_calls(a: &Analysis) -> PolarsResult<DataFrame> {
    let s = &a.spans;
    let n = s.calls.len();
    let entry = |c: &crate::model::ApiSpan| c.entry.map(|i| &s.entries[i]);
    DataFrame::new(
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
                    .map(|c| Some(a.call(c).api.clone()))
                    .collect(),
            ),
            text(
                "usage",
                s.calls
                    .iter()
                    .map(|c| a.call(c).usage.map(|u| u.to_string()))
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
                    .map(|c| Some(label(&a.call(c).thread_kind)))
                    .collect(),
            ),
        ],
    )
}

/// One row per ClusWorkerCreate worker.
fn worker_threads(a: &Analysis) -> PolarsResult<DataFrame> {
    let s = &a.spans;
    let n = s.workers.len();
    DataFrame::new(
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
    )
}

/// One row per stretch of a thread off the CPU.
fn waits(a: &Analysis) -> PolarsResult<DataFrame> {
    let s = &a.spans;
    let n = s.waits.len();
    DataFrame::new(
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
                        Some(crate::read::etl::kernel::wait_reason_name(w.wait_reason).to_string())
                    })
                    .collect(),
            ),
            Column::new(
                "readied_by".into(),
                s.waits.iter().map(|w| w.readied_by).collect::<Vec<_>>(),
            ),
        ],
    )
}

/// One row per RHS message the rules read (deadlocks, restarts, states, others).
fn rhs_messages(a: &Analysis) -> PolarsResult<DataFrame> {
    let s = &a.spans;
    let messages: Vec<&crate::model::Record> = s
        .deadlocks
        .iter()
        .chain(&s.restarts)
        .chain(&s.statuses)
        .chain(&s.messages)
        .collect();
    let n = messages.len();
    DataFrame::new(
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
    )
}

/// One row per finding.
fn findings(a: &Analysis) -> PolarsResult<DataFrame> {
    let f: Vec<&crate::model::Finding> = a.findings.iter().map(|r| &r.finding).collect();
    let n = f.len();
    DataFrame::new(
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
            text("begin", f.iter().map(|x| Some(x.begin.rfc3339())).collect()),
            Column::new(
                "duration_ns".into(),
                f.iter().map(|x| x.duration_ns).collect::<Vec<_>>(),
            ),
        ],
    )
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

/// The duration figures of a span table per `keys` group, as rows.
pub fn aggregates(spans: &DataFrame, keys: &[&str]) -> PolarsResult<Vec<Aggregate>> {
    let df = Frames::durations(spans, keys)?;
    let key_cols: Vec<Column> = keys
        .iter()
        .map(|k| df.column(k).cloned())
        .collect::<PolarsResult<_>>()?;
    let int = |name: &str| -> PolarsResult<Vec<i64>> {
        let c = df.column(name)?.cast(&DataType::Int64)?;
        Ok(c.i64()?.iter().map(|v| v.unwrap_or(0)).collect())
    };
    let (count, unreturned) = (int("count")?, int("unreturned")?);
    let (p50, p95, max, total) = (
        int("p50_ns")?,
        int("p95_ns")?,
        int("max_ns")?,
        int("total_ns")?,
    );
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let key: Vec<String> = key_cols
            .iter()
            .map(|c| {
                c.get(i)
                    .map(|v| v.get_str().map_or_else(|| v.to_string(), str::to_string))
            })
            .collect::<PolarsResult<_>>()?;
        out.push(Aggregate {
            key: key.join(" "),
            count: count[i] as usize,
            unreturned: unreturned[i] as usize,
            total_ns: total[i],
            p50_ns: p50[i],
            p95_ns: p95[i],
            max_ns: max[i],
        });
    }
    Ok(out)
}

/// Findings saved as Parquet (`analyze --format parquet`, or the findings
/// table of `--export-parquet`), read back for comparisons.
pub fn read_findings(path: &std::path::Path) -> Result<Vec<crate::model::Finding>, String> {
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
