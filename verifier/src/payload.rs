//! The cosign "simple signing" payload: the JSON document a cosign signature signs.
//!
//! | JSON path | type | rule |
//! |---|---|---|
//! | `critical` | object | required; exactly the three fields below, no others |
//! | `critical.type` | string | must be [`COSIGN_SIGNATURE_TYPE`] |
//! | `critical.image` | object | exactly `docker-manifest-digest`: `sha256:` + 64 lowercase hex |
//! | `critical.identity` | object | exactly `docker-reference`: the name the signer meant (cosign writes the repository only) |
//! | `optional` | object or null | free-form; if present, `creator` must be a string and `timestamp` an integer (seconds) |
//!
//! No other top-level field is accepted and no key may repeat (as containers/image's
//! `untrustedSigstorePayload`). Parse a payload only after its signature verified: these
//! bytes come from whoever wrote the signature file.

use cfsgate_image::ContentSha256;
use serde::{Deserialize, Serialize};

/// `critical.type` of a cosign image signature.
pub const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";
/// `optional.creator` written by [`SimpleSigningPayload::to_bytes`] callers in cfsgate.
pub const CFSGATE_CREATOR: &str = "cfsgate";

/// Why a payload is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The payload is not the JSON of a simple-signing document.
    #[error("payload is not a valid simple-signing document: {0}")]
    Json(String),
    /// `critical.type` is not the cosign signature type (given).
    #[error("payload critical.type is {0:?}, not {COSIGN_SIGNATURE_TYPE:?}")]
    WrongType(String),
    /// `critical.image.docker-manifest-digest` is not a sha256 digest (given).
    #[error("payload docker-manifest-digest {0:?} is not `sha256:` + 64 lowercase hex digits")]
    BadDigest(String),
    /// A field of `optional` has the wrong JSON type.
    #[error("payload optional.{field} has the wrong type: {reason}")]
    BadOptional {
        /// The field name.
        field: &'static str,
        /// What type it has and should have.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadJson {
    critical: CriticalJson,
    #[serde(default)]
    optional: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CriticalJson {
    identity: IdentityJson,
    image: ImageJson,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityJson {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageJson {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// A parsed simple-signing payload.
#[derive(Debug, Clone, PartialEq)]
pub struct SimpleSigningPayload {
    /// `critical.image.docker-manifest-digest`: sha256 of the manifest's exact bytes.
    pub manifest_digest: ContentSha256,
    /// `critical.identity.docker-reference`, as written (matched by policy rules).
    pub docker_reference: String,
    /// `optional.creator`, if any.
    pub creator: Option<String>,
    /// `optional.timestamp` (seconds since the epoch), if any.
    pub timestamp: Option<i64>,
    /// The whole `optional` object (free-form), if any.
    pub optional: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `sha256:<hex>` → digest, accepting lowercase hex only (as go-digest).
pub fn parse_sha256_digest(text: &str) -> Option<ContentSha256> {
    let hex = text.strip_prefix("sha256:")?;
    if hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    ContentSha256::from_hex(hex)
}

impl SimpleSigningPayload {
    /// A new payload for signing, with cfsgate as creator.
    pub fn new(manifest_digest: ContentSha256, docker_reference: &str, timestamp: i64) -> Self {
        let mut optional = serde_json::Map::new();
        optional.insert("creator".into(), CFSGATE_CREATOR.into());
        optional.insert("timestamp".into(), timestamp.into());
        Self {
            manifest_digest,
            docker_reference: docker_reference.to_string(),
            creator: Some(CFSGATE_CREATOR.to_string()),
            timestamp: Some(timestamp),
            optional: Some(optional),
        }
    }

    /// Parses strictly (see the module table).
    pub fn parse(bytes: &[u8]) -> Result<Self, PayloadError> {
        let json: PayloadJson =
            serde_json::from_slice(bytes).map_err(|e| PayloadError::Json(e.to_string()))?;
        if json.critical.kind != COSIGN_SIGNATURE_TYPE {
            return Err(PayloadError::WrongType(json.critical.kind));
        }
        let digest_text = json.critical.image.docker_manifest_digest;
        let manifest_digest = parse_sha256_digest(&digest_text)
            .ok_or_else(|| PayloadError::BadDigest(digest_text.clone()))?;
        let (creator, timestamp) = match &json.optional {
            None => (None, None),
            Some(optional) => (optional_creator(optional)?, optional_timestamp(optional)?),
        };
        Ok(Self {
            manifest_digest,
            docker_reference: json.critical.identity.docker_reference,
            creator,
            timestamp,
            optional: json.optional,
        })
    }

    /// The JSON bytes, in cosign's key order (`critical` {identity, image, type}, `optional`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let json = PayloadJson {
            critical: CriticalJson {
                identity: IdentityJson {
                    docker_reference: self.docker_reference.clone(),
                },
                image: ImageJson {
                    docker_manifest_digest: self.manifest_digest.to_string(),
                },
                kind: COSIGN_SIGNATURE_TYPE.to_string(),
            },
            optional: self.optional.clone(),
        };
        // Strings, maps of JSON values: serialisation cannot fail.
        serde_json::to_vec(&json).unwrap_or_default()
    }
}

fn optional_creator(
    optional: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<String>, PayloadError> {
    match optional.get("creator") {
        None => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(PayloadError::BadOptional {
            field: "creator",
            reason: format!("expected a string, found {other}"),
        }),
    }
}

fn optional_timestamp(
    optional: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<i64>, PayloadError> {
    match optional.get("timestamp") {
        None => Ok(None),
        Some(serde_json::Value::Number(n)) => {
            n.as_i64()
                .map(Some)
                .ok_or_else(|| PayloadError::BadOptional {
                    field: "timestamp",
                    reason: format!("expected an integer number of seconds, found {n}"),
                })
        }
        Some(other) => Err(PayloadError::BadOptional {
            field: "timestamp",
            reason: format!("expected a number, found {other}"),
        }),
    }
}
