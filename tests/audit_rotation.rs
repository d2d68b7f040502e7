//! A rotated, keyed audit log through the `cfsgate` binary: 10,000 records in 5 files verify;
//! a record edited in file 3, a missing file, the newest 5 records cut, the oldest file pruned
//! and a tail rewritten with recomputed hashes are each detected and named by `audit verify`.
//! The records are written by the library (`AuditSink`, the code the hooks call) onto tmpfs,
//! so 10,000 fsyncs take milliseconds; everything is judged by the binary.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use cfsgate_verifier::audit::{AuditEntry, AuditSink};
use sha2::{Digest as _, Sha256};

const RECORDS: usize = 10_000;
const PER_FILE: usize = 2_000;

fn cfsgate(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cfsgate"))
        .args(args)
        .output()
        .expect("run cfsgate");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

/// Entries whose lines all have the same length (the container id shrinks as `seq` grows and a
/// denial's reason makes up for "deny" being shorter than "admit"), so a
/// size limit of PER_FILE lines puts exactly PER_FILE records in each file.
fn entry(seq: usize) -> AuditEntry {
    let digits = seq.to_string().len();
    AuditEntry {
        stage: "precreate".into(),
        container_id: Some(format!("ctr-{}{seq}", "0".repeat(12 - 2 * digits))),
        image: "oci:/srv/images/app:1".into(),
        admitted: !seq.is_multiple_of(3),
        mode: cfsgate_policy::Mode::Enforce,
        // "deny" is one byte shorter than "admit".
        reasons: vec![if !seq.is_multiple_of(3) {
            "signed by a trusted key"
        } else {
            "no trusted signature!!!!"
        }
        .into()],
        time: cfsgate_policy::Timestamp::parse_rfc3339("2026-12-01T20:00:00Z").ok(),
        ..AuditEntry::default()
    }
}

struct Log {
    _dir: tempfile::TempDir,
    log: PathBuf,
    key: PathBuf,
    snapshot: PathBuf,
}

impl Log {
    fn path(&self) -> &str {
        self.log.to_str().unwrap()
    }

    fn verify(&self, extra: &[&str]) -> (Option<i32>, String) {
        let mut args = vec!["audit", "verify", "--audit-log", self.path()];
        args.extend(extra);
        cfsgate(&args)
    }

    fn verify_keyed(&self, extra: &[&str]) -> (Option<i32>, String) {
        let mut args = vec!["--audit-key", self.key.to_str().unwrap()];
        args.extend(extra);
        self.verify(&args)
    }

    fn file(&self, n: u64) -> PathBuf {
        PathBuf::from(format!("{}.{n:06}", self.log.display()))
    }

    /// Put every file back as it was after writing.
    fn restore(&self) {
        for entry in std::fs::read_dir(self.log.parent().unwrap()).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("audit.jsonl")
            {
                std::fs::remove_file(path).unwrap();
            }
        }
        for entry in std::fs::read_dir(&self.snapshot).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(
                &path,
                self.log.parent().unwrap().join(path.file_name().unwrap()),
            )
            .unwrap();
        }
    }
}

