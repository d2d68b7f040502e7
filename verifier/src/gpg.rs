//! OpenPGP ("GPG") signatures for `signedBy` requirements: the keyring a requirement trusts,
//! and the verification of one simple-signing signature blob, as containers/image's gpgme
//! mechanism (what podman, CRI-O and skopeo use) judges it.
//!
//! A simple-signing signature is an OpenPGP *signed message* (not a detached signature):
//! optionally compressed, one signature over a literal data packet holding the JSON payload
//! ([`crate::atomic`]). [`GpgKeyring::verify`] accepts it only when:
//!
//! | check | refused as |
//! |---|---|
//! | the blob is an OpenPGP message, signed, not encrypted, with exactly one signature (gpgme's count) | [`GpgError::Invalid`] |
//! | the signature's issuer is a primary key or subkey of a keyring certificate | [`GpgError::Invalid`] (missing key) |
//! | the signature verifies over the literal data, with algorithms Sequoia's standard policy accepts | [`GpgError::Invalid`] |
//! | at the signature's creation time: the certificate and the signing (sub)key are bound, alive, not revoked, signing-capable | [`GpgError::Invalid`] |
//! | at the evaluation time: the signature has not expired, and the certificate and signing key are still alive and not revoked (gpgme's `EXPKEYSIG`/`REVKEYSIG`/`EXPSIG`) | [`GpgError::Invalid`], [`GpgError::KeyNotValidNow`] |
//! | the signed content is at most [`MAX_SIGNED_CONTENT_BYTES`] (a compressed message cannot expand without bound) | [`GpgError::TooLarge`] |
//!
//! The identity returned is the **primary** key's fingerprint (uppercase hex, as gpgme
//! prints it) also when a subkey signed: containers/image maps a subkey to its primary before
//! comparing with the trusted identities.
//!
//! Keyrings ([`GpgKeyring::from_blobs`]): each blob is binary or ASCII-armoured OpenPGP
//! certificates, several per blob (armoured blocks may follow each other, as `gpg --export -a`
//! of several keys writes); a certificate that does not parse is skipped, as gpgme and
//! containers/image's Sequoia mechanism skip it, and a keyring with no certificate at all
//! trusts nothing ("No public keys imported").
//!
//! Implementation: `sequoia-openpgp` with its pure-Rust crypto backend, chosen by measurement
//! against rpgp's `pgp` (benches/GPG-RESULTS.md): Sequoia matched gpg 2.2.40 on all 31
//! fixture cases (v3 signatures, subkeys in a multi-key keyring, revoked subkeys), rpgp on 28,
//! and rpgp leaves certificate validity (self-signatures, expiry, revocation, key flags) to
//! the caller. Only public-key verification runs here, so the backend's variable-time
//! secret-key operations are never used.

use std::io::Read as _;
use std::time::{Duration, SystemTime};

use openpgp::cert::prelude::*;
use openpgp::parse::stream::{MessageLayer, MessageStructure, VerificationHelper, VerifierBuilder};
use openpgp::parse::Parse as _;
use openpgp::policy::StandardPolicy;
use openpgp::types::RevocationStatus;
use sequoia_openpgp as openpgp;

/// Largest signed content accepted: containers/image's `iolimits.MaxSignatureBodySize`
/// (4 MiB) bounds the signature file; the same bound on what it decompresses to keeps a
/// compressed message from expanding without limit (a real payload is a few hundred bytes).
pub const MAX_SIGNED_CONTENT_BYTES: usize = 4 << 20;

/// Why a keyring or a signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpgError {
    /// No certificate could be read from the keyring blobs.
    #[error("No public keys imported ({0})")]
    NoKeys(String),
    /// The blob is not a valid signature by a key of the keyring.
    #[error("invalid GPG signature: {0}")]
    Invalid(String),
    /// Verified, but the certificate or signing key is expired or revoked now.
    #[error(
        "GPG signature by key {fingerprint} (of {primary}): the key is not valid now: {reason}"
    )]
    KeyNotValidNow {
        /// The signing key's fingerprint.
        fingerprint: String,
        /// Its primary key's fingerprint.
        primary: String,
        /// Expired or revoked, and how.
        reason: String,
    },
    /// The signed content is larger than [`MAX_SIGNED_CONTENT_BYTES`].
    #[error("GPG signed content is larger than {MAX_SIGNED_CONTENT_BYTES} bytes")]
    TooLarge,
}

/// What a verified signature establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpgVerified {
    /// The signed content (the literal data): still untrusted JSON until parsed strictly.
    pub content: Vec<u8>,
    /// Fingerprint of the primary key of the signing certificate (uppercase hex).
    pub primary: String,
    /// Fingerprint of the (sub)key that made the signature (uppercase hex).
    pub signing_key: String,
    /// The signature's creation time (unix seconds).
    pub created: i64,
}

/// The OpenPGP certificates one `signedBy` requirement trusts.
#[derive(Debug, Clone)]
pub struct GpgKeyring {
    certs: Vec<Cert>,
    skipped: Vec<String>,
}

