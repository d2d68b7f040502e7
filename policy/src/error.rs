//! Errors of policy parsing, each with the line and column it refers to.

use std::fmt;

/// A position in the policy text: 1-based line, 1-based column in Unicode scalar values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Location {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// What is wrong with a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyErrorKind {
    #[error("the policy is not valid UTF-8")]
    InvalidUtf8,
    #[error("JSON syntax error: {0}")]
    Syntax(String),
    #[error("unexpected data after the end of the policy object")]
    TrailingData,
    #[error("JSON nesting is too deep")]
    TooDeep,
    #[error("the policy file is larger than {0} bytes")]
    TooLarge(usize),
    #[error("duplicate key {0:?}")]
    DuplicateKey(String),
    #[error("unknown field {field:?} in {context}")]
    UnknownField { field: String, context: String },
    #[error("missing field {field:?} in {context}")]
    MissingField { field: String, context: String },
    #[error("{context} must be {expected}, found {found}")]
    WrongType {
        context: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("the list of requirements must not be empty")]
    EmptyRequirements,
    #[error("{field} must be an absolute path, found {path:?}")]
    RelativePath { field: String, path: String },
    #[error("{0}")]
    Conflict(String),
    #[error("invalid scope {scope:?} for transport {transport:?}: {reason}")]
    InvalidScope {
        transport: String,
        scope: String,
        reason: String,
    },
    #[error("unknown requirement type {0:?}")]
    UnknownRequirementType(String),
    #[error("invalid signedIdentity: {0}")]
    InvalidSignedIdentity(String),
    #[error("invalid {field}: {reason}")]
    InvalidValue { field: String, reason: String },
}

/// A located policy error: `LINE:COLUMN: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {kind}")]
pub struct PolicyError {
    pub location: Location,
    pub kind: PolicyErrorKind,
}

impl PolicyError {
    pub fn new(location: Location, kind: PolicyErrorKind) -> Self {
        PolicyError { location, kind }
    }
}

/// Failure to load a policy file: either reading it or its content.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read policy file {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{error}")]
    Invalid {
        path: std::path::PathBuf,
        error: PolicyError,
    },
}
