//! Parser confusion by repeated JSON keys (#14 item 11): a real umoci image whose config (or
//! manifest) is edited to repeat a key, every digest on the way recomputed so that the repeated
//! key is the only thing wrong, is refused with an error naming the key. The same edit with a
//! fresh key (the control) passes, so the refusal is the duplicate's.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{assert_accepted, assert_refused, UNEVALUABLE};
use crate::fixture::{cfsgate, require_root, Fixture};

/// An OCI layout made by umoci (`umoci init/new/insert`) of `rootfs`, tag `latest`.
fn umoci_layout(fx: &Fixture, name: &str, rootfs: &Path) -> PathBuf {
    let (layout, _) = fx.umoci_layout(&format!("dup-{name}"), rootfs);
    layout
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// Store `bytes` as a blob; its `sha256:<hex>`.
fn put_blob(layout: &Path, bytes: &[u8]) -> String {
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
    std::fs::write(blob_path(layout, &digest), bytes).unwrap();
    digest
}

/// Rewrite the image of `layout`: `edit_config` and `edit_manifest` get the JSON text of the
/// config and manifest, every digest and size that names them is recomputed (config in the
/// manifest, manifest in index.json).
fn rewrite(
    layout: &Path,
    edit_config: impl Fn(&str) -> String,
    edit_manifest: impl Fn(&str) -> String,
) {
    let index_path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(blob_path(layout, &manifest_digest)).unwrap())
            .unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_string();
    let config = std::fs::read_to_string(blob_path(layout, &config_digest)).unwrap();
    let config = edit_config(&config);
    manifest["config"]["digest"] = put_blob(layout, config.as_bytes()).into();
    manifest["config"]["size"] = config.len().into();
    let manifest = edit_manifest(&serde_json::to_string(&manifest).unwrap());
    index["manifests"][0]["digest"] = put_blob(layout, manifest.as_bytes()).into();
    index["manifests"][0]["size"] = manifest.len().into();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// `{"k":…` → `{"KEY":VALUE,"k":…`: a member added in front of the first one.
fn prepend_member(json: &str, key: &str, value: &str) -> String {
    let rest = json.trim_start().strip_prefix('{').expect("an object");
    format!("{{\"{key}\":{value},{rest}")
}

fn compute_id(layout: &Path) -> std::process::Output {
    cfsgate(
        &["compute-id", &format!("oci:{}:latest", layout.display())],
        None,
    )
}

#[test]
fn a_repeated_key_in_the_config_or_manifest_is_refused_by_name() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let rootfs = fx.rootfs("dup", "duplicated");
    let same = |s: &str| s.to_string();

    // Control: an added key that repeats nothing, in the config and in the manifest.
    let control = umoci_layout(&fx, "control", &rootfs);
    rewrite(
        &control,
        |c| prepend_member(c, "x-cfsgate-extra", "\"1\""),
        |m| prepend_member(m, "x-cfsgate-extra", "\"1\""),
    );
    assert_accepted(
        "control: a fresh key in config and manifest",
        &compute_id(&control),
    );

    // The config repeats "architecture" (umoci writes it; the added copy comes first, so a
    // last-wins parser sees umoci's and a first-wins parser sees the other).
    let config = umoci_layout(&fx, "config", &rootfs);
    rewrite(
        &config,
        |c| prepend_member(c, "architecture", "\"arm64\""),
        same,
    );
    assert_refused(
        "config with a repeated key",
        &compute_id(&config),
        UNEVALUABLE,
        "duplicate key \"architecture\"",
    );

    // Nested: the config's `config` object repeats a key (umoci's is `{}` or has members:
    // add the same member twice).
    let nested = umoci_layout(&fx, "nested", &rootfs);
    rewrite(
        &nested,
        |c| {
            let mut v: Value = serde_json::from_str(c).unwrap();
            v["config"] = serde_json::json!({});
            serde_json::to_string(&v).unwrap().replace(
                "\"config\":{}",
                "\"config\":{\"User\":\"0\",\"User\":\"1000\"}",
            )
        },
        same,
    );
    assert_refused(
        "config.config with a repeated key",
        &compute_id(&nested),
        UNEVALUABLE,
        "duplicate key \"config.User\"",
    );

    // The manifest repeats a key serde's structs never look at twice: an annotation.
    let manifest = umoci_layout(&fx, "manifest", &rootfs);
    rewrite(&manifest, same, |m| {
        let mut v: Value = serde_json::from_str(m).unwrap();
        v.as_object_mut().unwrap().remove("annotations");
        let m = serde_json::to_string(&v).unwrap();
        prepend_member(&m, "annotations", "{\"a\":\"1\",\"a\":\"2\"}")
    });
    assert_refused(
        "manifest with a repeated annotation",
        &compute_id(&manifest),
        UNEVALUABLE,
        "duplicate key \"annotations.a\"",
    );
}
