//! Reading a log line by line ([`for_each_line`], records longer than
//! [`MAX_RECORD_BYTES`](super::MAX_RECORD_BYTES) and torn lines told apart from text) and every
//! record of a log and its rotated files for display ([`read_records`]).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

use super::files;
use super::record::{AuditError, AuditRecord, MAX_RECORD_BYTES};

/// One line of a log file as read: its text, or why it has none.
pub(crate) enum Line<'a> {
    Text(&'a str),
    /// The file ends without a newline: a torn or truncated write.
    Torn,
    /// Longer than [`MAX_RECORD_BYTES`]; reading the file stops here.
    TooLong,
    NotUtf8,
}

/// Visit every line of `path` (1-based numbers) until the visitor breaks; returns its value.
pub(crate) fn for_each_line<B>(
    path: &Path,
    mut visit: impl FnMut(u64, Line<'_>) -> std::ops::ControlFlow<B>,
) -> Result<Option<B>, AuditError> {
    use std::ops::ControlFlow;
    let file = File::options()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .map_err(AuditError::io(path, "open"))?;
    files::require_regular(&file, path)?;
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader
            .by_ref()
            .take(MAX_RECORD_BYTES as u64 + 2)
            .read_until(b'\n', &mut buf)
            .map_err(AuditError::io(path, "read"))?;
        if n == 0 {
            return Ok(None);
        }
        line_no += 1;
        let line = if buf.last() != Some(&b'\n') {
            if buf.len() > MAX_RECORD_BYTES {
                Line::TooLong
            } else {
                Line::Torn
            }
        } else {
            buf.pop();
            std::str::from_utf8(&buf).map_or(Line::NotUtf8, Line::Text)
        };
        let stop = matches!(line, Line::TooLong);
        if let ControlFlow::Break(b) = visit(line_no, line) {
            return Ok(Some(b));
        }
        if stop {
            return Ok(None);
        }
    }
}

/// A record as read for display, with where it was found.
#[derive(Clone, Debug)]
pub struct LocatedRecord {
    /// The file (active or rotated).
    pub file: PathBuf,
    /// The 1-based line in it.
    pub line: u64,
    /// The record, parsed without checking its hash.
    pub record: AuditRecord,
}

/// Read every record of the log and its rotated files, oldest first, checking nothing but the
/// JSON (for `audit show`; lines that are not records are skipped: [`verify_log`] names them).
pub fn read_records(log: &Path) -> Result<Vec<LocatedRecord>, AuditError> {
    let _lock = files::lock(log, FlockOperation::LockShared, false)?;
    let mut records = Vec::new();
    for file in files::log_files(log)? {
        for_each_line(&file.path, |line, text| {
            if let Line::Text(text) = text {
                if let Ok(record) = serde_json::from_str::<AuditRecord>(text) {
                    records.push(LocatedRecord {
                        file: file.path.clone(),
                        line,
                        record,
                    });
                }
            }
            std::ops::ControlFlow::<()>::Continue(())
        })?;
    }
    Ok(records)
}
