//! Sigstore bundles (`*.sigstore.json`, `application/vnd.dev.sigstore.bundle…`): the parser.
//! Verification is in [`crate::bundle_verify`].
//!
//! A bundle is protobuf JSON (`sigstore_bundle.proto`): 64-bit integers are strings, bytes are
//! standard base64. What is read, and refused when malformed:
//!
//! | field | meaning |
//! |---|---|
//! | `mediaType` | `application/vnd.dev.sigstore.bundle+json;version=0.1`, `…;version=0.2`, `…;version=0.3`, or `application/vnd.dev.sigstore.bundle.v0.3+json`; anything else is refused |
//! | `verificationMaterial.publicKey.hint` | the signer is a key known out of band (`--key`, a policy key) |
//! | `verificationMaterial.x509CertificateChain.certificates[].rawBytes` | v0.1/v0.2: the signing certificate first (DER) |
//! | `verificationMaterial.certificate.rawBytes` | v0.3: the signing certificate (DER) |
//! | `verificationMaterial.tlogEntries[]` | transparency log entries ([`TlogEntry`]) |
//! | `verificationMaterial.timestampVerificationData.rfc3161Timestamps[].signedTimestamp` | RFC 3161 timestamp responses (checked by [`crate::tsa`]) |
//! | `messageSignature.messageDigest` / `.signature` | a signature over the artifact (its digest given for reference) |
//! | `dsseEnvelope.payload` / `.payloadType` / `.signatures[].sig` | a DSSE envelope; the signature covers PAE(payloadType, payload) |
//!
//! A tlog entry: `logIndex`, `logId.keyId` (sha256 of the log key's SPKI), `kindVersion`
//! (`hashedrekord`/`dsse`/`intoto`, `0.0.1`/`0.0.2`), `integratedTime`, `inclusionPromise.signedEntryTimestamp`
//! (the SET), `inclusionProof` (`logIndex`, `rootHash`, `treeSize`, `hashes[]`,
//! `checkpoint.envelope`), `canonicalizedBody` (the logged entry, base64 of its JSON).
//! Bundles of version 0.1 must carry a SET; later versions an inclusion proof.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::Deserialize;

/// Largest bundle accepted: real ones are a few KiB (a certificate, one tlog entry with ~30
/// proof hashes); 1 MiB bounds what a hostile bundle can make us parse.
pub const MAX_BUNDLE_BYTES: u64 = 1024 * 1024;
/// Most tlog entries read from one bundle (clients write one).
pub const MAX_TLOG_ENTRIES: usize = 16;
/// Most RFC 3161 timestamps read from one bundle (sigstore-go's and sigstore-python's limit).
pub const MAX_TIMESTAMPS: usize = 32;
/// Most hashes in an inclusion proof: a tree of 2^64 leaves needs 64.
pub const MAX_PROOF_HASHES: usize = 64;

/// Why a bundle is refused before any cryptography.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleParseError {
    /// The bundle is not JSON of the expected shape; the serde message is given.
    #[error("bundle is not valid JSON of the sigstore bundle format: {0}")]
    Json(String),
    /// The `mediaType` names no bundle version this parser knows (given).
    #[error("unsupported bundle mediaType {0:?} (versions 0.1, 0.2 and 0.3 are understood)")]
    UnknownMediaType(String),
    /// A field has a bad value.
    #[error("bundle field {field}: {reason}")]
    Field {
        /// The field, as a JSON path.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Neither or both of `messageSignature` and `dsseEnvelope` are present.
    #[error("bundle has neither messageSignature nor dsseEnvelope (or both)")]
    NoContent,
    /// Not exactly one of `publicKey`, `certificate` and `x509CertificateChain` is present.
    #[error("bundle verificationMaterial has no publicKey, certificate or x509CertificateChain (or several)")]
    NoSigningMaterial,
    /// A field the bundle's version makes mandatory is absent from a tlog entry.
    #[error("bundle version {version} requires {what} in every tlog entry")]
    VersionRequires {
        /// The bundle version.
        version: &'static str,
        /// The missing field (`inclusionProof`, ...).
        what: &'static str,
    },
}

fn field(field: &'static str, reason: impl Into<String>) -> BundleParseError {
    BundleParseError::Field {
        field,
        reason: reason.into(),
    }
}

