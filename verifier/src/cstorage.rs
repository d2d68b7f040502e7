//! Images in containers-storage (`containers-storage:…`, podman's store): the manifest and
//! the signatures stored with it (the oci crate reads both, checked on raw bytes), and the
//! identity the policy judges.
//!
//! podman never evaluates a policy when it starts a stored image; the name the image was
//! pulled and stored as is what an admin's `docker` scopes are written for. So an image
//! named `containers-storage:registry.example/app:1` is judged as the docker reference
//! `registry.example/app:1` (its `docker` scopes, signatures claiming that identity), unless
//! `--reference` names another. An image named only by its ID needs `--reference`.

use cfsgate_oci::cstorage::{ImageSpec, StorageRef};
use cfsgate_oci::Platform;
use cfsgate_policy::{DockerReference, ImageRef};

use crate::loaded::{
    classify_wrapper, EvalError, FoundSignature, ImageError, ImageTransport, LoadedImage,
};

/// Read the manifest and stored signatures of a `containers-storage:` image.
pub fn load_storage_image(image: &str) -> Result<LoadedImage, ImageError> {
    let unreadable = |reason: String| ImageError::Unreadable {
        image: image.to_string(),
        reason,
    };
    let resolved = cfsgate_oci::cstorage::resolve(image, &Platform::current())
        .map_err(|e| unreadable(e.to_string()))?;
    let storage = resolved
        .source
        .storage()
        .ok_or_else(|| unreadable("not a containers-storage image".into()))?;
    let signatures = cfsgate_oci::cstorage::signatures(&resolved)
        .map_err(|e| unreadable(e.to_string()))?
        .into_iter()
        .map(|stored| FoundSignature {
            content: classify_wrapper(&stored.bytes, &stored.source),
            source: stored.source,
        })
        .collect();
    let indexes = cfsgate_oci::cstorage::manifest_lists(&resolved)
        .into_iter()
        .map(|d| d.0)
        .collect();
    Ok(LoadedImage {
        transport: ImageTransport::ContainersStorage,
        path: storage.location.graph_root.clone(),
        oci_reference: storage.canonical.to_string(),
        manifest_digest: resolved.manifest_digest.0,
        manifest_bytes: resolved.manifest_bytes.clone(),
        signatures,
        indexes,
        resolved: Some(resolved),
    })
}

/// The image as the policy sees it: the docker reference `reference`, else the name in the
/// `containers-storage:` reference; the store's graph root is the local source.
pub fn storage_policy_ref(image: &str, reference: Option<&str>) -> Result<ImageRef, EvalError> {
    let placed = |reason: String| EvalError::PolicyIdentity {
        image: image.to_string(),
        reason,
    };
    let parsed = StorageRef::parse(image).map_err(|e| placed(e.to_string()))?;
    let name = match (reference, &parsed.image) {
        (Some(reference), _) => reference.to_string(),
        (None, ImageSpec::Named { .. }) => parsed.image.name(),
        (None, ImageSpec::Id(_)) => {
            return Err(placed(
                "an image named by its ID has no docker reference: name it with --reference".into(),
            ))
        }
    };
    let docker = DockerReference::parse_normalized(&name).map_err(|e| EvalError::BadReference {
        reference: name.clone(),
        reason: e.to_string(),
    })?;
    let location = cfsgate_oci::cstorage::StorageConf::load()
        .and_then(|conf| conf.locate(&parsed))
        .map_err(|e| placed(e.to_string()))?;
    ImageRef::oci("containers-storage", &location.graph_root)
        .and_then(|local| local.with_docker_reference(docker))
        .map_err(|e| EvalError::BadReference {
            reference: name,
            reason: e.to_string(),
        })
}
