//! The audit record and its line format: what one decision leaves in the log
//! ([`AuditRecord`], from an [`AuditEntry`]), its canonical JSON body, the hash chain fields
//! (`prev`, `hash`, `mac`) and the parse of one line; and [`AuditError`]. A leaf below the
//! sink (`audit`), the readers (`read`, `chain`, `view`), the checkpoint, the files and the
//! journal, which all speak these types.

use std::io;
use std::path::{Path, PathBuf};

use cfsgate_image::{ContentSha256, FsVeritySha256};
use cfsgate_policy::{Mode, Timestamp, VerityMode};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Largest record line accepted; a decision with every reason spelled out is a few KiB, so
/// anything larger is not a record this module wrote (and would make tail reads unbounded).
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

/// `prev` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The verdict of a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditVerdict {
    /// The container may run.
    Admit,
    /// The container was refused.
    Deny,
}

impl AuditVerdict {
    /// `admit` or `deny`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditVerdict::Admit => "admit",
            AuditVerdict::Deny => "deny",
        }
    }
}

/// What a caller knows about one decision; [`AuditSink::append`] adds `seq`, `prev`, `mac`
/// and `hash`. Fields as in the module table.
#[derive(Clone, Debug, Default, PartialEq)]
#[allow(missing_docs)]
pub struct AuditEntry {
    pub time: Option<Timestamp>,
    pub stage: String,
    pub container_id: Option<String>,
    pub image: String,
    pub reference: Option<String>,
    pub manifest_digest: Option<ContentSha256>,
    pub composefs_digest: Option<FsVeritySha256>,
    pub scope: Option<String>,
    pub requirements: Vec<String>,
    pub signers: Vec<String>,
    pub admitted: bool,
    pub mode: Mode,
    pub would_reject: bool,
    pub reasons: Vec<String>,
    pub verity: Option<VerityMode>,
}

/// One stored line (see the module table for each field).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
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
    /// Present only in a keyed log.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mac: Option<String>,
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
    /// A system call on the file failed.
    #[error("audit log {path}: {what}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
    /// A stored record is not what this module writes.
    #[error("audit log {path}: line {line}: {reason}")]
    Broken {
        /// The file.
        path: PathBuf,
        /// The 1-based line (0: the last line, found by reading backwards).
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// A record could not be written.
    #[error("audit log {path}: cannot encode a record: {reason}")]
    Encode {
        /// The log.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The checkpoint key cannot be used.
    #[error("audit key {path}: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The journal did not take the record (the file record was written).
    #[error("journal socket {path}: {reason}")]
    Journal {
        /// The socket.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl AuditError {
    /// The 1-based line of the first bad record, for [`AuditError::Broken`].
    pub fn broken_line(&self) -> Option<u64> {
        match self {
            AuditError::Broken { line, .. } => Some(*line),
            _ => None,
        }
    }

    pub(crate) fn io<'a>(
        path: &'a Path,
        what: &'static str,
    ) -> impl FnOnce(io::Error) -> Self + 'a {
        move |source| AuditError::Io {
            path: path.to_owned(),
            what,
            source,
        }
    }
}

pub(crate) fn digest_text(d: &Option<FsVeritySha256>) -> Option<String> {
    d.as_ref().map(|d| format!("sha256:{}", d.to_hex()))
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The compact JSON of `record` without `hash` (and without `mac` when `with_mac` is false).
pub(crate) fn body_json(record: &AuditRecord, with_mac: bool) -> Result<String, serde_json::Error> {
    let mut unhashed = record.clone();
    unhashed.hash = String::new();
    if !with_mac {
        unhashed.mac = None;
    }
    serde_json::to_string(&unhashed)
}

/// The line (without newline) of `record` with `hash` computed; `record.hash` is ignored.
pub(crate) fn encode_line(record: &AuditRecord) -> Result<(String, String), serde_json::Error> {
    let body = body_json(record, true)?;
    let hash = sha256_hex(body.as_bytes());
    // body ends with '}' (a JSON object): splice the hash member in as the last one.
    let line = format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]);
    Ok((line, hash))
}

/// Split a stored line into (body without the hash member, hash), if it ends as written.
pub(crate) fn split_hash(line: &str) -> Option<(String, &str)> {
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

/// Why a stored line is not a sound record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LineFault {
    /// Not JSON of a record, or not ending in a hash member.
    Malformed(String),
    /// The content does not hash to the recorded hash.
    Edited { seq: u64, actual: String },
    /// Hashes right but is not byte for byte what this module writes.
    NonCanonical { seq: u64 },
}

impl std::fmt::Display for LineFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineFault::Malformed(why) => f.write_str(why),
            LineFault::Edited { seq, actual } => write!(
                f,
                "record {seq} was edited: its content hashes to {actual}, not its recorded hash"
            ),
            LineFault::NonCanonical { seq } => write!(
                f,
                "record {seq} is not in canonical form (fields reordered or reformatted)"
            ),
        }
    }
}

/// Parse and self-check one line: its hash covers it; returns the record.
pub(crate) fn parse_line(line: &str) -> Result<AuditRecord, LineFault> {
    let (body, hash) = split_hash(line).ok_or_else(|| {
        LineFault::Malformed("not a record: it does not end with a \"hash\" member".into())
    })?;
    let record: AuditRecord = serde_json::from_str(line)
        .map_err(|e| LineFault::Malformed(format!("not a valid record: {e}")))?;
    let actual = sha256_hex(body.as_bytes());
    if actual != hash {
        return Err(LineFault::Edited {
            seq: record.seq,
            actual,
        });
    }
    // The body must be exactly what this module writes, so the hash cannot be kept valid by
    // reformatting.
    match encode_line(&record) {
        Ok((canonical, _)) if canonical == line => Ok(record),
        _ => Err(LineFault::NonCanonical { seq: record.seq }),
    }
}
