//! Private keys for signing: reading (plain and encrypted PEM), generating, writing, signing.
//!
//! | PEM label                         | contents                                                  |
//! |-----------------------------------|-----------------------------------------------------------|
//! | `PRIVATE KEY`                     | PKCS#8: Ed25519, ECDSA P-256/P-384, RSA                   |
//! | `ENCRYPTED PRIVATE KEY`           | PKCS#8 under PBES2 (what `openssl genpkey -aes256` writes) |
//! | `EC PRIVATE KEY`                  | SEC1: ECDSA P-256/P-384                                   |
//! | `RSA PRIVATE KEY`                 | PKCS#1: RSA                                               |
//! | `ENCRYPTED SIGSTORE PRIVATE KEY`  | cosign's format, see [`crate::sigstore`]                  |
//!
//! The passphrase of an encrypted key comes from the environment variable
//! [`PASSPHRASE_ENV`] or, when standard input is a terminal, from a prompt on the terminal; it is
//! only asked for when the key actually is encrypted.
//!
//! Signatures made by [`PrivateKey::sign`]: Ed25519 pure; ECDSA over SHA-256 on both curves
//! (P-384 too: cosign and containers/image hash with SHA-256 whatever the curve), deterministic
//! (RFC 6979), ASN.1 DER encoded; RSA PKCS#1 v1.5 with SHA-256. These are the schemes
//! [`crate::PublicKey::verify`], cosign and containers/image accept.

use std::io::IsTerminal as _;

use der::Decode as _;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::EncodePrivateKey as _;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::public::{as_pem, key_kind, pem_decode, KeyKind, PublicKey};

/// Environment variable holding the passphrase of an encrypted private key.
pub const PASSPHRASE_ENV: &str = "CFSGATE_KEY_PASSPHRASE";

/// Key types `generate` can make (the ones `cfsgate key generate` offers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// An Ed25519 key.
    Ed25519,
    /// An ECDSA key on the NIST P-256 curve.
    P256,
}

impl KeyType {
    /// The names of the key types (`cfsgate key generate --type`), as [`KeyType::from_name`]
    /// takes them.
    pub const NAMES: [&'static str; 2] = ["ed25519", "p256"];

    /// The key type a name of [`KeyType::NAMES`] means.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ed25519" => Some(KeyType::Ed25519),
            "p256" => Some(KeyType::P256),
            _ => None,
        }
    }
}

/// Where the passphrase of an encrypted key comes from.
#[derive(Clone, Debug)]
pub enum Passphrase {
    /// [`PASSPHRASE_ENV`], else a terminal prompt when stdin is a terminal, else an error.
    EnvOrPrompt,
    /// This passphrase.
    Given(Zeroizing<Vec<u8>>),
    /// None: an encrypted key is an error.
    Unavailable,
}

impl Passphrase {
    fn obtain(&self, source: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        match self {
            Self::Given(bytes) => Ok(bytes.clone()),
            Self::Unavailable => Err(KeyError::NoPassphrase {
                source_name: source.to_string(),
                env: PASSPHRASE_ENV,
            }),
            Self::EnvOrPrompt => {
                if let Some(value) = std::env::var_os(PASSPHRASE_ENV) {
                    return Ok(Zeroizing::new(value.into_encoded_bytes()));
                }
                if !std::io::stdin().is_terminal() {
                    return Err(KeyError::NoPassphrase {
                        source_name: source.to_string(),
                        env: PASSPHRASE_ENV,
                    });
                }
                let typed = rpassword::prompt_password(format!("Passphrase for {source}: "))
                    .map_err(KeyError::Prompt)?;
                Ok(Zeroizing::new(typed.into_bytes()))
            }
        }
    }
}

/// A private key able to sign.
pub enum PrivateKey {
    /// An Ed25519 signing key.
    Ed25519(ed25519_dalek::SigningKey),
    /// An ECDSA signing key on NIST P-256.
    EcdsaP256(p256::ecdsa::SigningKey),
    /// An ECDSA signing key on NIST P-384.
    EcdsaP384(p384::ecdsa::SigningKey),
    /// An RSA private key (boxed: it is much larger than the others).
    Rsa(Box<rsa::RsaPrivateKey>),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(
            f,
            "PrivateKey({}, {})",
            self.public_key().algorithm(),
            self.public_key().key_id()
        )
    }
}

