//! `cfsgate sigstore verify-bundle` in sigstore-conformance's CLI protocol, on the suite's
//! key-signed cases (by path and by `sha256:` digest): exit 0 exactly for the cases that must
//! verify; a keyless request is refused (not yet supported), never accepted.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::Digest as _;

const BIN: &str = env!("CARGO_BIN_EXE_cfsgate");

fn cases() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/conformance/sigstore-conformance/bundle-verify")
        .canonicalize()
        .unwrap()
}

#[test]
fn key_signed_cases_by_path_and_by_digest() {
    let mut ran = 0;
    for entry in std::fs::read_dir(cases()).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("key.pub").exists() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let artifact = if dir.join("artifact").exists() {
            dir.join("artifact")
        } else {
            cases().join("a.txt")
        };
        let root = if dir.join("trusted_root.json").exists() {
            dir.join("trusted_root.json")
        } else {
            cases().join("../roots/production_trusted_root.json")
        };
        let digest = format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(std::fs::read(&artifact).unwrap()))
        );
        for target in [artifact.display().to_string(), digest] {
            let out = Command::new(BIN)
                .args(["sigstore", "verify-bundle", "--bundle"])
                .arg(dir.join("bundle.sigstore.json"))
                .arg("--key")
                .arg(dir.join("key.pub"))
                .arg("--trusted-root")
                .arg(&root)
                .arg(&target)
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                out.status.success(),
                !name.ends_with("_fail"),
                "{name} {target}: {text}"
            );
            ran += 1;
        }
    }
    assert!(ran >= 6, "{ran}");
    // Keyless is not verified yet: refused, saying so.
    let dir = cases().join("happy-path-v0.3");
    let out = Command::new(BIN)
        .args(["sigstore", "verify-bundle", "--bundle"])
        .arg(dir.join("bundle.sigstore.json"))
        .args([
            "--certificate-identity",
            "x",
            "--certificate-oidc-issuer",
            "https://token.actions.githubusercontent.com",
        ])
        .arg(cases().join("a.txt"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not supported yet"));
}
