//! Sealing: the composefs image digest recorded in the image config, where a signature over the
//! manifest covers it.
//!
//! | where | key | value |
//! |---|---|---|
//! | config `config.Labels` | `containers.composefs.fsverity` ([`LABEL_FSVERITY`]) | `sha256:<hex>`: fs-verity digest of the composefs image of the merged layers |
//! | manifest `layers[i].annotations` (optional) | `containers.composefs.layer.fsverity` ([`ANNOTATION_LAYER_FSVERITY`]) | `sha256:<hex>`: digest of the composefs image of layer `i` applied alone to an empty root |
//! | destination `index.json` entry | `org.opencontainers.image.ref.name` | the tag |
//!
//! [`seal`] edits the config as JSON with its field order kept: only the label is added (or
//! replaced), every other field keeps its place and value; the output is compact JSON, as Go's
//! encoder (umoci, skopeo, podman) writes it. The new manifest is the old one with the new config
//! descriptor (digest and size) and, if asked, the per-layer annotations; layers are the same
//! blobs. The same input therefore always gives the same config and manifest bytes: sealing is
//! reproducible. Blobs are written to the destination layout (a temporary file in
//! `blobs/sha256`, then a rename); `index.json` is replaced atomically (temporary file in the
//! layout, synced, renamed), an existing entry with the same tag removed. Two seals into one
//! layout at the same moment may lose one of the two index entries (as with umoci): do not.
//!
//! Reading a seal accepts `sha256:<hex>` and a bare 64-digit hex value (composefs-rs 0.9 writes
//! the latter).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use cfsgate_image::FsVeritySha256;
use serde_json::{Map, Value};

use crate::apply::{BuildOptions, TreeBuilder};
use crate::convention::Convention;
use crate::digest::BlobDigest;
use crate::error::OciError;
use crate::import::{build_image, write_tree_image, NoProgress, Progress};
use crate::layout::{ImageRef, Selector, SourceKind};
use crate::resolve::{resolve_ref, Platform, ResolvedImage, ANNOTATION_REF_NAME};
use crate::seal_check::parse_json;
pub use crate::seal_check::{
    check_seal, check_seal_built, read_seal, SealError, SealMatch, LABEL_FSVERITY,
};
use crate::sink::NullSink;

/// The manifest layer annotation holding the digest of that layer's composefs image.
pub const ANNOTATION_LAYER_FSVERITY: &str = "containers.composefs.layer.fsverity";
/// Longest tag accepted (the Docker/OCI distribution tag grammar allows 128 characters).
pub const MAX_TAG_LEN: usize = 128;
/// `oci-layout` content of a layout this module creates.
const OCI_LAYOUT_FILE: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SealError + 'a {
    move |source| SealError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The composefs image digest of `image` (merged layers, contents hashed, nothing written).
pub fn compute_id(image: &ResolvedImage) -> Result<FsVeritySha256, OciError> {
    compute_id_with(image, &NoProgress)
}

/// [`compute_id`] reporting progress.
pub fn compute_id_with(
    image: &ResolvedImage,
    progress: &dyn Progress,
) -> Result<FsVeritySha256, OciError> {
    compute_id_as(image, Convention::Mkcomposefs, progress)
}

/// The composefs image digest of `image` under `convention` (see `convention.rs`).
pub fn compute_id_as(
    image: &ResolvedImage,
    convention: Convention,
    progress: &dyn Progress,
) -> Result<FsVeritySha256, OciError> {
    let built = build_image(image, &NullSink, progress)?;
    match convention {
        Convention::Mkcomposefs => Ok(built.digest),
        other => other.image_of(&built.tree).map(|(_, digest)| digest),
    }
}

/// The composefs image digest of layer `index` applied alone to an empty root.
pub fn layer_id(image: &ResolvedImage, index: usize) -> Result<FsVeritySha256, OciError> {
    let layer = image.layers.get(index).ok_or_else(|| OciError::Limit {
        reason: format!("no layer {index}: the image has {}", image.layers.len()),
    })?;
    let mut builder = TreeBuilder::new(BuildOptions::default());
    builder.apply_layer(&image.source, index, layer, &NullSink)?;
    let bytes = write_tree_image(&builder.finish()?)?;
    Ok(cfsgate_image::fsverity::digest_bytes(&bytes))
}

