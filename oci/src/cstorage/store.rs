//! One image of a containers-storage store, read-only, under the store's own locks.
//!
//! | file (below the graph root) | what is taken from it |
//! |---|---|
//! | `DRIVER-images/images.lock`, `DRIVER-layers/layers.lock` | shared POSIX record locks (whole file, `F_RDLCK`), as containers/storage's readers take them, held while the image is open |
//! | `DRIVER-images/images.json` | the image record: `id`, `names`, `digest`, `layer` (top layer ID), `metadata` (signature sizes), `big-data-names` |
//! | `DRIVER-images/<id>/<big-data file>` | manifests (key `manifest-sha256:<hex>`, or `manifest`), the config (key `sha256:<image id>`), signatures (keys `signature-<manifest hex>` and `signatures`) |
//! | `DRIVER-layers/layers.json`, `volatile-layers.json` | each layer's `parent`, `diff-digest`, `flags.incomplete` |
//! | `DRIVER-layers/<id>.tar-split.gz` and the layer's files (`overlay/<id>/diff`, `vfs/dir/<id>`) | the layer tar, see [`super::tarsplit`] |
//!
//! A big-data file is named by its key when the key is made only of `[0-9a-z.]`, else by `=`
//! followed by the standard base64 of the key (containers/storage `makeBigDataBaseName`).
//! Nothing read here is trusted: manifests and configs are checked against their digests by
//! the resolver, layers against the config's diff_ids, signatures by the verifier. The JSON
//! records only say where to look; IDs are checked to be 64 hex digits before they become
//! file names.
//!
//! POSIX record locks belong to the process: a second open of the same store in one process
//! shares them, and the first handle dropped releases them for both.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rustix::fs::{FlockOperation, Mode, OFlags};
use serde::Deserialize;

use super::conf::{Driver, StorageConf, StoreLocation};
use super::reference::{is_image_id, ImageSpec, NameSelector, StorageRef};
use super::tarsplit::TarSplitReader;
use crate::digest::BlobDigest;
use crate::error::OciError;

/// Longest `images.json` / `layers.json` read (about 2 KiB a record: ~30,000 records).
pub const MAX_RECORDS_FILE: u64 = 64 << 20;
/// Longest signature big-data value (all signatures of one manifest together).
pub const MAX_SIGNATURES_SIZE: u64 = 4 << 20;
/// How long to wait for a writer to release the store's locks.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);
/// How often to retry a lock held by a writer.
const LOCK_RETRY: Duration = Duration::from_millis(5);

/// An image record of `images.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct ImageRecord {
    /// The image ID (64 hex digits: the config's sha256).
    pub id: String,
    /// The manifest digest the image was pulled by, when recorded.
    #[serde(default)]
    pub digest: Option<String>,
    /// Its names (`repository:tag` or `repository@digest`).
    #[serde(default)]
    pub names: Vec<String>,
    /// The ID of its top layer (`None` for an image without layers).
    #[serde(default)]
    pub layer: Option<String>,
    /// containers/image's JSON metadata as a string (holds the signature sizes).
    #[serde(default)]
    pub metadata: Option<String>,
    /// Names of the big-data values stored with it (manifests, config, signatures).
    #[serde(default, rename = "big-data-names")]
    pub big_data_names: Vec<String>,
}

/// A layer record of `layers.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct LayerRecord {
    /// The layer ID.
    pub id: String,
    /// The layer below it, `None` for a base layer.
    #[serde(default)]
    pub parent: Option<String>,
    /// sha256 of its uncompressed tar (the config's diff_id), when recorded.
    #[serde(default, rename = "diff-digest")]
    pub diff_digest: Option<String>,
    /// Flags containers/storage sets on the layer (`incomplete` while being written).
    #[serde(default)]
    pub flags: BTreeMap<String, serde_json::Value>,
}

/// The signature sizes in an image's `metadata` (containers/image `storageImageMetadata`).
#[derive(Debug, Default, Deserialize)]
struct ImageMetadata {
    #[serde(default, rename = "signature-sizes")]
    signature_sizes: Vec<u64>,
    #[serde(default, rename = "signatures-sizes")]
    signatures_sizes: BTreeMap<String, Vec<u64>>,
}

/// One signature blob as stored (containers/image `signature.Blob` format).
#[derive(Clone, Debug)]
pub struct StoredSignature {
    /// `signature-<hex> #N`, for reports.
    pub source: String,
    /// The signature's bytes.
    pub bytes: Vec<u8>,
}

