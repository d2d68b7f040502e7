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
mod layout;
mod ref_file;
mod repository;

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
pub use repository::Repository;
pub use verity::VerityMode;