/// Options of [`seal`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SealOptions {
    /// Also annotate every layer descriptor with its own composefs digest.
    pub layer_annotations: bool,
    /// How the sealed composefs image is made.
    pub convention: Convention,
}

/// What a seal wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealReport {
    /// The composefs image digest now in the config label.
    pub image_digest: FsVeritySha256,
    /// The new manifest (tagged in the destination).
    pub manifest_digest: BlobDigest,
    /// The new manifest's size in bytes.
    pub manifest_size: u64,
    /// The new config.
    pub config_digest: BlobDigest,
}

/// Seal `src_ref` (for the running platform) into the OCI layout `dest_layout` under `tag`.
pub fn seal(
    src_ref: &str,
    dest_layout: &Path,
    tag: &str,
    opts: SealOptions,
) -> Result<SealReport, SealError> {
    let image = resolve_ref(&ImageRef::parse(src_ref)?, &Platform::current())?;
    seal_image(&image, dest_layout, tag, opts, &NoProgress)
}

/// Where a sealed image is written: a transport reference, as skopeo writes a destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SealDest {
    /// An OCI layout (created if missing; may be the source layout), the image tagged `tag`.
    Layout {
        /// The layout directory.
        path: PathBuf,
        /// The tag; `None`: the caller's default.
        tag: Option<String>,
    },
    /// A skopeo `dir:` directory (created if missing or empty): `manifest.json`, `version`
    /// and the blobs by hex digest.
    Dir(PathBuf),
}

impl SealDest {
    /// Parse `oci:PATH[:TAG]` or `dir:PATH`; a plain path (no `TRANSPORT:` prefix) is an OCI
    /// layout. Any other `TRANSPORT:` prefix is refused rather than taken as a directory name.
    pub fn parse(reference: &str) -> Result<Self, SealError> {
        let bad = |reason: String| SealError::Dest {
            path: reference.into(),
            reason,
        };
        let looks_like_transport = reference
            .split_once(':')
            .is_some_and(|(t, _)| !t.is_empty() && !t.contains('/') && !t.starts_with('.'));
        if !looks_like_transport {
            return Ok(SealDest::Layout {
                path: reference.into(),
                tag: None,
            });
        }
        let transport = reference.split_once(':').map_or("", |(t, _)| t);
        if transport != "oci" && transport != "dir" {
            return Err(bad(format!(
                "unknown transport {transport:?}: a destination is oci:PATH[:TAG] or dir:PATH"
            )));
        }
        let parsed = ImageRef::parse(reference).map_err(|e| bad(e.to_string()))?;
        match (parsed.kind, parsed.selector) {
            (SourceKind::Dir, _) => Ok(SealDest::Dir(parsed.path)),
            (SourceKind::OciLayout, Selector::Default) => Ok(SealDest::Layout {
                path: parsed.path,
                tag: None,
            }),
            (SourceKind::OciLayout, Selector::Tag(tag)) => Ok(SealDest::Layout {
                path: parsed.path,
                tag: Some(tag),
            }),
            (SourceKind::OciLayout, Selector::Digest(_)) => Err(bad(
                "a destination names a tag, not a digest (the digest is what sealing makes)".into(),
            )),
            (SourceKind::ContainersStorage, _) => Err(bad(
                "containers-storage is read-only to cfsgate: seal into oci:PATH[:TAG] or dir:PATH"
                    .into(),
            )),
        }
    }

    /// The directory written to.
    pub fn path(&self) -> &Path {
        match self {
            SealDest::Layout { path, .. } | SealDest::Dir(path) => path,
        }
    }
}

/// Seal a resolved image into the OCI layout `dest_layout` under `tag`; see the module docs.
pub fn seal_image(
    image: &ResolvedImage,
    dest_layout: &Path,
    tag: &str,
    opts: SealOptions,
    progress: &dyn Progress,
) -> Result<SealReport, SealError> {
    let dest = SealDest::Layout {
        path: dest_layout.to_path_buf(),
        tag: Some(tag.to_string()),
    };
    seal_image_to(image, &dest, opts, progress)
}

