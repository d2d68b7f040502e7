//! `meta.json`: the versioned description of a repository.
//!
//! | field | value |
//! |---|---|
//! | `version` | [`FORMAT_VERSION`] (1); any other value is refused |
//! | `algorithm` | `"sha256"`: the fs-verity hash naming objects and images |
//! | `verity` | `"kernel"` if the file system enforces fs-verity on objects and images, `"userspace"` if digests are only checked by cfsgate (`"none"`, a mount option, is refused) |

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::fsutil::{self, StoredReadError};
use super::layout::{META_FILE, TMP_DIR};
use super::{StoreError, VerityMode};

/// The repository layout version this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The only object naming algorithm (composefs uses SHA-256 fs-verity digests).
pub const ALGORITHM: &str = "sha256";
/// `meta.json` is a few dozen bytes; anything much bigger is not ours.
const MAX_META_LEN: u64 = 64 * 1024;

/// The content of `meta.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoMeta {
    /// Repository layout version; only [`FORMAT_VERSION`] is accepted.
    pub version: u32,
    /// Object naming algorithm; always [`ALGORITHM`].
    pub algorithm: String,
    /// How digests are enforced in this repository, fixed when it is created.
    pub verity: VerityMode,
}

impl RepoMeta {
    /// Metadata for a new repository.
    pub fn new(verity: VerityMode) -> Self {
        RepoMeta {
            version: FORMAT_VERSION,
            algorithm: ALGORITHM.to_string(),
            verity,
        }
    }
}

/// Read and validate `root/meta.json`.
pub(crate) fn read(root: &Path) -> Result<RepoMeta, StoreError> {
    let path = root.join(META_FILE);
    // One open and fstat (O_NOFOLLOW, O_NONBLOCK): only a regular file is read.
    let text = fsutil::read_stored(&path, MAX_META_LEN).map_err(|e| match e {
        StoredReadError::TooLarge => StoreError::BadMeta {
            path: path.clone(),
            reason: format!("more than {MAX_META_LEN} bytes"),
        },
        StoredReadError::Io(source) => StoreError::NotARepository {
            path: root.to_path_buf(),
            source,
        },
        StoredReadError::Symlink => StoreError::BadMeta {
            path: path.clone(),
            reason: "a symbolic link (a repository's meta.json is a regular file)".into(),
        },
        StoredReadError::NotRegular => StoreError::BadMeta {
            path: path.clone(),
            reason: "not a regular file".into(),
        },
    })?;
    let meta: RepoMeta = serde_json::from_slice(&text).map_err(|e| StoreError::BadMeta {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if meta.version != FORMAT_VERSION {
        return Err(StoreError::BadMeta {
            path,
            reason: format!(
                "layout version {} (this cfsgate knows {FORMAT_VERSION})",
                meta.version
            ),
        });
    }
    if meta.algorithm != ALGORITHM {
        return Err(StoreError::BadMeta {
            path,
            reason: format!("algorithm {:?} (only {ALGORITHM:?})", meta.algorithm),
        });
    }
    // The one VerityMode also names the mount option `none`; a repository is never that.
    if meta.verity == VerityMode::None {
        return Err(StoreError::BadMeta {
            path,
            reason: "verity \"none\" (a repository's verity is \"kernel\" or \"userspace\")".into(),
        });
    }
    Ok(meta)
}

/// Write `meta.json` atomically unless another process created it first (then theirs stands).
pub(crate) fn write_if_absent(root: &Path, meta: &RepoMeta) -> Result<(), StoreError> {
    let tmp_dir = root.join(TMP_DIR);
    fs::create_dir_all(&tmp_dir).map_err(StoreError::io("create directory", &tmp_dir))?;
    let mut text = serde_json::to_vec(meta).map_err(|e| StoreError::BadMeta {
        path: root.join(META_FILE),
        reason: e.to_string(),
    })?;
    text.push(b'\n');
    let (mut file, tmp) = fsutil::create_temp(&tmp_dir)?;
    file.write_all(&text)
        .map_err(StoreError::io("write", &tmp))?;
    file.sync_all().map_err(StoreError::io("fsync", &tmp))?;
    drop(file);
    let dest = root.join(META_FILE);
    // link() fails if the name exists, unlike rename(): the first creator wins.
    let linked = fs::hard_link(&tmp, &dest);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => fsutil::sync_dir(root),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::io("create", &dest)(e)),
    }
}
