//! Keyless (Fulcio + Rekor) signatures made here end to end with `openssl`: a Fulcio-like CA
//! (root and intermediate), a short-lived leaf naming an e-mail and an OIDC issuer, a cosign
//! simple-signing signature by the leaf's key, and a Rekor SET signed by a Rekor key made
//! here over the `hashedrekord` entry logging that certificate. Rekor logs whatever it is
//! sent, so each attack gets a genuine SET: the chain, the time and the log entry must each
//! stop it, saying which.
// Test code: a failed unwrap is a test failure with its message.
#![allow(clippy::unwrap_used)]

#[path = "support/cert_lab.rs"]
mod cert_lab;
mod common;
#[path = "support/rekor_set.rs"]
mod rekor_set;

use std::path::{Path, PathBuf};

use cert_lab::{CertLab, Issued};
use cfsgate_verifier::sigstore::{
    SigstoreSignature, BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION,
};
use cfsgate_verifier::{sha256_of, Decision, SimpleSigningPayload};
use common::{docker_default_policy, evaluate};
use rekor_set::{hashedrekord_body, set_bundle};

const NAME: &str = "registry.example/team/app";
const EMAIL: &str = "builder@example.com";
const ISSUER: &str = "https://issuer.example";
const CA: &str = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n";

fn json_path(path: &Path) -> String {
    serde_json::to_string(&path.display().to_string()).unwrap()
}

/// A Fulcio-style leaf: e-mail SAN (critical, as Fulcio writes it), code signing, the OIDC
/// issuer in both extensions.
fn fulcio_leaf(lab: &mut CertLab, issuer: &Issued, email: &str, oidc_issuer: &str) -> Issued {
    let extensions = format!(
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\nsubjectAltName=critical,email:{email}\n1.3.6.1.4.1.57264.1.1=DER:{}\n1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:{oidc_issuer}\n",
        hex::encode(oidc_issuer)
    );
    lab.issue(issuer, "leaf", "ec256", &extensions, 1, &[])
}

