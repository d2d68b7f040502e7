//! The errors of the object store: every variant says what was being done and where.

use std::io;
use std::path::{Path, PathBuf};

use crate::fsverity::Sha256Digest;

/// Something the repository could not do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not a cfsgate repository (no readable meta.json): {source}")]
    NotARepository {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: unsupported repository metadata: {reason}")]
    BadMeta { path: PathBuf, reason: String },
    #[error("invalid ref name {name:?}: {reason}")]
    BadRefName { name: String, reason: &'static str },
    #[error("ref {name:?} is unreadable: {reason}")]
    BadRef { name: String, reason: String },
    #[error("no ref and no image named {0:?}")]
    UnknownName(String),
    #[error("image {0} is not in the repository")]
    ImageNotFound(Sha256Digest),
    #[error("image references {count} objects that are not in the repository (first: {first})")]
    MissingObjects {
        count: usize,
        first: Sha256Digest,
        missing: Vec<Sha256Digest>,
    },
    #[error("{what}: not a valid composefs image: {reason}")]
    BadImage { what: String, reason: String },
    #[error("{path}: content has fs-verity digest {actual}, but {expected} was declared")]
    DigestMismatch {
        path: PathBuf,
        expected: Sha256Digest,
        actual: Sha256Digest,
    },
    #[error("{path}: {reason}")]
    BadSource { path: PathBuf, reason: String },
    #[error("{path}: cannot seal with fs-verity in a kernel-verity repository: {reason}")]
    VeritySeal { path: PathBuf, reason: String },
    #[error("gc refused: {0}")]
    GcRefused(String),
}

impl StoreError {
    /// A closure for `map_err` that wraps an I/O error with what was being done and where.
    pub(crate) fn io<'a>(
        what: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> StoreError + 'a {
        move |source| StoreError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}
