//! Unit tests of appending, the chain checks and tampering detection.

use super::*;
use cfsgate_policy::Mode;
use std::io::Write as _;

fn entry(i: u32) -> AuditEntry {
    AuditEntry {
        stage: "precreate".into(),
        container_id: Some(format!("c{i}")),
        image: format!("dir:/images/{i}"),
        admitted: i.is_multiple_of(2),
        mode: Mode::Enforce,
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

#[test]
fn any_two_swapped_records_are_reported_as_reordered_at_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    for i in 0..6 {
        append_record(&log, &entry(i)).unwrap();
    }
    let original = lines(&log);
    for a in 0..6 {
        for b in a + 1..6 {
            let mut swapped = original.clone();
            swapped.swap(a, b);
            write_lines(&log, &swapped);
            let report = verify_log(&log, &VerifyOptions::default()).unwrap();
            let problem = report.problem.expect("a swap breaks the chain");
            assert_eq!(
                problem.kind,
                ProblemKind::Reordered,
                "{a}<->{b}: {}",
                problem.message
            );
            assert_eq!(problem.line, a as u64 + 1, "{a}<->{b}");
        }
    }
}

#[test]
fn concurrent_appenders_across_rotations_keep_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let mut sink = AuditSink::new(&log);
    // About four records per file: many rotations while four threads append.
    sink.max_bytes = Some(1600);
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let sink = &sink;
            s.spawn(move || {
                for i in 0..25 {
                    sink.append(&entry(t * 100 + i)).unwrap();
                }
            });
        }
    });
    let report = verify_log(&log, &VerifyOptions::default()).unwrap();
    assert!(report.intact, "{:?}", report.problem);
    assert_eq!(report.records, 100);
    assert!(report.files.len() > 10, "{} files", report.files.len());
    for file in &report.files {
        assert!(std::fs::metadata(&file.path).unwrap().len() <= 1600);
    }
}

#[test]
fn rotation_sizes_parse_with_binary_suffixes_and_refuse_nonsense() {
    assert_eq!(parse_size("4096"), Ok(4096));
    assert_eq!(parse_size("64K"), Ok(64 << 10));
    assert_eq!(parse_size("64m"), Ok(64 << 20));
    assert_eq!(parse_size("2G"), Ok(2 << 30));
    for bad in ["", "M", "1.5M", "-1", "12T", "0", "0K"] {
        assert!(parse_size(bad).is_err(), "{bad:?} accepted");
    }
    let huge = format!("{}G", u64::MAX >> 20);
    assert!(parse_size(&huge).unwrap_err().contains("too large"));
}

/// An entry whose record is about `bytes` long (one long reason).
fn long_entry(i: u32, bytes: usize) -> AuditEntry {
    AuditEntry {
        reasons: vec!["x".repeat(bytes)],
        ..entry(i)
    }
}

#[test]
fn last_records_longer_than_the_first_tail_window_still_chain() {
    // The tail is read in windows that start at one page and double: records of 3 KiB, 5 KiB,
    // 40 KiB and 200 KiB each need the window grown before the previous newline is found, and
    // a single-record file ends the search at the file's start.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let sizes = [
        3000,
        FIRST_TAIL_WINDOW as usize + 1000,
        40_000,
        200_000,
        10,
        100_000,
    ];
    for (i, size) in sizes.iter().enumerate() {
        let rec = append_record(&log, &long_entry(i as u32, *size)).unwrap();
        assert_eq!(rec.seq, i as u64 + 1);
    }
    assert_eq!(verify_chain(&log).unwrap(), sizes.len() as u64);

    let single = dir.path().join("single.jsonl");
    append_record(&single, &long_entry(0, 9000)).unwrap();
    assert_eq!(append_record(&single, &entry(1)).unwrap().seq, 2);
    assert_eq!(verify_chain(&single).unwrap(), 2);
}

#[test]
fn a_last_line_over_the_record_limit_is_refused_not_chained_past() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    append_record(&log, &entry(0)).unwrap();
    let mut f = OpenOptions::new().append(true).open(&log).unwrap();
    let mut huge = vec![b'x'; MAX_RECORD_BYTES + 10];
    huge.push(b'\n');
    f.write_all(&huge).unwrap();
    drop(f);
    let err = append_record(&log, &entry(1)).unwrap_err();
    assert!(
        err.to_string().contains("longer than"),
        "unexpected error: {err}"
    );
}

#[test]
fn a_fifo_in_place_of_the_newest_rotated_file_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let mut sink = AuditSink::new(&log);
    // Smaller than one record: every record after the first rotates the file.
    sink.max_bytes = Some(100);
    sink.append(&entry(0)).unwrap();
    sink.append(&entry(1)).unwrap();
    let rotated = files::rotated_files(&log).unwrap();
    let newest = rotated.last().expect("the second record rotated the log");
    // A fresh active file: the appender must read the newest rotated file's last record.
    std::fs::remove_file(&log).unwrap();
    std::fs::remove_file(&newest.path).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &newest.path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(sink.append(&entry(2)).map(|a| a.record.seq));
    });
    let result = wait
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("append blocked on a FIFO");
    let err = result.unwrap_err();
    assert!(
        err.to_string().contains("not a regular file"),
        "unexpected error: {err}"
    );
}
