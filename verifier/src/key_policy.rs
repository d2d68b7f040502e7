//! The one-scope policy `cfsgate verify --key FILE… | --keyring NAME` judges by, instead of a
//! policy file: the default scope requires a `sigstoreSigned` signature by one of the keys,
//! claiming an identity that matches the reference as asked, and optionally the composefs seal.
//!
//! | option | in the requirement |
//! |---|---|
//! | key files | `keyPaths`: the files' absolute paths (a file that cannot be resolved is an error) |
//! | keyring | `cfsgate.keys: [{keyring: NAME}]`: every key of that kernel keyring |
//! | identity match | `signedIdentity.type`: `matchRepository` (cosign signs the repository only), `matchExact`, `matchRepoDigestOrExact` |
//! | Rekor keys | `rekorPublicKeyPaths`: a signature counts only with a Rekor SET from one of them |
//! | require seal | a second requirement `{type: composefs, sealed: true}` |
//!
//! The policy is built as policy JSON and parsed by the same parser as a file, so it means
//! exactly what the same file would.

use std::path::{Path, PathBuf};

use cfsgate_policy::{
    load_policy_file, parse_policy, LoadError, Policy, PolicyError, DEFAULT_POLICY_PATH,
};
use serde_json::json;

/// What the policy trusts.
#[derive(Clone, Debug)]
pub struct KeyPolicy<'a> {
    /// Trusted public key files (used when `keyring` is `None`).
    pub keys: &'a [PathBuf],
    /// Trust every key of this kernel keyring instead.
    pub keyring: Option<&'a str>,
    /// The `signedIdentity` type (`matchRepository`, `matchExact`, `matchRepoDigestOrExact`).
    pub identity_match: &'static str,
    /// Rekor log public key files.
    pub rekor_keys: &'a [PathBuf],
    /// Also require the composefs seal.
    pub require_seal: bool,
}

