//! GPG `signedBy` against containers/image's own fixtures
//! (`shared/conformance/containers-image`): the rows of its `policy_eval_signedby_test.go`
//! through a policy FILE and [`evaluate`], and the rows of `mechanism_test.go` through
//! [`GpgKeyring`]. Where gpg is installed, each mechanism row is also checked against gpg
//! itself (a temporary GNUPGHOME holding only the row's keys): same verdict, same signer.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use base64::Engine as _;
use cfsgate_verifier::gpg::{GpgError, GpgKeyring};
use common::{docker_default_policy, evaluate, fixture_image, fixture_key_json, fixtures};

const LATEST: &str = "testing/manifest:latest";
/// The fingerprints `fixtures_info_test.go` names.
const KEY: &str = "08CD26E446E2E95249B7A405E932F44B23E8DD43";
const KEY_WITH_PASSPHRASE: &str = "F2B501009F78B0B340221A12A3CD242DA6028093";
const PRIMARY_WITH_SUBKEY: &str = "B9F4CDB9FD8C475BFA340AC38D54A947EE396F36";
const SUBKEY_OF_PRIMARY: &str = "57D1D95BBC53BA0EAFF0718CD75B3109B3BAAEAF";
const PRIMARY_WITH_REVOKED_SUBKEY: &str = "6D88C5A1993648A17B2BB0DC6B8499AF63388D63";

fn signed_by(key_field: &str, identity: &str) -> String {
    format!(
        r#"[{{"type": "signedBy", "keyType": "GPGKeys", {key_field}, "signedIdentity": {identity}}}]"#
    )
}

