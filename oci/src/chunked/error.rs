//! [`ChunkedError`]: why a partial (zstd:chunked) pull was refused. A leaf below the partial
//! pull (`chunked::partial`) and the importer, whose error wraps it.

use std::io;

use super::toc::TocError;
use crate::digest::BlobDigest;
use crate::error::OciError;

/// A partial pull refused.
#[derive(Debug, thiserror::Error)]
pub enum ChunkedError {
    /// A layer's table of contents cannot be fetched, parsed or trusted.
    #[error("layer {layer} ({digest}): {source}")]
    Toc {
        /// Index of the layer in the manifest, from 0.
        layer: usize,
        /// The layer's blob digest.
        digest: BlobDigest,
        /// What is wrong with the TOC.
        #[source]
        source: TocError,
    },
    /// A file's fetched content does not match the TOC (digest, length or frames).
    #[error("layer {layer} ({digest}): file {file:?}: {reason}; nothing stored")]
    Content {
        /// Index of the layer in the manifest, from 0.
        layer: usize,
        /// The layer's blob digest.
        digest: BlobDigest,
        /// The file's path in the layer.
        file: String,
        /// What does not match.
        reason: String,
    },
    /// Reading a byte range of the layer blob failed.
    #[error("layer {layer} ({digest}): reading bytes {start}..{end}: {source}")]
    Fetch {
        /// Index of the layer in the manifest, from 0.
        layer: usize,
        /// The layer's blob digest.
        digest: BlobDigest,
        /// First byte of the range.
        start: u64,
        /// One past the last byte of the range.
        end: u64,
        /// The error of the range read.
        #[source]
        source: io::Error,
    },
    /// The image or a layer is refused as in a full pull.
    #[error(transparent)]
    Oci(#[from] OciError),
}
