//! Replay: a signature that is valid somewhere, presented where it is not — copied onto another
//! image (`dir:` signature-N, cosign `.sig` tag), or made by a key after it was rotated out.

use std::process::Command;

use serde_json::json;

use crate::common::*;
use crate::fixture::*;
use crate::ocibuild::{marker_layer, Layout};

#[test]
fn a_dir_signature_copied_onto_another_image() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let signed = fx.image("signed", &fx.rootfs("signed", "signed"), Variant::Good);
    let victim = fx.image("victim", &fx.rootfs("victim", "victim"), Variant::Unsigned);
    assert_accepted("control: signed image", &verify_in(&fx, APP, &signed));
    let out = verify_in(&fx, APP, &victim);
    assert_refused("control: victim unsigned", &out, REJECTED, "unsigned");
    std::fs::copy(
        dir_of(&signed).join("signature-1"),
        dir_of(&victim).join("signature-1"),
    )
    .unwrap();
    let out = verify_in(&fx, APP, &victim);
    assert_refused(
        "dir signature-1 replayed onto another image",
        &out,
        REJECTED,
        "but the manifest is",
    );
    assert_clean("dir signature replayed", &fx);
}

#[test]
fn a_cosign_sig_tag_moved_onto_another_image() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let layout = Layout::new(&fx.path().join("oci-two"));
    let a = layout.image("amd64", &[marker_layer("A")], json!({}));
    let b = layout.image("amd64", &[marker_layer("B")], json!({}));
    layout.set_index(&[("a", &a), ("b", &b)]);
    sign(&fx.signer, "registry.example/app", &layout.reference("a"));
    let policy = write_policy(
        &fx,
        "sig",
        &one_scope(
            "registry.example/app",
            json!([sigstore(
                &public(&fx.signer),
                json!({"type": "matchRepository"})
            )]),
        ),
    );
    assert_accepted(
        "control: a signed",
        &verify(&policy, APP, &layout.reference("a")),
    );
    let out = verify(&policy, APP, &layout.reference("b"));
    assert_refused("control: b unsigned", &out, REJECTED, "unsigned");

    // Rename the signature tag sha256-<a>.sig to sha256-<b>.sig: the signature manifest and
    // its payload (which names a's digest) are unchanged.
    let index_path = layout.path.join("index.json");
    let hex = |d: &serde_json::Value| d["digest"].as_str().unwrap()[7..].to_string();
    let text = std::fs::read_to_string(&index_path).unwrap();
    let (from, to) = (
        format!("sha256-{}.sig", hex(&a)),
        format!("sha256-{}.sig", hex(&b)),
    );
    assert!(text.contains(&from), "sign wrote no {from} tag: {text}");
    std::fs::write(&index_path, text.replace(&from, &to)).unwrap();
    let out = verify(&policy, APP, &layout.reference("b"));
    assert_refused(
        "cosign .sig tag replayed onto another image",
        &out,
        REJECTED,
        "but the manifest is",
    );
    let out = verify(&policy, APP, &layout.reference("a"));
    assert_refused(
        "the original image after its .sig tag moved",
        &out,
        REJECTED,
        "unsigned",
    );
    assert_clean("cosign signature replayed", &fx);
}

#[test]
fn an_old_signature_after_key_rotation() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let successor = fx.path().join("successor");
    run(Command::new(BIN)
        .args(["key", "generate", "--type", "p256", "--output"])
        .arg(&successor));
    let successor_key = successor.with_extension("key");
    // The old key (the fixture's signer) was valid until 2024; its successor from then on.
    let requirement = json!({
        "type": "sigstoreSigned",
        "signedIdentity": {"type": "matchRepository"},
        "cfsgate": {"keys": [
            {"keyPath": public(&fx.signer), "notAfter": "2024-01-01T00:00:00Z"},
            {"keyPath": public(&successor_key), "notBefore": "2024-01-01T00:00:00Z"}
        ]}
    });
    let policy = write_policy(
        &fx,
        "rotation",
        &one_scope("registry.example/app", json!([requirement])),
    );
    let old = fx.image("old", &fx.rootfs("old", "old"), Variant::Good);
    let new = fx.image("new", &fx.rootfs("new", "new"), Variant::Unsigned);
    sign(&successor_key, "registry.example/app", &new);
    assert_accepted(
        "control: signed by the successor",
        &verify_with(&fx, &policy, APP, &new),
    );
    let out = verify_with(&fx, &policy, APP, &old);
    assert_refused(
        "signature by a rotated-out key",
        &out,
        REJECTED,
        "outside its validity window",
    );
    assert_clean("old signature after rotation", &fx);
}

#[test]
fn one_key_signing_twice_does_not_meet_a_threshold_of_two() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let requirement = json!({
        "type": "sigstoreSigned",
        "keyPaths": [public(&fx.signer), public(&fx.stranger)],
        "signedIdentity": {"type": "matchRepository"},
        "cfsgate": {"threshold": 2}
    });
    let policy = write_policy(
        &fx,
        "threshold",
        &one_scope("registry.example/app", json!([requirement])),
    );
    let image = fx.image("twice", &fx.rootfs("twice", "t"), Variant::Good);
    // The same key's signature again (a second signing, and a byte-identical copy).
    sign(&fx.signer, "registry.example/app", &image);
    let dir = dir_of(&image);
    std::fs::copy(dir.join("signature-1"), dir.join("signature-3")).unwrap();
    let out = verify_with(&fx, &policy, APP, &image);
    assert_refused(
        "one key's signatures counted twice",
        &out,
        REJECTED,
        "only 1 distinct trusted key(s) signed, 2 required",
    );
    // Control: the second key's signature meets the threshold.
    sign(&fx.stranger, "registry.example/app", &image);
    assert_accepted(
        "control: two distinct keys",
        &verify_with(&fx, &policy, APP, &image),
    );
    assert_clean("threshold", &fx);
}
