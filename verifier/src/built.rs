//! The gate's records of the composefs images it built from an unsealed image's verified
//! layers, so that the next start of that image mounts the stored image instead of building it
//! again.
//!
//! | path | content |
//! |---|---|
//! | `REPO/oci/built/<config hex>.json` | `{"version":1,"config":"sha256:…","diff_ids":["sha256:…",…],"image":"<hex>","convention":"mkcomposefs"\|"composefs-rs","mac":"<hex>"}` |
//! | the key file (the gate: `RUN_DIR/.built-images.key`) | 64 lowercase hex digits and a newline: 32 random bytes, mode 0600, owned by this user |
//!
//! A record is found by the config digest the signed manifest names (verified before this is
//! reached), and repeats the config's layer diff_ids, which must equal the verified config's.
//! Anyone who can write the repository could write a record pointing at an image of their own
//! (design §4a), so a record is believed only when its `mac` = HMAC-SHA256(key,
//! `cfsgate-built-image-v1\n` ‖ config ‖ `\n` ‖ each diff_id and `\n` ‖ image ‖ `\n` ‖
//! convention) verifies under the gate's key. The gate keeps that key in its run dir, on tmpfs:
//! a fresh key after every boot, so records written before a reboot, or by someone who never
//! held the key, are not believed and the image is built again (and recorded anew). A believed
//! record names `images/<image>`, which must still hash (fs-verity) to that name; if it does
//! not, the stored image was altered and the start is refused
//! ([`crate::seal::SealFailure::StoredImageAltered`]), as for a sealed image.
//!
//! A record that is missing, unreadable, malformed or for other layers is as if there were
//! none: the image is built from its verified layers, as without records.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use cfsgate_image::store::Repository;
use cfsgate_image::FsVeritySha256;
use cfsgate_oci::{Convention, ResolvedImage};
use cfsgate_sys::file::{read, Follow, SizeLimit};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The records' directory in the repository.
pub const BUILT_DIR: &str = "oci/built";
/// The key file's name in the gate's run dir.
pub const KEY_FILE_NAME: &str = ".built-images.key";
/// The record format written and read.
pub const RECORD_VERSION: u32 = 1;
/// A record lists one diff_id per layer (at most `cfsgate_oci`'s layer limit, ~72 bytes each):
/// 256 KiB is far above any real record.
pub const MAX_RECORD_BYTES: u64 = 256 << 10;
/// A key file is 64 hex digits and a newline.
const KEY_FILE_LIMIT: SizeLimit = SizeLimit::new("built-image record key", 65);
const RECORD_LIMIT: SizeLimit = SizeLimit::new("built-image record", MAX_RECORD_BYTES);
const DOMAIN: &[u8] = b"cfsgate-built-image-v1\n";

/// Why the key cannot be used (the gate then builds, and records nothing).
#[derive(Debug, thiserror::Error)]
pub enum BuiltKeyError {
    /// The key file cannot be read or created.
    #[error("built-image record key {path}: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The gate's record key.
#[derive(Clone)]
pub struct BuiltKey([u8; 32]);

impl std::fmt::Debug for BuiltKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BuiltKey(..)")
    }
}

impl BuiltKey {
    /// The key at `path`, created (random, 0600, its directory 0700) when there is none. A key
    /// file that is not a regular file owned by this user, that others may read or write, or
    /// that is not 64 hex digits and a newline is refused.
    pub fn load_or_create(path: &Path) -> Result<BuiltKey, BuiltKeyError> {
        match Self::load(path) {
            Err(BuiltKeyError::Key { reason, .. }) if reason == NOT_FOUND => {
                Self::create(path)?;
                Self::load(path)
            }
            other => other,
        }
    }

