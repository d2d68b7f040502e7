//! The Fulcio+Rekor and PKI rows of `shared/conformance/containers-image/EXPECTED.md`, through
//! a policy FILE and [`cfsgate_verifier::evaluate`], with the variations containers/image's
//! `policy_eval_sigstore_test.go` runs on the same cosign-made fixtures: each reaches
//! containers/image's verdict, and each rejection says why.
// Test code: a failed unwrap is a test failure with its message.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use cfsgate_verifier::sigstore::{
    SigstoreSignature, BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION,
};
use cfsgate_verifier::Decision;
use common::{docker_default_policy, evaluate, fixture_image, fixture_key_json, fixtures};

/// The identity cosign signed the Fulcio fixture as.
const FULCIO_IDENTITY: &str = "192.168.64.2:5000/cosign-signed/fulcio-rekor-1";
/// The identity of the PKI fixture.
const PKI_IDENTITY: &str = "localhost:5000/test";
const GITHUB: &str = "https://github.com/login/oauth";

fn fulcio_requirement(ca: &str, issuer: &str, email: &str, rekor: &str) -> String {
    format!(
        r#"[{{"type": "sigstoreSigned", "fulcio": {{{ca}, "oidcIssuer": "{issuer}", "subjectEmail": "{email}"}}, {rekor}"signedIdentity": {{"type": "matchRepository"}}}}]"#
    )
}

