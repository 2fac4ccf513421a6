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
    #[error("{}: cannot write", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: not a folder name", path.display())]
    NotAFolderName { path: PathBuf },
    #[error("{}: cannot replace", path.display())]
    CannotReplace {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A file being written beside its final path; [`AtomicFile::commit`]
/// renames it into place, dropping it uncommitted removes it.
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing `path`; `inputs` are the files the run reads, which
    /// `path` may not be.
    pub fn create(path: &Path, inputs: &[&Path]) -> Result<AtomicFile, OutputError> {
        let io_err = |source| OutputError::Io {
            path: path.to_path_buf(),
            source,
        };
        refuse_inputs(path, inputs)?;
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
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
            file: Some(BufWriter::new(file)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn writer(&mut self) -> &mut BufWriter<File> {
        // Only commit() takes the file, and it consumes self.
        self.file.as_mut().expect("file present until commit")
    }

    fn io_err(&self, source: io::Error) -> OutputError {
        OutputError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> Result<(), OutputError> {
        let Some(writer) = self.file.take() else {
            return Ok(());
        };
        let file = writer
            .into_inner()
            .map_err(|e| self.io_err(e.into_error()))?;
        file.sync_all().map_err(|e| self.io_err(e))?;
        fs::rename(&self.tmp, &self.path).map_err(|e| self.io_err(e))?;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
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
    let mut file = AtomicFile::create(path, inputs)?;
    write(file.writer())?;
    file.commit()?;
    Ok(())
}

/// The check every output makes: `path` may not be one of the run's
/// `inputs`.
pub fn refuse_inputs(path: &Path, inputs: &[&Path]) -> Result<(), OutputError> {
    let Ok(target) = fs::canonicalize(path) else {
        return Ok(());
    };
    if inputs
        .iter()
        .filter_map(|i| fs::canonicalize(i).ok())
        .any(|i| i == target)
    {
        return Err(OutputError::WouldOverwriteInput {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Writes a folder whole or not at all: `write` fills a temporary folder
/// beside `dir`, which is then renamed into place (replacing an older
/// one). `dir` may not be one of the run's `inputs`. Returns the files
/// written, sorted.
pub fn write_folder<E: From<OutputError>>(
    dir: &Path,
    inputs: &[&Path],
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<Vec<PathBuf>, E> {
    refuse_inputs(dir, inputs)?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dir
        .file_name()
        .ok_or_else(|| OutputError::NotAFolderName {
            path: dir.to_path_buf(),
        })?
        .to_string_lossy()
        .into_owned();
    let tmp = parent.join(format!(".{name}.rhscope-{}.tmp", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let result = write(&tmp);
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let old = parent.join(format!(".{name}.rhscope-{}.old", std::process::id()));
    if dir.exists() {
        fs::rename(dir, &old).map_err(|source| OutputError::CannotReplace {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    fs::rename(&tmp, dir).map_err(|source| OutputError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let _ = fs::remove_dir_all(&old);
    let mut files: Vec<PathBuf> = walk(dir);
    files.sort();
    Ok(files)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
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
