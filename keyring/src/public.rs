//! Public keys (trust anchors) read from files, their stable ids, and signature verification.
//!
//! Accepted encodings, detected from the PEM label or, without PEM armour, from the DER:
//!
//! | input                          | key types                                  |
//! |--------------------------------|--------------------------------------------|
//! | PEM `PUBLIC KEY` (SPKI)        | Ed25519, ECDSA P-256, ECDSA P-384, RSA     |
//! | PEM `RSA PUBLIC KEY` (PKCS#1)  | RSA                                        |
//! | DER SPKI, DER PKCS#1           | as above                                   |
//!
//! RSA moduli must be 2048–4096 bits ([`RSA_MIN_BITS`], [`RSA_MAX_BITS`]).
//!
//! Signature schemes checked by [`PublicKey::verify`], always over the exact message bytes.
//! They are containers/image's for sigstore payloads (sigstore's `LoadVerifier(key, SHA256)`):
//! one hash, SHA-256, whatever the curve, ECDSA signatures in ASN.1 DER only, RSA PKCS#1 v1.5
//! only, so a signature counts here exactly when podman's own policy check would count it.
//!
//! | key        | scheme                                   | signature encoding               |
//! |------------|------------------------------------------|----------------------------------|
//! | Ed25519    | pure Ed25519 (RFC 8032), strict           | 64 bytes                         |
//! | ECDSA P-256| ECDSA with SHA-256                        | ASN.1 DER                        |
//! | ECDSA P-384| ECDSA with SHA-256 (as cosign signs)      | ASN.1 DER                        |
//! | RSA        | PKCS#1 v1.5 with SHA-256                  | modulus-sized                    |
//!
//! Refused although a looser verifier might take them: a P-384 signature over SHA-384, a
//! fixed-size `r‖s` ECDSA signature, an RSA-PSS signature (Go's verifier refuses each).
//! Signatures whose algorithm is named apart from the key (X.509, CMS, SCTs, sigstore bundles)
//! are checked by the verifier's `sigalg` module instead.
//!
//! The [`KeyId`] of a key is the SHA-256 of its canonical DER SubjectPublicKeyInfo (the bytes
//! `openssl pkey -pubin -outform DER` prints), so the same key has the same id whatever
//! encoding it was read from.

use std::fmt;

use der::Decode as _;
use ed25519_dalek::pkcs8::DecodePublicKey as _;
use p256::ecdsa::signature::Verifier as _;
use pkcs8::EncodePublicKey as _;
use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::traits::PublicKeyParts as _;
use sha2::{Digest, Sha256};

use crate::error::{KeyError, VerifyError};

/// Smallest RSA modulus accepted: below 2048 bits RSA is no longer considered safe (NIST SP 800-131A).
pub const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted: the largest size cosign and the kernel keyring handle, and a
/// bound on the verification cost an attacker-supplied key can impose.
pub const RSA_MAX_BITS: usize = 4096;

/// OID of Ed25519 keys (RFC 8410).
pub(crate) const OID_ED25519: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.101.112");
/// OID of elliptic-curve public keys (RFC 5480 id-ecPublicKey).
pub(crate) const OID_EC_PUBLIC_KEY: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// OID of the NIST P-256 curve (secp256r1).
pub(crate) const OID_P256: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// OID of the NIST P-384 curve (secp384r1).
pub(crate) const OID_P384: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// OID of RSA keys (PKCS#1 rsaEncryption).
pub(crate) const OID_RSA: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The key types cfsgate accepts, as named by an X.509 AlgorithmIdentifier.
pub(crate) enum KeyKind {
    Ed25519,
    P256,
    P384,
    Rsa,
}

