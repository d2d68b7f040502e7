//! Offline verification of a parsed sigstore [`Bundle`] signed by a known key (`--key`, a
//! policy's keys, a cosign v3 signature bundle fetched from a registry), against the
//! transparency logs of a sigstore `trusted_root.json` ([`TrustedRoot`]) or given log keys.
//!
//! Checks, in this order; each failure is its own [`BundleError`]:
//!
//! | # | check |
//! |---|---|
//! | 1 | the bundle names a key, not a certificate ([`BundleError::CertificateNotSupported`] otherwise) |
//! | 2 | message signature: the bundle's `messageDigest`, when given, is the artifact's sha256; the key verifies the signature over the artifact (bytes; or, for an artifact given by digest, an ECDSA signature over that sha256) |
//! | 2 | DSSE: one signature, verified by the key over PAE(payloadType, payload); the payload is an in-toto statement (`application/vnd.in-toto+json`) one of whose subjects has the artifact's sha256 |
//! | 3 | at least one tlog entry; each one checked by [`crate::bundle_tlog`]: from a trusted log, of a kind matching the content, logging exactly this signature, key and artifact (or payload); its SET, inclusion proof and checkpoint |
//!
//! Keyless (certificate) bundles, RFC 3161 timestamps and the whole of a `trusted_root.json`
//! are verified by [`crate::bundle_keyless`]. Nothing here reads the clock but the caller:
//! `now` is given (the SET must not be after it).

use cfsgate_keyring::{KeyId, PublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::bundle::{Bundle, BundleContent, SigningMaterial};
pub use crate::bundle_error::BundleError;
pub use crate::bundle_merkle::root_from_inclusion_proof;
use crate::bundle_tlog::{check_entry, Signer};
use crate::sigalg::verify_sigstore;

/// The DSSE payload type of in-toto statements.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Statement types accepted in a DSSE payload.
const IN_TOTO_STATEMENT_TYPES: [&str; 2] = [
    "https://in-toto.io/Statement/v1",
    "https://in-toto.io/Statement/v0.1",
];

/// What the bundle must be about.
#[derive(Debug, Clone, Copy)]
pub enum Artifact<'a> {
    /// The artifact's bytes.
    Bytes(&'a [u8]),
    /// Only its sha256 (`sha256:HEX` on the command line, a manifest digest).
    Sha256([u8; 32]),
}

impl Artifact<'_> {
    /// The artifact's sha256.
    pub fn sha256(&self) -> [u8; 32] {
        match self {
            Artifact::Bytes(bytes) => Sha256::digest(bytes).into(),
            Artifact::Sha256(digest) => *digest,
        }
    }
}

pub use crate::trusted_root::{TrustedLog, TrustedRoot};

/// A verified bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedBundle {
    /// The key that signed.
    pub signer: KeyId,
    /// The earliest SET-vouched integrated time (unix seconds), when any entry had a SET.
    pub integrated_time: Option<i64>,
    /// The verified entries' log indexes.
    pub log_indexes: Vec<u64>,
    /// For DSSE: the payload (an in-toto statement).
    #[serde(skip)]
    pub dsse_payload: Option<Vec<u8>>,
}

/// Verifies `bundle` over `artifact` with `key` (see the module table).
pub fn verify_bundle_with_key(
    bundle: &Bundle,
    artifact: Artifact,
    key: &PublicKey,
    logs: &[TrustedLog],
    now: i64,
) -> Result<VerifiedBundle, BundleError> {
    let signature = check_signature(bundle, artifact, key)?;
    let digest = artifact.sha256();
    if bundle.tlog_entries.is_empty() {
        return Err(BundleError::NoTlogEntry);
    }
    let mut integrated_time: Option<i64> = None;
    let mut log_indexes = Vec::new();
    for entry in &bundle.tlog_entries {
        let outcome = check_entry(
            entry,
            bundle,
            &digest,
            &signature,
            Signer::Key(key),
            logs,
            now,
        )?;
        if let Some(time) = outcome.set_time {
            integrated_time = Some(integrated_time.map_or(time, |t| t.min(time)));
        }
        log_indexes.push(entry.log_index);
    }
    Ok(VerifiedBundle {
        signer: key.key_id(),
        integrated_time,
        log_indexes,
        dsse_payload: dsse_payload(bundle),
    })
}

