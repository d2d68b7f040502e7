//! `cfsgate sign --format bundle docker://…` against the real registry (distribution 2.8, which
//! has no referrers API: the bundle is listed in the `sha256-<hex>` referrers tag), read back
//! and verified by key; and the read path through the referrers API itself, served by a tiny
//! in-test HTTP server that implements `GET /v2/<name>/referrers/<digest>` (returning an image
//! index) and serves the manifests and blobs it lists, which were copied from the real registry.

#[path = "fixtures/hooks.rs"]
mod hooks;
#[path = "fixtures/registry.rs"]
mod registry;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use cfsgate_oci::registry::referrers::{fallback_tag, fetch_referrers};
use cfsgate_oci::registry::{ClientOptions, DockerRef, RegistryClient};
use cfsgate_oci::BlobDigest;
use cfsgate_verifier::bundle_sign::{verify_manifest_bundle, BUNDLE_V03_MEDIA_TYPE};
use hooks::{cfsgate, require_root, run, BIN};
use registry::{ok, skopeo_push, Registry, RegistryConfig};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn client_for(image: &str) -> (DockerRef, RegistryClient) {
    let parsed = DockerRef::parse(image).unwrap();
    let options = ClientOptions {
        tls_verify: false,
        ..Default::default()
    };
    let client = RegistryClient::connect(&parsed, &options).unwrap();
    (parsed, client)
}

fn public_key(path: &Path) -> cfsgate_keyring::PublicKey {
    cfsgate_keyring::PublicKey::from_file(path).unwrap()
}

fn sign(key: &Path, identity: &str, image: &str) -> String {
    ok(
        &cfsgate(
            &[
                "sign",
                "--format",
                "bundle",
                "--tls-verify=false",
                "--key",
                key.to_str().unwrap(),
                "--identity",
                identity,
                image,
            ],
            None,
        ),
        "sign --format bundle",
    )
}

