//! What a capture session enables, derived from the provider definitions
//! (GUID, level, keywords), and what its failures mean. No Windows calls:
//! the session code (`session.rs`) carries the plan out.

use crate::providers::{Decoder, ProviderSet};
use crate::read::etl::Guid;

/// Kernel session flags (EVENT_TRACE_FLAG_*) for process, thread and
/// context-switch events: what blocking time needs.
pub const KERNEL_PROCESS: u32 = 0x0000_0001;
pub const KERNEL_THREAD: u32 = 0x0000_0002;
pub const KERNEL_CSWITCH: u32 = 0x0000_0010;
pub const KERNEL_DISPATCHER: u32 = 0x0000_0800;
/// Image loads: where each DLL sits, so stacks can be named.
pub const KERNEL_IMAGE_LOAD: u32 = 0x0000_0004;

/// The kernel events whose stacks the kernel session walks: a context
/// switch (where the thread switching in had waited), a ready-thread
/// event (the readier's stack), and a thread still running when the
/// trace stops (thread rundown: where a blocked thread is blocked).
pub const STACK_EVENTS: [(u8, &str, &str); 3] = [
    (36, "CSwitch", "CSwitch"),
    (50, "ReadyThread", "ReadyThread"),
    (4, "thread rundown", "0x0504"),
];

/// The session name rhscope uses unless told otherwise.
pub const DEFAULT_SESSION: &str = "rhscope";
/// Windows has one kernel logger session, under this name.
pub const KERNEL_SESSION: &str = "NT Kernel Logger";

/// One provider to enable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enable {
    pub name: String,
    pub guid: Guid,
    pub level: u8,
    /// MatchAnyKeyword; 0 enables every keyword.
    pub keywords: u64,
}

/// Everything a capture starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPlan {
    pub session: String,
    pub providers: Vec<Enable>,
    /// Kernel flags, when the kernel session is wanted.
    pub kernel_flags: Option<u32>,
}

impl SessionPlan {
    pub fn new(providers: &ProviderSet, session: &str, kernel: bool) -> SessionPlan {
        let kernel_def = providers
            .definitions()
            .iter()
            .find(|d| d.header.decoder == Decoder::Kernel);
        SessionPlan {
            session: session.to_string(),
            providers: providers
                .definitions()
                .iter()
                .filter(|d| d.header.decoder != Decoder::Kernel)
                .map(|d| Enable {
                    name: d.header.name.clone(),
                    guid: d.guid,
                    level: d.header.level,
                    keywords: d.header.keywords,
                })
                .collect(),
            kernel_flags: kernel.then(|| {
                // The kernel definition's keywords are the flags it was
                // written for; process, thread and switches at least.
                let wanted = KERNEL_PROCESS
                    | KERNEL_THREAD
                    | KERNEL_IMAGE_LOAD
                    | KERNEL_CSWITCH
                    | KERNEL_DISPATCHER;
                kernel_def.map_or(wanted, |d| d.header.keywords as u32 | wanted)
            }),
        }
    }

    /// The plan as the lines printed before a capture starts.
    pub fn describe(&self) -> Vec<String> {
        let mut out = vec![format!("session {}", self.session)];
        for p in &self.providers {
            out.push(format!(
                "  {} {{{}}} level {} keywords {:#x}",
                p.name, p.guid, p.level, p.keywords
            ));
        }
        if let Some(f) = self.kernel_flags {
            out.push(format!(
                "  {KERNEL_SESSION}: flags {f:#x} (process, thread, image load, context switch, ready thread), stacks on {}",
                STACK_EVENTS.map(|e| e.1).join(", ")
            ));
        }
        out
    }

    /// The equivalent xperf commands (Windows Performance Toolkit): the
    /// same kernel events with stacks, the same providers; stopping merges
    /// the two files and adds the images' identities (DbgID_RSDS), which
    /// symbol lookups by PDB need.
    pub fn xperf(&self, etl: &str) -> Vec<String> {
        let kernel = kernel_path(std::path::Path::new(etl));
        let stem = etl.strip_suffix(".etl").unwrap_or(etl);
        let mut start = String::from("xperf");
        if self.kernel_flags.is_some() {
            start.push_str(&format!(
                " -on PROC_THREAD+LOADER+CSWITCH+DISPATCHER -stackwalk {} -BufferSize 1024 -MinBuffers 64 -MaxBuffers 256 -f {}",
                STACK_EVENTS.map(|e| e.2).join("+"),
                kernel.display()
            ));
        }
        let providers: Vec<String> = self
            .providers
            .iter()
            .map(|p| format!("{{{}}}:{:#x}:{}", p.guid, p.keywords, p.level))
            .collect();
        start.push_str(&format!(
            " -start {} -on {} -f {etl}",
            self.session,
            providers.join("+")
        ));
        let mut stop = format!("xperf -stop {}", self.session);
        if self.kernel_flags.is_some() {
            stop.push_str(&format!(" -stop -d {stem}.merged.etl"));
        }
        vec![start, "REM reproduce the problem, then:".into(), stop]
    }

