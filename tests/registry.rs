//! Registries end to end, through the `cfsgate` binary: Debian's docker-registry 2.8.2 on
//! 127.0.0.1 (see tests/fixtures/registry.rs), images made by umoci and pushed by skopeo,
//! signatures pushed by cfsgate and read back by cfsgate verify, a pulled sealed image mounted
//! by its seal.

#[path = "fixtures/hooks.rs"]
mod hooks;
#[path = "fixtures/registry.rs"]
mod registry;

use std::path::{Path, PathBuf};
use std::process::Command;

use hooks::{cfsgate, require_root, run};
use registry::{line_value, ok, read_json, skopeo_push, Registry, RegistryConfig};

#[path = "registry/mirrors.rs"]
mod mirrors;
#[path = "registry/tls.rs"]
mod tls;
#[path = "registry/token.rs"]
mod token;

fn fixture_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oci/make-umoci-image.sh")
}

/// The umoci test image (tag `test`) in `dir/layout`.
fn umoci_image(dir: &Path, big_mib: u32) -> PathBuf {
    let layout = dir.join("layout");
    run(Command::new("sh")
        .arg(fixture_script())
        .arg(&layout)
        .arg(dir.join("work"))
        .arg(big_mib.to_string()));
    layout
}

#[test]
fn pull_compute_id_sign_verify_and_mount_from_a_plain_http_registry() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let registry = Registry::start(&base.join("registry"), RegistryConfig::default());
    let host = registry.host();
    let layout = umoci_image(base, 3);
    let image = format!("docker://{host}/cfsgate/test:v1");
    skopeo_push(&format!("oci:{}:test", layout.display()), &image, &[]);

    // The composefs digest of the registry image is the one of the layout skopeo pushed.
    let local = ok(
        &cfsgate(
            &["compute-id", &format!("oci:{}:test", layout.display())],
            None,
        ),
        "compute-id oci:",
    );
    let remote = ok(
        &cfsgate(&["compute-id", "--tls-verify=false", &image], None),
        "compute-id docker://",
    );
    assert_eq!(local.trim(), remote.trim());

    // Without --tls-verify=false a plain-HTTP registry is refused (HTTPS is required).
    let refused = cfsgate(&["compute-id", &image], None);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "plain HTTP must need --tls-verify=false"
    );

    // pull: blobs kept in the repository, the composefs image stored, both digests printed.
    let repo = base.join("repo");
    let repo_arg = repo.to_str().unwrap();
    let out = ok(
        &cfsgate(
            &[
                "--repo",
                repo_arg,
                "pull",
                "--tls-verify=false",
                &image,
                "--ref",
                "app",
            ],
            None,
        ),
        "pull",
    );
    let manifest = line_value(&out, "manifest ");
    let composefs = line_value(&out, "composefs sha256:");
    assert_eq!(composefs, local.trim());
    let index = read_json(&layout.join("index.json"));
    let layout_manifest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        manifest, layout_manifest,
        "skopeo keeps an OCI manifest as it is"
    );
    let manifest_blob = repo
        .join("oci/blobs/sha256")
        .join(manifest.strip_prefix("sha256:").unwrap());
    let manifest_json = read_json(&manifest_blob);
    for layer in manifest_json["layers"].as_array().unwrap() {
        let hex = layer["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap();
        assert!(
            repo.join("oci/blobs/sha256").join(hex).is_file(),
            "layer {hex} kept"
        );
    }
    assert!(repo.join("images").join(&composefs).is_file());
    // A second pull downloads no layer again.
    let sent = registry.blob_bytes_sent();
    ok(
        &cfsgate(
            &["--repo", repo_arg, "pull", "--tls-verify=false", &image],
            None,
        ),
        "second pull",
    );
    let layer_bytes: u64 = manifest_json["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    assert!(
        registry.blob_bytes_sent() - sent < layer_bytes,
        "the second pull fetched the layers again"
    );

    // distribution 2.8 has no referrers API: the client reports it absent (None), so callers
    // fall back to the sha256-<hex> tag schema.
    let parsed = cfsgate_oci::registry::DockerRef::parse(&image).unwrap();
    let options = cfsgate_oci::registry::ClientOptions {
        tls_verify: false,
        ..Default::default()
    };
    let client = cfsgate_oci::registry::RegistryClient::connect(&parsed, &options).unwrap();
    let manifest_digest = cfsgate_oci::BlobDigest::parse(&manifest).unwrap();
    let referrers = client
        .get_referrers(&parsed.repository, &manifest_digest, None, 1 << 20)
        .unwrap();
    assert!(
        referrers.is_none(),
        "distribution 2.8 answered the referrers API"
    );

    // Signatures pushed by cfsgate into the cosign .sig tag, judged by cfsgate verify.
    for name in ["signer", "stranger"] {
        run(Command::new(hooks::BIN)
            .args(["key", "generate", "--type", "p256", "--output"])
            .arg(base.join(name)));
    }
    let identity = format!("{host}/cfsgate/test");
    let verify = |key: &str| {
        cfsgate(
            &[
                "verify",
                "--tls-verify=false",
                "--key",
                &base.join(key).to_string_lossy(),
                &image,
            ],
            None,
        )
    };
    assert_eq!(
        verify("signer.pub").status.code(),
        Some(1),
        "unsigned image accepted"
    );
    let signer_key = base.join("signer.key");
    let sign = cfsgate(
        &[
            "sign",
            "--tls-verify=false",
            "--key",
            signer_key.to_str().unwrap(),
            "--identity",
            &identity,
            &image,
        ],
        None,
    );
    ok(&sign, "sign docker://");
    let sig_tag = format!(
        "docker://{host}/cfsgate/test:sha256-{}.sig",
        manifest.strip_prefix("sha256:").unwrap()
    );
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(&sig_tag));
    let sig_manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(sig_manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        sig_manifest["layers"][0]["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let accepted = verify("signer.pub");
    ok(&accepted, "verify with the signer's key");
    assert!(String::from_utf8_lossy(&accepted.stdout).starts_with("accepted"));
    assert_eq!(
        verify("stranger.pub").status.code(),
        Some(1),
        "a stranger's key accepted"
    );
    // A second signature is appended to the same tag, not replacing the first.
    let stranger_key = base.join("stranger.key");
    ok(
        &cfsgate(
            &[
                "sign",
                "--tls-verify=false",
                "--key",
                stranger_key.to_str().unwrap(),
                "--identity",
                &identity,
                &image,
            ],
            None,
        ),
        "second sign",
    );
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(&sig_tag));
    let sig_manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(sig_manifest["layers"].as_array().unwrap().len(), 2);
    ok(&verify("signer.pub"), "verify after a second signature");

    // A sealed image: pushed, pulled (seal checked), mounted by the seal.
    let sealed_layout = base.join("sealed");
    let out = ok(
        &cfsgate(
            &[
                "seal",
                &format!("oci:{}:test", layout.display()),
                sealed_layout.to_str().unwrap(),
                "--tag",
                "sealed",
            ],
            None,
        ),
        "seal",
    );
    assert!(out.starts_with("sha256:"));
    let sealed = format!("docker://{host}/cfsgate/test:sealed");
    skopeo_push(
        &format!("oci:{}:sealed", sealed_layout.display()),
        &sealed,
        &[],
    );
    let pulled = cfsgate(
        &["--repo", repo_arg, "pull", "--tls-verify=false", &sealed],
        None,
    );
    let out = ok(&pulled, "pull sealed");
    assert!(String::from_utf8_lossy(&pulled.stderr).contains("seal checked"));
    let seal = line_value(&out, "composefs sha256:");
    assert_eq!(seal, composefs, "the seal is the image's composefs digest");
    let mnt = base.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    ok(
        &cfsgate(
            &[
                "mount",
                "--repo",
                repo_arg,
                &seal,
                mnt.to_str().unwrap(),
                "--verity=userspace",
            ],
            None,
        ),
        "mount by seal",
    );
    let ten = std::fs::read(mnt.join("etc/ten"));
    ok(&cfsgate(&["umount", mnt.to_str().unwrap()], None), "umount");
    assert_eq!(ten.unwrap(), b"0123456789");
}

fn openssl(args: &[&str], dir: &Path) {
    run(Command::new("openssl").args(args).current_dir(dir));
}