/// Seal a resolved image into `dest` (an OCI layout needs its tag set).
pub fn seal_image_to(
    image: &ResolvedImage,
    dest: &SealDest,
    opts: SealOptions,
    progress: &dyn Progress,
) -> Result<SealReport, SealError> {
    let tag = match dest {
        SealDest::Layout { tag: Some(tag), .. } => Some(tag.as_str()),
        SealDest::Layout { tag: None, path } => {
            return Err(SealError::Dest {
                path: path.clone(),
                reason: "no tag for the sealed image".into(),
            })
        }
        SealDest::Dir(_) => None,
    };
    if let Some(tag) = tag {
        validate_tag(tag)?;
    }
    if opts.layer_annotations && opts.convention != Convention::Mkcomposefs {
        return Err(SealError::Dest {
            path: dest.path().to_path_buf(),
            reason: format!(
                "per-layer annotations are made under the mkcomposefs convention only: {} defines no per-layer image",
                opts.convention
            ),
        });
    }
    let image_digest = compute_id_as(image, opts.convention, progress)?;
    let layer_ids = if opts.layer_annotations {
        (0..image.layers.len())
            .map(|i| layer_id(image, i))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    let config_bytes = sealed_config(image, &image_digest)?;
    let config_digest = BlobDigest::of(&config_bytes);
    let dest_dir = dest.path();
    let blobs = match dest {
        SealDest::Layout { .. } => {
            ensure_layout(dest_dir)?;
            dest_dir.join("blobs/sha256")
        }
        SealDest::Dir(_) => {
            ensure_dir_image(dest_dir)?;
            dest_dir.to_path_buf()
        }
    };
    let dest_kind = match dest {
        SealDest::Layout { .. } => SourceKind::OciLayout,
        SealDest::Dir(_) => SourceKind::Dir,
    };
    // containers-storage keeps no compressed blobs: its layers are written as the tars rebuilt
    // from the store (digest = diff_id, checked on the bytes written), and the manifest says so.
    let rewritten = match image.source.storage() {
        Some(storage) => (0..image.layers.len())
            .map(|i| copy_storage_layer(storage, image, i, &blobs))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let manifest_bytes = sealed_manifest(
        image,
        config_digest,
        config_bytes.len(),
        &layer_ids,
        &rewritten,
    )?;
    let manifest_digest = BlobDigest::of(&manifest_bytes);
    let report = SealReport {
        image_digest,
        manifest_digest,
        manifest_size: manifest_bytes.len() as u64,
        config_digest,
    };
    let same_source = image.source.kind() == dest_kind && same_dir(image.source.path(), dest_dir);
    if !same_source && rewritten.is_empty() {
        for layer in &image.layers {
            copy_layer(image, layer.digest, layer.size, &blobs)?;
        }
    }
    put_blob(&blobs, &config_bytes)?;
    let Some(tag) = tag else {
        // dir: the manifest is manifest.json, written last: a reader sees the old image or
        // the whole new one.
        write_atomic(dest_dir, "manifest.json", &manifest_bytes)?;
        return Ok(report);
    };
    put_blob(&blobs, &manifest_bytes)?;
    let dest_layout = dest_dir;
    let descriptor = serde_json::json!({
        "mediaType": image.manifest_media_type,
        "digest": manifest_digest.to_string(),
        "size": manifest_bytes.len(),
        "annotations": { ANNOTATION_REF_NAME: tag },
    });
    update_index(dest_layout, tag, descriptor)?;
    Ok(report)
}

/// A `dir:` destination: created, or an existing `dir:` image (its `version` file), or empty.
fn ensure_dir_image(dest: &Path) -> Result<(), SealError> {
    let version = dest.join("version");
    if version.is_file() {
        return Ok(());
    }
    if dest.exists() {
        let mut entries = fs::read_dir(dest).map_err(io_err("list", dest))?;
        if entries.next().is_some() {
            return Err(SealError::Dest {
                path: dest.to_path_buf(),
                reason: "exists, is not empty and is not a dir: image (no version file)".into(),
            });
        }
    }
    fs::create_dir_all(dest).map_err(io_err("create", dest))?;
    write_atomic(dest, "version", b"Directory Transport Version: 1.1\n")
}

/// A tag as the distribution spec allows: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
fn validate_tag(tag: &str) -> Result<(), SealError> {
    let bad = |reason| SealError::BadTag {
        tag: tag.chars().take(200).collect(),
        reason,
    };
    let mut bytes = tag.bytes();
    match bytes.next() {
        None => return Err(bad("empty")),
        Some(b) if b.is_ascii_alphanumeric() || b == b'_' => {}
        Some(_) => return Err(bad("must start with a letter, digit or '_'")),
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(bad("longer than 128 characters"));
    }
    if !bytes.all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(bad("only letters, digits, '.', '_' and '-' are allowed"));
    }
    Ok(())
}

fn to_compact(what: &'static str, digest: BlobDigest, value: &Value) -> Result<Vec<u8>, SealError> {
    serde_json::to_vec(value).map_err(|e| SealError::Json {
        what,
        digest,
        reason: e.to_string(),
    })
}

/// The object member `key` of `map`, created empty when absent or null.
fn object_member<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
    what: &'static str,
    digest: BlobDigest,
) -> Result<&'a mut Map<String, Value>, SealError> {
    let member = map.entry(key).or_insert(Value::Null);
    if member.is_null() {
        *member = Value::Object(Map::new());
    }
    member.as_object_mut().ok_or_else(|| SealError::Json {
        what,
        digest,
        reason: format!("{key:?} is not an object"),
    })
}

