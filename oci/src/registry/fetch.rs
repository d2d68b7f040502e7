//! An image from a registry into a local OCI image layout, every byte verified on arrival.
//!
//! [`fetch_image`] walks what `docker://HOST/NAME:TAG|@DIGEST` names: the top manifest (an
//! index is resolved to the wanted [`Platform`], nested at most [`MAX_INDEX_DEPTH`] deep), the
//! image manifest, its config and (if asked) its layers, and the cosign signature manifests
//! tagged `sha256-<hex>.sig` of the top and the platform manifest with their blobs. What it
//! writes into the layout directory:
//!
//! | path | content |
//! |---|---|
//! | `oci-layout` | `{"imageLayoutVersion":"1.0.0"}` (kept if present) |
//! | `blobs/sha256/<hex>` | each blob, written as a temporary file in that directory and renamed into place only after its size and digest matched |
//! | `index.json` | the top manifest (annotation `org.opencontainers.image.ref.name` = the tag, if any) and each signature manifest (ref name `sha256-<hex>.sig`); other entries of an existing `index.json` are kept, one with the same ref name or digest replaced |
//!
//! The layout is then an ordinary `oci:` image: resolution, import, seal checks and the
//! verifier's `.sig` reading all work on it unchanged, and re-check every digest. A blob already
//! in `blobs/sha256` with the right size is not downloaded again (it was verified before it got
//! its name, and every reader verifies it again). Layers download [`FetchOptions::jobs`] at a
//! time; the first failure stops the others and is returned; nothing of a failed blob is left.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use oci_spec::image::{ImageIndex, ImageManifest};
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{FetchedManifest, RegistryClient};
use super::error::RegistryError;
use super::reference::DockerRef;
use crate::digest::BlobDigest;
use crate::layout::{MAX_CONFIG_SIZE, MAX_INDEX_SIZE, MAX_MANIFEST_SIZE};
use crate::resolve::{
    descriptor_digest, select_child, Platform, ANNOTATION_REF_NAME, MAX_INDEX_DEPTH, MAX_LAYERS,
    MEDIA_DOCKER_LIST, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};

/// Largest signature manifest fetched (containers/image's manifest limit).
pub const MAX_SIGNATURE_MANIFEST_SIZE: u64 = 4 << 20;
/// Largest signature payload or signature config fetched (containers/image's signature limit).
pub const MAX_SIGNATURE_BLOB_SIZE: u64 = 4 << 20;
/// Most layers of a signature manifest fetched (far above any real image).
pub const MAX_SIGNATURE_LAYERS: usize = 1024;
/// `oci-layout` of a layout this module creates.
const OCI_LAYOUT_FILE: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// What to fetch.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// The platform to pick from an index.
    pub platform: Platform,
    /// Fetch the layers too (not needed to check signatures of an image stored already).
    pub layers: bool,
    /// Fetch the cosign `.sig` signature manifests.
    pub signatures: bool,
    /// Layer downloads at a time.
    pub jobs: usize,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            platform: Platform::current(),
            layers: true,
            signatures: true,
            jobs: 4,
        }
    }
}

/// Reports downloads; every method has an empty default. Called from several threads.
pub trait FetchProgress: Sync {
    /// A layer download starts (`index` in manifest order).
    fn layer_started(&self, _index: usize, _digest: &BlobDigest, _size: u64) {}
    /// `bytes` more of layer `index` arrived.
    fn layer_bytes(&self, _index: usize, _bytes: u64) {}
    /// Layer `index` is verified and stored (`downloaded` false: it was present).
    fn layer_done(&self, _index: usize, _downloaded: bool) {}
}

/// Reports nothing.
pub struct NoFetchProgress;

impl FetchProgress for NoFetchProgress {}

/// What [`fetch_image`] stored.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The layout written into.
    pub layout: PathBuf,
    /// The manifest or index the reference names.
    pub top_digest: BlobDigest,
    /// The image manifest for the platform (the top one unless that is an index).
    pub manifest_digest: BlobDigest,
    /// `oci:LAYOUT@TOP`: the image, for the oci crate and the verifier.
    pub oci_reference: String,
    /// Layers downloaded, and their bytes.
    pub layers_downloaded: u64,
    /// Blob bytes of the layers downloaded.
    pub layer_bytes_downloaded: u64,
    /// Layers that were already in the layout.
    pub layers_present: u64,
    /// Signature tags found (`sha256-<hex>.sig`).
    pub signature_tags: Vec<String>,
}

