//! Importing an OCI image into the object store: objects, the composefs image, OCI metadata, a ref.
//!
//! Every file larger than [`crate::INLINE_CONTENT_MAX`] goes into the repository's objects while
//! its layer is applied (an [`ObjectBatch`] behind the [`ObjectSink`] trait); the merged tree is
//! written as a composefs image and stored under `images/`; the image's manifest, config and
//! (for a skopeo `dir:` image) signature files are kept by digest so that a signature over the
//! manifest can be checked later against what was imported. A shared repository lock is held
//! from the first object to the ref, so gc cannot remove an object in between.
//!
//! What this module adds to a repository (beside `objects/`, `images/`, `refs/`):
//!
//! | path | content |
//! |---|---|
//! | `oci/blobs/sha256/<hex>` | a manifest, config or signature file, named by the sha256 of its exact bytes |
//! | `oci/manifests/<manifest hex>.json` | `{"image":"<composefs image hex>","manifest":"sha256:…","mediaType":"…","config":"sha256:…","convention":"cfsgate","signatures":["sha256:…",…]}` (compact JSON, this key order; [`ImportRecord`]) |
//!
//! Both are written as a temporary file in `tmp/`, synced, then renamed into place; a file that
//! is already present with the same bytes is not rewritten, so importing the same image twice
//! stores nothing new. gc does not look into `oci/`: metadata of an image gc removed stays
//! until the next import of that image rewrites it (it is small and harmless).
//!
//! Failure leaves nothing half imported: objects of a failed build (a layer whose diff_id or
//! tar is wrong, a seal that does not match) are either still temporary (removed with the
//! abandoned batch) or already durable (a size-triggered flush); those are removed at once,
//! with their content index entries, unless a stored image references them
//! ([`Repository::remove_unreferenced`], under the exclusive lock once this import's shared
//! locks are released). The image, the metadata and the ref are written only after every
//! object is.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use cfsgate_image::erofs::writer::{write_image, WriteOptions};
use cfsgate_image::fsverity::digest_bytes;
use cfsgate_image::store::refs::validate_ref_name;
use cfsgate_image::store::{LockKind, ObjectBatch, Repository, StoreError};
use cfsgate_image::{FsVeritySha256, Tree};

use crate::apply::{BuildOptions, TreeBuilder};
pub use crate::convention::BuiltImage;
use crate::convention::Convention;
use crate::digest::BlobDigest;
use crate::error::OciError;
use crate::layout::SourceKind;
use crate::resolve::{Layer, ResolvedImage};
use crate::seal_check::{check_seal_built, read_seal, SealError};
use crate::sink::ObjectSink;
use crate::transport::resolve;

/// Directory of content-addressed OCI metadata blobs inside a repository.
pub const REPO_BLOBS_DIR: &str = "oci/blobs/sha256";
/// Directory of per-manifest import records inside a repository.
pub const REPO_MANIFESTS_DIR: &str = "oci/manifests";
/// Largest signature file accepted from a `dir:` image (a cosign or GPG signature is a few KiB).
pub const MAX_SIGNATURE_SIZE: u64 = 1 << 20;
/// Most signature files read from a `dir:` image (`signature-1` … `signature-N`); real images
/// carry one or two.
pub const MAX_SIGNATURES: usize = 256;

/// Reports how a build goes. Every method has an empty default.
pub trait Progress: Sync {
    /// Layer `index` is about to be verified and applied.
    fn layer_started(&self, _index: usize, _layer: &Layer) {}
    /// `bytes` more of file content were hashed (and stored, for an import).
    fn content(&self, _bytes: u64) {}
    /// Layer `index` is applied.
    fn layer_done(&self, _index: usize, _layer: &Layer) {}
}

/// Reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// Apply every layer of `image` (contents into `sink`) and write the composefs image.
pub fn build_image(
    image: &ResolvedImage,
    sink: &dyn ObjectSink,
    progress: &dyn Progress,
) -> Result<BuiltImage, OciError> {
    let mut builder = TreeBuilder::new(BuildOptions::default());
    let sink = ProgressSink {
        inner: sink,
        progress,
    };
    for (index, layer) in image.layers.iter().enumerate() {
        progress.layer_started(index, layer);
        builder.apply_layer(&image.source, index, layer, &sink)?;
        progress.layer_done(index, layer);
    }
    let tree = builder.finish()?;
    let bytes = write_tree_image(&tree)?;
    Ok(BuiltImage {
        digest: digest_bytes(&bytes),
        image: bytes,
        tree,
    })
}

/// The composefs image of a tree, with the options every cfsgate digest uses.
pub(crate) fn write_tree_image(tree: &Tree) -> Result<Vec<u8>, OciError> {
    write_image(tree, &WriteOptions::default()).map_err(|e| OciError::Write(e.to_string()))
}

