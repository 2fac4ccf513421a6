//! Which inputs are one node's timeline, and opening them as sources.
//!
//! Each .etl file alone is one timeline (a case usually brings one per
//! node); when a cluster.log or an .evtx is among the inputs, or when asked
//! to merge, all of them are one node's and go on one timeline.

use std::path::{Path, PathBuf};

use super::{ClusterLogSource, EtlSource, EventSource, InputKind, SourceError};
use crate::providers::ProviderSet;
use crate::read::clusterlog::ClusterLog;
use crate::read::etl::Trace;

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
    pub inputs: Vec<Input>,
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

    /// A source per input, reading through these definitions.
    pub fn sources<'t>(
        &'t self,
        providers: &'t ProviderSet,
    ) -> Result<Vec<Box<dyn EventSource + 't>>, SourceError> {
        let mut out: Vec<Box<dyn EventSource + 't>> = Vec::new();
        for input in &self.inputs {
            out.push(match input {
                Input::Etl(t) => Box::new(EtlSource::new(t, providers)),
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
    Err(SourceError::Unsupported {
        path: path.to_path_buf(),
        what: ".evtx input needs rhscope built with the `evtx` feature",
    })
}

/// Groups `paths` into timelines (see the module's documentation) and
/// opens them. An input that cannot be opened is an error naming it.
pub fn open(paths: &[PathBuf], merge: bool) -> Result<Vec<Timeline>, SourceError> {
    let mut kinds = Vec::new();
    for path in paths {
        let kind = InputKind::detect(path).map_err(|source| SourceError::Open {
            path: path.clone(),
            source,
        })?;
        kinds.push((path, kind));
    }
    let merge = merge || kinds.iter().any(|(_, k)| *k != InputKind::Etl);
    let groups: Vec<Vec<(&PathBuf, InputKind)>> = if merge {
        vec![kinds]
    } else {
        kinds.into_iter().map(|k| vec![k]).collect()
    };
    groups
        .into_iter()
        .map(|group| {
            let inputs = group
                .into_iter()
                .map(|(path, kind)| {
                    Ok(match kind {
                        InputKind::Etl => Input::Etl(Box::new(Trace::open(path)?)),
                        InputKind::ClusterLog => Input::ClusterLog(path.clone()),
                        InputKind::Evtx => Input::Evtx(path.clone()),
                    })
                })
                .collect::<Result<_, SourceError>>()?;
            Ok(Timeline { inputs })
        })
        .collect()
}
