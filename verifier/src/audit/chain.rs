//! Verifying a log set: every record present, in order, unedited, across rotated files, and,
//! with the key, authentic and not cut ([`super::checkpoint`]).
//!
//! [`verify_log`] reads the files oldest first and stops at the first problem, which it names
//! by kind, file and line ([`ChainProblem`]); everything before it is sound. A record with a
//! higher `seq` than expected is told apart as reordered (the expected record comes later) or
//! removed (it does not); a gap at the start of a file is a missing file.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;
use serde::Serialize;

use super::checkpoint::{read_checkpoint, AuditKey, CheckpointRead};
use super::files::{self, LogFile};
use super::{
    body_json, for_each_line, parse_line, AuditError, AuditRecord, Line, LineFault, GENESIS_HASH,
};

/// How to verify.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// The checkpoint key: check every `mac` and the checkpoint file.
    pub key: Option<AuditKey>,
    /// Accept a log whose oldest rotated files were removed (retention), as long as the
    /// first file present starts a sound chain.
    pub allow_pruned: bool,
}

/// What kind of break.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A line is not a record (torn write, not JSON, too long, not UTF-8).
    Malformed,
    /// A record's content does not match its own hash.
    Edited,
    /// A record hashes right but is not in canonical form.
    Reformatted,
    /// A record's `prev` is not the hash of the record before it.
    Rewritten,
    /// Records missing from the middle of a file.
    Removed,
    /// Records present but out of order (swapped, moved, replayed).
    Reordered,
    /// A rotated file (and its records) is missing.
    MissingFile,
    /// The log does not start at record 1.
    Pruned,
    /// A keyed record's MAC does not match the key.
    MacInvalid,
    /// A record lacks a MAC after keyed records.
    MacMissing,
    /// The checkpoint file is missing, unreadable or forged.
    CheckpointInvalid,
    /// The newest records were cut (the checkpoint names a later record).
    Cut,
}

/// The first break of the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainProblem {
    /// What kind.
    pub kind: ProblemKind,
    /// The file it is in (for `cut` and checkpoint problems: the checkpoint file).
    pub file: PathBuf,
    /// The 1-based line; 0 when the problem is not at a line.
    pub line: u64,
    /// The record's `seq` at that line, when it has one.
    pub seq: Option<u64>,
    /// One sentence naming what is wrong.
    pub message: String,
}

/// One file of the set as verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileReport {
    /// Its path.
    pub path: PathBuf,
    /// Sound records read from it (up to the problem, if it is there).
    pub records: u64,
    /// Its first and last sound record.
    pub first_seq: Option<u64>,
    /// See `first_seq`.
    pub last_seq: Option<u64>,
}

/// What the checkpoint said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum CheckpointState {
    /// The log is not keyed and has no checkpoint.
    None,
    /// Keyed records or a checkpoint exist but no key was given: not checked.
    Unchecked,
    /// Checked: the log reaches the checkpoint's record with its hash.
    Verified {
        /// The record the checkpoint names.
        seq: u64,
    },
    /// Checked and failed (see the problem).
    Failed,
}

/// The result of [`verify_log`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// The active log path given.
    pub log: PathBuf,
    /// True when there is no problem.
    pub intact: bool,
    /// Sound records read.
    pub records: u64,
    /// The first and last sound record.
    pub first_seq: Option<u64>,
    /// See `first_seq`.
    pub last_seq: Option<u64>,
    /// Every file, oldest first.
    pub files: Vec<FileReport>,
    /// Records whose MAC was checked against the key.
    pub macs_verified: u64,
    /// Records carrying a MAC that was not checked (no key given).
    pub macs_unchecked: u64,
    /// The checkpoint's verdict.
    pub checkpoint: CheckpointState,
    /// The first break, if any.
    pub problem: Option<ChainProblem>,
}

struct Walk<'a> {
    options: &'a VerifyOptions,
    expected: Option<u64>,
    prev_hash: String,
    first_keyed: Option<u64>,
    report: ChainReport,
    checkpoint: Option<(u64, String)>,
    checkpoint_hash_seen: Option<String>,
}

fn problem(
    kind: ProblemKind,
    file: &Path,
    line: u64,
    seq: Option<u64>,
    message: String,
) -> ChainProblem {
    ChainProblem {
        kind,
        file: file.to_owned(),
        line,
        seq,
        message,
    }
}

/// Where record `seq` is, searching `files` from `(file_index, after_line)` on.
fn find_seq(
    files: &[LogFile],
    file_index: usize,
    after_line: u64,
    seq: u64,
) -> Result<Option<(PathBuf, u64)>, AuditError> {
    for (i, file) in files.iter().enumerate().skip(file_index) {
        let found = for_each_line(&file.path, |line, text| match text {
            Line::Text(text) if i > file_index || line > after_line => {
                match serde_json::from_str::<AuditRecord>(text) {
                    Ok(r) if r.seq == seq => ControlFlow::Break(line),
                    _ => ControlFlow::Continue(()),
                }
            }
            _ => ControlFlow::Continue(()),
        })?;
        if let Some(line) = found {
            return Ok(Some((file.path.clone(), line)));
        }
    }
    Ok(None)
}

