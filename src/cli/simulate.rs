use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use rhscope::output::AtomicFile;
use rhscope::simulate::{simulate_with, Options, Scenario};

/// NAME.etl -> NAME.expected.json beside it.
pub fn truth_path(trace: &Path) -> PathBuf {
    let stem = trace
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    trace.with_file_name(format!("{stem}.expected.json"))
}

pub fn run(
    scenario: Scenario,
    seed: u64,
    scale: u64,
    output: &Path,
    cluster_log: Option<&Path>,
    fixed: Vec<Scenario>,
) -> Result<()> {
    if output.extension().is_none_or(|e| e != "etl") {
        bail!("{}: the output should end in .etl (the ground truth goes beside it as NAME.expected.json)", output.display());
    }
    let truth_file = truth_path(output);
    let mut etl = AtomicFile::create(output, &[])?;
    let mut json = AtomicFile::create(&truth_file, &[])?;
    let mut log = cluster_log
        .map(|p| AtomicFile::create(p, &[]))
        .transpose()?;
    let truth = {
        let mut log_writer = log.as_mut().map(|l| std::io::BufWriter::new(l.writer()));
        let opts = Options {
            seed,
            scale,
            cluster_log: log_writer.as_mut().map(|w| w as &mut dyn std::io::Write),
            fixed,
        };
        let (_, truth) = simulate_with(scenario, opts, etl.writer())
            .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", output.display()))?;
        if let Some(mut w) = log_writer {
            std::io::Write::flush(&mut w).map_err(|e| {
                anyhow::anyhow!(
                    "{}: cannot write: {e}",
                    cluster_log.unwrap_or(output).display()
                )
            })?;
        }
        truth
    };
    serde_json::to_writer_pretty(&mut *json.writer(), &truth)?;
    std::io::Write::write_all(json.writer(), b"\n")?;
    etl.commit()?;
    json.commit()?;
    if let Some(log) = log {
        log.commit()?;
    }
    eprintln!(
        "rhscope: wrote {} ({} records, {} findings planted) and {}",
        output.display(),
        truth.records,
        truth.findings.len(),
        truth_file.display()
    );
    Ok(())
}
