//! The tamper-evident audit log: one JSON line per admission decision, hash-chained.
//!
//! Every decision a hook or `cfsgate bundle` makes is appended to a JSON Lines file
//! (default [`DEFAULT_AUDIT_LOG`]). Each line is one [`AuditRecord`]:
//!
//! | field | content |
//! |---|---|
//! | `seq` | 1 for the first record, then +1 per record |
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
//! | `prev` | the `hash` of the previous record (64 zeros for the first) |
//! | `hash` | sha256 (hex) of this line with the `,"hash":"…"` member removed |
//!
//! The line is the compact JSON of the record with the members in the order above, `hash`
//! last; so `hash` covers every byte of the line except itself, and `prev` chains each line to
//! the one before. [`verify_chain`] names the first line that breaks the chain:
//!
//! | tampering | detected at |
//! |---|---|
//! | a line edited (hash not recomputed) | that line: its `hash` does not match |
//! | a line edited and its hash recomputed | the next line: its `prev` does not match |
//! | a line removed | the line after the gap: `seq` skips |
//! | lines reordered | the first moved line: `seq` out of order |
//!
//! Without a secret key a chain cannot resist someone who rewrites every line from the edit to
//! the end, nor a cut of the newest lines; ship the log (or its last hash) off the node for that.
//!
//! Appending ([`append_record`]) is safe with concurrent writers in other processes: the file is
//! opened `O_APPEND`, locked with an exclusive `flock`, the last record's `hash` and `seq` read,
//! the new line written with a single `write(2)`, `fsync`ed, and the lock released.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use cfsgate_image::Sha256Digest;
use cfsgate_policy::Timestamp;
use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Where decisions are logged when no `--audit-log` is given.
pub const DEFAULT_AUDIT_LOG: &str = "/var/log/cfsgate/audit.jsonl";

/// Largest record line accepted; a decision with every reason spelled out is a few KiB, so
/// anything larger is not a record this module wrote (and would make tail reads unbounded).
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

/// `prev` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The verdict of a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditVerdict {
    Admit,
    Deny,
}

impl AuditVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditVerdict::Admit => "admit",
            AuditVerdict::Deny => "deny",
        }
    }
}

/// What a caller knows about one decision; [`append_record`] adds `seq`, `prev` and `hash`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditEntry {
    pub time: Option<Timestamp>,
    pub stage: String,
    pub container_id: Option<String>,
    pub image: String,
    pub reference: Option<String>,
    pub manifest_digest: Option<Sha256Digest>,
    pub composefs_digest: Option<Sha256Digest>,
    pub scope: Option<String>,
    pub requirements: Vec<String>,
    pub signers: Vec<String>,
    pub admitted: bool,
    pub mode: String,
    pub would_reject: bool,
    pub reasons: Vec<String>,
    pub verity: Option<String>,
}

/// One stored line (see the module table for each field).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    pub seq: u64,
    pub time: String,
    pub stage: String,
    pub container_id: Option<String>,
    pub image: String,
    pub reference: Option<String>,
    pub manifest_digest: Option<String>,
    pub composefs_digest: Option<String>,
    pub scope: Option<String>,
    pub requirements: Vec<String>,
    pub signers: Vec<String>,
    pub verdict: AuditVerdict,
    pub mode: String,
    pub would_reject: bool,
    pub reasons: Vec<String>,
    pub verity: Option<String>,
    pub prev: String,
    /// Empty while the line is being hashed; never empty in a stored record.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub hash: String,
}

impl AuditRecord {
    /// `time` as seconds since the epoch (`None` if it is not RFC 3339).
    pub fn timestamp(&self) -> Option<Timestamp> {
        Timestamp::parse_rfc3339(&self.time).ok()
    }
}

/// Audit log failures. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    #[error("audit log {path}: line {line}: {reason}")]
    Broken {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("audit log {path}: cannot encode a record: {reason}")]
    Encode { path: PathBuf, reason: String },
}

