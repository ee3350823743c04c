//! The configuration layer's one error type: a problem and where it is.

use std::fmt;

/// A configuration problem, with where it is. Several are reported at once when possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; 0 when the problem has no single place (e.g. a missing file).
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// Extra lines shown under the message (a rule with a caret under the problem).
    pub snippet: Option<String>,
}

impl ConfigError {
    /// A problem with a whole file (or with no file), not at one place in it.
    pub fn whole(file: String, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file,
            line: 0,
            column: 0,
            message: message.into(),
            snippet: None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )?;
        } else {
            write!(f, "{}: {}", self.file, self.message)?;
        }
        if let Some(s) = &self.snippet {
            for line in s.lines() {
                write!(f, "\n    {line}")?;
            }
        }
        Ok(())
    }
}

/// All problems of one load, printed one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}
