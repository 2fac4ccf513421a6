//! What real nodes write, with no instrumentation in the DLL: the hand-made
//! logs of `tests/data/clusterlog/` in every shape of the reference (the
//! WS2016+ header and channel sections in UTF-16, the WS2012 R2 form in
//! ANSI, local time, several nodes), every line shape mapped, and the
//! FailoverClustering events of an .evtx.

mod common;
#[path = "common/evtx_writer.rs"]
mod evtx_writer;

use std::path::{Path, PathBuf};

use rhscope::analysis::Analysis;
use rhscope::model::{EntryPoint, Evidence, Record, RecordKind};
use rhscope::providers::ProviderSet;
use rhscope::read::clusterlog::ClusterLog;

fn log(name: &str) -> PathBuf {
    common::data(&format!("clusterlog/{name}"))
}

/// A finding as (rule, resource or role, entry point, pid, tid, begin,
/// duration, never returned, status).
type Row = (
    String,
    String,
    Option<EntryPoint>,
    u32,
    u32,
    String,
    Option<i64>,
    bool,
    Option<u64>,
);

fn rows(a: &Analysis) -> Vec<Row> {
    a.findings
        .iter()
        .map(|r| {
            let f = &r.finding;
            (
                rhscope::model::label(&f.rule),
                f.resource.clone().or(f.group.clone()).unwrap_or_default(),
                f.entry_point,
                f.pid,
                f.tid,
                f.begin.rfc3339(),
                f.duration_ns,
                f.never_returned,
                f.status,
            )
        })
        .collect()
}

/// One row of an expected-findings table, one argument per column.
#[allow(clippy::too_many_arguments)]
fn row(
    rule: &str,
    what: &str,
    ep: Option<EntryPoint>,
    ids: (u32, u32),
    begin: &str,
    duration: Option<i64>,
    never_returned: bool,
    status: Option<u64>,
) -> Row {
    (
        rule.into(),
        what.into(),
        ep,
        ids.0,
        ids.1,
        begin.into(),
        duration,
        never_returned,
        status,
    )
}

const MS: i64 = 1_000_000;

