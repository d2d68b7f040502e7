//! The object store (repository): one content-addressed directory shared by every image on a node.
//!
//! Identical files, whatever image, layer, owner or timestamp they came from, are one object here,
//! so they exist once on disk and once in the page cache.
//!
//! | path | what |
//! |---|---|
//! | `meta.json` | `{"version":1,"algorithm":"sha256","verity":"userspace"\|"kernel"}` ([`meta`]) |
//! | `lock` | empty file for `flock`: shared for writers and readers, exclusive for gc and repair ([`lock`]) |
//! | `objects/xx/rest` | file content named by its fs-verity SHA-256 digest (`xx` = first 2 hex digits): an [`ObjectDir`] ([`object_dir`], batches in [`objects`]) |
//! | `images/<hex>` | composefs EROFS images named by their own fs-verity digest ([`images`]) |
//! | `refs/<name>` | a name (may contain `/`) holding `<hex>\n`, the digest of an image: the gc roots ([`refs`]) |
//! | `sha256/xx/rest` | content index: symlinks from a content sha256 to the object holding it, written with every object ([`content_index`]) |
//! | `tmp/` | temporary files, renamed into place once complete (same file system as everything else); staged objects are `.cfsgate-tmp-<pid>-<n>` |
//! | `quarantine/` | corrupt objects and images moved aside by `fsck --repair` ([`fsck`]) |
//!
//! Invariants: a name in `objects/` or `images/` only ever appears for complete, synced content
//! (temporary file, `syncfs`, then rename); an image is stored only once every object it
//! references is present; gc ([`gc`]) runs only under the exclusive lock, so no writer holding
//! the shared lock can see an object vanish between writing it and writing the image that
//! references it. Concurrent writers of the same object are harmless: the content is identical,
//! so the first rename wins (`RENAME_NOREPLACE`) and the others drop their copies (or see it
//! present and skip it). The paths of this layout, for readers without an open repository,
//! are [`RepoPaths`] ([`paths`]).

pub mod content_index;
pub mod fsck;
pub mod gc;
pub mod images;
pub mod import;
pub mod lock;
pub mod meta;
pub mod object_dir;
pub mod objects;
pub mod paths;
pub mod refs;
pub mod text;
pub mod verity;

mod error;
mod fsutil;

use std::fs;
use std::path::{Path, PathBuf};

pub use content_index::ContentSha256;
pub use error::StoreError;
pub use fsck::FsckReport;
pub use gc::{GcReport, RemovedReport};
pub use images::ImageInfo;
pub use import::ImportReport;
pub use lock::{LockKind, RepoLock};
pub use meta::RepoMeta;
pub use object_dir::{Committed, ObjectDir, Offered, PendingObjects, Staged};
pub use objects::{BatchStats, ObjectBatch};
pub use paths::{RepoPaths, DEFAULT_REPO_PATH};
pub use verity::VerityMode;

/// Subdirectory names, in one place so every module agrees.
pub(crate) const OBJECTS_DIR: &str = "objects";
pub(crate) const IMAGES_DIR: &str = "images";
pub(crate) const REFS_DIR: &str = "refs";
pub(crate) const TMP_DIR: &str = "tmp";
pub(crate) const QUARANTINE_DIR: &str = "quarantine";
pub(crate) const LOCK_FILE: &str = "lock";
pub(crate) const META_FILE: &str = "meta.json";

/// An open repository. Cheap to share between threads (`&Repository` is all the methods need).
pub struct Repository {
    paths: RepoPaths,
    meta: RepoMeta,
    objects: ObjectDir,
}

impl Repository {
    /// Open an existing repository; fails if `meta.json` is missing or of an unknown version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let paths = RepoPaths::new(path.as_ref());
        let meta = meta::read(paths.root())?;
        ensure_dirs(&paths)?;
        let objects =
            ObjectDir::open_with_staging(&paths.objects_dir(), &paths.tmp_dir(), meta.verity)?;
        Ok(Repository {
            paths,
            meta,
            objects,
        })
    }

    /// Open the repository at `path`, creating it (directories and `meta.json`) if needed.
    /// A new repository records whether the file system can enforce fs-verity.
    pub fn create_or_open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let root = path.as_ref().to_path_buf();
        fs::create_dir_all(&root).map_err(StoreError::io("create repository directory", &root))?;
        if !root.join(META_FILE).exists() {
            let verity = verity::detect(&root)?;
            let fresh = RepoMeta::new(verity);
            meta::write_if_absent(&root, &fresh)?;
        }
        Self::open(root)
    }

    /// The repository directory.
    pub fn path(&self) -> &Path {
        self.paths.root()
    }

    /// The repository's layout.
    pub fn paths(&self) -> &RepoPaths {
        &self.paths
    }

    /// The object directory, `objects/` (staged files in `tmp/`).
    pub fn objects(&self) -> &ObjectDir {
        &self.objects
    }

    /// The metadata read from `meta.json`.
    pub fn meta(&self) -> &RepoMeta {
        &self.meta
    }

    /// Take the repository lock. Writers composing several steps (objects, then an image, then
    /// a ref) hold a shared lock across all of them so gc cannot run in between.
    pub fn lock(&self, kind: LockKind) -> Result<RepoLock, StoreError> {
        RepoLock::acquire(&self.dir(LOCK_FILE), kind)
    }

    pub(crate) fn dir(&self, name: &str) -> PathBuf {
        self.paths.root().join(name)
    }
}

fn ensure_dirs(paths: &RepoPaths) -> Result<(), StoreError> {
    for name in [OBJECTS_DIR, IMAGES_DIR, REFS_DIR, TMP_DIR] {
        let dir = paths.root().join(name);
        fs::create_dir_all(&dir).map_err(StoreError::io("create directory", &dir))?;
    }
    Ok(())
}
