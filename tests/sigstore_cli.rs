//! `cfsgate sigstore verify-bundle` in sigstore-conformance's CLI protocol, offline:
//!
//! - every `bundle-verify` case of `../shared/conformance/sigstore-conformance`, by the
//!   artifact's path and by `sha256:<hex>`: exit 0 exactly for the cases that must verify;
//! - the 81 CPython release bundles by digest, with the production trusted root, for the
//!   release managers' identities (cpython-release-tracker's `signing-identities.json`). The
//!   release tarballs are not in the suite: the digest given is the one the bundle's
//!   `messageDigest` claims, which the signature, the logged body and the SET all bind;
//! - a good keyless bundle with each part tampered (payload, certificate, SET, inclusion proof,
//!   checkpoint): refused, saying which check failed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::Value;
use sha2::Digest as _;

const BIN: &str = env!("CARGO_BIN_EXE_cfsgate");

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// CPython release managers by release (cpython-release-tracker `signing-identities.json`).
const CPYTHON_SIGNERS: [(&str, &str, &str); 8] = [
    ("3.7", "nad@python.org", "https://github.com/login/oauth"),
    ("3.8", "lukasz@langa.pl", "https://github.com/login/oauth"),
    ("3.9", "lukasz@langa.pl", "https://github.com/login/oauth"),
    (
        "3.10",
        "pablogsal@python.org",
        "https://accounts.google.com",
    ),
    (
        "3.11",
        "pablogsal@python.org",
        "https://accounts.google.com",
    ),
    ("3.12", "thomas@python.org", "https://accounts.google.com"),
    ("3.13", "thomas@python.org", "https://accounts.google.com"),
    ("3.14", "hugo@python.org", "https://github.com/login/oauth"),
];

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/conformance/sigstore-conformance")
        .canonicalize()
        .expect("the conformance suite is at ../shared")
}

fn production_root() -> PathBuf {
    suite().join("roots/production_trusted_root.json")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `verify-bundle` with `signer` (`--key F` or the identity flags) and `target`.
fn verify(bundle: &Path, signer: &[String], root: &Path, target: &str) -> Output {
    Command::new(BIN)
        .args(["sigstore", "verify-bundle", "--bundle"])
        .arg(bundle)
        .args(signer)
        .arg("--trusted-root")
        .arg(root)
        .arg(target)
        .output()
        .expect("cfsgate runs")
}

fn identity_args(identity: &str, issuer: &str) -> Vec<String> {
    vec![
        "--certificate-identity".into(),
        identity.into(),
        "--certificate-oidc-issuer".into(),
        issuer.into(),
    ]
}

/// The case's signer arguments, root and artifact.
fn case(dir: &Path) -> (Vec<String>, PathBuf, PathBuf) {
    let signer = if dir.join("key.pub").exists() {
        vec!["--key".into(), dir.join("key.pub").display().to_string()]
    } else {
        let or = |file: &str, default: &str| {
            let path = dir.join(file);
            if path.exists() {
                read(&path).trim().to_string()
            } else {
                default.to_string()
            }
        };
        identity_args(
            &or("identity", DEFAULT_IDENTITY),
            &or("issuer", DEFAULT_ISSUER),
        )
    };
    let root = if dir.join("trusted_root.json").exists() {
        dir.join("trusted_root.json")
    } else {
        production_root()
    };
    let artifact = if dir.join("artifact").exists() {
        dir.join("artifact")
    } else {
        suite().join("bundle-verify/a.txt")
    };
    (signer, root, artifact)
}

fn digest_of(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("artifact");
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

#[test]
fn every_conformance_case_by_path_and_by_digest() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(suite().join("bundle-verify"))
        .expect("cases")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let (mut passed, mut wrong) = (0, Vec::new());
    for dir in &dirs {
        let name = dir.file_name().expect("name").to_string_lossy().to_string();
        let (signer, root, artifact) = case(dir);
        for target in [artifact.display().to_string(), digest_of(&artifact)] {
            let out = verify(&dir.join("bundle.sigstore.json"), &signer, &root, &target);
            let by = if target.starts_with("sha256:") {
                "digest"
            } else {
                "path"
            };
            if out.status.success() != name.ends_with("_fail") {
                passed += 1;
                eprintln!("ok   {name} by {by}: {}", text(&out).trim());
            } else {
                wrong.push(format!("{name} by {by}: {}", text(&out).trim()));
            }
        }
    }
    eprintln!("{passed} of {} checks reach their outcome", 2 * dirs.len());
    assert_eq!(dirs.len(), 70, "the suite has 70 cases");
    assert!(wrong.is_empty(), "wrong outcomes:\n{}", wrong.join("\n"));
}

#[test]
fn cpython_release_bundles_by_digest() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(suite().join("cpython-release"))
        .expect("bundles")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let mut wrong = Vec::new();
    for file in &files {
        let version = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .trim_end_matches(".sigstore.json")
            .to_string();
        let release = version.split('.').take(2).collect::<Vec<_>>().join(".");
        let (_, identity, issuer) = CPYTHON_SIGNERS
            .iter()
            .find(|(r, _, _)| *r == release)
            .unwrap_or_else(|| panic!("no signer for {version}"));
        let bundle: Value = serde_json::from_str(&read(file)).expect("JSON");
        let digest = B64
            .decode(
                bundle["messageSignature"]["messageDigest"]["digest"]
                    .as_str()
                    .expect("messageDigest"),
            )
            .expect("base64");
        let target = format!("sha256:{}", hex::encode(digest));
        let out = verify(
            file,
            &identity_args(identity, issuer),
            &production_root(),
            &target,
        );
        if !out.status.success() {
            wrong.push(format!("{version}: {}", text(&out).trim()));
        }
        // Another release manager's identity is refused.
        let other = identity_args("someone@python.org", issuer);
        assert!(!verify(file, &other, &production_root(), &target)
            .status
            .success());
    }
    eprintln!(
        "{} of {} CPython bundles verify",
        files.len() - wrong.len(),
        files.len()
    );
    assert_eq!(files.len(), 81);
    assert!(wrong.is_empty(), "refused:\n{}", wrong.join("\n"));
}