fn ca_path(name: &str) -> String {
    format!(r#""caPath": {}"#, fixture_key_json(name))
}

fn rekor_path(name: &str) -> String {
    format!(r#""rekorPublicKeyPath": {}, "#, fixture_key_json(name))
}

fn valid_fulcio() -> String {
    fulcio_requirement(
        &ca_path("fulcio_v1.crt.pem"),
        GITHUB,
        "mitr@redhat.com",
        &rekor_path("rekor.pub"),
    )
}

fn pki_requirement(fields: &str) -> String {
    format!(
        r#"[{{"type": "sigstoreSigned", "pki": {{{fields}}}, "signedIdentity": {{"type": "matchRepository"}}}}]"#
    )
}

fn valid_pki_fields() -> String {
    format!(
        r#""caRootsPath": {}, "caIntermediatesPath": {}, "subjectEmail": "qiwan@redhat.com", "subjectHostname": "myhost.example.com""#,
        fixture_key_json("pki_root_crts.pem"),
        fixture_key_json("pki_intermediate_crts.pem")
    )
}

fn decide(image: &Path, reference: &str, requirements: &str) -> Decision {
    let work = tempfile::tempdir().unwrap();
    let policy = docker_default_policy(work.path(), requirements);
    let d = evaluate(
        &format!("dir:{}", image.display()),
        Some(reference),
        &policy,
        None,
    )
    .expect("evaluates");
    assert_eq!(d.would_reject, !d.admitted, "enforce mode: {d:#?}");
    d
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

/// A copy of fixture image `name` whose signature-1 is changed by `edit`.
fn edited(name: &str, edit: impl FnOnce(&mut SigstoreSignature)) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let source = fixtures().join(name);
    std::fs::copy(
        source.join("manifest.json"),
        out.path().join("manifest.json"),
    )
    .unwrap();
    let bytes = std::fs::read(source.join("signature-1")).unwrap();
    let mut signature = SigstoreSignature::parse(&bytes, "signature-1").unwrap();
    edit(&mut signature);
    std::fs::write(out.path().join("signature-1"), signature.to_bytes()).unwrap();
    out
}

fn annotation(name: &str, key: &str) -> String {
    let bytes = std::fs::read(fixtures().join(name).join("signature-1")).unwrap();
    SigstoreSignature::parse(&bytes, "signature-1")
        .unwrap()
        .annotations[key]
        .clone()
}

const FULCIO_IMAGE: &str = "dir-img-cosign-fulcio-rekor-valid";
const PKI_IMAGE: &str = "dir-img-cosign-pki-valid";

#[test]
fn fulcio_rekor_valid_is_accepted_at_the_set_time() {
    let image = fixture_image(FULCIO_IMAGE);
    let d = decide(image.path(), FULCIO_IDENTITY, &valid_fulcio());
    assert!(d.admitted, "{d:#?}");
    assert_eq!(d.signers.len(), 1);
    assert_eq!(d.rekor.len(), 1, "{d:#?}");
    // The certificate was valid for ten minutes on 2023-01-20; the SET says when it signed.
    let explanation = d.explanation.join("\n");
    assert!(
        explanation.contains("certificate chain valid at the Rekor SET time")
            && explanation.contains("integrated at 2023-01-20T20:5"),
        "{explanation}"
    );
}

#[test]
fn fulcio_with_another_rekor_key_is_rejected() {
    let image = fixture_image(FULCIO_IMAGE);
    // cosign.pub is an ECDSA key, but not the log's.
    let req = fulcio_requirement(
        &ca_path("fulcio_v1.crt.pem"),
        GITHUB,
        "mitr@redhat.com",
        &rekor_path("cosign.pub"),
    );
    let d = decide(image.path(), FULCIO_IDENTITY, &req);
    assert_rejected_because(&d, "Rekor SET not accepted");
}

#[test]
fn fulcio_with_another_email_or_issuer_is_rejected() {
    let image = fixture_image(FULCIO_IMAGE);
    let rekor = rekor_path("rekor.pub");
    let ca = ca_path("fulcio_v1.crt.pem");
    let req = fulcio_requirement(&ca, GITHUB, "this-does-not-match@example.com", &rekor);
    let d = decide(image.path(), FULCIO_IDENTITY, &req);
    assert_rejected_because(
        &d,
        "required email \"this-does-not-match@example.com\" not found",
    );
    let req = fulcio_requirement(
        &ca,
        "https://accounts.google.com",
        "mitr@redhat.com",
        &rekor,
    );
    let d = decide(image.path(), FULCIO_IDENTITY, &req);
    assert_rejected_because(
        &d,
        "unexpected Fulcio OIDC issuer \"https://github.com/login/oauth\"",
    );
}

#[test]
fn fulcio_without_rekor_is_refused_by_the_policy_and_without_a_set_by_evaluation() {
    let req = fulcio_requirement(&ca_path("fulcio_v1.crt.pem"), GITHUB, "mitr@redhat.com", "");
    let text = format!(r#"{{"default": {req}}}"#);
    let error = cfsgate_policy::parse_policy(text.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("must be specified if fulcio is used"),
        "{error}"
    );
    let image = edited(FULCIO_IMAGE, |s| {
        s.annotations.remove(BUNDLE_ANNOTATION);
    });
    let d = decide(image.path(), FULCIO_IDENTITY, &valid_fulcio());
    assert_rejected_because(&d, "missing dev.sigstore.cosign/bundle annotation");
}

#[test]
fn fulcio_needs_the_certificate_and_a_path_to_the_ca() {
    let image = edited(FULCIO_IMAGE, |s| {
        s.annotations.remove(CERTIFICATE_ANNOTATION);
    });
    let d = decide(image.path(), FULCIO_IDENTITY, &valid_fulcio());
    assert_rejected_because(&d, "missing dev.sigstore.cosign/certificate annotation");
    // Without the chain annotation there is no path from the leaf to the Fulcio root…
    let image = edited(FULCIO_IMAGE, |s| {
        s.annotations.remove(CHAIN_ANNOTATION);
    });
    let d = decide(image.path(), FULCIO_IDENTITY, &valid_fulcio());
    assert_rejected_because(&d, "is not a trusted root nor issued by one");
    // … unless the policy trusts the intermediate directly (caData = the chain annotation).
    let chain = annotation(FULCIO_IMAGE, CHAIN_ANNOTATION);
    let ca_data = format!(
        r#""caData": "{}""#,
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, chain)
    );
    let req = fulcio_requirement(
        &ca_data,
        GITHUB,
        "mitr@redhat.com",
        &rekor_path("rekor.pub"),
    );
    let d = decide(image.path(), FULCIO_IDENTITY, &req);
    assert!(d.admitted, "{d:#?}");
}

#[test]
fn fulcio_rejects_another_identity_and_another_ca() {
    let image = fixture_image(FULCIO_IMAGE);
    let d = decide(
        image.path(),
        "192.168.64.2:5000/other/repo",
        &valid_fulcio(),
    );
    assert!(!d.admitted, "{d:#?}");
    let req = fulcio_requirement(
        &ca_path("pki_root_crts.pem"),
        GITHUB,
        "mitr@redhat.com",
        &rekor_path("rekor.pub"),
    );
    let d = decide(image.path(), FULCIO_IDENTITY, &req);
    assert_rejected_because(&d, "verifying the certificate at the Rekor SET time");
    // A CA file that holds no certificate: nothing can count (containers/image: "error
    // loading Fulcio CA certificates").
    let req = fulcio_requirement(
        &ca_path("cosign.pub"),
        GITHUB,
        "mitr@redhat.com",
        &rekor_path("rekor.pub"),
    );
    let d = decide(image.path(), FULCIO_IDENTITY, &req);
    assert_rejected_because(&d, "error loading CA certificates");
}

#[test]
fn attack_a_set_over_another_body_is_refused() {
    // The key+Rekor fixture's SET is genuine, signed by the same log, over another entry.
    let other_set = annotation("dir-img-cosign-key-rekor-valid", BUNDLE_ANNOTATION);
    let image = edited(FULCIO_IMAGE, |s| {
        s.annotations.insert(BUNDLE_ANNOTATION.into(), other_set);
    });
    let d = decide(image.path(), FULCIO_IDENTITY, &valid_fulcio());
    assert_rejected_because(
        &d,
        "Rekor SET not accepted: the Rekor entry logs another signature",
    );
}

#[test]
fn attack_a_certificate_swapped_under_a_genuine_set_is_refused() {
    // The PKI fixture's certificate in place of the Fulcio one: the SET logs the Fulcio
    // certificate, so the swap is caught before the chain is looked at.
    let pki_cert = annotation(PKI_IMAGE, CERTIFICATE_ANNOTATION);
    let image = edited(FULCIO_IMAGE, |s| {
        s.annotations
            .insert(CERTIFICATE_ANNOTATION.into(), pki_cert);
    });
    let d = decide(image.path(), FULCIO_IDENTITY, &valid_fulcio());
    assert_rejected_because(&d, "the Rekor entry logs another certificate");
}

#[test]
fn pki_valid_is_accepted() {
    let image = fixture_image(PKI_IMAGE);
    let d = decide(
        image.path(),
        PKI_IDENTITY,
        &pki_requirement(&valid_pki_fields()),
    );
    assert!(d.admitted, "{d:#?}");
    assert!(d.rekor.is_empty());
    // Either subject alone suffices; inline roots work like a file.
    let roots = std::fs::read(fixtures().join("pki_root_crts.pem")).unwrap();
    let inline = format!(
        r#""caRootsData": "{}", "subjectHostname": "myhost.example.com""#,
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, roots)
    );
    let d = decide(image.path(), PKI_IDENTITY, &pki_requirement(&inline));
    assert!(d.admitted, "{d:#?}");
}

#[test]
fn pki_with_another_subject_is_rejected() {
    let image = fixture_image(PKI_IMAGE);
    let roots = fixture_key_json("pki_root_crts.pem");
    let fields = format!(r#""caRootsPath": {roots}, "subjectEmail": "someone@example.com""#);
    let d = decide(image.path(), PKI_IDENTITY, &pki_requirement(&fields));
    assert_rejected_because(&d, "required email \"someone@example.com\" not found");
    let fields = format!(r#""caRootsPath": {roots}, "subjectHostname": "otherhost.example.com""#);
    let d = decide(image.path(), PKI_IDENTITY, &pki_requirement(&fields));
    assert_rejected_because(&d, "unexpected subject hostname");
    // The wrong identity for the image.
    let d = decide(
        image.path(),
        "localhost:5000/other",
        &pki_requirement(&valid_pki_fields()),
    );
    assert!(!d.admitted, "{d:#?}");
}

#[test]
fn pki_chain_annotation_and_trusted_intermediates() {
    // Without the chain annotation, the policy's intermediates complete the path.
    let image = edited(PKI_IMAGE, |s| {
        s.annotations.remove(CHAIN_ANNOTATION);
    });
    let d = decide(
        image.path(),
        PKI_IDENTITY,
        &pki_requirement(&valid_pki_fields()),
    );
    assert!(d.admitted, "{d:#?}");
    // Without either there is no path.
    let fields = format!(
        r#""caRootsPath": {}, "subjectEmail": "qiwan@redhat.com""#,
        fixture_key_json("pki_root_crts.pem")
    );
    let d = decide(image.path(), PKI_IDENTITY, &pki_requirement(&fields));
    assert_rejected_because(&d, "is not a trusted root nor issued by one");
    // Without the certificate nothing counts.
    let image = edited(PKI_IMAGE, |s| {
        s.annotations.remove(CERTIFICATE_ANNOTATION);
    });
    let d = decide(
        image.path(),
        PKI_IDENTITY,
        &pki_requirement(&valid_pki_fields()),
    );
    assert_rejected_because(&d, "missing dev.sigstore.cosign/certificate annotation");
}

#[test]
fn attack_a_pki_certificate_from_another_ca_is_refused() {
    // The Fulcio leaf (a real certificate, from another CA) in place of the PKI one.
    let fulcio_cert = annotation(FULCIO_IMAGE, CERTIFICATE_ANNOTATION);
    let image = edited(PKI_IMAGE, |s| {
        s.annotations
            .insert(CERTIFICATE_ANNOTATION.into(), fulcio_cert);
    });
    let d = decide(
        image.path(),
        PKI_IDENTITY,
        &pki_requirement(&valid_pki_fields()),
    );
    // Go checks the leaf's own validity first: this expired Fulcio leaf is refused for that
    // before its (unknown) issuer is looked up; the unknown CA is refused in cert_chain.rs
    // and keyless_attacks.rs.
    assert_rejected_because(&d, "verifying the certificate now");
}

#[test]
fn policy_check_accepts_valid_keyless_requirements_and_flags_unusable_cas() {
    let work = tempfile::tempdir().unwrap();
    let text = format!(
        r#"{{"default": [{{"type": "reject"}}], "transports": {{"docker": {{"a.example/f": {}, "a.example/p": {}, "a.example/bad": {}, "a.example/inline": {}}}}}}}"#,
        valid_fulcio(),
        pki_requirement(&valid_pki_fields()),
        fulcio_requirement(
            &ca_path("cosign.pub"),
            GITHUB,
            "a@b.c",
            &rekor_path("rekor.pub")
        ),
        pki_requirement(r#""caRootsData": "bm9uc2Vuc2U=", "subjectEmail": "a@b.c""#),
    );
    let policy = common::write_policy(work.path(), &text);
    let findings = cfsgate_policy::lint(&policy, Path::new("/"));
    let messages: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
    assert!(
        !messages.iter().any(|m| m.contains("always rejects")),
        "fulcio and pki are evaluated now: {messages:#?}"
    );
    let errors: Vec<&cfsgate_policy::LintFinding> = findings
        .iter()
        .filter(|f| f.severity == cfsgate_policy::Severity::Error)
        .collect();
    assert_eq!(errors.len(), 2, "{messages:#?}");
    assert!(
        errors.iter().any(|f| f
            .message
            .contains("cosign.pub: contains PEM, but no CERTIFICATE")),
        "{messages:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|f| f.message.contains("caRootsData: does not contain PEM")),
        "{messages:#?}"
    );
}