impl AuditError {
    /// The 1-based line of the first bad record, for [`AuditError::Broken`].
    pub fn broken_line(&self) -> Option<u64> {
        match self {
            AuditError::Broken { line, .. } => Some(*line),
            _ => None,
        }
    }
}

fn digest_text(d: &Option<Sha256Digest>) -> Option<String> {
    d.as_ref().map(|d| format!("sha256:{}", d.to_hex()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The line (without newline) of `record` with `hash` computed; `record.hash` is ignored.
fn encode_line(record: &AuditRecord) -> Result<(String, String), serde_json::Error> {
    let mut unhashed = record.clone();
    unhashed.hash = String::new();
    let body = serde_json::to_string(&unhashed)?;
    let hash = sha256_hex(body.as_bytes());
    // body ends with '}' (a JSON object): splice the hash member in as the last one.
    let line = format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]);
    Ok((line, hash))
}

/// Split a stored line into (body without the hash member, hash), if it ends as written.
fn split_hash(line: &str) -> Option<(String, &str)> {
    const SUFFIX_LEN: usize = ",\"hash\":\"".len() + 64 + "\"}".len();
    if line.len() < SUFFIX_LEN + 1 || !line.is_char_boundary(line.len() - SUFFIX_LEN) {
        return None;
    }
    let (head, suffix) = line.split_at(line.len() - SUFFIX_LEN);
    let hash = suffix.strip_prefix(",\"hash\":\"")?.strip_suffix("\"}")?;
    if !hash
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    Some((format!("{head}}}"), hash))
}

/// Parse and self-check one line: its hash covers it; returns the record.
fn parse_line(line: &str) -> Result<AuditRecord, String> {
    let (body, hash) = split_hash(line)
        .ok_or_else(|| "not a record: it does not end with a \"hash\" member".to_string())?;
    let record: AuditRecord =
        serde_json::from_str(line).map_err(|e| format!("not a valid record: {e}"))?;
    let actual = sha256_hex(body.as_bytes());
    if actual != hash {
        return Err(format!(
            "record {} was edited: its content hashes to {actual}, not its recorded hash {hash}",
            record.seq
        ));
    }
    // The body must be exactly what this module writes, so the hash cannot be kept valid by
    // reformatting.
    match encode_line(&record) {
        Ok((canonical, _)) if canonical == line => Ok(record),
        _ => Err(format!(
            "record {} is not in canonical form (fields reordered or reformatted)",
            record.seq
        )),
    }
}

/// The last complete record of an open log (read backwards from the end), and whether the file
/// ends in the middle of a line (a torn write).
fn last_record(file: &mut File, path: &Path) -> Result<(Option<AuditRecord>, bool), AuditError> {
    let io_err = |what| {
        move |source| AuditError::Io {
            path: path.to_owned(),
            what,
            source,
        }
    };
    let len = file.seek(SeekFrom::End(0)).map_err(io_err("seek"))?;
    if len == 0 {
        return Ok((None, false));
    }
    let window = len.min(MAX_RECORD_BYTES as u64 + 1);
    file.seek(SeekFrom::Start(len - window))
        .map_err(io_err("seek"))?;
    let mut tail = Vec::with_capacity(window as usize);
    Read::by_ref(file)
        .take(window)
        .read_to_end(&mut tail)
        .map_err(io_err("read the last record"))?;
    let torn = tail.last() != Some(&b'\n');
    let complete = match tail.iter().rposition(|&b| b == b'\n') {
        Some(end) => &tail[..end],
        None => return Ok((None, torn)),
    };
    let start = complete
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    if start == 0 && window < len {
        return Err(AuditError::Broken {
            path: path.to_owned(),
            line: 0,
            reason: format!("the last record is longer than {MAX_RECORD_BYTES} bytes"),
        });
    }
    let text = std::str::from_utf8(&complete[start..]).map_err(|_| AuditError::Broken {
        path: path.to_owned(),
        line: 0,
        reason: "the last record is not UTF-8".into(),
    })?;
    let record = parse_line(text).map_err(|reason| AuditError::Broken {
        path: path.to_owned(),
        line: 0,
        reason: format!("the last record: {reason}"),
    })?;
    Ok((Some(record), torn))
}

/// Append one decision to the log at `path` (created with its directory if missing); returns
/// the stored record. Safe against concurrent appenders (see the module docs).
pub fn append_record(path: &Path, entry: &AuditEntry) -> Result<AuditRecord, AuditError> {
    let io_err = |what| {
        move |source| AuditError::Io {
            path: path.to_owned(),
            what,
            source,
        }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
            .map_err(io_err("create the log directory"))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(io_err("open"))?;
    // Released when `file` is closed, also on every error path.
    rustix::fs::flock(&file, FlockOperation::LockExclusive)
        .map_err(|e| io_err("lock")(e.into()))?;
    let (last, torn) = last_record(&mut file, path)?;
    let record = AuditRecord {
        seq: last.as_ref().map_or(1, |r| r.seq + 1),
        time: entry.time.unwrap_or_else(Timestamp::now).to_string(),
        stage: entry.stage.clone(),
        container_id: entry.container_id.clone(),
        image: entry.image.clone(),
        reference: entry.reference.clone(),
        manifest_digest: digest_text(&entry.manifest_digest),
        composefs_digest: digest_text(&entry.composefs_digest),
        scope: entry.scope.clone(),
        requirements: entry.requirements.clone(),
        signers: entry.signers.clone(),
        verdict: if entry.admitted {
            AuditVerdict::Admit
        } else {
            AuditVerdict::Deny
        },
        mode: entry.mode.clone(),
        would_reject: entry.would_reject,
        reasons: entry.reasons.clone(),
        verity: entry.verity.clone(),
        prev: last.map_or_else(|| GENESIS_HASH.to_string(), |r| r.hash),
        hash: String::new(),
    };
    let (line, hash) = encode_line(&record).map_err(|e| AuditError::Encode {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if line.len() > MAX_RECORD_BYTES {
        return Err(AuditError::Encode {
            path: path.to_owned(),
            reason: format!(
                "the record is {} bytes, more than {MAX_RECORD_BYTES}",
                line.len()
            ),
        });
    }
    // A torn last line (a crash mid-write) is closed first, in the same write, so the new
    // record starts on its own line; `verify_chain` still reports the torn one.
    let mut bytes = Vec::with_capacity(line.len() + 2);
    if torn {
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let written = rustix::io::write(&file, &bytes).map_err(|e| io_err("append")(e.into()))?;
    if written != bytes.len() {
        return Err(io_err("append")(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write: {written} of {} bytes", bytes.len()),
        )));
    }
    file.sync_data().map_err(io_err("fsync"))?;
    let mut stored = record;
    stored.hash = hash;
    Ok(stored)
}

/// Read every record of the log, checking nothing but the JSON (for `audit show`).
pub fn read_records(path: &Path) -> Result<Vec<AuditRecord>, AuditError> {
    let mut records = Vec::new();
    for_each_line(path, |line_no, line| {
        let record: AuditRecord =
            serde_json::from_str(line).map_err(|e| format!("not a valid record: {e}"))?;
        records.push(record);
        let _ = line_no;
        Ok(())
    })?;
    Ok(records)
}

fn for_each_line(
    path: &Path,
    mut visit: impl FnMut(u64, &str) -> Result<(), String>,
) -> Result<u64, AuditError> {
    let file = File::open(path).map_err(|source| AuditError::Io {
        path: path.to_owned(),
        what: "open",
        source,
    })?;
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader
            .by_ref()
            .take(MAX_RECORD_BYTES as u64 + 2)
            .read_until(b'\n', &mut buf)
            .map_err(|source| AuditError::Io {
                path: path.to_owned(),
                what: "read",
                source,
            })?;
        if n == 0 {
            return Ok(line_no);
        }
        line_no += 1;
        let broken = |reason: String| AuditError::Broken {
            path: path.to_owned(),
            line: line_no,
            reason,
        };
        if buf.last() != Some(&b'\n') {
            return Err(broken(if buf.len() > MAX_RECORD_BYTES {
                format!("longer than {MAX_RECORD_BYTES} bytes")
            } else {
                "incomplete (no newline): a torn or truncated write".into()
            }));
        }
        buf.pop();
        let text = std::str::from_utf8(&buf).map_err(|_| broken("the line is not UTF-8".into()))?;
        visit(line_no, text).map_err(broken)?;
    }
}

/// Check the whole chain; the number of records when intact, else the first bad line.
pub fn verify_chain(path: &Path) -> Result<u64, AuditError> {
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut expected_seq = 1u64;
    for_each_line(path, |line_no, line| {
        let record = parse_line(line)?;
        if record.seq != expected_seq {
            return Err(if record.seq > expected_seq {
                format!(
                    "record {} follows record {}: {} record(s) removed before it",
                    record.seq,
                    expected_seq - 1,
                    record.seq - expected_seq
                )
            } else {
                format!(
                    "record {} where record {expected_seq} was expected: records reordered or replayed",
                    record.seq
                )
            });
        }
        if record.prev != prev_hash {
            return Err(format!(
                "record {} does not follow the line before it (prev {} but that line hashes to {prev_hash}): \
                 the line before was rewritten or replaced",
                record.seq, record.prev
            ));
        }
        let _ = line_no;
        prev_hash = record.hash;
        expected_seq += 1;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn entry(i: u32) -> AuditEntry {
        AuditEntry {
            stage: "precreate".into(),
            container_id: Some(format!("c{i}")),
            image: format!("dir:/images/{i}"),
            admitted: i.is_multiple_of(2),
            mode: "enforce".into(),
            reasons: vec![format!("reason {i}")],
            ..AuditEntry::default()
        }
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn write_lines(path: &Path, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn chain_verifies_and_names_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sub/audit.jsonl");
        for i in 0..5 {
            let rec = append_record(&log, &entry(i)).unwrap();
            assert_eq!(rec.seq, u64::from(i) + 1);
        }
        assert_eq!(verify_chain(&log).unwrap(), 5);
        let original = lines(&log);

        let mut removed = original.clone();
        removed.remove(2);
        write_lines(&log, &removed);
        assert_eq!(verify_chain(&log).unwrap_err().broken_line(), Some(3));

        let mut swapped = original.clone();
        swapped.swap(1, 3);
        write_lines(&log, &swapped);
        assert_eq!(verify_chain(&log).unwrap_err().broken_line(), Some(2));

        let mut edited = original.clone();
        edited[3] = edited[3].replace("\"deny\"", "\"admit\"");
        assert_ne!(edited[3], original[3]);
        write_lines(&log, &edited);
        assert_eq!(verify_chain(&log).unwrap_err().broken_line(), Some(4));

        // Edited with the hash recomputed: caught by the next line.
        let mut rec: AuditRecord = serde_json::from_str(&original[1]).unwrap();
        rec.reasons = vec!["nothing to see".into()];
        let mut rehashed = original.clone();
        rehashed[1] = encode_line(&rec).unwrap().0;
        write_lines(&log, &rehashed);
        assert_eq!(verify_chain(&log).unwrap_err().broken_line(), Some(3));
    }

    #[test]
    fn torn_line_is_closed_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        append_record(&log, &entry(0)).unwrap();
        let mut f = OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(b"{\"seq\":2,\"ti").unwrap();
        drop(f);
        let rec = append_record(&log, &entry(1)).unwrap();
        assert_eq!(rec.seq, 2);
        assert_eq!(verify_chain(&log).unwrap_err().broken_line(), Some(2));
    }
}
