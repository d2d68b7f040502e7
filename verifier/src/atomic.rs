//! The simple-signing payload of GPG (`signedBy`) signatures: the JSON document an
//! OpenPGP-signed "atomic container signature" carries (containers/image
//! `docs/containers-signature.5.md`, `signature/simple.go`).
//!
//! | JSON path | type | rule |
//! |---|---|---|
//! | (top level) | object | exactly `critical` and `optional`, both required, no other key |
//! | `critical` | object | exactly `type`, `image`, `identity` |
//! | `critical.type` | string | must be [`ATOMIC_SIGNATURE_TYPE`] |
//! | `critical.image` | object | exactly `docker-manifest-digest`: a valid digest (`sha256:`/`sha384:`/`sha512:` + lowercase hex of the right length) |
//! | `critical.identity` | object | exactly `docker-reference`: the identity the signer claims |
//! | `optional` | object | any keys; `creator` must be a string, `timestamp` an integral number |
//!
//! No key may repeat at any of these levels, and nothing may follow the object (as
//! containers/image's "paranoid" JSON parsing). The bytes come from whoever made the
//! signature: parse them only after the signature verified.
//!
//! The manifest digest is then compared with the sha256 of the manifest's exact bytes
//! ([`manifest_matches`]): containers/image computes sha256 whatever the signed algorithm,
//! so a `sha512:` digest parses but never matches.

use std::collections::BTreeSet;
use std::fmt;

use cfsgate_image::ContentSha256;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// `critical.type` of a GPG simple-signing signature.
pub const ATOMIC_SIGNATURE_TYPE: &str = "atomic container signature";

/// A parsed, still unverified-against-the-image payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtomicPayload {
    /// `critical.image.docker-manifest-digest`, as written (validated).
    pub manifest_digest: String,
    /// `critical.identity.docker-reference`, as written.
    pub docker_reference: String,
    /// `optional.creator`, when present.
    pub creator: Option<String>,
    /// `optional.timestamp` (unix seconds), when present.
    pub timestamp: Option<i64>,
}

