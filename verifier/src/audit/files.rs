//! The files of one audit log: the active file `<log>`, rotated files `<log>.<N>` (six digits,
//! `1` the oldest, numbered in the order they were rotated and never renamed again), the lock
//! file `<log>.lock` that serialises writers (and readers that want a consistent set), and the
//! keyed checkpoint `<log>.checkpoint`.
//!
//! Numbering upwards (rather than logrotate's `.1` = newest) keeps a file's name stable, so a
//! missing number is a missing file and a SIEM that shipped `audit.jsonl.000003` once never sees
//! that name again with other content.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

use super::AuditError;

/// Digits of a rotated file's number (sorted names = rotation order up to 999,999 files).
pub const ROTATED_DIGITS: usize = 6;

/// One file of a log set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFile {
    /// Its path.
    pub path: PathBuf,
    /// Its rotation number; `None` for the active file.
    pub number: Option<u64>,
}

fn with_suffix(log: &Path, suffix: &str) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// `<log>.<N>`.
pub fn rotated_path(log: &Path, number: u64) -> PathBuf {
    with_suffix(log, &format!(".{number:0ROTATED_DIGITS$}"))
}

/// `<log>.lock`.
pub fn lock_path(log: &Path) -> PathBuf {
    with_suffix(log, ".lock")
}

/// `<log>.checkpoint`.
pub fn checkpoint_path(log: &Path) -> PathBuf {
    with_suffix(log, ".checkpoint")
}

/// Refuse anything but a regular file (checked on the open fd, which was opened non-blocking).
pub(crate) fn require_regular(file: &File, path: &Path) -> Result<(), AuditError> {
    let meta = file.metadata().map_err(AuditError::io(path, "stat"))?;
    if !meta.file_type().is_file() {
        return Err(AuditError::Broken {
            path: path.to_owned(),
            line: 0,
            reason: "not a regular file".into(),
        });
    }
    Ok(())
}

/// The rotated files of `log`, oldest first.
pub fn rotated_files(log: &Path) -> Result<Vec<LogFile>, AuditError> {
    let dir = match log.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(base) = log.file_name().and_then(|n| n.to_str()) else {
        return Err(AuditError::Broken {
            path: log.to_owned(),
            line: 0,
            reason: "the log's file name is not UTF-8".into(),
        });
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AuditError::io(dir, "list the log directory")(e)),
    };
    let mut rotated = Vec::new();
    for entry in entries {
        let entry = entry.map_err(AuditError::io(dir, "list the log directory"))?;
        let name = entry.file_name();
        let Some(number) = name
            .to_str()
            .and_then(|n| n.strip_prefix(base))
            .and_then(|n| n.strip_prefix('.'))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        rotated.push(LogFile {
            path: dir.join(&name),
            number: Some(number),
        });
    }
    rotated.sort_by_key(|f| f.number);
    Ok(rotated)
}

/// Every file of the log, oldest first: the rotated files, then the active one if it exists.
pub fn log_files(log: &Path) -> Result<Vec<LogFile>, AuditError> {
    let mut files = rotated_files(log)?;
    match std::fs::symlink_metadata(log) {
        Ok(_) => files.push(LogFile {
            path: log.to_owned(),
            number: None,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(AuditError::io(log, "stat")(e)),
    }
    Ok(files)
}

/// Take `<log>.lock` (created when `create`); `None` when it does not exist and may not be
/// created (a reader of a log no writer of this version touched).
pub(crate) fn lock(
    log: &Path,
    how: FlockOperation,
    create: bool,
) -> Result<Option<File>, AuditError> {
    let path = lock_path(log);
    let opened = OpenOptions::new()
        .read(true)
        .write(create)
        .create(create)
        .mode(0o640)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(&path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if !create && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        // A reader without write access to the directory's lock file still reads.
        Err(e) if !create && e.kind() == std::io::ErrorKind::PermissionDenied => return Ok(None),
        Err(e) => return Err(AuditError::io(&path, "open the lock file")(e)),
    };
    require_regular(&file, &path)?;
    rustix::fs::flock(&file, how).map_err(|e| AuditError::io(&path, "lock")(e.into()))?;
    Ok(Some(file))
}

/// Rename the active file to the next rotated name (called with the write lock held).
pub(crate) fn rotate(log: &Path) -> Result<PathBuf, AuditError> {
    let next = rotated_files(log)?
        .last()
        .and_then(|f| f.number)
        .map_or(1, |n| n + 1);
    let target = rotated_path(log, next);
    if target.symlink_metadata().is_ok() {
        return Err(AuditError::Broken {
            path: target,
            line: 0,
            reason: "the next rotated file already exists".into(),
        });
    }
    std::fs::rename(log, &target).map_err(AuditError::io(log, "rotate"))?;
    if let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename is durable before records go to the new active file.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(AuditError::io(dir, "fsync the log directory"))?;
    }
    Ok(target)
}
