//! The tamper-evident audit log: one JSON line per admission decision, hash-chained, rotated
//! by size, optionally keyed (HMAC-SHA256) and copied to the systemd journal.
//!
//! Every decision a hook or `cfsgate bundle` makes is appended to a JSON Lines file
//! (default [`DEFAULT_AUDIT_LOG`]). Each line is one [`AuditRecord`]:
//!
//! | field | content |
//! |---|---|
//! | `seq` | 1 for the first record, then +1 per record, continuing across rotated files |
//! | `time` | RFC 3339 UTC, whole seconds |
//! | `stage` | who decided: `precreate`, `createRuntime`, `poststop`, `bundle`, … |
//! | `container_id` | the runtime's container id (`null` for `cfsgate bundle` before one exists) |
//! | `image` | the image reference evaluated (`oci:…`, `dir:…`, a repository ref or digest) |
//! | `reference` | the docker reference the image was judged as, if any |
//! | `manifest_digest`, `composefs_digest` | `sha256:<hex>` or `null` when not reached |
//! | `scope` | the policy scope that matched (`transport:name`, `default`) |
//! | `requirements` | the matched scope's requirement types |
//! | `signers` | key ids (hex SHA-256 of the SPKI) whose signatures were accepted |
//! | `verdict` | `admit` or `deny` |
//! | `mode` | `enforce` or `warn` (warn: admitted even though `would_reject`) |
//! | `would_reject` | in warn mode, whether enforce mode would have denied |
//! | `reasons` | why: every failed check, or what was satisfied |
//! | `verity` | the verity mode the mount used (`kernel`, `userspace`, `none`), `null` if not mounted |
//! | `prev` | the `hash` of the previous record (64 zeros for the very first) |
//! | `mac` | only in a keyed log: HMAC-SHA256 (hex) of the line without `mac` and `hash` ([`checkpoint`]) |
//! | `hash` | sha256 (hex) of this line with the `,"hash":"…"` member removed |
//!
//! The line is the compact JSON of the record with the members in the order above, `hash`
//! last; so `hash` covers every byte of the line except itself, and `prev` chains each line to
//! the one before. [`chain::verify_log`] names the first place that breaks the chain:
//!
//! | tampering | detected at, reported as |
//! |---|---|
//! | a line edited (hash not recomputed) | that line: `edited` |
//! | a line edited and its hash recomputed | the next line, `rewritten` (a keyed log: that line, `mac_invalid`) |
//! | lines removed | the line after the gap: `removed` |
//! | lines reordered (e.g. two swapped) | the first moved line: `reordered`, naming where the expected record is |
//! | a rotated file removed | the first line of the next file: `missing_file`, naming the file and records |
//! | the oldest files removed | the first line present: `pruned` (accepted with `allow_pruned`) |
//! | the newest records cut | a keyed log only: `cut`, from the [`checkpoint`] file |
//!
//! **Rotation** ([`files`]): when a record would make the active file larger than
//! [`AuditSink::max_bytes`], the active file is renamed to `<log>.<N>` (six digits, 1 for the
//! oldest, never renamed again) and the record starts a new active file. `seq` and `prev`
//! continue, so each file's first record names the previous file's last hash.
//!
//! **Keyed checkpoints** ([`checkpoint`]): with a key (32 random bytes, hex, in
//! [`checkpoint::DEFAULT_AUDIT_KEY`]) every record carries a `mac`, and after every append the
//! file `<log>.checkpoint` holds the newest record's seq and hash under an HMAC. Someone who can
//! write the log but not read the key can then neither rewrite records nor cut the newest ones
//! unnoticed (restoring an older checkpoint file together with the cut is the one thing a
//! checkpoint on the same node cannot catch: ship the journal copy off the node for that).
//!
//! **Journal** ([`journal`]): each record is also sent to journald's native socket with
//! `CFSGATE_*` fields a SIEM can select on; a failed send never loses the file record.
//!
//! Appending ([`AuditSink::append`]) is safe with concurrent writers in other processes: an
//! exclusive `flock` on `<log>.lock` is held while the last record is read, the file rotated if
//! due, the new line written with a single `write(2)` and `fsync`ed, and the checkpoint updated.

pub mod chain;
pub mod checkpoint;
pub mod files;
pub mod journal;
mod read;
mod record;
pub mod text;
pub mod view;

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use cfsgate_policy::Timestamp;
use rustix::fs::FlockOperation;

pub use chain::{verify_log, ChainProblem, ChainReport, ProblemKind, VerifyOptions};
pub use checkpoint::AuditKey;
pub use read::*;
pub use record::*;

/// Where decisions are logged when no `--audit-log` is given.
pub const DEFAULT_AUDIT_LOG: &str = "/var/log/cfsgate/audit.jsonl";