    /// The equivalent logman commands, for nodes where rhscope cannot run.
    pub fn logman(&self, etl: &str) -> Vec<String> {
        let mut out = vec![format!(
            "logman create trace {} -o {etl} -mode Sequential -bs 1024 -nb 64 256 -ets",
            self.session
        )];
        for p in &self.providers {
            out.push(format!(
                "logman update trace {} -p {{{}}} {:#x} {} -ets",
                self.session, p.guid, p.keywords, p.level
            ));
        }
        if self.kernel_flags.is_some() {
            out.push(format!(
                "logman create trace \"{KERNEL_SESSION}\" -p \"Windows Kernel Trace\" (process,thread,img,cswitch,dispatcher) -o {} -ets",
                kernel_path(std::path::Path::new(etl)).display()
            ));
        }
        out.push("REM reproduce the problem, then:".into());
        out.push(format!("logman stop {} -ets", self.session));
        if self.kernel_flags.is_some() {
            out.push(format!("logman stop \"{KERNEL_SESSION}\" -ets"));
        }
        out
    }
}

/// Where the kernel session of a capture to `etl` writes: NAME.kernel.etl
/// beside it.
/// What `capture --dry-run` prints: the session, where it writes, when it
/// stops, and the logman commands that do the same without rhscope.
pub fn dry_run(
    plan: &SessionPlan,
    output: &std::path::Path,
    duration: Option<std::time::Duration>,
    force: bool,
) -> Vec<String> {
    let mut out = plan.describe();
    out.push(format!(
        "output {}{}",
        output.display(),
        if plan.kernel_flags.is_some() {
            " (kernel session: NAME.kernel.etl beside it)"
        } else {
            ""
        }
    ));
    out.push(format!(
        "stop {}",
        duration.map_or("at Ctrl-C".to_string(), |d| format!(
            "after {} s (or at Ctrl-C)",
            d.as_secs_f64()
        ))
    ));
    if force {
        out.push(format!(
            "first stop any session named {:?} (--force)",
            plan.session
        ));
    }
    out.push("\nwithout rhscope on the node (cmd.exe as Administrator):".into());
    out.extend(
        plan.logman(&output.display().to_string())
            .into_iter()
            .map(|l| format!("  {l}")),
    );
    out.push(
        "\nor with xperf, kernel stacks included (or the WPR profile providers/rhscope.wprp):"
            .into(),
    );
    out.extend(
        plan.xperf(&output.display().to_string())
            .into_iter()
            .map(|l| format!("  {l}")),
    );
    out
}

/// "90s", "15m", "2h", "500ms", or plain seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 15m or 2h"))?;
    let per_unit = match unit {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "ms" => return Ok(std::time::Duration::from_millis(n)),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    n.checked_mul(per_unit)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long a duration"))
}

pub fn kernel_path(etl: &std::path::Path) -> std::path::PathBuf {
    let stem = etl
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    etl.with_file_name(format!("{stem}.kernel.etl"))
}

/// Why a capture could not start or stop, in words a node's operator can
/// act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    #[error("capture needs Administrator or Performance Log Users rights (start the shell as Administrator)")]
    NotElevated,
    #[error("an ETW session named {0:?} already exists (another capture?); stop it with `logman stop {0:?} -ets` or rerun with --force")]
    SessionExists(String),
    #[error("provider {name} {{{guid}}} is not registered on this machine (is the resource DLL installed and loaded?)")]
    ProviderNotRegistered { name: String, guid: Guid },
    #[error("the machine has no more ETW sessions free (64 in use); stop one with `logman query -ets` and `logman stop NAME -ets`")]
    NoSessionsLeft,
    #[error("{what}: Windows error {code}")]
    Os { what: String, code: u32 },
    #[error("live capture needs Windows and rhscope built with `--features etw`")]
    Unsupported,
    #[error("{}: --via-tdh reads .etl files only", path.display())]
    NotEtl { path: std::path::PathBuf },
}

const ERROR_ACCESS_DENIED: u32 = 5;
const ERROR_ALREADY_EXISTS: u32 = 183;
const ERROR_NO_SYSTEM_RESOURCES: u32 = 1450;
const ERROR_WMI_GUID_NOT_FOUND: u32 = 4200;

impl CaptureError {
    /// The error a Windows error code means while doing `what` (for a
    /// provider, `provider` names it).
    pub fn from_os(
        code: u32,
        what: &str,
        session: &str,
        provider: Option<&Enable>,
    ) -> CaptureError {
        match (code, provider) {
            (ERROR_ACCESS_DENIED, _) => CaptureError::NotElevated,
            (ERROR_ALREADY_EXISTS, None) => CaptureError::SessionExists(session.to_string()),
            (ERROR_NO_SYSTEM_RESOURCES, None) => CaptureError::NoSessionsLeft,
            (ERROR_WMI_GUID_NOT_FOUND, Some(p)) => CaptureError::ProviderNotRegistered {
                name: p.name.clone(),
                guid: p.guid,
            },
            _ => CaptureError::Os {
                what: what.to_string(),
                code,
            },
        }
    }
}