/// The config with the seal label set, as compact JSON.
fn sealed_config(image: &ResolvedImage, digest: &FsVeritySha256) -> Result<Vec<u8>, SealError> {
    const WHAT: &str = "image config";
    let id = image.config_digest;
    let mut config = parse_json(WHAT, id, &image.config_bytes)?;
    let top = config.as_object_mut().ok_or_else(|| SealError::Json {
        what: WHAT,
        digest: id,
        reason: "not a JSON object".into(),
    })?;
    let exec = object_member(top, "config", WHAT, id)?;
    let labels = object_member(exec, "Labels", WHAT, id)?;
    labels.insert(
        LABEL_FSVERITY.into(),
        Value::String(format!("sha256:{}", digest.to_hex())),
    );
    to_compact(WHAT, id, &config)
}

/// The manifest pointing at the new config (and annotating layers), as compact JSON.
fn sealed_manifest(
    image: &ResolvedImage,
    config_digest: BlobDigest,
    config_size: usize,
    layer_ids: &[FsVeritySha256],
    rewritten: &[(BlobDigest, u64)],
) -> Result<Vec<u8>, SealError> {
    const WHAT: &str = "manifest";
    let id = image.manifest_digest;
    let bad = |reason: &str| SealError::Json {
        what: WHAT,
        digest: id,
        reason: reason.into(),
    };
    let mut manifest = parse_json(WHAT, id, &image.manifest_bytes)?;
    let top = manifest
        .as_object_mut()
        .ok_or_else(|| bad("not a JSON object"))?;
    let config = top
        .get_mut("config")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| bad("no config descriptor"))?;
    config.insert("digest".into(), Value::String(config_digest.to_string()));
    config.insert("size".into(), Value::from(config_size));
    if !rewritten.is_empty() {
        let docker = image.manifest_media_type == crate::resolve::MEDIA_DOCKER_MANIFEST;
        let media_type = if docker {
            "application/vnd.docker.image.rootfs.diff.tar"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        };
        let layers = top
            .get_mut("layers")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| bad("no layers array"))?;
        if layers.len() != rewritten.len() {
            return Err(bad("layer count changed while sealing"));
        }
        for (layer, (digest, size)) in layers.iter_mut().zip(rewritten) {
            let layer = layer
                .as_object_mut()
                .ok_or_else(|| bad("a layer descriptor is not an object"))?;
            layer.insert("mediaType".into(), Value::String(media_type.into()));
            layer.insert("digest".into(), Value::String(digest.to_string()));
            layer.insert("size".into(), Value::from(*size));
        }
    }
    if !layer_ids.is_empty() {
        let layers = top
            .get_mut("layers")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| bad("no layers array"))?;
        if layers.len() != layer_ids.len() {
            return Err(bad("layer count changed while sealing"));
        }
        for (layer, layer_id) in layers.iter_mut().zip(layer_ids) {
            let layer = layer
                .as_object_mut()
                .ok_or_else(|| bad("a layer descriptor is not an object"))?;
            let annotations = object_member(layer, "annotations", WHAT, id)?;
            annotations.insert(
                ANNOTATION_LAYER_FSVERITY.into(),
                Value::String(format!("sha256:{}", layer_id.to_hex())),
            );
        }
    }
    to_compact(WHAT, id, &manifest)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Make `dest` an OCI layout if it is not one: a missing or empty directory gets `oci-layout`,
