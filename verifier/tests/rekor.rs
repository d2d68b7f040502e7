//! Offline Rekor SET verification through policy files, with real crypto:
//!
//! - the containers/image fixture `dir-img-cosign-key-rekor-valid` (made by cosign, logged in
//!   the Sigstore public-good Rekor) against that log's real key, and against others;
//! - images signed here, with Rekor bundles crafted and signed by a Rekor key made with
//!   `openssl` (SETs signed by `openssl dgst -sha256 -sign` over canonical JSON written out
//!   by hand), each way of breaking a bundle rejected with its own reason;
//! - validity windows judged at the SET's time.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

mod common;
#[path = "support/rekor_set.rs"]
mod rekor_set;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use cfsgate_keyring::{KeyType, PrivateKey};
use cfsgate_verifier::rekor::{parse_bundle, verify_bundle, RekorError, RekorKey, SignedArtifact};
use cfsgate_verifier::sigstore::{SigstoreSignature, BUNDLE_ANNOTATION};
use cfsgate_verifier::{sign_dir_image, Decision};
use common::{
    docker_default_policy, evaluate, fixture_image, fixture_key_json, fixtures, key_pair,
};
use rekor_set::{hashedrekord_body, set_bundle};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// The identity cosign signed the Rekor fixture as.
const FIXTURE_IDENTITY: &str = "192.168.64.2:5000/cosign-signed/key-1";
/// The identity images signed here claim.
const NAME: &str = "registry.example/team/app";

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn json_path(path: &Path) -> String {
    serde_json::to_string(&path.display().to_string()).unwrap()
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("run tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// sha256 of a PEM public key's DER SPKI, as `openssl` encodes it.
fn openssl_spki_sha256(pem: &Path) -> String {
    let der = run(Command::new("openssl")
        .args(["pkey", "-pubin", "-outform", "DER", "-in"])
        .arg(pem));
    hex::encode(Sha256::digest(der))
}

/// A `sigstoreSigned` requirement with `rekorPublicKeyPaths`.
fn rekor_requirement(key_field: &str, rekor_keys: &[&Path], identity: &str) -> String {
    let rekor: Vec<String> = rekor_keys.iter().map(|p| json_path(p)).collect();
    format!(
        r#"[{{"type": "sigstoreSigned", {key_field}, "rekorPublicKeyPaths": [{}], "signedIdentity": {{"type": "{identity}"}}}}]"#,
        rekor.join(", ")
    )
}

fn decide(image: &Path, reference: &str, requirements: &str) -> Decision {
    let work = tempfile::tempdir().unwrap();
    let policy = docker_default_policy(work.path(), requirements);
    evaluate(
        &format!("dir:{}", image.display()),
        Some(reference),
        &policy,
        None,
    )
    .expect("evaluates")
}

fn assert_rejected_because(d: &Decision, needle: &str) {
    assert!(!d.admitted, "expected a rejection: {d:#?}");
    assert!(
        d.reasons.iter().any(|r| r.contains(needle)),
        "no reason contains {needle:?}: {:#?}\n{}",
        d.reasons,
        d.explanation.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// (a)–(c): the cosign-made fixture.

#[test]
fn public_good_key_is_the_fixture_log() {
    let signature =
        std::fs::read(fixtures().join("dir-img-cosign-key-rekor-valid/signature-1")).unwrap();
    let parsed = SigstoreSignature::parse(&signature, "signature-1").unwrap();
    let bundle: Value = serde_json::from_str(&parsed.annotations[BUNDLE_ANNOTATION]).unwrap();
    assert_eq!(
        bundle["Payload"]["logID"].as_str().unwrap(),
        openssl_spki_sha256(&data("rekor-public-good.pub")),
        "the test Rekor key is the log the fixture's SET names"
    );
    // The fixture's own rekor.pub (a copy now, no longer a dangling link) is that same key.
    assert!(cfsgate_keyring::PublicKey::from_file(&fixtures().join("rekor.pub")).is_ok());
    assert_eq!(
        bundle["Payload"]["logID"].as_str().unwrap(),
        openssl_spki_sha256(&fixtures().join("rekor.pub")),
        "the fixtures' rekor.pub is the log the fixture's SET names"
    );
}

#[test]
fn fixture_with_public_good_rekor_key_is_accepted_at_the_set_time() {
    let image = fixture_image("dir-img-cosign-key-rekor-valid");
    let req = rekor_requirement(
        &format!(r#""keyPath": {}"#, fixture_key_json("cosign2.pub")),
        &[&data("rekor-public-good.pub")],
        "matchRepository",
    );
    let d = decide(image.path(), FIXTURE_IDENTITY, &req);
    assert!(d.admitted, "{d:#?}");
    assert_eq!(d.rekor.len(), 1, "{d:#?}");
    assert_eq!(
        (d.rekor[0].log_index, d.rekor[0].integrated_time),
        (11608800, 1674251859)
    );
    let rendered = cfsgate_verifier::explain::render_verdict(&d);
    assert!(
        rendered.contains("rekor: SET verified (log index 11608800"),
        "{rendered}"
    );
    let explanation = d.explanation.join("\n");
    // 1674251859 is the fixture's integratedTime; `date -u -d @1674251859` gives the text.
    assert!(
        explanation.contains(
            "Rekor SET verified (log index 11608800, integrated at 2023-01-20T21:57:39Z)"
        ),
        "{explanation}"
    );
}

#[test]
fn fixture_with_another_rekor_key_is_rejected() {
    let work = tempfile::tempdir().unwrap();
    let other = openssl_ec_key(work.path(), "other", "P-256");
    let image = fixture_image("dir-img-cosign-key-rekor-valid");
    let req = rekor_requirement(
        &format!(r#""keyPath": {}"#, fixture_key_json("cosign2.pub")),
        &[&other.public],
        "matchRepository",
    );
    let d = decide(image.path(), FIXTURE_IDENTITY, &req);
    assert_rejected_because(
        &d,
        "none of the configured Rekor keys: a SET from another log",
    );
    // Listing the right log's key as well: any one Rekor key may have signed.
    let req = rekor_requirement(
        &format!(r#""keyPath": {}"#, fixture_key_json("cosign2.pub")),
        &[&other.public, &data("rekor-public-good.pub")],
        "matchRepository",
    );
    assert!(decide(image.path(), FIXTURE_IDENTITY, &req).admitted);
}

#[test]
fn signature_without_bundle_is_rejected_when_rekor_is_required() {
    let image = fixture_image("dir-img-cosign-valid");
    let reference = "192.168.64.2:5000/cosign-signed-single-sample";
    let key = format!(r#""keyPath": {}"#, fixture_key_json("cosign.pub"));
    let plain = format!(
        r#"[{{"type": "sigstoreSigned", {key}, "signedIdentity": {{"type": "matchRepository"}}}}]"#
    );
    assert!(decide(image.path(), reference, &plain).admitted);
    let req = rekor_requirement(&key, &[&data("rekor-public-good.pub")], "matchRepository");
    let d = decide(image.path(), reference, &req);
    assert_rejected_because(&d, "has no Rekor bundle");
}

#[test]
fn rekor_key_of_another_type_cannot_be_used() {
    let work = tempfile::tempdir().unwrap();
    let (_, ed25519) = key_pair(work.path(), "ed", KeyType::Ed25519);
    let image = fixture_image("dir-img-cosign-key-rekor-valid");
    let req = rekor_requirement(
        &format!(r#""keyPath": {}"#, fixture_key_json("cosign2.pub")),
        &[&ed25519],
        "matchRepository",
    );
    let d = decide(image.path(), FIXTURE_IDENTITY, &req);
    assert_rejected_because(&d, "no Rekor public key could be loaded");
    assert!(
        d.explanation
            .iter()
            .any(|l| l.contains("a Rekor key must be ECDSA P-256 or P-384")),
        "{:#?}",
        d.explanation
    );
}

// ---------------------------------------------------------------------------------------
// (d), (e): images signed here, bundles crafted and signed with an openssl Rekor key.

struct OpensslKey {
    private: PathBuf,
    public: PathBuf,
}

fn openssl_ec_key(dir: &Path, name: &str, curve: &str) -> OpensslKey {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    run(Command::new("openssl")
        .args(["genpkey", "-algorithm", "EC", "-pkeyopt"])
        .arg(format!("ec_paramgen_curve:{curve}"))
        .arg("-out")
        .arg(&private));
    run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public));
    OpensslKey { private, public }
}

/// `openssl dgst -sha256 -sign`: ECDSA over SHA-256, ASN.1 DER.
fn openssl_sign(key: &Path, message: &[u8], dir: &Path) -> Vec<u8> {
    let input = dir.join("set-input");
    std::fs::write(&input, message).unwrap();
    run(Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .arg(&input))
}

/// An image signed here by a fresh P-256 key, and a Rekor key.
struct Fixture {
    work: tempfile::TempDir,
    image: tempfile::TempDir,
    signer: PrivateKey,
    signer_pub: PathBuf,
    rekor: OpensslKey,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// What the crafted Rekor entry says.
#[derive(Clone)]
struct Entry {
    body: Value,
    integrated_time: u64,
    log_index: u64,
    log_id: String,
}

impl Fixture {
    fn new(rekor_curve: &str) -> Self {
        let work = tempfile::tempdir().unwrap();
        let image = tempfile::tempdir().unwrap();
        std::fs::write(
            image.path().join("manifest.json"),
            br#"{"schemaVersion":2,"note":"rekor test image"}"#,
        )
        .unwrap();
        let (signer, signer_pub) = key_pair(work.path(), "signer", KeyType::P256);
        let signed = sign_dir_image(image.path(), &signer, NAME).expect("sign");
        let rekor = openssl_ec_key(work.path(), "rekor", rekor_curve);
        Self {
            work,
            image,
            signer,
            signer_pub,
            rekor,
            payload: signed.payload,
            signature: signed.signature,
        }
    }

    /// The entry Rekor would log for the signature made in `new`.
    fn entry(&self) -> Entry {
        let public_pem = std::fs::read(&self.signer_pub).unwrap();
        Entry {
            body: hashedrekord_body(&self.payload, &self.signature, &public_pem),
            integrated_time: 1_700_000_000,
            log_index: 4242,
            log_id: openssl_spki_sha256(&self.rekor.public),
        }
    }

    /// A bundle for `entry` whose SET the Rekor key signed over the canonical payload.
    fn bundle(&self, entry: &Entry) -> Value {
        set_bundle(
            &entry.body,
            entry.integrated_time,
            entry.log_index,
            &entry.log_id,
            |canonical| openssl_sign(&self.rekor.private, canonical, self.work.path()),
        )
    }

    /// Replaces signature-1's bundle annotation with `bundle` (JSON text).
    fn attach(&self, bundle: &str) {
        let path = self.image.path().join("signature-1");
        let mut parsed =
            SigstoreSignature::parse(&std::fs::read(&path).unwrap(), "signature-1").unwrap();
        parsed
            .annotations
            .insert(BUNDLE_ANNOTATION.to_string(), bundle.to_string());
        std::fs::write(&path, parsed.to_bytes()).unwrap();
    }

    fn requirement(&self) -> String {
        rekor_requirement(
            &format!(r#""keyPath": {}"#, json_path(&self.signer_pub)),
            &[&self.rekor.public],
            "matchRepository",
        )
    }

    fn decide(&self, requirements: &str) -> Decision {
        decide(self.image.path(), NAME, requirements)
    }

    /// Attaches `bundle` and evaluates the standard requirement.
    fn decide_with(&self, bundle: &Value) -> Decision {
        self.attach(&bundle.to_string());
        self.decide(&self.requirement())
    }
}

#[test]
fn crafted_valid_bundle_is_accepted() {
    let f = Fixture::new("P-256");
    let d = f.decide_with(&f.bundle(&f.entry()));
    assert!(d.admitted, "{d:#?}");
    assert!(
        d.explanation.iter().any(|l| l
            .contains("Rekor SET verified (log index 4242, integrated at 2023-11-14T22:13:20Z)")),
        "{:#?}",
        d.explanation
    );
    // Without the bundle the same signature no longer counts.
    let path = f.image.path().join("signature-1");
    let mut parsed =
        SigstoreSignature::parse(&std::fs::read(&path).unwrap(), "signature-1").unwrap();
    parsed.annotations.remove(BUNDLE_ANNOTATION);
    std::fs::write(&path, parsed.to_bytes()).unwrap();
    assert_rejected_because(&f.decide(&f.requirement()), "has no Rekor bundle");
}

#[test]
fn p384_rekor_key_signs_sets_over_sha256() {
    let f = Fixture::new("P-384");
    let d = f.decide_with(&f.bundle(&f.entry()));
    assert!(d.admitted, "{d:#?}");
}

#[test]
fn body_signature_mismatch_is_rejected() {
    let f = Fixture::new("P-256");
    let mut entry = f.entry();
    let other = f.signer.sign(b"another payload");
    entry.body["spec"]["signature"]["content"] = json!(B64.encode(other));
    assert_rejected_because(
        &f.decide_with(&f.bundle(&entry)),
        "the Rekor entry logs another signature than this one",
    );
}

#[test]
fn body_public_key_mismatch_is_rejected() {
    let f = Fixture::new("P-256");
    let mut entry = f.entry();
    let other = PrivateKey::generate(KeyType::P256).public_key().to_pem();
    entry.body["spec"]["signature"]["publicKey"]["content"] = json!(B64.encode(other));
    assert_rejected_because(&f.decide_with(&f.bundle(&entry)), "not the key");
    let d = f.decide_with(&f.bundle(&entry));
    assert_rejected_because(&d, "that verified the signature");
}

#[test]
fn body_payload_hash_mismatch_is_rejected() {
    let f = Fixture::new("P-256");
    let mut entry = f.entry();
    entry.body["spec"]["data"]["hash"]["value"] =
        json!(hex::encode(Sha256::digest(b"another payload")));
    assert_rejected_because(
        &f.decide_with(&f.bundle(&entry)),
        "but this payload is sha256:",
    );
    let mut entry = f.entry();
    entry.body["spec"]["data"]["hash"]["algorithm"] = json!("sha512");
    assert_rejected_because(
        &f.decide_with(&f.bundle(&entry)),
        "only sha256 is supported",
    );
}

#[test]
fn wrong_kind_or_api_version_is_rejected() {
    let f = Fixture::new("P-256");
    let mut entry = f.entry();
    entry.body["kind"] = json!("rekord");
    assert_rejected_because(
        &f.decide_with(&f.bundle(&entry)),
        "of kind \"rekord\", not hashedrekord",
    );
    let mut entry = f.entry();
    entry.body["apiVersion"] = json!("0.0.2");
    assert_rejected_because(
        &f.decide_with(&f.bundle(&entry)),
        "hashedrekord version \"0.0.2\", only 0.0.1 is supported",
    );
}

#[test]
fn tampered_integrated_time_breaks_the_set() {
    let f = Fixture::new("P-256");
    let mut bundle = f.bundle(&f.entry());
    bundle["Payload"]["integratedTime"] = json!(1_700_000_001u64);
    assert_rejected_because(
        &f.decide_with(&bundle),
        "does not verify with any configured Rekor key",
    );
    let d = f.decide_with(&bundle);
    assert_rejected_because(&d, "a configured key, whose signature it does not carry");
}

#[test]
fn log_id_of_another_log_is_rejected_even_when_signed() {
    let f = Fixture::new("P-256");
    let mut entry = f.entry();
    entry.log_id = hex::encode(Sha256::digest(b"another log"));
    assert_rejected_because(&f.decide_with(&f.bundle(&entry)), "(SET from another log)");
}

#[test]
fn malformed_bundles_are_rejected() {
    let f = Fixture::new("P-256");
    f.attach("{not json");
    assert_rejected_because(&f.decide(&f.requirement()), "malformed Rekor bundle");

    let mut unknown = f.bundle(&f.entry());
    unknown["Payload"]["extra"] = json!(1);
    assert_rejected_because(&f.decide_with(&unknown), "unknown field `extra`");

    let mut unknown = f.bundle(&f.entry());
    unknown["Verification"] = json!({});
    assert_rejected_because(&f.decide_with(&unknown), "unknown field `Verification`");

    let mut huge = f.entry();
    huge.log_index = (1u64 << 53) + 1;
    assert_rejected_because(
        &f.decide_with(&f.bundle(&huge)),
        "logIndex is 9007199254740993, above 2^53",
    );
}

#[test]
fn each_failure_is_its_own_error_variant() {
    // The same cases, straight through the library: distinct variants, not just words.
    let f = Fixture::new("P-256");
    let rekor = RekorKey::new(
        cfsgate_keyring::PublicKey::from_file(&f.rekor.public).unwrap(),
        "rekor".into(),
    )
    .unwrap();
    let artifact = SignedArtifact {
        payload: &f.payload,
        signature: &f.signature,
        signer: f.signer.public_key().key_id(),
    };
    let check = |bundle: &Value| {
        verify_bundle(
            bundle.to_string().as_bytes(),
            std::slice::from_ref(&rekor),
            &artifact,
        )
    };
    let ok = check(&f.bundle(&f.entry())).expect("valid");
    assert_eq!((ok.integrated_time, ok.log_index), (1_700_000_000, 4242));
    assert_eq!(ok.rekor_key, rekor.id);

    let mut e = f.entry();
    e.body["kind"] = json!("intoto");
    assert!(matches!(check(&f.bundle(&e)), Err(RekorError::WrongKind(k)) if k == "intoto"));
    let mut e = f.entry();
    e.body["spec"]["signature"]["content"] = json!(B64.encode(b"x"));
    assert_eq!(check(&f.bundle(&e)), Err(RekorError::SignatureMismatch));
    let mut e = f.entry();
    e.body["spec"]["signature"]["publicKey"]["content"] =
        json!(B64.encode(PrivateKey::generate(KeyType::Ed25519).public_key().to_pem()));
    assert!(matches!(
        check(&f.bundle(&e)),
        Err(RekorError::PublicKeyMismatch { .. })
    ));
    let mut e = f.entry();
    e.body["spec"]["data"]["hash"]["value"] = json!("00".repeat(32));
    assert!(matches!(
        check(&f.bundle(&e)),
        Err(RekorError::PayloadHashMismatch { .. })
    ));
    let mut e = f.entry();
    e.log_id = "00".repeat(32);
    assert!(matches!(
        check(&f.bundle(&e)),
        Err(RekorError::LogIdMismatch { .. })
    ));
    let mut b = f.bundle(&f.entry());
    b["Payload"]["logIndex"] = json!(4243);
    assert!(matches!(
        check(&b),
        Err(RekorError::SetSignatureInvalid {
            log_is_configured: true,
            ..
        })
    ));
    // No Rekor key at all: nothing can count.
    assert_eq!(
        verify_bundle(f.bundle(&f.entry()).to_string().as_bytes(), &[], &artifact),
        Err(RekorError::NoRekorKeys)
    );
    // The pure parser (a fuzz target) on the fixture's real bundle.
    let fixture = SigstoreSignature::parse(
        &std::fs::read(fixtures().join("dir-img-cosign-key-rekor-valid/signature-1")).unwrap(),
        "signature-1",
    )
    .unwrap();
    let parsed = parse_bundle(fixture.annotations[BUNDLE_ANNOTATION].as_bytes()).unwrap();
    assert_eq!(parsed.payload.log_index, 11608800);
    assert_eq!(parsed.payload.integrated_time, 1674251859);
}

#[test]
fn validity_window_is_judged_at_the_set_time() {
    let f = Fixture::new("P-256");
    // The signer's window ended in 2021: at the current time it would not count.
    let windowed = || {
        format!(
            r#"[{{"type": "sigstoreSigned", "rekorPublicKeyPath": {}, "signedIdentity": {{"type": "matchRepository"}},
                "cfsgate": {{"keys": [{{"keyPath": {}, "notBefore": "2020-01-01T00:00:00Z", "notAfter": "2021-01-01T00:00:00Z"}}]}}}}]"#,
            json_path(&f.rekor.public),
            json_path(&f.signer_pub),
        )
    };
    let mut inside = f.entry();
    inside.integrated_time = 1_590_969_600; // 2020-06-01T00:00:00Z
    f.attach(&f.bundle(&inside).to_string());
    let d = f.decide(&windowed());
    assert!(d.admitted, "{d:#?}");

    let mut after = f.entry();
    after.integrated_time = 1_640_995_200; // 2022-01-01T00:00:00Z
    f.attach(&f.bundle(&after).to_string());
    let d = f.decide(&windowed());
    assert_rejected_because(
        &d,
        "time 2022-01-01T00:00:00Z is outside its validity window",
    );
    assert!(
        d.explanation.iter().any(|l| l.contains("(Rekor SET time)")),
        "{:#?}",
        d.explanation
    );

    let mut before = f.entry();
    before.integrated_time = 1_546_300_800; // 2019-01-01T00:00:00Z
    f.attach(&f.bundle(&before).to_string());
    assert_rejected_because(
        &f.decide(&windowed()),
        "time 2019-01-01T00:00:00Z is outside its validity window",
    );

    // Without Rekor keys the same window is judged at the current time: rejected even with
    // the in-window SET attached.
    f.attach(&f.bundle(&inside).to_string());
    let no_rekor = format!(
        r#"[{{"type": "sigstoreSigned", "signedIdentity": {{"type": "matchRepository"}},
            "cfsgate": {{"keys": [{{"keyPath": {}, "notBefore": "2020-01-01T00:00:00Z", "notAfter": "2021-01-01T00:00:00Z"}}]}}}}]"#,
        json_path(&f.signer_pub),
    );
    assert_rejected_because(&f.decide(&no_rekor), "outside its validity window");
}