/// An opened image: its record, its layers bottom first, and handles below the graph root.
#[derive(Debug)]
pub struct StorageImage {
    /// The store the image is in.
    pub location: StoreLocation,
    /// The image's record from `images.json`.
    pub record: ImageRecord,
    /// Layers from the base up.
    pub layers: Vec<LayerRecord>,
    /// The reference with the store made explicit and the image pinned by ID.
    pub canonical: StorageRef,
    graph_root: OwnedFd,
    data_dir: OwnedFd,
    _locks: Vec<File>,
}

/// The big-data file name of `key`.
pub fn big_data_file_name(key: &str) -> String {
    if key
        .bytes()
        .all(|b| b == b'.' || b.is_ascii_digit() || b.is_ascii_lowercase())
    {
        key.to_string()
    } else {
        format!("={}", base64::engine::general_purpose::STANDARD.encode(key))
    }
}

fn err(path: &Path, reason: impl Into<String>) -> OciError {
    OciError::Storage {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Open a directory below `dir` without following symlinks anywhere on the way.
pub(crate) fn open_dir_below(dir: &OwnedFd, rel: &str) -> std::io::Result<OwnedFd> {
    rustix::fs::openat2(
        dir,
        rel,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        rustix::fs::ResolveFlags::BENEATH | rustix::fs::ResolveFlags::NO_SYMLINKS,
    )
    .map_err(Into::into)
}

/// Open a regular file below `dir` (no symlinks, non-blocking, type-checked) and read at most
/// `limit` bytes of it.
pub(crate) fn read_below(dir: &OwnedFd, rel: &str, limit: u64) -> Result<Vec<u8>, std::io::Error> {
    let file = open_file_below(dir, rel)?;
    let mut data = Vec::new();
    file.take(limit + 1).read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(data)
}

pub(crate) fn open_file_below(dir: &OwnedFd, rel: &str) -> std::io::Result<File> {
    let fd = rustix::fs::openat2(
        dir,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::empty(),
        rustix::fs::ResolveFlags::BENEATH | rustix::fs::ResolveFlags::NO_SYMLINKS,
    )?;
    let file = File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// Take a shared lock on `rel` below the graph root, waiting up to [`LOCK_WAIT`].
pub(crate) fn lock_shared(root: &OwnedFd, graph_root: &Path, rel: &str) -> Result<File, OciError> {
    let path = graph_root.join(rel);
    let file = open_file_below(root, rel).map_err(|e| err(&path, format!("lock file: {e}")))?;
    let start = Instant::now();
    loop {
        match rustix::fs::fcntl_lock(&file, FlockOperation::NonBlockingLockShared) {
            Ok(()) => return Ok(file),
            Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::ACCESS => {
                if start.elapsed() > LOCK_WAIT {
                    return Err(err(
                        &path,
                        format!("still locked by a writer after {} s", LOCK_WAIT.as_secs()),
                    ));
                }
                std::thread::sleep(LOCK_RETRY);
            }
            Err(e) => return Err(err(&path, format!("locking: {e}"))),
        }
    }
}

pub(crate) fn read_records<T: for<'de> Deserialize<'de>>(
    root: &OwnedFd,
    graph_root: &Path,
    rel: &str,
    optional: bool,
) -> Result<Vec<T>, OciError> {
    let path = graph_root.join(rel);
    match read_below(root, rel, MAX_RECORDS_FILE) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Vec::new()),
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| err(&path, e.to_string())),
        Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(err(&path, e.to_string())),
    }
}

impl StorageImage {
    /// Open the image `reference` names, in the store storage.conf and the reference locate.
    pub fn open(reference: &StorageRef) -> Result<Self, OciError> {
        let location = StorageConf::load()?.locate(reference)?;
        Self::open_at(reference, location)
    }

