//! Seal conventions through the binary: `cfsgate seal --convention composefs-rs` writes the
//! digest composefs-rs 0.9 would (checked against composefs-rs itself in
//! oci/tests/convention.rs), and `compute-id` of such an image says which convention its seal
//! matches; a seal under one convention is not taken for the other's digest.

#[path = "fixtures/hooks.rs"]
mod hooks;

use std::path::Path;
use std::process::{Command, Output};

use hooks::{cfsgate, require_root, run, SEAL_LABEL};

fn ok(out: &Output, what: &str) -> (String, String) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The seal label of `oci:LAYOUT:TAG`, read with skopeo (an independent reader).
fn label_of(layout: &Path, tag: &str) -> String {
    let out = run(Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("oci:{}:{tag}", layout.display())));
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    config["config"]["Labels"][SEAL_LABEL]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn seal_and_compute_id_under_the_composefs_rs_convention() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    run(Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oci/make-umoci-image.sh"))
        .arg(&layout)
        .arg(dir.path().join("work"))
        .arg("1"));
    let src = format!("oci:{}:test", layout.display());
    let (plain, _) = ok(&cfsgate(&["compute-id", &src], None), "compute-id");
    let (rs, _) = ok(
        &cfsgate(&["compute-id", "--convention", "composefs-rs", &src], None),
        "compute-id --convention composefs-rs",
    );
    assert_ne!(plain, rs, "the conventions differ on this image");

    let dest = format!("oci:{}:rs", layout.display());
    ok(
        &cfsgate(&["seal", "--convention", "composefs-rs", &src, &dest], None),
        "seal --convention composefs-rs",
    );
    assert_eq!(label_of(&layout, "rs"), format!("sha256:{rs}"));
    let (printed, stderr) = ok(&cfsgate(&["compute-id", &dest], None), "compute-id");
    assert_eq!(printed, plain, "compute-id prints the convention asked for");
    assert!(
        stderr.contains("seal label matches (the composefs-rs convention)"),
        "{stderr}"
    );
    let (_, stderr) = ok(&cfsgate(&["compute-id", &src], None), "compute-id");
    assert!(
        !stderr.contains("seal label"),
        "the source is unsealed: {stderr}"
    );

    // Per-layer annotations exist only under the mkcomposefs convention: refused, nothing
    // written.
    let refused = cfsgate(
        &[
            "seal",
            "--convention",
            "composefs-rs",
            "--layer-annotations",
            &src,
            &format!("oci:{}:nope", layout.display()),
        ],
        None,
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("per-layer annotations"), "{stderr}");
    let index = std::fs::read_to_string(layout.join("index.json")).unwrap();
    assert!(!index.contains("\"nope\""), "{index}");

    // An unknown convention is a usage error naming the choices.
    let bad = cfsgate(&["compute-id", "--convention", "v2", &src], None);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("composefs-rs"));
}
