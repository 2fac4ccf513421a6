//! The model as polars DataFrames, one row per span, call, worker, wait or
//! message (never per raw event): for Parquet export, so fleet-scale
//! questions run in DataFusion, Spark or DuckDB.

use polars::prelude::*;
use polars_io::parquet::read::ParquetReader;
use polars_io::SerReader;

use super::Analysis;
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

/// Builds a table's columns row by row from a list of items, every table
/// beginning with the analysis' `trace` and `node`.
struct Table<'a, T> {
    a: &'a Analysis,
    rows: Vec<T>,
    columns: Vec<Column>,
}

impl<'a, T> Table<'a, T> {
    fn new(a: &'a Analysis, rows: Vec<T>) -> Table<'a, T> {
        let n = rows.len();
        let columns = vec![
            Column::new("trace".into(), vec![a.trace.clone(); n]),
            Column::new("node".into(), vec![a.node.clone(); n]),
        ];
        Table { a, rows, columns }
    }

    fn column<V>(mut self, name: &str, f: impl Fn(&T) -> V) -> Self
    where
        Series: NamedFrom<Vec<V>, [V]>,
    {
        let values: Vec<V> = self.rows.iter().map(f).collect();
        self.columns.push(Column::new(name.into(), values));
        self
    }

    fn text(self, name: &str, f: impl Fn(&T) -> Option<String>) -> Self {
        self.column(name, f)
    }

    /// A time column: UTC timestamps to the nanosecond.
    fn time(mut self, name: &str, f: impl Fn(&T) -> Option<i64>) -> Self {
        let values: Int64Chunked = self.rows.iter().map(f).collect();
        let times = values
            .with_name(name.into())
            .into_datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC));
        self.columns.push(times.into_series().into());
        self
    }

    fn build(self) -> PolarsResult<DataFrame> {
        let _ = self.a;
        DataFrame::new(self.rows.len(), self.columns)
    }
}

impl Frames {
    /// The findings table alone.
    pub fn findings(a: &Analysis) -> PolarsResult<DataFrame> {
        findings(a)
    }

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
}

/// One row per entry-point call. `duration_ns` of a call that never
/// returned runs to the end of the inputs (`returned` false): a lower
/// bound; it is null only where the end is unknown (lost, or not logged).
fn entry_points(a: &Analysis) -> PolarsResult<DataFrame> {
    Table::new(a, a.spans.entries.iter().collect())
        .column("pid", |e| e.pid)
        .column("tid", |e| e.tid)
        .text("resource", |e| Some(e.resource.to_string()))
        .text("resource_type", |e| {
            e.resource_type.as_deref().map(str::to_string)
        })
        .text("entry_point", |e| Some(e.entry_point.to_string()))
        .time("begin", |e| Some(e.begin_ns))
        .time("end", |e| e.end_ns())
        .column("duration_ns", |e| a.entry(e).duration.ns())
        .column("returned", |e| a.entry(e).duration.returned())
        .column("end_lost", |e| e.end_lost_ns().is_some())
        .column("status", |e| e.status())
        .build()
}

/// One row per API call, with its usage-table row and thread kind.
fn api_calls(a: &Analysis) -> PolarsResult<DataFrame> {
    let s = &a.spans;
    let entry = |c: &crate::model::ApiSpan| c.entry.map(|i| &s.entries[i]);
    Table::new(a, s.calls.iter().collect())
        .column("pid", |c| c.pid)
        .column("tid", |c| c.tid)
        .text("api_logged", |c| Some(c.api.clone()))
        .text("api", |c| Some(a.call(c).api.clone()))
        .text("usage", |c| a.call(c).usage.map(|u| u.to_string()))
        .text("target", |c| c.target.clone())
        .time("begin", |c| Some(c.begin_ns))
        .time("end", |c| c.end_ns)
        .column("duration_ns", |c| a.call(c).duration.ns())
        .column("returned", |c| a.call(c).duration.returned())
        .column("status", |c| c.status)
        .text("entry_point", |c| {
            entry(c).map(|e| e.entry_point.to_string())
        })
        .text("resource", |c| entry(c).map(|e| e.resource.to_string()))
        .text("thread_kind", |c| Some(label(&a.call(c).thread_kind)))
        .build()
}

