//! The `containers-storage:` transport: images where podman (and CRI-O, buildah, skopeo)
//! keep them, read-only, checked on raw bytes before use.
//!
//! | module | what it owns |
//! |---|---|
//! | [`reference`](mod@reference) | `containers-storage:[[DRIVER@]GRAPHROOT[+RUNROOT]]NAME[:TAG\|@DIGEST]` |
//! | [`conf`] | storage.conf(5): driver, graph root, run root |
//! | [`store`] | `images.json`, `layers.json`, big data (manifests, config, signatures), locks |
//! | [`containers`] | the container a runtime spec's root belongs to, and its image, from the engine's records |
//! | [`tarsplit`] | each layer's tar rebuilt byte for byte from its tar-split and its files |
//!
//! The chain is the one of every other transport: the manifest is read from big data and
//! hashed to the digest the image record (or the reference) names; the config is read by the
//! digest the manifest names; each layer's tar is rebuilt from the layer's tar-split and
//! files and its sha256 compared to the config's diff_id, both before the layer is applied
//! and again on the bytes applied (see [`crate::apply`]). The compressed blobs a registry
//! served are gone, so the manifest's layer digests cannot be checked; the diff_ids, covered
//! by the config digest, which the manifest covers, stand in for them. A file edited in the
//! store after the pull therefore changes a diff_id and the image is refused.
//!
//! Layers without a tar-split (made by `podman build` with some drivers, or partial
//! zstd:chunked pulls without one) are refused: without the exact headers the diff_id cannot
//! be recomputed.

pub mod conf;
pub mod containers;
pub mod reference;
pub mod store;
pub mod tarsplit;

pub use conf::{Driver, StorageConf, StoreLocation};
pub use reference::{ImageSpec, NameSelector, StorageRef, PREFIX};
pub use store::{big_data_file_name, StorageImage, StoredSignature};

use crate::digest::BlobDigest;
use crate::error::OciError;
use crate::layout::{ImageSource, MAX_INDEX_SIZE, MAX_MANIFEST_SIZE};
use crate::resolve::{Platform, ResolvedImage};

/// Whether `reference` names the containers-storage transport.
pub fn is_storage_reference(reference: &str) -> bool {
    reference.starts_with(PREFIX)
}

/// Resolve a `containers-storage:` reference for `platform`.
pub fn resolve(reference: &str, platform: &Platform) -> Result<ResolvedImage, OciError> {
    let parsed = StorageRef::parse(reference)?;
    resolve_storage(&parsed, platform)
}

/// Resolve a parsed reference: open the image, read its manifest, resolve as every
/// transport does, then check the store's layer chain against the config.
pub fn resolve_storage(
    reference: &StorageRef,
    platform: &Platform,
) -> Result<ResolvedImage, OciError> {
    let image = StorageImage::open(reference)?;
    resolve_opened(image, &reference.image, platform)
}

/// [`resolve_storage`] of an image already opened.
pub fn resolve_opened(
    image: StorageImage,
    selector: &ImageSpec,
    platform: &Platform,
) -> Result<ResolvedImage, OciError> {
    let (digest, bytes) = image.manifest(selector, MAX_MANIFEST_SIZE)?;
    let name = image.canonical.to_string();
    let source = ImageSource::from_storage(image)?;
    let resolved = crate::resolve::resolve_from(source, digest, bytes, None, platform, &name)?;
    check_layer_chain(&resolved)?;
    Ok(resolved)
}

/// The store's layers must be as many as the manifest's, each recording the config's diff_id
/// (the recomputed digest is what decides; this catches a mixed-up store early, by name).
fn check_layer_chain(image: &ResolvedImage) -> Result<(), OciError> {
    let Some(storage) = image.source.storage() else {
        return Ok(());
    };
    let path = storage.location.graph_root.display().to_string();
    if storage.layers.len() != image.layers.len() {
        return Err(OciError::Storage {
            path,
            reason: format!(
                "image {} has {} layers in the store but its manifest lists {}",
                storage.record.id,
                storage.layers.len(),
                image.layers.len()
            ),
        });
    }
    for (index, (stored, layer)) in storage.layers.iter().zip(&image.layers).enumerate() {
        if let Some(recorded) = &stored.diff_digest {
            if BlobDigest::parse(recorded).ok() != Some(layer.diff_id) {
                return Err(OciError::Storage {
                    path,
                    reason: format!(
                        "layer {index} ({}) records diff {recorded}, the config's diff_id is {}",
                        stored.id, layer.diff_id
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The signatures stored with a resolved containers-storage image's manifest.
pub fn signatures(image: &ResolvedImage) -> Result<Vec<StoredSignature>, OciError> {
    match image.source.storage() {
        Some(storage) => storage.signatures(&image.manifest_digest),
        None => Ok(Vec::new()),
    }
}

/// The manifest lists (image indexes) stored with a resolved containers-storage image that
/// name its manifest by digest: containers/image keeps the list an image was pulled through as
/// big data `manifest-sha256:<list hex>` beside the platform's manifest. Each is read under
/// [`MAX_INDEX_SIZE`], hashed to its key's digest and parsed; one that fails any of that, or
/// lists no descriptor with the manifest's digest, is left out (it vouches for nothing).
pub fn manifest_lists(image: &ResolvedImage) -> Vec<BlobDigest> {
    let Some(storage) = image.source.storage() else {
        return Vec::new();
    };
    let own = format!("manifest-{}", image.manifest_digest);
    let wanted = image.manifest_digest.to_string();
    storage
        .record
        .big_data_names
        .iter()
        .filter(|key| key.as_str() != own)
        .filter_map(|key| {
            let digest = BlobDigest::parse(key.strip_prefix("manifest-")?).ok()?;
            let bytes = storage.read_big_data(key, MAX_INDEX_SIZE).ok()?;
            if BlobDigest::of(&bytes) != digest {
                return None;
            }
            let index: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
            let lists = index
                .get("manifests")?
                .as_array()?
                .iter()
                .any(|d| d.get("digest").and_then(|x| x.as_str()) == Some(wanted.as_str()));
            lists.then_some(digest)
        })
        .collect()
}

/// Rebuild layer `index`'s tar and check its sha256 against the config's diff_id.
pub fn verify_layer(
    storage: &StorageImage,
    index: usize,
    layer: &crate::resolve::Layer,
) -> Result<(), OciError> {
    let mut reader = storage.layer_stream(index)?;
    let mut hasher = crate::digest::BlobHasher::default();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut reader, &mut buf).map_err(|e| OciError::Layer {
            layer: index,
            digest: layer.digest,
            reason: format!("rebuilding the layer tar from containers-storage: {e}"),
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let (actual, _) = hasher.finish();
    if actual != layer.diff_id {
        return Err(OciError::DiffIdMismatch {
            layer: index,
            digest: layer.digest,
            expected: layer.diff_id,
            actual,
        });
    }
    Ok(())
}
