//! Helpers shared by the adversarial suite: running the gate commands, asserting a refusal with
//! its reason, and asserting that a refusal left the repository and the mount table clean.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::fixture::{cfsgate, mounts_under, run, Fixture, BIN};

/// The docker reference the fixture policy's `registry.example/app` scope governs.
pub const APP: &str = "registry.example/app:latest";

/// Exit code of a rejection (the input was judged and refused).
pub const REJECTED: i32 = 1;
/// Exit code of "could not evaluate" (the input could not even be judged).
pub const UNEVALUABLE: i32 = 2;

/// stdout and stderr of a command, as one text for reason matching.
pub fn text_of(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts that `out` is a refusal with exit code `code` whose output says `reason`;
/// returns the output text (for the report).
pub fn assert_refused(case: &str, out: &Output, code: i32, reason: &str) -> String {
    let text = text_of(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{case}: expected exit {code}, output:\n{text}"
    );
    assert!(
        text.contains(reason),
        "{case}: the refusal does not say {reason:?}:\n{text}"
    );
    eprintln!(
        "REFUSED [{case}] exit {code}: {}",
        first_reason(&text, reason)
    );
    text
}

/// The output line holding `reason` (what the report quotes).
fn first_reason(text: &str, reason: &str) -> String {
    text.lines()
        .find(|l| l.contains(reason))
        .unwrap_or(text)
        .trim()
        .to_string()
}

/// Asserts success (positive controls: each attack's untampered twin must pass, so the refusal
/// is caused by the attack and not by a broken fixture).
pub fn assert_accepted(case: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{case}: control case refused:\n{}",
        text_of(out)
    );
}

/// `cfsgate verify --policy POLICY --reference REFERENCE IMAGE`.
pub fn verify(policy: &Path, reference: &str, image: &str) -> Output {
    cfsgate(
        &[
            "verify",
            "--policy",
            &policy.display().to_string(),
            "--reference",
            reference,
            image,
        ],
        None,
    )
}

/// [`verify`] of a fixture image under the fixture policy, the seal checked against the
/// composefs image stored in the fixture's repository (the fixture seals with the digest of
/// `cfsgate create` of the root tree, which the layers need not rebuild bit for bit).
pub fn verify_in(fx: &Fixture, reference: &str, image: &str) -> Output {
    verify_with(fx, &fx.policy, reference, image)
}

/// [`verify_in`] with another policy.
pub fn verify_with(fx: &Fixture, policy: &Path, reference: &str, image: &str) -> Output {
    cfsgate(
        &[
            "verify",
            "--policy",
            &policy.display().to_string(),
            "--repo",
            &fx.repo.display().to_string(),
            "--reference",
            reference,
            image,
        ],
        None,
    )
}

/// A `dir:` image sealed by `cfsgate seal` (the seal is what the layers build, so it verifies
/// without a repository), signed by `key` as `identity`; returns `dir:PATH`.
pub fn sealed_image(fx: &Fixture, name: &str, marker: &str, key: &Path, identity: &str) -> String {
    let rootfs = fx.rootfs(name, marker);
    // Unsealed leaves the umoci layout oci-NAME:latest behind; seal it into the same layout.
    fx.image(name, &rootfs, crate::fixture::Variant::Unsealed);
    let layout = fx.path().join(format!("oci-{name}"));
    run(Command::new(BIN)
        .arg("seal")
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(&layout));
    let dir = fx.path().join(format!("dir-sealed-{name}"));
    run(Command::new("skopeo")
        .args(["copy", "-q"])
        .arg(format!("oci:{}:latest-sealed", layout.display()))
        .arg(format!("dir:{}", dir.display())));
    let image = format!("dir:{}", dir.display());
    sign(key, identity, &image);
    image
}

/// `cfsgate hook precreate` with the fixture's gate arguments, `policy` and `extra` options.
pub fn precreate(fx: &Fixture, policy: &Path, extra: &[&str], config: &[u8]) -> Output {
    let mut args = vec![
        "hook".to_string(),
        "precreate".to_string(),
        "--annotations".to_string(),
    ];
    args.extend(fx.gate_args());
    args[4] = policy.display().to_string();
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cfsgate(&args, Some(config))
}

