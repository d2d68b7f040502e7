//! The EROFS writer. (Being written: see issue 2.)

use crate::tree::Tree;

/// Which composefs format versions the writer may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    /// Format version to start from (mkcomposefs `--min-version`, default 0).
    pub min_version: u32,
    /// Highest version the writer may raise to (mkcomposefs `--max-version`, default 1).
    pub max_version: u32,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { min_version: 0, max_version: 1 }
    }
}

/// A tree that cannot be written as a composefs image.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

/// Write `tree` as a composefs image, byte-identical to what mkcomposefs writes for it.
pub fn write_image(_tree: &Tree, _opts: &WriteOptions) -> Result<Vec<u8>, WriteError> {
    Err(WriteError::Invalid { path: "/".into(), reason: "writer not implemented yet".into() })
}
