//! Substitution: another image's bytes presented under the digests that were signed and sealed —
//! the manifest, the config, a layer, an object in the store, the stored composefs image.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::fixture::*;

/// A copy of a `dir:` image (the attacker edits the copy; the original stays a control).
fn copy_image(fx: &Fixture, image: &str, name: &str) -> PathBuf {
    let dest = fx.path().join(name);
    run(Command::new("cp").arg("-a").arg(dir_of(image)).arg(&dest));
    dest
}

/// The manifest of a `dir:` image.
fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// The file of a blob in a `dir:` image (skopeo names it by the digest's hex).
fn blob_file(dir: &Path, digest: &serde_json::Value) -> PathBuf {
    dir.join(digest.as_str().unwrap().trim_start_matches("sha256:"))
}

#[test]
fn another_images_manifest_config_or_layer_under_the_signed_digests() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let a = fx.image("a", &fx.rootfs("a", "trusted A"), Variant::Good);
    let b = fx.image("b", &fx.rootfs("b", "attacker B"), Variant::Good);
    assert_accepted("control: A as signed", &verify_in(&fx, APP, &a));
    let (dir_a, dir_b) = (dir_of(&a), dir_of(&b));

    // B's whole image (manifest and blobs) with A's signature.
    let swapped = copy_image(&fx, &b, "swap-manifest");
    std::fs::copy(dir_a.join("signature-1"), swapped.join("signature-1")).unwrap();
    let out = verify_in(&fx, APP, &format!("dir:{}", swapped.display()));
    assert_refused(
        "manifest substituted",
        &out,
        REJECTED,
        "but the manifest is",
    );

    // A's manifest, but its config blob file holds B's config.
    let swapped = copy_image(&fx, &a, "swap-config");
    let (ma, mb) = (manifest(&dir_a), manifest(&dir_b));
    std::fs::copy(
        blob_file(&dir_b, &mb["config"]["digest"]),
        blob_file(&swapped, &ma["config"]["digest"]),
    )
    .unwrap();
    let out = verify_in(&fx, APP, &format!("dir:{}", swapped.display()));
    assert_refused(
        "config substituted",
        &out,
        REJECTED,
        "the config blob does not match the digest the manifest names",
    );

    // A's manifest and config, but the layer blob file holds B's layer. Checked where the
    // layers matter: an image sealed by `cfsgate seal`, verified without a repository (the seal
    // is checked by rebuilding the composefs image from the layers). With --repo the layers are
    // not read at all: what is mounted is the stored image the seal names, checked by digest.
    let a = sealed_image(&fx, "sa", "sealed A", &fx.signer, "registry.example/app");
    let b = sealed_image(&fx, "sb", "sealed B", &fx.signer, "registry.example/app");
    assert_accepted("control: sealed A", &verify(&fx.policy, APP, &a));
    let (dir_a, dir_b) = (dir_of(&a), dir_of(&b));
    let (ma, mb) = (manifest(&dir_a), manifest(&dir_b));
    let swapped = copy_image(&fx, &a, "swap-layer");
    std::fs::copy(
        blob_file(&dir_b, &mb["layers"][0]["digest"]),
        blob_file(&swapped, &ma["layers"][0]["digest"]),
    )
    .unwrap();
    let out = verify(&fx.policy, APP, &format!("dir:{}", swapped.display()));
    assert_refused(
        "layer substituted",
        &out,
        REJECTED,
        "a layer does not match the image",
    );
    assert_clean("manifest/config/layer substitution", &fx);
}

/// The object file of `content` in the repository (found by content: objects are named by
/// their fs-verity digest, which this test does not need to recompute).
pub fn object_holding(repo: &Path, content: &[u8]) -> PathBuf {
    for fanout in std::fs::read_dir(repo.join("objects")).unwrap() {
        let fanout = fanout.unwrap().path();
        if !fanout.is_dir() {
            continue;
        }
        for object in std::fs::read_dir(&fanout).unwrap() {
            let object = object.unwrap().path();
            if std::fs::metadata(&object).unwrap().len() == content.len() as u64
                && std::fs::read(&object).unwrap() == content
            {
                return object;
            }
        }
    }
    panic!("no object holds the content");
}

pub fn mount_args<'a>(
    fx: &'a Fixture,
    verity: &'a str,
    digest: &'a str,
    at: &'a Path,
) -> Vec<String> {
    vec![
        "mount".into(),
        "--verity".into(),
        verity.into(),
        "--repo".into(),
        fx.repo.display().to_string(),
        digest.into(),
        at.display().to_string(),
    ]
}

pub fn mount(fx: &Fixture, verity: &str, digest: &str, at: &Path) -> std::process::Output {
    std::fs::create_dir_all(at).unwrap();
    let args = mount_args(fx, verity, digest, at);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cfsgate(&args, None)
}

pub fn umount(at: &Path) {
    run(Command::new(BIN).arg("umount").arg(at));
}