fn key_path(name: &str) -> String {
    format!(r#""keyPath": {}"#, fixture_key_json(name))
}

const MATCH_EXACT: &str = r#"{"type": "matchExact"}"#;

/// The decision for `image` (a fixture directory or a path) used as `reference`:
/// `Some((admitted, reasons, openpgp signers))`, `None` when it cannot be evaluated.
fn decide(
    image: &std::path::Path,
    reference: &str,
    requirements: &str,
) -> Option<(bool, String, Vec<String>)> {
    let work = tempfile::tempdir().unwrap();
    let policy = docker_default_policy(work.path(), requirements);
    let decision = evaluate(
        &format!("dir:{}", image.display()),
        Some(reference),
        &policy,
        None,
    )
    .ok()?;
    assert_eq!(decision.would_reject, !decision.admitted, "{decision:#?}");
    if !decision.admitted {
        assert!(!decision.reasons.is_empty(), "{decision:#?}");
    }
    Some((
        decision.admitted,
        decision.reasons.join("; "),
        decision.openpgp_signers,
    ))
}

fn row(image: &str, reference: &str, requirements: &str) -> Option<(bool, String, Vec<String>)> {
    let dir = fixture_image(image);
    decide(dir.path(), reference, requirements)
}

fn accepted(image: &str, reference: &str, requirements: &str) -> Vec<String> {
    match row(image, reference, requirements) {
        Some((true, _, signers)) => signers,
        other => panic!("{image} as {reference}: expected acceptance, got {other:?}"),
    }
}

/// Rejected, with a reason containing `why`.
fn rejected(image: &str, reference: &str, requirements: &str, why: &str) {
    match row(image, reference, requirements) {
        Some((false, reasons, signers)) => {
            assert!(reasons.contains(why), "{image}: {reasons:?} lacks {why:?}");
            assert!(signers.is_empty());
        }
        other => panic!("{image} as {reference}: expected rejection ({why}), got {other:?}"),
    }
}

#[test]
fn accepted_with_key_path_key_paths_and_key_data() {
    let key_data = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(fixtures().join("public-key.gpg")).unwrap());
    for keys in [
        key_path("public-key.gpg"),
        // Both orders: the right key is found in either position.
        format!(
            r#""keyPaths": [{}, {}]"#,
            fixture_key_json("public-key-1.gpg"),
            fixture_key_json("public-key-1.gpg")
        ),
        format!(
            r#""keyPaths": [{}, {}]"#,
            fixture_key_json("public-key-2.gpg"),
            fixture_key_json("public-key-1.gpg")
        ),
        format!(r#""keyData": "{key_data}""#),
        // A binary keyring of four keys.
        key_path("pubring.gpg"),
    ] {
        let signers = accepted("dir-img-valid", LATEST, &signed_by(&keys, MATCH_EXACT));
        assert_eq!(signers, vec![KEY.to_string()], "{keys}");
    }
}

#[test]
fn default_signed_identity_is_match_repo_digest_or_exact() {
    let requirement = format!(
        r#"[{{"type": "signedBy", "keyType": "GPGKeys", {}}}]"#,
        key_path("public-key.gpg")
    );
    accepted("dir-img-valid", LATEST, &requirement);
    rejected(
        "dir-img-valid",
        "testing/manifest:notlatest",
        &requirement,
        "is not accepted",
    );
}

#[test]
fn reserved_key_types_reject() {
    for key_type in ["signedByGPGKeys", "X509Certificates", "signedByX509CAs"] {
        let requirement = format!(
            r#"[{{"type": "signedBy", "keyType": "{key_type}", {}}}]"#,
            key_path("public-key.gpg")
        );
        rejected("dir-img-valid", LATEST, &requirement, "is not implemented");
    }
}

#[test]
fn unreadable_or_empty_keys_reject() {
    let missing = r#""keyPath": "/this/does/not/exist""#;
    rejected(
        "dir-img-valid",
        LATEST,
        &signed_by(missing, MATCH_EXACT),
        "/this/does/not/exist",
    );
    let one_missing = format!(
        r#""keyPaths": [{}, "/this/does/not/exist"]"#,
        fixture_key_json("public-key.gpg")
    );
    rejected(
        "dir-img-valid",
        LATEST,
        &signed_by(&one_missing, MATCH_EXACT),
        "/this/does/not/exist",
    );
    rejected(
        "dir-img-valid",
        LATEST,
        &signed_by(r#""keyData": """#, MATCH_EXACT),
        "No public keys imported",
    );
    // A cosign PEM key is no OpenPGP keyring.
    rejected(
        "dir-img-valid",
        LATEST,
        &signed_by(&key_path("cosign.pub"), MATCH_EXACT),
        "No public keys imported",
    );
}

#[test]
fn wrong_key_and_wrong_identity_reject() {
    rejected(
        "dir-img-valid",
        LATEST,
        &signed_by(&key_path("public-key-with-subkey.gpg"), MATCH_EXACT),
        "invalid GPG signature",
    );
    let exact = r#"{"type": "exactReference", "dockerReference": "this/does-not:match"}"#;
    rejected(
        "dir-img-valid",
        LATEST,
        &signed_by(&key_path("public-key.gpg"), exact),
        "Signature for identity \"testing/manifest:latest\" is not accepted",
    );
    rejected(
        "dir-img-valid",
        "testing/manifest:notlatest",
        &signed_by(&key_path("public-key.gpg"), MATCH_EXACT),
        "is not accepted",
    );
}

#[test]
fn manifest_rows() {
    let key = signed_by(&key_path("public-key.gpg"), MATCH_EXACT);
    // No manifest: the image cannot be evaluated at all (callers fail closed).
    assert_eq!(row("dir-img-no-manifest", LATEST, &key), None);
    // A signed schema 1 manifest whose digest cannot be computed.
    rejected("dir-img-manifest-digest-error", LATEST, &key, "schema 1");
    rejected("dir-img-modified-manifest", LATEST, &key, "does not match");
    rejected("dir-img-unsigned", LATEST, &key, "no signature exists");
}

#[test]
fn several_signatures() {
    let key = signed_by(&key_path("public-key.gpg"), MATCH_EXACT);
    accepted("dir-img-valid-2", LATEST, &key);
    // One invalid, one valid (in this order): the invalid one is ignored.
    accepted("dir-img-mixed", LATEST, &key);
    rejected(
        "dir-img-valid-2",
        "testing/manifest:notlatest",
        &key,
        "None of the signatures were accepted",
    );
}

#[test]
fn a_subkey_signature_is_accepted_for_its_primary_key() {
    let signers = accepted(
        "dir-img-valid-subkey",
        LATEST,
        &signed_by(&key_path("public-key-with-subkey.gpg"), MATCH_EXACT),
    );
    assert_eq!(signers, vec![PRIMARY_WITH_SUBKEY.to_string()]);
}

#[test]
fn sigstore_signatures_do_not_count_for_signed_by() {
    rejected(
        "dir-img-cosign-valid",
        "192.168.64.2:5000/cosign-signed-single-sample",
        &signed_by(
            &key_path("public-key.gpg"),
            r#"{"type": "matchRepository"}"#,
        ),
        "no signature exists",
    );
}

/// An image with dir-img-valid's manifest and `signature` as its only signature.
fn with_signature(signature: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("dir-img-valid/manifest.json"),
        dir.path().join("manifest.json"),
    )
    .unwrap();
    std::fs::copy(fixtures().join(signature), dir.path().join("signature-1")).unwrap();
    dir
}

#[test]
fn signature_blob_rows_in_an_image() {
    let key = signed_by(&key_path("pubring.gpg"), MATCH_EXACT);
    let reject = |signature: &str, why: &str| {
        let dir = with_signature(signature);
        match decide(dir.path(), LATEST, &key) {
            Some((false, reasons, _)) => assert!(reasons.contains(why), "{signature}: {reasons}"),
            other => panic!("{signature}: {other:?}"),
        }
    };
    // A valid signature of something that is not JSON.
    reject(
        "invalid-blob.signature",
        "not a valid atomic container signature",
    );
    reject(
        "invalid-blob.signature-v3",
        "not a valid atomic container signature",
    );
    reject("unknown-key.signature", "invalid GPG signature");
    reject("corrupt.signature", "invalid GPG signature");
    reject("expired.signature", "invalid GPG signature");
    reject("subkey-revoked.signature", "invalid GPG signature");
    reject("unsigned-literal.signature", "invalid GPG signature");
    reject("unsigned-encrypted.signature", "invalid GPG signature");
    // image.signature signs image.manifest.json (= dir-img-valid's manifest) as
    // "testing/manifest": matchExact needs the tag, matchRepository accepts it.
    reject("image.signature", "is not accepted");
    let dir = with_signature("image.signature");
    let repository = signed_by(&key_path("pubring.gpg"), r#"{"type": "matchRepository"}"#);
    assert!(matches!(
        decide(dir.path(), LATEST, &repository),
        Some((true, _, _))
    ));
    let dir = with_signature("no-optional-fields.signature");
    assert!(matches!(
        decide(dir.path(), "testing/manifest", &repository),
        Some((true, _, _))
    ));
    reject("invalid-reference.signature", "is not accepted");
}

fn keyring(names: &[&str]) -> Result<GpgKeyring, GpgError> {
    let blobs: Vec<(String, Vec<u8>)> = names
        .iter()
        .map(|n| (n.to_string(), std::fs::read(fixtures().join(n)).unwrap()))
        .collect();
    GpgKeyring::from_blobs(&blobs)
}

#[test]
fn keyrings_give_primary_fingerprints() {
    for (file, fingerprint) in [
        ("public-key.gpg", KEY),
        ("public-key-1.gpg", KEY),
        ("public-key-2.gpg", KEY_WITH_PASSPHRASE),
        ("public-key-with-subkey.gpg", PRIMARY_WITH_SUBKEY),
        (
            "public-key-with-revoked-subkey.gpg",
            PRIMARY_WITH_REVOKED_SUBKEY,
        ),
    ] {
        assert_eq!(
            keyring(&[file]).unwrap().fingerprints(),
            vec![fingerprint],
            "{file}"
        );
    }
    let four = [
        KEY_WITH_PASSPHRASE,
        KEY,
        PRIMARY_WITH_SUBKEY,
        PRIMARY_WITH_REVOKED_SUBKEY,
    ];
    assert_eq!(keyring(&["pubring.gpg"]).unwrap().fingerprints(), four);
    // The binary keyring twice in one blob, and two armoured blocks in one blob.
    let pubring = std::fs::read(fixtures().join("pubring.gpg")).unwrap();
    let twice = GpgKeyring::from_blobs(&[("2x".into(), [pubring.clone(), pubring].concat())]);
    assert_eq!(twice.unwrap().fingerprints(), [four, four].concat());
    let armoured = std::fs::read(fixtures().join("public-key.gpg")).unwrap();
    let two = GpgKeyring::from_blobs(&[("2x".into(), [armoured.clone(), armoured].concat())]);
    assert_eq!(two.unwrap().fingerprints(), [KEY, KEY]);
    assert_eq!(
        keyring(&["public-key-1.gpg", "public-key-2.gpg"])
            .unwrap()
            .fingerprints(),
        [KEY, KEY_WITH_PASSPHRASE]
    );
    for junk in [&b"This is invalid"[..], b""] {
        let error = GpgKeyring::from_blobs(&[("junk".into(), junk.to_vec())]).unwrap_err();
        assert!(matches!(error, GpgError::NoKeys(_)), "{error}");
    }
}

/// What a mechanism row expects: `Some((content prefix, primary, signing key))`, `None` = refused.
type MechanismExpectation = Option<(&'static str, &'static str, &'static str)>;

/// mechanism_test.go's verification rows with the test keyring (`pubring.gpg`):
/// `(signature file, expectation)`.
fn mechanism_rows() -> Vec<(&'static str, MechanismExpectation)> {
    let subkey = Some(("{\"critical\"", PRIMARY_WITH_SUBKEY, SUBKEY_OF_PRIMARY));
    vec![
        (
            "invalid-blob.signature",
            Some(("This is not JSON\n", KEY, KEY)),
        ),
        (
            "invalid-blob.signature-v3",
            Some(("This is not JSON\n", KEY, KEY)),
        ),
        ("subkey.signature", subkey),
        ("subkey.signature-v3", subkey),
        ("image.signature", Some(("{\"critical\"", KEY, KEY))),
        (
            "dir-img-valid/signature-1",
            Some(("{\"critical\"", KEY, KEY)),
        ),
        ("unsigned-literal.signature", None),
        ("unsigned-encrypted.signature", None),
        ("expired.signature", None),
        ("corrupt.signature", None),
        ("corrupt.signature-v3", None),
        ("unknown-key.signature", None),
        ("unknown-key.signature-v3", None),
        ("subkey-revoked.signature", None),
        ("subkey-revoked.signature-v3", None),
        ("unknown-cosign-key.signature", None),
    ]
}

#[test]
fn mechanism_verification_rows() {
    let ring = keyring(&["pubring.gpg"]).unwrap();
    let now = cfsgate_verifier::evaluate::unix_now();
    for (file, expected) in mechanism_rows() {
        let bytes = std::fs::read(fixtures().join(file)).unwrap();
        match (ring.verify(&bytes, now), expected) {
            (Ok(v), Some((content, primary, signer))) => {
                assert!(v.content.starts_with(content.as_bytes()), "{file}");
                assert_eq!(
                    (v.primary.as_str(), v.signing_key.as_str()),
                    (primary, signer),
                    "{file}"
                );
            }
            (Err(_), None) => {}
            (got, want) => panic!("{file}: got {got:?}, want {want:?}"),
        }
    }
    for junk in [&b""[..], b"invalid signature"] {
        assert!(ring.verify(junk, now).is_err());
    }
}

/// gpg's verdict on `signature` with only `keys` imported: `Some(VALIDSIG primary)`.
fn gpg_verdict(keys: &str, signature: &str) -> Option<String> {
    let home = tempfile::tempdir().unwrap();
    let gpg = |args: &[&str]| {
        Command::new("gpg")
            .arg("--homedir")
            .arg(home.path())
            .args(["--batch", "--status-fd", "2"])
            .args(args)
            .output()
            .unwrap()
    };
    assert!(gpg(&["--import", fixtures().join(keys).to_str().unwrap()])
        .status
        .success());
    let out = gpg(&["--decrypt", fixtures().join(signature).to_str().unwrap()]);
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", home.path())
        .args(["--kill", "gpg-agent"])
        .status();
    let status = String::from_utf8_lossy(&out.stderr).to_string();
    status
        .lines()
        .find_map(|l| l.strip_prefix("[GNUPG:] VALIDSIG "))
        .filter(|_| status.contains("[GNUPG:] GOODSIG "))
        .and_then(|rest| rest.split_whitespace().nth(9).map(str::to_string))
}

#[test]
fn gpg_itself_agrees_on_every_mechanism_row() {
    if Command::new("gpg").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "gpg must be installed (scripts/setup)"
        );
        eprintln!("gpg not installed: skipped");
        return;
    }
    for (file, expected) in mechanism_rows() {
        let got = gpg_verdict("pubring.gpg", file);
        assert_eq!(got.as_deref(), expected.map(|e| e.1), "gpg on {file}");
    }
}
