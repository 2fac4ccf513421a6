//! Which inputs are one node's timeline, and opening them as sources.
//!
//! Inputs of different nodes never share a timeline: ids of two nodes
//! never meet and nothing is de-duplicated across them. A node is known
//! from a cluster.log's name (`NODE_cluster.log`, as `Get-ClusterLog
//! -Destination` writes one per node) or header (`Current node:`), or an
//! .evtx's Computer. An input of no known node belongs to the node its
//! file or folder is named for (`node1.etl`, `NODE1/trace.etl`), else it
//! goes with the inputs of its folder that share its name up to the first
//! dot (`node1.etl` with `node1.kernel.etl`), else it is a timeline of its
//! own. `--merge` puts everything on one timeline. A folder given as an
//! input stands for the input files inside it.

use std::path::{Path, PathBuf};

use super::stacks::StackContext;
use super::{ClusterLogSource, EtlSource, EventSource, InputKind, SourceError};
use crate::providers::ProviderSet;
use crate::read::clusterlog::{node_from_file_name, ClusterLog};
use crate::read::etl::Trace;
use crate::read::symbols::SymbolFiles;

/// One input file of a timeline, opened as far as its kind needs.
pub enum Input {
    /// Mapped and its buffers walked: sources borrow it.
    Etl(Box<Trace>),
    ClusterLog(PathBuf),
    Evtx(PathBuf),
}

impl Input {
    pub fn path(&self) -> &Path {
        match self {
            Input::Etl(t) => t.path(),
            Input::ClusterLog(p) | Input::Evtx(p) => p,
        }
    }
}

/// The inputs of one node's timeline, in the order given (evidence names
/// an input by its index).
pub struct Timeline {
    /// The node, when an input names it.
    pub node: Option<String>,
    pub inputs: Vec<Input>,
}

/// What [`open`] found.
pub struct Opened {
    pub timelines: Vec<Timeline>,
    /// Files inside folders given as inputs that are no input rhscope reads.
    pub skipped: Vec<PathBuf>,
}

impl Timeline {
    /// Total size of the inputs in bytes (for progress).
    pub fn bytes(&self) -> u64 {
        self.inputs
            .iter()
            .filter_map(|i| std::fs::metadata(i.path()).ok())
            .map(|m| m.len())
            .sum()
    }

    /// A source per input, reading through these definitions; with
    /// `symbols`, .etl inputs also give the stacks walked with their
    /// events (a first pass over each trace collects them).
    pub fn sources<'t>(
        &'t self,
        providers: &'t ProviderSet,
        symbols: Option<&'t SymbolFiles>,
    ) -> Result<Vec<Box<dyn EventSource + 't>>, SourceError> {
        let mut out: Vec<Box<dyn EventSource + 't>> = Vec::new();
        for input in &self.inputs {
            out.push(match input {
                Input::Etl(t) => {
                    let source = EtlSource::new(t, providers);
                    match symbols {
                        // Only RHS processes' stacks matter to the rules
                        // (all, where the trace names no processes).
                        Some(sym) => Box::new(
                            source.with_stacks(
                                StackContext::read(t, sym, |_, name| {
                                    name.is_none_or(|n| n == "rhs.exe")
                                })
                                .map_err(|source| {
                                    SourceError::Corrupt {
                                        trace: t.path().display().to_string(),
                                        source,
                                    }
                                })?,
                            ),
                        ),
                        None => Box::new(source),
                    }
                }
                Input::ClusterLog(p) => {
                    Box::new(ClusterLogSource::new(ClusterLog::open(p)?, providers))
                }
                Input::Evtx(p) => evtx(p, providers)?,
            });
        }
        Ok(out)
    }
}

#[cfg(feature = "evtx")]
fn evtx<'t>(
    path: &Path,
    providers: &'t ProviderSet,
) -> Result<Box<dyn EventSource + 't>, SourceError> {
    Ok(Box::new(super::EvtxSource::open(path, providers)?))
}

/// Without the feature no .evtx source exists; the error says so.
#[cfg(not(feature = "evtx"))]
fn evtx<'t>(path: &Path, _: &'t ProviderSet) -> Result<Box<dyn EventSource + 't>, SourceError> {
    Err(unsupported_evtx(path))
}

#[cfg(not(feature = "evtx"))]
fn unsupported_evtx(path: &Path) -> SourceError {
    SourceError::Unsupported {
        path: path.to_path_buf(),
        what: ".evtx input needs rhscope built with the `evtx` feature",
    }
}

/// An input file found, with the node it says it is from.
struct Found {
    path: PathBuf,
    kind: InputKind,
    node: Option<String>,
}

/// Groups `paths` into nodes' timelines (see the module's documentation)
/// and opens them. An input that cannot be opened is an error naming it.
pub fn open(paths: &[PathBuf], merge: bool) -> Result<Opened, SourceError> {
    let (files, skipped) = expand(paths)?;
    let mut found = Vec::new();
    for path in files {
        let kind = InputKind::detect(&path).map_err(|source| SourceError::Open {
            path: path.clone(),
            source,
        })?;
        let node = node_of(&path, kind)?;
        found.push(Found { path, kind, node });
    }
    let groups = if merge {
        vec![found]
    } else {
        group_by_node(found)
    };
    let mut timelines = Vec::new();
    for group in groups {
        let node = group.iter().find_map(|f| f.node.clone());
        let inputs = group
            .into_iter()
            .map(|f| {
                Ok(match f.kind {
                    InputKind::Etl => Input::Etl(Box::new(Trace::open(&f.path)?)),
                    InputKind::ClusterLog => Input::ClusterLog(f.path),
                    InputKind::Evtx => Input::Evtx(f.path),
                })
            })
            .collect::<Result<_, SourceError>>()?;
        timelines.push(Timeline { node, inputs });
    }
    Ok(Opened { timelines, skipped })
}

