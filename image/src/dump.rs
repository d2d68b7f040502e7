//! composefs-dump(5): the text form of a tree. (Being written: see issue 2.)

use std::io::{BufRead, Write};

use crate::tree::Tree;

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
    pub message: String,
}

/// Parse a dump file into a tree.
pub fn parse(_input: impl BufRead, _mode: ParseMode) -> Result<Tree, DumpError> {
    Err(DumpError { line: 0, message: "not implemented yet".into() })
}

/// Write a tree as a dump file.
pub fn write(_tree: &Tree, _out: impl Write) -> std::io::Result<()> {
    Err(std::io::Error::other("not implemented yet"))
}
