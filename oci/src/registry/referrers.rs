//! OCI 1.1 referrers: artifacts (a sigstore bundle) attached to a manifest by a `subject`, pushed
//! and listed through the referrers API, with the referrers tag schema as the fallback for
//! registries without it (distribution 2.8 answers 404 to `/v2/NAME/referrers/DIGEST`).
//!
//! | step | what |
//! |---|---|
//! | push | the artifact blob and the empty config `{}` (`application/vnd.oci.empty.v1+json`), then an image manifest with `artifactType`, one layer (the blob) and `subject` (the signed manifest's descriptor), PUT by its digest |
//! | fallback push | when `GET /v2/NAME/referrers/DIGEST` is absent: the image index tagged `sha256-<hex>` (created when missing) gains the manifest's descriptor (with `artifactType` and annotations) and is PUT back |
//! | list | the referrers API's index, else the `sha256-<hex>` tag's index; descriptors of another `artifactType` are skipped (a registry may ignore the filter) |
//! | fetch | each listed manifest by its digest (bytes checked), its `subject` must be the manifest asked about and its `artifactType` the one asked for, its one layer read by digest under a size limit |
//!
//! Whoever can push to the repository can list anything in the fallback tag: listing proves
//! nothing, the artifacts must be verified (signatures) by the caller. Two signers updating
//! the fallback tag at the same moment can lose one descriptor (the registry has no
//! compare-and-swap); the artifact manifest itself stays, and signing again re-adds it.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::digest::BlobDigest;
use crate::registry::client::RegistryClient;
use crate::registry::error::RegistryError;
use crate::resolve::{MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST};

/// Media type of the empty config of an artifact manifest.
pub const MEDIA_OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The empty config's bytes.
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// Largest referrers index read (API answer or fallback tag): thousands of descriptors.
pub const MAX_REFERRERS_INDEX_BYTES: u64 = 4 << 20;
/// Largest artifact manifest read: one config, one layer, a subject and annotations.
pub const MAX_ARTIFACT_MANIFEST_BYTES: u64 = 64 << 10;
/// Most referrers of the wanted type fetched for one manifest.
pub const MAX_REFERRERS: usize = 64;

/// The manifest an artifact refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// The subject manifest's digest.
    pub digest: BlobDigest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What [`push_referrer`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedReferrer {
    /// The artifact manifest's digest.
    pub manifest: BlobDigest,
    /// The fallback tag updated (`sha256-<hex>`), when the registry has no referrers API.
    pub fallback_tag: Option<String>,
}

/// One artifact read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referrer {
    /// The artifact manifest's digest.
    pub manifest: BlobDigest,
    /// Its one layer's bytes (checked against the layer's digest).
    pub blob: Vec<u8>,
    /// Found through the referrers API (`false`: the fallback tag).
    pub via_api: bool,
}

/// The referrers tag schema's tag for `digest`: `sha256-<hex>`.
pub fn fallback_tag(digest: &BlobDigest) -> String {
    format!("sha256-{}", digest.hex())
}

fn protocol(what: &'static str, url: String, reason: String) -> RegistryError {
    RegistryError::Protocol { what, url, reason }
}

