//! Signatures whose hash is named apart from the key: CMS and X.509 signature algorithms
//! (`ecdsa-with-SHA256` with a P-384 key, as sigstore's timestamp authority signs), SCTs
//! (TLS `SignatureAndHashAlgorithm`), and sigstore message signatures (ECDSA over the
//! artifact's SHA-256 whatever the curve).
//!
//! | OID | algorithm |
//! |---|---|
//! | 2.16.840.1.101.3.4.2.1 / .2 / .3 | sha256 / sha384 / sha512 (digest algorithms) |
//! | 1.2.840.10045.4.3.2 / .3 / .4 | ecdsa-with-SHA256 / 384 / 512 |
//! | 1.2.840.113549.1.1.11 | sha256WithRSAEncryption (PKCS#1 v1.5) |
//! | 1.2.840.113549.1.1.1 | rsaEncryption: PKCS#1 v1.5 with the digest algorithm given beside it |
//! | 1.2.840.10045.2.1 | id-ecPublicKey used as a signature algorithm: ECDSA with the digest algorithm given beside it |

use cfsgate_keyring::PublicKey;
use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// A hash function of a signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Hash {
    /// The digest algorithm an OID names (see the module table).
    pub fn from_digest_oid(oid: &str) -> Option<Self> {
        match oid {
            "2.16.840.1.101.3.4.2.1" => Some(Self::Sha256),
            "2.16.840.1.101.3.4.2.2" => Some(Self::Sha384),
            "2.16.840.1.101.3.4.2.3" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The hash of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha384 => Sha384::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// A signature algorithm: how to check a signature with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// ECDSA (DER signature) over the given hash of the message.
    Ecdsa(Hash),
    /// RSA PKCS#1 v1.5 with the given hash.
    RsaPkcs1(Hash),
}

impl SignatureAlgorithm {
    /// The algorithm an OID names; `digest` is the digest algorithm given beside it, used by
    /// the OIDs that name no hash (see the module table).
    pub fn from_oid(oid: &str, digest: Option<Hash>) -> Option<Self> {
        match oid {
            "1.2.840.10045.4.3.2" => Some(Self::Ecdsa(Hash::Sha256)),
            "1.2.840.10045.4.3.3" => Some(Self::Ecdsa(Hash::Sha384)),
            "1.2.840.10045.4.3.4" => Some(Self::Ecdsa(Hash::Sha512)),
            "1.2.840.10045.2.1" => digest.map(Self::Ecdsa),
            "1.2.840.113549.1.1.11" => Some(Self::RsaPkcs1(Hash::Sha256)),
            "1.2.840.113549.1.1.1" => digest.map(Self::RsaPkcs1),
            _ => None,
        }
    }

    /// Whether `signature` is `key`'s signature over `message` under this algorithm.
    pub fn verify(self, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
        match (self, key) {
            (Self::Ecdsa(hash), PublicKey::EcdsaP256(_) | PublicKey::EcdsaP384(_)) => {
                ecdsa_prehash(key, &hash.digest(message), signature)
            }
            // The keyring checks RSA with SHA-256 (PKCS#1 v1.5, then PSS).
            (Self::RsaPkcs1(Hash::Sha256), PublicKey::Rsa { .. }) => {
                key.verify(message, signature).is_ok()
            }
            _ => false,
        }
    }
}

/// Whether `signature` (DER) is an ECDSA signature by `key` over the precomputed `digest`;
/// false for a key that is not ECDSA.
pub fn ecdsa_prehash(key: &PublicKey, digest: &[u8], signature: &[u8]) -> bool {
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    match key {
        PublicKey::EcdsaP256(k) => p256::ecdsa::Signature::from_der(signature)
            .is_ok_and(|s| k.verify_prehash(digest, &s).is_ok()),
        PublicKey::EcdsaP384(k) => p384::ecdsa::Signature::from_der(signature)
            .is_ok_and(|s| k.verify_prehash(digest, &s).is_ok()),
        _ => false,
    }
}

/// A sigstore signature by `key` over `message` whose SHA-256 is `sha256` (a message signature
/// over an artifact, a DSSE signature over PAE): ECDSA over that SHA-256 whatever the curve (as
/// sigstore clients sign), or over the curve's own hash; other keys verify the message itself
/// (`None` when only the digest is known and the key cannot use it).
pub fn verify_sigstore(
    key: &PublicKey,
    message: Option<&[u8]>,
    sha256: &[u8; 32],
    signature: &[u8],
) -> Option<bool> {
    match key {
        PublicKey::EcdsaP256(_) => Some(ecdsa_prehash(key, sha256, signature)),
        PublicKey::EcdsaP384(_) => Some(
            ecdsa_prehash(key, sha256, signature)
                || message.is_some_and(|m| ecdsa_prehash(key, &Hash::Sha384.digest(m), signature)),
        ),
        _ => message.map(|m| key.verify(m, signature).is_ok()),
    }
}