/// `blobs/sha256/` and an empty `index.json`; anything else without `oci-layout` is refused.
fn ensure_layout(dest: &Path) -> Result<(), SealError> {
    let marker = dest.join("oci-layout");
    if marker.is_file() {
        fs::create_dir_all(dest.join("blobs/sha256"))
            .map_err(io_err("create blob directory in", dest))?;
        if !dest.join("index.json").is_file() {
            return Err(SealError::Dest {
                path: dest.to_path_buf(),
                reason: "an OCI layout without index.json".into(),
            });
        }
        return Ok(());
    }
    if dest.exists() {
        let mut entries = fs::read_dir(dest).map_err(io_err("list", dest))?;
        if entries.next().is_some() {
            return Err(SealError::Dest {
                path: dest.to_path_buf(),
                reason: "exists, is not empty and is not an OCI layout (no oci-layout file)".into(),
            });
        }
    }
    fs::create_dir_all(dest.join("blobs/sha256"))
        .map_err(io_err("create blob directory in", dest))?;
    write_atomic(dest, "index.json", br#"{"schemaVersion":2,"manifests":[]}"#)?;
    write_atomic(dest, "oci-layout", OCI_LAYOUT_FILE)
}

/// Replace `dir/name` with `bytes`: temporary file in `dir`, synced, renamed, `dir` synced.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), SealError> {
    let dest = dir.join(name);
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err("create temporary file in", dir))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io_err("write temporary file for", &dest))?;
    tmp.persist(&dest)
        .map_err(|e| io_err("rename into place", &dest)(e.error))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync directory", dir))
}

fn blob_path(blobs: &Path, digest: &BlobDigest) -> PathBuf {
    blobs.join(digest.hex())
}

/// Whether a blob file holds exactly the bytes its name says.
fn blob_is_intact(path: &Path, digest: &BlobDigest, size: u64) -> Result<bool, SealError> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err("open blob", path)(e)),
    };
    let len = file.metadata().map_err(io_err("stat blob", path))?.len();
    if len != size {
        return Ok(false);
    }
    let mut hasher = sha2_reader::Hasher::default();
    io::copy(&mut io::BufReader::new(file), &mut hasher).map_err(io_err("read blob", path))?;
    Ok(hasher.finish() == *digest)
}

/// Write a small blob by its digest (kept if already intact).
fn put_blob(layout: &Path, bytes: &[u8]) -> Result<(), SealError> {
    let digest = BlobDigest::of(bytes);
    let path = blob_path(layout, &digest);
    if blob_is_intact(&path, &digest, bytes.len() as u64)? {
        return Ok(());
    }
    write_atomic(layout, &digest.hex(), bytes)
}

/// Copy a layer blob from the source image into `layout`, verifying it on the way.
fn copy_layer(
    image: &ResolvedImage,
    digest: BlobDigest,
    size: u64,
    layout: &Path,
) -> Result<(), SealError> {
    let path = blob_path(layout, &digest);
    if blob_is_intact(&path, &digest, size)? {
        return Ok(());
    }
    let dir = layout;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err("create temporary file in", dir))?;
    let mut reader = image.source.stream_blob(&digest, size)?;
    io::copy(&mut reader, tmp.as_file_mut()).map_err(io_err("copy layer to", &path))?;
    reader.finish()?;
    tmp.as_file()
        .sync_all()
        .map_err(io_err("sync layer copy for", &path))?;
    tmp.persist(&path)
        .map_err(|e| io_err("rename into place", &path)(e.error))?;
    Ok(())
}