impl GpgKeyring {
    /// Reads every certificate of every blob (`label` names the blob in messages).
    pub fn from_blobs(blobs: &[(String, Vec<u8>)]) -> Result<Self, GpgError> {
        let mut certs = Vec::new();
        let mut skipped = Vec::new();
        for (label, blob) in blobs {
            if blob.is_empty() {
                skipped.push(format!("{label}: empty"));
                continue;
            }
            match CertParser::from_bytes(blob) {
                Ok(parser) => {
                    for cert in parser {
                        match cert {
                            Ok(cert) => certs.push(cert),
                            Err(e) => skipped.push(format!("{label}: {e}")),
                        }
                    }
                }
                Err(e) => skipped.push(format!("{label}: {e}")),
            }
        }
        if certs.is_empty() {
            let reason = if skipped.is_empty() {
                "no key given".to_string()
            } else {
                skipped.join("; ")
            };
            return Err(GpgError::NoKeys(reason));
        }
        Ok(Self { certs, skipped })
    }

    /// The primary key fingerprints, in keyring order (uppercase hex).
    pub fn fingerprints(&self) -> Vec<String> {
        self.certs
            .iter()
            .map(|c| c.fingerprint().to_hex())
            .collect()
    }

    /// Certificates that could not be read (skipped), with the reason.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Verifies one signature blob at unix time `now` (see the module table).
    pub fn verify(&self, signature: &[u8], now: i64) -> Result<GpgVerified, GpgError> {
        if signature.is_empty() {
            return Err(GpgError::Invalid("empty signature".into()));
        }
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(now).unwrap_or(0));
        let policy = StandardPolicy::new();
        let helper = Helper {
            certs: &self.certs,
            good: None,
        };
        let mut verifier = VerifierBuilder::from_bytes(signature)
            .map_err(|e| GpgError::Invalid(e.to_string()))?
            .buffer_size(MAX_SIGNED_CONTENT_BYTES)
            .with_policy(&policy, time, helper)
            .map_err(|e| GpgError::Invalid(e.to_string()))?;
        let mut content = Vec::new();
        (&mut verifier)
            .take(MAX_SIGNED_CONTENT_BYTES as u64 + 1)
            .read_to_end(&mut content)
            .map_err(|e| GpgError::Invalid(e.to_string()))?;
        if content.len() > MAX_SIGNED_CONTENT_BYTES {
            return Err(GpgError::TooLarge);
        }
        if !verifier.message_processed() {
            return Err(GpgError::Invalid(
                "the message was not processed to its end".into(),
            ));
        }
        let (primary, signing_key, created) = verifier
            .helper_ref()
            .good
            .clone()
            .ok_or_else(|| GpgError::Invalid("no valid signature".into()))?;
        self.still_valid(&primary, &signing_key, &policy, time)?;
        Ok(GpgVerified {
            content,
            primary,
            signing_key,
            created,
        })
    }

    /// gpgme's view at `time`: the certificate and the signing key are alive and not revoked
    /// now, not only when the signature was made.
    fn still_valid(
        &self,
        primary: &str,
        signing_key: &str,
        policy: &StandardPolicy,
        time: SystemTime,
    ) -> Result<(), GpgError> {
        let not_valid = |reason: String| GpgError::KeyNotValidNow {
            fingerprint: signing_key.to_string(),
            primary: primary.to_string(),
            reason,
        };
        let cert = self
            .certs
            .iter()
            .find(|c| c.fingerprint().to_hex() == primary)
            .ok_or_else(|| not_valid("certificate not in the keyring".into()))?;
        let valid = cert
            .with_policy(policy, time)
            .map_err(|e| not_valid(format!("certificate: {e}")))?;
        valid
            .alive()
            .map_err(|e| not_valid(format!("certificate: {e}")))?;
        if let RevocationStatus::Revoked(_) = valid.revocation_status() {
            return Err(not_valid("certificate revoked".into()));
        }
        let key = valid
            .keys()
            .find(|k| k.key().fingerprint().to_hex() == signing_key)
            .ok_or_else(|| not_valid("signing key no longer bound to the certificate".into()))?;
        key.alive().map_err(|e| not_valid(format!("key: {e}")))?;
        if let RevocationStatus::Revoked(_) = key.revocation_status() {
            return Err(not_valid("key revoked".into()));
        }
        Ok(())
    }
}

/// Hands the keyring to Sequoia and keeps the one good signature.
struct Helper<'k> {
    certs: &'k [Cert],
    /// (primary fingerprint, signing key fingerprint, creation time)
    good: Option<(String, String, i64)>,
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, _ids: &[openpgp::KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self.certs.to_vec())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        let mut signatures = 0usize;
        let mut failures = Vec::new();
        let mut good = None;
        for layer in structure {
            match layer {
                MessageLayer::Compression { .. } => {}
                MessageLayer::Encryption { .. } => {
                    return Err(refused("encrypted message, not a signature".into()).into());
                }
                MessageLayer::SignatureGroup { results } => {
                    for result in results {
                        signatures += 1;
                        match result {
                            Ok(checksum) => {
                                let created = checksum
                                    .sig
                                    .signature_creation_time()
                                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                                good = Some((
                                    checksum.ka.cert().fingerprint().to_hex(),
                                    checksum.ka.key().fingerprint().to_hex(),
                                    created,
                                ));
                            }
                            Err(e) => failures.push(e.to_string()),
                        }
                    }
                }
            }
        }
        // gpgme refuses a message with several signatures ("Unexpected GPG signature count").
        if signatures != 1 {
            return Err(refused(format!("unexpected GPG signature count {signatures}")).into());
        }
        match good {
            Some(good) => {
                self.good = Some(good);
                Ok(())
            }
            None => Err(refused(failures.join("; ")).into()),
        }
    }
}

/// A refusal inside Sequoia's callback (its `Result` carries any error).
fn refused(reason: String) -> openpgp::Error {
    openpgp::Error::InvalidOperation(reason)
}
