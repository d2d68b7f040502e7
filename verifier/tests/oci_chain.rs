//! The whole chain on an umoci-built OCI layout (tests/fixtures/oci/make-umoci-image.sh),
//! sealed by the oci crate and signed here into the cosign `.sig` tag: round trip with the
//! composefs image rebuilt or stored, openssl interop, and tampering with each link —
//! config edited, layer swapped, stored composefs image altered, signature replayed, seal
//! missing — each rejected with its own reason.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cfsgate_keyring::{KeyType, PrivateKey};
use cfsgate_policy::VerityMode;
use cfsgate_verifier::ocisig::{read_oci_signatures, signature_tag};
use cfsgate_verifier::{sign_oci_image, Decision};
use common::{docker_default_policy, evaluate, key_pair};

const NAME: &str = "registry.example/team/app";

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Root-only (umoci creates devices and security xattrs); never skipped under CI=true.
fn skip() -> bool {
    if is_root() {
        return false;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true: must run as root"
    );
    eprintln!("skipped: not root");
    true
}

/// The umoci layout, built once per test binary.
fn base_layout() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let layout = dir.join("layout");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/oci/make-umoci-image.sh");
        let status = Command::new("sh")
            .arg(script)
            .arg(&layout)
            .arg(&dir)
            .arg("1")
            .status()
            .expect("run make-umoci-image.sh");
        assert!(status.success(), "make-umoci-image.sh failed");
        layout
    })
}

struct Layout {
    work: tempfile::TempDir,
    path: PathBuf,
}

impl Layout {
    /// A private copy of the base layout, with tag `sealed` added by the oci crate.
    fn new() -> (Self, cfsgate_oci::seal::SealReport) {
        let work = tempfile::tempdir().unwrap();
        let path = work.path().join("layout");
        let status = Command::new("cp")
            .arg("-a")
            .arg(base_layout())
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let report = cfsgate_oci::seal::seal(
            &format!("oci:{}:test", path.display()),
            &path,
            "sealed",
            Default::default(),
        )
        .expect("seal");
        (Layout { work, path }, report)
    }
    fn image(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.path.display())
    }
    fn blob(&self, digest: &str) -> PathBuf {
        self.path
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }
    fn key(&self, name: &str, kind: KeyType) -> (PrivateKey, String) {
        let (key, public) = key_pair(self.work.path(), name, kind);
        (
            key,
            serde_json::to_string(&public.display().to_string()).unwrap(),
        )
    }
    fn evaluate(
        &self,
        tag: &str,
        policy: &cfsgate_policy::Policy,
        repo: Option<&Path>,
    ) -> Decision {
        evaluate(&self.image(tag), Some(NAME), policy, repo).expect("evaluates")
    }
}

fn sealed_policy(dir: &Path, key_json: &str) -> cfsgate_policy::Policy {
    docker_default_policy(
        dir,
        &format!(
            r#"[{{"type": "sigstoreSigned", "keyPath": {key_json}, "signedIdentity": {{"type": "matchRepository"}}}},
                {{"type": "composefs", "sealed": true, "verity": "kernel"}}]"#
        ),
    )
}

fn rejected_because(d: &Decision, words: &str) {
    assert!(!d.admitted, "{d:#?}");
    assert!(
        d.reasons.iter().any(|r| r.contains(words)),
        "want {words:?}: {d:#?}"
    );
}

