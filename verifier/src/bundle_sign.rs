//! Key-signed sigstore bundles of an image manifest, as cosign v3 attaches them (through the
//! OCI referrers of the manifest, see `cfsgate_oci::registry::referrers`), and their offline
//! verification by key.
//!
//! | part | content |
//! |---|---|
//! | `mediaType` | [`BUNDLE_V03_MEDIA_TYPE`] |
//! | `verificationMaterial` | `publicKey.hint`: the key id (hex SHA-256 of the SPKI, informational); `tlogEntries`: none (no transparency log unless one is given: cfsgate logs nothing itself) |
//! | `dsseEnvelope` | `payloadType` `application/vnd.in-toto+json`, `payload` an in-toto statement v1 whose one subject is `{name: the repository, digest: {sha256: the manifest's hex}}`, `predicateType` [`COSIGN_SIGN_PREDICATE`], `predicate` `{}`; one signature over DSSE's PAE |
//!
//! [`verify_manifest_bundle`] checks the signature by one of the given keys and that the
//! statement names the manifest's sha256. Tlog entries are not checked there (as a `.sig`
//! signature's Rekor bundle is not when a policy names no Rekor key); with Rekor keys, use
//! [`crate::bundle_verify::verify_bundle_with_keys`], which demands them. A bundle claims no
//! docker reference: what that means for `signedIdentity` is in docs/policy.md.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use cfsgate_keyring::{PrivateKey, PublicKey};

use crate::bundle::{parse_bundle, Bundle, DsseEnvelope};
use crate::bundle_verify::{
    check_signature, dsse_payload, Artifact, BundleError, VerifiedBundle, IN_TOTO_PAYLOAD_TYPE,
};

/// The bundle media type written (sigstore bundle v0.3), also the artifact type of its
/// referrer manifest and the media type of its layer.
pub const BUNDLE_V03_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// cosign's predicate type for an image signature statement.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
/// The in-toto statement type written.
pub const IN_TOTO_STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";

/// A bundle signing the manifest whose sha256 is `manifest`, named `name` (the repository).
pub fn sign_manifest_bundle(key: &PrivateKey, name: &str, manifest: &[u8; 32]) -> Vec<u8> {
    let statement = serde_json::json!({
        "_type": IN_TOTO_STATEMENT_V1,
        "subject": [{"name": name, "digest": {"sha256": hex::encode(manifest)}}],
        "predicateType": COSIGN_SIGN_PREDICATE,
        "predicate": {},
    });
    let envelope = DsseEnvelope {
        payload: statement.to_string().into_bytes(),
        payload_type: IN_TOTO_PAYLOAD_TYPE.to_string(),
        signatures: Vec::new(),
    };
    let signature = key.sign(&envelope.pae());
    let bundle = serde_json::json!({
        "mediaType": BUNDLE_V03_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": key.public_key().key_id().to_string()},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": BASE64.encode(&envelope.payload),
            "payloadType": envelope.payload_type,
            "signatures": [{"sig": BASE64.encode(&signature), "keyid": ""}],
        },
    });
    bundle.to_string().into_bytes()
}

/// Why a manifest bundle is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ManifestBundleError {
    /// The bundle cannot be parsed.
    #[error("malformed sigstore bundle: {0}")]
    Parse(#[from] crate::bundle::BundleParseError),
    /// The bundle does not verify.
    #[error("sigstore bundle: {0}")]
    Verify(#[from] BundleError),
    /// No trusted key was given to verify with.
    #[error("no trusted key given")]
    NoKey,
}

/// Parse `bytes` and verify the bundle over the manifest `manifest` (its sha256) with any one
/// of `keys` (the first that verifies; else the first key's error).
pub fn verify_manifest_bundle(
    bytes: &[u8],
    manifest: &[u8; 32],
    keys: &[PublicKey],
) -> Result<VerifiedBundle, ManifestBundleError> {
    let bundle: Bundle = parse_bundle(bytes)?;
    let mut first = None;
    for key in keys {
        match check_signature(&bundle, Artifact::Sha256(*manifest), key) {
            Ok(_) => {
                return Ok(VerifiedBundle {
                    signer: key.key_id(),
                    integrated_time: None,
                    log_indexes: Vec::new(),
                    dsse_payload: dsse_payload(&bundle),
                })
            }
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    Err(first.map_or(ManifestBundleError::NoKey, ManifestBundleError::Verify))
}

/// [`verify_manifest_bundle`] over the first of `subjects` (a sha256 and what it is, in words)
/// the bundle verifies for: the verified bundle and that subject's words. All failing: the
/// first subject's error. A multi-arch image's bundle names the index (what cosign signs for a
/// tag that resolves to one), which names the platform's manifest by digest.
pub fn verify_bundle_over<'a>(
    bytes: &[u8],
    subjects: &'a [([u8; 32], String)],
    keys: &[PublicKey],
) -> Result<(VerifiedBundle, &'a str), ManifestBundleError> {
    let mut first = None;
    for (digest, what) in subjects {
        match verify_manifest_bundle(bytes, digest, keys) {
            Ok(verified) => return Ok((verified, what)),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    Err(first.unwrap_or(ManifestBundleError::NoKey))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_bundle_verifies_for_its_manifest_and_key_only() {
        let key = PrivateKey::generate(cfsgate_keyring::KeyType::P256);
        let other = PrivateKey::generate(cfsgate_keyring::KeyType::P256);
        let manifest = [7u8; 32];
        let bytes = sign_manifest_bundle(&key, "registry.example/app", &manifest);
        let verified = verify_manifest_bundle(&bytes, &manifest, &[key.public_key()]).unwrap();
        assert_eq!(verified.signer, key.public_key().key_id());
        assert!(matches!(
            verify_manifest_bundle(&bytes, &[8u8; 32], &[key.public_key()]),
            Err(ManifestBundleError::Verify(BundleError::SubjectMismatch))
        ));
        assert!(matches!(
            verify_manifest_bundle(&bytes, &manifest, &[other.public_key()]),
            Err(ManifestBundleError::Verify(BundleError::SignatureInvalid))
        ));
        // The other key first, then the signer: any one key may sign.
        let keys = [other.public_key(), key.public_key()];
        assert!(verify_manifest_bundle(&bytes, &manifest, &keys).is_ok());
    }
}
