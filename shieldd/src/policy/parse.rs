//! Placeholder replaced by the real parser before landing.
use super::*;

/// One problem in a policy file, with its place.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// File name as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// File name.
        file: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file has errors.
    #[error("{} error(s)", .0.len())]
    Invalid(Vec<Diagnostic>),
}

/// Parse a policy.
pub fn parse_policy(_text: &str, _file: &str) -> Result<Policy, PolicyError> {
    Err(PolicyError::Invalid(Vec::new()))
}
