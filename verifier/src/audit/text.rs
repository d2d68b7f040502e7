//! The audit log's views as text for people (`cfsgate audit verify|show|summary` without
//! `--json`); the JSON documents are the serialized [`ChainReport`], [`Shown`] and [`Summary`].
//!
//! | function | text |
//! |---|---|
//! | [`break_line`] | `chain broken at FILE line N (KIND): MESSAGE` (no `line N` for a problem not at a line) |
//! | [`verify_text`] | `LOG: N records (records A-B) in F file(s), chain intact` or `LOG: <break line>`, then the keyed state |
//! | [`record_line`] | `#SEQ TIME VERDICT STAGE container=ID IMAGE [as REF] [composefs=…] [signers=…] [verity=…][: reasons]` |
//! | [`show_text`] | two `WARNING:` lines when the chain is broken, then one line per record, `UNVERIFIED ` before those after the break |
//! | [`summary_text`] | the `WARNING:` lines when broken, then the decisions per image and per signer key |
//!
//! Every text ends with a newline; callers print it as is.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::chain::{ChainReport, CheckpointState};
use super::checkpoint::DEFAULT_AUDIT_KEY;
use super::view::{Shown, Summary};
use super::AuditRecord;

/// The key file to use: the one named, else [`DEFAULT_AUDIT_KEY`] when it exists (a log is
/// only keyed on nodes that made a key).
pub fn key_path_or_default(named: Option<&Path>) -> Option<PathBuf> {
    named.map(Path::to_path_buf).or_else(|| {
        let default = Path::new(DEFAULT_AUDIT_KEY);
        default.exists().then(|| default.to_path_buf())
    })
}

/// One line naming the break, e.g. `chain broken at audit.jsonl.000003 line 17 (edited): …`;
/// `None` when the chain is intact.
pub fn break_line(chain: &ChainReport) -> Option<String> {
    let p = chain.problem.as_ref()?;
    let at = if p.line > 0 {
        format!("{} line {}", p.file.display(), p.line)
    } else {
        p.file.display().to_string()
    };
    // The kind's name is its JSON name (`missing_file`), one spelling for both outputs.
    let kind = serde_json::to_value(p.kind).ok()?;
    Some(format!(
        "chain broken at {at} ({}): {}",
        kind.as_str().unwrap_or("?"),
        p.message
    ))
}

/// `audit verify`: the verdict over the log, then what a key checked.
pub fn verify_text(chain: &ChainReport) -> String {
    let log = chain.log.display();
    let files = chain.files.len();
    let range = match (chain.first_seq, chain.last_seq) {
        (Some(a), Some(b)) => format!(" (records {a}-{b})"),
        _ => String::new(),
    };
    let mut text = match break_line(chain) {
        None => format!(
            "{log}: {} records{range} in {files} file(s), chain intact\n",
            chain.records
        ),
        Some(line) => format!("{log}: {line}\n"),
    };
    match chain.checkpoint {
        CheckpointState::Verified { seq } => {
            let _ = writeln!(
                text,
                "keyed: {} record MACs verified, checkpoint at record {seq} reached",
                chain.macs_verified
            );
        }
        CheckpointState::Unchecked => text.push_str(
            "keyed log, but no key given: MACs and checkpoint not checked (--audit-key)\n",
        ),
        CheckpointState::None | CheckpointState::Failed => {}
    }
    text
}

/// One record on one line (see the module table).
pub fn record_line(r: &AuditRecord) -> String {
    let mut line = format!(
        "#{} {} {}{} {} container={} {}",
        r.seq,
        r.time,
        r.verdict.as_str(),
        if r.would_reject {
            " (warn: would deny)"
        } else {
            ""
        },
        r.stage,
        r.container_id.as_deref().unwrap_or("-"),
        r.image
    );
    if let Some(reference) = &r.reference {
        let _ = write!(line, " as {reference}");
    }
    if let Some(d) = &r.composefs_digest {
        let _ = write!(line, " composefs={d}");
    }
    if !r.signers.is_empty() {
        let _ = write!(line, " signers={}", r.signers.join(","));
    }
    if let Some(v) = &r.verity {
        let _ = write!(line, " verity={v}");
    }
    if !r.reasons.is_empty() {
        let _ = write!(line, ": {}", r.reasons.join("; "));
    }
    line
}

/// `audit show`: the warnings of a broken chain, then the records.
pub fn show_text(shown: &Shown) -> String {
    let mut text = String::new();
    if let Some(line) = break_line(&shown.chain) {
        let _ = writeln!(text, "WARNING: {line}");
        text.push_str("WARNING: records marked UNVERIFIED are not vouched for by the chain\n");
    }
    for r in &shown.records {
        let mark = if r.verified { "" } else { "UNVERIFIED " };
        let _ = writeln!(text, "{mark}{}", record_line(&r.record));
    }
    text
}