/// Passes content through to another sink, reporting bytes as they are read.
struct ProgressSink<'a> {
    inner: &'a dyn ObjectSink,
    progress: &'a dyn Progress,
}

struct ProgressReader<'a, 'r> {
    inner: &'r mut dyn Read,
    progress: &'a dyn Progress,
}

impl Read for ProgressReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.content(n as u64);
        Ok(n)
    }
}

impl ObjectSink for ProgressSink<'_> {
    fn store(&self, content: &mut dyn Read) -> io::Result<(FsVeritySha256, u64)> {
        let mut reader = ProgressReader {
            inner: content,
            progress: self.progress,
        };
        self.inner.store(&mut reader)
    }
}

/// The repository's object writing behind the [`ObjectSink`] trait.
pub struct RepoSink<'r> {
    batch: ObjectBatch<'r>,
}

impl<'r> RepoSink<'r> {
    /// A sink writing into a new batch of `repo` (holds a shared lock until committed).
    pub fn new(repo: &'r Repository) -> Result<Self, StoreError> {
        Ok(RepoSink {
            batch: repo.object_batch()?,
        })
    }

    /// Make every stored object durable and visible.
    pub fn commit(self) -> Result<cfsgate_image::store::BatchStats, StoreError> {
        self.batch.commit()
    }
}

impl ObjectSink for RepoSink<'_> {
    fn store(&self, content: &mut dyn Read) -> io::Result<(FsVeritySha256, u64)> {
        self.batch
            .add_reader_counted(content, Path::new("<layer content>"))
            .map_err(io::Error::other)
    }
}

