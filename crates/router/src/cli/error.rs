//! The CLI's one error type. Every variant maps to the documented exit code.

use std::fmt;
use std::io::Write;

use betaroute_router::config::ConfigErrors;
use betaroute_router::proxy::ProxyError;

#[derive(Debug)]
pub enum CliError {
    /// Bad arguments or unusable inputs (exit 2).
    Usage(String),
    /// A configuration that does not load, with every located problem (exit 2).
    Config(ConfigErrors),
    /// Reading or writing a file failed (exit 2).
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The router could not run (a port in use, no threads): not a usage problem (exit 1).
    Runtime(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Config(_) | CliError::Io { .. } => 2,
            CliError::Runtime(_) => 1,
        }
    }

    pub fn usage(msg: impl Into<String>) -> CliError {
        CliError::Usage(msg.into())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Runtime(m) => f.write_str(m),
            CliError::Config(e) => write!(f, "{e}"),
            CliError::Io { path, source } => write!(f, "{path}: {source}"),
        }
    }
}

impl std::error::Error for CliError {}

impl From<ConfigErrors> for CliError {
    fn from(e: ConfigErrors) -> Self {
        CliError::Config(e)
    }
}

impl From<ProxyError> for CliError {
    fn from(e: ProxyError) -> Self {
        match e {
            ProxyError::Config(c) => CliError::Config(c),
            other => CliError::Runtime(other.to_string()),
        }
    }
}

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

/// Writes to standard output. A reader that went away (`betaroute check ... | head`) is not an
/// error: the output is simply not wanted any more. Other write failures are.
pub fn print_stdout(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(source) => Err(CliError::Io {
            path: "standard output".into(),
            source,
        }),
    }
}