#[test]
fn a_ws2019_node_tells_the_whole_story() {
    let a = common::log_analysis(&log("NODE-A_cluster.log")).0;
    assert_eq!(a.node, None, "named by the caller, from the header");
    let h = ClusterLog::open(&log("NODE-A_cluster.log")).unwrap();
    assert_eq!(h.node(), Some("NODE-A"));
    assert_eq!(h.header().build, Some(17763));
    assert_eq!(a.resources.len(), 7);
    let report = &a.resource_facts["ReportSvc"];
    assert_eq!(
        (report.deadlock_timeout.ns, report.deadlock_timeout.from),
        (120_000 * MS, "resource")
    );
    assert_eq!(report.is_alive_ms, Some(30_000));
    assert_eq!(
        report.looks_alive_ms,
        Some(5_000),
        "the type's, as deferred"
    );
    use EntryPoint::*;
    let t = "2024-03-12T";
    #[rustfmt::skip]
    let expected = [
        row("deadlock-timeout", "ContosoApp", Some(Online), (0x1a40, 0x2b44), &format!("{t}10:00:00.112000000Z"), Some(300_119 * MS), true, None),
        row("rhs-restart", "ContosoApp", None, (0x1a40, 0x1e88), &format!("{t}10:05:00.231000000Z"), None, false, None),
        row("slow-entry-point", "ContosoApp", Some(Online), (0x2d14, 0x2d3c), &format!("{t}10:05:01.243000000Z"), Some(2_155 * MS), false, None),
        row("slow-entry-point", "FS1-FileServer", Some(Online), (0x2cb0, 0x2cd8), &format!("{t}10:05:00.980000000Z"), Some(1_427 * MS), false, None),
        row("slow-entry-point", "ReportSvc", Some(Online), (0x1a40, 0x2b58), &format!("{t}09:41:13.313000000Z"), Some(642 * MS), false, None),
        row("slow-entry-point", "ReportSvc", Some(Online), (0x2cb0, 0x2cec), &format!("{t}10:05:00.980000000Z"), Some(632 * MS), false, None),
        row("health-check-failed", "ReportSvc", Some(IsAlive), (0x1a40, 0x24d0), &format!("{t}09:41:12.598000000Z"), None, false, None),
        row("call-failed", "Cluster Disk 2", Some(ResourceControl), (0xe18, 0xf2c), &format!("{t}09:52:30.420000000Z"), None, false, Some(5023)),
        row("call-failed", "ContosoApp", Some(Online), (0x2d14, 0x2d3c), &format!("{t}10:05:01.243000000Z"), Some(2_155 * MS), false, Some(1225)),
        row("resource-failed", "ContosoApp", None, (0xb84, 0x11c8), &format!("{t}10:05:03.402000000Z"), None, false, Some(1225)),
        row("resource-failed", "ContosoApp", None, (0xb84, 0x1f3c), &format!("{t}10:05:00.741000000Z"), None, false, None),
        row("role-failed", "ContosoApp", None, (0xb84, 0x11c8), &format!("{t}10:05:03.415000000Z"), None, false, None),
    ];
    assert_eq!(rows(&a), expected);
    // The control code by its name; the failure's cause.
    let control = a
        .findings
        .iter()
        .find(|r| r.finding.resource.as_deref() == Some("Cluster Disk 2"))
        .unwrap();
    assert_eq!(control.finding.api.as_deref(), Some("STORAGE_GET_DIRTY"));
    let failed = a
        .findings
        .iter()
        .find(|r| {
            r.finding.status == Some(1225) && r.finding.rule == rhscope::model::Rule::ResourceFailed
        })
        .unwrap();
    assert_eq!(
        failed.cause,
        [
            "2024-03-12T10:05:00.231000000Z: RHS's deadlock monitor: RhsCall::DeadlockMonitor: Call ONLINERESOURCE timed out by 118 milliseconds for resource 'ContosoApp'.",
            "2024-03-12T10:05:03.398000000Z: Online failed",
            "2024-03-12T10:05:03.399000000Z: Online failed with status 1225",
        ]
    );
    // One incident: the offender, its DLL, the threshold, what followed.
    assert_eq!(a.incidents.len(), 1);
    let i = &a.incidents[0];
    assert_eq!(i.rhs_pid, Some(0x1a40));
    assert_eq!(
        (
            i.resource.as_deref(),
            i.resource_type.as_deref(),
            i.dll.as_deref()
        ),
        (
            Some("ContosoApp"),
            Some("Contoso Application"),
            Some("contosores.dll")
        )
    );
    assert_eq!(
        (i.blocked_ns, i.threshold.ns, i.threshold.from),
        (Some(300_119 * MS), 300_000 * MS, "resource")
    );
    assert_eq!(i.collateral, ["FS1-FileServer", "ReportSvc"]);
    assert!(i.separate_monitor);
    let then: Vec<&str> = i.then.iter().map(|s| s.what.as_str()).collect();
    assert_eq!(
        then,
        [
            "RHS cleaned up ContosoApp's call and terminated",
            "RCM moved ContosoApp to a separate monitor",
            "event 1230: ContosoApp exceeded its time-out",
            "RHS submitted a WER report (WerReportQueued)",
            "event 1146: the RHS process was terminated and will be restarted",
            "RCM restarted FS1-FileServer with the RHS process",
            "RCM restarted ReportSvc with the RHS process",
            "RCM restarted ContosoApp in a new RHS process",
            "event 1069: ContosoApp failed",
            "event 1069: ContosoApp failed",
        ]
    );
    assert!(i.advice.contains("ClusWorkerCreate") && i.advice.contains("ERROR_IO_PENDING"));
    // Counts: every line read, nothing unparsed, health checks whose end
    // the log does not write are neither hangs nor lost.
    assert_eq!(
        (
            a.unparsed_lines,
            a.unmatched_ends,
            a.lost_ends,
            a.ends_not_logged
        ),
        (0, 0, 1, 2)
    );
    assert_eq!(
        a.findings[0].evidence[0],
        Evidence::Line {
            input: 0,
            line: 92,
            time: rhscope::model::Timestamp::parse("2024-03-12T10:05:00.231Z").unwrap()
        }
    );
}