fn write_log() -> Log {
    let base = Path::new("/dev/shm");
    let dir = if base.is_dir() {
        tempfile::tempdir_in(base).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let log = dir.path().join("log/audit.jsonl");
    let key = dir.path().join("etc/audit.key");
    let (code, text) = cfsgate(&["audit", "init-key", "--audit-key", key.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mut sink = AuditSink::new(&log);
    sink.key = Some(key.clone());
    let first = sink.append(&entry(1)).unwrap().record;
    let line_len = std::fs::metadata(&log).unwrap().len();
    assert!(first.mac.is_some());
    sink.max_bytes = Some(line_len * PER_FILE as u64);
    for seq in 2..=RECORDS {
        let rec = sink.append(&entry(seq)).unwrap().record;
        assert_eq!(rec.seq, seq as u64);
    }
    let snapshot = dir.path().join("snapshot");
    std::fs::create_dir(&snapshot).unwrap();
    for entry in std::fs::read_dir(log.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, snapshot.join(path.file_name().unwrap())).unwrap();
    }
    Log {
        _dir: dir,
        log,
        key,
        snapshot,
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
    std::fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

/// The line with its hash recomputed after an edit (what an attacker without the key can do).
fn rehash(line: &str, prev: Option<&str>) -> String {
    let mut body = line[..line.rfind(",\"hash\":").unwrap()].to_string() + "}";
    if let Some(prev) = prev {
        let old = record_prev(line);
        body = body.replace(
            &format!("\"prev\":\"{old}\""),
            &format!("\"prev\":\"{prev}\""),
        );
    }
    let hash = hex::encode(Sha256::digest(body.as_bytes()));
    format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1])
}

fn record_prev(line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["prev"].as_str().unwrap().to_string()
}

fn record_hash(line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["hash"].as_str().unwrap().to_string()
}

#[test]
fn a_rotated_keyed_log_verifies_and_every_tampering_is_named() {
    let log = write_log();
    // 4 rotated files of 2,000 records and the active file with the last 2,000.
    for n in 1..=4 {
        assert_eq!(lines(&log.file(n)).len(), PER_FILE, "file {n}");
    }
    assert!(!log.file(5).exists());
    assert_eq!(lines(&log.log).len(), PER_FILE);
    // Each file's first record names the previous file's last hash.
    let file3 = lines(&log.file(3));
    assert_eq!(
        record_prev(&file3[0]),
        record_hash(lines(&log.file(2)).last().unwrap())
    );

    let (code, text) = log.verify_keyed(&[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("10000 records (records 1-10000) in 5 file(s), chain intact"),
        "{text}"
    );
    assert!(
        text.contains("10000 record MACs verified, checkpoint at record 10000 reached"),
        "{text}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cfsgate"))
        .args(["audit", "verify", "--json", "--audit-log", log.path()])
        .args(["--audit-key", log.key.to_str().unwrap()])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["intact"], true);
    assert_eq!(report["records"], RECORDS);
    assert_eq!(report["files"].as_array().unwrap().len(), 5);
    assert_eq!(report["files"][2]["first_seq"], 4001);
    assert_eq!(report["checkpoint"]["state"], "verified");

    // A record edited in file 3 (a denial turned into an admission): named by file and line.
    let mut edited = file3.clone();
    let line = 17;
    let seq = 2 * PER_FILE + line;
    assert!(
        edited[line - 1].contains("\"verdict\":\"deny\""),
        "seq {seq} is a denial"
    );
    edited[line - 1] = edited[line - 1].replace("\"verdict\":\"deny\"", "\"verdict\":\"admit\"");
    write_lines(&log.file(3), &edited);
    let (code, text) = log.verify_keyed(&[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "audit.jsonl.000003 line {line} (edited): record {seq} was edited"
        )),
        "{text}"
    );
    log.restore();

    // The same edit with the hash recomputed and every later record re-chained: the chain is
    // consistent again, so only the MAC (the key) catches it, at the edited record.
    let mut rewritten = file3.clone();
    let mut prev: Option<String> = None;
    for (i, l) in rewritten.iter_mut().enumerate().skip(line - 1) {
        let changed = if i == line - 1 {
            l.replace("\"verdict\":\"deny\"", "\"verdict\":\"admit\"")
        } else {
            l.clone()
        };
        *l = rehash(&changed, prev.as_deref());
        prev = Some(record_hash(l));
    }
    write_lines(&log.file(3), &rewritten);
    let (code, text) = log.verify_keyed(&[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("audit.jsonl.000003 line {line} (mac_invalid)")),
        "{text}"
    );
    log.restore();

    // A missing file: named, with the records it held.
    std::fs::remove_file(log.file(3)).unwrap();
    let (code, text) = log.verify_keyed(&[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("audit.jsonl.000004 line 1 (missing_file): audit.jsonl.000003 is missing: records 4001-6000 are not in the log"),
        "{text}"
    );
    log.restore();

    // The newest 5 records cut: the chain of what is left is sound, the checkpoint is not met.
    let active = lines(&log.log);
    write_lines(&log.log, &active[..active.len() - 5]);
    let (code, text) = log.verify_keyed(&[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("(cut): the newest records were cut: the checkpoint names record 10000 but the log ends at record 9995 (5 record(s) missing)"),
        "{text}"
    );
    // Without the key nobody can tell (what the checkpoint is for); it says it did not check.
    let (code, text) = log.verify(&[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("no key given: MACs and checkpoint not checked"),
        "{text}"
    );
    // A named key that is missing is an error, not a silent unkeyed check.
    let (code, text) = log.verify(&["--audit-key", "/nonexistent/audit.key"]);
    assert_eq!(code, Some(2), "{text}");
    // The checkpoint file removed as well: still caught.
    std::fs::remove_file(format!("{}.checkpoint", log.log.display())).unwrap();
    let (code, text) = log.verify_keyed(&[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("(checkpoint_invalid)"), "{text}");
    log.restore();

    // The oldest file removed: refused unless pruning is allowed.
    std::fs::remove_file(log.file(1)).unwrap();
    let (code, text) = log.verify_keyed(&[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("audit.jsonl.000002 line 1 (pruned): the log starts at record 2001, not 1"),
        "{text}"
    );
    let (code, text) = log.verify_keyed(&["--allow-pruned"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("8000 records (records 2001-10000) in 4 file(s)"),
        "{text}"
    );
    log.restore();

    // A key file others can read is refused.
    std::fs::set_permissions(&log.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, text) = log.verify_keyed(&[]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("chmod 600"), "{text}");
}

#[test]
fn every_record_reaches_the_journal_socket_with_selectable_fields() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("journal.socket");
    // journald is not running on this machine: bind the socket it would listen on.
    let journal = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
    let mut sink = AuditSink::new(dir.path().join("audit.jsonl"));
    sink.journal = Some(socket.clone());
    let mut e = entry(3);
    e.signers = vec!["aa11".into(), "bb22".into()];
    e.reasons = vec!["no signature\nfrom a trusted key".into(), "second".into()];
    let appended = sink.append(&e).unwrap();
    assert!(appended.journal_error.is_none());
    let mut buf = vec![0u8; 1 << 20];
    let n = journal.recv(&mut buf).unwrap();
    let fields = parse_native(&buf[..n]);
    let get = |k: &str| -> Vec<&str> {
        fields
            .iter()
            .filter(|(name, _)| name == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(get("CFSGATE_VERDICT"), ["deny"]);
    assert_eq!(get("PRIORITY"), ["4"]);
    assert_eq!(get("CFSGATE_SEQ"), ["1"]);
    assert_eq!(get("CFSGATE_SIGNER"), ["aa11", "bb22"]);
    assert_eq!(
        get("CFSGATE_REASON"),
        ["no signature\nfrom a trusted key", "second"]
    );
    assert_eq!(get("SYSLOG_IDENTIFIER"), ["cfsgate"]);
    assert_eq!(get("CFSGATE_HASH"), [appended.record.hash.as_str()]);
    let file_line = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(get("CFSGATE_RECORD"), [file_line.trim_end()]);
    assert!(get("MESSAGE")[0].starts_with("cfsgate deny precreate container=ctr-"));

    // No listener: the record is still in the file, the failure reported beside it.
    drop(journal);
    let appended = sink.append(&entry(4)).unwrap();
    assert!(appended.journal_error.is_some());
    assert_eq!(appended.record.seq, 2);
}

/// journald's native format: `NAME=value\n`, or `NAME\n` + u64 LE length + value + `\n`.
fn parse_native(mut data: &[u8]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    while !data.is_empty() {
        let end = data.iter().position(|&b| b == b'\n' || b == b'=').unwrap();
        let name = String::from_utf8(data[..end].to_vec()).unwrap();
        if data[end] == b'=' {
            let nl = data[end..].iter().position(|&b| b == b'\n').unwrap() + end;
            fields.push((name, String::from_utf8(data[end + 1..nl].to_vec()).unwrap()));
            data = &data[nl + 1..];
        } else {
            let len = u64::from_le_bytes(data[end + 1..end + 9].try_into().unwrap()) as usize;
            let value = &data[end + 9..end + 9 + len];
            assert_eq!(data[end + 9 + len], b'\n');
            fields.push((name, String::from_utf8(value.to_vec()).unwrap()));
            data = &data[end + 10 + len..];
        }
    }
    fields
}
