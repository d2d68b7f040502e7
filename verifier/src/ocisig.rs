//! cosign signatures in an OCI image layout: the signature manifest tagged
//! `sha256-<hex>.sig` in `index.json`, read and written.
//!
//! | where | what |
//! |---|---|
//! | `index.json` entry | descriptor of the signature manifest, annotation `org.opencontainers.image.ref.name` = `sha256-<hex of the signed manifest's digest>.sig` |
//! | signature manifest | OCI image manifest; `config` a small cosign-style config; `layers`: one per signature |
//! | each layer | media type [`SIMPLE_SIGNING_MIME_TYPE`]; the blob is the exact payload bytes; annotation [`SIGNATURE_ANNOTATION`] = base64 signature (other cosign annotations kept) |
//!
//! Every blob is read by digest and size through [`cfsgate_oci::ImageSource::read_blob`], so
//! a blob whose bytes do not hash to its name is refused before it is parsed. Signing appends a
//! layer: new blobs are written first (temporary file, then rename), `index.json` last, under
//! an exclusive `flock` of the layout directory so that concurrent signers do not lose each
//! other's layers.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use cfsgate_image::ContentSha256;
use cfsgate_keyring::PrivateKey;
use cfsgate_oci::{BlobDigest, ImageSource, OciError, SourceKind};
use serde_json::{json, Map, Value};

use crate::sigstore::{SigstoreSignature, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MIME_TYPE};
use crate::verify::sha256_of;

/// Media type of an OCI image manifest (the signature manifest is one).
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of the signature manifest's config.
pub const OCI_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The annotation naming an `index.json` entry.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// Largest `index.json` read: as the oci crate (4 MiB).
pub const MAX_INDEX_BYTES: u64 = 4 << 20;
/// Largest signature manifest read: containers/image's manifest limit (4 MiB).
pub const MAX_SIGNATURE_MANIFEST_BYTES: u64 = 4 << 20;
/// Largest payload blob read: containers/image's signature limit (4 MiB).
pub const MAX_PAYLOAD_BYTES: u64 = 4 << 20;
/// Most signature layers read: far above any real image, bounds hostile input.
pub const MAX_SIGNATURE_LAYERS: usize = 1024;

/// Why the signatures of a layout could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum OciSigError {
    /// A file of the layout cannot be read or written.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operation (`"read"`, `"write"`, ...).
        what: &'static str,
        /// The error the kernel returned.
        source: std::io::Error,
    },
    /// The OCI layout or a signature manifest in it is malformed.
    #[error("{path}: {reason}")]
    Layout {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The oci crate refused the layout (bad index, blob, reference).
    #[error(transparent)]
    Oci(#[from] cfsgate_oci::OciError),
}

/// The tag under which cosign stores the signatures of the manifest with this digest.
pub fn signature_tag(manifest_digest: &ContentSha256) -> String {
    format!("sha256-{}.sig", manifest_digest.to_hex())
}

/// One signature layer: where it is and what it holds (a layer whose annotation is
/// missing or not base64 is reported as `Err` with the reason).
#[derive(Debug, Clone)]
pub struct OciSignature {
    /// `TAG layer N (sha256:…)`, for reports.
    pub source: String,
    /// The parsed signature, or why the layer is not a well-formed one.
    pub signature: Result<SigstoreSignature, String>,
}

/// Every signature of the manifest with digest `manifest_digest` in the layout at `layout`;
/// none when the layout has no signature tag for it.
pub fn read_oci_signatures(
    layout: &Path,
    manifest_digest: &ContentSha256,
) -> Result<Vec<OciSignature>, OciSigError> {
    let source = ImageSource::open(SourceKind::OciLayout, layout)?;
    read_oci_signatures_from(&source, layout, manifest_digest)
}

/// [`read_oci_signatures`] in a layout already opened as `source` (the one the image was
/// resolved from: its `oci-layout` is not read again).
pub fn read_oci_signatures_from(
    source: &ImageSource,
    layout: &Path,
    manifest_digest: &ContentSha256,
) -> Result<Vec<OciSignature>, OciSigError> {
    let tag = signature_tag(manifest_digest);
    let index = read_index(source, layout)?;
    let Some(descriptor) = find_tag(layout, &index, &tag)? else {
        return Ok(Vec::new());
    };
    let (digest, size) = descriptor_digest_size(layout, &descriptor)?;
    let bytes = source.read_blob(
        "signature manifest",
        &digest,
        size,
        MAX_SIGNATURE_MANIFEST_BYTES,
    )?;
    let manifest: Value = serde_json::from_slice(&bytes).map_err(|e| OciSigError::Layout {
        path: layout.to_path_buf(),
        reason: format!("signature manifest {digest}: {e}"),
    })?;
    let layers = manifest
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| OciSigError::Layout {
            path: layout.to_path_buf(),
            reason: format!("signature manifest {digest} has no layers array"),
        })?;
    if layers.len() > MAX_SIGNATURE_LAYERS {
        return Err(OciSigError::Layout {
            path: layout.to_path_buf(),
            reason: format!("more than {MAX_SIGNATURE_LAYERS} signature layers"),
        });
    }
    let mut out = Vec::with_capacity(layers.len());
    // Signatures by several keys over one image share one payload blob (cosign's payload is
    // the same bytes whoever signs): each distinct blob is read and digest-checked once.
    let mut payloads: Vec<(BlobDigest, u64, Vec<u8>)> = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let (layer_digest, layer_size) = descriptor_digest_size(layout, layer)?;
        let name = format!("{tag} layer {} ({layer_digest})", i + 1);
        let known = payloads
            .iter()
            .find(|(d, size, _)| *d == layer_digest && *size == layer_size);
        let payload = match known {
            Some((_, _, bytes)) => bytes.clone(),
            None => {
                let bytes = source.read_blob(
                    "signature payload",
                    &layer_digest,
                    layer_size,
                    MAX_PAYLOAD_BYTES,
                )?;
                payloads.push((layer_digest, layer_size, bytes.clone()));
                bytes
            }
        };
        out.push(OciSignature {
            source: name,
            signature: layer_signature(layer, payload),
        });
    }
    Ok(out)
}

