//! Before and after: which findings a change removed, which it brought, and
//! how blocking time per entry point and per API moved. Findings are
//! compared by what they are (rule, severity, resource, entry point, API),
//! not by when they happened: two runs never share timestamps.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::{Aggregate, Analysis};
use crate::model::{EntryPoint, Finding, Rule, Severity};

/// What identifies a finding across runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct FindingKey {
    pub severity: Severity,
    pub rule: Rule,
    pub resource: Option<String>,
    pub entry_point: Option<EntryPoint>,
    pub api: Option<String>,
}

impl From<&Finding> for FindingKey {
    fn from(f: &Finding) -> FindingKey {
        FindingKey {
            severity: f.severity,
            rule: f.rule,
            resource: f.resource.clone(),
            entry_point: f.entry_point,
            api: f.api.clone(),
        }
    }
}

/// One side of a comparison: its findings and duration figures.
#[derive(Debug, Clone, Default)]
pub struct Side {
    pub name: String,
    pub findings: Vec<Finding>,
    pub by_entry_point: Vec<Aggregate>,
    pub by_api: Vec<Aggregate>,
}

impl Side {
    /// Several analyses as one side (their figures combined by key).
    pub fn of(name: &str, analyses: &[Analysis]) -> Side {
        let mut side = Side {
            name: name.to_string(),
            ..Side::default()
        };
        for a in analyses {
            side.findings
                .extend(a.findings.iter().map(|r| r.finding.clone()));
            combine(&mut side.by_entry_point, &a.by_entry_point);
            combine(&mut side.by_api, &a.by_api);
        }
        side
    }

    /// A side saved earlier: `analyze --format json` output (analyses with
    /// findings and figures) or a report's findings.json (findings only).
    pub fn from_json(name: &str, text: &str) -> Result<Side, String> {
        // serde_json's message names the line and column.
        let v: Json = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let finding = |f: &Json| -> Result<Finding, String> {
            serde_json::from_value(f.clone()).map_err(|e| format!("a finding does not read: {e}"))
        };
        let aggregates = |a: &Json, key: &str| -> Result<Vec<Aggregate>, String> {
            match a.get(key) {
                None => Ok(Vec::new()),
                Some(v) => serde_json::from_value(v.clone())
                    .map_err(|e| format!("`{key}` does not read: {e}")),
            }
        };
        let mut side = Side {
            name: name.to_string(),
            ..Side::default()
        };
        match (&v, v.get("analyses")) {
            (_, Some(Json::Array(list))) => {
                for a in list {
                    for f in a.get("findings").and_then(Json::as_array).into_iter().flatten() {
                        side.findings.push(finding(f)?);
                    }
                    combine(&mut side.by_entry_point, &aggregates(a, "by_entry_point")?);
                    combine(&mut side.by_api, &aggregates(a, "by_api")?);
                }
            }
            // A findings.json, or a simulation's ground truth ({findings}).
            (Json::Array(list), _) => {
                for f in list {
                    side.findings.push(finding(f)?);
                }
            }
            (Json::Object(o), None) if o.get("findings").is_some_and(Json::is_array) => {
                for f in o["findings"].as_array().into_iter().flatten() {
                    side.findings.push(finding(f)?);
                }
            }
            _ => {
                return Err(
                    "neither `rhscope analyze --format json` output nor a findings list (a report's findings.json, an .expected.json)"
                        .into(),
                )
            }
        }
        Ok(side)
    }

    /// A run saved to a file, when the file is one: `.json` (see
    /// [`Side::from_json`]) or `.parquet` (a findings table). None for any
    /// other file (an input to analyse).
    pub fn load_saved(path: &std::path::Path) -> Option<Result<Side, String>> {
        let shown = path.display().to_string();
        let ext = path.extension()?.to_string_lossy().to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(Side::read_json(path)),
            "parquet" => Some(
                saved_findings(path)
                    .map(|findings| Side {
                        name: shown.clone(),
                        findings,
                        ..Side::default()
                    })
                    .map_err(|e| format!("{shown}: {e}")),
            ),
            _ => None,
        }
    }

    /// A run saved as JSON, whatever the file's name.
    pub fn read_json(path: &std::path::Path) -> Result<Side, String> {
        let shown = path.display().to_string();
        std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| Side::from_json(&shown, &text))
            .map_err(|e| format!("{shown}: {e}"))
    }

    fn counts(&self) -> BTreeMap<FindingKey, usize> {
        let mut m = BTreeMap::new();
        for f in &self.findings {
            *m.entry(FindingKey::from(f)).or_insert(0) += 1;
        }
        m
    }
}