#[test]
fn a_ws2012r2_node_in_ansi() {
    let a = common::log_analysis(&log("NODE1_cluster.log")).0;
    use EntryPoint::*;
    let t = "2016-09-21T";
    #[rustfmt::skip]
    let expected = [
        row("deadlock-timeout", "LegacySvc", Some(LooksAlive), (0x1324, 0x1374), &format!("{t}14:02:05.290000000Z"), Some(300_017 * MS), true, None),
        row("rhs-restart", "LegacySvc", None, (0x1324, 0x1388), &format!("{t}14:07:05.307000000Z"), None, false, None),
        row("slow-entry-point", "LegacyDB", Some(Online), (0x1324, 0x1360), &format!("{t}14:00:05.018000000Z"), Some(3_826 * MS), false, None),
        row("slow-entry-point", "LegacySvc", Some(Online), (0x1a08, 0x1a30), &format!("{t}14:07:06.220000000Z"), Some(1_784 * MS), false, None),
        row("slow-entry-point", "LegacySvc", Some(Online), (0x1a08, 0x1a30), &format!("{t}14:09:12.140000000Z"), Some(1_630 * MS), false, None),
        row("health-check-failed", "LegacySvc", Some(IsAlive), (0x1a08, 0x1a44), &format!("{t}14:09:11.630000000Z"), None, false, None),
        row("call-failed", "LegacyDB", Some(Online), (0x1324, 0x1360), &format!("{t}14:00:05.018000000Z"), Some(3_826 * MS), false, Some(1053)),
    ];
    assert_eq!(rows(&a), expected);
    let i = &a.incidents[0];
    assert_eq!(i.collateral, ["LegacyDB"]);
    assert_eq!(i.threshold.from, "default");
    assert_eq!(a.lost_ends, 0);
}