/// Which supported key type `algorithm` names (public and private keys alike), or a clear
/// refusal naming the algorithm or curve. `what` is "key" or "private key algorithm".
pub(crate) fn key_kind(
    algorithm: &spki::AlgorithmIdentifierRef<'_>,
    source: &str,
    what: &str,
) -> Result<KeyKind, KeyError> {
    let oid = algorithm.oid;
    if oid == OID_ED25519 {
        Ok(KeyKind::Ed25519)
    } else if oid == OID_RSA {
        Ok(KeyKind::Rsa)
    } else if oid == OID_EC_PUBLIC_KEY {
        let curve = algorithm.parameters_oid().map_err(|e| KeyError::Invalid {
            source_name: source.to_string(),
            reason: format!("bad EC {what}: no curve: {e}"),
        })?;
        if curve == OID_P256 {
            Ok(KeyKind::P256)
        } else if curve == OID_P384 {
            Ok(KeyKind::P384)
        } else {
            Err(KeyError::Unsupported {
                source_name: source.to_string(),
                found: format!("EC key on curve {curve} (only P-256 and P-384 are supported)"),
            })
        }
    } else {
        Err(KeyError::Unsupported {
            source_name: source.to_string(),
            found: format!("{what} {oid}"),
        })
    }
}

/// Stable identifier of a public key: SHA-256 of its DER SubjectPublicKeyInfo.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 32]);

impl KeyId {
    /// Number of hex digits in [`KeyId::short`]: 64 bits, enough to tell a handful of trusted
    /// keys apart in human output (never used for lookup).
    pub const SHORT_HEX_LEN: usize = 16;

    /// The id of a DER SubjectPublicKeyInfo.
    pub fn of_spki_der(spki_der: &[u8]) -> Self {
        Self(Sha256::digest(spki_der).into())
    }

    /// First [`KeyId::SHORT_HEX_LEN`] hex digits, for human output.
    pub fn short(&self) -> String {
        let mut hex = self.to_string();
        hex.truncate(Self::SHORT_HEX_LEN);
        hex
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

/// The algorithm family of a key, for messages and listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// Ed25519.
    Ed25519,
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// RSA.
    Rsa {
        /// Modulus size in bits.
        bits: usize,
    },
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ed25519 => f.write_str("Ed25519"),
            Self::EcdsaP256 => f.write_str("ECDSA P-256"),
            Self::EcdsaP384 => f.write_str("ECDSA P-384"),
            Self::Rsa { bits } => write!(f, "RSA-{bits}"),
        }
    }
}

/// A parsed public key able to verify signatures.
#[derive(Clone, Debug)]
pub enum PublicKey {
    /// An Ed25519 public key.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// An ECDSA public key on NIST P-256.
    EcdsaP256(p256::ecdsa::VerifyingKey),
    /// An ECDSA public key on NIST P-384.
    EcdsaP384(p384::ecdsa::VerifyingKey),
    /// An RSA public key.
    Rsa {
        /// Modulus size in bits, within `RSA_MIN_BITS..=RSA_MAX_BITS`.
        bits: usize,
        /// The key itself.
        key: rsa::RsaPublicKey,
    },
}

