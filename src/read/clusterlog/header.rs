//! The header `Get-ClusterLog` writes before the log itself (Windows Server
//! 2016 and later): `[=== Section ===]` blocks. `Cluster` holds lines about
//! the node and the clock; `Resources`, `Resource Types`, `Groups` and
//! `Nodes` are CSV tables whose first row names the columns; channel
//! sections (`System`, `...Operational logs`, `...DiagnosticVerbose`) hold
//! prefixed log lines; `Cluster Logs` starts the log itself.

use std::collections::HashMap;

/// What a section holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Section {
    /// Lines about the node and the clock.
    Cluster,
    /// A CSV table (its name as written).
    Table(String),
    /// Lines of another event channel.
    Channel(String),
    /// The log itself.
    Log,
    /// Anything else: read past.
    Other(String),
}

impl Section {
    /// The section a `[=== Name ===]` line opens, if it is one.
    pub fn open(line: &str) -> Option<Section> {
        let name = line
            .trim()
            .strip_prefix("[===")?
            .strip_suffix("===]")?
            .trim();
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            "cluster" => Section::Cluster,
            "cluster logs" => Section::Log,
            "resources" | "resource types" | "groups" | "nodes" => Section::Table(name.into()),
            "system" => Section::Channel(name.into()),
            _ if lower.ends_with(" logs") || lower.contains("diagnosticverbose") => {
                Section::Channel(name.into())
            }
            _ => Section::Other(name.into()),
        })
    }
}

/// A resource as the header lists it. Times in milliseconds; a resource's
/// poll intervals of 0xFFFFFFFF ("use the type's") are resolved through
/// its type by [`LogHeader::thresholds`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResourceRow {
    pub name: String,
    pub resource_type: Option<String>,
    pub group: Option<String>,
    pub state: Option<String>,
    pub looks_alive_ms: Option<u64>,
    pub is_alive_ms: Option<u64>,
    pub deadlock_timeout_ms: Option<u64>,
    pub pending_timeout_ms: Option<u64>,
    pub separate_monitor: Option<bool>,
    pub restart_action: Option<u64>,
    pub restart_threshold: Option<u64>,
    pub restart_period_ms: Option<u64>,
    pub restart_delay_ms: Option<u64>,
    pub retry_period_ms: Option<u64>,
}

/// A resource type as the header lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResourceTypeRow {
    pub name: String,
    pub dll: Option<String>,
    pub looks_alive_ms: Option<u64>,
    pub is_alive_ms: Option<u64>,
    pub deadlock_timeout_ms: Option<u64>,
    pub pending_timeout_ms: Option<u64>,
}

/// A group (clustered role) and its owner when the log was written.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GroupRow {
    pub name: String,
    pub owner_node: Option<String>,
    pub state: Option<String>,
}

/// A resource's thresholds, the type's where the resource defers to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Thresholds {
    pub looks_alive_ms: Option<u64>,
    pub is_alive_ms: Option<u64>,
    pub deadlock_timeout_ms: Option<u64>,
    pub pending_timeout_ms: Option<u64>,
}

/// Everything the header says.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LogHeader {
    /// `Current node: name (NODE) id (N)`.
    pub node: Option<String>,
    pub node_id: Option<u32>,
    /// `Build Number NNNNN`.
    pub build: Option<u32>,
    /// The log was written in local time (`Get-ClusterLog -UseLocalTime`).
    pub local_time: bool,
    /// UTC = local time + this many minutes (the header's offset line).
    pub utc_offset_minutes: Option<i32>,
    pub resources: Vec<ResourceRow>,
    pub resource_types: Vec<ResourceTypeRow>,
    pub groups: Vec<GroupRow>,
    pub nodes: Vec<String>,
}

/// "Use the type's value".
const DEFER: u64 = 0xFFFF_FFFF;