/// The log's text (UTF-16 decoded).
fn text(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    rhscope::read::text::utf16_lossy(&bytes[2..])
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rhscope-nodes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn the_same_log_in_utf8_and_in_local_time_says_the_same() {
    let utc = rows(&common::log_analysis(&log("NODE-A_cluster.log")).0);
    let plain = text(&log("NODE-A_cluster.log"));
    assert_eq!(
        rows(&common::log_analysis(&write("utf8.log", plain.as_bytes())).0),
        utc
    );
    // -UseLocalTime one hour east of UTC: every time an hour later, the
    // header saying so.
    let shifted: String = plain
        .split("\r\n")
        .map(|line| {
            let at = line.find("::2024/03/12-");
            match at {
                Some(i) => {
                    let hour: u32 = line[i + 13..i + 15].parse().unwrap();
                    format!("{}{:02}{}", &line[..i + 13], hour + 1, &line[i + 15..])
                }
                None if line.starts_with("The logs were generated") => {
                    "The logs were generated using local time.".to_string()
                }
                None => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    let local = common::log_analysis(&write("local.log", shifted.as_bytes())).0;
    assert_eq!(rows(&local), utc);
    assert!(
        local
            .notes
            .iter()
            .any(|n| n
                .contains("written in local time; times converted to UTC (UTC = local - 60 min)")),
        "{:?}",
        local.notes
    );
}

#[test]
fn nodes_of_one_cluster_stay_apart() {
    // NODE-A's and NODE-B's RHS have the same pid: nothing ties them.
    let dir = common::temp_dir("cluster");
    for n in ["NODE-A_cluster.log", "NODE-B_cluster.log"] {
        std::fs::copy(log(n), dir.join(n)).unwrap();
    }
    std::fs::write(dir.join("notes.txt"), "the case\n").unwrap();
    let o = common::rhscope(&["analyze", dir.to_str().unwrap(), "--format", "json", "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("skipped") && err.contains("notes.txt"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let analyses = v["analyses"].as_array().unwrap();
    let nodes: Vec<&str> = analyses
        .iter()
        .map(|a| a["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["NODE-A", "NODE-B"]);
    assert_eq!(analyses[0]["findings"].as_array().unwrap().len(), 12);
    assert_eq!(analyses[0]["duplicates"], 0);
    // On NODE-B, ContosoApp's Online returned pending and came online.
    assert_eq!(analyses[1]["findings"].as_array().unwrap().len(), 0);
    assert_eq!(analyses[1]["duplicates"], 0);
    let online = &analyses[1]["by_entry_point"][0];
    assert_eq!(
        (online["key"].as_str(), online["count"].as_u64()),
        (Some("ContosoApp Online"), Some(1))
    );
    assert_eq!(online["max_ns"], 42 * MS);
    // The cluster as a whole: which node held ContosoApp active, when.
    let cluster: Vec<(&str, &str, &str, Option<&str>, &str)> = v["cluster"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["resource"].as_str().unwrap(),
                r["node"].as_str().unwrap(),
                r["from"].as_str().unwrap(),
                r["to"].as_str(),
                r["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        cluster[..2],
        [
            (
                "ContosoApp",
                "NODE-A",
                "2024-03-12T10:00:00.112000000Z",
                Some("2024-03-12T10:05:03.416000000Z"),
                "Failed"
            ),
            (
                "ContosoApp",
                "NODE-B",
                "2024-03-12T10:05:03.860000000Z",
                None,
                "Online"
            ),
        ]
    );
    assert_eq!(cluster.len(), 4);
    let text = common::rhscope(&["analyze", dir.to_str().unwrap(), "-q"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("cluster    which node held each resource active"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The record one line maps to.
fn map(component: &str, text: &str) -> Option<Record> {
    let base = Record::new(
        RecordKind::RhsMessage,
        0,
        Evidence::Line {
            input: 0,
            line: 1,
            time: rhscope::model::Timestamp(0),
        },
    );
    ProviderSet::embedded()
        .match_message(text, component, &base)
        .map(|r| r.unwrap())
}

#[test]
fn every_line_shape_of_the_reference_maps() {
    use RecordKind::*;
    type Want = (RecordKind, Option<&'static str>, Option<EntryPoint>);
    let cases: &[(&str, &str, Want)] = &[
        ("RCM", "Issuing Online(File Share Witness) to RHS.", (CallIssued, Some("File Share Witness"), Some(EntryPoint::Online))),
        ("RCM", "Issuing Arbitrate(agMyDatabaseProd_12.3.4.567) to RHS.", (CallIssued, Some("agMyDatabaseProd_12.3.4.567"), Some(EntryPoint::Arbitrate))),
        ("RHS", "Enqueuing Arbitrate call.", (CallQueued, None, Some(EntryPoint::Arbitrate))),
        ("RHS", "IsAliveCall::CallIntoResource(FS1-FileServer)", (CallEntered, Some("FS1-FileServer"), Some(EntryPoint::IsAlive))),
        ("RHS", "Resource agMyDatabaseProd_MyListenerName has come online. RHS is about to report status change to RCM", (CallReturned, Some("agMyDatabaseProd_MyListenerName"), Some(EntryPoint::Online))),
        ("RHS", "Resource ag has come offline. RHS is about to report resource status to RCM.", (CallReturned, Some("ag"), Some(EntryPoint::Offline))),
        ("RHS", "Online for resource AOCProd01AG failed. ", (CallReturned, Some("AOCProd01AG"), Some(EntryPoint::Online))),
        ("RHS", "Resource X has indicated that it cannot come online on this node.", (CallReturned, Some("X"), Some(EntryPoint::Online))),
        ("RHS", "Resource myAgName IsAlive has indicated failure.", (HealthCheckFailed, Some("myAgName"), Some(EntryPoint::IsAlive))),
        ("RHS", "Resource w LooksAlive has indicated failure.", (HealthCheckFailed, Some("w"), Some(EntryPoint::LooksAlive))),
        ("RHS", "Error 5023 from ResourceControl for resource G:\\.", (CallReturned, Some("G:\\"), Some(EntryPoint::ResourceControl))),
        ("RCM", "ResourceControl(STORAGE_GET_DIRTY) to G:\\ returned 5023.", (CallReturned, Some("G:\\"), Some(EntryPoint::ResourceControl))),
        ("RCM", "HandleMonitorReply: ONLINERESOURCE for 'ContosoApp', gen(2) result 1225/0.", (CallReturned, Some("ContosoApp"), Some(EntryPoint::Online))),
        ("RCM", "HandleMonitorReply: OFFLINERESOURCE for 'Cloud Witness'", (CallReturned, Some("Cloud Witness"), Some(EntryPoint::Offline))),
        ("RCM", "HandleMonitorReply: TERMINATERESOURCE for 'R', gen(2) result 0/0.", (CallReturned, Some("R"), Some(EntryPoint::Terminate))),
        ("RHS", "RhsCall::DeadlockMonitor: Call LOOKSALIVE timed out by 16 milliseconds for resource 'File Share Witness'.", (DeadlockTimeout, Some("File Share Witness"), Some(EntryPoint::LooksAlive))),
        ("RHS", "RhsCall::DeadlockMonitor: Call ONLINERESOURCE timed out for resource 'TSM-Server-TSM1'.", (DeadlockTimeout, Some("TSM-Server-TSM1"), Some(EntryPoint::Online))),
        ("RHS", "RhsCall::DeadlockMonitor: Call RESOURCECONTROL timed out for resource 'Disk: 1'.", (DeadlockTimeout, Some("Disk: 1"), Some(EntryPoint::ResourceControl))),
        ("RHS", "Resource TSM-Server-TSM1 handling deadlock. Cleaning current operation.", (RhsRestart, Some("TSM-Server-TSM1"), None)),
        ("RHS", "WER report is submitted. Result : WerReportQueued.", (WerReport, None, None)),
        ("RCM", "rcm::RcmResource::HandleMonitorReply: Resource 'File Share Witness' has crashed or deadlocked; marking it to run in a separate monitor.", (SeparateMonitor, Some("File Share Witness"), None)),
        ("RCM", "rcm::RcmMonitor::RestartResources: Monitor restart for resource agMyDatabaseProd_12.3.4.567", (MonitorRestart, Some("agMyDatabaseProd_12.3.4.567"), None)),
        ("RCM", "rcm::RcmResource::ReattachToMonitorProcess: (agMyDatabaseProd_12.3.4.567, Online)", (MonitorRestart, Some("agMyDatabaseProd_12.3.4.567"), None)),
        ("RCM", "Separate monitor flag has changed for resource 'File Share Witness'.  Now hosted by RHS process 0", (SeparateMonitor, Some("File Share Witness"), None)),
        ("RCM", "Res File Share Witness: Offline -> OnlineCallIssued( StateUnknown )", (ResourceState, Some("File Share Witness"), None)),
        ("RCM", "Res G:\\: Online -> OnlinePending", (ResourceState, Some("G:\\"), None)),
        ("RCM", "TransitionToState(ag) Online-->OfflineCallIssued.", (ResourceState, Some("ag"), None)),
        ("RHS", "Resource IP Address 10.0.1.0 called SetResourceStatusEx: checkpoint 5. Old state OnlinePending, new state OnlinePending, AppSpErrorCode 0, Flags 0, nores=false", (ResourceState, Some("IP Address 10.0.1.0"), None)),
        ("RCM", "move of group AOCProd01AG from CO2ICMV3SQL09(1) to CO2ICMV3SQL10(2) of type MoveType::Manual is about to succeed, failoverCount=3, lastFailoverTime=2020/08/05-02:08:54.524 targeted=true ", (GroupMoved, None, None)),
        ("RES", "SQL Server Availability Group <ag>: [hadrag] Resource Alive result 0.", (ResourceLine, Some("ag"), None)),
        ("RES", "Physical Disk <Quorum Disk>: ResHardDiskArbitrateInternal: PR Arbitration for disk Error: 170", (ResourceLine, Some("Quorum Disk"), None)),
        ("", "A component on the server did not respond in a timely fashion. This caused the cluster resource 'ContosoApp' (resource type 'Contoso Application', DLL 'contosores.dll') to exceed its time-out threshold. As part of cluster health detection, recovery actions will be taken.", (ClusterEvent, Some("ContosoApp"), None)),
        ("", "A component on the server did not respond in a timely fashion. This caused the cluster resource 'Disk' (resource type 'Physical Disk', DLL 'clusres.dll') to exceed its time-out threshold while processing control code '0x1000001;'. As part of ...", (ClusterEvent, Some("Disk"), None)),
        ("", "Cluster resource 'R' (resource type 'T', DLL 'd.dll') did not respond to a request in a timely fashion. Cluster health detection will attempt to automatically recover", (ClusterEvent, Some("R"), None)),
        ("", "Cluster resource 'R' (resource type 'T', DLL 'd.dll') either crashed or deadlocked. The Resource Hosting Subsystem (RHS) process will now attempt to terminate", (ClusterEvent, Some("R"), None)),
        ("", "The cluster Resource Hosting Subsystem (RHS) process was terminated and will be restarted. This is typically associated with cluster health detection and recovery of a resource.", (ClusterEvent, None, None)),
        ("", "The cluster resource host subsystem (RHS) stopped unexpectedly. An attempt will be made to restart it.", (ClusterEvent, None, None)),
        ("", "Cluster resource 'R' in clustered role 'G' failed.", (ClusterEvent, Some("R"), None)),
        ("", "Cluster resource 'R' of type 'T' in clustered role 'G' failed. The error code was '0x4c9' ('The remote computer refused the network connection.').", (ClusterEvent, Some("R"), None)),
        ("", "Cluster resource 'R' in clustered service or application 'G' failed.", (ClusterEvent, Some("R"), None)),
        ("", "The Cluster service failed to bring clustered role 'ag1023' completely online or offline. One or more resources may be in a failed state.", (ClusterEvent, None, None)),
        ("", "Clustered role 'G' has exceeded its failover threshold.  It has exhausted the configured number of failover attempts", (ClusterEvent, None, None)),
        ("", "Cluster resource type 'Physical Disk' timed out while processing the control code 0x1000001. The cluster will try", (ClusterEvent, None, None)),
        ("", "Cluster resource 'R' in clustered role 'G' has taken more than one minute to respond to a control code. The control code was 'CLUSCTL_RESOURCE_STORAGE_GET_DISK_INFO'.", (ClusterEvent, Some("R"), None)),
        ("", "Cluster network name resource 'CN' cannot be brought online. The network name resource was terminated by the resource host subsystem because it did not complete an operation in an acceptable time.", (ClusterEvent, Some("CN"), None)),
        ("", "An internal Cluster service operation exceeded the defined threshold of '120' seconds. The Cluster service has been terminated to recover.", (ClusterEvent, None, None)),
        ("", "Cluster resource 'ReportSvc' in clustered role 'Reporting' has transitioned from state Online to state ProcessingFailure.", (ResourceState, Some("ReportSvc"), None)),
        ("", "Clustered role 'ContosoApp' is moving from cluster node 'NODE-A' to cluster node 'NODE-B'.", (GroupMoved, None, None)),
    ];
    for (component, text, (kind, resource, ep)) in cases {
        let r = map(component, text).unwrap_or_else(|| panic!("unmapped: {text}"));
        assert_eq!(
            (r.kind, r.resource.as_deref(), r.entry_point),
            (*kind, *resource, *ep),
            "{text}"
        );
    }
    // Fields beyond the resource.
    let case = |needle: &str| *cases.iter().find(|c| c.1.contains(needle)).unwrap();
    let e = map("", case("while processing control code").1).unwrap();
    assert_eq!(
        (e.event, e.api.as_deref(), e.image.as_deref()),
        (Some(1230), Some("0x1000001"), Some("clusres.dll"))
    );
    let e = map("", case("The error code was '0x4c9'").1).unwrap();
    assert_eq!(
        (
            e.event,
            e.status,
            e.group.as_deref(),
            e.resource_type.as_deref()
        ),
        (Some(1069), Some(0x4c9), Some("G"), Some("T"))
    );
    let e = map("RCM", case("move of group").1).unwrap();
    assert_eq!(
        (
            e.group.as_deref(),
            e.node.as_deref(),
            e.target.as_deref(),
            e.state.as_deref()
        ),
        (
            Some("AOCProd01AG"),
            Some("CO2ICMV3SQL09"),
            Some("CO2ICMV3SQL10"),
            Some("MoveType::Manual")
        )
    );
    let e = map("RCM", case("result 1225/0").1).unwrap();
    assert_eq!(e.status, Some(1225));
    // A DLL line only under [RES]; lines nothing maps stay unmapped.
    assert!(map("RHS", case("[hadrag]").1).is_none());
    assert!(map("GUM", "Node 1: Executing locally gumId: 1204, updates: 1").is_none());
}

/// The built-in patterns were rewritten for speed (ASCII classes, one-pass
/// forms): what they map, and what they leave, is as before.
#[test]
fn rewritten_patterns_map_as_before() {
    // The type's capture keeps RHS's space before `<name>`; the model
    // trims it.
    let r = map(
        "RES",
        "Contoso App <AppRes-1>: rhscope: entry-point-begin Online",
    )
    .unwrap();
    assert_eq!(
        (r.kind, r.resource_type.as_deref(), r.resource.as_deref()),
        (
            RecordKind::EntryPointBegin,
            Some("Contoso App"),
            Some("AppRes-1")
        )
    );
    let r = map("RES", "Physical Disk <Cluster Disk 1>: Online request").unwrap();
    assert_eq!(
        (r.kind, r.resource_type.as_deref(), r.resource.as_deref()),
        (
            RecordKind::ResourceLine,
            Some("Physical Disk"),
            Some("Cluster Disk 1")
        )
    );
    let r = map(
        "RES",
        "App <R>: rhscope: api-call-end ClusterRegSetValue status 0x0 target Parameters\\X",
    )
    .unwrap();
    assert_eq!(
        (r.kind, r.api.as_deref(), r.status, r.target.as_deref()),
        (
            RecordKind::ApiCallEnd,
            Some("ClusterRegSetValue"),
            Some(0),
            Some("Parameters\\X")
        )
    );
    // A call line with a continuation line is no call (the API name
    // stops at white space, the line end included): only a DLL's line.
    let r = map("RES", "App <R>: rhscope: api-call-begin Foo\nmore").unwrap();
    assert_eq!(r.kind, RecordKind::ResourceLine);
    // Non-ASCII digits are no thread id (under `\d` they matched, then
    // failed as a number: an unmappable line); a state is a state.
    let r = map("RES", "App <R>: rhscope: worker-create \u{0663}").unwrap();
    assert_eq!(r.kind, RecordKind::ResourceLine);
    let r = map("RES", "App <R>: rhscope: resource-status OnlinePending").unwrap();
    assert_eq!(
        (r.kind, r.state.as_deref()),
        (RecordKind::ResourceState, Some("OnlinePending"))
    );
}

#[test]
fn failover_clustering_events_of_an_evtx() {
    use evtx_writer::{filetime_from_unix_ns, write_evtx, Event};
    let t0 = 1_710_237_900_000_000_000; // 2024-03-12T10:05:00Z
    let at = |ms: i64| filetime_from_unix_ns(t0 + ms * MS);
    let mut events = vec![
        Event::failover_system(
            7,
            at(247),
            1230,
            2,
            &["ContosoApp", "Contoso Application", "contosores.dll"],
        ),
        Event::failover_system(8, at(731), 1146, 1, &[]),
        Event::failover_system(
            9,
            at(741),
            1069,
            2,
            &["ContosoApp", "ContosoApp", "Contoso Application"],
        ),
    ];
    for e in &mut events {
        e.computer = "NODE-A.contoso.com";
    }
    let path = write("System.evtx", &write_evtx(&events));
    let o = common::rhscope(&["analyze", path.to_str().unwrap(), "--format", "json", "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = &v["analyses"][0];
    assert_eq!(a["node"], "NODE-A.contoso.com");
    let f = a["findings"].as_array().unwrap();
    let got: Vec<(&str, &str, &str)> = f
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap(),
                f["resource"].as_str().unwrap_or("-"),
                f["begin"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("rhs-restart", "-", "2024-03-12T10:05:00.731000000Z"),
            (
                "resource-failed",
                "ContosoApp",
                "2024-03-12T10:05:00.741000000Z"
            ),
        ]
    );
    assert_eq!(f[1]["group"], "ContosoApp");
    assert_eq!(
        f[1]["evidence"][0],
        serde_json::json!({"in": "evtx", "input": 0, "record_id": 9, "time": "2024-03-12T10:05:00.741000000Z", "at": "record:9"})
    );
    let facts = &a["resource_facts"]["ContosoApp"];
    assert_eq!(
        (facts["dll"].as_str(), facts["resource_type"].as_str()),
        (Some("contosores.dll"), Some("Contoso Application"))
    );
}

/// `simulate --uninstrumented`: a DLL that logs nothing of rhscope's, the
/// node's Get-ClusterLog output as a WS2016+ node writes it. From the log
/// alone rhscope finds exactly what the simulator planted for it: every
/// field of every finding, at the log's millisecond precision.
#[test]
fn uninstrumented_simulations_find_their_truth_from_the_log_alone() {
    use rhscope::simulate::{simulate_with, Options, Scenario};
    let dir = common::temp_dir("uninstrumented");
    for s in Scenario::ALL {
        let mut text = Vec::new();
        let opts = Options {
            seed: 3,
            scale: 20_000,
            cluster_log: Some(&mut text),
            fixed: Vec::new(),
            uninstrumented: true,
            symbols: None,
        };
        let (_, truth) = simulate_with(s, opts, std::io::Cursor::new(Vec::new())).unwrap();
        assert!(truth.uninstrumented);
        let path = dir.join(format!("{}_cluster.log", s.name()));
        std::fs::write(&path, &text).unwrap();
        let a = common::log_analysis(&path).0;
        let mut found: Vec<_> = a.findings.iter().map(|r| r.finding.clone()).collect();
        found.sort();
        assert_eq!(Some(found), truth.cluster_log.clone(), "{}", s.name());
        assert_eq!(
            (
                a.unparsed_lines,
                a.unmatched_ends,
                a.lost_ends,
                a.ends_not_logged
            ),
            (0, 0, 0, 0),
            "{}",
            s.name()
        );
        // The resources, their type's DLL and thresholds, from the header.
        let mut resources = truth.resources.clone();
        resources.sort();
        assert_eq!(a.resources, resources, "{}", s.name());
        let facts = &a.resource_facts[&truth.resources[0]];
        assert_eq!(facts.dll.as_deref(), Some("contosoapp.dll"));
        assert_eq!(facts.deadlock_timeout.ns, 300_000 * MS);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What each uninstrumented story shows, by name: the misuse that caused
/// it is what the log cannot show.
#[test]
fn an_uninstrumented_deadlock_is_one_incident_with_its_collateral() {
    use rhscope::model::Rule;
    use rhscope::simulate::{simulate_with, Options, Scenario};
    let mut text = Vec::new();
    let opts = Options {
        seed: 1,
        scale: 0,
        cluster_log: Some(&mut text),
        fixed: Vec::new(),
        uninstrumented: true,
        symbols: None,
    };
    let (_, truth) =
        simulate_with(Scenario::Mixed, opts, std::io::Cursor::new(Vec::new())).unwrap();
    let log_truth = truth.cluster_log.clone().unwrap();
    let rules: Vec<(Rule, &str)> = log_truth
        .iter()
        .map(|f| (f.rule, f.resource.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        rules,
        [
            (Rule::Hang, "AppRes-2"),
            (Rule::DeadlockTimeout, "AppRes-2"),
            (Rule::PendingTimeout, "AppRes-6"),
            (Rule::RhsRestart, "AppRes-2"),
            (Rule::ResourceFailed, "AppRes-2"),
            (Rule::ResourceFailed, "AppRes-6"),
        ]
    );
    let hidden: Vec<(Rule, Option<&str>)> = truth
        .not_shown
        .iter()
        .map(|f| (f.rule, f.api.as_deref()))
        .collect();
    // What neither the log nor the stacks show: the control codes.
    assert!(hidden.contains(&(Rule::ApiMisuse, Some("CLUSCTL_RESOURCE_GET_CLASS_INFO"))));
    assert!(!hidden.iter().any(|h| h.1 == Some("OnlineClusterResource")));
    let dir = common::temp_dir("uninstrumented-incident");
    let path = dir.join("SIM-NODE1_cluster.log");
    std::fs::write(&path, &text).unwrap();
    let a = common::log_analysis(&path).0;
    assert_eq!(a.incidents.len(), 1);
    let i = &a.incidents[0];
    assert_eq!(
        (i.resource.as_deref(), i.dll.as_deref(), i.entry_point),
        (
            Some("AppRes-2"),
            Some("contosoapp.dll"),
            Some(EntryPoint::Online)
        )
    );
    assert_eq!(i.blocked_ns, Some(300_000 * MS));
    assert!(i.separate_monitor);
    // Every other resource of the RHS process went down with it.
    assert_eq!(
        i.collateral,
        ["AppRes-1", "AppRes-3", "AppRes-4", "AppRes-5", "AppRes-6", "AppRes-7", "AppRes-8"]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An Online that went pending ends when RCM hears ERROR_IO_PENDING; the
/// worker's "has come online" a minute later ends the operation, not a
/// call nobody began.
#[test]
fn a_pending_online_completes_late_without_an_unmatched_end() {
    let lines = [
        "000009f0.00000ad4::2024/03/12-10:05:03.861 INFO  [RCM] Issuing Online(App) to RHS.",
        "00001a40.00001f18::2024/03/12-10:05:03.866 INFO  [RHS] Enqueuing Online call.",
        "00001a40.00001f2c::2024/03/12-10:05:03.870 INFO  [RES] Contoso <App>: starting.",
        "000009f0.00000ad4::2024/03/12-10:05:03.903 INFO  [RCM] HandleMonitorReply: ONLINERESOURCE for 'App', gen(1) result 997/0.",
        "00001a40.00001f40::2024/03/12-10:06:10.104 INFO  [RHS] Resource App has come online. RHS is about to report status change to RCM",
        "000009f0.00000ad4::2024/03/12-10:06:10.108 INFO  [RCM] HandleMonitorReply: ONLINERESOURCE for 'App', gen(1) result 0/0.",
    ];
    let a = common::log_analysis(&write("late_cluster.log", lines.join("\r\n").as_bytes())).0;
    assert_eq!((a.unmatched_ends, a.lost_ends), (0, 0));
    let online = &a.spans.entries[0];
    assert_eq!(
        (
            online.tid,
            online.end_ns().map(|e| e - online.begin_ns),
            online.status()
        ),
        (0x1f2c, Some(42 * MS), Some(997))
    );
    assert!(a.findings.is_empty(), "{:?}", a.findings);
}
