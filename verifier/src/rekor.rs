//! Offline verification of a cosign Rekor bundle: the transparency log's signed entry
//! timestamp (SET) that says "this signature, by this key, over this payload, was logged at
//! this time". With `rekorPublicKey*` in a `sigstoreSigned` requirement, a signature counts
//! only with a valid SET, and the SET's `integratedTime` is the time validity windows are
//! judged at (containers/image semantics; the log itself is never contacted).
//!
//! The bundle is the JSON text of the sigstore annotation
//! [`crate::sigstore::BUNDLE_ANNOTATION`] (`dev.sigstore.cosign/bundle`):
//!
//! | bundle field | type | meaning |
//! |---|---|---|
//! | `SignedEntryTimestamp` | string, standard base64 | the Rekor key's ECDSA signature (ASN.1 DER) over SHA-256 of the RFC 8785 canonical JSON of `Payload` |
//! | `Payload.body` | string, standard base64 | the log entry (JSON, below) |
//! | `Payload.integratedTime` | integer, unix seconds | when the log integrated the entry: the signature's time |
//! | `Payload.logIndex` | integer | the entry's index in the log |
//! | `Payload.logID` | string, 64 hex digits | sha256 of the log key's DER SubjectPublicKeyInfo |
//!
//! The canonical form of `Payload` is `{"body":"…","integratedTime":N,"logID":"…","logIndex":N}`
//! (keys in UTF-16 order, no whitespace, numbers in ECMAScript form, which for the integers
//! accepted here, at most 2^53, is plain decimal; strings escaped as RFC 8785 §3.2.2.2 says).
//!
//! The body is a Rekor `hashedrekord` entry, `apiVersion` `0.0.1`:
//!
//! | body field | must be |
//! |---|---|
//! | `kind` | `hashedrekord` |
//! | `apiVersion` | `0.0.1` |
//! | `spec.signature.content` | base64 of the cosign signature bytes |
//! | `spec.signature.publicKey.content` | base64 of a PEM public key: the key that verified the signature (compared as SPKI); for a keyless (Fulcio) signature, the PEM certificate of the signature's certificate annotation (compared as containers/image does: the DER of the one PEM block each holds, nothing after it) |
//! | `spec.data.hash.algorithm` | `sha256` |
//! | `spec.data.hash.value` | hex sha256 of the exact payload bytes |
//!
//! Order of checks (each failure its own [`RekorError`]): the bundle parses strictly
//! (exactly these fields, none repeated, integers non-negative and ≤ 2^53); the SET verifies
//! with one of the configured Rekor keys; `logID` names that key; only then is the body
//! decoded and matched. Unknown fields inside the body are ignored (it is the log's signed
//! record, whose schema may grow, and containers/image ignores them too); repeated fields are
//! refused.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use cfsgate_image::{ContentSha256, FsVeritySha256};
use cfsgate_keyring::{KeyId, PublicKey};
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::verify::sha256_of;

/// The canonical (RFC 8785) JSON string writer the SET is computed with: the workspace's one
/// JSON string escaper, in the policy crate.
pub use cfsgate_policy::serialize::push_json_string as push_canonical_string;

/// Largest integer accepted in the bundle: 2^53, the largest up to which every integer has
/// an exact IEEE 754 double, so RFC 8785 (which serialises numbers as doubles) writes it as
/// plain decimal and our canonical form equals every other implementation's.
pub const MAX_CANONICAL_INTEGER: u64 = 1 << 53;
/// The only Rekor entry kind a cosign key signature is logged as.
pub const HASHEDREKORD_KIND: &str = "hashedrekord";
/// The only `hashedrekord` version understood (containers/image accepts only this one too).
pub const HASHEDREKORD_API_VERSION: &str = "0.0.1";
/// The only payload hash algorithm cosign produces and containers/image accepts.
pub const HASH_ALGORITHM_SHA256: &str = "sha256";