    /// Open the image `reference` names in the store at `location`.
    pub fn open_at(reference: &StorageRef, location: StoreLocation) -> Result<Self, OciError> {
        let gr = &location.graph_root;
        let root: OwnedFd = File::open(gr)
            .map_err(|e| err(gr, format!("graph root: {e}")))?
            .into();
        let driver = location.driver.name();
        let images_dir = format!("{driver}-images");
        let layers_dir = format!("{driver}-layers");
        let locks = vec![
            lock_shared(&root, gr, &format!("{layers_dir}/layers.lock"))?,
            lock_shared(&root, gr, &format!("{images_dir}/images.lock"))?,
        ];
        let images: Vec<ImageRecord> =
            read_records(&root, gr, &format!("{images_dir}/images.json"), false)?;
        let record =
            find_image(&images, &reference.image).map_err(|reason| OciError::NotFound {
                reference: reference.to_string(),
                reason,
            })?;
        if !is_image_id(&record.id) {
            return Err(err(
                gr,
                format!("image ID {:?} is not 64 hex digits", record.id),
            ));
        }
        let mut layer_records: Vec<LayerRecord> =
            read_records(&root, gr, &format!("{layers_dir}/layers.json"), false)?;
        layer_records.extend(read_records::<LayerRecord>(
            &root,
            gr,
            &format!("{layers_dir}/volatile-layers.json"),
            true,
        )?);
        let layers = layer_chain(&layer_records, record.layer.as_deref())
            .map_err(|reason| err(gr, format!("image {}: {reason}", record.id)))?;
        let data_dir = open_dir_below(&root, &format!("{images_dir}/{}", record.id))
            .map_err(|e| err(&gr.join(&images_dir).join(&record.id), e.to_string()))?;
        let canonical = StorageRef {
            driver: Some(driver.to_string()),
            graph_root: Some(location.graph_root.clone()),
            run_root: Some(location.run_root.clone()),
            image: ImageSpec::Id(record.id.clone()),
        };
        Ok(StorageImage {
            location,
            record,
            layers,
            canonical,
            graph_root: root,
            data_dir,
            _locks: locks,
        })
    }

    /// The image's data directory, for reports.
    pub fn data_path(&self) -> PathBuf {
        self.location
            .graph_root
            .join(format!("{}-images", self.location.driver.name()))
            .join(&self.record.id)
    }

    pub(crate) fn data_dir(&self) -> &OwnedFd {
        &self.data_dir
    }

    fn has_big_data(&self, key: &str) -> bool {
        self.record.big_data_names.iter().any(|k| k == key)
    }

    /// Read the big-data value `key` (at most `limit` bytes).
    pub fn read_big_data(&self, key: &str, limit: u64) -> Result<Vec<u8>, OciError> {
        let name = big_data_file_name(key);
        read_below(&self.data_dir, &name, limit).map_err(|e| {
            err(
                &self.data_path().join(&name),
                format!("big data {key:?}: {e}"),
            )
        })
    }

    /// The manifest this reference selects: `(digest, exact bytes)`, the digest checked.
    pub fn manifest(
        &self,
        selector: &ImageSpec,
        limit: u64,
    ) -> Result<(BlobDigest, Vec<u8>), OciError> {
        let recorded = match &self.record.digest {
            Some(d) => Some(BlobDigest::parse(d)?),
            None => None,
        };
        let wanted = match selector {
            ImageSpec::Named {
                selector: NameSelector::Digest(d),
                ..
            } => Some(*d),
            _ => recorded,
        };
        let (key, expected) = match wanted {
            Some(d) if self.has_big_data(&format!("manifest-{d}")) => {
                (format!("manifest-{d}"), Some(d))
            }
            Some(d) if recorded == Some(d) => ("manifest".to_string(), Some(d)),
            Some(d) => {
                return Err(err(
                    &self.data_path(),
                    format!("image {} has no manifest {d}", self.record.id),
                ))
            }
            None => ("manifest".to_string(), None),
        };
        let bytes = self.read_big_data(&key, limit)?;
        let actual = BlobDigest::of(&bytes);
        if let Some(expected) = expected {
            if actual != expected {
                return Err(OciError::DigestMismatch { expected, actual });
            }
        }
        Ok((actual, bytes))
    }

    /// The signatures stored for `manifest` (empty when there are none).
    pub fn signatures(&self, manifest: &BlobDigest) -> Result<Vec<StoredSignature>, OciError> {
        let metadata: ImageMetadata = match self.record.metadata.as_deref() {
            None | Some("") => ImageMetadata::default(),
            Some(text) => serde_json::from_str(text)
                .map_err(|e| err(&self.data_path(), format!("image metadata: {e}")))?,
        };
        let is_default = self.record.digest.as_deref() == Some(manifest.to_string().as_str());
        let (key, sizes) = match metadata.signatures_sizes.get(&manifest.to_string()) {
            Some(sizes) => (format!("signature-{}", manifest.hex()), sizes.clone()),
            None if is_default => ("signatures".to_string(), metadata.signature_sizes),
            None => return Ok(Vec::new()),
        };
        if sizes.is_empty() {
            return Ok(Vec::new());
        }
        let blob = self.read_big_data(&key, MAX_SIGNATURES_SIZE)?;
        let total = sizes.iter().try_fold(0u64, |sum, s| sum.checked_add(*s));
        if total != Some(blob.len() as u64) {
            return Err(err(
                &self.data_path(),
                format!(
                    "big data {key:?} has {} bytes, the image metadata's signature sizes add up to {}",
                    blob.len(),
                    total.map_or("more than 2^64".to_string(), |t| t.to_string())
                ),
            ));
        }
        let mut found = Vec::with_capacity(sizes.len());
        let mut at = 0usize;
        for (n, size) in sizes.iter().enumerate() {
            let end = at + *size as usize;
            found.push(StoredSignature {
                source: format!("{}/{} #{}", self.data_path().display(), key, n + 1),
                bytes: blob[at..end].to_vec(),
            });
            at = end;
        }
        Ok(found)
    }