/// The bundle format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BundleVersion {
    /// `application/vnd.dev.sigstore.bundle+json;version=0.1`.
    V0_1,
    /// `application/vnd.dev.sigstore.bundle+json;version=0.2`.
    V0_2,
    /// `application/vnd.dev.sigstore.bundle.v0.3+json` (or the `;version=0.3` spelling).
    V0_3,
}

impl BundleVersion {
    fn from_media_type(media_type: &str) -> Result<Self, BundleParseError> {
        match media_type {
            "application/vnd.dev.sigstore.bundle+json;version=0.1" => Ok(Self::V0_1),
            "application/vnd.dev.sigstore.bundle+json;version=0.2" => Ok(Self::V0_2),
            "application/vnd.dev.sigstore.bundle+json;version=0.3"
            | "application/vnd.dev.sigstore.bundle.v0.3+json" => Ok(Self::V0_3),
            other => Err(BundleParseError::UnknownMediaType(
                other.chars().take(200).collect(),
            )),
        }
    }

    /// The version number as text (`"0.3"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_1 => "0.1",
            Self::V0_2 => "0.2",
            Self::V0_3 => "0.3",
        }
    }
}

/// Who signed, as the bundle says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningMaterial {
    /// A key known out of band; the hint is informational only.
    PublicKey {
        /// `publicKey.hint`: the signer's name for the key (empty when absent).
        hint: String,
    },
    /// The signing certificate (DER), then any chain certificates the bundle carries.
    Certificates(Vec<Vec<u8>>),
}

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsseEnvelope {
    /// The payload the signature covers, base64-decoded.
    pub payload: Vec<u8>,
    /// `payloadType`: what the payload is (`application/vnd.in-toto+json`).
    pub payload_type: String,
    /// The signatures (clients write exactly one).
    pub signatures: Vec<Vec<u8>>,
}

impl DsseEnvelope {
    /// DSSE's pre-authentication encoding, what the signature covers:
    /// `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`.
    pub fn pae(&self) -> Vec<u8> {
        let mut out = format!(
            "DSSEv1 {} {} {} ",
            self.payload_type.len(),
            self.payload_type,
            self.payload.len()
        )
        .into_bytes();
        out.extend_from_slice(&self.payload);
        out
    }
}

/// What was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleContent {
    /// A signature over the artifact's bytes; `digest` is the bundle's claim of its sha256.
    MessageSignature {
        /// `messageDigest.digest`, when the bundle gives one.
        digest: Option<[u8; 32]>,
        /// The signature bytes, base64-decoded.
        signature: Vec<u8>,
    },
    /// A DSSE envelope (an in-toto statement naming the artifact).
    Dsse(DsseEnvelope),
}

/// An inclusion proof with its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// `logIndex` of the entry the proof is for.
    pub log_index: u64,
    /// Size of the log tree the proof is against.
    pub tree_size: u64,
    /// Root hash of that tree.
    pub root_hash: [u8; 32],
    /// The audit path, leaf to root.
    pub hashes: Vec<[u8; 32]>,
    /// The signed note text (`checkpoint.envelope`).
    pub checkpoint: String,
}

/// One transparency log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogEntry {
    /// `logIndex`: the entry's position in the log.
    pub log_index: u64,
    /// sha256 of the log key's SPKI.
    pub log_id: [u8; 32],
    /// `kindVersion.kind` (`hashedrekord`, `dsse`, ...).
    pub kind: String,
    /// `kindVersion.version` (`0.0.1`, ...).
    pub version: String,
    /// Unix seconds; 0 when the entry has none (Rekor v2).
    pub integrated_time: u64,
    /// `inclusionPromise.signedEntryTimestamp` (the SET), base64-decoded.
    pub set: Option<Vec<u8>>,
    /// The inclusion proof, when the entry has one.
    pub inclusion_proof: Option<InclusionProof>,
    /// The logged entry (JSON bytes).
    pub body: Vec<u8>,
}