/// `audit summary`: the warnings of a broken chain, then the counts.
pub fn summary_text(s: &Summary) -> String {
    let mut text = String::new();
    if let Some(line) = break_line(&s.chain) {
        let _ = writeln!(text, "WARNING: {line}");
        let _ = writeln!(
            text,
            "WARNING: {} of the {} records are after the break and not vouched for\n",
            s.unverified, s.records
        );
    }
    let _ = writeln!(text, "{} decisions\n\nper image:", s.records);
    for (image, c) in &s.per_image {
        let _ = writeln!(
            text,
            "  {:>6} admitted {:>6} denied  {image}",
            c.admit, c.deny
        );
    }
    text.push_str("\nper signer key:\n");
    for (key, c) in &s.per_key {
        let _ = writeln!(
            text,
            "  {:>6} admitted {:>6} denied  {key}",
            c.admit, c.deny
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::view::{show, summarize, RecordFilter};
    use crate::audit::{verify_log, AuditEntry, AuditSink, VerifyOptions};
    use cfsgate_policy::Mode;

    fn entry(i: u32, admitted: bool) -> AuditEntry {
        AuditEntry {
            stage: "precreate".into(),
            container_id: Some(format!("c{i}")),
            image: format!("dir:/images/{i}"),
            reference: (i == 1).then(|| "example.com/app:v1".to_string()),
            signers: if admitted { vec!["k1".into()] } else { vec![] },
            admitted,
            mode: Mode::Enforce,
            reasons: vec![format!("reason {i}")],
            ..AuditEntry::default()
        }
    }

    fn log_of(entries: &[AuditEntry]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("audit.jsonl");
        let sink = AuditSink::new(&log);
        for e in entries {
            sink.append(e).expect("append");
        }
        (dir, log)
    }

    #[test]
    fn an_intact_log_reads_as_intact_with_every_record_on_its_line() {
        let (_dir, log) = log_of(&[entry(1, true), entry(2, false)]);
        let options = VerifyOptions::default();
        let chain = verify_log(&log, &options).expect("verify");
        assert_eq!(break_line(&chain), None);
        assert_eq!(
            verify_text(&chain),
            format!(
                "{}: 2 records (records 1-2) in 1 file(s), chain intact\n",
                log.display()
            )
        );
        let shown = show(&log, &options, &RecordFilter::default()).expect("show");
        let text = show_text(&shown);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("#1 "), "{text}");
        assert!(
            lines[0].ends_with(
                " admit precreate container=c1 dir:/images/1 as example.com/app:v1 signers=k1: reason 1"
            ),
            "{text}"
        );
        assert!(
            lines[1].ends_with(" deny precreate container=c2 dir:/images/2: reason 2"),
            "{text}"
        );
        let summary = summary_text(&summarize(&log, &options).expect("summary"));
        assert!(
            summary.starts_with("2 decisions\n\nper image:\n"),
            "{summary}"
        );
        assert!(summary.contains("       1 admitted      0 denied  example.com/app:v1\n"));
        assert!(summary.contains("       0 admitted      1 denied  dir:/images/2\n"));
        assert!(summary.contains("       0 admitted      1 denied  (no accepted signer)\n"));
    }

    #[test]
    fn an_edited_record_is_named_and_what_follows_is_marked_unverified() {
        let (_dir, log) = log_of(&[entry(1, true), entry(2, false), entry(3, true)]);
        let text = std::fs::read_to_string(&log).expect("read");
        std::fs::write(&log, text.replacen("reason 2", "reason X", 1)).expect("write");
        let options = VerifyOptions::default();
        let chain = verify_log(&log, &options).expect("verify");
        let line = break_line(&chain).expect("broken");
        assert!(
            line.starts_with(&format!(
                "chain broken at {} line 2 (edited): ",
                log.display()
            )),
            "{line}"
        );
        assert_eq!(verify_text(&chain), format!("{}: {line}\n", log.display()));
        let shown = show_text(&show(&log, &options, &RecordFilter::default()).expect("show"));
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines[0], format!("WARNING: {line}"));
        assert!(lines[2].starts_with("#1 "), "{shown}");
        assert!(lines[3].starts_with("UNVERIFIED #2 "), "{shown}");
        assert!(lines[4].starts_with("UNVERIFIED #3 "), "{shown}");
        let summary = summary_text(&summarize(&log, &options).expect("summary"));
        assert!(summary.contains(
            "WARNING: 2 of the 3 records are after the break and not vouched for\n\n3 decisions"
        ));
    }
}