/// The first window [`last_record`] reads from the end of a log: a record is ~1 KiB, so one
/// page nearly always holds the last one whole; the window doubles up to
/// [`MAX_RECORD_BYTES`] + 1 only for longer records (reading the full limit every time cost
/// each hook 64 page faults and a 256 KiB copy).
const FIRST_TAIL_WINDOW: u64 = 4096;

/// The last complete record of an open log (read backwards from the end), and whether the file
/// ends in the middle of a line (a torn write).
fn last_record(file: &File, path: &Path) -> Result<(Option<AuditRecord>, bool), AuditError> {
    let len = file.metadata().map_err(AuditError::io(path, "stat"))?.len();
    if len == 0 {
        return Ok((None, false));
    }
    let limit = len.min(MAX_RECORD_BYTES as u64 + 1);
    let mut window = limit.min(FIRST_TAIL_WINDOW);
    loop {
        let mut tail = vec![0; window as usize];
        file.read_exact_at(&mut tail, len - window)
            .map_err(AuditError::io(path, "read the last record"))?;
        let torn = tail.last() != Some(&b'\n');
        let end = match tail.iter().rposition(|&b| b == b'\n') {
            Some(end) => end,
            None if window < limit => {
                window = limit.min(window * 2);
                continue;
            }
            None => return Ok((None, torn)),
        };
        let complete = &tail[..end];
        let start = match complete.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            // The window reaches the start of the file: the record is its first line.
            None if window == len => 0,
            None if window < limit => {
                window = limit.min(window * 2);
                continue;
            }
            None => {
                return Err(AuditError::Broken {
                    path: path.to_owned(),
                    line: 0,
                    reason: format!("the last record is longer than {MAX_RECORD_BYTES} bytes"),
                })
            }
        };
        let broken = |reason: String| AuditError::Broken {
            path: path.to_owned(),
            line: 0,
            reason,
        };
        let text = std::str::from_utf8(&complete[start..])
            .map_err(|_| broken("the last record is not UTF-8".into()))?;
        let record =
            parse_line(text).map_err(|fault| broken(format!("the last record: {fault}")))?;
        return Ok((Some(record), torn));
    }
}

/// Open a rotated log file to read its last record: type-checked like the active file (a FIFO
/// put in its place must not block the appender), never created or written.
fn open_rotated_file(path: &Path) -> Result<File, AuditError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .map_err(AuditError::io(path, "open"))?;
    files::require_regular(&file, path)?;
    Ok(file)
}

/// Open a log file for reading and appending, refusing anything but a regular file (a FIFO or
/// device in its place must not block or feed the writer).
fn open_log_file(path: &Path, create: bool) -> Result<File, AuditError> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(create)
        .mode(0o640)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .map_err(AuditError::io(path, "open"))?;
    files::require_regular(&file, path)?;
    Ok(file)
}

/// Where and how decisions are recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditSink {
    /// The active log file; rotated files sit beside it as `<log>.<N>`.
    pub log: PathBuf,
    /// Rotate before a record would make the active file larger than this (`None`: never).
    pub max_bytes: Option<u64>,
    /// The checkpoint key file: MACs on every record and a keyed checkpoint (`None`: unkeyed).
    pub key: Option<PathBuf>,
    /// journald's native socket to copy every record to (`None`: no journal copy).
    pub journal: Option<PathBuf>,
}

/// A record that was appended.
#[derive(Debug)]
pub struct Appended {
    /// The stored record.
    pub record: AuditRecord,
    /// Set when the journal copy failed; the file record was written all the same.
    pub journal_error: Option<AuditError>,
}

impl AuditSink {
    /// A plain log at `log`: no rotation, no key, no journal.
    pub fn new(log: impl Into<PathBuf>) -> Self {
        AuditSink {
            log: log.into(),
            max_bytes: None,
            key: None,
            journal: None,
        }
    }

    /// The sink an admin's options describe, the same way for every command that appends:
    /// the key named, else [`checkpoint::DEFAULT_AUDIT_KEY`] when it exists (so a node that ran
    /// `cfsgate audit init-key` keys the hooks' records, and `cfsgate audit verify`, which
    /// looks for the same default, checks them).
    pub fn configured(
        log: impl Into<PathBuf>,
        max_bytes: Option<u64>,
        key: Option<&Path>,
        journal: Option<PathBuf>,
    ) -> Self {
        AuditSink {
            log: log.into(),
            max_bytes,
            key: text::key_path_or_default(key),
            journal,
        }
    }

