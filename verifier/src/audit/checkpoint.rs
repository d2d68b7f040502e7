//! Keyed checkpoints: what makes a rewritten or cut audit log detectable to whoever holds the
//! key, even when the attacker could write the log.
//!
//! The key is 32 random bytes written as 64 lowercase hex digits and a newline, in a file only
//! root can read ([`DEFAULT_AUDIT_KEY`], mode 0600; a key file readable or writable by group
//! or others is refused). With a key:
//!
//! - every record carries `mac` = HMAC-SHA256(key, `cfsgate-audit-record-v1\n` ‖ the record's
//!   compact JSON without `mac` and `hash`), so a record cannot be rewritten (and the chain
//!   recomputed after it) without the key;
//! - after every append, `<log>.checkpoint` is replaced (write + rename) by one JSON line
//!   `{"seq":N,"hash":"<hex>","mac":"<hex>"}` with mac = HMAC-SHA256(key,
//!   `cfsgate-audit-checkpoint-v1\n<N>\n<hash>\n`): the newest record's position and hash. A log
//!   that ends before record N, or whose record N has another hash, was cut or rewritten.
//!
//! The checkpoint is refreshed after every record rather than every k records, because no
//! daemon runs between decisions and a cut of the newest k-1 records must be caught too.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{files, AuditError};

/// Where the checkpoint key is looked for when none is named.
pub const DEFAULT_AUDIT_KEY: &str = "/etc/cfsgate/audit.key";

/// A key file is 64 hex digits and a newline; more than this is not a key file.
pub const MAX_KEY_FILE_BYTES: u64 = 4096;

/// A checkpoint file is one short JSON line.
pub const MAX_CHECKPOINT_BYTES: u64 = 4096;

const RECORD_DOMAIN: &[u8] = b"cfsgate-audit-record-v1\n";
const CHECKPOINT_DOMAIN: &[u8] = b"cfsgate-audit-checkpoint-v1\n";

/// The HMAC key of a keyed log.
#[derive(Clone)]
pub struct AuditKey {
    bytes: [u8; 32],
    /// Where it was read from.
    pub path: PathBuf,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey({})", self.path.display())
    }
}

/// Read a small regular file without following a symlink or blocking on a FIFO.
pub(crate) fn read_small(
    path: &Path,
    limit: u64,
    what: &'static str,
) -> Result<(Vec<u8>, u32), AuditError> {
    let file = File::options()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .map_err(AuditError::io(path, what))?;
    files::require_regular(&file, path)?;
    let mode = file
        .metadata()
        .map_err(AuditError::io(path, "stat"))?
        .permissions()
        .mode();
    let mut data = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut data)
        .map_err(AuditError::io(path, what))?;
    if data.len() as u64 > limit {
        return Err(AuditError::Broken {
            path: path.to_owned(),
            line: 0,
            reason: format!("longer than {limit} bytes"),
        });
    }
    Ok((data, mode))
}