    fn load(path: &Path) -> Result<BuiltKey, BuiltKeyError> {
        let fail = |reason: String| BuiltKeyError::Key {
            path: path.to_owned(),
            reason,
        };
        let bytes = read(path, Follow::NoSymlinks, KEY_FILE_LIMIT).map_err(|e| {
            fail(if e.is_not_found() {
                NOT_FOUND.into()
            } else {
                e.to_string()
            })
        })?;
        let meta = std::fs::symlink_metadata(path).map_err(|e| fail(e.to_string()))?;
        let euid = rustix::process::geteuid().as_raw();
        if meta.uid() != euid || meta.mode() & 0o077 != 0 {
            return Err(fail(format!(
                "must be owned by uid {euid} and readable by no one else (mode {:04o}, uid {})",
                meta.mode() & 0o7777,
                meta.uid()
            )));
        }
        let text = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|t| t.strip_suffix('\n'))
            .filter(|t| t.len() == 64)
            .ok_or_else(|| fail("not 64 hex digits and a newline".into()))?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(text, &mut key)
            .map_err(|_| fail("not 64 hex digits and a newline".into()))?;
        Ok(BuiltKey(key))
    }

    /// Write a new key next to `path` and link it into place: a parallel start that created
    /// one first wins, and nobody ever reads a half-written key.
    fn create(path: &Path) -> Result<(), BuiltKeyError> {
        use rand_core::RngCore as _;
        let fail = |reason: String| BuiltKeyError::Key {
            path: path.to_owned(),
            reason,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .ok_or_else(|| fail("no directory".into()))?;
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
        }
        let mut bytes = [0u8; 32];
        rand_core::OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| fail(format!("no randomness: {e}")))?;
        let tmp = tempfile::Builder::new()
            .prefix(".built-key-")
            .tempfile_in(dir)
            .map_err(|e| fail(e.to_string()))?;
        // tempfile creates 0600.
        let mut file = tmp.as_file();
        file.write_all(format!("{}\n", hex::encode(bytes)).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| fail(e.to_string()))?;
        match std::fs::hard_link(tmp.path(), path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(fail(e.to_string())),
        }
    }

    fn mac(&self, record: &RecordBody<'_>) -> Hmac<Sha256> {
        // HMAC takes keys of any length; 32 bytes cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(DOMAIN);
        mac.update(record.config.as_bytes());
        mac.update(b"\n");
        for diff_id in record.diff_ids {
            mac.update(diff_id.as_bytes());
            mac.update(b"\n");
        }
        mac.update(record.image.as_bytes());
        mac.update(b"\n");
        mac.update(record.convention.as_bytes());
        mac
    }
}

const NOT_FOUND: &str = "not found";

/// The record file on disk.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordFile {
    version: u32,
    config: String,
    diff_ids: Vec<String>,
    image: String,
    convention: String,
    mac: String,
}

/// What the MAC covers.
struct RecordBody<'a> {
    config: &'a str,
    diff_ids: &'a [String],
    image: &'a str,
    convention: &'a str,
}

/// A believed record: the image built earlier from exactly these verified layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltImage {
    /// Its fs-verity digest (`images/<digest>`).
    pub digest: FsVeritySha256,
    /// The convention it was built under.
    pub convention: Convention,
}

fn record_path(repo: &Repository, config: &cfsgate_image::ContentSha256) -> PathBuf {
    repo.path()
        .join(BUILT_DIR)
        .join(format!("{}.json", config.to_hex()))
}

fn diff_ids(image: &ResolvedImage) -> Vec<String> {
    image.layers.iter().map(|l| l.diff_id.to_string()).collect()
}

/// The record of `image` (resolved and verified: its config digest is the one the signed
/// manifest names), when there is one this key believes and it names this image's layers.
pub fn find(repo: &Repository, key: &BuiltKey, image: &ResolvedImage) -> Option<BuiltImage> {
    let bytes = read(
        &record_path(repo, &image.config_digest.0),
        Follow::NoSymlinks,
        RECORD_LIMIT,
    )
    .ok()?;
    let record: RecordFile = serde_json::from_slice(&bytes).ok()?;
    let body = RecordBody {
        config: &record.config,
        diff_ids: &record.diff_ids,
        image: &record.image,
        convention: &record.convention,
    };
    let tag = hex::decode(&record.mac).ok()?;
    key.mac(&body).verify_slice(&tag).ok()?;
    if record.version != RECORD_VERSION
        || record.config != image.config_digest.to_string()
        || record.diff_ids != diff_ids(image)
    {
        return None;
    }
    let convention = record.convention.parse::<Convention>().ok()?;
    Some(BuiltImage {
        digest: FsVeritySha256::from_hex(&record.image).ok()?,
        convention,
    })
}

/// Record that `built` is the composefs image of `image`'s verified layers (written to a
/// temporary file and renamed into place).
pub fn record(
    repo: &Repository,
    key: &BuiltKey,
    image: &ResolvedImage,
    built: BuiltImage,
) -> std::io::Result<()> {
    let config = image.config_digest.to_string();
    let diff_ids = diff_ids(image);
    let image_hex = built.digest.to_hex();
    let convention = built.convention.name().to_string();
    let body = RecordBody {
        config: &config,
        diff_ids: &diff_ids,
        image: &image_hex,
        convention: &convention,
    };
    let mac = hex::encode(key.mac(&body).finalize().into_bytes());
    let file = RecordFile {
        version: RECORD_VERSION,
        config,
        diff_ids,
        image: image_hex,
        convention,
        mac,
    };
    let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
    let dir = repo.path().join(BUILT_DIR);
    std::fs::create_dir_all(&dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".record-")
        .tempfile_in(&dir)?;
    tmp.write_all(&bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(record_path(repo, &image.config_digest.0))
        .map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_key_is_created_private_and_refused_when_others_can_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/.built-images.key");
        let key = BuiltKey::load_or_create(&path).unwrap();
        let again = BuiltKey::load_or_create(&path).unwrap();
        assert_eq!(key.0, again.0, "the second start reads the same key");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = BuiltKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("readable by no one else"), "{err}");
        std::fs::write(&path, "short\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = BuiltKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("64 hex digits"), "{err}");
    }
}
