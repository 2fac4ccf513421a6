//! What events mean: provider definitions (providers/*.toml) that map
//! events and log lines to model records, the usage table of calls to
//! avoid, and instrumentation manifests for manifest-based events.

pub mod config;
mod definitions;
mod fields;
pub mod manifest;
mod patterns;
pub mod prefilter;
pub mod usage;

pub use definitions::*;
pub use patterns::{split_tag, Pattern};

use std::path::{Path, PathBuf};

use config::ConfigError;
use manifest::ManifestSet;
use usage::UsageTable;

/// The built-in manifests plus those at `paths` (files or folders).
pub fn manifests(paths: &[PathBuf]) -> Result<ManifestSet, ConfigError> {
    let mut set = ManifestSet::embedded();
    for p in paths {
        set.add_path(p)?;
    }
    Ok(set)
}

/// What events are read with: the provider definitions (with manifests)
/// and the usage table, built in unless files are given.
pub struct Definitions {
    pub providers: ProviderSet,
    pub table: UsageTable,
}

impl Definitions {
    pub fn load(
        providers: Option<&Path>,
        manifest_paths: &[PathBuf],
        usage_table: Option<&Path>,
    ) -> Result<Definitions, ConfigError> {
        let providers = match providers {
            Some(dir) => ProviderSet::load_dir(dir)?,
            None => ProviderSet::embedded(),
        }
        .with_manifests(manifests(manifest_paths)?);
        let table = match usage_table {
            Some(f) => UsageTable::load(f)?,
            None => UsageTable::embedded(),
        };
        Ok(Definitions { providers, table })
    }
}