/// Why a Rekor bundle does not vouch for a signature. Each failure has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RekorError {
    /// The signature layer has no `dev.sigstore.cosign/bundle` annotation.
    #[error("the signature has no Rekor bundle (annotation dev.sigstore.cosign/bundle)")]
    Missing,
    /// The bundle annotation is not the JSON of a Rekor bundle.
    #[error("malformed Rekor bundle: {0}")]
    Malformed(String),
    /// An integer field is above 2^53, which JSON numbers cannot hold exactly.
    #[error("Rekor bundle field {field} is {value}, above 2^53 (not an exact JSON number)")]
    IntegerTooLarge {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// `SignedEntryTimestamp` is not base64.
    #[error("Rekor bundle SignedEntryTimestamp is not valid base64: {0}")]
    SetNotBase64(String),
    /// `Payload.logID` is not 64 hex digits (given).
    #[error("Rekor bundle logID {0:?} is not 64 hex digits")]
    LogIdMalformed(String),
    /// The policy asks for Rekor but lists no Rekor key.
    #[error("no Rekor public key is configured to verify the SET with")]
    NoRekorKeys,
    /// The SET verifies with no configured Rekor key.
    #[error("the Rekor SET does not verify with any configured Rekor key ({})", describe_log(.log_id, *.log_is_configured))]
    SetSignatureInvalid {
        /// The log id the bundle names.
        log_id: FsVeritySha256,
        /// Whether some configured key has that log id (the SET was then altered).
        log_is_configured: bool,
    },
    /// The SET verifies, but names a log other than the key's.
    #[error("the Rekor SET verifies with Rekor key {key}, but names log {log_id} (SET from another log)", key = .rekor_key.short())]
    LogIdMismatch {
        /// The log id the bundle names.
        log_id: FsVeritySha256,
        /// The Rekor key the SET verifies with.
        rekor_key: KeyId,
    },
    /// `Payload.body` is not base64.
    #[error("the Rekor entry body is not valid base64: {0}")]
    BodyNotBase64(String),
    /// The decoded body is not the JSON of a Rekor entry.
    #[error("the Rekor entry body is malformed: {0}")]
    BodyMalformed(String),
    /// The entry's kind is not `hashedrekord` (given).
    #[error("the Rekor entry is of kind {0:?}, not hashedrekord")]
    WrongKind(String),
    /// The entry's `apiVersion` is not `0.0.1` (given).
    #[error("the Rekor entry is hashedrekord version {0:?}, only 0.0.1 is supported")]
    UnsupportedApiVersion(String),
    /// The entry logs another signature than the one being verified.
    #[error("the Rekor entry logs another signature than this one")]
    SignatureMismatch,
    /// The entry's public key cannot be parsed.
    #[error("the Rekor entry's public key cannot be read: {0}")]
    PublicKeyMalformed(String),
    /// The entry logs another key than the one that verified the signature.
    #[error("the Rekor entry logs public key {}, not the key {} that verified the signature", .logged.short(), .signer.short())]
    PublicKeyMismatch {
        /// The key the entry logs.
        logged: KeyId,
        /// The key that verified the signature.
        signer: KeyId,
    },
    /// The signature's certificate annotation is not one PEM block.
    #[error("the signature's certificate cannot be matched against the Rekor entry: {0}")]
    CertificateMalformed(String),
    /// The entry logs another certificate (or a key) than the signature's certificate.
    #[error("the Rekor entry logs another certificate than the signature's")]
    CertificateMismatch,
    /// The entry's payload hash algorithm is not sha256 (given).
    #[error("the Rekor entry hashes the payload with {0:?}, only sha256 is supported")]
    UnsupportedHashAlgorithm(String),
    /// The entry's payload hash is not 64 hex digits (given).
    #[error("the Rekor entry's payload hash {0:?} is not 64 hex digits")]
    HashMalformed(String),
    /// The entry logs another payload hash than this payload's.
    #[error("the Rekor entry logs payload {logged}, but this payload is {actual}")]
    PayloadHashMismatch {
        /// The hash the entry logs.
        logged: ContentSha256,
        /// The payload's sha256.
        actual: ContentSha256,
    },
}

