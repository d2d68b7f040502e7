//! Confusion: a genuine signature by a trusted key, for something else — another repository,
//! another tag, another platform of the same index, or by a key trusted only in another scope.

use serde_json::json;

use crate::common::*;
use crate::fixture::*;
use crate::ocibuild::{marker_layer, Layout};

#[test]
fn a_signature_for_another_repository() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let image = fx.image("repo", &fx.rootfs("repo", "r"), Variant::Unsigned);
    sign(&fx.signer, "registry.example/other", &image);
    let out = verify_in(&fx, APP, &image);
    assert_refused(
        "signature for another repository",
        &out,
        REJECTED,
        "signed identity \"registry.example/other\"",
    );
    assert_clean("another repository", &fx);
}

#[test]
fn a_signature_for_another_tag_under_match_exact() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let policy = write_policy(
        &fx,
        "exact",
        &one_scope(
            "registry.example/app",
            json!([sigstore(&public(&fx.signer), json!({"type": "matchExact"}))]),
        ),
    );
    let image = fx.image("tag", &fx.rootfs("tag", "t"), Variant::Unsigned);
    sign(&fx.signer, "registry.example/app:v1", &image);
    assert_accepted(
        "control: the signed tag",
        &verify_with(&fx, &policy, "registry.example/app:v1", &image),
    );
    let out = verify_with(&fx, &policy, "registry.example/app:v2", &image);
    assert_refused(
        "signature for another tag",
        &out,
        REJECTED,
        "signed identity \"registry.example/app:v1\"",
    );
    assert_clean("another tag", &fx);
}

#[test]
fn a_signature_for_another_platform_of_the_same_index() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let layout = Layout::new(&fx.path().join("oci-multi"));
    let amd64 = layout.image("amd64", &[marker_layer("amd64")], json!({}));
    let arm64 = layout.image("arm64", &[marker_layer("arm64")], json!({}));
    // The multi-platform index, by hand, tagged `multi`; each platform also tagged so that
    // `cfsgate sign` can name the amd64 manifest.
    let index = json!({"schemaVersion": 2, "mediaType": crate::ocibuild::INDEX_TYPE,
                       "manifests": [amd64, arm64]});
    let index = layout.blob(
        crate::ocibuild::INDEX_TYPE,
        &serde_json::to_vec(&index).unwrap(),
    );
    layout.set_index(&[("multi", &index), ("amd64", &amd64)]);
    sign(
        &fx.signer,
        "registry.example/app",
        &layout.reference("amd64"),
    );
    let policy = write_policy(
        &fx,
        "multi",
        &one_scope(
            "registry.example/app",
            json!([sigstore(
                &public(&fx.signer),
                json!({"type": "matchRepository"})
            )]),
        ),
    );
    assert_accepted(
        "control: the signed amd64 manifest by digest",
        &verify(&policy, APP, &layout.by_digest(&amd64)),
    );
    let out = verify(&policy, APP, &layout.by_digest(&arm64));
    assert_refused(
        "arm64 manifest, no signature of its own",
        &out,
        REJECTED,
        "unsigned",
    );

    // The amd64 signature re-tagged as the arm64 manifest's.
    let index_path = layout.path.join("index.json");
    let hex = |d: &serde_json::Value| d["digest"].as_str().unwrap()[7..].to_string();
    let text = std::fs::read_to_string(&index_path).unwrap();
    let from = format!("sha256-{}.sig", hex(&amd64));
    assert!(text.contains(&from));
    std::fs::write(
        &index_path,
        text.replace(&from, &format!("sha256-{}.sig", hex(&arm64))),
    )
    .unwrap();
    let out = verify(&policy, APP, &layout.by_digest(&arm64));
    assert_refused(
        "amd64 signature presented for the arm64 manifest",
        &out,
        REJECTED,
        "but the manifest is",
    );
    assert_clean("another platform", &fx);
}

#[test]
fn a_key_trusted_in_another_scope_only() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    // `app` trusts the signer; `other` trusts the stranger, for images claiming to be `app`.
    let policy = json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {
            "registry.example/app": [sigstore(&public(&fx.signer), json!({"type": "matchRepository"}))],
            "registry.example/other": [sigstore(&public(&fx.stranger),
                json!({"type": "exactRepository", "dockerRepository": "registry.example/app"}))]
        }}
    });
    let policy = write_policy(&fx, "scopes", &policy);
    let image = fx.image("scoped", &fx.rootfs("scoped", "s"), Variant::WrongKey);
    assert_accepted(
        "control: the stranger's scope",
        &verify_with(&fx, &policy, "registry.example/other:1", &image),
    );
    let out = verify_with(&fx, &policy, APP, &image);
    assert_refused(
        "key trusted only in another scope",
        &out,
        REJECTED,
        "not by any trusted key",
    );
    assert_clean("another scope", &fx);
}