#[derive(Deserialize)]
struct SigManifest {
    config: SigDescriptor,
    #[serde(default)]
    layers: Vec<SigDescriptor>,
}

#[derive(Deserialize)]
struct SigDescriptor {
    digest: String,
    size: u64,
}

/// Fetch what `reference` names into the OCI layout at `layout` (created if missing).
pub fn fetch_image(
    client: &RegistryClient,
    reference: &DockerRef,
    layout: &Path,
    options: &FetchOptions,
    progress: &dyn FetchProgress,
) -> Result<Fetched, RegistryError> {
    let repo = reference.repository.as_str();
    prepare_layout(layout)?;
    let wanted = reference.manifest_reference();
    let top = client
        .get_manifest(repo, &wanted, reference.digest.as_ref(), MAX_INDEX_SIZE)?
        .ok_or_else(|| RegistryError::Status {
            method: "GET",
            url: format!("{}/v2/{repo}/manifests/{wanted}", client.base_url()),
            status: 404,
            message: format!("{reference} does not exist"),
        })?;
    let top_media_type = media_type_of(&top)?;
    if !is_index(&top_media_type) && top.bytes.len() as u64 > MAX_MANIFEST_SIZE {
        return Err(too_large(client, repo, &top.digest, MAX_MANIFEST_SIZE));
    }
    store_bytes(layout, &top.bytes)?;
    let mut current = top.clone();
    let mut current_type = top_media_type.clone();
    let mut depth = 0;
    while is_index(&current_type) {
        if depth >= MAX_INDEX_DEPTH {
            return Err(protocol(
                client,
                repo,
                &current.digest,
                format!("image indexes nested deeper than {MAX_INDEX_DEPTH}"),
            ));
        }
        depth += 1;
        let index: ImageIndex = serde_json::from_slice(&current.bytes).map_err(|e| {
            protocol(
                client,
                repo,
                &current.digest,
                format!("invalid image index: {e}"),
            )
        })?;
        let child = select_child(&index, &options.platform).ok_or_else(|| {
            protocol(
                client,
                repo,
                &current.digest,
                format!(
                    "no manifest for platform {}/{}",
                    options.platform.os, options.platform.architecture
                ),
            )
        })?;
        let digest = descriptor_digest(child)?;
        let limit = if is_index(child.media_type().as_ref()) {
            MAX_INDEX_SIZE
        } else {
            MAX_MANIFEST_SIZE
        };
        if child.size() > limit {
            return Err(too_large(client, repo, &digest, limit));
        }
        let fetched = client
            .get_manifest(repo, &digest.to_string(), Some(&digest), limit)?
            .ok_or_else(|| {
                protocol(
                    client,
                    repo,
                    &digest,
                    "the index names a manifest the registry does not have".into(),
                )
            })?;
        if fetched.bytes.len() as u64 != child.size() {
            return Err(RegistryError::BadLength {
                what: "manifest",
                url: format!("{}/v2/{repo}/manifests/{digest}", client.base_url()),
                reason: format!(
                    "{} bytes, but the index says {}",
                    fetched.bytes.len(),
                    child.size()
                ),
            });
        }
        store_bytes(layout, &fetched.bytes)?;
        current_type = media_type_of(&fetched)?;
        current = fetched;
    }
    let manifest: ImageManifest = serde_json::from_slice(&current.bytes).map_err(|e| {
        protocol(
            client,
            repo,
            &current.digest,
            format!("invalid image manifest: {e}"),
        )
    })?;
    if manifest.layers().len() > MAX_LAYERS {
        return Err(protocol(
            client,
            repo,
            &current.digest,
            format!("more than {MAX_LAYERS} layers"),
        ));
    }
    let config = manifest.config();
    let config_digest = descriptor_digest(config)?;
    let config_bytes = client.get_blob_bytes(
        repo,
        &config_digest,
        config.size(),
        MAX_CONFIG_SIZE,
        "image config",
    )?;
    store_bytes(layout, &config_bytes)?;

    let mut fetched = Fetched {
        layout: layout.to_path_buf(),
        top_digest: top.digest,
        manifest_digest: current.digest,
        oci_reference: format!("oci:{}@{}", layout.display(), top.digest),
        layers_downloaded: 0,
        layer_bytes_downloaded: 0,
        layers_present: 0,
        signature_tags: Vec::new(),
    };
    if options.layers {
        let layers = manifest
            .layers()
            .iter()
            .map(|d| Ok((descriptor_digest(d)?, d.size())))
            .collect::<Result<Vec<_>, RegistryError>>()?;
        let (downloaded, bytes, present) =
            download_layers(client, repo, layout, &layers, options.jobs, progress)?;
        fetched.layers_downloaded = downloaded;
        fetched.layer_bytes_downloaded = bytes;
        fetched.layers_present = present;
    }

    let mut entries = vec![descriptor_entry(
        &top_media_type,
        &top.digest,
        top.bytes.len(),
        reference.tag.as_deref(),
    )];
    if options.signatures {
        let mut signed = vec![top.digest];
        if current.digest != top.digest {
            signed.push(current.digest);
        }
        for digest in signed {
            let tag = format!("sha256-{}.sig", digest.hex());
            if let Some(sig) = fetch_signature_manifest(client, repo, layout, &tag)? {
                entries.push(descriptor_entry(
                    MEDIA_OCI_MANIFEST,
                    &sig.digest,
                    sig.bytes.len(),
                    Some(&tag),
                ));
                fetched.signature_tags.push(tag);
            }
        }
    }
    update_index(layout, &entries)?;
    Ok(fetched)
}