/// Writes a policy document next to the fixture's files.
pub fn write_policy(fx: &Fixture, name: &str, policy: &serde_json::Value) -> PathBuf {
    let path = fx.path().join(format!("policy-{name}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(policy).unwrap()).unwrap();
    path
}

/// A `sigstoreSigned` requirement trusting `public_key`.
pub fn sigstore(public_key: &Path, identity: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"type": "sigstoreSigned", "keyPath": public_key, "signedIdentity": identity})
}

/// A policy rejecting everything but the docker scope `scope`, which has `requirements`.
pub fn one_scope(scope: &str, requirements: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {scope: requirements}}
    })
}

/// The public half of a fixture key (`x.key` → `x.pub`).
pub fn public(key: &Path) -> PathBuf {
    key.with_extension("pub")
}

/// The directory of a `dir:PATH` image.
pub fn dir_of(image: &str) -> PathBuf {
    PathBuf::from(image.strip_prefix("dir:").expect("dir: image"))
}

/// Asserts what every refusal must leave behind: no mount under the fixture's directory (all
/// the suite's mount points and run dirs live there, so parallel tests do not interfere), a
/// repository that passes `cfsgate fsck`, and nothing left in the repository's `tmp/`.
pub fn assert_clean(case: &str, fx: &Fixture) {
    let mounts = mounts_under(fx.path());
    assert!(mounts.is_empty(), "{case}: mounts left behind: {mounts:?}");
    if fx.repo.exists() {
        let out = cfsgate(&["--repo", fx.repo.to_str().unwrap(), "fsck"], None);
        assert!(
            out.status.success(),
            "{case}: fsck fails after the refusal:\n{}",
            text_of(&out)
        );
        let tmp = fx.repo.join("tmp");
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{case}: temporary files left: {left:?}");
    }
}

/// A command's outcome with its wall time and peak resident memory (VmHWM, sampled while it
/// runs) — the resource-exhaustion cases print both.
pub struct Measured {
    pub output: Output,
    pub elapsed: Duration,
    pub peak_rss_kib: u64,
}

/// Runs `cfsgate ARGS` under `timeout LIMIT` (so a hang fails the test instead of stalling the
/// suite) and samples its peak RSS.
pub fn measured(case: &str, limit: Duration, args: &[&str]) -> Measured {
    measured_with_env(case, limit, &[], args)
}

/// [`measured`] with `env` (NAME, VALUE) set for cfsgate.
pub fn measured_with_env(
    case: &str,
    limit: Duration,
    env: &[(&str, &std::ffi::OsStr)],
    args: &[&str],
) -> Measured {
    let start = Instant::now();
    let mut child = Command::new("timeout")
        .envs(env.iter().copied())
        .arg("--signal=KILL")
        .arg(limit.as_secs().to_string())
        .arg(BIN)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn timeout");
    let timeout_pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let readers = [stdout_reader(stdout), stdout_reader(stderr)];
    let mut peak = 0;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        peak = peak.max(child_peak_rss(timeout_pid));
        std::thread::sleep(Duration::from_millis(20));
    };
    let [out, err] = readers.map(|h| h.join().unwrap());
    let elapsed = start.elapsed();
    let output = Output {
        status,
        stdout: out,
        stderr: err,
    };
    eprintln!(
        "MEASURED [{case}] exit {:?} in {:.2} s, peak RSS {} MiB",
        output.status.code(),
        elapsed.as_secs_f64(),
        peak / 1024
    );
    assert!(
        output.status.code() != Some(137) && elapsed < limit,
        "{case}: not finished within {limit:?} (killed)"
    );
    Measured {
        output,
        elapsed,
        peak_rss_kib: peak,
    }
}

fn stdout_reader<R: std::io::Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// VmHWM (KiB) of the children of `parent` (the cfsgate process under `timeout`).
fn child_peak_rss(parent: u32) -> u64 {
    let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .unwrap_or_default();
    children
        .split_whitespace()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .max()
        .unwrap_or(0)
}

/// `cfsgate sign --key KEY --identity IDENTITY IMAGE`.
pub fn sign(key: &Path, identity: &str, image: &str) {
    run(Command::new(BIN)
        .args(["sign", "--key"])
        .arg(key)
        .args(["--identity", identity, image]));
}

/// sha256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
