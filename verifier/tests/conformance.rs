//! Every key-based row of `shared/conformance/containers-image/EXPECTED.md`: the verdicts
//! containers/image reaches on its own cosign-made fixtures, in detail (who signed, which
//! identity, each signature's outcome, the reason given), through the path `cfsgate verify`
//! and the hooks take: a policy file (keys by absolute path) and [`cfsgate_verifier::evaluate`]
//! on the `dir:` image with `--reference`.

mod common;

use std::path::PathBuf;

use cfsgate_policy::SignedIdentity;
use cfsgate_verifier::{Decision, EvalError, SignatureOutcome};
use common::{
    accepted_identities, evaluate_dir, fixture_image, fixtures, key, only_reason,
    sigstore_requirement, NO_TRUSTED_SIGNER, NO_VALID_SIGNATURE, UNSIGNED,
};

const SAMPLE: &str = "192.168.64.2:5000/cosign-signed-single-sample";

fn identity_type(rule: SignedIdentity) -> &'static str {
    match rule {
        SignedIdentity::MatchRepository => "matchRepository",
        SignedIdentity::MatchExact => "matchExact",
        other => panic!("no fixture row uses {other:?}"),
    }
}

/// `image` evaluated as `reference` under a `docker` default scope requiring a sigstore
/// signature by one of `keys` with identity `rule`.
fn evaluated(
    image: &str,
    keys: &[&str],
    rule: SignedIdentity,
    reference: &str,
) -> Result<Decision, EvalError> {
    let key_files: Vec<PathBuf> = keys
        .iter()
        .map(|k| fixtures().join(k).canonicalize().expect("fixture key"))
        .collect();
    let dir = fixture_image(image);
    evaluate_dir(
        dir.path(),
        reference,
        &sigstore_requirement(&key_files, identity_type(rule)),
    )
}

fn verdict(image: &str, keys: &[&str], rule: SignedIdentity, reference: &str) -> Decision {
    evaluated(image, keys, rule, reference)
        .unwrap_or_else(|e| panic!("{image} could not be evaluated: {e}"))
}

fn reason(decision: &Decision) -> &str {
    only_reason(decision)
}

fn outcomes(decision: &Decision) -> Vec<&SignatureOutcome> {
    decision.signature_outcomes.iter().collect()
}

#[test]
fn cosign_valid_accepted() {
    let v = verdict(
        "dir-img-cosign-valid",
        &["cosign.pub"],
        SignedIdentity::MatchRepository,
        SAMPLE,
    );
    assert!(
        v.admitted && v.reasons.is_empty(),
        "expected accept: {v:#?}"
    );
    assert_eq!(v.signers, vec![key("cosign.pub").key_id()]);
    assert_eq!(accepted_identities(&v), vec![SAMPLE.to_string()]);
    // sha256sum of the fixture's manifest.json
    assert_eq!(
        v.manifest_digest.map(|d| d.to_string()).as_deref(),
        Some("sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00")
    );
}

#[test]
fn cosign_valid_wrong_key_rejected() {
    let v = verdict(
        "dir-img-cosign-valid",
        &["cosign2.pub"],
        SignedIdentity::MatchRepository,
        SAMPLE,
    );
    assert_eq!(reason(&v), NO_TRUSTED_SIGNER);
    assert!(matches!(
        outcomes(&v)[..],
        [SignatureOutcome::Untrusted { .. }]
    ));
}

#[test]
fn cosign_valid_any_listed_key_accepted() {
    let v = verdict(
        "dir-img-cosign-valid",
        &["cosign2.pub", "cosign.pub"],
        SignedIdentity::MatchRepository,
        SAMPLE,
    );
    assert!(v.admitted && v.reasons.is_empty(), "{v:#?}");
}

#[test]
fn cosign_valid_identity_mismatch_rejected() {
    let v = verdict(
        "dir-img-cosign-valid",
        &["cosign.pub"],
        SignedIdentity::MatchRepository,
        "testing/manifest:notlatest",
    );
    assert!(reason(&v).starts_with(NO_VALID_SIGNATURE), "{v:#?}");
    assert!(matches!(
        outcomes(&v)[..],
        [SignatureOutcome::IdentityMismatch { claimed, .. }] if claimed == SAMPLE
    ));
}

#[test]
fn cosign_valid_2_accepted_with_two_signatures() {
    let v = verdict(
        "dir-img-cosign-valid-2",
        &["cosign.pub"],
        SignedIdentity::MatchRepository,
        SAMPLE,
    );
    assert!(v.admitted && v.reasons.is_empty(), "{v:#?}");
    let accepted = outcomes(&v)
        .into_iter()
        .filter(|o| matches!(o, SignatureOutcome::Accepted { .. }))
        .count();
    assert_eq!(accepted, 2);
}