#[test]
fn bundles_are_pushed_as_referrers_and_read_back_through_the_tag_schema_and_the_api() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let registry = Registry::start(&base.join("registry"), RegistryConfig::default());
    let host = registry.host();
    let layout = base.join("layout");
    let root = base.join("rootfs/etc");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("motd"), "bundle\n").unwrap();
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    let tagged = format!("{}:app", layout.display());
    run(Command::new("umoci").args(["new", "--image", &tagged]));
    run(Command::new("umoci")
        .args(["insert", "--image", &tagged])
        .arg(base.join("rootfs"))
        .arg("/"));
    let image = format!("docker://{host}/cfsgate/bundle:v1");
    skopeo_push(&format!("oci:{tagged}"), &image, &[]);
    for name in ["signer", "stranger"] {
        run(Command::new(BIN)
            .args(["key", "generate", "--type", "p256", "--output"])
            .arg(base.join(name)));
    }
    let identity = format!("{host}/cfsgate/bundle");

    let (docker, client) = client_for(&image);
    let manifest = client
        .get_manifest(&docker.repository, "v1", None, 1 << 20)
        .unwrap()
        .unwrap();
    let digest = manifest.digest;
    let out = sign(&base.join("signer.key"), &identity, &image);
    let tag = fallback_tag(&digest);
    assert_eq!(tag, format!("sha256-{}", digest.hex()));
    assert!(
        out.contains(&format!("no referrers API: listed in the {tag} tag")),
        "{out}"
    );
    assert!(out.contains(&format!("@{digest}")), "{out}");

    // What the registry holds: the tag's index lists one bundle artifact whose subject is the
    // signed manifest.
    let index = client
        .get_manifest(&docker.repository, &tag, None, 1 << 20)
        .unwrap()
        .expect("the referrers tag");
    assert_eq!(index.media_type, INDEX);
    let index: serde_json::Value = serde_json::from_slice(&index.bytes).unwrap();
    let listed = index["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{index}");
    assert_eq!(listed[0]["artifactType"], BUNDLE_V03_MEDIA_TYPE);
    let artifact = BlobDigest::parse(listed[0]["digest"].as_str().unwrap()).unwrap();
    let artifact_manifest = client
        .get_manifest(
            &docker.repository,
            &artifact.to_string(),
            Some(&artifact),
            1 << 20,
        )
        .unwrap()
        .unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&artifact_manifest.bytes).unwrap();
    assert_eq!(parsed["subject"]["digest"], digest.to_string());
    assert_eq!(parsed["subject"]["size"], manifest.bytes.len());
    assert_eq!(
        parsed["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );

    // Read back the same way and verified: by the signer's key only, for this manifest only.
    let read = fetch_referrers(
        &client,
        &docker.repository,
        &digest,
        BUNDLE_V03_MEDIA_TYPE,
        1 << 20,
    )
    .unwrap();
    assert_eq!(read.len(), 1);
    assert!(!read[0].via_api);
    let signer = public_key(&base.join("signer.pub"));
    let stranger = public_key(&base.join("stranger.pub"));
    let verified =
        verify_manifest_bundle(&read[0].blob, &digest.0 .0, std::slice::from_ref(&signer)).unwrap();
    assert_eq!(verified.signer, signer.key_id());
    let statement: serde_json::Value =
        serde_json::from_slice(verified.dsse_payload.as_deref().unwrap()).unwrap();
    assert_eq!(statement["subject"][0]["digest"]["sha256"], digest.hex());
    assert_eq!(statement["subject"][0]["name"], identity.as_str());
    assert!(
        verify_manifest_bundle(&read[0].blob, &digest.0 .0, std::slice::from_ref(&stranger))
            .is_err()
    );
    let other = BlobDigest::of(b"another manifest");
    assert!(
        verify_manifest_bundle(&read[0].blob, &other.0 .0, std::slice::from_ref(&signer)).is_err()
    );

    // cfsgate verify reads the bundle back the same way; it counts only where the policy opts
    // in (a bundle names no docker reference), and only for a trusted key.
    let verify = |key: &str, opt_in: bool| {
        let mut requirement = serde_json::json!({
            "type": "sigstoreSigned",
            "keyPath": base.join(key),
            "signedIdentity": {"type": "matchRepository"},
        });
        if opt_in {
            requirement["cfsgate"] = serde_json::json!({"bundleIdentity": "digest-only"});
        }
        let policy = serde_json::json!({"default": [{"type": "reject"}],
            "transports": {"docker": {identity.clone(): [requirement]}}});
        let path = base.join("policy.json");
        std::fs::write(&path, policy.to_string()).unwrap();
        let out = cfsgate(
            &[
                "verify",
                "--tls-verify=false",
                "--policy",
                path.to_str().unwrap(),
                "--json",
                &image,
            ],
            None,
        );
        let decision: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), decision["explanation"].to_string())
    };
    let (code, explanation) = verify("signer.pub", false);
    assert_eq!(
        code,
        Some(1),
        "a bundle counted without the opt-in: {explanation}"
    );
    assert!(
        explanation.contains("signedIdentity cannot be checked"),
        "{explanation}"
    );
    let (code, explanation) = verify("signer.pub", true);
    assert_eq!(code, Some(0), "{explanation}");
    assert!(
        explanation.contains("sigstore bundle 1: accepted"),
        "{explanation}"
    );
    let (code, explanation) = verify("stranger.pub", true);
    assert_eq!(code, Some(1), "{explanation}");
    assert!(
        explanation.contains("sigstore bundle 1: rejected"),
        "{explanation}"
    );

    // A second signer: the tag's index keeps the first and gains the second.
    sign(&base.join("stranger.key"), &identity, &image);
    let read = fetch_referrers(
        &client,
        &docker.repository,
        &digest,
        BUNDLE_V03_MEDIA_TYPE,
        1 << 20,
    )
    .unwrap();
    assert_eq!(read.len(), 2);
    let signers: Vec<_> = read
        .iter()
        .map(|r| {
            verify_manifest_bundle(&r.blob, &digest.0 .0, &[signer.clone(), stranger.clone()])
                .unwrap()
                .signer
        })
        .collect();
    assert_eq!(signers, [signer.key_id(), stranger.key_id()]);

    // The referrers API, served by the test's own server: the bundle is found through it (not
    // the tag), and a listed artifact whose subject is another manifest is skipped.
    let repo = &docker.repository;
    let mut files: HashMap<String, (String, Vec<u8>)> = HashMap::new();
    let first = read[0].manifest;
    let first_bytes = client
        .get_manifest(repo, &first.to_string(), Some(&first), 1 << 20)
        .unwrap()
        .unwrap()
        .bytes;
    let first_manifest: serde_json::Value = serde_json::from_slice(&first_bytes).unwrap();
    let layer = &first_manifest["layers"][0];
    let layer_digest = BlobDigest::parse(layer["digest"].as_str().unwrap()).unwrap();
    files.insert(
        format!("/v2/{repo}/manifests/{first}"),
        (MANIFEST.into(), first_bytes.clone()),
    );
    files.insert(
        format!("/v2/{repo}/blobs/{layer_digest}"),
        ("application/octet-stream".into(), read[0].blob.clone()),
    );
    let mut junk = first_manifest.clone();
    junk["subject"]["digest"] = other.to_string().into();
    let junk_bytes = serde_json::to_vec(&junk).unwrap();
    let junk_digest = BlobDigest::of(&junk_bytes);
    files.insert(
        format!("/v2/{repo}/manifests/{junk_digest}"),
        (MANIFEST.into(), junk_bytes.clone()),
    );
    let descriptor = |d: &BlobDigest, size: usize| {
        serde_json::json!({"mediaType": MANIFEST, "digest": d.to_string(), "size": size,
                           "artifactType": BUNDLE_V03_MEDIA_TYPE})
    };
    let api_index = serde_json::json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        descriptor(&junk_digest, junk_bytes.len()), descriptor(&first, first_bytes.len())]});
    files.insert(
        format!("/v2/{repo}/referrers/{digest}"),
        (INDEX.into(), serde_json::to_vec(&api_index).unwrap()),
    );
    files.insert("/v2/".into(), ("application/json".into(), b"{}".to_vec()));
    let (port, _server) = registry::serve(move |head, stream| {
        let target = head.split_whitespace().nth(1).unwrap_or_default();
        let path = target.split('?').next().unwrap_or_default();
        match files.get(path) {
            Some((content_type, body)) => {
                let digest = format!("sha256:{}", BlobDigest::of(body).hex());
                registry::respond(
                    stream,
                    "200 OK",
                    &[
                        ("Content-Type", content_type),
                        ("Docker-Content-Digest", &digest),
                    ],
                    body,
                )
            }
            None => registry::respond(stream, "404 Not Found", &[], b"{}"),
        }
    });
    let (_, api_client) = client_for(&format!("docker://127.0.0.1:{port}/{repo}:v1"));
    let read = fetch_referrers(&api_client, repo, &digest, BUNDLE_V03_MEDIA_TYPE, 1 << 20).unwrap();
    assert_eq!(read.len(), 1, "the junk artifact was not skipped");
    assert!(read[0].via_api);
    assert_eq!(read[0].manifest, first);
    verify_manifest_bundle(&read[0].blob, &digest.0 .0, &[signer]).unwrap();
}

