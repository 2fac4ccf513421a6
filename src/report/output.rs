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
    #[error("{}: refusing to write there: it {why}", path.display())]
    Refused { path: PathBuf, why: String },
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

/// The file that marks a folder as rhscope's, listing (one per line,
/// relative to the folder) every file rhscope wrote there: only such a
/// folder, holding only those files, is ever replaced.
pub const MARKER: &str = ".rhscope-written";

/// Why a folder may not be written over: one line saying why and what to do.
fn refuse_folder(dir: &Path, inputs: &[&Path]) -> Result<(), OutputError> {
    refuse_inputs(dir, inputs)?;
    let refuse = |why: String| {
        Err(OutputError::Refused {
            path: dir.to_path_buf(),
            why,
        })
    };
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return Ok(()); // a new folder
    };
    if !meta.is_dir() {
        return refuse("exists and is not a folder; give a new folder name".into());
    }
    if let Ok(canon) = fs::canonicalize(dir) {
        if let Some(inside) = inputs
            .iter()
            .find(|i| fs::canonicalize(i).is_ok_and(|i| i.starts_with(&canon)))
        {
            return refuse(format!(
                "holds {}, an input of this run; write to a new or empty folder",
                inside.display()
            ));
        }
    }
    let files = walk(dir);
    if files.is_empty() {
        return Ok(());
    }
    let ours: Vec<PathBuf> = fs::read_to_string(dir.join(MARKER))
        .map(|t| t.lines().map(PathBuf::from).collect())
        .unwrap_or_default();
    let foreign: Vec<String> = files
        .iter()
        .filter_map(|f| f.strip_prefix(dir).ok())
        .filter(|f| *f != Path::new(MARKER) && !ours.iter().any(|o| o == f))
        .map(|f| f.display().to_string())
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = foreign.iter().take(3).map(String::as_str).collect();
    let more = foreign.len().saturating_sub(shown.len());
    refuse(format!(
        "holds files rhscope did not write ({}{}); write to a new or empty folder, or move them out",
        shown.join(", "),
        if more > 0 { format!(" and {more} more") } else { String::new() }
    ))
}

/// Writes a folder whole or not at all: `write` fills a temporary folder
/// beside `dir`, which then takes its place. An existing `dir` is replaced
/// only when it is empty or holds nothing but what rhscope wrote there
/// before (see [`MARKER`]); it may not be, nor hold, one of the run's
/// `inputs`. Returns the files written, sorted.
pub fn write_folder<E: From<OutputError>>(
    dir: &Path,
    inputs: &[&Path],
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<Vec<PathBuf>, E> {
    refuse_folder(dir, inputs)?;
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
    let written = write(&tmp).and_then(|()| Ok(mark(&tmp, dir)?));
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    swap_in(
        &tmp,
        dir,
        &parent.join(format!(".{name}.rhscope-{}.old", std::process::id())),
    )?;
    let mut files: Vec<PathBuf> = walk(dir);
    files.sort();
    Ok(files)
}

/// Lists what `tmp` holds in its marker file.
fn mark(tmp: &Path, shown: &Path) -> Result<(), OutputError> {
    let mut list: Vec<String> = walk(tmp)
        .iter()
        .filter_map(|f| f.strip_prefix(tmp).ok())
        .map(|f| f.display().to_string())
        .collect();
    list.sort();
    list.push(String::new());
    fs::write(tmp.join(MARKER), list.join("\n")).map_err(|source| OutputError::Io {
        path: shown.to_path_buf(),
        source,
    })
}

/// Puts `tmp` in the place of `dir`; an old `dir` (already checked to be
/// rhscope's) goes to `old` and is removed, or comes back if the new one
/// cannot take its place. Nothing is left beside `dir` either way.
fn swap_in(tmp: &Path, dir: &Path, old: &Path) -> Result<(), OutputError> {
    let existed = dir.exists();
    if existed {
        if let Err(source) = fs::rename(dir, old) {
            let _ = fs::remove_dir_all(tmp);
            return Err(OutputError::CannotReplace {
                path: dir.to_path_buf(),
                source,
            });
        }
    }
    if let Err(source) = fs::rename(tmp, dir) {
        if existed {
            let _ = fs::rename(old, dir);
        }
        let _ = fs::remove_dir_all(tmp);
        return Err(OutputError::Io {
            path: dir.to_path_buf(),
            source,
        });
    }
    if existed {
        fs::remove_dir_all(old).map_err(|source| OutputError::CannotReplace {
            path: old.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
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
