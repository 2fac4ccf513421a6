//! Which node hosted which resource, when: each node's own states of its
//! resources (RCM's state machine, event 1637, the DLL's reported states)
//! as periods, and the cluster's view as those periods side by side, node
//! by node. Nothing is merged across nodes: a row is one node's evidence.

use std::collections::BTreeMap;

use crate::model::{Record, Spans, Timestamp};

use super::Analysis;

/// One stretch of time a node held a resource active (anything from
/// issuing its Online to it being Offline or Failed again).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hosting {
    pub resource: String,
    pub from: Timestamp,
    /// When it went Offline or Failed; None while still active at the end
    /// of the node's evidence.
    pub to: Option<Timestamp>,
    /// Its state at `to`, or the last one seen.
    pub state: String,
    /// It passed through a failure (ProcessingFailure, Failed) on the way.
    pub failed: bool,
}

/// States in which a resource is not hosted anywhere.
fn at_rest(state: &str) -> bool {
    matches!(state, "Offline" | "Failed")
}

fn failure(state: &str) -> bool {
    matches!(state, "Failed" | "ProcessingFailure")
}

/// The node's periods of each resource, by resource then time.
pub fn periods(spans: &Spans) -> Vec<Hosting> {
    let mut by_resource: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for s in &spans.statuses {
        if let (Some(r), Some(_)) = (s.resource.as_deref(), s.state.as_deref()) {
            by_resource.entry(r).or_default().push(s);
        }
    }
    let mut out = Vec::new();
    for (resource, states) in by_resource {
        let mut open: Option<Hosting> = None;
        for s in states {
            let state = s.state.as_deref().unwrap_or_default();
            match open.as_mut() {
                None if at_rest(state) => {}
                None => {
                    open = Some(Hosting {
                        resource: resource.to_string(),
                        from: Timestamp(s.time_ns),
                        to: None,
                        state: state.to_string(),
                        failed: failure(state),
                    })
                }
                Some(h) => {
                    h.state = state.to_string();
                    h.failed |= failure(state);
                    if at_rest(state) {
                        h.to = Some(Timestamp(s.time_ns));
                        out.extend(open.take());
                    }
                }
            }
        }
        out.extend(open);
    }
    out
}

/// One row of the cluster's view: a node's period of a resource.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterRow {
    pub node: String,
    #[serde(flatten)]
    pub hosting: Hosting,
}

/// Every node's periods, by resource and then time: who hosted what, when.
/// Analyses of no known node are named by their inputs.
pub fn cluster_view(all: &[Analysis]) -> Vec<ClusterRow> {
    let mut rows: Vec<ClusterRow> = all
        .iter()
        .flat_map(|a| {
            let node = a.node.clone().unwrap_or_else(|| a.trace.clone());
            a.hosting.iter().map(move |h| ClusterRow {
                node: node.clone(),
                hosting: h.clone(),
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.hosting.resource, a.hosting.from, &a.node).cmp(&(
            &b.hosting.resource,
            b.hosting.from,
            &b.node,
        ))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Evidence, RecordKind};

    fn state(t: i64, resource: &str, state: &str) -> Record {
        let mut r = Record::new(
            RecordKind::ResourceState,
            t,
            Evidence::Line {
                input: 0,
                line: 1,
                time: crate::model::Timestamp(t),
            },
        );
        r.resource = Some(resource.into());
        r.state = Some(state.into());
        r
    }

    #[test]
    fn periods_run_from_first_activity_to_rest() {
        let spans = Spans {
            statuses: vec![
                state(1, "A", "OnlineCallIssued"),
                state(2, "A", "Online"),
                state(3, "B", "Online"),
                state(4, "A", "ProcessingFailure"),
                state(5, "A", "Failed"),
                state(6, "A", "Offline"),
                state(7, "A", "OnlineCallIssued"),
            ]
            .into(),
            ..Spans::default()
        };
        let p = periods(&spans);
        let row = |h: &Hosting| {
            (
                h.resource.clone(),
                h.from.0,
                h.to.map(|t| t.0),
                h.state.clone(),
                h.failed,
            )
        };
        assert_eq!(
            p.iter().map(row).collect::<Vec<_>>(),
            [
                ("A".to_string(), 1, Some(5), "Failed".to_string(), true),
                (
                    "A".to_string(),
                    7,
                    None,
                    "OnlineCallIssued".to_string(),
                    false
                ),
                ("B".to_string(), 3, None, "Online".to_string(), false),
            ]
        );
    }
}
