//! The outcome of links 5–7 of the trust chain (see [`crate::chain`]): the verified seal
//! ([`SealOk`], the trusted composefs digest and how it was found) or why it failed
//! ([`SealFailure`]). A leaf shared by `chain` (which asks), `root` (which checks) and
//! `evaluate` (which reports).

use cfsgate_image::{ContentSha256, FsVeritySha256};

/// How the composefs image matching the seal was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealSource {
    /// `images/<digest>` of the repository, hashed.
    Stored,
    /// Not sealed: the image built earlier from these verified layers (under this convention),
    /// found by the gate's keyed record ([`crate::built`]) and hashed.
    Recorded(cfsgate_oci::Convention),
    /// Rebuilt from the layers: the seal names their image under this convention.
    Rebuilt(cfsgate_oci::Convention),
    /// Built from the layers (under this convention) and stored in the repository.
    Built(cfsgate_oci::Convention),
}

/// A verified seal: the trusted composefs digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealOk {
    /// The fs-verity digest of the composefs image, from the seal label, checked.
    pub composefs_digest: FsVeritySha256,
    /// sha256 of the image config that carries the seal label.
    pub config_digest: ContentSha256,
    /// How the seal was checked.
    pub source: SealSource,
    /// The digest is the config's seal label (else: the image built from unsealed layers).
    pub sealed: bool,
}

/// Why links 5–7 failed; each its own reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealFailure {
    /// The config blob's sha256 is not the one the manifest names.
    #[error("the config blob does not match the digest the manifest names: {0}")]
    ConfigMismatch(String),
    /// The image config cannot be read or parsed.
    #[error("the image config cannot be read: {0}")]
    ConfigUnreadable(String),
    /// The manifest read for the seal check is not the one the signatures were checked on.
    #[error("the image was re-read with another manifest ({actual}, expected {expected})")]
    ManifestChanged {
        /// The digest the signatures were checked on.
        expected: ContentSha256,
        /// The digest re-read.
        actual: ContentSha256,
    },
    /// The config has no `containers.composefs.fsverity` label.
    #[error("the image is not sealed: config has no containers.composefs.fsverity label")]
    Unsealed,
    /// The seal label is not a well-formed digest.
    #[error("the seal label is malformed: {0}")]
    BadLabel(String),
    /// The repository's stored composefs image does not hash to its name (the seal digest, or
    /// the digest the gate recorded when it built the image).
    #[error(
        "the stored composefs image images/{sealed} was altered: its content hashes to {actual}"
    )]
    StoredImageAltered {
        /// The sealed digest, the stored image's name.
        sealed: FsVeritySha256,
        /// What the stored bytes hash to.
        actual: FsVeritySha256,
    },
    /// The repository holding the sealed image cannot be read.
    #[error("the repository cannot be read: {0}")]
    RepositoryUnreadable(String),
    /// A layer cannot be read or does not match its digest, so the composefs image cannot be
    /// rebuilt.
    #[error("a layer does not match the image (cannot rebuild the composefs image): {0}")]
    LayerInvalid(String),
    /// The composefs image could not be built from the verified layers and stored (the gate).
    #[error("the composefs image cannot be built and stored: {0}")]
    Build(String),
    /// The composefs image rebuilt from the layers is not the sealed one under any known seal
    /// convention.
    #[error("the seal says {sealed}, but the composefs image built from the layers is {actual} (and no other seal convention gives {sealed})")]
    Mismatch {
        /// The digest the seal label names.
        sealed: FsVeritySha256,
        /// The digest of the rebuilt image.
        actual: FsVeritySha256,
    },
}