fn describe_log(log_id: &FsVeritySha256, configured: bool) -> String {
    if configured {
        format!(
            "it names log {log_id}, a configured key, whose signature it does not carry: the SET or its payload was altered"
        )
    } else {
        format!("it names log {log_id}, which is none of the configured Rekor keys: a SET from another log")
    }
}

/// Why a key cannot be used as a Rekor key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RekorKeyError {
    /// The key is not ECDSA P-256 or P-384.
    #[error("{label}: a Rekor key must be ECDSA P-256 or P-384, this is {algorithm}")]
    Unsupported {
        /// Where the key came from.
        label: String,
        /// Its algorithm.
        algorithm: String,
    },
}

/// A parsed, not yet verified, Rekor bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RekorBundle {
    /// The decoded `SignedEntryTimestamp` (should be ASN.1 DER ECDSA).
    pub signed_entry_timestamp: Vec<u8>,
    /// The `Payload` object the SET signs.
    pub payload: RekorPayload,
}

/// The `Payload` object of a bundle, as written (the body still base64).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RekorPayload {
    /// The logged entry, base64 of its JSON.
    pub body: String,
    /// `integratedTime`: when the log recorded the entry (unix seconds).
    #[serde(rename = "integratedTime")]
    pub integrated_time: u64,
    /// `logIndex`: the entry's position in the log.
    #[serde(rename = "logIndex")]
    pub log_index: u64,
    /// `logID`: hex sha256 of the log key's SPKI, as written.
    #[serde(rename = "logID")]
    pub log_id: String,
}

/// The bundle's JSON form. serde refuses unknown and repeated fields of derived structs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleJson {
    #[serde(rename = "SignedEntryTimestamp")]
    signed_entry_timestamp: String,
    #[serde(rename = "Payload")]
    payload: RekorPayload,
}

/// Parses a bundle strictly; a pure function of the bytes (fuzzing target).
pub fn parse_bundle(json: &[u8]) -> Result<RekorBundle, RekorError> {
    let parsed: BundleJson =
        serde_json::from_slice(json).map_err(|e| RekorError::Malformed(e.to_string()))?;
    for (field, value) in [
        ("integratedTime", parsed.payload.integrated_time),
        ("logIndex", parsed.payload.log_index),
    ] {
        if value > MAX_CANONICAL_INTEGER {
            return Err(RekorError::IntegerTooLarge { field, value });
        }
    }
    let signed_entry_timestamp = BASE64
        .decode(&parsed.signed_entry_timestamp)
        .map_err(|e| RekorError::SetNotBase64(e.to_string()))?;
    Ok(RekorBundle {
        signed_entry_timestamp,
        payload: parsed.payload,
    })
}

impl RekorPayload {
    /// The RFC 8785 canonical JSON the SET signs.
    pub fn canonical_json(&self) -> Vec<u8> {
        let mut out = String::with_capacity(self.body.len() + self.log_id.len() + 96);
        out.push_str("{\"body\":");
        push_canonical_string(&mut out, &self.body);
        out.push_str(&format!(",\"integratedTime\":{}", self.integrated_time));
        out.push_str(",\"logID\":");
        push_canonical_string(&mut out, &self.log_id);
        out.push_str(&format!(",\"logIndex\":{}}}", self.log_index));
        out.into_bytes()
    }

    /// `logID` as a digest.
    pub fn log_id(&self) -> Result<FsVeritySha256, RekorError> {
        FsVeritySha256::from_hex(&self.log_id)
            .map_err(|_| RekorError::LogIdMalformed(self.log_id.chars().take(100).collect()))
    }
}

/// The ECDSA key of a Rekor log.
#[derive(Debug, Clone)]
enum SetVerifier {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

/// A trusted Rekor log key.
#[derive(Debug, Clone)]
pub struct RekorKey {
    /// sha256 of the SPKI: what a SET from this log carries as `logID`.
    pub id: KeyId,
    /// Where it came from, for messages.
    pub label: String,
    verifier: SetVerifier,
}

impl RekorKey {
    /// Uses `key` as a Rekor key; only ECDSA keys can sign SETs.
    pub fn new(key: PublicKey, label: String) -> Result<Self, RekorKeyError> {
        let id = key.key_id();
        let verifier = match key {
            PublicKey::EcdsaP256(k) => SetVerifier::P256(k),
            PublicKey::EcdsaP384(k) => SetVerifier::P384(k),
            other => {
                return Err(RekorKeyError::Unsupported {
                    label,
                    algorithm: other.algorithm().to_string(),
                })
            }
        };
        Ok(Self {
            id,
            label,
            verifier,
        })
    }