impl PublicKey {
    /// Reads and parses a public key file (PEM or DER).
    pub fn from_file(path: &std::path::Path) -> Result<Self, KeyError> {
        let bytes = crate::file::read_trust_file(path, crate::file::MAX_TRUST_FILE_BYTES)?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Parses PEM (`PUBLIC KEY`, `RSA PUBLIC KEY`) or DER (SPKI, PKCS#1); `source` names the
    /// input in errors (a file name, a kernel key description).
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Self, KeyError> {
        if let Some(pem_text) = as_pem(bytes) {
            let blocks = pem_text.matches("-----BEGIN ").count();
            if blocks > 1 {
                return Err(KeyError::SeveralPemBlocks {
                    source_name: source.to_string(),
                    blocks,
                });
            }
            let (label, der) = pem_decode(pem_text, source)?;
            return match label.as_str() {
                "PUBLIC KEY" => Self::from_spki_der(&der, source),
                "RSA PUBLIC KEY" => Self::from_pkcs1_der(&der, source),
                other => Err(KeyError::UnexpectedPem {
                    source_name: source.to_string(),
                    found: other.to_string(),
                    expected: "PUBLIC KEY or RSA PUBLIC KEY",
                }),
            };
        }
        Self::from_spki_der(bytes, source)
            .or_else(|spki_error| Self::from_pkcs1_der(bytes, source).map_err(|_| spki_error))
    }

    /// Parses a raw 32-byte Ed25519 public key.
    pub fn from_ed25519_raw(raw: &[u8; 32], source: &str) -> Result<Self, KeyError> {
        ed25519_dalek::VerifyingKey::from_bytes(raw)
            .map(Self::Ed25519)
            .map_err(|e| KeyError::Invalid {
                source_name: source.to_string(),
                reason: format!("not an Ed25519 point: {e}"),
            })
    }

    /// Parses a DER SubjectPublicKeyInfo of any supported type.
    pub fn from_spki_der(der_bytes: &[u8], source: &str) -> Result<Self, KeyError> {
        let spki =
            spki::SubjectPublicKeyInfoRef::from_der(der_bytes).map_err(|e| KeyError::Invalid {
                source_name: source.to_string(),
                reason: format!("not a DER SubjectPublicKeyInfo: {e}"),
            })?;
        let invalid = |what: &str, e: &dyn fmt::Display| KeyError::Invalid {
            source_name: source.to_string(),
            reason: format!("bad {what} public key: {e}"),
        };
        match key_kind(&spki.algorithm, source, "key")? {
            KeyKind::Ed25519 => ed25519_dalek::VerifyingKey::from_public_key_der(der_bytes)
                .map(Self::Ed25519)
                .map_err(|e| invalid("Ed25519", &e)),
            KeyKind::P256 => p256::ecdsa::VerifyingKey::from_public_key_der(der_bytes)
                .map(Self::EcdsaP256)
                .map_err(|e| invalid("ECDSA P-256", &e)),
            KeyKind::P384 => p384::ecdsa::VerifyingKey::from_public_key_der(der_bytes)
                .map(Self::EcdsaP384)
                .map_err(|e| invalid("ECDSA P-384", &e)),
            KeyKind::Rsa => {
                let key = rsa::RsaPublicKey::from_public_key_der(der_bytes)
                    .map_err(|e| invalid("RSA", &e))?;
                Self::from_rsa(key, source)
            }
        }
    }

    /// Parses a DER PKCS#1 RSAPublicKey.
    pub fn from_pkcs1_der(der_bytes: &[u8], source: &str) -> Result<Self, KeyError> {
        let key = rsa::RsaPublicKey::from_pkcs1_der(der_bytes).map_err(|e| KeyError::Invalid {
            source_name: source.to_string(),
            reason: format!("not a PKCS#1 RSA public key: {e}"),
        })?;
        Self::from_rsa(key, source)
    }

    pub(crate) fn from_rsa(key: rsa::RsaPublicKey, source: &str) -> Result<Self, KeyError> {
        let bits = key.n().bits();
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
            return Err(KeyError::RsaSize {
                source_name: source.to_string(),
                bits,
                min: RSA_MIN_BITS,
                max: RSA_MAX_BITS,
            });
        }
        Ok(Self::Rsa { bits, key })
    }

    /// The algorithm of this key.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            Self::Ed25519(_) => KeyAlgorithm::Ed25519,
            Self::EcdsaP256(_) => KeyAlgorithm::EcdsaP256,
            Self::EcdsaP384(_) => KeyAlgorithm::EcdsaP384,
            Self::Rsa { bits, .. } => KeyAlgorithm::Rsa { bits: *bits },
        }
    }

    /// Canonical DER SubjectPublicKeyInfo.
    pub fn to_spki_der(&self) -> Vec<u8> {
        let encoded = match self {
            Self::Ed25519(key) => key.to_public_key_der(),
            Self::EcdsaP256(key) => key.to_public_key_der(),
            Self::EcdsaP384(key) => key.to_public_key_der(),
            Self::Rsa { key, .. } => key.to_public_key_der(),
        };
        // Encoding a key that was successfully decoded only fails on allocation-free size
        // limits none of these key sizes reach; an empty SPKI could never match anything.
        encoded
            .map(|doc| doc.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// PEM `PUBLIC KEY` (SPKI) text.
    pub fn to_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.to_spki_der())
    }

    /// The stable id of this key.
    pub fn key_id(&self) -> KeyId {
        KeyId::of_spki_der(&self.to_spki_der())
    }

    /// Verifies `signature` over exactly `message` (see the module table for the schemes).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        match self {
            Self::Ed25519(key) => {
                let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| {
                    VerifyError::MalformedSignature("Ed25519 signature is not 64 bytes")
                })?;
                key.verify_strict(message, &sig)
                    .map_err(|_| VerifyError::BadSignature)
            }
            Self::EcdsaP256(key) => {
                let sig = p256::ecdsa::Signature::from_der(signature).map_err(|_| {
                    VerifyError::MalformedSignature("not an ASN.1 DER ECDSA P-256 signature")
                })?;
                verify_ecdsa_ring(
                    &ring::signature::ECDSA_P256_SHA256_ASN1,
                    key.to_encoded_point(false).as_bytes(),
                    message,
                    sig.to_der().as_bytes(),
                )
            }
            Self::EcdsaP384(key) => {
                let sig = p384::ecdsa::Signature::from_der(signature).map_err(|_| {
                    VerifyError::MalformedSignature("not an ASN.1 DER ECDSA P-384 signature")
                })?;
                verify_ecdsa_ring(
                    &ring::signature::ECDSA_P384_SHA256_ASN1,
                    key.to_encoded_point(false).as_bytes(),
                    message,
                    sig.to_der().as_bytes(),
                )
            }
            Self::Rsa { key, .. } => verify_rsa(key, message, signature),
        }
    }
}