#[test]
fn sign_verify_round_trip_rebuilt_and_stored() {
    if skip() {
        return;
    }
    let (layout, seal) = Layout::new();
    let (alice, alice_pub) = layout.key("alice", KeyType::P256);
    let (bob, _) = layout.key("bob", KeyType::Ed25519);
    let first = sign_oci_image(&layout.image("sealed"), &alice, NAME).expect("sign");
    let second = sign_oci_image(&layout.image("sealed"), &bob, NAME).expect("sign");
    assert_eq!(first.tag, second.tag);
    assert_eq!(first.tag, signature_tag(&seal.manifest_digest.0));
    assert_eq!((first.layers, second.layers), (1, 2));
    let found = read_oci_signatures(&layout.path, &seal.manifest_digest.0).unwrap();
    assert_eq!(found.len(), 2);

    let policy = sealed_policy(layout.work.path(), &alice_pub);
    let d = layout.evaluate("sealed", &policy, None);
    assert!(d.admitted, "{d:#?}");
    assert_eq!(d.composefs_digest, Some(seal.image_digest));
    assert_eq!(d.config_digest, Some(seal.config_digest.0));
    assert_eq!(d.manifest_digest, Some(seal.manifest_digest.0));
    assert_eq!(d.required_verity, Some(VerityMode::Kernel));
    assert_eq!(d.signers, vec![alice.public_key().key_id()]);
    assert!(
        d.explanation
            .iter()
            .any(|l| l.contains("rebuilt from the layers")),
        "{d:#?}"
    );

    // Stored: the repository's images/<seal> is hashed instead of rebuilding.
    let repo_dir = layout.work.path().join("repo");
    let repo = cfsgate_image::store::Repository::create_or_open(&repo_dir).unwrap();
    let imported = cfsgate_oci::import(&repo, &layout.image("sealed"), None).unwrap();
    assert_eq!(imported.image_digest, seal.image_digest);
    let d = layout.evaluate("sealed", &policy, Some(&repo_dir));
    assert!(d.admitted, "{d:#?}");
    assert!(
        d.explanation
            .iter()
            .any(|l| l.contains("stored image hashes to the seal")),
        "{d:#?}"
    );

    // The stored composefs image altered after sealing.
    let stored = repo.image_path(&seal.image_digest);
    let mut bytes = std::fs::read(&stored).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&stored, &bytes).unwrap();
    rejected_because(
        &layout.evaluate("sealed", &policy, Some(&repo_dir)),
        "was altered",
    );
}