/// Anything that can go wrong importing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The image cannot be read, resolved or applied.
    #[error(transparent)]
    Oci(#[from] OciError),
    /// The repository refused an object, the image or the ref.
    #[error("repository: {0}")]
    Store(#[from] StoreError),
    /// The image's seal label does not match the composefs image built from it.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// A partial (zstd:chunked) pull was refused.
    #[error(transparent)]
    Chunked(#[from] crate::chunked::ChunkedError),
    /// A local file cannot be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error the kernel returned.
        #[source]
        source: io::Error,
    },
    /// The repository's name for the stored image differs from the digest of the bytes written (a
    /// bug or a changing store).
    #[error("the composefs image written is {written}, but the repository stored it as {stored}")]
    DigestChanged {
        /// The fs-verity digest of the image as written.
        written: FsVeritySha256,
        /// The digest the repository stored it under.
        stored: FsVeritySha256,
    },
    /// An import record cannot be read or is malformed.
    #[error("import record {path}: {reason}")]
    Record {
        /// The record.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The image's signatures cannot be copied into the repository.
    #[error("{path}: {reason}")]
    Signature {
        /// Where the signatures were read.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ImportError + 'a {
    move |source| ImportError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// What an import did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportReport {
    /// The composefs image (its fs-verity digest), now under `images/`.
    pub image_digest: FsVeritySha256,
    /// The manifest imported (sha256 of its exact bytes).
    pub manifest_digest: BlobDigest,
    /// Its image config.
    pub config_digest: BlobDigest,
    /// Objects this import added to the repository.
    pub new_objects: u64,
    /// Content bytes of those objects.
    pub new_object_bytes: u64,
    /// Objects that were already present (in the repository or earlier in this import).
    pub reused_objects: u64,
    /// Whether the composefs image itself was new.
    pub new_image: bool,
    /// The seal label the config carried (already checked against `image_digest`).
    pub seal: Option<FsVeritySha256>,
    /// How `image_digest` was made from the layers (the seal's convention, when sealed).
    pub convention: Convention,
    /// Signature files stored with the manifest (`dir:` images).
    pub signatures: Vec<BlobDigest>,
}

/// Resolve `reference` (for the running platform) and import it; see [`import_image`].
pub fn import(
    repo: &Repository,
    reference: &str,
    ref_name: Option<&str>,
) -> Result<ImportReport, ImportError> {
    import_image(repo, &resolve(reference)?, ref_name, &NoProgress)
}

/// Import a resolved image: objects, composefs image, OCI metadata, then `ref_name` (if any).
/// A sealed image whose label differs from the image built here is refused before anything but
/// unreferenced objects is written.
pub fn import_image(
    repo: &Repository,
    image: &ResolvedImage,
    ref_name: Option<&str>,
    progress: &dyn Progress,
) -> Result<ImportReport, ImportError> {
    import_built(repo, image, ref_name, &mut |sink| {
        Ok(build_image(image, sink, progress)?)
    })
}

/// [`import_image`] with the tree and composefs image built by `build` (a full build, or a
/// partial one from zstd:chunked tables), whose objects go into the sink it is given.
pub(crate) fn import_built(
    repo: &Repository,
    image: &ResolvedImage,
    ref_name: Option<&str>,
    build: &mut dyn FnMut(&dyn ObjectSink) -> Result<BuiltImage, ImportError>,
) -> Result<ImportReport, ImportError> {
    if let Some(name) = ref_name {
        validate_ref_name(name)?;
    }
    let signatures = read_signatures(image)?;
    let seal = read_seal(image)?;
    // Held across objects, image, metadata and ref: gc waits until the image is named.
    let lock = repo.lock(LockKind::Shared)?;
    let sink = RepoSink::new(repo)?;
    // Before committing: a failure leaves temporary files, which the abandoned batch removes,
    // and objects a size-triggered flush made durable, which are removed unless used.
    let checked = build(&sink).and_then(|mut built| {
        let mut convention = Convention::Mkcomposefs;
        if seal.is_some() {
            let matched = check_seal_built(image, &built)?;
            convention = matched.convention;
            // A seal made under another convention names that convention's image: store it.
            if let Some(bytes) = matched.image {
                built.image = bytes;
                built.digest = matched.digest;
            }
        }
        Ok((built, convention))
    });
    let (built, convention) = match checked {
        Ok(done) => done,
        Err(e) => {
            let written = sink.batch.abandon();
            drop(lock);
            // Best effort: what cannot be removed now stays for gc, as before.
            let _ = repo.remove_unreferenced(&written);
            return Err(e);
        }
    };
    let stats = sink.commit()?;
    let new_image = !repo.has_image(&built.digest);
    let stored = repo.write_image(&built.image)?;
    if stored != built.digest {
        return Err(ImportError::DigestChanged {
            written: built.digest,
            stored,
        });
    }

    put_blob(repo, &image.manifest_bytes)?;
    put_blob(repo, &image.config_bytes)?;
    let mut signature_digests = Vec::with_capacity(signatures.len());
    for signature in &signatures {
        signature_digests.push(put_blob(repo, signature)?);
    }
    let record = RawImportRecord {
        image: built.digest.to_hex(),
        manifest: image.manifest_digest.to_string(),
        media_type: image.manifest_media_type.clone(),
        config: image.config_digest.to_string(),
        convention: convention.name().to_string(),
        signatures: signature_digests.iter().map(|d| d.to_string()).collect(),
    };
    let record_bytes = serde_json::to_vec(&record).map_err(|e| ImportError::Io {
        what: "encode import record for",
        path: image.source.path().to_path_buf(),
        source: io::Error::other(e),
    })?;
    put_file(
        repo,
        &Path::new(REPO_MANIFESTS_DIR).join(format!("{}.json", image.manifest_digest.hex())),
        &record_bytes,
    )?;
    if let Some(name) = ref_name {
        repo.set_ref(name, &built.digest)?;
    }
    Ok(ImportReport {
        image_digest: built.digest,
        manifest_digest: image.manifest_digest,
        config_digest: image.config_digest,
        new_objects: stats.objects_written,
        new_object_bytes: stats.bytes_written,
        reused_objects: stats.objects_present,
        new_image,
        seal,
        convention,
        signatures: signature_digests,
    })
}

/// Where a metadata blob of this digest lives in a repository.
pub fn repo_blob_path(repo: &Repository, digest: &BlobDigest) -> PathBuf {
    repo.path().join(REPO_BLOBS_DIR).join(digest.hex())
}

/// The largest import record read: it names five digests, a media type and a convention (a
/// few hundred bytes) plus one digest per signature, of which an image has a handful.
pub const MAX_IMPORT_RECORD_SIZE: u64 = 1 << 20;

/// `oci/manifests/<manifest hex>.json` as stored (see the module docs; this field order).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImportRecord {
    image: String,
    manifest: String,
    #[serde(rename = "mediaType")]
    media_type: String,
    config: String,
    convention: String,
    signatures: Vec<String>,
}

/// What an import of a manifest recorded in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRecord {
    /// The composefs image built from the manifest's layers.
    pub image: FsVeritySha256,
    /// The manifest.
    pub manifest: BlobDigest,
    /// The manifest's media type.
    pub media_type: String,
    /// The image config.
    pub config: BlobDigest,
    /// The seal convention the image matched (`cfsgate`, `composefs-rs`).
    pub convention: String,
    /// The signatures stored with it (blobs in `oci/blobs/sha256/`).
    pub signatures: Vec<BlobDigest>,
}

/// The import record of a manifest (see the module docs), if that manifest was imported. The
/// file is type-checked before it is opened (a FIFO planted in the store is refused, not waited
/// on) and read under [`MAX_IMPORT_RECORD_SIZE`]; a record of another manifest is refused.
pub fn read_import_record(
    repo: &Repository,
    manifest: &BlobDigest,
) -> Result<Option<ImportRecord>, ImportError> {
    use cfsgate_sys::file::{read, Follow, SizeLimit};
    let path = repo
        .path()
        .join(REPO_MANIFESTS_DIR)
        .join(format!("{}.json", manifest.hex()));
    let bad = |reason: String| ImportError::Record {
        path: path.clone(),
        reason,
    };
    let limit = SizeLimit::new("import record", MAX_IMPORT_RECORD_SIZE);
    let bytes = match read(&path, Follow::NoSymlinks, limit) {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(bad(e.reason())),
    };
    let raw: RawImportRecord = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let digest =
        |field: &str, text: &str| BlobDigest::parse(text).map_err(|e| bad(format!("{field}: {e}")));
    let record = ImportRecord {
        image: FsVeritySha256::from_hex(&raw.image).map_err(|e| bad(format!("image: {e}")))?,
        manifest: digest("manifest", &raw.manifest)?,
        media_type: raw.media_type,
        config: digest("config", &raw.config)?,
        convention: raw.convention,
        signatures: raw
            .signatures
            .iter()
            .map(|s| digest("signatures", s))
            .collect::<Result<_, _>>()?,
    };
    if record.manifest != *manifest {
        return Err(bad(format!(
            "records the manifest {}, not {manifest}",
            record.manifest
        )));
    }
    Ok(Some(record))
}

/// Store a metadata blob by its sha256.
fn put_blob(repo: &Repository, bytes: &[u8]) -> Result<BlobDigest, ImportError> {
    let digest = BlobDigest::of(bytes);
    put_file(repo, &Path::new(REPO_BLOBS_DIR).join(digest.hex()), bytes)?;
    Ok(digest)
}

/// Write `bytes` to `relpath` of the repository unless it already holds exactly them: a synced
/// temporary file in `tmp/`, renamed into place, then the directory synced.
fn put_file(repo: &Repository, relpath: &Path, bytes: &[u8]) -> Result<(), ImportError> {
    let dest = repo.path().join(relpath);
    // What is there already, if it is a regular file of at most our length (a FIFO or a device
    // planted in its place is not opened, a huge file not read: either is simply replaced).
    let limit = cfsgate_sys::file::SizeLimit::new("stored OCI metadata", bytes.len() as u64);
    if let Ok(existing) =
        cfsgate_sys::file::read(&dest, cfsgate_sys::file::Follow::NoSymlinks, limit)
    {
        if existing == bytes {
            return Ok(());
        }
    }
    let parent = dest.parent().ok_or_else(|| {
        io_err("no parent directory for", &dest)(io::ErrorKind::InvalidInput.into())
    })?;
    fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
    let tmp_dir = repo.path().join("tmp");
    let mut tmp = tempfile::Builder::new()
        .prefix(".oci-")
        .tempfile_in(&tmp_dir)
        .map_err(io_err("create temporary file in", &tmp_dir))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io_err("write temporary file for", &dest))?;
    tmp.persist(&dest)
        .map_err(|e| io_err("rename into place", &dest)(e.error))?;
    fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync directory", parent))?;
    Ok(())
}

