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

    // The index itself (unsigned) selects this host's platform manifest, and that manifest's
    // signature is what is checked (the verdict names it). Unlike containers/image, which
    // checks signatures of the index digest; what runs is still exactly what was signed.
    let out = verify(&policy, APP, &layout.reference("multi"));
    assert_accepted("control: index tag selects the signed amd64 manifest", &out);
    assert!(text_of(&out).contains(&format!("manifest: {}", amd64["digest"].as_str().unwrap())));
    // An index that lies: the arm64 manifest listed as amd64, or listed before the signed
    // amd64 one under the same platform.
    let mut lying = arm64.clone();
    lying["platform"] = amd64["platform"].clone();
    for (tag, manifests) in [("lie", json!([lying])), ("first", json!([lying, amd64]))] {
        let index = json!({"schemaVersion": 2, "mediaType": crate::ocibuild::INDEX_TYPE,
                           "manifests": manifests});
        let desc = layout.blob(
            crate::ocibuild::INDEX_TYPE,
            &serde_json::to_vec(&index).unwrap(),
        );
        let mut text = std::fs::read_to_string(layout.path.join("index.json")).unwrap();
        let mut entry = desc.clone();
        entry["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        doc["manifests"].as_array_mut().unwrap().push(entry);
        text = doc.to_string();
        std::fs::write(layout.path.join("index.json"), text).unwrap();
        let out = verify(&policy, APP, &layout.reference(tag));
        assert_refused(
            &format!("index listing the arm64 manifest as amd64 ({tag})"),
            &out,
            REJECTED,
            "unsigned",
        );
    }
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
