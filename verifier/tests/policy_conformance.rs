//! Every row of `shared/conformance/containers-image/EXPECTED.md` through a policy FILE
//! (keys by absolute path, written into a temporary directory) and [`evaluate`]: the
//! verdicts containers/image reaches on its own cosign-made fixtures. Also: the fixture
//! `policy.json` parses.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

mod common;

use common::{docker_default_policy, evaluate, fixture_image, fixture_key_json, fixtures};

const SAMPLE: &str = "192.168.64.2:5000/cosign-signed-single-sample";

/// The EXPECTED.md requirement with `key_field` (e.g. `"keyPath": …`) and `identity`.
fn requirement(key_field: &str, identity: &str) -> String {
    format!(
        r#"[{{"type": "sigstoreSigned", {key_field}, "signedIdentity": {{"type": "{identity}"}}}}]"#
    )
}

fn key_path(name: &str) -> String {
    format!(r#""keyPath": {}"#, fixture_key_json(name))
}

/// The decision for one row: `Some(admitted)`, or `None` when it could not be evaluated.
fn row(image: &str, reference: &str, requirements: &str) -> Option<bool> {
    let work = tempfile::tempdir().unwrap();
    let policy = docker_default_policy(work.path(), requirements);
    let dir = fixture_image(image);
    let decision = evaluate(
        &format!("dir:{}", dir.path().display()),
        Some(reference),
        &policy,
        None,
    );
    match decision {
        Ok(d) => {
            assert_eq!(d.transport, "docker", "{d:#?}");
            assert_eq!(d.would_reject, !d.admitted, "enforce mode: {d:#?}");
            if !d.admitted {
                assert!(!d.reasons.is_empty(), "a rejection says why: {d:#?}");
            }
            Some(d.admitted)
        }
        Err(_) => None,
    }
}

fn default_req() -> String {
    requirement(&key_path("cosign.pub"), "matchRepository")
}

#[test]
fn cosign_valid() {
    assert_eq!(
        row("dir-img-cosign-valid", SAMPLE, &default_req()),
        Some(true)
    );
}

#[test]
fn cosign_valid_wrong_key() {
    let req = requirement(&key_path("cosign2.pub"), "matchRepository");
    assert_eq!(row("dir-img-cosign-valid", SAMPLE, &req), Some(false));
}

#[test]
fn cosign_valid_any_listed_key() {
    let req = requirement(
        &format!(
            r#""keyPaths": [{}, {}]"#,
            fixture_key_json("cosign2.pub"),
            fixture_key_json("cosign.pub")
        ),
        "matchRepository",
    );
    assert_eq!(row("dir-img-cosign-valid", SAMPLE, &req), Some(true));
}

#[test]
fn cosign_valid_key_data() {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(fixtures().join("cosign.pub")).unwrap());
    let req = requirement(&format!(r#""keyDatas": ["{data}"]"#), "matchRepository");
    assert_eq!(row("dir-img-cosign-valid", SAMPLE, &req), Some(true));
}

#[test]
fn cosign_valid_identity_mismatch() {
    assert_eq!(
        row(
            "dir-img-cosign-valid",
            "testing/manifest:notlatest",
            &default_req()
        ),
        Some(false)
    );
}

#[test]
fn cosign_valid_2() {
    assert_eq!(
        row("dir-img-cosign-valid-2", SAMPLE, &default_req()),
        Some(true)
    );
    assert_eq!(
        row(
            "dir-img-cosign-valid-2",
            "this/does-not:match",
            &default_req()
        ),
        Some(false)
    );
}

#[test]
fn cosign_mixed() {
    assert_eq!(
        row("dir-img-cosign-mixed", SAMPLE, &default_req()),
        Some(true)
    );
}

#[test]
fn cosign_modified_manifest() {
    assert_eq!(
        row("dir-img-cosign-modified-manifest", SAMPLE, &default_req()),
        Some(false)
    );
}

#[test]
fn cosign_no_manifest_cannot_be_evaluated() {
    // Fail closed: the manifest cannot be read, so the image cannot be judged (exit 2).
    assert_eq!(
        row("dir-img-cosign-no-manifest", SAMPLE, &default_req()),
        None
    );
}

#[test]
fn cosign_manifest_digest_error() {
    assert_ne!(
        row(
            "dir-img-cosign-manifest-digest-error",
            SAMPLE,
            &default_req()
        ),
        Some(true)
    );
}

#[test]
fn cosign_other_attachment() {
    assert_eq!(
        row(
            "dir-img-cosign-other-attachment",
            "testing/manifest:latest",
            &default_req()
        ),
        Some(false)
    );
}

#[test]
fn unsigned_and_gpg_only() {
    assert_eq!(
        row(
            "dir-img-unsigned",
            "testing/manifest:latest",
            &default_req()
        ),
        Some(false)
    );
    assert_eq!(
        row("dir-img-valid", "testing/manifest:latest", &default_req()),
        Some(false)
    );
}

#[test]
fn cosign_valid_with_tag_match_exact() {
    let req = requirement(&key_path("cosign.pub"), "matchExact");
    assert_eq!(
        row(
            "dir-img-cosign-valid-with-tag",
            "192.168.64.2:5000/skopeo-signed:tag",
            &req
        ),
        Some(true)
    );
    assert_eq!(
        row(
            "dir-img-cosign-valid-with-tag",
            "192.168.64.2:5000/skopeo-signed:othertag",
            &req
        ),
        Some(false)
    );
    assert_eq!(row("dir-img-cosign-valid", SAMPLE, &req), Some(false));
}

/// The docker reference cosign signed `dir-img-cosign-key-rekor-valid` as.
const REKOR_IDENTITY: &str = "192.168.64.2:5000/cosign-signed/key-1";

/// The key-rekor row with `key` and `rekorPublicKeyPath` = `rekor_key` (a JSON string).
fn rekor_row(key: &str, rekor_key: &str) -> Option<bool> {
    let req = format!(
        r#"[{{"type": "sigstoreSigned", {}, "rekorPublicKeyPath": {rekor_key}, "signedIdentity": {{"type": "matchRepository"}}}}]"#,
        key_path(key)
    );
    row("dir-img-cosign-key-rekor-valid", REKOR_IDENTITY, &req)
}

/// The public-good Rekor key (tests/data/README.md): the log the fixture's SET names.
fn public_good_rekor_key() -> String {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rekor-public-good.pub");
    serde_json::to_string(&path.display().to_string()).unwrap()
}

#[test]
fn rekor_key_valid() {
    // EXPECTED.md: accepted when the SET checks out offline against the Rekor key.
    assert_eq!(
        rekor_row("cosign2.pub", &public_good_rekor_key()),
        Some(true)
    );
}

#[test]
fn rekor_key_valid_but_signed_by_another_key() {
    assert_eq!(
        rekor_row("cosign.pub", &public_good_rekor_key()),
        Some(false)
    );
}

#[test]
fn rekor_key_valid_with_the_fixture_rekor_pub() {
    // EXPECTED.md: the fixtures' rekor.pub is now the real public-good Rekor key (a copy, not
    // a dangling link): containers/image accepts the row with it, and so must we.
    assert_eq!(
        rekor_row("cosign2.pub", &fixture_key_json("rekor.pub")),
        Some(true)
    );
}

#[test]
fn rekor_with_a_wrong_rekor_key_is_rejected() {
    // A real key of another log: no signature can count (never "not checked").
    assert_eq!(
        rekor_row("cosign2.pub", &fixture_key_json("cosign.pub")),
        Some(false)
    );
}

#[test]
fn fixture_policy_parses_and_applies() {
    let policy = cfsgate_policy::load_policy_file(&fixtures().join("policy.json")).expect("parses");
    // Its `dir` transport default accepts anything: a dir: image is admitted unread.
    let dir = fixture_image("dir-img-unsigned");
    let d = evaluate(
        &format!("dir:{}", dir.path().display()),
        None,
        &policy,
        None,
    )
    .unwrap();
    assert!(d.admitted, "{d:#?}");
    assert_eq!(d.transport, "dir");
    // example.com/production uses GPG signedBy with a keyring at /keys/, absent here: the
    // requirement is evaluated and rejects, naming the key file (containers/image: the same).
    let d = evaluate(
        &format!("dir:{}", dir.path().display()),
        Some("example.com/production/app:v1"),
        &policy,
        None,
    )
    .unwrap();
    assert!(!d.admitted);
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("signedBy") && r.contains("/keys/employee-gpg-keyring")),
        "{d:#?}"
    );
}