/// A keyless-signed image and the parts of its signature.
struct Signed {
    image: tempfile::TempDir,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// Signs a fresh image's manifest as `NAME` with `leaf`'s key.
fn sign_image(lab: &mut CertLab, leaf: &Issued) -> Signed {
    let image = tempfile::tempdir().unwrap();
    let manifest = br#"{"schemaVersion":2,"note":"keyless test image"}"#;
    std::fs::write(image.path().join("manifest.json"), manifest).unwrap();
    let payload = SimpleSigningPayload::new(sha256_of(manifest), NAME, 1_700_000_000).to_bytes();
    let signature = lab.sign(&leaf.key, &payload);
    Signed {
        image,
        payload,
        signature,
    }
}

/// A SET by `rekor_key` over the entry logging (`logged_payload`, `signature`, `cert_pem`).
fn set(
    lab: &mut CertLab,
    rekor_key: &Path,
    logged_payload: &[u8],
    signature: &[u8],
    cert_pem: &str,
    integrated_time: i64,
) -> String {
    let body = hashedrekord_body(logged_payload, signature, cert_pem.as_bytes());
    let log_id = lab.spki_sha256(rekor_key);
    let integrated_time = u64::try_from(integrated_time).expect("a time after 1970");
    set_bundle(&body, integrated_time, 7, &log_id, |canonical| {
        lab.sign(rekor_key, canonical)
    })
    .to_string()
}

fn attach(signed: &Signed, cert_pem: &str, chain_pem: &str, bundle: &str) {
    let mut signature =
        SigstoreSignature::new_simple_signing(signed.payload.clone(), signed.signature.clone());
    signature
        .annotations
        .insert(CERTIFICATE_ANNOTATION.into(), cert_pem.into());
    signature
        .annotations
        .insert(CHAIN_ANNOTATION.into(), chain_pem.into());
    signature
        .annotations
        .insert(BUNDLE_ANNOTATION.into(), bundle.into());
    std::fs::write(
        signed.image.path().join("signature-1"),
        signature.to_bytes(),
    )
    .unwrap();
}

fn decide(image: &Path, root: &Path, rekor_pub: &Path) -> Decision {
    let work = tempfile::tempdir().unwrap();
    let requirements = format!(
        r#"[{{"type": "sigstoreSigned", "fulcio": {{"caPath": {}, "oidcIssuer": "{ISSUER}", "subjectEmail": "{EMAIL}"}}, "rekorPublicKeyPath": {}, "signedIdentity": {{"type": "matchRepository"}}}}]"#,
        json_path(root),
        json_path(rekor_pub)
    );
    let policy = docker_default_policy(work.path(), &requirements);
    evaluate(
        &format!("dir:{}", image.display()),
        Some(NAME),
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

/// The trusted Fulcio-like CA, its Rekor key, and a legitimately issued leaf.
struct World {
    lab: CertLab,
    root: Issued,
    intermediate: Issued,
    rekor_key: PathBuf,
    rekor_pub: PathBuf,
}

impl World {
    fn new() -> Self {
        let mut lab = CertLab::with_subject_prefix("/O=lab");
        let root = lab.root("fulcio", "ec256", CA);
        let intermediate = lab.issue(&root, "fulcio-intermediate", "ec256", CA, 20, &[]);
        let rekor_key = lab.key("ec256");
        let rekor_pub = lab.public_pem(&rekor_key);
        Self {
            lab,
            root,
            intermediate,
            rekor_key,
            rekor_pub,
        }
    }

    /// Signs with `leaf`, logs it at `at`, attaches the chain `chain` (PEM, root last).
    fn signed_and_logged(&mut self, leaf: &Issued, chain: &str, at: i64) -> Signed {
        let signed = sign_image(&mut self.lab, leaf);
        let bundle = set(
            &mut self.lab,
            &self.rekor_key.clone(),
            &signed.payload,
            &signed.signature,
            &leaf.pem(),
            at,
        );
        attach(&signed, &leaf.pem(), chain, &bundle);
        signed
    }

    fn chain(&self) -> String {
        format!("{}{}", self.intermediate.pem(), self.root.pem())
    }

    fn decide(&self, signed: &Signed) -> Decision {
        decide(signed.image.path(), &self.root.cert, &self.rekor_pub)
    }
}

fn during(leaf: &Issued) -> i64 {
    leaf.parsed().not_before().0 + 60
}

#[test]
fn a_keyless_signature_made_here_is_accepted() {
    let mut w = World::new();
    let intermediate = w.intermediate.clone();
    let leaf = fulcio_leaf(&mut w.lab, &intermediate, EMAIL, ISSUER);
    let chain = w.chain();
    let signed = w.signed_and_logged(&leaf, &chain, during(&leaf));
    let d = w.decide(&signed);
    assert!(d.admitted, "{d:#?}");
    assert_eq!(d.rekor[0].log_index, 7);
}

#[test]
fn attack_a_certificate_from_another_ca_is_refused() {
    let mut w = World::new();
    // The attacker's own CA, named like the trusted intermediate, issues a leaf naming the
    // victim's e-mail and issuer; Rekor logs it like anything else.
    let rogue_root = w.lab.root("fulcio", "ec256", CA);
    let rogue = w
        .lab
        .issue(&rogue_root, "fulcio-intermediate", "ec256", CA, 20, &[]);
    let leaf = fulcio_leaf(&mut w.lab, &rogue, EMAIL, ISSUER);
    let chain = format!("{}{}", rogue.pem(), rogue_root.pem());
    let signed = w.signed_and_logged(&leaf, &chain, during(&leaf));
    let d = w.decide(&signed);
    assert_rejected_because(
        &d,
        "certificate \"CN=fulcio-intermediate,O=lab\": signature does not verify with the key of \"CN=fulcio,O=lab\"",
    );
}

#[test]
fn attack_an_expired_certificate_at_the_set_time_is_refused() {
    let mut w = World::new();
    let intermediate = w.intermediate.clone();
    // The leaf's key leaked after the certificate expired; its new signature is logged then.
    let leaf = fulcio_leaf(&mut w.lab, &intermediate, EMAIL, ISSUER);
    let chain = w.chain();
    let after = leaf.parsed().not_after().0 + 1;
    let signed = w.signed_and_logged(&leaf, &chain, after);
    let d = w.decide(&signed);
    assert_rejected_because(&d, "verifying the certificate at the Rekor SET time");
    assert_rejected_because(&d, "certificate \"CN=leaf,O=lab\" is not valid at");
    // Logged before it was issued: refused as well.
    let before = leaf.parsed().not_before().0 - 1;
    let signed = w.signed_and_logged(&leaf, &chain, before);
    assert_rejected_because(
        &w.decide(&signed),
        "certificate \"CN=leaf,O=lab\" is not valid at",
    );
}

#[test]
fn attack_a_set_over_another_body_is_refused() {
    let mut w = World::new();
    let intermediate = w.intermediate.clone();
    let leaf = fulcio_leaf(&mut w.lab, &intermediate, EMAIL, ISSUER);
    let signed = sign_image(&mut w.lab, &leaf);
    // A genuine SET over an entry for another payload (same signature bytes and certificate).
    let rekor_key = w.rekor_key.clone();
    let bundle = set(
        &mut w.lab,
        &rekor_key,
        b"another payload",
        &signed.signature,
        &leaf.pem(),
        during(&leaf),
    );
    attach(&signed, &leaf.pem(), &w.chain(), &bundle);
    assert_rejected_because(
        &w.decide(&signed),
        "Rekor SET not accepted: the Rekor entry logs payload",
    );
    // A SET by a key that is not the policy's Rekor key.
    let rogue_rekor = w.lab.key("ec256");
    let bundle = set(
        &mut w.lab,
        &rogue_rekor,
        &signed.payload,
        &signed.signature,
        &leaf.pem(),
        during(&leaf),
    );
    attach(&signed, &leaf.pem(), &w.chain(), &bundle);
    assert_rejected_because(
        &w.decide(&signed),
        "Rekor SET not accepted: the Rekor SET does not verify with any configured Rekor key",
    );
}

#[test]
fn attack_an_intermediate_that_is_not_a_ca_is_refused() {
    let mut w = World::new();
    let intermediate = w.intermediate.clone();
    // A leaf the trusted CA issued (code signing, not a CA) is used to issue another leaf.
    let issued = fulcio_leaf(&mut w.lab, &intermediate, "someone@example.com", ISSUER);
    let leaf = fulcio_leaf(&mut w.lab, &issued, EMAIL, ISSUER);
    let chain = format!("{}{}{}", issued.pem(), w.intermediate.pem(), w.root.pem());
    let signed = w.signed_and_logged(&leaf, &chain, during(&leaf));
    assert_rejected_because(&w.decide(&signed), "is not a CA (basicConstraints)");
}

#[test]
fn another_issuer_or_email_in_a_genuine_chain_is_refused() {
    let mut w = World::new();
    let intermediate = w.intermediate.clone();
    let chain = w.chain();
    let leaf = fulcio_leaf(
        &mut w.lab,
        &intermediate,
        EMAIL,
        "https://other-issuer.example",
    );
    let signed = w.signed_and_logged(&leaf, &chain, during(&leaf));
    assert_rejected_because(&w.decide(&signed), "unexpected Fulcio OIDC issuer");
    let leaf = fulcio_leaf(&mut w.lab, &intermediate, "mallory@example.com", ISSUER);
    let signed = w.signed_and_logged(&leaf, &chain, during(&leaf));
    assert_rejected_because(&w.decide(&signed), "required email");
}