/// An OCI layout at `layout` with an image index tagged `multi` over two images (linux/amd64
/// and linux/arm64, each made by umoci, whose `/etc/motd` names its platform); the index's
/// digest.
fn multi_arch_layout(base: &Path, layout: &Path) -> BlobDigest {
    run(Command::new("umoci").args(["init", "--layout"]).arg(layout));
    let mut descriptors = Vec::new();
    for arch in ["amd64", "arm64"] {
        let root = base.join(format!("rootfs-{arch}"));
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/motd"), format!("{arch}\n")).unwrap();
        let tagged = format!("{}:{arch}", layout.display());
        run(Command::new("umoci").args(["new", "--image", &tagged]));
        run(Command::new("umoci")
            .args(["insert", "--image", &tagged])
            .arg(&root)
            .arg("/"));
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let entry = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == arch)
            .unwrap()
            .clone();
        descriptors.push(serde_json::json!({
            "mediaType": MANIFEST, "digest": entry["digest"], "size": entry["size"],
            "platform": {"os": "linux", "architecture": arch},
        }));
    }
    let top = serde_json::json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": descriptors});
    let bytes = serde_json::to_vec(&top).unwrap();
    let digest = BlobDigest::of(&bytes);
    std::fs::write(layout.join("blobs/sha256").join(digest.hex()), &bytes).unwrap();
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": INDEX, "digest": digest.to_string(), "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }));
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    digest
}

