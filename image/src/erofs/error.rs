//! The writer's error type, in a module of its own so that the writer and the composefs
//! rewrite pass it calls (`rewrite.rs`) both use it without depending on each other.

/// A tree that cannot be written as a composefs image.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// An inode of the tree cannot be represented in a composefs image.
    #[error("{path}: {reason}")]
    Invalid {
        /// Path of the inode from the tree root.
        path: String,
        /// What cannot be represented (too long, bad backing path, reserved xattr, ...).
        reason: String,
    },
    /// The requested composefs format version range includes none this writer can write.
    #[error("format version {min_version}..{max_version} requested; this writer supports 0..={supported}")]
    Version {
        /// Lowest format version requested.
        min_version: u32,
        /// Highest format version requested.
        max_version: u32,
        /// Highest format version this writer can write.
        supported: u32,
    },
    /// The writer's own layout bookkeeping went wrong (a bug, never caused by the tree).
    #[error("internal layout error: {0} (please report this)")]
    Internal(String),
}
