//! Every key-based row of `shared/conformance/containers-image/EXPECTED.md`: the verdicts
//! containers/image reaches on its own cosign-made fixtures.

mod common;

use cfsgate_policy::SignedIdentity;
use cfsgate_verifier::{verify_dir_image, RejectReason, SignatureOutcome, Verdict};
use common::{fixture_image, key, require};

const SAMPLE: &str = "192.168.64.2:5000/cosign-signed-single-sample";

fn verdict(image: &str, keys: &[&str], rule: SignedIdentity, reference: &str) -> Verdict {
    let dir = fixture_image(image);
    let keys: Vec<_> = keys.iter().map(|k| key(k)).collect();
    verify_dir_image(dir.path(), &keys, &require(rule, reference))
}

fn reason(verdict: &Verdict) -> &RejectReason {
    match verdict {
        Verdict::Rejected { reason, .. } => reason,
        Verdict::Accepted { .. } => panic!("expected a rejection, got {verdict:#?}"),
    }
}

fn outcomes(verdict: &Verdict) -> Vec<&SignatureOutcome> {
    verdict.signatures().iter().map(|r| &r.outcome).collect()
}

#[test]
fn cosign_valid_accepted() {
    let v = verdict(
        "dir-img-cosign-valid",
        &["cosign.pub"],
        SignedIdentity::MatchRepository,
        SAMPLE,
    );
    let Verdict::Accepted {
        signers,
        identities,
        manifest_digest,
        ..
    } = &v
    else {
        panic!("expected accept: {v:#?}");
    };
    assert_eq!(signers, &vec![key("cosign.pub").key_id()]);
    assert_eq!(identities, &vec![SAMPLE.to_string()]);
    // sha256sum of the fixture's manifest.json
    assert_eq!(
        manifest_digest,
        "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"
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
    assert_eq!(reason(&v), &RejectReason::NoTrustedSigner);
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
    assert!(v.is_accepted(), "{v:#?}");
}

#[test]
fn cosign_valid_identity_mismatch_rejected() {
    let v = verdict(
        "dir-img-cosign-valid",
        &["cosign.pub"],
        SignedIdentity::MatchRepository,
        "testing/manifest:notlatest",
    );
    assert_eq!(reason(&v), &RejectReason::NoValidSignature);
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
    assert!(v.is_accepted(), "{v:#?}");
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
    assert_eq!(reason(&v), &RejectReason::NoValidSignature);
}

#[test]
fn cosign_mixed_accepted_ignoring_the_bad_signature() {
    let v = verdict(
        "dir-img-cosign-mixed",
        &["cosign.pub"],
        SignedIdentity::MatchRepository,
        SAMPLE,
    );
    assert!(v.is_accepted(), "{v:#?}");
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
    assert_eq!(reason(&v), &RejectReason::NoValidSignature);
    assert!(matches!(
        outcomes(&v)[..],
        [SignatureOutcome::DigestMismatch { signed, .. }]
            if signed == "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"
    ));
}

#[test]
fn cosign_no_manifest_rejected() {
    let v = verdict(
        "dir-img-cosign-no-manifest",
        &["cosign.pub"],
        SignedIdentity::MatchRepository,
        SAMPLE,
    );
    assert!(
        matches!(reason(&v), RejectReason::ManifestUnreadable { error } if error.contains("manifest.json")),
        "{v:#?}"
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
    assert_eq!(reason(&v), &RejectReason::NoValidSignature);
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
    assert_eq!(reason(&v), &RejectReason::NoTrustedSigner);
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
    assert_eq!(reason(&v), &RejectReason::Unsigned);
    assert!(v.signatures().is_empty());
}

#[test]
fn gpg_only_rejected_as_unsigned() {
    let v = verdict(
        "dir-img-valid",
        &["cosign.pub"],
        SignedIdentity::MatchRepository,
        "testing/manifest:latest",
    );
    assert_eq!(reason(&v), &RejectReason::Unsigned);
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
    assert!(v.is_accepted(), "{v:#?}");
}

#[test]
fn cosign_valid_with_tag_match_exact_other_tag_rejected() {
    let v = verdict(
        "dir-img-cosign-valid-with-tag",
        &["cosign.pub"],
        SignedIdentity::MatchExact,
        "192.168.64.2:5000/skopeo-signed:othertag",
    );
    assert_eq!(reason(&v), &RejectReason::NoValidSignature);
}

#[test]
fn cosign_repository_signature_fails_match_exact() {
    let v = verdict(
        "dir-img-cosign-valid",
        &["cosign.pub"],
        SignedIdentity::MatchExact,
        SAMPLE,
    );
    assert_eq!(reason(&v), &RejectReason::NoValidSignature);
}