/// Figures of the same key from several analyses: counts and totals add,
/// the maximum is the largest; percentiles cannot be combined without the
/// samples, so the larger group's are kept.
/// (Figures of a saved run are read back from its JSON: sums saturate.)
fn combine(into: &mut Vec<Aggregate>, more: &[Aggregate]) {
    // Where each key is, found once each (thousands of keys per node).
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, a) in into.iter().enumerate() {
        at.entry(a.key.clone()).or_insert(i);
    }
    for m in more {
        match at.get(&m.key) {
            Some(&i) => {
                let a = &mut into[i];
                if m.count > a.count {
                    a.p50_ns = m.p50_ns;
                    a.p95_ns = m.p95_ns;
                }
                a.count = a.count.saturating_add(m.count);
                a.unreturned = a.unreturned.saturating_add(m.unreturned);
                a.total_ns = a.total_ns.saturating_add(m.total_ns);
                a.max_ns = a.max_ns.max(m.max_ns);
            }
            None => {
                at.insert(m.key.clone(), into.len());
                into.push(m.clone());
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    Disappeared,
    Appeared,
    Stayed,
}

/// A kind of finding and how often each side has it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FindingChange {
    pub change: Change,
    #[serde(flatten)]
    pub key: FindingKey,
    pub before: usize,
    pub after: usize,
}

/// One entry point's or API's figures on both sides.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FigureChange {
    pub key: String,
    pub before: Option<Aggregate>,
    pub after: Option<Aggregate>,
    /// After minus before, of the total time (absent on one side: 0 there).
    pub total_change_ns: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diff {
    pub before: String,
    pub after: String,
    pub findings_before: usize,
    pub findings_after: usize,
    /// Counts of findings that disappeared, appeared and stayed.
    pub disappeared: usize,
    pub appeared: usize,
    pub stayed: usize,
    pub findings: Vec<FindingChange>,
    pub by_entry_point: Vec<FigureChange>,
    pub by_api: Vec<FigureChange>,
}

impl Diff {
    pub fn new(before: &Side, after: &Side) -> Diff {
        let (b, a) = (before.counts(), after.counts());
        let mut keys: Vec<&FindingKey> = b.keys().chain(a.keys()).collect();
        keys.sort();
        keys.dedup();
        let mut findings = Vec::new();
        let (mut gone, mut new, mut kept) = (0, 0, 0);
        for k in keys {
            let (nb, na) = (
                b.get(k).copied().unwrap_or(0),
                a.get(k).copied().unwrap_or(0),
            );
            let mut push = |change, before, after| {
                findings.push(FindingChange {
                    change,
                    key: k.clone(),
                    before,
                    after,
                })
            };
            if nb.min(na) > 0 {
                kept += nb.min(na);
                push(Change::Stayed, nb.min(na), nb.min(na));
            }
            if nb > na {
                gone += nb - na;
                push(Change::Disappeared, nb - na, 0);
            }
            if na > nb {
                new += na - nb;
                push(Change::Appeared, 0, na - nb);
            }
        }
        findings.sort_by(|x, y| (rank(&x.change), &x.key).cmp(&(rank(&y.change), &y.key)));
        Diff {
            before: before.name.clone(),
            after: after.name.clone(),
            findings_before: before.findings.len(),
            findings_after: after.findings.len(),
            disappeared: gone,
            appeared: new,
            stayed: kept,
            findings,
            by_entry_point: figures(&before.by_entry_point, &after.by_entry_point),
            by_api: figures(&before.by_api, &after.by_api),
        }
    }

    /// Findings of `after` the baseline does not account for: each kind
    /// beyond as many as the baseline had.
    pub fn new_findings(&self) -> impl Iterator<Item = &FindingChange> {
        self.findings
            .iter()
            .filter(|f| f.change == Change::Appeared)
    }
}

fn rank(c: &Change) -> u8 {
    match c {
        Change::Appeared => 0,
        Change::Disappeared => 1,
        Change::Stayed => 2,
    }
}

fn figures(before: &[Aggregate], after: &[Aggregate]) -> Vec<FigureChange> {
    // By key, looked up once each: a node's log has thousands of
    // (resource, entry point) keys. The first of a key, as a search would.
    fn index(side: &[Aggregate]) -> std::collections::HashMap<&str, &Aggregate> {
        let mut by_key = std::collections::HashMap::new();
        for a in side.iter().rev() {
            by_key.insert(a.key.as_str(), a);
        }
        by_key
    }
    let (before_by_key, after_by_key) = (index(before), index(after));
    let mut keys: Vec<&str> = before.iter().chain(after).map(|a| a.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .map(|k| {
            let b = before_by_key.get(k).map(|a| (*a).clone());
            let a = after_by_key.get(k).map(|a| (*a).clone());
            let total = |x: &Option<Aggregate>| x.as_ref().map_or(0, |x| x.total_ns);
            FigureChange {
                key: k.to_string(),
                total_change_ns: total(&a).saturating_sub(total(&b)),
                before: b,
                after: a,
            }
        })
        .collect()
}

/// Findings saved as Parquet: no duration figures, findings only.
#[cfg(feature = "polars")]
fn saved_findings(path: &std::path::Path) -> Result<Vec<Finding>, String> {
    super::frames::read_findings(path)
}

#[cfg(not(feature = "polars"))]
fn saved_findings(_: &std::path::Path) -> Result<Vec<Finding>, String> {
    Err("reading Parquet needs rhscope built with the `polars` feature".into())
}
