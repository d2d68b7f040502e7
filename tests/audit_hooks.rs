//! The audit options reach the hooks: `install-hooks --audit-key K --audit-max-size N
//! --audit-journal=S` writes hooks.d files whose command lines carry them, and the hook runs
//! those files describe write keyed records (`audit verify --audit-key` checks every MAC and
//! the checkpoint), rotate the log at the size asked for, and copy each record to the journal
//! socket. Before the options were taken by the hooks, the records were plain and unrotated and
//! the journal saw nothing. Runs without root: each run is a createRuntime refusal (the bundle
//! names no admitted root), which is recorded like any decision.

#[path = "fixtures/hooks.rs"]
mod fixture;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

/// Run cfsgate with `stdin`; its exit code and stdout followed by stderr.
fn cfsgate_with(args: &[&str], stdin: Option<&[u8]>) -> (Option<i32>, String) {
    let out = fixture::cfsgate(args, stdin);
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

fn cfsgate(args: &[&str]) -> (Option<i32>, String) {
    cfsgate_with(args, None)
}

/// The command line of a hooks.d file (its `args`, whose first is argv[0]).
fn hook_args(file: &Path) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    doc["hook"]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// Run a hook as the engine would: its args (the first is argv[0]), the state on stdin.
fn run_hook(args: &[String], state: &str) -> (Option<i32>, String) {
    let args: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    cfsgate_with(&args, Some(state.as_bytes()))
}

#[test]
fn installed_hooks_write_a_keyed_rotated_journalled_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = d.join("audit.key");
    let log = d.join("log/audit.jsonl");
    let socket = d.join("journal.socket");
    let journal = UnixDatagram::bind(&socket).unwrap();
    journal
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (code, text) = cfsgate(&["audit", "init-key", "--audit-key", key.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}");
    let hooks = d.join("hooks.d");
    let (code, text) = cfsgate(&[
        "install-hooks",
        "--dir",
        hooks.to_str().unwrap(),
        "--audit-log",
        log.to_str().unwrap(),
        "--audit-key",
        key.to_str().unwrap(),
        "--audit-max-size",
        "2K",
        &format!("--audit-journal={}", socket.display()),
        "--run-dir",
        d.join("run").to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{text}");
    for file in [
        "cfsgate-precreate.json",
        "cfsgate-create-runtime.json",
        "cfsgate-poststop.json",
    ] {
        let args = hook_args(&hooks.join(file));
        let joined = args.join(" ");
        for expected in [
            format!("--audit-log {}", log.display()),
            format!("--audit-key {}", key.display()),
            "--audit-max-size 2048".to_string(),
            format!("--audit-journal={}", socket.display()),
        ] {
            assert!(joined.contains(&expected), "{file}: {joined}");
        }
    }

    // Eight createRuntime refusals: each record is ~700 bytes, so 2 KiB holds two or three.
    let args = hook_args(&hooks.join("cfsgate-create-runtime.json"));
    let bundle = d.join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    for i in 0..8 {
        let state = format!(
            r#"{{"ociVersion":"1.0.2","id":"ctr-{i}","pid":1,"bundle":"{}"}}"#,
            bundle.display()
        );
        let (code, text) = run_hook(&args, &state);
        assert_eq!(code, Some(1), "refusal expected: {text}");
        let mut buf = vec![0u8; 1 << 16];
        let n = journal
            .recv(&mut buf)
            .expect("a journal datagram per record");
        let datagram = String::from_utf8_lossy(&buf[..n]);
        assert!(
            datagram.contains(&format!("CFSGATE_SEQ={}\n", i + 1)),
            "{datagram}"
        );
        assert!(datagram.contains("CFSGATE_VERDICT=deny\n"), "{datagram}");
    }

    let rotated: Vec<_> = (1..=8)
        .map(|n| d.join(format!("log/audit.jsonl.{n:06}")))
        .filter(|p| p.exists())
        .collect();
    assert!(rotated.len() >= 2, "rotated files: {rotated:?}");
    for file in rotated.iter().chain([&log]) {
        let len = std::fs::metadata(file).unwrap().len();
        assert!(len <= 2048, "{} is {len} bytes", file.display());
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines() {
            assert!(line.contains(r#""mac":""#), "unkeyed record: {line}");
        }
    }
    assert!(d.join("log/audit.jsonl.checkpoint").exists());

    let verify = |extra: &[&str]| {
        let mut a = vec!["audit", "verify", "--audit-log", log.to_str().unwrap()];
        a.extend(extra);
        cfsgate(&a)
    };
    let (code, text) = verify(&["--audit-key", key.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("8 records"), "{text}");

    // The key matters: a different one finds every MAC wrong.
    let other = d.join("other.key");
    assert_eq!(
        cfsgate(&["audit", "init-key", "--audit-key", other.to_str().unwrap()]).0,
        Some(0)
    );
    let (code, text) = verify(&["--audit-key", other.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{text}");
}

#[test]
fn a_rotation_size_that_is_no_size_is_refused_before_anything_runs() {
    for bad in ["0", "12T", "lots"] {
        let (code, text) = cfsgate(&[
            "hook",
            "create-runtime",
            "--audit-log",
            "/nonexistent/audit.jsonl",
            "--audit-max-size",
            bad,
        ]);
        assert_eq!(code, Some(2), "{bad}: {text}");
        assert!(text.contains("--audit-max-size"), "{bad}: {text}");
    }
}
