//! Writing results safely: to a temporary file beside the target, renamed
//! over it only when complete, so an interrupted run never leaves a half
//! file that looks whole; and never over one of the run's inputs.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{}: refusing to overwrite an input of this run", path.display())]
    WouldOverwriteInput { path: PathBuf },
    #[error("{}: cannot write: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Writes `path` through `write`, atomically. `inputs` are the files the
/// run reads; `path` may not be one of them.
pub fn write_atomically<E>(
    path: &Path,
    inputs: &[&Path],
    write: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<OutputError>,
{
    let io_err = |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Ok(target) = fs::canonicalize(path) {
        if inputs
            .iter()
            .filter_map(|i| fs::canonicalize(i).ok())
            .any(|i| i == target)
        {
            return Err(OutputError::WouldOverwriteInput {
                path: path.to_path_buf(),
            }
            .into());
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file name",
        ))
    })?;
    let tmp = dir.join(format!(
        ".{}.rhscope-{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let file = File::create(&tmp).map_err(io_err)?;
    let mut out = BufWriter::new(file);
    let result = write(&mut out).and_then(|()| {
        let file = out.into_inner().map_err(|e| io_err(e.into_error()))?;
        file.sync_all().map_err(io_err)?;
        fs::rename(&tmp, path).map_err(io_err)?;
        Ok(())
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rhscope-out-{}-{name}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn complete_writes_land_and_failed_ones_leave_nothing() {
        let d = dir("atomic");
        let target = d.join("out.txt");
        write_atomically::<OutputError>(&target, &[], |w| {
            w.write_all(b"whole").map_err(|source| OutputError::Io {
                path: target.clone(),
                source,
            })
        })
        .unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"whole");
        let failed = write_atomically::<OutputError>(&target, &[], |w| {
            w.write_all(b"half").unwrap();
            Err(OutputError::Io {
                path: target.clone(),
                source: io::Error::other("interrupted"),
            })
        });
        assert!(failed.is_err());
        assert_eq!(fs::read(&target).unwrap(), b"whole", "old content kept");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1, "no temporary left");
    }

    #[test]
    fn refuses_inputs_and_unwritable_places() {
        let d = dir("refuse");
        let input = d.join("in.etl");
        fs::write(&input, b"x").unwrap();
        let same = d.join(".").join("in.etl");
        let e = write_atomically::<OutputError>(&same, &[&input], |_| Ok(())).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("refusing to overwrite an input of this run"),
            "{e}"
        );
        let nowhere = d.join("no/such/dir/out.txt");
        let e = write_atomically::<OutputError>(&nowhere, &[], |_| Ok(())).unwrap_err();
        assert!(
            e.to_string().contains("no/such/dir/out.txt: cannot write"),
            "{e}"
        );
    }
}