#[test]
fn signatures_verify_with_openssl() {
    if skip() {
        return;
    }
    let (layout, seal) = Layout::new();
    for (name, kind) in [("p256", KeyType::P256), ("ed", KeyType::Ed25519)] {
        let (key, _) = layout.key(name, kind);
        sign_oci_image(&layout.image("sealed"), &key, NAME).unwrap();
    }
    let found = read_oci_signatures(&layout.path, &seal.manifest_digest.0).unwrap();
    assert_eq!(found.len(), 2);
    for (i, (found, name)) in found.iter().zip(["p256", "ed"]).enumerate() {
        let sig = found.signature.as_ref().expect("well-formed");
        let payload = layout.work.path().join(format!("payload{i}"));
        let signature = layout.work.path().join(format!("sig{i}"));
        std::fs::write(&payload, &sig.payload).unwrap();
        std::fs::write(&signature, &sig.signature).unwrap();
        let public = layout.work.path().join(format!("{name}.pub"));
        let mut cmd = Command::new("openssl");
        if name == "p256" {
            cmd.args(["dgst", "-sha256", "-verify"])
                .arg(&public)
                .arg("-signature")
                .arg(&signature)
                .arg(&payload);
        } else {
            cmd.args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
                .arg(&public)
                .arg("-in")
                .arg(&payload)
                .arg("-sigfile")
                .arg(&signature);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // And the payload names the sealed manifest, as openssl's sha256 of its blob says.
        let text: serde_json::Value = serde_json::from_slice(&sig.payload).unwrap();
        let manifest_blob = layout.blob(&seal.manifest_digest.to_string());
        let out = Command::new("openssl")
            .args(["dgst", "-sha256", "-r"])
            .arg(manifest_blob)
            .output()
            .unwrap();
        let hex = String::from_utf8_lossy(&out.stdout)
            .split(' ')
            .next()
            .unwrap()
            .to_string();
        assert_eq!(
            text["critical"]["image"]["docker-manifest-digest"],
            format!("sha256:{hex}")
        );
    }
}

#[test]
fn unsealed_image_rejected_by_sealed_scope() {
    if skip() {
        return;
    }
    let (layout, _) = Layout::new();
    let (key, key_pub) = layout.key("k", KeyType::Ed25519);
    sign_oci_image(&layout.image("test"), &key, NAME).unwrap();
    let d = layout.evaluate("test", &sealed_policy(layout.work.path(), &key_pub), None);
    rejected_because(&d, "not sealed");
    assert_eq!(d.composefs_digest, None);
    // Signed, so a scope that does not ask for the seal admits it.
    let signed_only = docker_default_policy(
        layout.work.path(),
        &format!(
            r#"[{{"type": "sigstoreSigned", "keyPath": {key_pub}, "signedIdentity": {{"type": "matchRepository"}}}}]"#
        ),
    );
    assert!(layout.evaluate("test", &signed_only, None).admitted);
}

#[test]
fn config_edited_rejected() {
    if skip() {
        return;
    }
    let (layout, seal) = Layout::new();
    let (key, key_pub) = layout.key("k", KeyType::Ed25519);
    sign_oci_image(&layout.image("sealed"), &key, NAME).unwrap();
    let config = layout.blob(&seal.config_digest.to_string());
    let text = std::fs::read_to_string(&config).unwrap();
    let edited = text.replace(&seal.image_digest.to_hex(), &"0".repeat(64));
    assert_ne!(text, edited);
    std::fs::write(&config, edited).unwrap();
    let d = layout.evaluate("sealed", &sealed_policy(layout.work.path(), &key_pub), None);
    rejected_because(&d, "config blob does not match");
}

#[test]
fn layer_swapped_rejected() {
    if skip() {
        return;
    }
    let (layout, _) = Layout::new();
    let (key, key_pub) = layout.key("k", KeyType::Ed25519);
    sign_oci_image(&layout.image("sealed"), &key, NAME).unwrap();
    let resolved = cfsgate_oci::resolve(&layout.image("sealed")).unwrap();
    let (a, b) = (&resolved.layers[1], &resolved.layers[2]);
    std::fs::copy(
        layout.blob(&b.digest.to_string()),
        layout.blob(&a.digest.to_string()),
    )
    .unwrap();
    let d = layout.evaluate("sealed", &sealed_policy(layout.work.path(), &key_pub), None);
    rejected_because(&d, "a layer does not match");
}

#[test]
fn signature_replayed_from_another_image_rejected() {
    if skip() {
        return;
    }
    let (layout, seal) = Layout::new();
    let (key, key_pub) = layout.key("k", KeyType::Ed25519);
    // A genuine signature of the unsealed image, re-tagged as the sealed image's.
    let signed = sign_oci_image(&layout.image("test"), &key, NAME).unwrap();
    let index_path = layout.path.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let entries = index["manifests"].as_array_mut().unwrap();
    let mut copy = entries
        .iter()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == signed.tag.as_str())
        .unwrap()
        .clone();
    copy["annotations"]["org.opencontainers.image.ref.name"] =
        signature_tag(&seal.manifest_digest.0).into();
    entries.push(copy);
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let d = layout.evaluate("sealed", &sealed_policy(layout.work.path(), &key_pub), None);
    rejected_because(&d, "no such signature matches this image");
}