/// Push `blob` (of `blob_media_type`) as an artifact of `artifact_type` referring to `subject`.
pub fn push_referrer(
    client: &RegistryClient,
    repository: &str,
    subject: &Subject,
    artifact_type: &str,
    blob: &[u8],
    blob_media_type: &str,
    annotations: &BTreeMap<String, String>,
) -> Result<PushedReferrer, RegistryError> {
    let layer = client.put_blob(repository, blob)?;
    let config = client.put_blob(repository, EMPTY_CONFIG)?;
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": MEDIA_OCI_EMPTY, "digest": config.to_string(), "size": EMPTY_CONFIG.len()},
        "layers": [{"mediaType": blob_media_type, "digest": layer.to_string(), "size": blob.len()}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest.to_string(), "size": subject.size},
    });
    if !annotations.is_empty() {
        manifest["annotations"] = json!(annotations);
    }
    let bytes = serde_json::to_vec(&manifest)
        .map_err(|e| protocol("artifact manifest", client.base_url().into(), e.to_string()))?;
    let digest = BlobDigest::of(&bytes);
    client.put_manifest(repository, &digest.to_string(), MEDIA_OCI_MANIFEST, &bytes)?;
    // A registry with the API indexes the subject itself; without it, the tag schema.
    if client
        .get_referrers(repository, &subject.digest, None, MAX_REFERRERS_INDEX_BYTES)?
        .is_some()
    {
        return Ok(PushedReferrer {
            manifest: digest,
            fallback_tag: None,
        });
    }
    let tag = fallback_tag(&subject.digest);
    let mut index = match client.get_manifest(repository, &tag, None, MAX_REFERRERS_INDEX_BYTES)? {
        Some(found) => parse_index(&found.bytes, &format!("{repository}:{tag}"))?,
        None => json!({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": []}),
    };
    let entry = {
        let mut d = json!({
            "mediaType": MEDIA_OCI_MANIFEST,
            "digest": digest.to_string(),
            "size": bytes.len(),
            "artifactType": artifact_type,
        });
        if !annotations.is_empty() {
            d["annotations"] = json!(annotations);
        }
        d
    };
    let manifests = index["manifests"]
        .as_array_mut()
        .ok_or_else(|| protocol("referrers tag", tag.clone(), "no manifests array".into()))?;
    if !manifests
        .iter()
        .any(|m| m["digest"] == json!(digest.to_string()))
    {
        manifests.push(entry);
        let bytes = serde_json::to_vec(&index)
            .map_err(|e| protocol("referrers tag", tag.clone(), e.to_string()))?;
        client.put_manifest(repository, &tag, MEDIA_OCI_INDEX, &bytes)?;
    }
    Ok(PushedReferrer {
        manifest: digest,
        fallback_tag: Some(tag),
    })
}

fn parse_index(bytes: &[u8], what: &str) -> Result<Value, RegistryError> {
    super::wire::parse_referrers_index(bytes)
        .map_err(|reason| protocol("referrers index", what.into(), reason))
}

/// The artifacts of `artifact_type` referring to `subject` (see the module table), each with
/// its one layer's bytes (at most `blob_limit` of them).
pub fn fetch_referrers(
    client: &RegistryClient,
    repository: &str,
    subject: &BlobDigest,
    artifact_type: &str,
    blob_limit: u64,
) -> Result<Vec<Referrer>, RegistryError> {
    let (index, via_api) = match client.get_referrers(
        repository,
        subject,
        Some(artifact_type),
        MAX_REFERRERS_INDEX_BYTES,
    )? {
        Some(bytes) => (parse_index(&bytes, "referrers API answer")?, true),
        None => {
            let tag = fallback_tag(subject);
            match client.get_manifest(repository, &tag, None, MAX_REFERRERS_INDEX_BYTES)? {
                Some(found) => (parse_index(&found.bytes, &tag)?, false),
                None => return Ok(Vec::new()),
            }
        }
    };
    let mut out = Vec::new();
    let listed = index["manifests"].as_array().into_iter().flatten();
    for descriptor in listed.filter(|d| d["artifactType"] == artifact_type) {
        if out.len() == MAX_REFERRERS {
            break;
        }
        // Anyone who can push can list junk here: a listed artifact that is not what it must
        // be is skipped (it cannot hide the others); the registry failing is an error.
        match fetch_one(
            client,
            repository,
            subject,
            artifact_type,
            descriptor,
            blob_limit,
        ) {
            Ok(Some(mut referrer)) => {
                referrer.via_api = via_api;
                out.push(referrer);
            }
            Ok(None)
            | Err(
                RegistryError::Protocol { .. }
                | RegistryError::Oci(_)
                | RegistryError::DigestMismatch { .. }
                | RegistryError::TooLarge { .. }
                | RegistryError::BadLength { .. },
            ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// One listed artifact: `None` when its manifest is gone.
fn fetch_one(
    client: &RegistryClient,
    repository: &str,
    subject: &BlobDigest,
    artifact_type: &str,
    descriptor: &Value,
    blob_limit: u64,
) -> Result<Option<Referrer>, RegistryError> {
    let digest = BlobDigest::parse(descriptor["digest"].as_str().unwrap_or_default())?;
    let Some(found) = client.get_manifest(
        repository,
        &digest.to_string(),
        Some(&digest),
        MAX_ARTIFACT_MANIFEST_BYTES,
    )?
    else {
        return Ok(None);
    };
    let what = format!("{repository}@{digest}");
    let manifest: Value = serde_json::from_slice(&found.bytes)
        .map_err(|e| protocol("artifact manifest", what.clone(), e.to_string()))?;
    let bad = |reason: &str| protocol("artifact manifest", what.clone(), reason.into());
    if manifest["subject"]["digest"] != json!(subject.to_string()) {
        return Err(bad("its subject is not the manifest it is listed for"));
    }
    if manifest["artifactType"] != artifact_type {
        return Err(bad("its artifactType is not the one listed"));
    }
    let [layer] = manifest["layers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    else {
        return Err(bad("not exactly one layer"));
    };
    let layer_digest = BlobDigest::parse(layer["digest"].as_str().unwrap_or_default())?;
    let size = layer["size"]
        .as_u64()
        .ok_or_else(|| bad("layer size missing"))?;
    let blob =
        client.get_blob_bytes(repository, &layer_digest, size, blob_limit, "referrer blob")?;
    Ok(Some(Referrer {
        manifest: digest,
        blob,
        via_api: false,
    }))
}
