//! The errors of the object store: every variant says what was being done and where.

use std::io;
use std::path::{Path, PathBuf};

use crate::fsverity::FsVeritySha256;

/// Something the repository could not do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file system operation on the repository failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// The operation, as a verb phrase (`"read image"`, `"rename"`, ...).
        what: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// The error the kernel returned.
        #[source]
        source: io::Error,
    },
    /// The directory has no readable `meta.json`, so it is not a repository.
    #[error("{path}: not a cfsgate repository (no readable meta.json): {source}")]
    NotARepository {
        /// The directory opened as a repository.
        path: PathBuf,
        /// Why `meta.json` could not be read.
        #[source]
        source: io::Error,
    },
    /// `meta.json` is readable but names a version, algorithm or mode this build does not support.
    #[error("{path}: unsupported repository metadata: {reason}")]
    BadMeta {
        /// Path of the `meta.json` file.
        path: PathBuf,
        /// What is unsupported or malformed in it.
        reason: String,
    },
    /// A ref name given by the caller breaks the ref naming rules.
    #[error("invalid ref name {name:?}: {reason}")]
    BadRefName {
        /// The name as given.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A ref file exists but does not hold a valid image digest.
    #[error("ref {name:?} is unreadable: {reason}")]
    BadRef {
        /// The ref's name (its path under `refs/`).
        name: String,
        /// Why its content is not a digest, or why it cannot be read.
        reason: String,
    },
    /// A name is neither a ref nor the digest of a stored image.
    #[error("no ref and no image named {0:?}")]
    UnknownName(String),
    /// No image with this fs-verity digest is stored.
    #[error("image {0} is not in the repository")]
    ImageNotFound(FsVeritySha256),
    /// An image refers to objects the repository does not hold.
    #[error("image references {count} objects that are not in the repository (first: {first})")]
    MissingObjects {
        /// How many distinct objects are missing.
        count: usize,
        /// The first missing object (smallest digest), for the message.
        first: FsVeritySha256,
        /// Every missing object's fs-verity digest.
        missing: Vec<FsVeritySha256>,
    },
    /// Bytes that should be a composefs image cannot be read as one.
    #[error("{what}: not a valid composefs image: {reason}")]
    BadImage {
        /// Which image (a digest, a path or a caller's label).
        what: String,
        /// The reader's error, as text.
        reason: String,
    },
    /// Content's fs-verity digest differs from the digest it was declared with.
    #[error("{path}: content has fs-verity digest {actual}, but {expected} was declared")]
    DigestMismatch {
        /// The file whose content was hashed.
        path: PathBuf,
        /// The digest the caller or the image declared.
        expected: FsVeritySha256,
        /// The digest the content has.
        actual: FsVeritySha256,
    },
    /// An import source (a directory tree or dump file) cannot be imported.
    #[error("{path}: {reason}")]
    BadSource {
        /// The source file or directory.
        path: PathBuf,
        /// Why it is refused (changed while read, bad backing path, parse error, ...).
        reason: String,
    },
    /// fs-verity could not be enabled on a file of a repository whose mode is
    /// [`VerityMode::Kernel`](super::VerityMode::Kernel).
    #[error("{path}: cannot seal with fs-verity in a kernel-verity repository: {reason}")]
    VeritySeal {
        /// The object or image file.
        path: PathBuf,
        /// What the kernel said.
        reason: String,
    },
    /// Something other than a regular file is where an object should be; it was not read.
    #[error("{path}: is {kind}, not a regular file (an object must be one)")]
    NotAnObject {
        /// The object path.
        path: PathBuf,
        /// What is there (`"a FIFO"`, `"a symbolic link"`, ...).
        kind: &'static str,
    },
    /// gc stopped before removing anything because it cannot tell what is reachable (an unreadable
    /// ref or reachable image); the text says which and how to fix it.
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
