//! The composefs root of an image: which composefs image a container of it is mounted on, and
//! why that image is the one the signed manifest describes.
//!
//! | the image's config | with `store` (the runtime gate) | without (`cfsgate verify`) |
//! |---|---|---|
//! | seal label, `images/<seal>` in the repository | the stored image hashes (fs-verity) to the seal | the same |
//! | seal label, not stored | built from the verified layers, checked against the seal (under each convention: cfsgate's mkcomposefs or composefs-rs's), stored | rebuilt, compared with the seal the same way |
//! | no seal label, the gate's keyed record of an earlier build ([`crate::built`]) | the recorded `images/<digest>`, hashed (fs-verity) to its name | nothing is built |
//! | no seal label, no record | built from the verified layers, stored and recorded | nothing is built |
//!
//! A seal label, when present, must match: a mismatch refuses, whatever the policy's
//! requirements. Without a label the root is the image built from the layers: the signed
//! manifest names the config by digest and the config every layer by diff_id, and every layer
//! is checked against it while it is applied, so the image built is what was signed. Once built,
//! the gate records it under the verified config digest with a MAC only it can make (the
//! repository's writers cannot forge one: [`crate::built`]), so the next start mounts the stored
//! image; without that record (another boot, another key) it is built again.
//!
//! [`cfsgate_annotations`] finds `io.cfsgate.*` annotations in a manifest: an image must not
//! name what the gate should judge (podman 4.3 copies a manifest's annotations into the
//! runtime spec), so such an image is refused in every mode.

use std::path::Path;

use cfsgate_image::fsverity::digest_bytes;
use cfsgate_image::store::{Repository, StoreError};
use cfsgate_image::FsVeritySha256;
use cfsgate_oci::seal::SealError;
use cfsgate_oci::{Convention, ImportError, NoProgress, OciError, ResolvedImage};

use crate::built::{BuiltImage, BuiltKey};
use crate::loaded::LoadedImage;
use crate::seal::{SealFailure, SealOk, SealSource};

/// The annotation prefix reserved for what the gate is told: never accepted from an image.
pub const GATE_ANNOTATION_PREFIX: &str = "io.cfsgate.";

/// What to do for one image.
#[derive(Debug, Clone, Copy)]
pub struct RootRequest<'a> {
    /// The repository that may hold (and, with `store`, receives) the composefs image.
    pub repo: Option<&'a Path>,
    /// Build the image into `repo` when it is not there (the gate: the decision then always
    /// names the image to mount).
    pub store: bool,
    /// A `composefs` requirement with `sealed`: no label is a failure.
    pub require_seal: bool,
    /// With `store`: the gate's key file for its records of images built from unsealed images
    /// ([`crate::built`]); `None`: an unsealed image is built at every start.
    pub built_key: Option<&'a Path>,
}

