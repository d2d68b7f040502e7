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
//! | 3 | at least one tlog entry; each one: from a trusted log (`logId`), of the kind matching the content (`hashedrekord`/`dsse` `0.0.1`), whose body logs exactly this signature, key and artifact (or payload) |
//! | 4 | its SET, when present, is the log key's signature over the canonical `{body, integratedTime, logID, logIndex}`; its `integratedTime` is not in the future and inside the log's validity |
//! | 5 | its inclusion proof, when present, leads from the leaf hash of the body (RFC 6962) to the proof's root; the checkpoint is signed by the log key (key hint and signature) and names that root and tree size |
//! | 6 | an entry with neither a SET nor a proof is refused |
//!
//! Nothing here reads the clock but the caller: `now` is given (the SET must not be after it).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use cfsgate_keyring::{KeyId, PublicKey};
use cfsgate_policy::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::bundle::{Bundle, BundleContent, InclusionProof, SigningMaterial, TlogEntry};
use crate::rekor::{push_canonical_string, RekorKey};

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

/// A transparency log trusted to vouch for entries.
#[derive(Debug, Clone)]
pub struct TrustedLog {
    /// sha256 of the log key's SPKI: the `logId` its entries carry.
    pub id: [u8; 32],
    /// The log's public key.
    pub key: PublicKey,
    /// When the key may have been used (unix seconds, inclusive).
    pub valid_from: Option<i64>,
    /// End of that validity (unix seconds, inclusive); open when `None`.
    pub valid_until: Option<i64>,
    /// A name for messages (the log's base URL, or where the key came from).
    pub label: String,
}

impl TrustedLog {
    /// A log known by its key alone (a policy's `rekorPublicKey*`).
    pub fn from_key(key: PublicKey, label: String) -> Self {
        Self {
            id: key.key_id().0,
            key,
            valid_from: None,
            valid_until: None,
            label,
        }
    }
}