    /// Append one decision (the log and its directory created if missing); returns the stored
    /// record. Safe against concurrent appenders (see the module docs).
    pub fn append(&self, entry: &AuditEntry) -> Result<Appended, AuditError> {
        let path = self.log.as_path();
        let key = self.key.as_deref().map(AuditKey::load).transpose()?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(dir)
                .map_err(AuditError::io(dir, "create the log directory"))?;
        }
        // Released when `lock` is closed, also on every error path.
        let lock = files::lock(path, FlockOperation::LockExclusive, true)?;
        let mut file = open_log_file(path, true)?;
        let (mut last, mut torn) = last_record(&file, path)?;
        let active_len = file
            .seek(SeekFrom::End(0))
            .map_err(AuditError::io(path, "seek"))?;
        if active_len == 0 {
            // A fresh active file after a rotation: the chain continues from the newest
            // rotated file.
            if let Some(newest) = files::rotated_files(path)?.last() {
                let rotated = open_rotated_file(&newest.path)?;
                last = last_record(&rotated, &newest.path)?.0;
            }
        }
        let mut record = new_record(entry, last);
        if let Some(key) = &key {
            let body = body_json(&record, false).map_err(|e| encode_error(path, e))?;
            record.mac = Some(key.record_mac(&body));
        }
        let (line, hash) = encode_line(&record).map_err(|e| encode_error(path, e))?;
        if line.len() > MAX_RECORD_BYTES {
            return Err(AuditError::Encode {
                path: path.to_owned(),
                reason: format!(
                    "the record is {} bytes, more than {MAX_RECORD_BYTES}",
                    line.len()
                ),
            });
        }
        if let Some(max) = self.max_bytes {
            if active_len > 0 && active_len + line.len() as u64 + 1 > max {
                files::rotate(path)?;
                file = open_log_file(path, true)?;
                torn = false;
            }
        }
        // A torn last line (a crash mid-write) is closed first, in the same write, so the new
        // record starts on its own line; `verify_log` still reports the torn one.
        let mut bytes = Vec::with_capacity(line.len() + 2);
        if torn {
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        let written = rustix::io::write(&file, &bytes)
            .map_err(|e| AuditError::io(path, "append")(e.into()))?;
        if written != bytes.len() {
            return Err(AuditError::io(path, "append")(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write: {written} of {} bytes", bytes.len()),
            )));
        }
        file.sync_data().map_err(AuditError::io(path, "fsync"))?;
        record.hash = hash;
        if let Some(key) = &key {
            checkpoint::write_checkpoint(path, key, record.seq, &record.hash)?;
        }
        drop(lock);
        let journal_error = self
            .journal
            .as_deref()
            .and_then(|socket| journal::send(socket, path, &record, &line).err());
        Ok(Appended {
            record,
            journal_error,
        })
    }
}

fn encode_error(path: &Path, e: serde_json::Error) -> AuditError {
    AuditError::Encode {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

fn new_record(entry: &AuditEntry, last: Option<AuditRecord>) -> AuditRecord {
    AuditRecord {
        seq: last.as_ref().map_or(1, |r| r.seq + 1),
        time: entry.time.unwrap_or_else(Timestamp::now).to_string(),
        stage: entry.stage.clone(),
        container_id: entry.container_id.clone(),
        image: entry.image.clone(),
        reference: entry.reference.clone(),
        manifest_digest: entry.manifest_digest.map(|d| d.to_string()),
        composefs_digest: digest_text(&entry.composefs_digest),
        scope: entry.scope.clone(),
        requirements: entry.requirements.clone(),
        signers: entry.signers.clone(),
        verdict: if entry.admitted {
            AuditVerdict::Admit
        } else {
            AuditVerdict::Deny
        },
        mode: entry.mode.as_str().to_string(),
        would_reject: entry.would_reject,
        reasons: entry.reasons.clone(),
        verity: entry.verity.map(|v| v.as_str().to_string()),
        prev: last.map_or_else(|| GENESIS_HASH.to_string(), |r| r.hash),
        mac: None,
        hash: String::new(),
    }
}

/// Append one decision to the plain log at `path` (see [`AuditSink::append`]).
pub fn append_record(path: &Path, entry: &AuditEntry) -> Result<AuditRecord, AuditError> {
    AuditSink::new(path).append(entry).map(|a| a.record)
}

/// A rotation size as an admin writes it: bytes, or a number with a `K`, `M` or `G` suffix
/// (binary multiples: `64M` is 64 MiB). Zero and sizes that overflow are refused.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'K' | b'k') => (&text[..text.len() - 1], 10),
        Some(b'M' | b'm') => (&text[..text.len() - 1], 20),
        Some(b'G' | b'g') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (bytes, or a number with K, M or G)"))?;
    let bytes = number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if bytes == 0 {
        return Err("a rotation size of 0 would rotate before every record".into());
    }
    Ok(bytes)
}

/// Check the chain of an unkeyed log (and its rotated files); the number of records when
/// intact, else the first problem as [`AuditError::Broken`]. See [`verify_log`] for the report.
pub fn verify_chain(path: &Path) -> Result<u64, AuditError> {
    let report = verify_log(path, &VerifyOptions::default())?;
    match report.problem {
        None => Ok(report.records),
        Some(problem) => Err(AuditError::Broken {
            path: problem.file,
            line: problem.line,
            reason: problem.message,
        }),
    }
}

#[cfg(test)]
mod tests;