#[test]
fn a_signed_image_sealed_by_the_composefs_rs_convention_is_admitted() {
    if skip() {
        return;
    }
    let (layout, mkcomposefs_seal) = Layout::new();
    let seal = cfsgate_oci::seal::seal(
        &layout.image("test"),
        &layout.path,
        "rs-sealed",
        cfsgate_oci::SealOptions {
            convention: cfsgate_oci::Convention::ComposefsRs,
            ..Default::default()
        },
    )
    .expect("seal under the composefs-rs convention");
    assert_ne!(seal.image_digest, mkcomposefs_seal.image_digest);
    let (alice, alice_pub) = layout.key("alice", KeyType::P256);
    sign_oci_image(&layout.image("rs-sealed"), &alice, NAME).expect("sign");
    let policy = sealed_policy(layout.work.path(), &alice_pub);
    let d = layout.evaluate("rs-sealed", &policy, None);
    assert!(d.admitted, "{d:#?}");
    assert_eq!(d.composefs_digest, Some(seal.image_digest));
    assert!(
        d.explanation
            .iter()
            .any(|l| l.contains("rebuilt from the layers, composefs-rs convention")),
        "{d:#?}"
    );
}

/// A plain containers-policy.json (no `composefs` requirement): a seal, when present, must
/// match (rejected otherwise, the signature notwithstanding); an unsealed signed image is
/// admitted, and with `store_root` (the gate) runs on the image built from its layers.
#[test]
fn plain_policy_checks_a_present_seal_and_builds_the_unsealed_root() {
    if skip() {
        return;
    }
    let (layout, seal) = Layout::new();
    let (key, key_pub) = layout.key("k", KeyType::Ed25519);
    let plain = docker_default_policy(
        layout.work.path(),
        &format!(
            r#"[{{"type": "sigstoreSigned", "keyPath": {key_pub}, "signedIdentity": {{"type": "matchRepository"}}}}]"#
        ),
    );
    // Sealed and signed: the seal is checked although the policy does not ask for it.
    sign_oci_image(&layout.image("sealed"), &key, NAME).unwrap();
    let d = layout.evaluate("sealed", &plain, None);
    assert!(d.admitted, "{d:#?}");
    assert_eq!(d.composefs_digest, Some(seal.image_digest));
    // A seal naming another digest: rejected, though signed.
    let wrong = format!("containers.composefs.fsverity=sha256:{}", "0".repeat(64));
    let status = Command::new("umoci")
        .args(["config", "--image"])
        .arg(format!("{}:test", layout.path.display()))
        .args(["--tag", "wrong"])
        .args(["--config.label", &wrong])
        .status()
        .unwrap();
    assert!(status.success());
    sign_oci_image(&layout.image("wrong"), &key, NAME).unwrap();
    let d = layout.evaluate("wrong", &plain, None);
    rejected_because(&d, "composefs root: the seal says");
    assert_eq!(d.composefs_digest, None);
    // Unsealed and signed: admitted; `cfsgate verify` builds nothing.
    sign_oci_image(&layout.image("test"), &key, NAME).unwrap();
    let d = layout.evaluate("test", &plain, None);
    assert!(d.admitted, "{d:#?}");
    assert_eq!(d.composefs_digest, None);
    // The gate's evaluation builds the root from the signed layers and stores it.
    let repo = layout.work.path().join("gate-repo");
    let gate = |tag: &str| {
        cfsgate_verifier::evaluate(&cfsgate_verifier::EvaluationRequest {
            image: &layout.image(tag),
            reference: Some(NAME),
            policy: &plain,
            repo: Some(&repo),
            now: cfsgate_verifier::evaluate::unix_now(),
            store_root: true,
            built_key: None,
            bundles: &[],
        })
        .expect("evaluates")
    };
    let d = gate("test");
    assert!(d.admitted, "{d:#?}");
    let built =
        cfsgate_oci::seal::compute_id(&cfsgate_oci::resolve(&layout.image("test")).unwrap())
            .unwrap();
    assert_eq!(d.composefs_digest, Some(built));
    let store = cfsgate_image::store::Repository::open(&repo).unwrap();
    assert!(store.has_image(&built));
    assert!(
        d.requirements
            .iter()
            .any(|r| r.contains("not sealed; composefs image")),
        "{d:#?}"
    );
    // The wrongly sealed image is refused by the gate too, and nothing is stored for it.
    let d = gate("wrong");
    rejected_because(&d, "the seal says");
}