    /// The reassembled tar stream of layer `index` (bottom = 0).
    pub fn layer_stream(&self, index: usize) -> Result<TarSplitReader, OciError> {
        let layer = self.layers.get(index).ok_or_else(|| {
            err(
                &self.location.graph_root,
                format!("no layer {index} in image {}", self.record.id),
            )
        })?;
        let gr = &self.location.graph_root;
        let split_rel = format!(
            "{}-layers/{}.tar-split.gz",
            self.location.driver.name(),
            layer.id
        );
        let split = open_file_below(&self.graph_root, &split_rel).map_err(|e| {
            err(
                &gr.join(&split_rel),
                format!(
                    "tar-split of layer {index} (needed to rebuild the layer tar exactly): {e}"
                ),
            )
        })?;
        let files_rel = self.location.driver.layer_dir(&layer.id);
        let files = open_dir_below(&self.graph_root, &files_rel)
            .map_err(|e| err(&gr.join(&files_rel), format!("files of layer {index}: {e}")))?;
        Ok(TarSplitReader::new(split, files))
    }

    /// The driver of the store.
    pub fn driver(&self) -> Driver {
        self.location.driver
    }
}

fn find_image<'a>(images: &'a [ImageRecord], spec: &ImageSpec) -> Result<ImageRecord, String> {
    let found: Vec<&'a ImageRecord> = match spec {
        ImageSpec::Id(id) => images.iter().filter(|i| &i.id == id).collect(),
        ImageSpec::Named {
            repository,
            selector: NameSelector::Tag(tag),
        } => {
            let name = format!("{repository}:{tag}");
            images.iter().filter(|i| i.names.contains(&name)).collect()
        }
        ImageSpec::Named {
            repository,
            selector: NameSelector::Digest(digest),
        } => {
            let exact = format!("{repository}@{digest}");
            let key = format!("manifest-{digest}");
            let of_repo = |n: &String| {
                n.strip_prefix(repository.as_str())
                    .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('@'))
            };
            images
                .iter()
                .filter(|i| {
                    i.names.contains(&exact)
                        || (i.names.iter().any(of_repo)
                            && (i.big_data_names.contains(&key)
                                || i.digest.as_deref() == Some(digest.to_string().as_str())))
                })
                .collect()
        }
    };
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!("no image named {} in the store", spec.name())),
        _ => Err(format!(
            "{} images are named {} (the store is inconsistent)",
            found.len(),
            spec.name()
        )),
    }
}

/// Layers from the top layer down its parents, returned bottom first.
fn layer_chain(records: &[LayerRecord], top: Option<&str>) -> Result<Vec<LayerRecord>, String> {
    let by_id: BTreeMap<&str, &LayerRecord> = records.iter().map(|l| (l.id.as_str(), l)).collect();
    let mut chain = Vec::new();
    let mut next = top.filter(|t| !t.is_empty());
    while let Some(id) = next {
        if chain.len() > crate::limits::MAX_LAYERS {
            return Err(format!("more than {} layers", crate::limits::MAX_LAYERS));
        }
        let layer = by_id
            .get(id)
            .ok_or_else(|| format!("layer {id:?} is not in layers.json"))?;
        if !is_image_id(&layer.id) {
            return Err(format!("layer ID {:?} is not 64 hex digits", layer.id));
        }
        if layer.flags.get("incomplete") == Some(&serde_json::Value::Bool(true)) {
            return Err(format!("layer {id} is incomplete (a pull was interrupted)"));
        }
        chain.push((*layer).clone());
        next = layer.parent.as_deref().filter(|p| !p.is_empty());
    }
    chain.reverse();
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_data_names_follow_containers_storage() {
        assert_eq!(big_data_file_name("manifest"), "manifest");
        assert_eq!(big_data_file_name("signatures"), "signatures");
        // "sha256:" has a ':', so the key is base64-encoded.
        assert_eq!(big_data_file_name("sha256:ab"), "=c2hhMjU2OmFi");
        assert_eq!(
            big_data_file_name("manifest-sha256:00"),
            "=bWFuaWZlc3Qtc2hhMjU2OjAw"
        );
    }
}