/// The ECDSA arithmetic of [`PublicKey::verify`], by ring (assembly: ~0.1 ms a P-256
/// signature where the p256 crate took ~1 ms, paid once per signature at every hook run and
/// `verify`). The key and signature were parsed and range-checked by the p256/p384 crates
/// first (`r`, `s` in 1..n, point on the curve), and handed over in their canonical encodings
/// (uncompressed SEC1 point, DER re-encoded): what is accepted is unchanged, only faster to check.
fn verify_ecdsa_ring(
    algorithm: &'static ring::signature::EcdsaVerificationAlgorithm,
    point: &[u8],
    message: &[u8],
    fixed_signature: &[u8],
) -> Result<(), VerifyError> {
    ring::signature::UnparsedPublicKey::new(algorithm, point)
        .verify(message, fixed_signature)
        .map_err(|_| VerifyError::BadSignature)
}

/// RSA: PKCS#1 v1.5 with SHA-256, what cosign makes and the only scheme Go's verifier takes.
fn verify_rsa(
    key: &rsa::RsaPublicKey,
    message: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    if signature.len() != key.size() {
        return Err(VerifyError::MalformedSignature(
            "RSA signature length differs from the modulus length",
        ));
    }
    let pkcs1_sig = rsa::pkcs1v15::Signature::try_from(signature)
        .map_err(|_| VerifyError::MalformedSignature("not an RSA signature"))?;
    rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key.clone())
        .verify(message, &pkcs1_sig)
        .map_err(|_| VerifyError::BadSignature)
}

/// Returns the text when `bytes` look like PEM (armour line present).
pub(crate) fn as_pem(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.contains("-----BEGIN ").then_some(text)
}

/// Decodes the first PEM block of `text` into (label, DER).
pub(crate) fn pem_decode(text: &str, source: &str) -> Result<(String, Vec<u8>), KeyError> {
    let start = text.find("-----BEGIN ").unwrap_or(0);
    let block = &text[start..];
    // der's PEM decoder wants exactly one block with nothing after it.
    let end_marker = block.find("-----END ").and_then(|end| {
        block[end + 9..]
            .find("-----")
            .map(|tail| end + 9 + tail + 5)
    });
    let block = match end_marker {
        Some(end) => &block[..end],
        None => block,
    };
    let (label, der) = der::pem::decode_vec(block.as_bytes()).map_err(|e| KeyError::Invalid {
        source_name: source.to_string(),
        reason: format!("malformed PEM: {e}"),
    })?;
    Ok((label.to_string(), der))
}

/// Encodes DER as PEM with `label` (64-column base64, LF line endings).
pub(crate) fn pem_encode(label: &str, der_bytes: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der_bytes).unwrap_or_default()
}
