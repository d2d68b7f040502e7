//! A copy of every audit record in the systemd journal, over journald's native protocol.
//!
//! One datagram to [`DEFAULT_JOURNAL_SOCKET`] per record (systemd's `sd_journal_send` wire
//! format: `FIELD=value\n` per field, or `FIELD\n` + little-endian u64 length + value + `\n`
//! for a value holding a newline). The fields, so a SIEM collector can select on them
//! (`journalctl CFSGATE_VERDICT=deny`, `MESSAGE_ID=…`):
//!
//! | field | value |
//! |---|---|
//! | `MESSAGE` | `cfsgate deny precreate container=ID IMAGE: first reason` |
//! | `MESSAGE_ID` | [`MESSAGE_ID`], the same for every admission decision |
//! | `PRIORITY` | 4 (warning) for a denial or a warn-mode would-deny, 6 (info) for an admission |
//! | `SYSLOG_IDENTIFIER` | `cfsgate` |
//! | `CFSGATE_SEQ`, `CFSGATE_HASH`, `CFSGATE_PREV` | the record's place in the chain |
//! | `CFSGATE_STAGE`, `CFSGATE_VERDICT`, `CFSGATE_MODE`, `CFSGATE_WOULD_REJECT` | the decision |
//! | `CFSGATE_CONTAINER_ID`, `CFSGATE_IMAGE`, `CFSGATE_REFERENCE`, `CFSGATE_SCOPE`, `CFSGATE_VERITY` | when known |
//! | `CFSGATE_MANIFEST_DIGEST`, `CFSGATE_COMPOSEFS_DIGEST` | `sha256:…` when known |
//! | `CFSGATE_SIGNER`, `CFSGATE_REASON`, `CFSGATE_REQUIREMENT` | one field per accepted key id, reason, requirement (journald keeps repeated fields) |
//! | `CFSGATE_AUDIT_LOG` | the log file the record is in |
//! | `CFSGATE_RECORD` | the record's JSON line, byte for byte (its hash checks against the file's) |
//!
//! A record too large for one datagram (`EMSGSIZE`) is sent again without `CFSGATE_RECORD` and
//! with its reasons cut to the first; the file holds the whole record either way.

use std::os::unix::net::UnixDatagram;
use std::path::Path;

use super::{AuditError, AuditRecord, AuditVerdict};

/// journald's native protocol socket.
pub const DEFAULT_JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// `MESSAGE_ID` of every admission decision (a random 128-bit id, fixed for cfsgate).
pub const MESSAGE_ID: &str = "5c0f2b8e9d4a4e61a7f3c6d12b9e8a47";

fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    if value.contains('\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

/// The datagram for `record` (`full`: with the record line and every reason).
pub fn encode(record: &AuditRecord, log: &Path, line: &str, full: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() * 2 + 512);
    let mut message = format!(
        "cfsgate {} {} container={} {}",
        record.verdict.as_str(),
        record.stage,
        record.container_id.as_deref().unwrap_or("-"),
        record.image
    );
    if let Some(reason) = record.reasons.first() {
        message.push_str(": ");
        message.push_str(reason);
    }
    push_field(&mut out, "MESSAGE", &message);
    push_field(&mut out, "MESSAGE_ID", MESSAGE_ID);
    let warn = record.verdict == AuditVerdict::Deny || record.would_reject;
    push_field(&mut out, "PRIORITY", if warn { "4" } else { "6" });
    push_field(&mut out, "SYSLOG_IDENTIFIER", "cfsgate");
    push_field(&mut out, "CFSGATE_SEQ", &record.seq.to_string());
    push_field(&mut out, "CFSGATE_HASH", &record.hash);
    push_field(&mut out, "CFSGATE_PREV", &record.prev);
    push_field(&mut out, "CFSGATE_STAGE", &record.stage);
    push_field(&mut out, "CFSGATE_VERDICT", record.verdict.as_str());
    push_field(&mut out, "CFSGATE_MODE", &record.mode);
    push_field(
        &mut out,
        "CFSGATE_WOULD_REJECT",
        if record.would_reject { "true" } else { "false" },
    );
    push_field(&mut out, "CFSGATE_IMAGE", &record.image);
    let optional = [
        ("CFSGATE_CONTAINER_ID", &record.container_id),
        ("CFSGATE_REFERENCE", &record.reference),
        ("CFSGATE_SCOPE", &record.scope),
        ("CFSGATE_VERITY", &record.verity),
        ("CFSGATE_MANIFEST_DIGEST", &record.manifest_digest),
        ("CFSGATE_COMPOSEFS_DIGEST", &record.composefs_digest),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            push_field(&mut out, name, value);
        }
    }
    for signer in &record.signers {
        push_field(&mut out, "CFSGATE_SIGNER", signer);
    }
    for requirement in &record.requirements {
        push_field(&mut out, "CFSGATE_REQUIREMENT", requirement);
    }
    let reasons = if full {
        &record.reasons[..]
    } else {
        &record.reasons[..record.reasons.len().min(1)]
    };
    for reason in reasons {
        push_field(&mut out, "CFSGATE_REASON", reason);
    }
    push_field(&mut out, "CFSGATE_AUDIT_LOG", &log.to_string_lossy());
    if full {
        push_field(&mut out, "CFSGATE_RECORD", line);
    }
    out
}

/// Send `record` (stored as `line` in `log`) to the journal socket at `socket`.
pub fn send(socket: &Path, log: &Path, record: &AuditRecord, line: &str) -> Result<(), AuditError> {
    let failed = |reason: String| AuditError::Journal {
        path: socket.to_owned(),
        reason,
    };
    let sock = UnixDatagram::unbound().map_err(|e| failed(format!("socket: {e}")))?;
    let full = encode(record, log, line, true);
    match sock.send_to(&full, socket) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::MSGSIZE.raw_os_error()) => {
            let short = encode(record, log, line, false);
            sock.send_to(&short, socket)
                .map(|_| ())
                .map_err(|e| failed(format!("send ({} bytes): {e}", short.len())))
        }
        Err(e) => Err(failed(format!("send: {e}"))),
    }
}