/// The composefs root of `image` (see the module table). `Ok(None)`: nothing was asked for and
/// the image carries no seal to check (or its config cannot be read: then no seal is known to
/// be present, and only a build would need it).
pub fn image_root(
    image: &LoadedImage,
    req: RootRequest<'_>,
) -> Result<Option<SealOk>, SealFailure> {
    let lenient = !req.require_seal && !req.store;
    // The resolution made when the image was loaded, else (a `dir:` image, or a config that
    // could not be read then) a fresh one, which reports why.
    let fresh;
    let resolved = match &image.resolved {
        Some(resolved) => resolved,
        None => {
            fresh = match cfsgate_oci::resolve(&image.oci_reference) {
                Ok(resolved) => resolved,
                Err(_) if lenient => return Ok(None),
                Err(e @ (OciError::DigestMismatch { .. } | OciError::SizeMismatch { .. })) => {
                    return Err(SealFailure::ConfigMismatch(e.to_string()))
                }
                Err(e) => return Err(SealFailure::ConfigUnreadable(e.to_string())),
            };
            &fresh
        }
    };
    if resolved.manifest_digest.0 != image.manifest_digest {
        return Err(SealFailure::ManifestChanged {
            expected: image.manifest_digest,
            actual: resolved.manifest_digest.0,
        });
    }
    let config_digest = resolved.config_digest.0;
    let label = match cfsgate_oci::seal::read_seal(resolved) {
        Ok(label) => label,
        Err(e) => return Err(SealFailure::BadLabel(e.to_string())),
    };
    let ok = |composefs_digest, source, sealed| {
        Ok(Some(SealOk {
            composefs_digest,
            config_digest,
            source,
            sealed,
        }))
    };
    let Some(sealed) = label else {
        if req.require_seal {
            return Err(SealFailure::Unsealed);
        }
        if !req.store {
            return Ok(None);
        }
        let key = req
            .built_key
            .and_then(|path| BuiltKey::load_or_create(path).ok());
        if let (Some(key), Some(repo)) = (&key, req.repo) {
            if let Some(found) = recorded_build(repo, key, resolved)? {
                return ok(found.digest, SealSource::Recorded(found.convention), false);
            }
        }
        let (digest, convention) = build_into(req.repo, resolved)?;
        if let (Some(key), Some(repo)) = (&key, req.repo) {
            // Without a record the next start builds again: not a reason to refuse this one.
            if let Ok(repository) = Repository::open(repo) {
                let built = BuiltImage { digest, convention };
                let _ = crate::built::record(&repository, key, resolved, built);
            }
        }
        return ok(digest, SealSource::Built(convention), false);
    };
    // The gate creates the repository if needed (parallel first starts race to create it: a
    // directory without its meta.json yet is one being created); a reader opens what exists.
    let repository = match req.repo {
        Some(repo) if req.store => Some(Repository::create_or_open(repo)),
        // No stat first: a missing `meta.json` of a missing directory is no repository.
        Some(repo) => match Repository::open(repo) {
            Err(StoreError::NotARepository { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && !repo.exists() =>
            {
                None
            }
            other => Some(other),
        },
        None => None,
    };
    if let Some(repository) = repository {
        let repository =
            repository.map_err(|e| SealFailure::RepositoryUnreadable(e.to_string()))?;
        let stored = repository
            .read_image_if_stored(&sealed)
            .map_err(|e| SealFailure::RepositoryUnreadable(e.to_string()))?;
        if let Some(bytes) = stored {
            let actual = digest_bytes(&bytes);
            if actual != sealed {
                return Err(SealFailure::StoredImageAltered { sealed, actual });
            }
            return ok(sealed, SealSource::Stored, true);
        }
    }
    if req.store {
        let (digest, convention) = build_into(req.repo, resolved)?;
        if digest != sealed {
            return Err(SealFailure::Mismatch {
                sealed,
                actual: digest,
            });
        }
        return ok(digest, SealSource::Built(convention), true);
    }
    let built = cfsgate_oci::build_image(resolved, &cfsgate_oci::NullSink, &NoProgress)
        .map_err(|e| SealFailure::LayerInvalid(e.to_string()))?;
    match cfsgate_oci::check_seal_built(resolved, &built) {
        Ok(matched) => ok(sealed, SealSource::Rebuilt(matched.convention), true),
        Err(SealError::Mismatch { computed, .. }) => Err(SealFailure::Mismatch {
            sealed,
            actual: computed,
        }),
        Err(e) => Err(SealFailure::BadLabel(e.to_string())),
    }
}

/// The image the gate's believed record names for `resolved`'s verified layers, when it is
/// stored; refused when the stored image no longer hashes to its name.
fn recorded_build(
    repo: &Path,
    key: &BuiltKey,
    resolved: &ResolvedImage,
) -> Result<Option<BuiltImage>, SealFailure> {
    let repository = Repository::create_or_open(repo)
        .map_err(|e| SealFailure::RepositoryUnreadable(e.to_string()))?;
    let Some(found) = crate::built::find(&repository, key, resolved) else {
        return Ok(None);
    };
    let Some(bytes) = repository
        .read_image_if_stored(&found.digest)
        .map_err(|e| SealFailure::RepositoryUnreadable(e.to_string()))?
    else {
        return Ok(None);
    };
    let actual = digest_bytes(&bytes);
    if actual != found.digest {
        return Err(SealFailure::StoredImageAltered {
            sealed: found.digest,
            actual,
        });
    }
    Ok(Some(found))
}

/// Import `resolved` (every layer checked while applied) into the repository; the digest of the
/// composefs image now stored and the convention it was made under (a seal made by composefs-rs
/// names that convention's image, which is what is stored). A seal label that matches no
/// convention refuses before the image is stored.
fn build_into(
    repo: Option<&Path>,
    resolved: &ResolvedImage,
) -> Result<(FsVeritySha256, Convention), SealFailure> {
    let repo = repo.ok_or_else(|| {
        SealFailure::Build("no repository to store the composefs image in".into())
    })?;
    let repository = Repository::create_or_open(repo)
        .map_err(|e| SealFailure::RepositoryUnreadable(e.to_string()))?;
    match cfsgate_oci::import_image(&repository, resolved, None, &NoProgress) {
        Ok(report) => Ok((report.image_digest, report.convention)),
        Err(ImportError::Seal(SealError::Mismatch {
            label, computed, ..
        })) => Err(SealFailure::Mismatch {
            sealed: label,
            actual: computed,
        }),
        Err(ImportError::Oci(e)) => Err(SealFailure::LayerInvalid(e.to_string())),
        Err(e) => Err(SealFailure::Build(e.to_string())),
    }
}

/// [`image_root`] as a requirement's result: `Ok(summary)` or `Err(reason)`, and the root.
pub fn root_outcome(
    image: &LoadedImage,
    req: RootRequest<'_>,
) -> (Result<String, String>, Option<SealOk>) {
    match image_root(image, req) {
        Ok(Some(root)) => (Ok(describe_root(&root)), Some(root)),
        Ok(None) => (Ok("no seal to check".into()), None),
        Err(failure) => (Err(failure.to_string()), None),
    }
}

/// The composefs root in words (for the decision's requirements and explanation).
pub fn describe_root(root: &SealOk) -> String {
    let how = match root.source {
        SealSource::Stored => "stored image hashes to the seal".to_string(),
        SealSource::Recorded(convention) => format!(
            "stored when first built from these verified layers, {convention} convention; the stored image hashes to it"
        ),
        SealSource::Rebuilt(convention) => {
            format!("rebuilt from the layers, {convention} convention")
        }
        SealSource::Built(convention) => {
            format!("built from the verified layers and stored, {convention} convention")
        }
    };
    if root.sealed {
        format!("sealed; composefs image {} ({how})", root.composefs_digest)
    } else {
        format!(
            "not sealed; composefs image {} ({how}: the signed manifest names every layer)",
            root.composefs_digest
        )
    }
}

/// Why an image whose manifest carries `io.cfsgate.*` annotations is refused, if it does.
pub fn hostile_reason(manifest: &[u8]) -> Option<String> {
    let found = cfsgate_annotations(manifest);
    (!found.is_empty()).then(|| {
        format!(
            "the image's own manifest carries the annotation(s) {}: an image may not name what the gate judges (podman 4.3 copies them into the runtime spec); refused in every mode",
            found.join(", ")
        )
    })
}

/// The `io.cfsgate.*` annotation keys of a manifest (top level, and of each entry of an index);
/// empty when there are none or the bytes are no JSON object (other links judge those).
pub fn cfsgate_annotations(manifest: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(manifest) else {
        return Vec::new();
    };
    let keys = |v: &serde_json::Value| -> Vec<String> {
        v.get("annotations")
            .and_then(|a| a.as_object())
            .map(|a| {
                a.keys()
                    .filter(|k| k.starts_with(GATE_ANNOTATION_PREFIX))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut found = keys(&value);
    if let Some(entries) = value.get("manifests").and_then(|m| m.as_array()) {
        for entry in entries {
            found.extend(keys(entry));
        }
    }
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_gate_annotations_at_either_level() {
        let m = br#"{"annotations":{"io.cfsgate.image":"dir:/x","org.x":"y"}}"#;
        assert_eq!(cfsgate_annotations(m), vec!["io.cfsgate.image"]);
        let i = br#"{"manifests":[{"annotations":{"io.cfsgate.reference":"a/b"}}]}"#;
        assert_eq!(cfsgate_annotations(i), vec!["io.cfsgate.reference"]);
        assert!(cfsgate_annotations(br#"{"annotations":{"io.cfsgatex":"1"}}"#).is_empty());
        assert!(cfsgate_annotations(b"not json").is_empty());
    }
}