fn name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

impl Walk<'_> {
    /// Check one record; `Err` is the first problem.
    fn record(
        &mut self,
        files: &[LogFile],
        index: usize,
        line: u64,
        text: Line<'_>,
    ) -> Result<Result<(), ChainProblem>, AuditError> {
        let file = &files[index];
        let path = file.path.as_path();
        let text = match text {
            Line::Text(t) => t,
            Line::Torn => {
                return Ok(Err(problem(
                    ProblemKind::Malformed,
                    path,
                    line,
                    None,
                    "incomplete (no newline): a torn or truncated write".into(),
                )))
            }
            Line::TooLong => {
                return Ok(Err(problem(
                    ProblemKind::Malformed,
                    path,
                    line,
                    None,
                    format!("longer than {} bytes", super::MAX_RECORD_BYTES),
                )))
            }
            Line::NotUtf8 => {
                return Ok(Err(problem(
                    ProblemKind::Malformed,
                    path,
                    line,
                    None,
                    "the line is not UTF-8".into(),
                )))
            }
        };
        let record = match parse_line(text) {
            Ok(r) => r,
            Err(fault) => {
                let (kind, seq) = match &fault {
                    LineFault::Malformed(_) => (ProblemKind::Malformed, None),
                    LineFault::Edited { seq, .. } => (ProblemKind::Edited, Some(*seq)),
                    LineFault::NonCanonical { seq } => (ProblemKind::Reformatted, Some(*seq)),
                };
                return Ok(Err(problem(kind, path, line, seq, fault.to_string())));
            }
        };
        let seq = record.seq;
        let here = |kind, message| Ok(Err(problem(kind, path, line, Some(seq), message)));
        match self.expected {
            None => {
                let pruned = seq != 1 || record.prev != GENESIS_HASH;
                let pruning_allowed =
                    self.options.allow_pruned && file.number.is_some() && line == 1;
                if pruned && seq > 1 {
                    if let Some((at, at_line)) = find_seq(files, index, line, 1)? {
                        return here(
                            ProblemKind::Reordered,
                            format!(
                                "records reordered: record {seq} is where record 1 belongs; record 1 is at {} line {at_line}",
                                name(&at)
                            ),
                        );
                    }
                }
                if pruned && !pruning_allowed {
                    return here(
                        ProblemKind::Pruned,
                        format!(
                            "the log starts at record {seq}, not 1: records 1-{} are missing (older files removed)",
                            seq.saturating_sub(1)
                        ),
                    );
                }
            }
            Some(expected) if seq > expected => {
                if line == 1 && index > 0 {
                    let prev_file = &files[index - 1];
                    let missing_names = match (prev_file.number, file.number) {
                        (Some(a), Some(b)) if b > a + 1 => (a + 1..b)
                            .map(|n| name(&files::rotated_path(&self.report.log, n)))
                            .collect::<Vec<_>>(),
                        _ => Vec::new(),
                    };
                    let missing = if missing_names.is_empty() {
                        format!(
                            "a file between {} and {} is missing",
                            name(&prev_file.path),
                            name(path)
                        )
                    } else {
                        format!(
                            "{} missing",
                            missing_names.join(", ")
                                + if missing_names.len() == 1 {
                                    " is"
                                } else {
                                    " are"
                                }
                        )
                    };
                    return here(
                        ProblemKind::MissingFile,
                        format!(
                            "{missing}: records {expected}-{} are not in the log",
                            seq - 1
                        ),
                    );
                }
                if let Some((at, at_line)) = find_seq(files, index, line, expected)? {
                    return here(ProblemKind::Reordered, format!(
                        "records reordered: record {seq} is where record {expected} belongs; record {expected} is at {} line {at_line}",
                        name(&at)
                    ));
                }
                return here(
                    ProblemKind::Removed,
                    format!(
                        "record {seq} follows record {}: {} record(s) removed before it",
                        expected - 1,
                        seq - expected
                    ),
                );
            }
            Some(expected) if seq < expected => {
                return here(ProblemKind::Reordered, format!(
                    "record {seq} where record {expected} was expected: records reordered or replayed"
                ));
            }
            Some(_) => {
                if record.prev != self.prev_hash {
                    return here(ProblemKind::Rewritten, format!(
                        "record {seq} does not follow the record before it (prev {} but that record hashes to {}): the record before was rewritten or replaced",
                        record.prev, self.prev_hash
                    ));
                }
            }
        }
        match (&record.mac, &self.options.key) {
            (Some(mac), Some(key)) => {
                let body = body_json(&record, false).map_err(|e| AuditError::Encode {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?;
                if !key.check_record_mac(&body, mac) {
                    return here(
                        ProblemKind::MacInvalid,
                        format!(
                            "record {seq}'s MAC does not match the key {}: forged or rewritten",
                            key.path.display()
                        ),
                    );
                }
                self.report.macs_verified += 1;
                self.first_keyed.get_or_insert(seq);
            }
            (Some(_), None) => self.report.macs_unchecked += 1,
            (None, Some(_)) if self.first_keyed.is_some() => {
                return here(ProblemKind::MacMissing, format!(
                    "record {seq} has no MAC although records from {} on are keyed: written without the key",
                    self.first_keyed.unwrap_or(0)
                ));
            }
            (None, _) => {}
        }
        if self.checkpoint.as_ref().is_some_and(|(s, _)| *s == seq) {
            self.checkpoint_hash_seen = Some(record.hash.clone());
        }
        let fr = self.report.files.last_mut().filter(|f| f.path == path);
        if let Some(fr) = fr {
            fr.records += 1;
            fr.first_seq.get_or_insert(seq);
            fr.last_seq = Some(seq);
        }
        self.report.records += 1;
        self.report.first_seq.get_or_insert(seq);
        self.report.last_seq = Some(seq);
        self.expected = Some(seq + 1);
        self.prev_hash = record.hash;
        Ok(Ok(()))
    }
}

/// Verify the log at `log` and its rotated files (under a shared lock when the lock file is
/// there, so a rotation in progress is not mistaken for a missing file).
pub fn verify_log(log: &Path, options: &VerifyOptions) -> Result<ChainReport, AuditError> {
    let _lock = files::lock(log, FlockOperation::LockShared, false)?;
    let set = files::log_files(log)?;
    let checkpoint = match &options.key {
        Some(key) => Some(read_checkpoint(log, key)?),
        None => None,
    };
    let checkpoint_path = files::checkpoint_path(log);
    let mut walk = Walk {
        options,
        expected: None,
        prev_hash: GENESIS_HASH.to_string(),
        first_keyed: None,
        report: ChainReport {
            log: log.to_owned(),
            intact: false,
            records: 0,
            first_seq: None,
            last_seq: None,
            files: Vec::new(),
            macs_verified: 0,
            macs_unchecked: 0,
            checkpoint: CheckpointState::None,
            problem: None,
        },
        checkpoint: match &checkpoint {
            Some(CheckpointRead::Valid(c)) => Some((c.seq, c.hash.clone())),
            _ => None,
        },
        checkpoint_hash_seen: None,
    };
    let mut found: Option<ChainProblem> = None;
    'files: for (index, file) in set.iter().enumerate() {
        walk.report.files.push(FileReport {
            path: file.path.clone(),
            records: 0,
            first_seq: None,
            last_seq: None,
        });
        let mut failure: Option<AuditError> = None;
        let stopped = for_each_line(&file.path, |line, text| {
            match walk.record(&set, index, line, text) {
                Ok(Ok(())) => ControlFlow::Continue(()),
                Ok(Err(p)) => ControlFlow::Break(p),
                Err(e) => {
                    failure = Some(e);
                    ControlFlow::Break(problem(
                        ProblemKind::Malformed,
                        &file.path,
                        0,
                        None,
                        String::new(),
                    ))
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        if let Some(p) = stopped {
            found = Some(p);
            break 'files;
        }
    }
    let keyed = walk.first_keyed.is_some() || walk.report.macs_unchecked > 0;
    walk.report.checkpoint = match (&checkpoint, found.is_some()) {
        (_, true) => CheckpointState::Failed,
        (None, _) => {
            if keyed || checkpoint_path.exists() {
                CheckpointState::Unchecked
            } else {
                CheckpointState::None
            }
        }
        (Some(CheckpointRead::Missing), _) if !keyed => CheckpointState::None,
        (Some(CheckpointRead::Missing), _) => {
            found = Some(problem(ProblemKind::CheckpointInvalid, &checkpoint_path, 0, None,
                "the checkpoint file is missing although the log is keyed: the newest records may have been cut".into()));
            CheckpointState::Failed
        }
        (Some(CheckpointRead::Forged(why)), _) => {
            found = Some(problem(
                ProblemKind::CheckpointInvalid,
                &checkpoint_path,
                0,
                None,
                format!("the checkpoint is not valid: {why}"),
            ));
            CheckpointState::Failed
        }
        (Some(CheckpointRead::Valid(c)), _) => {
            let last = walk.report.last_seq.unwrap_or(0);
            if last < c.seq {
                found = Some(problem(ProblemKind::Cut, &checkpoint_path, 0, Some(c.seq), format!(
                    "the newest records were cut: the checkpoint names record {} but the log ends at record {last} ({} record(s) missing)",
                    c.seq, c.seq - last
                )));
                CheckpointState::Failed
            } else if walk.checkpoint_hash_seen.as_deref() != Some(c.hash.as_str()) {
                found = Some(problem(
                    ProblemKind::Rewritten,
                    &checkpoint_path,
                    0,
                    Some(c.seq),
                    format!(
                        "record {} is not the record the checkpoint names (hash {}): rewritten",
                        c.seq, c.hash
                    ),
                ));
                CheckpointState::Failed
            } else {
                CheckpointState::Verified { seq: c.seq }
            }
        }
    };
    walk.report.intact = found.is_none();
    walk.report.problem = found;
    Ok(walk.report)
}