impl LogHeader {
    /// Reads a line of the `Cluster` section.
    pub fn cluster_line(&mut self, line: &str) {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("Current node:") {
            let rest = rest.trim();
            let (name, after) = match rest.strip_prefix("name") {
                Some(r) if r.trim_start().starts_with('(') => {
                    let r = r.trim_start().trim_start_matches('(');
                    match r.split_once(')') {
                        Some((n, a)) => (n.trim(), a),
                        None => (r.trim(), ""),
                    }
                }
                _ => match rest.split_once(char::is_whitespace) {
                    Some((n, a)) => (n, a),
                    None => (rest, ""),
                },
            };
            if !name.is_empty() {
                self.node = Some(name.to_string());
            }
            self.node_id = after
                .split_once("id (")
                .and_then(|(_, r)| r.split_once(')'))
                .and_then(|(n, _)| n.trim().parse().ok());
        } else if let Some(rest) = l.strip_prefix("Build Number") {
            self.build = rest.trim().parse().ok();
        } else if l.contains("time zone offset of this machine is") || l.contains("bias in minutes")
        {
            // "...;the time zone offset of this machine is -60 minutes, or -1 hours"
            // "UTC= localtime + bias (bias in minutes): 0"
            let tail = l
                .rsplit_once(" is ")
                .map(|(_, t)| t)
                .or_else(|| l.rsplit_once("):").map(|(_, t)| t))
                .unwrap_or("");
            self.utc_offset_minutes = tail
                .split_whitespace()
                .next()
                .and_then(|n| n.trim_end_matches(',').parse().ok())
                // Time zones lie within a day of UTC: anything else is a
                // damaged line, and the times stay as written.
                .filter(|m: &i32| m.abs() <= 24 * 60);
        } else if l.starts_with("The logs were generated using local time") {
            self.local_time = true;
        }
    }

