//! The names of the repository's top-level entries, in one place so every module agrees
//! (the table of the layout is in the [store module](super) documentation). A leaf: it
//! imports nothing.

/// `objects/`: file content named by its fs-verity digest.
pub(crate) const OBJECTS_DIR: &str = "objects";
/// `images/`: composefs EROFS images named by their own fs-verity digest.
pub(crate) const IMAGES_DIR: &str = "images";
/// `refs/`: names holding image digests, gc's roots.
pub(crate) const REFS_DIR: &str = "refs";
/// `tmp/`: temporary files, renamed into place once complete.
pub(crate) const TMP_DIR: &str = "tmp";
/// `quarantine/`: corrupt objects and images moved aside by `fsck --repair`.
pub(crate) const QUARANTINE_DIR: &str = "quarantine";
/// `lock`: the empty file taken with `flock`.
pub(crate) const LOCK_FILE: &str = "lock";
/// `meta.json`: version, algorithm and verity mode.
pub(crate) const META_FILE: &str = "meta.json";