/// One row per ClusWorkerCreate worker.
fn worker_threads(a: &Analysis) -> PolarsResult<DataFrame> {
    Table::new(a, a.spans.workers.iter().collect())
        .column("pid", |w| w.pid)
        .column("worker_tid", |w| w.tid)
        .column("creator_tid", |w| w.creator)
        .text("resource", |w| w.resource.clone())
        .time("created", |w| Some(w.created_ns))
        .time("exited", |w| w.exited_ns)
        .build()
}

/// One row per stretch of a thread off the CPU.
fn waits(a: &Analysis) -> PolarsResult<DataFrame> {
    use crate::read::etl::kernel::wait_reason_name;
    Table::new(a, a.spans.waits.iter().collect())
        .column("tid", |w| w.tid)
        .time("switched_out", |w| Some(w.out_ns))
        .time("readied", |w| w.ready_ns)
        .time("switched_in", |w| w.in_ns)
        .text("wait_reason", |w| {
            Some(wait_reason_name(w.wait_reason).to_string())
        })
        .column("readied_by", |w| w.readied_by)
        .build()
}

/// One row per RHS message the rules read (deadlocks, restarts, states,
/// others).
fn rhs_messages(a: &Analysis) -> PolarsResult<DataFrame> {
    let s = &a.spans;
    let messages: Vec<&crate::model::Record> = s
        .deadlocks
        .iter()
        .chain(&s.restarts)
        .chain(&s.statuses)
        .chain(&s.messages)
        .collect();
    Table::new(a, messages)
        .time("time", |m| Some(m.time_ns))
        .column("pid", |m| m.pid)
        .column("tid", |m| m.tid)
        .text("kind", |m| Some(label(&m.kind)))
        .text("resource", |m| m.resource.clone())
        .text("entry_point", |m| m.entry_point.map(|e| e.to_string()))
        .text("state", |m| m.state.clone())
        .text("message", |m| m.message.clone())
        .build()
}

/// One row per finding.
fn findings(a: &Analysis) -> PolarsResult<DataFrame> {
    Table::new(a, a.findings.iter().map(|r| &r.finding).collect())
        .text("rule", |f| Some(label(&f.rule)))
        .text("severity", |f| Some(label(&f.severity)))
        .text("resource", |f| f.resource.clone())
        .text("entry_point", |f| f.entry_point.map(|e| e.to_string()))
        .text("api", |f| f.api.clone())
        .text("usage", |f| f.usage.map(|u| u.to_string()))
        .text("thread_kind", |f| f.thread_kind.map(|k| label(&k)))
        .column("pid", |f| f.pid)
        .column("tid", |f| f.tid)
        .time("begin", |f| Some(f.begin.ns()))
        .column("duration_ns", |f| f.duration_ns)
        .column("never_returned", |f| f.never_returned)
        .build()
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

/// A cell as the JSON a Finding reads: times (a UTC timestamp, or RFC 3339
/// text in tables written before) as RFC 3339 text.
fn json_value(v: &AnyValue<'_>) -> serde_json::Value {
    match v {
        AnyValue::Null => serde_json::Value::Null,
        AnyValue::Boolean(b) => serde_json::Value::Bool(*b),
        AnyValue::Datetime(ns, TimeUnit::Nanoseconds, _) => {
            serde_json::Value::String(crate::model::time::rfc3339(*ns))
        }
        other => match other.get_str() {
            Some(s) => serde_json::Value::String(s.to_string()),
            None => other
                .extract::<i64>()
                .map_or(serde_json::Value::Null, serde_json::Value::from),
        },
    }
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
    // Tables written before this column existed lack it.
    let never_returned = df.column("never_returned").ok();
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let mut row = serde_json::Map::new();
        for (name, col) in COLUMNS.iter().zip(&columns) {
            let v = col.get(i).map_err(|e| e.to_string())?;
            row.insert((*name).to_string(), json_value(&v));
        }
        if let Some(c) = never_returned {
            let v = c.get(i).map_err(|e| e.to_string())?;
            row.insert("never_returned".into(), json_value(&v));
        }
        let f = serde_json::from_value(serde_json::Value::Object(row))
            .map_err(|e| format!("finding {} does not read: {e}", i + 1))?;
        out.push(f);
    }
    Ok(out)
}
