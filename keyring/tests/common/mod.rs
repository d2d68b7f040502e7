//! Shared helpers of the keyring tests: running openssl (the independent implementation every
//! result is checked against) and small file utilities.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `openssl ARGS`, panicking with its stderr when it fails; returns stdout.
pub fn openssl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed (Debian package openssl)");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Runs `openssl ARGS` and returns whether it exited successfully.
pub fn openssl_ok(args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed")
        .status
        .success()
}

/// A key made by `openssl genpkey`: private key, public key PEM, and the paths.
pub struct OpensslKey {
    pub name: &'static str,
    pub private: PathBuf,
    pub public: PathBuf,
    /// `openssl dgst` digest option for this key type (None: Ed25519, signed raw).
    pub digest: Option<&'static str>,
}

/// The key types openssl makes for the tests: (name, genpkey args, digest).
pub const KEY_TYPES: &[(&str, &[&str], Option<&str>)] = &[
    ("ed25519", &["-algorithm", "ed25519"], None),
    (
        "p256",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        Some("-sha256"),
    ),
    (
        "p384",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        // cosign (and containers/image's check) hash with SHA-256 on every curve.
        Some("-sha256"),
    ),
    (
        "rsa2048",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        Some("-sha256"),
    ),
    (
        "rsa3072",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
        Some("-sha256"),
    ),
    (
        "rsa4096",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"],
        Some("-sha256"),
    ),
];

pub fn genpkey(
    dir: &Path,
    name: &'static str,
    args: &[&str],
    digest: Option<&'static str>,
) -> OpensslKey {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let mut all = vec!["genpkey"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-out", p(&private)]);
    openssl(&all);
    openssl(&["pkey", "-in", p(&private), "-pubout", "-out", p(&public)]);
    OpensslKey {
        name,
        private,
        public,
        digest,
    }
}

/// Signs `message_file` with openssl the way cosign-style tools do for this key type.
pub fn openssl_sign(key: &OpensslKey, message_file: &Path, signature_file: &Path) {
    match key.digest {
        None => openssl(&[
            "pkeyutl",
            "-sign",
            "-rawin",
            "-inkey",
            p(&key.private),
            "-in",
            p(message_file),
            "-out",
            p(signature_file),
        ]),
        Some(digest) => openssl(&[
            "dgst",
            digest,
            "-sign",
            p(&key.private),
            "-out",
            p(signature_file),
            p(message_file),
        ]),
    };
}

/// Verifies with openssl using the public key file `public`.
pub fn openssl_verify(
    key: &OpensslKey,
    public: &Path,
    message_file: &Path,
    signature_file: &Path,
) -> bool {
    match key.digest {
        None => openssl_ok(&[
            "pkeyutl",
            "-verify",
            "-rawin",
            "-pubin",
            "-inkey",
            p(public),
            "-in",
            p(message_file),
            "-sigfile",
            p(signature_file),
        ]),
        Some(digest) => openssl_ok(&[
            "dgst",
            digest,
            "-verify",
            p(public),
            "-signature",
            p(signature_file),
            p(message_file),
        ]),
    }
}

/// The key id openssl's tools give: sha256 of `openssl pkey -pubin -outform DER`.
pub fn openssl_key_id(public: &Path) -> String {
    let der = openssl(&["pkey", "-pubin", "-in", p(public), "-outform", "DER"]);
    openssl_stdin_sha256(&der)
}

/// sha256 computed by `openssl dgst` (not by the crate under test).
pub fn openssl_stdin_sha256(data: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("data");
    std::fs::write(&file, data).expect("write");
    let out = openssl(&["dgst", "-sha256", "-r", p(&file)]);
    String::from_utf8_lossy(&out)
        .split_whitespace()
        .next()
        .expect("digest")
        .to_string()
}

pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 test path")
}

pub fn flip(bytes: &[u8], index: usize) -> Vec<u8> {
    let mut flipped = bytes.to_vec();
    let i = index % flipped.len();
    flipped[i] ^= 0x01;
    flipped
}

/// Whether this process is root (kernel keyring tests need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Root-only tests skip when not root, except under CI=true where they must run.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} needs root and CI=true forbids skipping"
    );
    eprintln!("skipping {test}: not root");
    false
}