/// The DSSE payload of a bundle, if it has one.
pub(crate) fn dsse_payload(bundle: &Bundle) -> Option<Vec<u8>> {
    match &bundle.content {
        BundleContent::Dsse(envelope) => Some(envelope.payload.clone()),
        BundleContent::MessageSignature { .. } => None,
    }
}

/// The key's signature in `bundle` over `artifact` (message signature, or DSSE with an in-toto
/// subject naming the artifact's sha256); the signature's bytes.
pub(crate) fn check_signature(
    bundle: &Bundle,
    artifact: Artifact,
    key: &PublicKey,
) -> Result<Vec<u8>, BundleError> {
    if !matches!(bundle.signer, SigningMaterial::PublicKey { .. }) {
        return Err(BundleError::CertificateNotSupported);
    }
    check_content(bundle, artifact, key)
}

/// The signature in `bundle` over `artifact` by `key`, whatever the bundle names as signer:
/// message signature (ECDSA over the artifact's sha256, as sigstore signs; other keys over the
/// bytes), or DSSE with an in-toto subject naming the artifact's sha256. The signature's bytes.
pub(crate) fn check_content(
    bundle: &Bundle,
    artifact: Artifact,
    key: &PublicKey,
) -> Result<Vec<u8>, BundleError> {
    let digest = artifact.sha256();
    let signature = match &bundle.content {
        BundleContent::MessageSignature {
            digest: claimed,
            signature,
        } => {
            if claimed.is_some_and(|c| c != digest) {
                return Err(BundleError::MessageDigestMismatch);
            }
            let message = match artifact {
                Artifact::Bytes(bytes) => Some(bytes),
                Artifact::Sha256(_) => None,
            };
            let verified = verify_sigstore(key, message, &digest, signature)
                .ok_or_else(|| BundleError::DigestNeedsEcdsa(key.algorithm().to_string()))?;
            if !verified {
                return Err(BundleError::SignatureInvalid);
            }
            signature.clone()
        }
        BundleContent::Dsse(envelope) => {
            let [signature] = envelope.signatures.as_slice() else {
                return Err(BundleError::Dsse(format!(
                    "{} signatures, exactly one is expected",
                    envelope.signatures.len()
                )));
            };
            let pae = envelope.pae();
            let pae_digest: [u8; 32] = Sha256::digest(&pae).into();
            if verify_sigstore(key, Some(&pae), &pae_digest, signature) != Some(true) {
                return Err(BundleError::SignatureInvalid);
            }
            if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
                return Err(BundleError::Dsse(format!(
                    "payloadType {:?}, not {IN_TOTO_PAYLOAD_TYPE}",
                    envelope.payload_type
                )));
            }
            check_subject(&envelope.payload, &digest)?;
            signature.clone()
        }
    };
    Ok(signature)
}

/// [`verify_bundle_with_key`] with each of `keys` (a policy's trusted keys, any one may
/// sign): the first that verifies, else the error of the first key (every key failing the
/// same way is the usual case: the bundle is not theirs).
pub fn verify_bundle_with_keys(
    bundle: &Bundle,
    artifact: Artifact,
    keys: &[PublicKey],
    logs: &[TrustedLog],
    now: i64,
) -> Result<VerifiedBundle, BundleError> {
    let mut first_error = None;
    for key in keys {
        match verify_bundle_with_key(bundle, artifact, key, logs, now) {
            Ok(verified) => return Ok(verified),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(BundleError::SignatureInvalid))
}

#[derive(Deserialize)]
struct StatementJson {
    #[serde(rename = "_type")]
    statement_type: String,
    subject: Vec<SubjectJson>,
}

#[derive(Deserialize)]
struct SubjectJson {
    digest: std::collections::BTreeMap<String, String>,
}

pub(crate) fn check_subject(payload: &[u8], digest: &[u8; 32]) -> Result<(), BundleError> {
    let statement: StatementJson = serde_json::from_slice(payload)
        .map_err(|e| BundleError::Dsse(format!("payload is not an in-toto statement: {e}")))?;
    if !IN_TOTO_STATEMENT_TYPES.contains(&statement.statement_type.as_str()) {
        return Err(BundleError::Dsse(format!(
            "statement _type {:?}",
            statement.statement_type
        )));
    }
    let hex = hex::encode(digest);
    if statement
        .subject
        .iter()
        .any(|s| s.digest.get("sha256") == Some(&hex))
    {
        Ok(())
    } else {
        Err(BundleError::SubjectMismatch)
    }
}
