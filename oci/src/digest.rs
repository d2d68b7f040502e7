//! Blob digests: the `sha256:<hex>` names of OCI content (manifests, configs, layers).
//!
//! A [`BlobDigest`] holds a plain sha256 ([`ContentSha256`]), a type distinct from the fs-verity
//! digest that names composefs images and store objects ([`cfsgate_image::FsVeritySha256`]).
//!
//! OCI allows other algorithms in principle; cfsgate accepts only `sha256` with exactly 64
//! lowercase hex digits (the canonical form every registry and tool writes), so that a digest
//! has exactly one spelling and one file name.

use std::fmt;
use std::str::FromStr;

use cfsgate_image::ContentSha256;
use sha2::Digest as _;

/// The sha256 digest of a blob's exact bytes, written `sha256:<hex>`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobDigest(pub ContentSha256);

impl BlobDigest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        BlobDigest(ContentSha256::of(bytes))
    }

    /// Lowercase hex without the algorithm prefix (the blob's file name).
    pub fn hex(&self) -> String {
        self.0.to_hex()
    }

    /// Parse `sha256:<64 lowercase hex digits>`.
    pub fn parse(text: &str) -> Result<Self, BadDigest> {
        let bad = || BadDigest {
            digest: text.chars().take(200).collect(),
        };
        let hex = text.strip_prefix("sha256:").ok_or_else(bad)?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad());
        }
        ContentSha256::from_hex(hex).map(BlobDigest).ok_or_else(bad)
    }
}

/// A digest that is not `sha256:` + 64 lowercase hex digits (the first 200 characters kept);
/// [`OciError::BadDigest`](crate::OciError::BadDigest) when it reaches the crate's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported digest {digest:?}: only sha256:<64 lowercase hex digits> is accepted")]
pub struct BadDigest {
    /// The digest as written.
    pub digest: String,
}

impl FromStr for BlobDigest {
    type Err = BadDigest;
    fn from_str(s: &str) -> Result<Self, BadDigest> {
        Self::parse(s)
    }
}

impl fmt::Display for BlobDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0.to_hex())
    }
}

impl fmt::Debug for BlobDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0.to_hex())
    }
}

/// A streaming sha256 over a blob, with its byte count.
#[derive(Default, Clone)]
pub(crate) struct BlobHasher {
    hasher: sha2::Sha256,
    pub(crate) len: u64,
}

impl BlobHasher {
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.len += data.len() as u64;
    }

    pub(crate) fn finish(self) -> (BlobDigest, u64) {
        (
            BlobDigest(ContentSha256(self.hasher.finalize().into())),
            self.len,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_canonical_sha256() {
        let d = BlobDigest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(BlobDigest::parse(&d.to_string()).unwrap(), d);
        assert!(BlobDigest::parse(&d.to_string().to_uppercase()).is_err());
        assert!(BlobDigest::parse(&format!("sha512:{}", d.hex())).is_err());
        assert!(BlobDigest::parse("sha256:abc").is_err());
        assert!(BlobDigest::parse(&format!("sha256:{}", d.hex().replace('e', "E"))).is_err());
    }
}
