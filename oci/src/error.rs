//! The one error type of this crate: every variant says what went wrong and where (the
//! reference, the blob digest, the layer index, the tar entry path).

use std::io;

use crate::digest::{BadDigest, BlobDigest};

/// Anything that can go wrong reading, resolving or applying an OCI image.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The image reference cannot be parsed.
    #[error("invalid image reference {reference:?}: {reason}")]
    Reference {
        /// The reference as given.
        reference: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// A file of the layout or repository cannot be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, and to which file.
        what: String,
        /// The error the kernel returned.
        #[source]
        source: io::Error,
    },
    /// The OCI layout is malformed (`oci-layout`, `index.json`, blob directory).
    #[error("invalid image layout at {path}: {reason}")]
    Layout {
        /// The layout directory or file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A blob a descriptor names is absent.
    #[error("blob {digest} is missing from the image ({path})")]
    BlobMissing {
        /// The blob's digest.
        digest: BlobDigest,
        /// Where it was looked for.
        path: String,
    },
    /// A blob's bytes do not hash to its name.
    #[error("blob {expected} does not match its digest: its bytes hash to {actual}")]
    DigestMismatch {
        /// The digest it is named by.
        expected: BlobDigest,
        /// The digest of its bytes.
        actual: BlobDigest,
    },
    /// A blob's length differs from its descriptor's `size`.
    #[error("blob {digest} has {actual} bytes but its descriptor says {expected}")]
    SizeMismatch {
        /// The blob's digest.
        digest: BlobDigest,
        /// The descriptor's size in bytes.
        expected: u64,
        /// The blob's length in bytes.
        actual: u64,
    },
    /// A blob exceeds the named size limit for its kind.
    #[error("{what} {digest} is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// What the blob is (`"manifest"`, `"config"`, ...).
        what: &'static str,
        /// Its digest.
        digest: BlobDigest,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A digest is not `sha256:` + 64 lowercase hex digits.
    #[error("unsupported digest {digest:?}: only sha256:<64 lowercase hex digits> is accepted")]
    BadDigest {
        /// The digest as written.
        digest: String,
    },
    /// A manifest, index or config is not the JSON it must be.
    #[error("invalid JSON in {what} {digest}: {reason}")]
    Json {
        /// What the blob is.
        what: &'static str,
        /// Its digest.
        digest: BlobDigest,
        /// The parser's message (a repeated key is named).
        reason: String,
    },
    /// A manifest, index or layer has a media type this crate does not handle.
    #[error("{what} {digest} has unsupported media type {media_type:?}")]
    MediaType {
        /// What the blob is.
        what: &'static str,
        /// Its digest.
        digest: BlobDigest,
        /// The media type as written.
        media_type: String,
    },
    /// The reference names no image in the layout or store (no such tag, digest or platform).
    #[error("{reference}: {reason}")]
    NotFound {
        /// The reference as given.
        reference: String,
        /// What was not found.
        reason: String,
    },
    /// A layer cannot be decompressed or applied.
    #[error("layer {layer} ({digest}): {reason}")]
    Layer {
        /// Index of the layer in the manifest, from 0.
        layer: usize,
        /// The layer's blob digest.
        digest: BlobDigest,
        /// What went wrong.
        reason: String,
    },
    /// One tar entry of a layer is refused (a bad path, type, size or link).
    #[error("layer {layer} ({digest}): tar entry {entry:?}: {reason}")]
    TarEntry {
        /// Index of the layer in the manifest, from 0.
        layer: usize,
        /// The layer's blob digest.
        digest: BlobDigest,
        /// The entry's path as in the tar.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// A layer's uncompressed content does not hash to the config's `rootfs.diff_ids` entry.
    #[error("layer {layer} ({digest}): uncompressed content hashes to {actual}, but the config's diff_id is {expected}")]
    DiffIdMismatch {
        /// Index of the layer in the manifest, from 0.
        layer: usize,
        /// The layer's blob digest.
        digest: BlobDigest,
        /// The config's diff_id.
        expected: BlobDigest,
        /// The sha256 of the uncompressed content.
        actual: BlobDigest,
    },
    /// The image config is malformed or inconsistent with the manifest.
    #[error("image config {config}: {reason}")]
    Config {
        /// The config's digest.
        config: BlobDigest,
        /// What is wrong.
        reason: String,
    },
    /// The image exceeds one of the build's resource limits.
    #[error("image too large: {reason}")]
    Limit {
        /// Which limit, and by how much.
        reason: String,
    },
    /// Writing the composefs image or its objects failed.
    #[error("writing the composefs image: {0}")]
    Write(String),
    /// A containers-storage store cannot be read as expected.
    #[error("containers-storage {path}: {reason}")]
    Storage {
        /// The store file or directory.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl OciError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        OciError::Io {
            what: what.into(),
            source,
        }
    }
}

impl From<BadDigest> for OciError {
    fn from(bad: BadDigest) -> Self {
        OciError::BadDigest { digest: bad.digest }
    }
}