impl AuditKey {
    /// Read the key at `path` (see the module docs for the format and the mode required).
    pub fn load(path: &Path) -> Result<Self, AuditError> {
        let key_error = |reason: String| AuditError::Key {
            path: path.to_owned(),
            reason,
        };
        let (data, mode) =
            read_small(path, MAX_KEY_FILE_BYTES, "read the key").map_err(|e| match e {
                AuditError::Broken { reason, .. } => key_error(reason),
                other => other,
            })?;
        if mode & 0o077 != 0 {
            return Err(key_error(format!(
                "mode {:04o} lets others read or change it: chmod 600 {}",
                mode & 0o7777,
                path.display()
            )));
        }
        let text = std::str::from_utf8(&data)
            .ok()
            .map(|t| t.strip_suffix('\n').unwrap_or(t))
            .filter(|t| t.len() == 64)
            .ok_or_else(|| key_error("not 64 hex digits and a newline".into()))?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|_| key_error("not 64 hex digits and a newline".into()))?;
        Ok(AuditKey {
            bytes,
            path: path.to_owned(),
        })
    }

    /// Write a new random key to `path` (mode 0600, its directory 0700 if created); refuses to
    /// replace an existing file.
    pub fn generate(path: &Path) -> Result<Self, AuditError> {
        use rand_core::RngCore as _;
        let mut bytes = [0u8; 32];
        rand_core::OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| AuditError::Key {
                path: path.to_owned(),
                reason: format!("no randomness: {e}"),
            })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(AuditError::io(dir, "create the key directory"))?;
        }
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(AuditError::io(path, "create the key"))?;
        file.write_all(format!("{}\n", hex::encode(bytes)).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(AuditError::io(path, "write the key"))?;
        Ok(AuditKey {
            bytes,
            path: path.to_owned(),
        })
    }

    fn mac(&self, domain: &[u8], message: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length; 32 bytes cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(domain);
        mac.update(message);
        mac
    }

    /// The `mac` member of a record whose JSON without `mac` and `hash` is `body`.
    pub fn record_mac(&self, body: &str) -> String {
        hex::encode(
            self.mac(RECORD_DOMAIN, body.as_bytes())
                .finalize()
                .into_bytes(),
        )
    }

    /// Whether `mac_hex` is the `mac` of a record with this `body` (constant time).
    pub fn check_record_mac(&self, body: &str, mac_hex: &str) -> bool {
        hex::decode(mac_hex).is_ok_and(|tag| {
            self.mac(RECORD_DOMAIN, body.as_bytes())
                .verify_slice(&tag)
                .is_ok()
        })
    }

    fn checkpoint_message(seq: u64, hash: &str) -> Vec<u8> {
        format!("{seq}\n{hash}\n").into_bytes()
    }

    fn checkpoint_mac(&self, seq: u64, hash: &str) -> String {
        let mac = self.mac(CHECKPOINT_DOMAIN, &Self::checkpoint_message(seq, hash));
        hex::encode(mac.finalize().into_bytes())
    }
}

/// The content of `<log>.checkpoint`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The newest record's seq when it was written.
    pub seq: u64,
    /// That record's hash.
    pub hash: String,
    /// HMAC over both (see the module docs).
    pub mac: String,
}

/// Replace `<log>.checkpoint` with one naming record `seq` (called with the write lock held).
pub(crate) fn write_checkpoint(
    log: &Path,
    key: &AuditKey,
    seq: u64,
    hash: &str,
) -> Result<(), AuditError> {
    let path = files::checkpoint_path(log);
    let checkpoint = Checkpoint {
        seq,
        hash: hash.to_string(),
        mac: key.checkpoint_mac(seq, hash),
    };
    let mut text = serde_json::to_string(&checkpoint).map_err(|e| AuditError::Encode {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    text.push('\n');
    let tmp = {
        let mut name = path.as_os_str().to_owned();
        name.push(".tmp");
        PathBuf::from(name)
    };
    let _ = std::fs::remove_file(&tmp);
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(&tmp)
        .map_err(AuditError::io(&tmp, "create the checkpoint"))?;
    file.write_all(text.as_bytes())
        .map_err(AuditError::io(&tmp, "write the checkpoint"))?;
    std::fs::rename(&tmp, &path).map_err(AuditError::io(&path, "replace the checkpoint"))
}

/// What `<log>.checkpoint` says, checked against `key`.
#[derive(Debug)]
pub(crate) enum CheckpointRead {
    Missing,
    Forged(String),
    Valid(Checkpoint),
}

pub(crate) fn read_checkpoint(log: &Path, key: &AuditKey) -> Result<CheckpointRead, AuditError> {
    let path = files::checkpoint_path(log);
    let data = match read_small(&path, MAX_CHECKPOINT_BYTES, "read the checkpoint") {
        Ok((data, _)) => data,
        Err(AuditError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(CheckpointRead::Missing)
        }
        Err(AuditError::Broken { reason, .. }) => return Ok(CheckpointRead::Forged(reason)),
        Err(e) => return Err(e),
    };
    let checkpoint: Checkpoint = match serde_json::from_slice(&data) {
        Ok(c) => c,
        Err(e) => return Ok(CheckpointRead::Forged(format!("not a checkpoint: {e}"))),
    };
    let good = hex::decode(&checkpoint.mac).is_ok_and(|tag| {
        key.mac(
            CHECKPOINT_DOMAIN,
            &AuditKey::checkpoint_message(checkpoint.seq, &checkpoint.hash),
        )
        .verify_slice(&tag)
        .is_ok()
    });
    Ok(if good {
        CheckpointRead::Valid(checkpoint)
    } else {
        CheckpointRead::Forged("its MAC does not match the key".into())
    })
}