    /// Whether `set` (ASN.1 DER) is this key's signature over SHA-256 of `message`. Rekor
    /// hashes with SHA-256 whatever the curve (Go's `ecdsa.VerifyASN1` over a SHA-256 sum),
    /// so the digest is computed here and verified as a prehash.
    pub(crate) fn verifies(&self, message: &[u8], set: &[u8]) -> bool {
        let digest = Sha256::digest(message);
        match &self.verifier {
            SetVerifier::P256(key) => p256::ecdsa::Signature::from_der(set)
                .is_ok_and(|sig| key.verify_prehash(&digest, &sig).is_ok()),
            SetVerifier::P384(key) => p384::ecdsa::Signature::from_der(set)
                .is_ok_and(|sig| key.verify_prehash(&digest, &sig).is_ok()),
        }
    }
}

/// What the SET vouches for: a signature already verified with `signer` over `payload`.
#[derive(Debug, Clone, Copy)]
pub struct SignedArtifact<'a> {
    /// The exact signed payload bytes.
    pub payload: &'a [u8],
    /// The decoded signature bytes.
    pub signature: &'a [u8],
    /// The key that verified the signature.
    pub signer: KeyId,
}

/// A verified SET: the log entry's time and place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RekorEntry {
    /// Unix seconds: the signature's time.
    pub integrated_time: i64,
    /// `logIndex`: the entry's position in the log.
    pub log_index: u64,
    /// The log id: sha256 of the log key's SPKI.
    #[serde(serialize_with = "hex_digest")]
    pub log_id: FsVeritySha256,
    /// The Rekor key that signed the SET.
    pub rekor_key: KeyId,
}

fn hex_digest<S: serde::Serializer>(d: &FsVeritySha256, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&d.to_hex())
}

impl std::fmt::Display for RekorEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "log index {}, integrated at {}",
            self.log_index,
            cfsgate_policy::Timestamp(self.integrated_time)
        )
    }
}

/// The body as far as needed to know what it is (other fields are skipped here).
#[derive(Deserialize)]
struct BodyKind {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
}

/// A `hashedrekord` 0.0.1 body.
#[derive(Deserialize)]
struct HashedRekord {
    spec: HashedRekordSpec,
}

#[derive(Deserialize)]
struct HashedRekordSpec {
    data: HashedRekordData,
    signature: HashedRekordSignature,
}

#[derive(Deserialize)]
struct HashedRekordData {
    hash: HashedRekordHash,
}

#[derive(Deserialize)]
struct HashedRekordHash {
    algorithm: String,
    value: String,
}

#[derive(Deserialize)]
struct HashedRekordSignature {
    content: String,
    #[serde(rename = "publicKey")]
    public_key: HashedRekordPublicKey,
}

#[derive(Deserialize)]
struct HashedRekordPublicKey {
    content: String,
}

/// What the entry's `publicKey` must be.
#[derive(Clone, Copy)]
enum LoggedSigner<'a> {
    /// The key (by SPKI id) that verified the signature.
    Key(KeyId),
    /// The signature's certificate annotation (PEM text, exactly one block).
    Certificate(&'a [u8]),
}

/// Verifies the bundle JSON `bundle` against the trusted Rekor `keys` (any one may have
/// signed it) and the signature it must log; see the module docs for the order of checks.
pub fn verify_bundle(
    bundle: &[u8],
    keys: &[RekorKey],
    artifact: &SignedArtifact,
) -> Result<RekorEntry, RekorError> {
    verify_logged(
        bundle,
        keys,
        artifact.payload,
        artifact.signature,
        LoggedSigner::Key(artifact.signer),
    )
}

