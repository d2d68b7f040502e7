//! Checking a seal: the config label `containers.composefs.fsverity` ([`LABEL_FSVERITY`]) read
//! from an image's config and compared with the composefs image its layers give, under every
//! [`Convention`] (see `convention.rs`). Kept apart from sealing (`seal.rs`, which writes) so that
//! import, which only checks, depends on this module and not on the writer.
//!
//! A label is `sha256:<hex>` or a bare 64-digit lowercase hex value (composefs-rs 0.9 writes the
//! latter); anything else is [`SealError::BadLabel`].

use std::io;
use std::path::PathBuf;

use cfsgate_image::FsVeritySha256;
use serde_json::Value;

use crate::convention::{BuiltImage, Convention};
use crate::digest::BlobDigest;
use crate::error::OciError;
use crate::resolve::ResolvedImage;

/// The config label holding the composefs image digest.
pub const LABEL_FSVERITY: &str = "containers.composefs.fsverity";

/// Anything that can go wrong sealing or checking a seal.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The image cannot be read or resolved.
    #[error(transparent)]
    Oci(#[from] OciError),
    /// The composefs image built from the layers is not the one the seal label names.
    #[error("seal check failed: the config label {LABEL_FSVERITY} says sha256:{label}, but the composefs image built from the layers is sha256:{computed}{}", composefs_rs.map(|d| format!(" (sha256:{d} under the composefs-rs convention)")).unwrap_or_default())]
    Mismatch {
        /// The digest the config label names.
        label: FsVeritySha256,
        /// The image under cfsgate's (mkcomposefs) convention.
        computed: FsVeritySha256,
        /// The image under the composefs-rs convention, when it could be made.
        composefs_rs: Option<FsVeritySha256>,
    },
    /// The config has no seal label.
    #[error("image config {config} is not sealed: it has no {LABEL_FSVERITY} label")]
    NotSealed {
        /// The config's digest.
        config: BlobDigest,
    },
    /// The seal label is not `sha256:` + 64 hex digits.
    #[error(
        "image config {config}: label {LABEL_FSVERITY} is {value:?}, not sha256:<64 hex digits>"
    )]
    BadLabel {
        /// The config's digest.
        config: BlobDigest,
        /// The label's value.
        value: String,
    },
    /// A manifest or config cannot be parsed (or re-written for a new seal).
    #[error("{what} {digest}: {reason}")]
    Json {
        /// What the blob is.
        what: &'static str,
        /// Its digest.
        digest: BlobDigest,
        /// The parser's message.
        reason: String,
    },
    /// The destination tag is not a valid OCI tag.
    #[error("invalid tag {tag:?}: {reason}")]
    BadTag {
        /// The tag as given.
        tag: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The seal destination cannot be used (a bad reference or an unusable directory).
    #[error("destination {path}: {reason}")]
    Dest {
        /// The destination as given.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file of the destination cannot be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error the kernel returned.
        #[source]
        source: io::Error,
    },
}

/// The seal label of an image's config, if it has one.
pub fn read_seal(image: &ResolvedImage) -> Result<Option<FsVeritySha256>, SealError> {
    let config: Value = parse_json("image config", image.config_digest, &image.config_bytes)?;
    let Some(label) = config
        .get("config")
        .and_then(|c| c.get("Labels"))
        .and_then(|l| l.get(LABEL_FSVERITY))
    else {
        return Ok(None);
    };
    let bad = || SealError::BadLabel {
        config: image.config_digest,
        value: label.to_string().chars().take(200).collect(),
    };
    let text = label.as_str().ok_or_else(bad)?;
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    let lowercase = hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !lowercase {
        return Err(bad());
    }
    FsVeritySha256::from_hex(hex).map(Some).map_err(|_| bad())
}

/// Check that a sealed image's label names `computed` (the image built or stored from its
/// layers). An image without a label is [`SealError::NotSealed`].
pub fn check_seal(image: &ResolvedImage, computed: FsVeritySha256) -> Result<(), SealError> {
    match read_seal(image)? {
        None => Err(SealError::NotSealed {
            config: image.config_digest,
        }),
        Some(label) if label == computed => Ok(()),
        Some(label) => Err(SealError::Mismatch {
            label,
            computed,
            composefs_rs: None,
        }),
    }
}

/// A seal label found to name the composefs image of an image's layers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealMatch {
    /// The digest the label names.
    pub digest: FsVeritySha256,
    /// The convention under which the layers give that image.
    pub convention: Convention,
    /// That image's bytes, when it is not `built.image` (another convention's).
    pub image: Option<Vec<u8>>,
}

/// Check a sealed image's label against the image built from its layers under every
/// [`Convention`] (the tree is built once; see `convention.rs`). An image without a label is
/// [`SealError::NotSealed`]; a label naming none of them is [`SealError::Mismatch`].
pub fn check_seal_built(image: &ResolvedImage, built: &BuiltImage) -> Result<SealMatch, SealError> {
    let Some(label) = read_seal(image)? else {
        return Err(SealError::NotSealed {
            config: image.config_digest,
        });
    };
    if label == built.digest {
        return Ok(SealMatch {
            digest: label,
            convention: Convention::Mkcomposefs,
            image: None,
        });
    }
    // An image composefs-rs cannot transform (no /usr) has no composefs-rs seal: no match.
    let composefs_rs = Convention::ComposefsRs.image_of(&built.tree).ok();
    match composefs_rs {
        Some((bytes, digest)) if digest == label => Ok(SealMatch {
            digest: label,
            convention: Convention::ComposefsRs,
            image: Some(bytes),
        }),
        other => Err(SealError::Mismatch {
            label,
            computed: built.digest,
            composefs_rs: other.map(|(_, d)| d),
        }),
    }
}

pub(crate) fn parse_json(
    what: &'static str,
    digest: BlobDigest,
    bytes: &[u8],
) -> Result<Value, SealError> {
    serde_json::from_slice(bytes).map_err(|e| SealError::Json {
        what,
        digest,
        reason: e.to_string(),
    })
}