#[test]
fn an_object_replaced_in_the_store_is_named_by_userspace_verification() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let rootfs = fx.rootfs("obj", "object content");
    let digest = fx.store(&rootfs);
    let big = std::fs::read(rootfs.join("etc/big")).unwrap();
    let object = object_holding(&fx.repo, &big);
    let at = fx.path().join("mnt-obj");

    // Control: the intact store mounts and shows the content.
    assert_accepted(
        "control: intact store",
        &mount(&fx, "userspace", &digest, &at),
    );
    assert_eq!(std::fs::read(at.join("etc/big")).unwrap(), big);
    umount(&at);

    // Same length, other bytes: only a digest check can tell.
    let mut forged = big.clone();
    forged[..8].copy_from_slice(b"EVILEVIL");
    std::fs::write(&object, &forged).unwrap();
    let out = mount(&fx, "userspace", &digest, &at);
    let name = object.file_name().unwrap().to_str().unwrap().to_string();
    let text = assert_refused(
        "object replaced",
        &out,
        UNEVALUABLE,
        "userspace verification of the objects failed",
    );
    assert!(
        text.contains(&name) && text.contains("/etc/big: object") && text.contains("is corrupt"),
        "the refusal does not name the file and its object: {text}"
    );
    assert!(mounts_under(fx.path()).is_empty());
    // fsck sees the corruption too; with the object restored, the store is clean.
    let out = cfsgate(&["--repo", fx.repo.to_str().unwrap(), "fsck"], None);
    assert!(!out.status.success(), "fsck missed the replaced object");
    std::fs::write(&object, &big).unwrap();
    assert_clean("object replaced", &fx);

    // The object deleted: the mount must not come up with a hole where /etc/big was.
    std::fs::remove_file(&object).unwrap();
    let out = mount(&fx, "userspace", &digest, &at);
    let text = assert_refused(
        "object deleted",
        &out,
        UNEVALUABLE,
        "userspace verification of the objects failed",
    );
    assert!(
        text.contains("/etc/big"),
        "the refusal does not name the file: {text}"
    );
    std::fs::write(&object, &big).unwrap();
    assert_clean("object deleted", &fx);
}

#[test]
fn the_stored_composefs_image_replaced_by_another_valid_image() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let rootfs = fx.rootfs("trusted", "trusted");
    // A signed image sealed with the trusted digest (stores it), for the hook case below.
    let image = fx.image("hooked", &rootfs, Variant::Good);
    let trusted = fx.store(&rootfs);
    let other = fx.store(&fx.rootfs("other", "attacker"));
    let image_file = fx.repo.join("images").join(&trusted);
    let original = std::fs::read(&image_file).unwrap();
    std::fs::copy(fx.repo.join("images").join(&other), &image_file).unwrap();

    let at = fx.path().join("mnt-img");
    for verity in ["userspace", "none"] {
        let out = mount(&fx, verity, &trusted, &at);
        let text = assert_refused(
            &format!("stored image replaced (--verity {verity})"),
            &out,
            UNEVALUABLE,
            "not the trusted digest",
        );
        assert!(
            text.contains(&other),
            "the refusal does not give the actual digest: {text}"
        );
    }
    // Through the hook, with a signed image whose seal names the trusted digest: the verdict
    // may pass (the seal matches what the layers build), the mount must not.
    let out = precreate(&fx, &fx.policy, &[], &runtime_config(&image, APP, &[]));
    assert_refused(
        "stored image replaced (hook)",
        &out,
        REJECTED,
        "was altered",
    );
    assert!(out.stdout.is_empty());
    std::fs::write(&image_file, original).unwrap();
    assert_clean("stored image replaced", &fx);
}

#[test]
fn an_older_signed_image_standing_in_for_a_pinned_digest() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let old = fx.image("old", &fx.rootfs("old", "old release"), Variant::Good);
    let pinned = fx.image(
        "pinned",
        &fx.rootfs("pinned", "pinned release"),
        Variant::Good,
    );
    let digest_of = |image: &str| {
        let bytes = std::fs::read(dir_of(image).join("manifest.json")).unwrap();
        format!("registry.example/app@sha256:{}", sha256_hex(&bytes))
    };
    let reference = digest_of(&pinned);
    assert_accepted(
        "control: the pinned image under its own digest",
        &verify_in(&fx, &reference, &pinned),
    );
    // The older image is validly signed for the same repository, but is not the manifest the
    // reference pins.
    let out = verify_in(&fx, &reference, &old);
    let text = assert_refused(
        "older signed image under a pinned digest",
        &out,
        UNEVALUABLE,
        "but image",
    );
    assert!(text.contains(&reference[reference.len() - 64..]), "{text}");
    // Whatever the policy: even insecureAcceptAnything does not take another manifest.
    let anything = write_policy(
        &fx,
        "anything",
        &serde_json::json!({"default": [{"type": "insecureAcceptAnything"}]}),
    );
    let out = verify(&anything, &reference, &old);
    assert_refused(
        "pinned digest under insecureAcceptAnything",
        &out,
        UNEVALUABLE,
        "pins manifest sha256:",
    );
    // With the repository: the fixture's seal is the stored image's digest (a seal, when
    // present, must match even under insecureAcceptAnything).
    assert_accepted(
        "control: insecureAcceptAnything with the right digest",
        &verify_with(&fx, &anything, &reference, &pinned),
    );
    assert_clean("pinned digest", &fx);
}