/// A parsed bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The bundle format version from `mediaType`.
    pub version: BundleVersion,
    /// `verificationMaterial`: who signed.
    pub signer: SigningMaterial,
    /// What was signed, and the signature.
    pub content: BundleContent,
    /// `verificationMaterial.tlogEntries`, in bundle order.
    pub tlog_entries: Vec<TlogEntry>,
    /// `verificationMaterial.timestampVerificationData.rfc3161Timestamps[].signedTimestamp`:
    /// RFC 3161 timestamp responses (DER), in bundle order.
    pub timestamps: Vec<Vec<u8>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BundleJson {
    media_type: String,
    verification_material: MaterialJson,
    message_signature: Option<MessageSignatureJson>,
    dsse_envelope: Option<DsseJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MaterialJson {
    public_key: Option<HintJson>,
    certificate: Option<RawBytesJson>,
    x509_certificate_chain: Option<ChainJson>,
    #[serde(default)]
    tlog_entries: Vec<TlogJson>,
    timestamp_verification_data: Option<TimestampDataJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TimestampDataJson {
    #[serde(default)]
    rfc3161_timestamps: Vec<SignedTimestampJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignedTimestampJson {
    signed_timestamp: String,
}

#[derive(Deserialize)]
struct HintJson {
    #[serde(default)]
    hint: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytesJson {
    #[serde(default)]
    raw_bytes: String,
}

#[derive(Deserialize)]
struct ChainJson {
    #[serde(default)]
    certificates: Vec<RawBytesJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageSignatureJson {
    message_digest: Option<MessageDigestJson>,
    signature: String,
}

#[derive(Deserialize)]
struct MessageDigestJson {
    algorithm: String,
    digest: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DsseJson {
    payload: String,
    payload_type: String,
    signatures: Vec<DsseSignatureJson>,
}

#[derive(Deserialize)]
struct DsseSignatureJson {
    sig: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogJson {
    log_index: String,
    log_id: LogIdJson,
    kind_version: KindVersionJson,
    #[serde(default)]
    integrated_time: Option<String>,
    inclusion_promise: Option<PromiseJson>,
    inclusion_proof: Option<ProofJson>,
    canonicalized_body: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogIdJson {
    key_id: String,
}

#[derive(Deserialize)]
struct KindVersionJson {
    kind: String,
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromiseJson {
    signed_entry_timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProofJson {
    log_index: String,
    root_hash: String,
    tree_size: String,
    #[serde(default)]
    hashes: Vec<String>,
    checkpoint: Option<CheckpointJson>,
}

#[derive(Deserialize)]
struct CheckpointJson {
    envelope: String,
}

fn base64(name: &'static str, text: &str) -> Result<Vec<u8>, BundleParseError> {
    BASE64
        .decode(text)
        .map_err(|e| field(name, format!("not valid base64: {e}")))
}

fn hash32(name: &'static str, text: &str) -> Result<[u8; 32], BundleParseError> {
    let bytes = base64(name, text)?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| field(name, format!("{} bytes, a sha256 is 32", b.len())))
}

/// A protobuf JSON int64 (a decimal string), which must not be negative.
fn unsigned(name: &'static str, text: &str) -> Result<u64, BundleParseError> {
    if text.starts_with('-') {
        return Err(field(name, format!("{text:?} is negative")));
    }
    text.parse()
        .map_err(|_| field(name, format!("{text:?} is not a decimal integer")))
}

/// Parses a bundle (see the module table).
pub fn parse_bundle(bytes: &[u8]) -> Result<Bundle, BundleParseError> {
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(BundleParseError::Json(format!(
            "larger than {MAX_BUNDLE_BYTES} bytes"
        )));
    }
    let json: BundleJson =
        serde_json::from_slice(bytes).map_err(|e| BundleParseError::Json(e.to_string()))?;
    let version = BundleVersion::from_media_type(&json.media_type)?;
    let material = json.verification_material;
    let signer = match (
        material.public_key,
        material.certificate,
        material.x509_certificate_chain,
    ) {
        (Some(key), None, None) => SigningMaterial::PublicKey { hint: key.hint },
        (None, Some(cert), None) => SigningMaterial::Certificates(vec![base64(
            "verificationMaterial.certificate.rawBytes",
            &cert.raw_bytes,
        )?]),
        (None, None, Some(chain)) => {
            let certificates = chain
                .certificates
                .iter()
                .map(|c| base64("x509CertificateChain.certificates.rawBytes", &c.raw_bytes))
                .collect::<Result<Vec<_>, _>>()?;
            if certificates.is_empty() || certificates.iter().any(Vec::is_empty) {
                return Err(field(
                    "verificationMaterial.x509CertificateChain",
                    "empty certificate chain",
                ));
            }
            SigningMaterial::Certificates(certificates)
        }
        _ => return Err(BundleParseError::NoSigningMaterial),
    };
    let content = match (json.message_signature, json.dsse_envelope) {
        (Some(message), None) => {
            let digest = match message.message_digest {
                None => None,
                Some(d) if d.algorithm == "SHA2_256" => {
                    Some(hash32("messageSignature.messageDigest.digest", &d.digest)?)
                }
                Some(d) => {
                    return Err(field(
                        "messageSignature.messageDigest.algorithm",
                        format!("{:?} (only SHA2_256)", d.algorithm),
                    ))
                }
            };
            BundleContent::MessageSignature {
                digest,
                signature: base64("messageSignature.signature", &message.signature)?,
            }
        }
        (None, Some(envelope)) => BundleContent::Dsse(DsseEnvelope {
            payload: base64("dsseEnvelope.payload", &envelope.payload)?,
            payload_type: envelope.payload_type,
            signatures: envelope
                .signatures
                .iter()
                .map(|s| base64("dsseEnvelope.signatures.sig", &s.sig))
                .collect::<Result<_, _>>()?,
        }),
        _ => return Err(BundleParseError::NoContent),
    };
    if material.tlog_entries.len() > MAX_TLOG_ENTRIES {
        return Err(field(
            "verificationMaterial.tlogEntries",
            format!("more than {MAX_TLOG_ENTRIES} entries"),
        ));
    }
    let tlog_entries = material
        .tlog_entries
        .iter()
        .map(tlog_entry)
        .collect::<Result<Vec<_>, _>>()?;
    for entry in &tlog_entries {
        if version == BundleVersion::V0_1 && entry.set.is_none() {
            return Err(BundleParseError::VersionRequires {
                version: "0.1",
                what: "an inclusionPromise (SET)",
            });
        }
        if version >= BundleVersion::V0_2 && entry.inclusion_proof.is_none() {
            return Err(BundleParseError::VersionRequires {
                version: version.as_str(),
                what: "an inclusionProof",
            });
        }
    }
    let stamps = material
        .timestamp_verification_data
        .map(|t| t.rfc3161_timestamps)
        .unwrap_or_default();
    if stamps.len() > MAX_TIMESTAMPS {
        return Err(field(
            "timestampVerificationData.rfc3161Timestamps",
            format!("more than {MAX_TIMESTAMPS} timestamps"),
        ));
    }
    let timestamps = stamps
        .iter()
        .map(|t| base64("rfc3161Timestamps.signedTimestamp", &t.signed_timestamp))
        .collect::<Result<Vec<_>, _>>()?;
    if (1..timestamps.len()).any(|i| timestamps[..i].contains(&timestamps[i])) {
        return Err(field(
            "timestampVerificationData.rfc3161Timestamps",
            "the same timestamp twice",
        ));
    }
    Ok(Bundle {
        version,
        signer,
        content,
        tlog_entries,
        timestamps,
    })
}

fn tlog_entry(json: &TlogJson) -> Result<TlogEntry, BundleParseError> {
    let inclusion_proof = match &json.inclusion_proof {
        None => None,
        Some(proof) => {
            if proof.hashes.len() > MAX_PROOF_HASHES {
                return Err(field(
                    "inclusionProof.hashes",
                    format!("more than {MAX_PROOF_HASHES}"),
                ));
            }
            Some(InclusionProof {
                log_index: unsigned("inclusionProof.logIndex", &proof.log_index)?,
                tree_size: unsigned("inclusionProof.treeSize", &proof.tree_size)?,
                root_hash: hash32("inclusionProof.rootHash", &proof.root_hash)?,
                hashes: proof
                    .hashes
                    .iter()
                    .map(|h| hash32("inclusionProof.hashes", h))
                    .collect::<Result<_, _>>()?,
                checkpoint: proof
                    .checkpoint
                    .as_ref()
                    .map(|c| c.envelope.clone())
                    .ok_or_else(|| field("inclusionProof.checkpoint", "missing"))?,
            })
        }
    };
    Ok(TlogEntry {
        log_index: unsigned("tlogEntries.logIndex", &json.log_index)?,
        log_id: hash32("tlogEntries.logId.keyId", &json.log_id.key_id)?,
        kind: json.kind_version.kind.clone(),
        version: json.kind_version.version.clone(),
        integrated_time: match &json.integrated_time {
            Some(t) => unsigned("tlogEntries.integratedTime", t)?,
            None => 0,
        },
        set: json
            .inclusion_promise
            .as_ref()
            .map(|p| {
                base64(
                    "inclusionPromise.signedEntryTimestamp",
                    &p.signed_entry_timestamp,
                )
            })
            .transpose()?,
        inclusion_proof,
        body: base64("tlogEntries.canonicalizedBody", &json.canonicalized_body)?,
    })
}