fn layer_signature(layer: &Value, payload: Vec<u8>) -> Result<SigstoreSignature, String> {
    let media_type = layer
        .get("mediaType")
        .and_then(Value::as_str)
        .ok_or("layer has no mediaType")?;
    let mut annotations = std::collections::BTreeMap::new();
    if let Some(map) = layer.get("annotations").and_then(Value::as_object) {
        for (key, value) in map {
            let value = value
                .as_str()
                .ok_or_else(|| format!("annotation {key:?} is not a string"))?;
            annotations.insert(key.clone(), value.to_string());
        }
    }
    let encoded = annotations
        .get(SIGNATURE_ANNOTATION)
        .ok_or_else(|| format!("layer lacks the {SIGNATURE_ANNOTATION} annotation"))?;
    let signature = BASE64
        .decode(encoded)
        .map_err(|e| format!("{SIGNATURE_ANNOTATION} is not base64: {e}"))?;
    Ok(SigstoreSignature {
        mime_type: media_type.to_string(),
        payload,
        signature,
        annotations,
    })
}

fn read_index(source: &ImageSource, layout: &Path) -> Result<Value, OciSigError> {
    let path = layout.join("index.json");
    // Through the layout's handle: a regular file only (a FIFO there cannot block the open),
    // read into a buffer sized from its length, at most MAX_INDEX_BYTES.
    let bytes = source.read_small_file("index.json", MAX_INDEX_BYTES)?;
    let index: Value = serde_json::from_slice(&bytes).map_err(|e| OciSigError::Layout {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if !index.get("manifests").is_some_and(Value::is_array) {
        return Err(OciSigError::Layout {
            path,
            reason: "no manifests array".into(),
        });
    }
    Ok(index)
}

fn entry_tag(entry: &Value) -> Option<&str> {
    entry.get("annotations")?.get(REF_NAME_ANNOTATION)?.as_str()
}

fn find_tag(layout: &Path, index: &Value, tag: &str) -> Result<Option<Value>, OciSigError> {
    let empty = Vec::new();
    let entries = index
        .get("manifests")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let mut found = entries.iter().filter(|e| entry_tag(e) == Some(tag));
    match (found.next(), found.next()) {
        (None, _) => Ok(None),
        (Some(one), None) => Ok(Some(one.clone())),
        (Some(_), Some(_)) => Err(OciSigError::Layout {
            path: layout.join("index.json"),
            reason: format!("tag {tag:?} names several entries"),
        }),
    }
}

fn descriptor_digest_size(
    layout: &Path,
    descriptor: &Value,
) -> Result<(BlobDigest, u64), OciSigError> {
    let bad = |reason: &str| OciSigError::Layout {
        path: layout.to_path_buf(),
        reason: format!("descriptor {descriptor}: {reason}"),
    };
    let digest = descriptor
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no digest"))?;
    let size = descriptor
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("no size"))?;
    Ok((BlobDigest::parse(digest).map_err(OciError::from)?, size))
}

/// What [`sign_oci_image`](crate::sign::sign_oci_image) added.
#[derive(Debug, Clone)]
pub struct SignedLayer {
    /// The signature tag written.
    pub tag: String,
    /// Digest of the new signature manifest.
    pub manifest_digest: ContentSha256,
    /// Layers it now has (this signature is the last).
    pub layers: usize,
    /// The simple-signing payload written as the new layer.
    pub payload: Vec<u8>,
    /// The signature over the payload, as stored base64 in the layer's [`SIGNATURE_ANNOTATION`].
    pub signature: Vec<u8>,
}

/// Appends a signature layer (payload `payload`, signed by `key`) to the signature
/// manifest of `signed_manifest` in the layout at `layout`, creating it if needed.
pub fn append_oci_signature(
    layout: &Path,
    signed_manifest: &ContentSha256,
    payload: Vec<u8>,
    key: &PrivateKey,
) -> Result<SignedLayer, OciSigError> {
    let io_err = |path: &Path, what, source| OciSigError::Io {
        path: path.to_path_buf(),
        what,
        source,
    };
    let dir = std::fs::File::open(layout).map_err(|e| io_err(layout, "opening", e))?;
    rustix::fs::flock(&dir, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io_err(layout, "locking", e.into()))?;
    let source = ImageSource::open(SourceKind::OciLayout, layout)?;
    let tag = signature_tag(signed_manifest);
    let mut index = read_index(&source, layout)?;
    let mut layers: Vec<Value> = match find_tag(layout, &index, &tag)? {
        Some(descriptor) => {
            let (digest, size) = descriptor_digest_size(layout, &descriptor)?;
            let bytes = source.read_blob(
                "signature manifest",
                &digest,
                size,
                MAX_SIGNATURE_MANIFEST_BYTES,
            )?;
            let manifest: Value =
                serde_json::from_slice(&bytes).map_err(|e| OciSigError::Layout {
                    path: layout.to_path_buf(),
                    reason: format!("signature manifest {digest}: {e}"),
                })?;
            manifest
                .get("layers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    let signature = key.sign(&payload);
    let payload_digest = write_blob(layout, &payload)?;
    let mut annotations = Map::new();
    annotations.insert(
        SIGNATURE_ANNOTATION.into(),
        BASE64.encode(&signature).into(),
    );
    layers.push(json!({
        "mediaType": SIMPLE_SIGNING_MIME_TYPE,
        "size": payload.len(),
        "digest": payload_digest.to_string(),
        "annotations": annotations,
    }));
    // cosign's signature config: an empty image whose diff_ids are the layer digests.
    let diff_ids: Vec<Value> = layers
        .iter()
        .filter_map(|l| l.get("digest").cloned())
        .collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "", "os": "", "config": {},
        "created": "0001-01-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap_or_default();
    let config_digest = write_blob(layout, &config)?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": OCI_CONFIG_MEDIA_TYPE, "size": config.len(),
                   "digest": config_digest.to_string()},
        "layers": layers,
    }))
    .unwrap_or_default();
    let manifest_digest = write_blob(layout, &manifest)?;
    let entries = index
        .get_mut("manifests")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| OciSigError::Layout {
            path: layout.join("index.json"),
            reason: "no manifests array".into(),
        })?;
    entries.retain(|e| entry_tag(e) != Some(tag.as_str()));
    entries.push(json!({
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "size": manifest.len(),
        "digest": manifest_digest.to_string(),
        "annotations": {REF_NAME_ANNOTATION: tag},
    }));
    let index_bytes = serde_json::to_vec(&index).unwrap_or_default();
    write_atomically(layout, "index.json", &index_bytes)?;
    drop(dir);
    Ok(SignedLayer {
        tag,
        manifest_digest,
        layers: layers.len(),
        payload,
        signature,
    })
}

/// Writes `bytes` as `blobs/sha256/<hex>` unless present; returns the digest.
fn write_blob(layout: &Path, bytes: &[u8]) -> Result<ContentSha256, OciSigError> {
    let digest = sha256_of(bytes);
    let relpath = format!("blobs/sha256/{}", digest.to_hex());
    if !layout.join(&relpath).is_file() {
        write_atomically(layout, &relpath, bytes)?;
    }
    Ok(digest)
}

fn write_atomically(layout: &Path, relpath: &str, bytes: &[u8]) -> Result<(), OciSigError> {
    let path = layout.join(relpath);
    let parent = path.parent().unwrap_or(layout);
    let io_err = |what, source| OciSigError::Io {
        path: path.clone(),
        what,
        source,
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".cfsgate-")
        .tempfile_in(parent)
        .map_err(|e| io_err("creating a temporary file for", e))?;
    // Blobs and index.json are public (readable by unprivileged tools), as umoci writes them.
    temp.write_all(bytes)
        .and_then(|()| {
            temp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
        })
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| io_err("writing", e))?;
    temp.persist(&path)
        .map_err(|e| io_err("renaming into place", e.error))?;
    Ok(())
}