/// Write layer `index` of a containers-storage image into the blob directory `blobs` as an
/// uncompressed tar (rebuilt from its tar-split), refusing it unless it hashes to the config's
/// diff_id.
fn copy_storage_layer(
    storage: &crate::cstorage::StorageImage,
    image: &ResolvedImage,
    index: usize,
    blobs: &Path,
) -> Result<(BlobDigest, u64), SealError> {
    let layer = &image.layers[index];
    let digest = layer.diff_id;
    let path = blob_path(blobs, &digest);
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(blobs)
        .map_err(io_err("create temporary file in", blobs))?;
    let mut reader = storage.layer_stream(index)?;
    let mut hasher = sha2_reader::Hasher::default();
    let mut tee = io::BufWriter::new(sha2_reader::Tee {
        file: tmp.as_file_mut(),
        hasher: &mut hasher,
    });
    let size = io::copy(&mut reader, &mut tee).map_err(io_err("rebuild layer into", &path))?;
    tee.flush().map_err(io_err("write layer", &path))?;
    drop(tee);
    let actual = hasher.finish();
    if actual != digest {
        return Err(OciError::DiffIdMismatch {
            layer: index,
            digest: layer.digest,
            expected: digest,
            actual,
        }
        .into());
    }
    tmp.as_file()
        .sync_all()
        .map_err(io_err("sync layer copy for", &path))?;
    tmp.persist(&path)
        .map_err(|e| io_err("rename into place", &path)(e.error))?;
    Ok((digest, size))
}

/// Add `descriptor` to `index.json`, dropping entries already tagged `tag`.
fn update_index(layout: &Path, tag: &str, descriptor: Value) -> Result<(), SealError> {
    let path = layout.join("index.json");
    let bytes = fs::read(&path).map_err(io_err("read", &path))?;
    let dest_err = |reason: String| SealError::Dest {
        path: path.clone(),
        reason,
    };
    let mut index: Value =
        serde_json::from_slice(&bytes).map_err(|e| dest_err(format!("invalid JSON: {e}")))?;
    let top = index
        .as_object_mut()
        .ok_or_else(|| dest_err("not a JSON object".into()))?;
    let manifests = top
        .entry("manifests")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| dest_err("\"manifests\" is not an array".into()))?;
    manifests.retain(|entry| {
        entry
            .get("annotations")
            .and_then(|a| a.get(ANNOTATION_REF_NAME))
            .and_then(Value::as_str)
            != Some(tag)
    });
    manifests.push(descriptor);
    let out = serde_json::to_vec(&index).map_err(|e| dest_err(e.to_string()))?;
    write_atomic(layout, "index.json", &out)
}

/// A sha256 that can be fed through `io::copy`.
mod sha2_reader {
    use std::io;

    use cfsgate_image::ContentSha256;
    use sha2::Digest as _;

    use crate::digest::BlobDigest;

    #[derive(Default)]
    pub(super) struct Hasher(sha2::Sha256);

    impl io::Write for Hasher {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Hasher {
        pub(super) fn finish(self) -> BlobDigest {
            BlobDigest(ContentSha256(self.0.finalize().into()))
        }
    }

    /// Writes to a file and hashes what was written.
    pub(super) struct Tee<'a> {
        pub(super) file: &'a mut std::fs::File,
        pub(super) hasher: &'a mut Hasher,
    }

    impl io::Write for Tee<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = self.file.write(buf)?;
            self.hasher.0.update(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.file.flush()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_distribution_grammar() {
        for good in ["latest", "v1.2.3", "_x", "a-b_c.d", &"a".repeat(128)] {
            assert!(validate_tag(good).is_ok(), "{good}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "a b", &"a".repeat(129)] {
            assert!(validate_tag(bad).is_err(), "{bad}");
        }
    }
}
