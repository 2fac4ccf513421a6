//! Loading data files (usage table, provider definitions): TOML with every
//! field checked, errors that name the file, line and column.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", path.display())]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based; 0 when the problem is the whole file.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ConfigError {
    pub fn new(
        path: &Path,
        text: &str,
        at: Option<usize>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = match at {
            Some(offset) => line_column(text, offset),
            None => (0, 0),
        };
        ConfigError {
            path: path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// 1-based line and column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    (line, before.len() - start + 1)
}

/// Parses TOML into `T`, turning errors into file:line:column errors.
pub fn parse_toml<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, ConfigError> {
    toml::from_str(text)
        .map_err(|e| ConfigError::new(path, text, e.span().map(|s| s.start), e.message().trim()))
}

/// Reads a file; a missing or unreadable file is a ConfigError too.
pub fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, "", None, format!("cannot read: {e}")))
}