/// As [`verify_bundle`] for a keyless signature: the entry must log `certificate_pem` (the
/// signature's certificate annotation) rather than a key. Nothing about the certificate is
/// trusted here: the caller verifies it at the returned entry's time.
pub fn verify_bundle_for_certificate(
    bundle: &[u8],
    keys: &[RekorKey],
    payload: &[u8],
    signature: &[u8],
    certificate_pem: &[u8],
) -> Result<RekorEntry, RekorError> {
    verify_logged(
        bundle,
        keys,
        payload,
        signature,
        LoggedSigner::Certificate(certificate_pem),
    )
}

fn verify_logged(
    bundle: &[u8],
    keys: &[RekorKey],
    payload: &[u8],
    signature: &[u8],
    signer: LoggedSigner,
) -> Result<RekorEntry, RekorError> {
    let bundle = parse_bundle(bundle)?;
    let log_id = bundle.payload.log_id()?;
    if keys.is_empty() {
        return Err(RekorError::NoRekorKeys);
    }
    let canonical = bundle.payload.canonical_json();
    let Some(rekor_key) = keys
        .iter()
        .find(|key| key.verifies(&canonical, &bundle.signed_entry_timestamp))
    else {
        return Err(RekorError::SetSignatureInvalid {
            log_id,
            log_is_configured: keys.iter().any(|k| k.id.0 == log_id.0),
        });
    };
    if rekor_key.id.0 != log_id.0 {
        return Err(RekorError::LogIdMismatch {
            log_id,
            rekor_key: rekor_key.id,
        });
    }
    check_body(&bundle.payload.body, payload, signature, signer)?;
    Ok(RekorEntry {
        // At most 2^53 (checked when parsing), so it fits.
        integrated_time: i64::try_from(bundle.payload.integrated_time).unwrap_or(i64::MAX),
        log_index: bundle.payload.log_index,
        log_id,
        rekor_key: rekor_key.id,
    })
}

/// The logged entry must be a `hashedrekord` of exactly this signature, key and payload.
fn check_body(
    body_base64: &str,
    payload: &[u8],
    signature: &[u8],
    signer: LoggedSigner,
) -> Result<(), RekorError> {
    let body = BASE64
        .decode(body_base64)
        .map_err(|e| RekorError::BodyNotBase64(e.to_string()))?;
    let kind: BodyKind =
        serde_json::from_slice(&body).map_err(|e| RekorError::BodyMalformed(e.to_string()))?;
    if kind.kind != HASHEDREKORD_KIND {
        return Err(RekorError::WrongKind(kind.kind));
    }
    if kind.api_version != HASHEDREKORD_API_VERSION {
        return Err(RekorError::UnsupportedApiVersion(kind.api_version));
    }
    let entry: HashedRekord =
        serde_json::from_slice(&body).map_err(|e| RekorError::BodyMalformed(e.to_string()))?;
    let spec = entry.spec;

    let logged_signature = BASE64.decode(&spec.signature.content).map_err(|e| {
        RekorError::BodyMalformed(format!("spec.signature.content is not base64: {e}"))
    })?;
    if logged_signature != signature {
        return Err(RekorError::SignatureMismatch);
    }

    match signer {
        LoggedSigner::Key(signer) => {
            let logged = logged_public_key(&spec.signature.public_key.content)?;
            if logged != signer {
                return Err(RekorError::PublicKeyMismatch { logged, signer });
            }
        }
        LoggedSigner::Certificate(pem) => {
            let logged = BASE64
                .decode(&spec.signature.public_key.content)
                .map_err(|e| RekorError::PublicKeyMalformed(format!("not base64: {e}")))?;
            let logged = crate::cert::single_pem_block(&logged)
                .map_err(|e| RekorError::PublicKeyMalformed(e.to_string()))?;
            let ours = crate::cert::single_pem_block(pem)
                .map_err(|e| RekorError::CertificateMalformed(e.to_string()))?;
            if logged != ours {
                return Err(RekorError::CertificateMismatch);
            }
        }
    }

    if spec.data.hash.algorithm != HASH_ALGORITHM_SHA256 {
        return Err(RekorError::UnsupportedHashAlgorithm(
            spec.data.hash.algorithm,
        ));
    }
    let logged = ContentSha256::from_hex(&spec.data.hash.value).ok_or_else(|| {
        RekorError::HashMalformed(spec.data.hash.value.chars().take(100).collect())
    })?;
    let actual = sha256_of(payload);
    if logged != actual {
        return Err(RekorError::PayloadHashMismatch { logged, actual });
    }
    Ok(())
}

