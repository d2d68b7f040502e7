//! The one error type of this crate: every variant says what went wrong and where (the
//! reference, the blob digest, the layer index, the tar entry path).

use std::io;

use crate::digest::BlobDigest;

/// Anything that can go wrong reading, resolving or applying an OCI image.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("invalid image reference {reference:?}: {reason}")]
    Reference { reference: String, reason: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("invalid image layout at {path}: {reason}")]
    Layout { path: String, reason: String },
    #[error("blob {digest} is missing from the image ({path})")]
    BlobMissing { digest: BlobDigest, path: String },
    #[error("blob {expected} does not match its digest: its bytes hash to {actual}")]
    DigestMismatch {
        expected: BlobDigest,
        actual: BlobDigest,
    },
    #[error("blob {digest} has {actual} bytes but its descriptor says {expected}")]
    SizeMismatch {
        digest: BlobDigest,
        expected: u64,
        actual: u64,
    },
    #[error("{what} {digest} is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        what: &'static str,
        digest: BlobDigest,
        size: u64,
        limit: u64,
    },
    #[error("unsupported digest {digest:?}: only sha256:<64 lowercase hex digits> is accepted")]
    BadDigest { digest: String },
    #[error("invalid JSON in {what} {digest}: {reason}")]
    Json {
        what: &'static str,
        digest: BlobDigest,
        reason: String,
    },
    #[error("{what} {digest} has unsupported media type {media_type:?}")]
    MediaType {
        what: &'static str,
        digest: BlobDigest,
        media_type: String,
    },
    #[error("{reference}: {reason}")]
    NotFound { reference: String, reason: String },
    #[error("layer {layer} ({digest}): {reason}")]
    Layer {
        layer: usize,
        digest: BlobDigest,
        reason: String,
    },
    #[error("layer {layer} ({digest}): tar entry {entry:?}: {reason}")]
    TarEntry {
        layer: usize,
        digest: BlobDigest,
        entry: String,
        reason: String,
    },
    #[error("layer {layer} ({digest}): uncompressed content hashes to {actual}, but the config's diff_id is {expected}")]
    DiffIdMismatch {
        layer: usize,
        digest: BlobDigest,
        expected: BlobDigest,
        actual: BlobDigest,
    },
    #[error("image config {config}: {reason}")]
    Config { config: BlobDigest, reason: String },
    #[error("image too large: {reason}")]
    Limit { reason: String },
    #[error("writing the composefs image: {0}")]
    Write(String),
    #[error("containers-storage {path}: {reason}")]
    Storage { path: String, reason: String },
}

impl OciError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        OciError::Io {
            what: what.into(),
            source,
        }
    }
}