/// The signature manifest tagged `tag` and its blobs, stored; `None` when there is none.
pub fn fetch_signature_manifest(
    client: &RegistryClient,
    repo: &str,
    layout: &Path,
    tag: &str,
) -> Result<Option<FetchedManifest>, RegistryError> {
    let Some(sig) = client.get_manifest(repo, tag, None, MAX_SIGNATURE_MANIFEST_SIZE)? else {
        return Ok(None);
    };
    let parsed: SigManifest = serde_json::from_slice(&sig.bytes).map_err(|e| {
        protocol(
            client,
            repo,
            &sig.digest,
            format!("invalid signature manifest {tag}: {e}"),
        )
    })?;
    if parsed.layers.len() > MAX_SIGNATURE_LAYERS {
        return Err(protocol(
            client,
            repo,
            &sig.digest,
            format!("more than {MAX_SIGNATURE_LAYERS} signature layers"),
        ));
    }
    for desc in std::iter::once(&parsed.config).chain(&parsed.layers) {
        let digest = BlobDigest::parse(&desc.digest)?;
        if has_blob(layout, &digest, desc.size) {
            continue;
        }
        let bytes = client.get_blob_bytes(
            repo,
            &digest,
            desc.size,
            MAX_SIGNATURE_BLOB_SIZE,
            "signature blob",
        )?;
        store_bytes(layout, &bytes)?;
    }
    store_bytes(layout, &sig.bytes)?;
    Ok(Some(sig))
}

pub(super) fn download_layers(
    client: &RegistryClient,
    repo: &str,
    layout: &Path,
    layers: &[(BlobDigest, u64)],
    jobs: usize,
    progress: &dyn FetchProgress,
) -> Result<(u64, u64, u64), RegistryError> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let downloaded = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let present = AtomicU64::new(0);
    let first_error: Mutex<Option<RegistryError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, 16).min(layers.len().max(1)) {
            scope.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    return;
                }
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some((digest, size)) = layers.get(index) else {
                    return;
                };
                if has_blob(layout, digest, *size) {
                    present.fetch_add(1, Ordering::Relaxed);
                    progress.layer_done(index, false);
                    continue;
                }
                progress.layer_started(index, digest, *size);
                let result = download_blob(client, repo, layout, digest, *size, &|n| {
                    progress.layer_bytes(index, n)
                });
                match result {
                    Ok(()) => {
                        downloaded.fetch_add(1, Ordering::Relaxed);
                        bytes.fetch_add(*size, Ordering::Relaxed);
                        progress.layer_done(index, true);
                    }
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
                        slot.get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok((
        downloaded.into_inner(),
        bytes.into_inner(),
        present.into_inner(),
    ))
}

/// One layer into `blobs/sha256/<hex>`: a temporary file, renamed only once verified.
pub(super) fn download_blob(
    client: &RegistryClient,
    repo: &str,
    layout: &Path,
    digest: &BlobDigest,
    size: u64,
    progress: &dyn Fn(u64),
) -> Result<(), RegistryError> {
    let dir = layout.join("blobs/sha256");
    let mut tmp = tempfile::Builder::new()
        .prefix(".download-")
        .tempfile_in(&dir)
        .map_err(|e| RegistryError::io("creating a temporary file in", &dir, e))?;
    client.get_blob(repo, digest, size, "layer", tmp.as_file_mut(), progress)?;
    let dest = dir.join(digest.hex());
    tmp.persist(&dest)
        .map_err(|e| RegistryError::io("renaming into place", &dest, e.error))?;
    Ok(())
}