/// happy-path-v0.3 with `edit` applied: the verifier's refusal text (or "accepted").
fn tampered(edit: impl FnOnce(&mut Value), artifact: Option<&[u8]>) -> String {
    let dir = suite().join("bundle-verify/happy-path-v0.3");
    let mut bundle: Value =
        serde_json::from_str(&read(&dir.join("bundle.sigstore.json"))).expect("JSON");
    edit(&mut bundle);
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("bundle.json");
    std::fs::write(&path, serde_json::to_vec(&bundle).expect("JSON")).expect("write");
    let artifact_path = tmp.path().join("artifact");
    let default = std::fs::read(suite().join("bundle-verify/a.txt")).expect("a.txt");
    std::fs::write(&artifact_path, artifact.unwrap_or(&default)).expect("write");
    let out = verify(
        &path,
        &identity_args(DEFAULT_IDENTITY, DEFAULT_ISSUER),
        &production_root(),
        &artifact_path.display().to_string(),
    );
    if out.status.success() {
        "accepted".into()
    } else {
        text(&out)
    }
}

/// Flips a bit of a base64 field at byte `at` (from the end when negative).
fn flip(value: &mut Value, at: isize) {
    let mut bytes = B64
        .decode(value.as_str().expect("base64 field"))
        .expect("base64");
    let i = if at < 0 {
        bytes.len() - at.unsigned_abs()
    } else {
        at as usize
    };
    bytes[i] ^= 1;
    *value = Value::String(B64.encode(bytes));
}

#[test]
fn each_tampered_part_is_refused_saying_which() {
    assert_eq!(tampered(|_| {}, None), "accepted", "control");
    let entry = |b: &mut Value| b["verificationMaterial"]["tlogEntries"][0].take();
    let refusals = [
        (
            tampered(|_| {}, Some(b"another payload\n")),
            "messageDigest",
        ),
        (
            tampered(
                |b| {
                    flip(
                        &mut b["verificationMaterial"]["certificate"]["rawBytes"],
                        -10,
                    )
                },
                None,
            ),
            "certificate",
        ),
        (
            tampered(
                |b| {
                    let mut e = entry(b);
                    flip(&mut e["inclusionPromise"]["signedEntryTimestamp"], -5);
                    b["verificationMaterial"]["tlogEntries"][0] = e;
                },
                None,
            ),
            "signed entry timestamp",
        ),
        (
            tampered(
                |b| {
                    let mut e = entry(b);
                    flip(&mut e["inclusionProof"]["hashes"][0], 3);
                    b["verificationMaterial"]["tlogEntries"][0] = e;
                },
                None,
            ),
            "inclusion proof",
        ),
        (
            tampered(
                |b| {
                    let mut e = entry(b);
                    let note = e["inclusionProof"]["checkpoint"]["envelope"]
                        .as_str()
                        .expect("note")
                        .to_string();
                    let (head, sig) = note.rsplit_once(' ').expect("signature line");
                    let mut sig = Value::String(sig.trim_end().to_string());
                    flip(&mut sig, -3);
                    e["inclusionProof"]["checkpoint"]["envelope"] =
                        Value::String(format!("{head} {}\n", sig.as_str().expect("str")));
                    b["verificationMaterial"]["tlogEntries"][0] = e;
                },
                None,
            ),
            "checkpoint",
        ),
        (
            tampered(|b| flip(&mut b["messageSignature"]["signature"], -4), None),
            "signature",
        ),
    ];
    for (refusal, which) in refusals {
        assert!(
            refusal.contains(which),
            "expected a refusal naming {which:?}, got: {refusal}"
        );
    }
}
