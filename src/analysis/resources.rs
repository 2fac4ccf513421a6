//! What is known of each resource: its type, role and DLL, and the
//! thresholds the rules hold it to (its own, from a cluster.log header,
//! where the inputs have one; RHS's defaults otherwise).

use std::collections::BTreeMap;

use super::Config;
use crate::model::time::MS_NS;
use crate::model::{RecordKind, Spans};
use crate::read::clusterlog::LogHeader;

/// A threshold and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Threshold {
    pub ns: i64,
    /// "resource" (its own property, from the log header), "type" (its
    /// resource type's), or "default" (RHS's default).
    pub from: &'static str,
}

impl Threshold {
    /// RHS's default, as configured.
    fn default(ns: i64) -> Threshold {
        Threshold {
            ns,
            from: "default",
        }
    }
}

/// The DeadlockTimeout `resource` is held to: its own or its type's where
/// the inputs say, else the configured default.
pub fn deadlock_timeout(resources: &Resources, resource: Option<&str>, cfg: &Config) -> Threshold {
    resource
        .and_then(|r| resources.get(r))
        .map_or(Threshold::default(cfg.deadlock_timeout_ns), |f| {
            f.deadlock_timeout
        })
}

/// The PendingTimeout `resource` is held to, likewise.
pub fn pending_timeout(resources: &Resources, resource: Option<&str>, cfg: &Config) -> Threshold {
    resource
        .and_then(|r| resources.get(r))
        .map_or(Threshold::default(cfg.pending_timeout_ns), |f| {
            f.pending_timeout
        })
}

/// One resource, as the inputs describe it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResourceFacts {
    pub name: String,
    pub resource_type: Option<String>,
    /// The clustered role (group) it belongs to.
    pub group: Option<String>,
    /// Its resource type's DLL.
    pub dll: Option<String>,
    pub deadlock_timeout: Threshold,
    pub pending_timeout: Threshold,
    pub looks_alive_ms: Option<u64>,
    pub is_alive_ms: Option<u64>,
    /// Whether it ran in a separate RHS process when the log was written.
    pub separate_monitor: Option<bool>,
}

/// Every resource the inputs name, by name.
pub type Resources = BTreeMap<String, ResourceFacts>;

/// Resources from the headers of the inputs' cluster.logs, the timeline's
/// spans and the cluster's events (1230 names a resource's type and DLL).
pub fn facts(headers: &[LogHeader], spans: &Spans, cfg: &Config) -> Resources {
    // Looked up before inserting: a timeline names the same few resources
    // in every one of its spans, and a new key would cost a copy of the
    // name each time.
    let update = |out: &mut Resources, name: &str, change: &mut dyn FnMut(&mut ResourceFacts)| {
        if let Some(f) = out.get_mut(name) {
            change(f);
            return;
        }
        let mut f = ResourceFacts {
            name: name.to_string(),
            resource_type: None,
            group: None,
            dll: None,
            deadlock_timeout: Threshold::default(cfg.deadlock_timeout_ns),
            pending_timeout: Threshold::default(cfg.pending_timeout_ns),
            looks_alive_ms: None,
            is_alive_ms: None,
            separate_monitor: None,
        };
        change(&mut f);
        out.insert(name.to_string(), f);
    };
    let mut out = Resources::new();
    for h in headers {
        for row in &h.resources {
            let t = h.thresholds(&row.name);
            let own = |v: Option<u64>| v.filter(|&x| x != 0xFFFF_FFFF).is_some();
            // The value in force, and whether the resource's own row
            // set it or its type's did.
            let set = |held: Option<u64>, own_row: Option<u64>| {
                held.map(|ms| Threshold {
                    ns: ms as i64 * MS_NS,
                    from: if own(own_row) { "resource" } else { "type" },
                })
            };
            update(&mut out, &row.name, &mut |f| {
                f.resource_type.clone_from(&row.resource_type);
                f.group.clone_from(&row.group);
                f.dll = h.dll(&row.name).map(str::to_string);
                f.separate_monitor = row.separate_monitor;
                f.looks_alive_ms = t.looks_alive_ms;
                f.is_alive_ms = t.is_alive_ms;
                if let Some(held) = set(t.deadlock_timeout_ms, row.deadlock_timeout_ms) {
                    f.deadlock_timeout = held;
                }
                if let Some(held) = set(t.pending_timeout_ms, row.pending_timeout_ms) {
                    f.pending_timeout = held;
                }
            });
        }
    }
    // A node's log has a few thousand resources and millions of spans,
    // which share their names: each (name, type) pair is looked up once,
    // in the order the spans first show it.
    let mut seen: foldhash::HashSet<(*const u8, *const u8)> = Default::default();
    for e in &spans.entries {
        let type_at = e
            .resource_type
            .as_deref()
            .map_or(std::ptr::null(), str::as_ptr);
        if !seen.insert((e.resource.as_ptr(), type_at)) {
            continue;
        }
        update(&mut out, &e.resource, &mut |f| {
            if f.resource_type.is_none() {
                f.resource_type = e.resource_type.as_deref().map(str::to_string);
            }
        });
    }
    for r in spans
        .events
        .iter()
        .filter(|r| r.kind == RecordKind::ClusterEvent)
    {
        let Some(name) = r.resource.as_deref() else {
            continue;
        };
        update(&mut out, name, &mut |f| {
            if f.resource_type.is_none() {
                f.resource_type.clone_from(&r.resource_type);
            }
            if f.dll.is_none() {
                f.dll.clone_from(&r.image);
            }
            if f.group.is_none() {
                f.group.clone_from(&r.group);
            }
        });
    }
    out
}
