//! The CLI's one error type. Every variant maps to the documented exit code.

use std::fmt;

#[derive(Debug)]
pub enum CliError {
    /// Bad arguments or unusable inputs (exit 2).
    Usage(String),
    /// Reading or writing a file failed (exit 2).
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Io { .. } => 2,
        }
    }

    pub fn usage(msg: impl Into<String>) -> CliError {
        CliError::Usage(msg.into())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) => f.write_str(m),
            CliError::Io { path, source } => write!(f, "{path}: {source}"),
        }
    }
}

impl std::error::Error for CliError {}

pub fn read_file(path: &str) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Io {
        path: path.to_owned(),
        source,
    })
}

pub fn write_file(path: &str, text: &str) -> Result<(), CliError> {
    std::fs::write(path, text).map_err(|source| CliError::Io {
        path: path.to_owned(),
        source,
    })
}
