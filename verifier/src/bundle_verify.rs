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

/// Why a bundle does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The bundle cannot be parsed.
    #[error(transparent)]
    Parse(#[from] crate::bundle::BundleParseError),
    /// The trusted root file is malformed; the text says how.
    #[error("trusted root: {0}")]
    TrustedRoot(String),
    /// The bundle's kind of signer is not what verification asked for (a key-signed bundle
    /// checked for a certificate identity, or the reverse); the text says which.
    #[error("{0}")]
    SignerKind(String),
    /// The bundle's certificate does not parse, chain to a trusted CA at the signing time,
    /// or carry a valid SCT; the text says which.
    #[error("the signing certificate: {0}")]
    Certificate(String),
    /// The certificate names another identity (SAN) or OIDC issuer than required.
    #[error("the signing certificate is for {found}, not {wanted}")]
    IdentityMismatch {
        /// What the certificate says.
        found: String,
        /// What was required.
        wanted: String,
    },
    /// An RFC 3161 timestamp of the bundle does not verify; the text says why.
    #[error("timestamp {index}: {reason}")]
    Timestamp {
        /// Index of the timestamp in the bundle.
        index: usize,
        /// What fails.
        reason: String,
    },
    /// No verified time (a SET's integrated time, a TSA timestamp) says when the bundle was signed.
    #[error(
        "no verified time of signing: neither a tlog entry with a SET nor a trusted timestamp"
    )]
    NoVerifiedTime,
    /// A verified time of signing is outside the signing certificate's validity.
    #[error("the {which} time {time} is outside the signing certificate's validity")]
    OutsideCertificateValidity {
        /// Which time (`integrated`, `timestamp`).
        which: &'static str,
        /// The time.
        time: cfsgate_policy::Timestamp,
    },
    /// The bundle is certificate-signed (keyless); only key-signed bundles are verified.
    #[error(
        "the bundle is signed with a certificate; this verification needs a key-signed bundle"
    )]
    CertificateNotSupported,
    /// The bundle's `messageDigest` differs from the artifact's sha256.
    #[error("the bundle's messageDigest is not the artifact's sha256")]
    MessageDigestMismatch,
    /// The signature does not verify over the artifact with the key.
    #[error("the signature does not verify with the key over the artifact")]
    SignatureInvalid,
    /// Only a digest of the artifact is known, which only ECDSA can verify (prehashed); the key's
    /// algorithm is given.
    #[error("an artifact given by digest can only be checked against an ECDSA signature (the key is {0})")]
    DigestNeedsEcdsa(String),
    /// The DSSE envelope is malformed or its signature does not verify; the text says which.
    #[error("DSSE envelope: {0}")]
    Dsse(String),
    /// The in-toto statement's subjects do not include the artifact's sha256.
    #[error("the in-toto statement names no subject with the artifact's sha256")]
    SubjectMismatch,
    /// The bundle has no transparency log entry, so no proof the signature was logged.
    #[error("the bundle has no transparency log entry")]
    NoTlogEntry,
    /// A tlog entry comes from a log the trusted root does not list.
    #[error("tlog entry {index}: from log {log_id}, which is not trusted")]
    UntrustedLog {
        /// Index of the entry in the bundle.
        index: u64,
        /// Its `logId`, hex.
        log_id: String,
    },
    /// A tlog entry's kind or version does not fit the bundle's content.
    #[error("tlog entry {index}: kind {kind} {version} does not match the bundle's content")]
    WrongKind {
        /// Index of the entry in the bundle.
        index: u64,
        /// The entry's kind.
        kind: String,
        /// The entry's kind version.
        version: String,
    },
    /// The logged body describes another signature, key or artifact.
    #[error("tlog entry {index}: the logged body does not match the bundle: {reason}")]
    BodyMismatch {
        /// Index of the entry in the bundle.
        index: u64,
        /// What differs.
        reason: String,
    },
    /// The signed entry timestamp does not verify with the log's key.
    #[error(
        "tlog entry {index}: the signed entry timestamp (SET) does not verify with the log key"
    )]
    SetInvalid {
        /// Index of the entry in the bundle.
        index: u64,
    },
    /// The entry claims to be logged later than now.
    #[error("tlog entry {index}: integrated time {time} is after now ({now})")]
    IntegratedTimeInFuture {
        /// Index of the entry in the bundle.
        index: u64,
        /// The integrated time (unix seconds).
        time: i64,
        /// The current time (unix seconds).
        now: i64,
    },
    /// The entry was logged outside the log key's validity window.
    #[error("tlog entry {index}: integrated time {time} is outside the log key's validity")]
    OutsideLogValidity {
        /// Index of the entry in the bundle.
        index: u64,
        /// The integrated time (unix seconds).
        time: i64,
    },
    /// The inclusion proof does not lead to the stated root.
    #[error("tlog entry {index}: the inclusion proof is invalid: {reason}")]
    InclusionProofInvalid {
        /// Index of the entry in the bundle.
        index: u64,
        /// What fails.
        reason: String,
    },
    /// The checkpoint (signed tree head) is malformed, does not verify or does not match the proof.
    #[error("tlog entry {index}: the checkpoint is invalid: {reason}")]
    CheckpointInvalid {
        /// Index of the entry in the bundle.
        index: u64,
        /// What fails.
        reason: String,
    },
    /// A tlog entry has neither a SET nor an inclusion proof.
    #[error("tlog entry {index}: neither a SET nor an inclusion proof")]
    Unproven {
        /// Index of the entry in the bundle.
        index: u64,
    },
}

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

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// RFC 9162 §2.1.3.2: the root an inclusion proof leads to from `leaf`.
pub fn root_from_inclusion_proof(
    leaf_index: u64,
    tree_size: u64,
    leaf: [u8; 32],
    proof: &[[u8; 32]],
) -> Result<[u8; 32], String> {
    if leaf_index >= tree_size {
        return Err(format!(
            "leaf index {leaf_index} is not below tree size {tree_size}"
        ));
    }
    let (mut f_n, mut s_n, mut r) = (leaf_index, tree_size - 1, leaf);
    for p in proof {
        if s_n == 0 {
            return Err("more proof hashes than the tree has levels".into());
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err("fewer proof hashes than the tree has levels".into());
    }
    Ok(r)
}