/// A bundle made by `cfsgate sign --format bundle` for a multi-arch tag names the index (what
/// cosign signs for a tag that resolves to one), is listed under the index's referrers tag,
/// and verifies for the platform's manifest the index names; a bundle over the platform's
/// manifest itself (cosign --recursive) is found and counted too.
#[test]
fn a_bundle_over_a_multi_arch_index_verifies_for_the_platform_manifest() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let registry = Registry::start(&base.join("registry"), RegistryConfig::default());
    let host = registry.host();
    let layout = base.join("layout");
    let top = multi_arch_layout(base, &layout);
    let image = format!("docker://{host}/cfsgate/multi:v1");
    skopeo_push(
        &format!("oci:{}:multi", layout.display()),
        &image,
        &["--all"],
    );
    for name in ["signer", "stranger"] {
        run(Command::new(BIN)
            .args(["key", "generate", "--type", "p256", "--output"])
            .arg(base.join(name)));
    }
    let identity = format!("{host}/cfsgate/multi");
    let out = sign(&base.join("signer.key"), &identity, &image);
    assert!(
        out.contains(&format!("@{top}")),
        "the bundle names the index: {out}"
    );
    assert!(
        out.contains(&format!("listed in the {} tag", fallback_tag(&top))),
        "{out}"
    );

    let verify = |key: &str| {
        let requirement = serde_json::json!({
            "type": "sigstoreSigned",
            "keyPath": base.join(key),
            "signedIdentity": {"type": "matchRepository"},
            "cfsgate": {"bundleIdentity": "digest-only"},
        });
        let policy = serde_json::json!({"default": [{"type": "reject"}],
            "transports": {"docker": {identity.clone(): [requirement]}}});
        let path = base.join("policy.json");
        std::fs::write(&path, policy.to_string()).unwrap();
        let out = cfsgate(
            &[
                "verify",
                "--tls-verify=false",
                "--policy",
                path.to_str().unwrap(),
                "--json",
                &image,
            ],
            None,
        );
        let decision: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), decision)
    };
    let (code, decision) = verify("signer.pub");
    let explanation = decision["explanation"].to_string();
    assert_eq!(code, Some(0), "{explanation}");
    assert!(
        explanation.contains(&format!(
            "sigstore bundle 1: accepted: signed by key {} over the index {top}, which names the manifest",
            &public_key(&base.join("signer.pub")).key_id().short()
        )),
        "{explanation}"
    );
    // What was judged is this node's platform manifest, not the index.
    let platform = decision["manifest_digest"].as_str().unwrap().to_string();
    assert_ne!(platform, top.to_string());
    let (code, decision) = verify("stranger.pub");
    assert_eq!(code, Some(1), "{}", decision["explanation"]);
    assert!(decision["explanation"]
        .to_string()
        .contains("sigstore bundle 1: rejected"));

    // A bundle over the platform's manifest (as cosign sign --recursive adds) is fetched from
    // that manifest's referrers and counted as well: the stranger's key now admits.
    let by_digest = format!("docker://{host}/cfsgate/multi@{platform}");
    let out = sign(&base.join("stranger.key"), &identity, &by_digest);
    assert!(out.contains(&format!("@{platform}")), "{out}");
    let (code, decision) = verify("stranger.pub");
    let explanation = decision["explanation"].to_string();
    assert_eq!(code, Some(0), "{explanation}");
    assert!(
        explanation.contains("over the manifest digest"),
        "{explanation}"
    );
}