/// The id (sha256 of the SPKI) of the PEM public key a `hashedrekord` logs.
fn logged_public_key(content_base64: &str) -> Result<KeyId, RekorError> {
    let pem = BASE64
        .decode(content_base64)
        .map_err(|e| RekorError::PublicKeyMalformed(format!("not base64: {e}")))?;
    if !pem.starts_with(b"-----BEGIN PUBLIC KEY-----") {
        return Err(RekorError::PublicKeyMalformed(
            "not a PEM PUBLIC KEY block (a certificate is only logged for keyless signatures)"
                .into(),
        ));
    }
    PublicKey::from_bytes(&pem, "Rekor entry publicKey")
        .map(|key| key.key_id())
        .map_err(|e| RekorError::PublicKeyMalformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_sorts_keys_and_escapes() {
        let payload = RekorPayload {
            body: "a\"b\\c\u{1}\n/é".into(),
            integrated_time: 1,
            log_index: MAX_CANONICAL_INTEGER,
            log_id: "ab".into(),
        };
        assert_eq!(
            String::from_utf8(payload.canonical_json()).unwrap(),
            "{\"body\":\"a\\\"b\\\\c\\u0001\\n/é\",\"integratedTime\":1,\"logID\":\"ab\",\"logIndex\":9007199254740992}"
        );
    }

    #[test]
    fn canonical_form_parses_back_to_the_same_payload() {
        for text in [
            "",
            "plain",
            "\u{0}\u{1f}\u{7f}",
            "\"\\/",
            "é€𝄞",
            "\u{2028}\u{2029}",
        ] {
            let payload = RekorPayload {
                body: text.into(),
                integrated_time: 0,
                log_index: 7,
                log_id: text.chars().rev().collect(),
            };
            let canonical = payload.canonical_json();
            let back: RekorPayload = serde_json::from_slice(&canonical).unwrap();
            assert_eq!(back, payload, "{}", String::from_utf8_lossy(&canonical));
        }
    }

    #[test]
    fn strict_bundle_parse() {
        let ok = br#"{"SignedEntryTimestamp":"AA==","Payload":{"body":"","integratedTime":1,"logIndex":2,"logID":"x"}}"#;
        assert!(parse_bundle(ok).is_ok());
        for bad in [
            &br#"{"SignedEntryTimestamp":"AA==","Payload":{"body":"","integratedTime":1,"logIndex":2,"logID":"x","extra":1}}"#[..],
            br#"{"SignedEntryTimestamp":"AA==","Payload":{"body":"","integratedTime":1,"integratedTime":1,"logIndex":2,"logID":"x"}}"#,
            br#"{"SignedEntryTimestamp":"AA==","Payload":{"body":"","integratedTime":-1,"logIndex":2,"logID":"x"}}"#,
            br#"{"SignedEntryTimestamp":"AA==","Payload":{"body":"","integratedTime":1.5,"logIndex":2,"logID":"x"}}"#,
            br#"{"SignedEntryTimestamp":"AA==","Payload":{"body":"","integratedTime":1,"logID":"x"}}"#,
            br#"{"SignedEntryTimestamp":"AA==","SignedEntryTimestamp":"AA==","Payload":{"body":"","integratedTime":1,"logIndex":2,"logID":"x"}}"#,
        ] {
            assert!(
                matches!(parse_bundle(bad), Err(RekorError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let big = br#"{"SignedEntryTimestamp":"AA==","Payload":{"body":"","integratedTime":9007199254740993,"logIndex":2,"logID":"x"}}"#;
        assert!(matches!(
            parse_bundle(big),
            Err(RekorError::IntegerTooLarge {
                field: "integratedTime",
                ..
            })
        ));
    }
}
