//! What every analysing command loads once: provider definitions (with
//! manifests), the usage table and the rules' thresholds; and the analysis
//! of the inputs given.

use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};

use anyhow::Result;
use rhscope::analysis::{analyze_all, Analysis, Config};
use rhscope::providers::usage::UsageTable;
use rhscope::providers::{Definitions, ProviderSet};
use rhscope::read::symbols::SymbolFiles;
use rhscope::source::Timeline;

use super::{progress, AnalyzeOpts, ReadOpts};

pub struct Setup {
    pub providers: ProviderSet,
    pub table: UsageTable,
    pub cfg: Config,
    /// Symbol files for stacks (`--symbols`), when given.
    pub symbols: Option<SymbolFiles>,
}

impl Setup {
    pub fn load(
        providers: Option<&Path>,
        manifests: &[PathBuf],
        usage_table: Option<&Path>,
        budgets: &[String],
    ) -> Result<Setup> {
        let defs = Definitions::load(providers, manifests, usage_table)?;
        let mut cfg = Config::default();
        for b in budgets {
            cfg.add_budget(b).map_err(anyhow::Error::msg)?;
        }
        Ok(Setup {
            providers: defs.providers,
            table: defs.table,
            cfg,
            symbols: None,
        })
    }

    pub fn from_opts(opts: &AnalyzeOpts) -> Result<Setup> {
        let (p, t) = (opts.providers.as_deref(), opts.usage_table.as_deref());
        let mut setup = Setup::load(p, &opts.manifest, t, &opts.budget)?;
        if !opts.symbols.is_empty() {
            setup.symbols = Some(scan_symbols(&opts.symbols)?);
        }
        Ok(setup)
    }
}

/// The symbol files of `dirs`, the ones skipped said.
pub fn scan_symbols(dirs: &[PathBuf]) -> Result<SymbolFiles> {
    let files = SymbolFiles::scan(dirs)?;
    for why in &files.unreadable {
        eprintln!("rhscope: warning: skipped symbol file {why}");
    }
    Ok(files)
}

/// Symbol files that turned out unreadable when first used, said once the
/// command is done with them.
pub fn say_failed_symbols(files: &SymbolFiles) {
    for why in files.failed() {
        eprintln!("rhscope: warning: could not read the symbols of {why}");
    }
}

/// The inputs of an analysing command and how to read them.
#[derive(clap::Args)]
pub struct Inputs {
    /// Inputs: .etl traces, cluster.logs (Get-ClusterLog), .evtx event
    /// logs.
    #[arg(required = true)]
    pub traces: Vec<PathBuf>,
    #[command(flatten)]
    pub analyze: AnalyzeOpts,
    #[command(flatten)]
    pub read: ReadOpts,
}

impl Inputs {
    pub fn paths(&self) -> Vec<&Path> {
        self.traces.iter().map(PathBuf::as_path).collect()
    }

    /// Every timeline of the inputs, analysed: for a command that prints
    /// them and ends, so they are never freed. The process's end hands
    /// their memory back at once; freeing a span at a time took a twentieth
    /// of analysing a trace.
    pub fn analyses(&self) -> Result<ManuallyDrop<Vec<Analysis>>> {
        let setup = Setup::from_opts(&self.analyze)?;
        analyses(&self.traces, &setup, &self.analyze, self.read).map(ManuallyDrop::new)
    }
}

/// Reads every input with the chosen definitions and analyses each
/// timeline (see `rhscope::source::open` for which inputs are one).
pub fn analyses(
    inputs: &[PathBuf],
    setup: &Setup,
    opts: &AnalyzeOpts,
    read: ReadOpts,
) -> Result<Vec<Analysis>> {
    let mut out = Vec::new();
    let opened = rhscope::source::open(inputs, opts.merge)?;
    for p in &opened.skipped {
        eprintln!(
            "rhscope: skipped {}: not an .etl, .evtx or cluster.log",
            p.display()
        );
    }
    let keys = partition_keys(&opened.timelines);
    for (timeline, key) in opened.timelines.into_iter().zip(keys) {
        let bar = progress::bar(timeline.bytes(), read.quiet);
        let a = analyze(&timeline, setup, opts.via_tdh, read, &mut |n| {
            bar.set_position(n)
        })?;
        bar.finish_and_clear();
        if read.verbose {
            rhscope::report::text::write_unparsed(&mut std::io::stderr().lock(), &a)?;
        }
        if let Some(dir) = &opts.export_parquet {
            export_parquet(&a, &key, dir)?;
        }
        out.push(a);
    }
    if let Some(files) = &setup.symbols {
        say_failed_symbols(files);
    }
    Ok(out)
}

fn analyze(
    timeline: &Timeline,
    setup: &Setup,
    via_tdh: bool,
    read: ReadOpts,
    progress: &mut dyn FnMut(u64),
) -> Result<Analysis> {
    let sources = if via_tdh {
        rhscope::capture::replay_sources(timeline, &setup.providers)?
    } else {
        timeline.sources(&setup.providers, setup.symbols.as_ref())?
    };
    let node = timeline.node.as_deref();
    Ok(analyze_all(
        sources,
        node,
        &setup.table,
        &setup.cfg,
        read.strict,
        progress,
    )?)
}

/// The Parquet partition key of each timeline.
fn partition_keys(timelines: &[Timeline]) -> Vec<String> {
    let described: Vec<(Option<&str>, Vec<&Path>)> = timelines
        .iter()
        .map(|t| {
            (
                t.node.as_deref(),
                t.inputs.iter().map(|i| i.path()).collect(),
            )
        })
        .collect();
    rhscope::report::partition_keys(&described)
}

#[cfg(feature = "polars")]
fn export_parquet(a: &Analysis, key: &str, dir: &Path) -> Result<()> {
    rhscope::report::parquet::export_analysis(dir, a, key)?;
    Ok(())
}

#[cfg(not(feature = "polars"))]
fn export_parquet(_: &Analysis, _: &str, _: &Path) -> Result<()> {
    anyhow::bail!("--export-parquet needs rhscope built with the `polars` feature")
}
