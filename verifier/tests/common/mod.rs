//! Shared test helpers: the containers/image fixtures, read in place.
//!
//! The fixtures' symlinks are stored as small text files holding the link target (e.g.
//! `../dir-img-cosign-valid/signature-1`). [`fixture_image`] builds a temporary directory of
//! real symlinks to the resolved fixture files, so the verifier reads the fixture bytes in
//! place through an ordinary `dir:` layout.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use cfsgate_keyring::PublicKey;
use cfsgate_policy::{DockerReference, SignedIdentity};
use cfsgate_verifier::IdentityRequirement;

/// Longest symlink-as-text file: a relative path of a few components.
const MAX_LINK_TEXT: u64 = 256;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/containers-image")
}

/// Follows symlink-as-text files to the file that holds the data.
pub fn resolve(path: &Path) -> PathBuf {
    let mut current = path.to_path_buf();
    for _ in 0..8 {
        let Ok(meta) = std::fs::metadata(&current) else {
            return current;
        };
        if meta.len() > MAX_LINK_TEXT {
            return current;
        }
        let Ok(text) = std::fs::read_to_string(&current) else {
            return current;
        };
        if !text.starts_with("../") || text.contains('\n') {
            return current;
        }
        let target = current
            .parent()
            .expect("fixture has a parent")
            .join(text.trim());
        if !target.is_file() {
            return current;
        }
        current = target;
    }
    current
}

/// A temp dir mirroring fixture image `name` with real symlinks to the resolved files.
pub fn fixture_image(name: &str) -> tempfile::TempDir {
    let source = fixtures().join(name);
    let out = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(&source).expect("fixture dir") {
        let entry = entry.expect("entry");
        let target = resolve(&entry.path()).canonicalize().expect("canonical");
        std::os::unix::fs::symlink(&target, out.path().join(entry.file_name())).expect("symlink");
    }
    out
}

pub fn key(name: &str) -> PublicKey {
    PublicKey::from_file(&fixtures().join(name)).expect("fixture key")
}

pub fn require(rule: SignedIdentity, image_reference: &str) -> IdentityRequirement {
    IdentityRequirement {
        rule,
        image_reference: Some(
            DockerReference::parse_normalized(image_reference).expect("image reference"),
        ),
    }
}

/// A policy file written into `dir` (keys by absolute path) and loaded as cfsgate does.
pub fn write_policy(dir: &Path, json: &str) -> cfsgate_policy::Policy {
    let path = dir.join("policy.json");
    std::fs::write(&path, json).expect("write policy");
    cfsgate_policy::load_policy_file(&path).unwrap_or_else(|e| panic!("{e}\n{json}"))
}

/// A policy whose `docker` transport default scope is `requirements` (JSON array text),
/// rejecting everything else.
pub fn docker_default_policy(dir: &Path, requirements: &str) -> cfsgate_policy::Policy {
    write_policy(
        dir,
        &format!(
            r#"{{"default": [{{"type": "reject"}}], "transports": {{"docker": {{"": {requirements}}}}}}}"#
        ),
    )
}

/// Evaluates `image` as `reference` under `policy` now.
pub fn evaluate(
    image: &str,
    reference: Option<&str>,
    policy: &cfsgate_policy::Policy,
    repo: Option<&Path>,
) -> Result<cfsgate_verifier::Decision, cfsgate_verifier::EvalError> {
    cfsgate_verifier::evaluate(&cfsgate_verifier::EvaluationRequest {
        image,
        reference,
        policy,
        repo,
        now: cfsgate_verifier::evaluate::unix_now(),
        bundles: &[],
        store_root: false,
        built_key: None,
    })
}

/// A fixture key's absolute path as a JSON string.
pub fn fixture_key_json(name: &str) -> String {
    serde_json::to_string(
        &fixtures()
            .join(name)
            .canonicalize()
            .expect("key")
            .display()
            .to_string(),
    )
    .expect("json")
}

/// A fresh key pair written as `NAME.key` / `NAME.pub` into `dir`.
pub fn key_pair(
    dir: &Path,
    name: &str,
    key_type: cfsgate_keyring::KeyType,
) -> (cfsgate_keyring::PrivateKey, PathBuf) {
    let key = cfsgate_keyring::PrivateKey::generate(key_type);
    std::fs::write(
        dir.join(format!("{name}.key")),
        key.to_pkcs8_pem().expect("pem").as_bytes(),
    )
    .expect("write key");
    let public = dir.join(format!("{name}.pub"));
    std::fs::write(&public, key.public_key().to_pem()).expect("write pub");
    (key, public)
}

/// The reason `evaluate` gives for a `sigstoreSigned` requirement no trusted key signed for.
pub const NO_TRUSTED_SIGNER: &str = "sigstoreSigned: signed, but not by any trusted key";
/// The start of the reason when a trusted key signed, but not this image or identity.
pub const NO_VALID_SIGNATURE: &str =
    "sigstoreSigned: signed by a trusted key, but no such signature matches this image and identity";
/// The reason when the image carries no sigstore signature.
pub const UNSIGNED: &str = "sigstoreSigned: unsigned: no sigstore signature";

/// A `sigstoreSigned` requirement list: a signature by one of the keys in `key_files` with the
/// `signedIdentity` type `identity_type`.
pub fn sigstore_requirement(key_files: &[PathBuf], identity_type: &str) -> String {
    let paths: Vec<String> = key_files
        .iter()
        .map(|p| serde_json::to_string(&p.display().to_string()).expect("json"))
        .collect();
    format!(
        r#"[{{"type": "sigstoreSigned", "keyPaths": [{}], "signedIdentity": {{"type": "{identity_type}"}}}}]"#,
        paths.join(", ")
    )
}

/// The `dir:` image at `dir` evaluated as `reference` under a `docker` default scope of
/// `requirements`, as `cfsgate verify --reference` does; checks the decision is of that scope
/// and in enforce mode.
pub fn evaluate_dir(
    dir: &Path,
    reference: &str,
    requirements: &str,
) -> Result<cfsgate_verifier::Decision, cfsgate_verifier::EvalError> {
    let work = tempfile::tempdir().expect("tempdir");
    let policy = docker_default_policy(work.path(), requirements);
    let decision = evaluate(
        &format!("dir:{}", dir.display()),
        Some(reference),
        &policy,
        None,
    )?;
    assert_eq!(decision.transport, "docker", "{decision:#?}");
    assert_eq!(
        decision.would_reject, !decision.admitted,
        "enforce mode: {decision:#?}"
    );
    Ok(decision)
}

/// The one reason a rejected decision gives.
pub fn only_reason(decision: &cfsgate_verifier::Decision) -> &str {
    assert!(
        !decision.admitted,
        "expected a rejection, got {decision:#?}"
    );
    match &decision.reasons[..] {
        [one] => one,
        other => panic!("expected one reason, got {other:#?}"),
    }
}

/// The identities the accepted signatures of a decision claimed.
pub fn accepted_identities(decision: &cfsgate_verifier::Decision) -> Vec<String> {
    decision
        .signature_outcomes
        .iter()
        .filter_map(|o| match o {
            cfsgate_verifier::SignatureOutcome::Accepted { identity, .. } => Some(identity.clone()),
            _ => None,
        })
        .collect()
}
