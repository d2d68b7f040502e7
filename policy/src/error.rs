//! Errors of policy parsing, each with the line and column it refers to.

use std::fmt;

/// A position in the policy text: 1-based line, 1-based column in Unicode scalar values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Location {
    /// Line number, from 1.
    pub line: u32,
    /// Column within the line, from 1, counted in Unicode scalar values (not bytes).
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
    /// The bytes are not UTF-8 (JSON text must be).
    #[error("the policy is not valid UTF-8")]
    InvalidUtf8,
    /// The text is not JSON; the message says what was expected.
    #[error("JSON syntax error: {0}")]
    Syntax(String),
    /// Something other than whitespace follows the top-level object.
    #[error("unexpected data after the end of the policy object")]
    TrailingData,
    /// Objects and arrays nest deeper than the parser's named depth limit.
    #[error("JSON nesting is too deep")]
    TooDeep,
    /// The policy is larger than the size limit (given, in bytes).
    #[error("the policy file is larger than {0} bytes")]
    TooLarge(usize),
    /// An object repeats a key (JSON leaves the meaning open, so it is refused); the key is
    /// given.
    #[error("duplicate key {0:?}")]
    DuplicateKey(String),
    /// An object has a key the policy format does not define.
    #[error("unknown field {field:?} in {context}")]
    UnknownField {
        /// The unknown key.
        field: String,
        /// Where: the JSON path of the object, e.g. `transports.docker["quay.io"][0]`.
        context: String,
    },
    /// A required key is absent.
    #[error("missing field {field:?} in {context}")]
    MissingField {
        /// The missing key.
        field: String,
        /// Where: the JSON path of the object, e.g. `transports.docker["quay.io"][0]`.
        context: String,
    },
    /// A value has the wrong JSON type.
    #[error("{context} must be {expected}, found {found}")]
    WrongType {
        /// The value, as a JSON path.
        context: String,
        /// The type wanted, as an expectation (`"an object"`).
        expected: &'static str,
        /// The JSON type found (`"string"`).
        found: &'static str,
    },
    /// A scope's requirement list is `[]` (containers/image refuses it too).
    #[error("the list of requirements must not be empty")]
    EmptyRequirements,
    /// A key or certificate path is not absolute.
    #[error("{field} must be an absolute path, found {path:?}")]
    RelativePath {
        /// The policy field holding the path (`keyPath`, ...).
        field: String,
        /// The path as written.
        path: String,
    },
    /// Fields that exclude each other are both present (or neither of a required pair); the
    /// text names them.
    #[error("{0}")]
    Conflict(String),
    /// A scope key is not valid for its transport (a bad docker reference, a relative path).
    #[error("invalid scope {scope:?} for transport {transport:?}: {reason}")]
    InvalidScope {
        /// The transport section the scope is in.
        transport: String,
        /// The scope key as written.
        scope: String,
        /// Why it is not a valid scope.
        reason: String,
    },
    /// A requirement's `type` is none of the known ones (given).
    #[error("unknown requirement type {0:?}")]
    UnknownRequirementType(String),
    /// A `signedIdentity` object is malformed; the text says how.
    #[error("invalid signedIdentity: {0}")]
    InvalidSignedIdentity(String),
    /// A field's value is of the right type but not acceptable (a bad timestamp, base64,
    /// threshold, ...).
    #[error("invalid {field}: {reason}")]
    InvalidValue {
        /// The field.
        field: String,
        /// Why the value is refused.
        reason: String,
    },
}

/// A located policy error: `LINE:COLUMN: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {kind}")]
pub struct PolicyError {
    /// Where in the policy text the problem is.
    pub location: Location,
    /// What the problem is.
    pub kind: PolicyErrorKind,
}

impl PolicyError {
    /// An error of `kind` at `location`.
    pub fn new(location: Location, kind: PolicyErrorKind) -> Self {
        PolicyError { location, kind }
    }
}

/// Failure to load a policy file: either reading it or its content.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be opened or read (or is not a regular file within the size limit).
    #[error("cannot read policy file {path}: {source}")]
    Read {
        /// The policy file.
        path: std::path::PathBuf,
        /// Why it cannot be read.
        source: std::io::Error,
    },
    /// The file was read but is not a valid policy.
    #[error("{path}:{error}")]
    Invalid {
        /// The policy file.
        path: std::path::PathBuf,
        /// What is wrong and where.
        error: PolicyError,
    },
}