/// Folders replaced by the input files in them (recursively, sorted);
/// other files in them are returned apart.
fn expand(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<PathBuf>), SourceError> {
    let (mut files, mut skipped) = (Vec::new(), Vec::new());
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut stack = vec![path.clone()];
        let mut inside = Vec::new();
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|source| SourceError::Open {
                path: dir.clone(),
                source,
            })?;
            for e in entries.flatten() {
                let p = e.path();
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(p);
                } else {
                    inside.push(p);
                }
            }
        }
        inside.sort();
        for p in inside {
            if is_input(&p) {
                files.push(p);
            } else {
                skipped.push(p);
            }
        }
    }
    Ok((files, skipped))
}

/// Whether a file inside a folder is one rhscope reads: an .etl or .evtx
/// by its name, a cluster.log by its name or its first lines.
fn is_input(path: &Path) -> bool {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("etl" | "evtx") => true,
        _ => InputKind::detect(path)
            .is_ok_and(|k| k == InputKind::ClusterLog && looks_like_log(path)),
    }
}

/// A cluster.log by content, not merely by a .log or .txt name.
fn looks_like_log(path: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(16 * 1024).read_to_end(&mut head))
        .is_ok()
        && crate::read::clusterlog::looks_like(&head)
}

/// The node an input says it is from.
fn node_of(path: &Path, kind: InputKind) -> Result<Option<String>, SourceError> {
    Ok(match kind {
        InputKind::Etl => None,
        InputKind::ClusterLog => match node_from_file_name(path) {
            Some(n) => Some(n),
            None => ClusterLog::open(path)?.node().map(str::to_string),
        },
        #[cfg(feature = "evtx")]
        InputKind::Evtx => crate::read::evtx::computer(path)?,
        #[cfg(not(feature = "evtx"))]
        InputKind::Evtx => return Err(unsupported_evtx(path)),
    })
}

/// A node name as nodes compare: its first DNS label, any letter case.
fn node_key(name: &str) -> String {
    name.split('.').next().unwrap_or(name).to_ascii_uppercase()
}

/// A file's name up to its first dot, `_cluster` cut off.
fn stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let first = name.split('.').next().unwrap_or(&name).to_string();
    let cut = first.len().saturating_sub("_cluster".len());
    match first.get(cut..) {
        Some(t) if t.eq_ignore_ascii_case("_cluster") && cut > 0 => first[..cut].to_string(),
        _ => first,
    }
}

/// Inputs grouped by node, in the order of their first input.
fn group_by_node(found: Vec<Found>) -> Vec<Vec<Found>> {
    let known: Vec<String> = found
        .iter()
        .filter_map(|f| f.node.as_deref().map(node_key))
        .collect();
    let folder = |p: &Path| {
        p.parent()
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let key = |f: &Found| -> String {
        if let Some(n) = &f.node {
            return format!("node:{}", node_key(n));
        }
        let named = [
            Some(stem(&f.path)),
            f.path
                .parent()
                .and_then(Path::file_name)
                .map(|d| d.to_string_lossy().into_owned()),
        ];
        for name in named.into_iter().flatten() {
            if known.contains(&node_key(&name)) {
                return format!("node:{}", node_key(&name));
            }
        }
        format!(
            "file:{}/{}",
            folder(&f.path),
            stem(&f.path).to_ascii_uppercase()
        )
    };
    let mut groups: Vec<(String, Vec<Found>)> = Vec::new();
    for f in found {
        let k = key(&f);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, list)) => list.push(f),
            None => groups.push((k, vec![f])),
        }
    }
    groups.into_iter().map(|(_, list)| list).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(path: &str, node: Option<&str>) -> Found {
        Found {
            path: PathBuf::from(path),
            kind: InputKind::Etl,
            node: node.map(str::to_string),
        }
    }

    fn grouped(list: Vec<Found>) -> Vec<Vec<String>> {
        group_by_node(list)
            .into_iter()
            .map(|g| {
                g.into_iter()
                    .map(|f| f.path.display().to_string())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn nodes_never_share_a_timeline() {
        assert_eq!(
            grouped(vec![
                found("case/NODE1_cluster.log", Some("NODE1")),
                found("case/NODE2_cluster.log", Some("node2.contoso.com")),
                found("case/node1.etl", None),
                found("case/node1.kernel.etl", None),
                found("case/NODE2/trace.etl", None),
                found("n3/trace.etl", None),
                found("n4/trace.etl", None),
                found("traces/mixed.etl", None),
                found("traces/mixed.cluster.log", None),
            ]),
            [
                vec![
                    "case/NODE1_cluster.log",
                    "case/node1.etl",
                    "case/node1.kernel.etl"
                ],
                vec!["case/NODE2_cluster.log", "case/NODE2/trace.etl"],
                vec!["n3/trace.etl"],
                vec!["n4/trace.etl"],
                vec!["traces/mixed.etl", "traces/mixed.cluster.log"],
            ]
        );
        assert_eq!(stem(Path::new("x/NODE1_Cluster.log")), "NODE1");
        assert_eq!(stem(Path::new("node1.kernel.etl")), "node1");
    }
}
