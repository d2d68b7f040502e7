//! [`ContentSha256`]: the plain SHA-256 of some bytes, as OCI names manifests, configs and
//! layer blobs and as zstd:chunked tables of contents name files.
//!
//! It is a type of its own because the other 32-byte SHA-256 value of cfsgate,
//! [`FsVeritySha256`](crate::FsVeritySha256), is an fs-verity digest (the root of a Merkle tree
//! over the content, hashed with a descriptor): the digest that names composefs images and
//! store objects. The two are never equal for the same bytes, and only the types keep a
//! manifest digest from being compared with, or stored as, an image digest.
//!
//! | form | text |
//! |---|---|
//! | [`ContentSha256::to_hex`] | 64 lowercase hex digits |
//! | `Display` | `sha256:` + the hex digits (the OCI spelling) |

use std::fmt;

use sha2::Digest as _;

/// Length of a SHA-256 digest in bytes.
pub const SHA256_LEN: usize = 32;

/// The plain sha256 of some content (a manifest, a config, a blob, a file).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentSha256(pub [u8; SHA256_LEN]);

impl ContentSha256 {
    /// The sha256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        ContentSha256(sha2::Sha256::digest(bytes).into())
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse exactly 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut out = [0u8; SHA256_LEN];
        (text.len() == 2 * SHA256_LEN && hex::decode_to_slice(text, &mut out).is_ok())
            .then_some(ContentSha256(out))
    }
}

impl fmt::Display for ContentSha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

impl fmt::Debug for ContentSha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentSha256({})", self.to_hex())
    }
}