/// Why a payload is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtomicPayloadError {
    /// Not the JSON this format allows (unknown, missing or repeated key, wrong type, …).
    #[error("signed payload is not a valid atomic container signature: {0}")]
    Json(String),
    /// `critical.type` is another type.
    #[error("Unrecognized signature type {0}")]
    WrongType(String),
    /// The manifest digest is not a valid digest.
    #[error("invalid docker-manifest-digest value {0:?}")]
    BadDigest(String),
    /// `optional.timestamp` is not an integer.
    #[error("Field optional.timestamp is not an integer")]
    FractionalTimestamp,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Top {
    critical: Critical,
    optional: Optional,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: Image,
    identity: Identity,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

/// `optional`: free-form, but its keys unique and `creator`/`timestamp` typed.
struct Optional {
    creator: Option<String>,
    timestamp: Option<f64>,
}

impl<'de> Deserialize<'de> for Optional {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OptionalVisitor;
        impl<'de> Visitor<'de> for OptionalVisitor {
            type Value = Optional;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Optional, A::Error> {
                let mut seen = BTreeSet::new();
                let mut out = Optional {
                    creator: None,
                    timestamp: None,
                };
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key.clone()) {
                        return Err(de::Error::custom(format!("Duplicate key {key:?}")));
                    }
                    match key.as_str() {
                        "creator" => out.creator = Some(map.next_value()?),
                        "timestamp" => out.timestamp = Some(map.next_value()?),
                        _ => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        deserializer.deserialize_map(OptionalVisitor)
    }
}

impl AtomicPayload {
    /// Parses strictly (see the module table).
    pub fn parse(bytes: &[u8]) -> Result<Self, AtomicPayloadError> {
        let top: Top =
            serde_json::from_slice(bytes).map_err(|e| AtomicPayloadError::Json(e.to_string()))?;
        let timestamp = match top.optional.timestamp {
            None => None,
            Some(t) => {
                // Integral and inside i64: a float that round-trips through an integer.
                let whole = t as i64;
                if whole as f64 != t {
                    return Err(AtomicPayloadError::FractionalTimestamp);
                }
                Some(whole)
            }
        };
        if top.critical.kind != ATOMIC_SIGNATURE_TYPE {
            return Err(AtomicPayloadError::WrongType(top.critical.kind));
        }
        let digest = top.critical.image.digest;
        if !valid_digest(&digest) {
            return Err(AtomicPayloadError::BadDigest(digest));
        }
        Ok(Self {
            manifest_digest: digest,
            docker_reference: top.critical.identity.docker_reference,
            creator: top.optional.creator,
            timestamp,
        })
    }
}

/// go-digest's `Parse`: a registered algorithm and its encoded length in lowercase hex.
fn valid_digest(text: &str) -> bool {
    let Some((algorithm, hex)) = text.split_once(':') else {
        return false;
    };
    let len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Why a manifest cannot be matched against a signed digest at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestDigestError {
    /// A docker schema 1 manifest with JWS signatures: its digest is that of the manifest
    /// with the signatures stripped (libtrust), which cfsgate does not compute.
    #[error("the manifest is a signed docker schema 1 manifest: its digest (JWS signatures stripped) is not computed by cfsgate, so no signature can match it")]
    SignedSchema1,
}

/// containers/image's `manifest.MatchesDigest`: whether `signed` names the sha256 of the
/// manifest (`digest` = sha256 of its exact bytes).
pub fn manifest_matches(
    manifest: &[u8],
    digest: &ContentSha256,
    signed: &str,
) -> Result<bool, ManifestDigestError> {
    if is_signed_schema1(manifest) {
        return Err(ManifestDigestError::SignedSchema1);
    }
    Ok(signed == digest.to_string())
}

/// containers/image's `GuessMIMEType` = signed schema 1: no recognised `mediaType`,
/// `schemaVersion` 1, and a `signatures` member that is not null.
fn is_signed_schema1(manifest: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Meta {
        #[serde(rename = "mediaType", default)]
        media_type: Option<serde_json::Value>,
        #[serde(rename = "schemaVersion", default)]
        schema_version: Option<serde_json::Value>,
        #[serde(default)]
        signatures: Option<serde_json::Value>,
    }
    const RECOGNISED: [&str; 4] = [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ];
    let Ok(meta) = serde_json::from_slice::<Meta>(manifest) else {
        return false;
    };
    let recognised = meta
        .media_type
        .as_ref()
        .and_then(|m| m.as_str())
        .is_some_and(|m| RECOGNISED.contains(&m));
    let schema1 = meta.schema_version.as_ref().and_then(|v| v.as_i64()) == Some(1);
    let signed = meta.signatures.is_some_and(|s| !s.is_null());
    !recognised && schema1 && signed
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:20bf21ed457b390829cdbeec8795a7bea1626991fda603e0d01b4e7f60427e55";

    fn payload(critical: &str, optional: &str) -> Vec<u8> {
        format!(r#"{{"critical":{critical},"optional":{optional}}}"#).into_bytes()
    }

    fn critical(kind: &str, digest: &str, reference: &str) -> String {
        format!(
            r#"{{"type":"{kind}","image":{{"docker-manifest-digest":"{digest}"}},"identity":{{"docker-reference":"{reference}"}}}}"#
        )
    }

    #[test]
    fn a_valid_payload_parses_with_its_optional_fields() {
        let p = AtomicPayload::parse(&payload(
            &critical(ATOMIC_SIGNATURE_TYPE, DIGEST, "testing/manifest:latest"),
            r#"{"creator":"atomic 0.1","timestamp":1458239713,"other":[1,{"x":1}]}"#,
        ))
        .unwrap();
        assert_eq!(p.manifest_digest, DIGEST);
        assert_eq!(p.docker_reference, "testing/manifest:latest");
        assert_eq!(p.creator.as_deref(), Some("atomic 0.1"));
        assert_eq!(p.timestamp, Some(1458239713));
        let p = AtomicPayload::parse(&payload(
            &critical(ATOMIC_SIGNATURE_TYPE, DIGEST, "x"),
            "{}",
        ))
        .unwrap();
        assert_eq!((p.creator, p.timestamp), (None, None));
    }

    #[test]
    fn anything_else_is_refused() {
        let good = critical(ATOMIC_SIGNATURE_TYPE, DIGEST, "x");
        let refused: Vec<Vec<u8>> = vec![
            br#"{"critical":{}}"#.to_vec(),
            format!(r#"{{"critical":{good}}}"#).into_bytes(),
            payload(&good, "null"),
            payload(&good, "[]"),
            payload(&good, r#"{"a":1,"a":2}"#),
            payload(&good, r#"{"creator":1}"#),
            payload(&good, r#"{"timestamp":"1"}"#),
            payload(&good, r#"{"timestamp":1.5}"#),
            format!(r#"{{"critical":{good},"optional":{{}},"extra":1}}"#).into_bytes(),
            format!(r#"{{"critical":{good},"critical":{good},"optional":{{}}}}"#).into_bytes(),
            format!(r#"{{"critical":{good},"optional":{{}}}} x"#).into_bytes(),
            payload(
                &critical("cosign container image signature", DIGEST, "x"),
                "{}",
            ),
            payload(&critical(ATOMIC_SIGNATURE_TYPE, "sha256:AB", "x"), "{}"),
            payload(
                &critical(ATOMIC_SIGNATURE_TYPE, &DIGEST.to_uppercase(), "x"),
                "{}",
            ),
            payload(&critical(ATOMIC_SIGNATURE_TYPE, "md5:00", "x"), "{}"),
            payload(
                r#"{"type":"atomic container signature","image":{"docker-manifest-digest":"sha256:00"},"identity":{"docker-reference":"x"},"more":1}"#,
                "{}",
            ),
            b"This is not JSON\n".to_vec(),
        ];
        for bytes in refused {
            assert!(
                AtomicPayload::parse(&bytes).is_err(),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }

    #[test]
    fn manifest_digest_is_sha256_of_the_exact_bytes_and_signed_schema1_cannot_match() {
        let manifest =
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
        let digest = crate::verify::sha256_of(manifest);
        assert_eq!(
            manifest_matches(manifest, &digest, &digest.to_string()),
            Ok(true)
        );
        let sha512 = format!("sha512:{}", "0".repeat(128));
        assert_eq!(manifest_matches(manifest, &digest, &sha512), Ok(false));
        let schema1 = br#"{"schemaVersion":1,"name":"x","signatures":1}"#;
        let digest = crate::verify::sha256_of(schema1);
        assert!(manifest_matches(schema1, &digest, &digest.to_string()).is_err());
        let unsigned = br#"{"schemaVersion":1,"name":"x"}"#;
        let digest = crate::verify::sha256_of(unsigned);
        assert_eq!(
            manifest_matches(unsigned, &digest, &digest.to_string()),
            Ok(true)
        );
    }
}
