//! The containers/image "sigstore" signature wrapper: how a cosign signature is stored as a
//! `signature-N` file of a skopeo `dir:` image (and in `sigstore` lookaside storage).
//!
//! | bytes | content |
//! |---|---|
//! | 0..15 | the prefix `\x00sigstore-json\n` ([`SIGSTORE_PREFIX`]) |
//! | 15.. | a JSON object, below |
//!
//! | JSON field | type | meaning |
//! |---|---|---|
//! | `mimeType` | string | the payload's media type; a signature is [`SIMPLE_SIGNING_MIME_TYPE`] |
//! | `payload` | string, standard base64 | the exact bytes that were signed |
//! | `annotations` | object of strings | [`SIGNATURE_ANNOTATION`] (base64 signature, required), optionally [`BUNDLE_ANNOTATION`], [`CERTIFICATE_ANNOTATION`], [`CHAIN_ANNOTATION`] and others |
//!
//! Parsing is strict: all three fields are required, no other field is accepted, a key may
//! not repeat. A file without the prefix is another kind of signature (containers/image's GPG
//! "simple signing" signatures are bare OpenPGP messages) and is reported as such.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The bytes that open every containers/image sigstore signature.
pub const SIGSTORE_PREFIX: &[u8] = b"\x00sigstore-json\n";
/// Media type of a cosign simple-signing payload.
pub const SIMPLE_SIGNING_MIME_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Annotation holding the base64 signature over the payload bytes.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Annotation holding a Rekor bundle (JSON), checked by [`crate::rekor`] when the policy
/// names Rekor keys.
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// Annotation holding the signing certificate (PEM) of a keyless or PKI signature, checked
/// by [`crate::keyless`] under `fulcio` / `pki` requirements.
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// Annotation holding the certificate chain (PEM): intermediates, then the root.
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";

/// Why bytes are not a well-formed sigstore signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigstoreParseError {
    /// The bytes lack the sigstore-json prefix (a GPG signature, say).
    #[error("{source_name}: not a sigstore signature (no `\\x00sigstore-json\\n` prefix)")]
    NotSigstore {
        /// Where the bytes came from.
        source_name: String,
    },
    /// The JSON after the prefix is malformed.
    #[error("{source_name}: malformed sigstore signature JSON: {reason}")]
    Json {
        /// Where the bytes came from.
        source_name: String,
        /// The parser's message.
        reason: String,
    },
    /// A base64 field does not decode.
    #[error("{source_name}: sigstore field `{field}` is not valid base64: {reason}")]
    Base64 {
        /// Where the bytes came from.
        source_name: String,
        /// The field.
        field: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// The signature annotation is absent.
    #[error("{source_name}: sigstore signature lacks the `{SIGNATURE_ANNOTATION}` annotation")]
    MissingSignature {
        /// Where the bytes came from.
        source_name: String,
    },
}

/// The JSON form, field for field.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WrapperJson {
    #[serde(rename = "mimeType")]
    mime_type: String,
    payload: String,
    #[serde(deserialize_with = "unique_string_map")]
    annotations: BTreeMap<String, String>,
}

/// A JSON object of strings whose keys may not repeat (serde's maps keep the last value
/// silently; two different `signature` annotations must not be resolved by position).
fn unique_string_map<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct UniqueMap;
    impl<'de> serde::de::Visitor<'de> for UniqueMap {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of strings")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((key, value)) = map.next_entry::<String, String>()? {
                if out.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!(
                        "duplicate annotation {key:?}"
                    )));
                }
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(UniqueMap)
}

/// A parsed sigstore signature. Nothing in it is trusted until the signature has been
/// verified over [`SigstoreSignature::payload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigstoreSignature {
    /// `mimeType`, as written.
    pub mime_type: String,
    /// The decoded payload: exactly the signed bytes.
    pub payload: Vec<u8>,
    /// The decoded signature from [`SIGNATURE_ANNOTATION`].
    pub signature: Vec<u8>,
    /// All annotations as written (including the signature's base64).
    pub annotations: BTreeMap<String, String>,
}

/// `text` without CR and LF: Go's base64 decoder (what containers/image decodes the payload
/// and the signature annotation with) ignores them, and cosign wraps RSA signatures at 76
/// columns (the PKI fixture's signature is so wrapped).
fn without_line_breaks(text: &str) -> String {
    text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect()
}

/// Whether `bytes` start with the sigstore prefix (the file is meant to be one).
pub fn is_sigstore(bytes: &[u8]) -> bool {
    bytes.starts_with(SIGSTORE_PREFIX)
}

impl SigstoreSignature {
    /// A simple-signing signature over `payload`.
    pub fn new_simple_signing(payload: Vec<u8>, signature: Vec<u8>) -> Self {
        let mut annotations = BTreeMap::new();
        annotations.insert(SIGNATURE_ANNOTATION.to_string(), BASE64.encode(&signature));
        Self {
            mime_type: SIMPLE_SIGNING_MIME_TYPE.to_string(),
            payload,
            signature,
            annotations,
        }
    }

    /// Parses the bytes of a signature file; `source_name` (a path) goes into errors.
    pub fn parse(bytes: &[u8], source_name: &str) -> Result<Self, SigstoreParseError> {
        let json =
            bytes
                .strip_prefix(SIGSTORE_PREFIX)
                .ok_or_else(|| SigstoreParseError::NotSigstore {
                    source_name: source_name.to_string(),
                })?;
        let wrapper: WrapperJson =
            serde_json::from_slice(json).map_err(|e| SigstoreParseError::Json {
                source_name: source_name.to_string(),
                reason: e.to_string(),
            })?;
        let payload = BASE64
            .decode(without_line_breaks(&wrapper.payload))
            .map_err(|e| SigstoreParseError::Base64 {
                source_name: source_name.to_string(),
                field: "payload",
                reason: e.to_string(),
            })?;
        let signature_b64 = wrapper
            .annotations
            .get(SIGNATURE_ANNOTATION)
            .ok_or_else(|| SigstoreParseError::MissingSignature {
                source_name: source_name.to_string(),
            })?;
        let signature = BASE64
            .decode(without_line_breaks(signature_b64))
            .map_err(|e| SigstoreParseError::Base64 {
                source_name: source_name.to_string(),
                field: SIGNATURE_ANNOTATION,
                reason: e.to_string(),
            })?;
        Ok(Self {
            mime_type: wrapper.mime_type,
            payload,
            signature,
            annotations: wrapper.annotations,
        })
    }

    /// The file bytes: prefix + JSON (the signature annotation re-encoded from
    /// [`SigstoreSignature::signature`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut annotations = self.annotations.clone();
        annotations.insert(
            SIGNATURE_ANNOTATION.to_string(),
            BASE64.encode(&self.signature),
        );
        let wrapper = WrapperJson {
            mime_type: self.mime_type.clone(),
            payload: BASE64.encode(&self.payload),
            annotations,
        };
        let mut out = SIGSTORE_PREFIX.to_vec();
        // Serialising a struct of strings and a string map cannot fail.
        out.extend(serde_json::to_vec(&wrapper).unwrap_or_default());
        out
    }
}
