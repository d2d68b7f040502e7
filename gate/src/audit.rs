//! How the gate records its decisions: every stage appends through one [`AuditSink`] (the
//! log, its rotation size, the checkpoint key, the journal copy), and the hook command lines
//! the gate writes (hooks.d files, `cfsgate bundle`'s config.json) carry the same options, so
//! a keyed, rotated or journalled log stays so in every stage.
//!
//! | option | [`AuditSink`] field |
//! |---|---|
//! | `--audit-log FILE` | `log` |
//! | `--audit-max-size BYTES` | `max_bytes` (rotate before the active file would grow past it) |
//! | `--audit-key FILE` | `key` (else `/etc/cfsgate/audit.key` when it exists, resolved by each run) |
//! | `--audit-journal=SOCKET` | `journal` |

use cfsgate_verifier::audit::{AuditEntry, AuditError, AuditRecord, AuditSink};

/// Append `entry`. The file record decides (an error fails the caller closed); a journal copy
/// that could not be sent is reported on stderr, which the engine logs, and the decision stands.
pub fn record(sink: &AuditSink, entry: &AuditEntry) -> Result<AuditRecord, AuditError> {
    let appended = sink.append(entry)?;
    if let Some(e) = &appended.journal_error {
        eprintln!(
            "cfsgate: warning: the audit record was written but not copied to the journal: {e}"
        );
    }
    Ok(appended.record)
}

/// The `--audit-…` arguments that make a hook run append to `sink`. Without a key in the sink
/// each run looks for the default key itself, so a key made after the hooks were written is
/// used from then on.
pub fn arguments(sink: &AuditSink) -> Vec<String> {
    let mut args = vec!["--audit-log".to_string(), sink.log.display().to_string()];
    if let Some(max) = sink.max_bytes {
        args.extend(["--audit-max-size".to_string(), max.to_string()]);
    }
    if let Some(key) = &sink.key {
        args.extend(["--audit-key".to_string(), key.display().to_string()]);
    }
    if let Some(socket) = &sink.journal {
        args.push(format!("--audit-journal={}", socket.display()));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_arguments_name_every_option_the_sink_has() {
        let plain = AuditSink::new("/log/a");
        assert_eq!(arguments(&plain), ["--audit-log", "/log/a"]);
        let full = AuditSink {
            log: "/log/a".into(),
            max_bytes: Some(1 << 20),
            key: Some(PathBuf::from("/k")),
            journal: Some(PathBuf::from("/run/j")),
        };
        assert_eq!(
            arguments(&full),
            [
                "--audit-log",
                "/log/a",
                "--audit-max-size",
                "1048576",
                "--audit-key",
                "/k",
                "--audit-journal=/run/j"
            ]
        );
    }
}