impl PrivateKey {
    /// Makes a new key from the operating system's random number generator.
    pub fn generate(key_type: KeyType) -> Self {
        let mut rng = rand_core::OsRng;
        match key_type {
            KeyType::Ed25519 => Self::Ed25519(ed25519_dalek::SigningKey::generate(&mut rng)),
            KeyType::P256 => Self::EcdsaP256(p256::ecdsa::SigningKey::random(&mut rng)),
        }
    }

    /// Reads a private key file; an encrypted one uses `passphrase`.
    pub fn from_file(path: &std::path::Path, passphrase: &Passphrase) -> Result<Self, KeyError> {
        let bytes = Zeroizing::new(crate::file::read_trust_file(
            path,
            crate::file::MAX_TRUST_FILE_BYTES,
        )?);
        Self::from_pem(&bytes, &path.display().to_string(), passphrase)
    }

    /// Parses a PEM private key (see the module table); `source` names it in errors.
    pub fn from_pem(bytes: &[u8], source: &str, passphrase: &Passphrase) -> Result<Self, KeyError> {
        let text = as_pem(bytes).ok_or_else(|| KeyError::Invalid {
            source_name: source.to_string(),
            reason: "not a PEM private key (no -----BEGIN line)".to_string(),
        })?;
        let (label, der) = pem_decode(text, source)?;
        let der = Zeroizing::new(der);
        match label.as_str() {
            "PRIVATE KEY" => Self::from_pkcs8_der(&der, source),
            "EC PRIVATE KEY" => Self::from_sec1_der(&der, source),
            "RSA PRIVATE KEY" => {
                let key = rsa::RsaPrivateKey::from_pkcs1_der(&der).map_err(|e| KeyError::Invalid {
                    source_name: source.to_string(),
                    reason: format!("bad PKCS#1 RSA private key: {e}"),
                })?;
                Self::from_rsa(key, source)
            }
            "ENCRYPTED PRIVATE KEY" => {
                let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&der).map_err(|e| {
                    KeyError::Invalid {
                        source_name: source.to_string(),
                        reason: format!("bad encrypted PKCS#8: {e}"),
                    }
                })?;
                let secret = passphrase.obtain(source)?;
                let document = info.decrypt(secret.as_slice()).map_err(|_| KeyError::Decrypt {
                    source_name: source.to_string(),
                })?;
                Self::from_pkcs8_der(document.as_bytes(), source)
            }
            crate::sigstore::PEM_LABEL => {
                let secret = passphrase.obtain(source)?;
                let pkcs8_der = crate::sigstore::decrypt(&der, &secret, source)?;
                Self::from_pkcs8_der(&pkcs8_der, source)
            }
            other => Err(KeyError::UnexpectedPem {
                source_name: source.to_string(),
                found: other.to_string(),
                expected: "PRIVATE KEY, ENCRYPTED PRIVATE KEY, EC PRIVATE KEY, RSA PRIVATE KEY or ENCRYPTED SIGSTORE PRIVATE KEY",
            }),
        }
    }

    /// Parses an unencrypted PKCS#8 DER private key.
    pub fn from_pkcs8_der(der_bytes: &[u8], source: &str) -> Result<Self, KeyError> {
        let info = pkcs8::PrivateKeyInfo::from_der(der_bytes).map_err(|e| KeyError::Invalid {
            source_name: source.to_string(),
            reason: format!("not a PKCS#8 private key: {e}"),
        })?;
        let invalid = |what: &str, e: &dyn std::fmt::Display| KeyError::Invalid {
            source_name: source.to_string(),
            reason: format!("bad {what} private key: {e}"),
        };
        match key_kind(&info.algorithm, source, "private key algorithm")? {
            KeyKind::Ed25519 => ed25519_dalek::SigningKey::from_pkcs8_der(der_bytes)
                .map(Self::Ed25519)
                .map_err(|e| invalid("Ed25519", &e)),
            KeyKind::P256 => p256::ecdsa::SigningKey::from_pkcs8_der(der_bytes)
                .map(Self::EcdsaP256)
                .map_err(|e| invalid("ECDSA P-256", &e)),
            KeyKind::P384 => p384::ecdsa::SigningKey::from_pkcs8_der(der_bytes)
                .map(Self::EcdsaP384)
                .map_err(|e| invalid("ECDSA P-384", &e)),
            KeyKind::Rsa => {
                let key = rsa::RsaPrivateKey::from_pkcs8_der(der_bytes)
                    .map_err(|e| invalid("RSA", &e))?;
                Self::from_rsa(key, source)
            }
        }
    }

    fn from_sec1_der(der_bytes: &[u8], source: &str) -> Result<Self, KeyError> {
        if let Ok(key) = p256::SecretKey::from_sec1_der(der_bytes) {
            return Ok(Self::EcdsaP256(key.into()));
        }
        p384::SecretKey::from_sec1_der(der_bytes)
            .map(|key| Self::EcdsaP384(key.into()))
            .map_err(|e| KeyError::Invalid {
                source_name: source.to_string(),
                reason: format!("not a SEC1 P-256 or P-384 private key: {e}"),
            })
    }

    fn from_rsa(key: rsa::RsaPrivateKey, source: &str) -> Result<Self, KeyError> {
        // The same size bounds as public keys: refuse to make signatures nobody will accept.
        PublicKey::from_rsa(key.to_public_key(), source)?;
        Ok(Self::Rsa(Box::new(key)))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::Ed25519(key) => PublicKey::Ed25519(key.verifying_key()),
            Self::EcdsaP256(key) => PublicKey::EcdsaP256(*key.verifying_key()),
            Self::EcdsaP384(key) => PublicKey::EcdsaP384(*key.verifying_key()),
            Self::Rsa(key) => {
                let public = key.to_public_key();
                let bits = rsa::traits::PublicKeyParts::n(&public).bits();
                PublicKey::Rsa { bits, key: public }
            }
        }
    }

    /// Signs exactly `message` (see the module doc for the schemes and encodings).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
            Self::EcdsaP256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
            Self::EcdsaP384(key) => {
                use p384::ecdsa::signature::hazmat::PrehashSigner as _;
                use sha2::Digest as _;
                // Over SHA-256, not the curve's SHA-384 (see the module doc). A 32-byte prehash
                // is valid for P-384 (shorter than the field), so this cannot fail.
                let digest = Sha256::digest(message);
                let signature: p384::ecdsa::Signature = match key.sign_prehash(&digest) {
                    Ok(signature) => signature,
                    Err(_) => unreachable!("a SHA-256 prehash is accepted for P-384"),
                };
                signature.to_der().as_bytes().to_vec()
            }
            Self::Rsa(key) => {
                let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new((**key).clone());
                let signature = signer.sign(message);
                rsa::signature::SignatureEncoding::to_vec(&signature)
            }
        }
    }

    /// Unencrypted PKCS#8 PEM (`PRIVATE KEY`), the format `openssl genpkey` writes.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let document = match self {
            // PKCS#8 v1 without the optional public key, as `openssl genpkey` writes: OpenSSL
            // 3.0 cannot read the v2 form ed25519-dalek writes by default.
            Self::Ed25519(key) => ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: key.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_der(),
            Self::EcdsaP256(key) => key.to_pkcs8_der(),
            Self::EcdsaP384(key) => key.to_pkcs8_der(),
            Self::Rsa(key) => key.to_pkcs8_der(),
        }
        .map_err(|e| KeyError::Generate(format!("cannot encode the private key as PKCS#8: {e}")))?;
        document
            .to_pem("PRIVATE KEY", der::pem::LineEnding::LF)
            .map_err(|e| KeyError::Generate(format!("cannot encode the private key as PEM: {e}")))
    }
}

#[cfg(test)]
mod key_type_tests {
    use super::KeyType;

    #[test]
    fn every_key_type_name_means_its_type_and_nothing_else_does() {
        let types: Vec<_> = KeyType::NAMES
            .iter()
            .map(|n| KeyType::from_name(n))
            .collect();
        assert_eq!(types, [Some(KeyType::Ed25519), Some(KeyType::P256)]);
        assert_eq!(KeyType::from_name("rsa"), None);
        assert_eq!(KeyType::from_name("Ed25519"), None);
    }
}