/// The policy cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum KeyPolicyError {
    /// A key file cannot be resolved to an absolute path.
    #[error("cannot load {what} {}: {source}", path.display())]
    Key {
        /// `trusted key` or `Rekor key`.
        what: &'static str,
        /// The file as given.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The built policy does not parse (a bug, or a path the parser refuses).
    #[error("built-in policy: {0}")]
    Policy(#[from] PolicyError),
    /// Keys were given, but no identity for their signatures to claim.
    #[error("--key/--keyring need --reference NAME (the identity signatures must claim)")]
    NoReference,
    /// Rekor keys were given without the keys they would qualify.
    #[error("--rekor-key needs --key or --keyring (a policy file lists its own rekorPublicKey*)")]
    RekorWithoutKeys,
    /// The policy file named (or the default one) cannot be loaded.
    #[error(transparent)]
    File(#[from] LoadError),
}

/// `cfsgate verify`'s policy: the key policy when keys or a keyring are given (which then
/// need a reference, unless the image names its own), else the policy file (the default
/// [`DEFAULT_POLICY_PATH`] when none is named).
pub fn verify_policy(
    keys: &KeyPolicy<'_>,
    file: Option<&Path>,
    image: &str,
    reference: Option<&str>,
) -> Result<Policy, KeyPolicyError> {
    if !keys.keys.is_empty() || keys.keyring.is_some() {
        if reference.is_none() && !names_its_reference(image) {
            return Err(KeyPolicyError::NoReference);
        }
        return key_policy(keys);
    }
    if !keys.rekor_keys.is_empty() {
        return Err(KeyPolicyError::RekorWithoutKeys);
    }
    Ok(load_policy_file(
        file.unwrap_or(Path::new(DEFAULT_POLICY_PATH)),
    )?)
}

fn absolute(what: &'static str, paths: &[PathBuf]) -> Result<Vec<String>, KeyPolicyError> {
    paths
        .iter()
        .map(|p| {
            p.canonicalize()
                .map(|p| p.display().to_string())
                .map_err(|source| KeyPolicyError::Key {
                    what,
                    path: p.clone(),
                    source,
                })
        })
        .collect()
}

/// Whether an image reference names the identity it is judged as by itself (a
/// `containers-storage:` image named by NAME is judged as NAME, see [`crate::cstorage`]), so
/// that a key policy needs no separate reference.
pub fn names_its_reference(image: &str) -> bool {
    use cfsgate_oci::cstorage::{is_storage_reference, ImageSpec, StorageRef};
    is_storage_reference(image)
        && StorageRef::parse(image).is_ok_and(|r| matches!(r.image, ImageSpec::Named { .. }))
}

/// Build the policy (see the module table).
pub fn key_policy(request: &KeyPolicy<'_>) -> Result<Policy, KeyPolicyError> {
    let mut requirement = json!({
        "type": "sigstoreSigned",
        "signedIdentity": {"type": request.identity_match},
    });
    match request.keyring {
        Some(keyring) => requirement["cfsgate"] = json!({"keys": [{"keyring": keyring}]}),
        None => requirement["keyPaths"] = json!(absolute("trusted key", request.keys)?),
    }
    if !request.rekor_keys.is_empty() {
        requirement["rekorPublicKeyPaths"] = json!(absolute("Rekor key", request.rekor_keys)?);
    }
    let mut requirements = vec![requirement];
    if request.require_seal {
        requirements.push(json!({"type": "composefs", "sealed": true}));
    }
    let text = json!({ "default": requirements }).to_string();
    Ok(parse_policy(text.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_trusted_by_absolute_path_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("k.pub");
        let private = cfsgate_keyring::PrivateKey::generate(cfsgate_keyring::KeyType::Ed25519);
        std::fs::write(&key, private.public_key().to_pem()).expect("write");
        let keys = [key.clone()];
        let request = KeyPolicy {
            keys: &keys,
            keyring: None,
            identity_match: "matchRepository",
            rekor_keys: &[],
            require_seal: true,
        };
        let policy = key_policy(&request).expect("policy");
        let text = cfsgate_policy::to_json(&policy);
        assert!(
            text.contains(&key.canonicalize().expect("abs").display().to_string()),
            "{text}"
        );
        assert!(text.contains("\"composefs\""), "{text}");
        let missing = [Path::new("/nonexistent/k.pub").to_path_buf()];
        let error = key_policy(&KeyPolicy {
            keys: &missing,
            ..request
        })
        .expect_err("missing key");
        assert!(
            error
                .to_string()
                .starts_with("cannot load trusted key /nonexistent/k.pub: "),
            "{error}"
        );
    }

    #[test]
    fn verify_takes_keys_with_a_reference_or_a_policy_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("k.pub");
        let private = cfsgate_keyring::PrivateKey::generate(cfsgate_keyring::KeyType::P256);
        std::fs::write(&key, private.public_key().to_pem()).expect("write");
        let keys = [key];
        let with_keys = KeyPolicy {
            keys: &keys,
            keyring: None,
            identity_match: "matchExact",
            rekor_keys: &[],
            require_seal: false,
        };
        let none = KeyPolicy {
            keys: &[],
            ..with_keys.clone()
        };
        let err = verify_policy(&with_keys, None, "oci:/l:v1", None).expect_err("no reference");
        assert!(matches!(err, KeyPolicyError::NoReference), "{err}");
        let by_keys = verify_policy(&with_keys, None, "oci:/l:v1", Some("r.example/a"));
        assert!(cfsgate_policy::to_json(&by_keys.expect("key policy")).contains("matchExact"));
        // A named containers-storage image is judged as its own name.
        assert!(verify_policy(&with_keys, None, "containers-storage:r.example/a:v1", None).is_ok());

        let rekor = [dir.path().join("rekor.pub")];
        let rekor_only = KeyPolicy {
            rekor_keys: &rekor,
            ..none.clone()
        };
        let err = verify_policy(&rekor_only, None, "oci:/l", Some("r/a")).expect_err("rekor");
        assert!(matches!(err, KeyPolicyError::RekorWithoutKeys), "{err}");

        let file = dir.path().join("policy.json");
        std::fs::write(&file, br#"{"default":[{"type":"reject"}]}"#).expect("write");
        let from_file = verify_policy(&none, Some(&file), "oci:/l", None).expect("file policy");
        assert!(cfsgate_policy::to_json(&from_file).contains("reject"));
        let missing = dir.path().join("missing.json");
        let err = verify_policy(&none, Some(&missing), "oci:/l", None).expect_err("missing");
        assert!(err.to_string().contains("missing.json"), "{err}");
    }

    #[test]
    fn only_a_named_storage_image_names_its_reference() {
        assert!(names_its_reference("containers-storage:example.com/app:v1"));
        assert!(!names_its_reference(&format!(
            "containers-storage:{}",
            "a".repeat(64)
        )));
        assert!(!names_its_reference("oci:/layout:v1"));
    }
}