/// The parts of a sigstore `trusted_root.json` used offline with keys: its transparency logs.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    /// `tlogs`: the transparency logs trusted to have recorded signatures.
    pub logs: Vec<TrustedLog>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrustedRootJson {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<TlogJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogJson {
    #[serde(default)]
    base_url: String,
    public_key: PublicKeyJson,
    log_id: LogIdJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyJson {
    raw_bytes: String,
    valid_for: Option<ValidForJson>,
}

#[derive(Deserialize)]
struct ValidForJson {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogIdJson {
    key_id: String,
}

impl TrustedRoot {
    /// Parses `trusted_root.json` (`application/vnd.dev.sigstore.trustedroot…`). A log whose
    /// key is unusable, whose `logId` is not its key's id, or whose validity has no start is an
    /// error: the root is the trust anchor, nothing of it is skipped silently.
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        let bad = |reason: String| BundleError::TrustedRoot(reason);
        let json: TrustedRootJson =
            serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if !json
            .media_type
            .starts_with("application/vnd.dev.sigstore.trustedroot")
        {
            return Err(bad(format!("mediaType {:?}", json.media_type)));
        }
        let mut logs = Vec::new();
        for (i, tlog) in json.tlogs.iter().enumerate() {
            let label = format!("tlog {i} ({})", tlog.base_url);
            let der = BASE64
                .decode(&tlog.public_key.raw_bytes)
                .map_err(|e| bad(format!("{label}: publicKey.rawBytes: {e}")))?;
            let key =
                PublicKey::from_spki_der(&der, &label).map_err(|e| bad(format!("{label}: {e}")))?;
            let id: [u8; 32] = BASE64
                .decode(&tlog.log_id.key_id)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad(format!("{label}: logId.keyId is not 32 base64 bytes")))?;
            let time = |t: &Option<String>| -> Result<Option<i64>, BundleError> {
                t.as_deref()
                    .map(|t| Timestamp::parse_rfc3339(t).map(|t| t.0))
                    .transpose()
                    .map_err(|e| bad(format!("{label}: validFor: {e}")))
            };
            let valid_for = tlog
                .public_key
                .valid_for
                .as_ref()
                .ok_or_else(|| bad(format!("{label}: no validFor")))?;
            let valid_from = time(&valid_for.start)?
                .ok_or_else(|| bad(format!("{label}: validFor has no start")))?;
            logs.push(TrustedLog {
                id,
                key,
                valid_from: Some(valid_from),
                valid_until: time(&valid_for.end)?,
                label,
            });
        }
        Ok(Self { logs })
    }
}

/// Why a bundle does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The bundle cannot be parsed.
    #[error(transparent)]
    Parse(#[from] crate::bundle::BundleParseError),
    /// The trusted root file is malformed; the text says how.
    #[error("trusted root: {0}")]
    TrustedRoot(String),
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
        let time = check_entry(entry, bundle, &digest, &signature, key, logs, now)?;
        if let Some(time) = time {
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
    let digest = artifact.sha256();
    let signature = match &bundle.content {
        BundleContent::MessageSignature {
            digest: claimed,
            signature,
        } => {
            if claimed.is_some_and(|c| c != digest) {
                return Err(BundleError::MessageDigestMismatch);
            }
            let verified = match artifact {
                Artifact::Bytes(bytes) => key.verify(bytes, signature).is_ok(),
                Artifact::Sha256(digest) => verify_prehashed(key, &digest, signature)?,
            };
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
            if key.verify(&envelope.pae(), signature).is_err() {
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

/// An ECDSA signature over a sha256 the caller computed (the artifact is known by digest).
fn verify_prehashed(
    key: &PublicKey,
    digest: &[u8; 32],
    signature: &[u8],
) -> Result<bool, BundleError> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    Ok(match key {
        PublicKey::EcdsaP256(k) => p256::ecdsa::Signature::from_der(signature)
            .is_ok_and(|s| k.verify_prehash(digest, &s).is_ok()),
        PublicKey::EcdsaP384(k) => p384::ecdsa::Signature::from_der(signature)
            .is_ok_and(|s| k.verify_prehash(digest, &s).is_ok()),
        other => return Err(BundleError::DigestNeedsEcdsa(other.algorithm().to_string())),
    })
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

fn check_subject(payload: &[u8], digest: &[u8; 32]) -> Result<(), BundleError> {
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

/// Checks one entry; returns its SET-vouched integrated time.
fn check_entry(
    entry: &TlogEntry,
    bundle: &Bundle,
    digest: &[u8; 32],
    signature: &[u8],
    key: &PublicKey,
    logs: &[TrustedLog],
    now: i64,
) -> Result<Option<i64>, BundleError> {
    let index = entry.log_index;
    let log = logs
        .iter()
        .find(|log| log.id == entry.log_id)
        .ok_or_else(|| BundleError::UntrustedLog {
            index,
            log_id: hex::encode(entry.log_id),
        })?;
    let body_mismatch = |reason: String| BundleError::BodyMismatch { index, reason };
    match (&bundle.content, entry.kind.as_str(), entry.version.as_str()) {
        (BundleContent::MessageSignature { .. }, "hashedrekord", "0.0.1") => {
            check_hashedrekord(&entry.body, digest, signature, key).map_err(body_mismatch)?
        }
        (BundleContent::Dsse(envelope), "dsse", "0.0.1") => {
            check_dsse_body(&entry.body, &envelope.payload, signature, key)
                .map_err(body_mismatch)?
        }
        _ => {
            return Err(BundleError::WrongKind {
                index,
                kind: entry.kind.clone(),
                version: entry.version.clone(),
            })
        }
    }
    let mut time = None;
    if let Some(set) = &entry.set {
        let rekor_key = RekorKey::new(log.key.clone(), log.label.clone())
            .map_err(|_| BundleError::SetInvalid { index })?;
        let mut canonical = String::from("{\"body\":");
        push_canonical_string(&mut canonical, &BASE64.encode(&entry.body));
        canonical.push_str(&format!(
            ",\"integratedTime\":{},\"logID\":",
            entry.integrated_time
        ));
        push_canonical_string(&mut canonical, &hex::encode(entry.log_id));
        canonical.push_str(&format!(",\"logIndex\":{}}}", entry.log_index));
        if !rekor_key.verifies(canonical.as_bytes(), set) {
            return Err(BundleError::SetInvalid { index });
        }
        let at = i64::try_from(entry.integrated_time).unwrap_or(i64::MAX);
        if at > now {
            return Err(BundleError::IntegratedTimeInFuture {
                index,
                time: at,
                now,
            });
        }
        if log.valid_from.is_some_and(|from| at < from)
            || log.valid_until.is_some_and(|until| at > until)
        {
            return Err(BundleError::OutsideLogValidity { index, time: at });
        }
        time = Some(at);
    }
    if let Some(proof) = &entry.inclusion_proof {
        check_inclusion(entry, proof, log)?;
    } else if entry.set.is_none() {
        return Err(BundleError::Unproven { index });
    }
    Ok(time)
}

fn decode_json(body: &[u8]) -> Result<serde_json::Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))
}

fn str_at<'a>(value: &'a serde_json::Value, path: &[&str]) -> Result<&'a str, String> {
    let mut at = value;
    for part in path {
        at = at
            .get(part)
            .ok_or_else(|| format!("no {}", path.join(".")))?;
    }
    at.as_str()
        .ok_or_else(|| format!("{} is not a string", path.join(".")))
}

/// The PEM (base64 in the body) names the same key.
fn same_key(pem_base64: &str, key: &PublicKey) -> Result<(), String> {
    let pem = BASE64
        .decode(pem_base64)
        .map_err(|e| format!("logged key is not base64: {e}"))?;
    let logged = PublicKey::from_bytes(&pem, "logged key").map_err(|e| e.to_string())?;
    if logged.key_id() != key.key_id() {
        return Err("another key is logged".into());
    }
    Ok(())
}

fn check_hashedrekord(
    body: &[u8],
    digest: &[u8; 32],
    signature: &[u8],
    key: &PublicKey,
) -> Result<(), String> {
    let body = decode_json(body)?;
    if str_at(&body, &["spec", "data", "hash", "algorithm"])? != "sha256" {
        return Err("the logged hash is not sha256".into());
    }
    if str_at(&body, &["spec", "data", "hash", "value"])? != hex::encode(digest) {
        return Err("another artifact is logged".into());
    }
    let logged = BASE64
        .decode(str_at(&body, &["spec", "signature", "content"])?)
        .map_err(|e| format!("logged signature is not base64: {e}"))?;
    if logged != signature {
        return Err("another signature is logged".into());
    }
    same_key(
        str_at(&body, &["spec", "signature", "publicKey", "content"])?,
        key,
    )
}

fn check_dsse_body(
    body: &[u8],
    payload: &[u8],
    signature: &[u8],
    key: &PublicKey,
) -> Result<(), String> {
    let body = decode_json(body)?;
    if str_at(&body, &["spec", "payloadHash", "algorithm"])? != "sha256"
        || str_at(&body, &["spec", "payloadHash", "value"])? != hex::encode(Sha256::digest(payload))
    {
        return Err("another payload is logged".into());
    }
    let signatures = body["spec"]["signatures"]
        .as_array()
        .ok_or("no spec.signatures")?;
    for logged in signatures {
        let (Some(sig), Some(verifier)) =
            (logged["signature"].as_str(), logged["verifier"].as_str())
        else {
            continue;
        };
        if BASE64.decode(sig).ok().as_deref() == Some(signature) && same_key(verifier, key).is_ok()
        {
            return Ok(());
        }
    }
    Err("the envelope's signature by this key is not logged".into())
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

fn check_inclusion(
    entry: &TlogEntry,
    proof: &InclusionProof,
    log: &TrustedLog,
) -> Result<(), BundleError> {
    let index = entry.log_index;
    let invalid = |reason: String| BundleError::InclusionProofInvalid { index, reason };
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(&entry.body);
    let leaf: [u8; 32] = hasher.finalize().into();
    let root = root_from_inclusion_proof(proof.log_index, proof.tree_size, leaf, &proof.hashes)
        .map_err(invalid)?;
    if root != proof.root_hash {
        return Err(invalid(
            "the proof does not lead from the entry to the root hash".into(),
        ));
    }
    check_checkpoint(&proof.checkpoint, proof, log)
        .map_err(|reason| BundleError::CheckpointInvalid { index, reason })
}

/// A signed note (`origin\nsize\nroot\n[extensions]\n\n— name sig\n…`): some signature line
/// is by the log key (matching key hint, verifying over the note's text), and the note names
/// the proof's tree size and root hash.
fn check_checkpoint(
    envelope: &str,
    proof: &InclusionProof,
    log: &TrustedLog,
) -> Result<(), String> {
    let (text, signatures) = envelope
        .split_once("\n\n")
        .ok_or("no blank line between the note and its signatures")?;
    let text = format!("{text}\n");
    let mut lines = text.lines();
    lines.next().filter(|l| !l.is_empty()).ok_or("no origin")?;
    let size: u64 = lines
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or("no tree size")?;
    let root = lines
        .next()
        .and_then(|l| BASE64.decode(l).ok())
        .ok_or("no root hash")?;
    let mut verified = false;
    for line in signatures.lines() {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            continue;
        };
        let Some((name, sig)) = rest.rsplit_once(' ') else {
            continue;
        };
        let Some(sig) = BASE64.decode(sig).ok().filter(|s| s.len() > 4) else {
            continue;
        };
        let hint = match &log.key {
            PublicKey::Ed25519(k) => {
                let mut hasher = Sha256::new();
                hasher.update(name.as_bytes());
                hasher.update([b'\n', 0x01]);
                hasher.update(k.as_bytes());
                let h: [u8; 32] = hasher.finalize().into();
                [h[0], h[1], h[2], h[3]]
            }
            _ => [log.id[0], log.id[1], log.id[2], log.id[3]],
        };
        if sig[..4] != hint {
            continue;
        }
        if log.key.verify(text.as_bytes(), &sig[4..]).is_ok() {
            verified = true;
            break;
        }
    }
    if !verified {
        return Err("no signature by the log key".into());
    }
    if size != proof.tree_size {
        return Err(format!(
            "it names tree size {size}, the proof {}",
            proof.tree_size
        ));
    }
    if root != proof.root_hash {
        return Err("it names another root hash than the proof".into());
    }
    Ok(())
}