    /// Reads a table's rows (`columns` from its first row). A row whose
    /// fields do not match the columns is Err (the caller counts it).
    pub fn table_row(&mut self, table: &str, columns: &[String], line: &str) -> Result<(), String> {
        let cells = split_csv(line);
        if cells.len() != columns.len() {
            return Err(format!(
                "{} fields where the {table} table has {} columns",
                cells.len(),
                columns.len()
            ));
        }
        let row: HashMap<&str, &str> = columns
            .iter()
            .map(String::as_str)
            .zip(cells.iter().map(String::as_str))
            .collect();
        let text = |keys: &[&str]| -> Option<String> {
            keys.iter()
                .find_map(|k| row.get(k))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let num = |keys: &[&str]| text(keys).and_then(|v| v.parse::<u64>().ok());
        match table.to_ascii_lowercase().as_str() {
            "resources" => self.resources.push(ResourceRow {
                name: text(&["name"]).unwrap_or_default(),
                resource_type: text(&["resourcetype", "type"]),
                group: text(&["ownergroup", "group"]),
                state: text(&["state"]),
                looks_alive_ms: num(&["looksaliveinterval", "looksalivepollinterval"]),
                is_alive_ms: num(&["isaliveinterval", "isalivepollinterval"]),
                deadlock_timeout_ms: num(&["deadlocktimeout"]),
                pending_timeout_ms: num(&["pendingtimeout"]),
                separate_monitor: text(&["separatemonitor"])
                    .map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes")),
                restart_action: num(&["restartaction"]),
                restart_threshold: num(&["restartthreshold"]),
                restart_period_ms: num(&["restartperiod"]),
                restart_delay_ms: num(&["restartdelay"]),
                retry_period_ms: num(&["retryperiodonfailure"]),
            }),
            "resource types" => self.resource_types.push(ResourceTypeRow {
                name: text(&["name"]).unwrap_or_default(),
                dll: text(&["dllname", "dll"]),
                looks_alive_ms: num(&["looksaliveinterval", "looksalivepollinterval"]),
                is_alive_ms: num(&["isaliveinterval", "isalivepollinterval"]),
                deadlock_timeout_ms: num(&["deadlocktimeout"]),
                pending_timeout_ms: num(&["pendingtimeout"]),
            }),
            "groups" => self.groups.push(GroupRow {
                name: text(&["name"]).unwrap_or_default(),
                owner_node: text(&["ownernode"]),
                state: text(&["state"]),
            }),
            "nodes" => self.nodes.extend(text(&["name"])),
            _ => {}
        }
        Ok(())
    }

    /// A resource's row, by name.
    pub fn resource(&self, name: &str) -> Option<&ResourceRow> {
        self.resources.iter().find(|r| r.name == name)
    }

    /// A resource's thresholds: its own, its type's where it defers to the
    /// type (0xFFFFFFFF) or says nothing.
    pub fn thresholds(&self, name: &str) -> Thresholds {
        let r = self.resource(name);
        let t = r
            .and_then(|r| r.resource_type.as_deref())
            .and_then(|ty| self.resource_types.iter().find(|t| t.name == ty));
        let pick = |own: Option<u64>, of_type: Option<u64>| match own {
            Some(v) if v != DEFER => Some(v),
            _ => of_type.filter(|&v| v != DEFER),
        };
        Thresholds {
            looks_alive_ms: pick(
                r.and_then(|r| r.looks_alive_ms),
                t.and_then(|t| t.looks_alive_ms),
            ),
            is_alive_ms: pick(r.and_then(|r| r.is_alive_ms), t.and_then(|t| t.is_alive_ms)),
            deadlock_timeout_ms: pick(
                r.and_then(|r| r.deadlock_timeout_ms),
                t.and_then(|t| t.deadlock_timeout_ms),
            ),
            pending_timeout_ms: pick(
                r.and_then(|r| r.pending_timeout_ms),
                t.and_then(|t| t.pending_timeout_ms),
            ),
        }
    }

    /// The DLL of a resource's type.
    pub fn dll(&self, resource: &str) -> Option<&str> {
        let ty = self.resource(resource)?.resource_type.as_deref()?;
        self.resource_types
            .iter()
            .find(|t| t.name == ty)?
            .dll
            .as_deref()
    }
}

/// A table's column names as they compare: lower case, leading
/// underscores gone (`_deadlockTimeout` and `DeadlockTimeout` alike).
pub fn columns(line: &str) -> Vec<String> {
    split_csv(line)
        .iter()
        .map(|c| c.trim().trim_start_matches('_').to_ascii_lowercase())
        .collect()
}

/// Splits a CSV line (RFC 4180 quoting).
pub fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cell)),
            (c, _) => cell.push(c),
        }
    }
    out.push(cell);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_and_cluster_lines() {
        assert_eq!(Section::open("[=== Cluster ===]"), Some(Section::Cluster));
        assert_eq!(Section::open("[=== Cluster Logs ===]"), Some(Section::Log));
        assert_eq!(
            Section::open("[=== Microsoft-Windows-FailoverClustering/Operational logs ===]"),
            Some(Section::Channel(
                "Microsoft-Windows-FailoverClustering/Operational logs".into()
            ))
        );
        assert_eq!(
            Section::open("[=== Resource Types ===]"),
            Some(Section::Table("Resource Types".into()))
        );
        assert_eq!(Section::open("[System] 1.2::x"), None);
        let mut h = LogHeader::default();
        for l in [
            "UTC = localtime + time zone offset;the time zone offset of this machine is -60 minutes, or -1 hours",
            "The logs were generated using local time. (...)",
            "Build Number 17763",
            "Current node: name (NODE-A) id (1)",
        ] {
            h.cluster_line(l);
        }
        assert_eq!(
            (
                h.node.as_deref(),
                h.node_id,
                h.build,
                h.local_time,
                h.utc_offset_minutes
            ),
            (Some("NODE-A"), Some(1), Some(17763), true, Some(-60))
        );
        let mut old = LogHeader::default();
        old.cluster_line("UTC= localtime + bias (bias in minutes): 300");
        old.cluster_line("Current node: SQL01 (1) id (1)");
        assert_eq!(
            (old.utc_offset_minutes, old.node.as_deref()),
            (Some(300), Some("SQL01"))
        );
    }

    #[test]
    fn tables_by_column_name_and_thresholds_through_types() {
        let mut h = LogHeader::default();
        let res = columns("Name,Id,State,_looksAliveInterval,_isAliveInterval,_deadlockTimeout,_pendingTimeout,_separateMonitor,OwnerGroup,resourceType");
        h.table_row(
            "Resources",
            &res,
            "ReportSvc,c9d0,Online,4294967295,30000,120000,180000,0,Reporting,Generic Service",
        )
        .unwrap();
        h.table_row("Resources", &res, "\"Disk, 2\",a41b,Online,4294967295,4294967295,300000,180000,1,Available Storage,Physical Disk").unwrap();
        assert!(h.table_row("Resources", &res, "too,few").is_err());
        let ty = columns("Name,DllName,LooksAlivePollInterval,IsAlivePollInterval,DeadlockTimeout,PendingTimeout");
        h.table_row(
            "Resource Types",
            &ty,
            "Generic Service,clusres.dll,5000,60000,300000,180000",
        )
        .unwrap();
        let t = h.thresholds("ReportSvc");
        assert_eq!(
            (
                t.looks_alive_ms,
                t.is_alive_ms,
                t.deadlock_timeout_ms,
                t.pending_timeout_ms
            ),
            (Some(5000), Some(30000), Some(120000), Some(180000))
        );
        assert_eq!(h.dll("ReportSvc"), Some("clusres.dll"));
        let d = h.resource("Disk, 2").unwrap();
        assert_eq!(
            (d.separate_monitor, d.group.as_deref()),
            (Some(true), Some("Available Storage"))
        );
        assert_eq!(h.thresholds("Disk, 2").is_alive_ms, None);
    }
}