pub(super) fn has_blob(layout: &Path, digest: &BlobDigest, size: u64) -> bool {
    let path = layout.join("blobs/sha256").join(digest.hex());
    fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() == size)
}

/// Create the layout's directories and `oci-layout` if missing.
pub fn prepare_layout(layout: &Path) -> Result<(), RegistryError> {
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(|e| RegistryError::io("creating", &blobs, e))?;
    let marker = layout.join("oci-layout");
    if !marker.exists() {
        write_atomic(layout, &marker, OCI_LAYOUT_FILE)?;
    }
    Ok(())
}

/// Store verified bytes as `blobs/sha256/<their digest>` (kept if already there).
pub fn store_bytes(layout: &Path, bytes: &[u8]) -> Result<BlobDigest, RegistryError> {
    let digest = BlobDigest::of(bytes);
    if !has_blob(layout, &digest, bytes.len() as u64) {
        let dir = layout.join("blobs/sha256");
        write_atomic(&dir, &dir.join(digest.hex()), bytes)?;
    }
    Ok(digest)
}

fn write_atomic(dir: &Path, dest: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| RegistryError::io("creating a temporary file in", dir, e))?;
    tmp.write_all(bytes)
        .map_err(|e| RegistryError::io("writing", tmp.path().to_path_buf(), e))?;
    tmp.persist(dest)
        .map_err(|e| RegistryError::io("renaming into place", dest, e.error))?;
    Ok(())
}

fn descriptor_entry(
    media_type: &str,
    digest: &BlobDigest,
    size: usize,
    tag: Option<&str>,
) -> Value {
    let mut entry = json!({"mediaType": media_type, "digest": digest.to_string(), "size": size});
    if let Some(tag) = tag {
        entry["annotations"] = json!({ ANNOTATION_REF_NAME: tag });
    }
    entry
}

/// Add `entries` to `index.json`, replacing any with the same ref name or digest.
pub fn update_index(layout: &Path, entries: &[Value]) -> Result<(), RegistryError> {
    let path = layout.join("index.json");
    let mut index = match fs::read(&path) {
        Ok(bytes) if bytes.len() as u64 <= MAX_INDEX_SIZE => {
            serde_json::from_slice::<Value>(&bytes).map_err(|e| RegistryError::Config {
                path: path.clone(),
                reason: e.to_string(),
            })?
        }
        Ok(_) => {
            return Err(RegistryError::Config {
                path,
                reason: format!("larger than {MAX_INDEX_SIZE} bytes"),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            json!({"schemaVersion": 2, "manifests": []})
        }
        Err(e) => return Err(RegistryError::io("reading", path, e)),
    };
    let list = index
        .get_mut("manifests")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| RegistryError::Config {
            path: path.clone(),
            reason: "no manifests array".into(),
        })?;
    let name = |v: &Value| {
        v.pointer("/annotations/org.opencontainers.image.ref.name")
            .cloned()
    };
    for entry in entries {
        list.retain(|old| {
            let same_name = name(entry).is_some() && name(old) == name(entry);
            let same_untagged = name(old).is_none() && old.get("digest") == entry.get("digest");
            !same_name && !same_untagged
        });
        list.push(entry.clone());
    }
    let bytes = serde_json::to_vec(&index).map_err(|e| RegistryError::Config {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    write_atomic(layout, &path, &bytes)
}

fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_OCI_INDEX || media_type == MEDIA_DOCKER_LIST
}

/// The media type inside the JSON, else the one the registry sent.
fn media_type_of(m: &FetchedManifest) -> Result<String, RegistryError> {
    super::wire::manifest_media_type(&m.bytes, &m.media_type).map_err(|reason| {
        RegistryError::Protocol {
            what: "manifest",
            url: m.digest.to_string(),
            reason,
        }
    })
}

fn protocol(
    client: &RegistryClient,
    repo: &str,
    digest: &BlobDigest,
    reason: String,
) -> RegistryError {
    RegistryError::Protocol {
        what: "manifest",
        url: format!("{}/v2/{repo}/manifests/{digest}", client.base_url()),
        reason,
    }
}

fn too_large(
    client: &RegistryClient,
    repo: &str,
    digest: &BlobDigest,
    limit: u64,
) -> RegistryError {
    RegistryError::TooLarge {
        what: "manifest",
        url: format!("{}/v2/{repo}/manifests/{digest}", client.base_url()),
        limit,
    }
}
