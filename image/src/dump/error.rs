//! How strictly a dump file is read ([`ParseMode`]) and why it could not be
//! ([`DumpError`]): a leaf below the parser and the module's entry points.

/// How strictly to read a dump file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseMode {
    /// As `mkcomposefs --from-file` with strict checks.
    Strict,
    /// Accepts what upstream accepts without strict mode.
    Lenient,
}

/// A dump file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DumpError {
    /// 1-based line number (0 when the error is not tied to one line).
    pub line: usize,
    /// What is wrong on that line.
    pub message: String,
}