#[test]
fn cosign_valid_2_other_identity_rejected() {
    let v = verdict(
        "dir-img-cosign-valid-2",
        &["cosign.pub"],
        SignedIdentity::MatchRepository,
        "this/does-not:match",
    );
    assert!(reason(&v).starts_with(NO_VALID_SIGNATURE), "{v:#?}");
}

#[test]
fn cosign_mixed_accepted_ignoring_the_bad_signature() {
    let v = verdict(
        "dir-img-cosign-mixed",
        &["cosign.pub"],
        SignedIdentity::MatchRepository,
        SAMPLE,
    );
    assert!(v.admitted && v.reasons.is_empty(), "{v:#?}");
    assert!(matches!(
        outcomes(&v)[..],
        [
            SignatureOutcome::Untrusted { .. },
            SignatureOutcome::Accepted { .. }
        ]
    ));
}

#[test]
fn cosign_modified_manifest_rejected() {
    let v = verdict(
        "dir-img-cosign-modified-manifest",
        &["cosign.pub"],
        SignedIdentity::MatchRepository,
        SAMPLE,
    );
    assert!(reason(&v).starts_with(NO_VALID_SIGNATURE), "{v:#?}");
    assert!(matches!(
        outcomes(&v)[..],
        [SignatureOutcome::DigestMismatch { signed, .. }]
            if signed == "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"
    ));
}

#[test]
fn cosign_no_manifest_rejected() {
    // Fail closed: the image cannot be judged at all (`cfsgate verify` exits 2).
    let result = evaluated(
        "dir-img-cosign-no-manifest",
        &["cosign.pub"],
        SignedIdentity::MatchRepository,
        SAMPLE,
    );
    assert!(
        matches!(&result, Err(e @ EvalError::Image(_)) if e.to_string().contains("manifest.json")),
        "{result:#?}"
    );
}

#[test]
fn cosign_manifest_digest_error_rejected() {
    let v = verdict(
        "dir-img-cosign-manifest-digest-error",
        &["cosign.pub"],
        SignedIdentity::MatchRepository,
        SAMPLE,
    );
    assert!(reason(&v).starts_with(NO_VALID_SIGNATURE), "{v:#?}");
    assert!(matches!(
        outcomes(&v)[..],
        [SignatureOutcome::DigestMismatch { .. }]
    ));
}

#[test]
fn cosign_other_attachment_rejected() {
    let v = verdict(
        "dir-img-cosign-other-attachment",
        &["cosign.pub"],
        SignedIdentity::MatchRepository,
        "testing/manifest:latest",
    );
    assert_eq!(reason(&v), NO_TRUSTED_SIGNER);
    assert!(matches!(
        outcomes(&v)[..],
        [SignatureOutcome::NotSimpleSigning { mime_type }] if mime_type == "text/plain"
    ));
}

#[test]
fn unsigned_rejected_as_unsigned() {
    let v = verdict(
        "dir-img-unsigned",
        &["cosign.pub"],
        SignedIdentity::MatchRepository,
        "testing/manifest:latest",
    );
    assert_eq!(reason(&v), UNSIGNED);
    assert!(v.signature_outcomes.is_empty(), "{v:#?}");
}

#[test]
fn gpg_only_rejected_as_unsigned() {
    let v = verdict(
        "dir-img-valid",
        &["cosign.pub"],
        SignedIdentity::MatchRepository,
        "testing/manifest:latest",
    );
    assert_eq!(reason(&v), UNSIGNED);
    assert!(matches!(outcomes(&v)[..], [SignatureOutcome::NotSigstore]));
}

#[test]
fn cosign_valid_with_tag_match_exact_accepted() {
    let v = verdict(
        "dir-img-cosign-valid-with-tag",
        &["cosign.pub"],
        SignedIdentity::MatchExact,
        "192.168.64.2:5000/skopeo-signed:tag",
    );
    assert!(v.admitted && v.reasons.is_empty(), "{v:#?}");
}

#[test]
fn cosign_valid_with_tag_match_exact_other_tag_rejected() {
    let v = verdict(
        "dir-img-cosign-valid-with-tag",
        &["cosign.pub"],
        SignedIdentity::MatchExact,
        "192.168.64.2:5000/skopeo-signed:othertag",
    );
    assert!(reason(&v).starts_with(NO_VALID_SIGNATURE), "{v:#?}");
}

#[test]
fn cosign_repository_signature_fails_match_exact() {
    let v = verdict(
        "dir-img-cosign-valid",
        &["cosign.pub"],
        SignedIdentity::MatchExact,
        SAMPLE,
    );
    assert!(reason(&v).starts_with(NO_VALID_SIGNATURE), "{v:#?}");
}