/// The `signature-1` … `signature-N` files of a `dir:` image, the stored signatures of a
/// containers-storage image (none for an OCI layout).
fn read_signatures(image: &ResolvedImage) -> Result<Vec<Vec<u8>>, ImportError> {
    if image.source.kind() == SourceKind::ContainersStorage {
        let found = crate::cstorage::signatures(image)?;
        if found.len() > MAX_SIGNATURES {
            return Err(ImportError::Signature {
                path: image.source.path().to_path_buf(),
                reason: format!("more than {MAX_SIGNATURES} signatures"),
            });
        }
        return Ok(found.into_iter().map(|s| s.bytes).collect());
    }
    if image.source.kind() != SourceKind::Dir {
        return Ok(Vec::new());
    }
    let mut signatures = Vec::new();
    for n in 1..=MAX_SIGNATURES + 1 {
        let path = image.source.path().join(format!("signature-{n}"));
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(signatures),
            Err(e) => return Err(io_err("open signature", &path)(e)),
        };
        if n > MAX_SIGNATURES {
            return Err(ImportError::Signature {
                path,
                reason: format!("more than {MAX_SIGNATURES} signature files"),
            });
        }
        let mut bytes = Vec::new();
        file.take(MAX_SIGNATURE_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err("read signature", &path))?;
        if bytes.len() as u64 > MAX_SIGNATURE_SIZE {
            return Err(ImportError::Signature {
                path,
                reason: format!("larger than {MAX_SIGNATURE_SIZE} bytes"),
            });
        }
        signatures.push(bytes);
    }
    Ok(signatures)
}
