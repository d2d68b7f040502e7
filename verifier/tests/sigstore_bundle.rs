//! Key-signed sigstore bundles from sigstore's public conformance suite, verified offline
//! against the production trusted root (real Rekor SETs, inclusion proofs and checkpoints),
//! by artifact bytes and by digest; and each part of a good bundle tampered with, refused
//! saying which part.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use cfsgate_keyring::PublicKey;
use cfsgate_verifier::bundle::{parse_bundle, BundleParseError};
use cfsgate_verifier::bundle_verify::{
    root_from_inclusion_proof, verify_bundle_with_key, Artifact, BundleError, TrustedRoot,
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

fn cases() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/sigstore-conformance/bundle-verify")
        .canonicalize()
        .unwrap()
}

fn production_root() -> TrustedRoot {
    let path = cases().join("../roots/production_trusted_root.json");
    TrustedRoot::parse(&std::fs::read(path).unwrap()).unwrap()
}

/// A day after the suite was made: SETs must not be in the future.
const NOW: i64 = 1_800_000_000;

fn verify(
    bundle: &[u8],
    artifact: Artifact,
    key: &PublicKey,
    root: &TrustedRoot,
) -> Result<(), BundleError> {
    let bundle = parse_bundle(bundle)?;
    verify_bundle_with_key(&bundle, artifact, key, &root.logs, NOW).map(drop)
}

#[test]
fn every_key_signed_conformance_case_reaches_its_outcome_by_path_and_by_digest() {
    let mut ran = 0;
    for entry in std::fs::read_dir(cases()).unwrap() {
        let dir = entry.unwrap().path();
        let key_file = dir.join("key.pub");
        if !key_file.exists() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let expect_ok = !name.ends_with("_fail");
        let artifact_path = if dir.join("artifact").exists() {
            dir.join("artifact")
        } else {
            cases().join("a.txt")
        };
        let artifact = std::fs::read(&artifact_path).unwrap();
        let root = if dir.join("trusted_root.json").exists() {
            TrustedRoot::parse(&std::fs::read(dir.join("trusted_root.json")).unwrap()).unwrap()
        } else {
            production_root()
        };
        let bundle = std::fs::read(dir.join("bundle.sigstore.json")).unwrap();
        // A key file that does not parse is a refusal too (managed-key-wrong-key_fail).
        let outcomes: Vec<Result<(), String>> = match PublicKey::from_file(&key_file) {
            Err(e) => vec![Err(e.to_string())],
            Ok(key) => [
                Artifact::Bytes(&artifact),
                Artifact::Sha256(Sha256::digest(&artifact).into()),
            ]
            .into_iter()
            .map(|a| verify(&bundle, a, &key, &root).map_err(|e| e.to_string()))
            .collect(),
        };
        for outcome in outcomes {
            assert_eq!(outcome.is_ok(), expect_ok, "{name}: {outcome:?}");
            eprintln!("{name}: {outcome:?}");
            ran += 1;
        }
    }
    assert!(ran >= 5, "only {ran} key-signed checks ran");
}

/// The happy bundle as JSON, to tamper with.
fn happy() -> (Value, PublicKey, Vec<u8>) {
    let dir = cases().join("managed-key-happy-path");
    let bundle =
        serde_json::from_slice(&std::fs::read(dir.join("bundle.sigstore.json")).unwrap()).unwrap();
    let key = PublicKey::from_file(&dir.join("key.pub")).unwrap();
    (bundle, key, std::fs::read(cases().join("a.txt")).unwrap())
}

fn tampered(edit: impl FnOnce(&mut Value)) -> Result<(), BundleError> {
    let (mut bundle, key, artifact) = happy();
    edit(&mut bundle);
    let bytes = serde_json::to_vec(&bundle).unwrap();
    verify(&bytes, Artifact::Bytes(&artifact), &key, &production_root())
}

/// Flips the first byte of a base64 field.
fn flip(value: &mut Value) {
    let mut bytes = B64.decode(value.as_str().unwrap()).unwrap();
    bytes[0] ^= 1;
    *value = Value::String(B64.encode(bytes));
}

#[test]
fn each_tampered_part_is_refused_saying_which() {
    assert_eq!(tampered(|_| {}), Ok(()), "control: the untouched bundle");
    let (_, key, _) = happy();
    let (bundle, _, _) = happy();
    let bytes = serde_json::to_vec(&bundle).unwrap();
    let root = production_root();
    assert_eq!(
        verify(&bytes, Artifact::Bytes(b"another artifact"), &key, &root),
        Err(BundleError::MessageDigestMismatch),
        "another artifact"
    );
    let entry = "/verificationMaterial/tlogEntries/0";
    let e = tampered(|b| flip(b.pointer_mut("/messageSignature/signature").unwrap()));
    assert_eq!(e, Err(BundleError::SignatureInvalid));
    let e = tampered(|b| {
        flip(
            b.pointer_mut(&format!("{entry}/inclusionPromise/signedEntryTimestamp"))
                .unwrap(),
        )
    });
    assert!(matches!(e, Err(BundleError::SetInvalid { .. })), "{e:?}");
    let e = tampered(|b| {
        flip(
            b.pointer_mut(&format!("{entry}/inclusionProof/hashes/3"))
                .unwrap(),
        )
    });
    assert!(
        matches!(e, Err(BundleError::InclusionProofInvalid { .. })),
        "{e:?}"
    );
    let e = tampered(|b| {
        let checkpoint = b
            .pointer_mut(&format!("{entry}/inclusionProof/checkpoint/envelope"))
            .unwrap();
        let text = checkpoint
            .as_str()
            .unwrap()
            .replacen("649584076", "649584077", 1);
        *checkpoint = Value::String(text);
    });
    assert!(
        matches!(&e, Err(BundleError::CheckpointInvalid { reason, .. }) if reason.contains("does not verify with the log key")),
        "{e:?}"
    );
    // The logged body of another signature: the SET no longer covers it.
    let e = tampered(|b| {
        let body = b
            .pointer_mut(&format!("{entry}/canonicalizedBody"))
            .unwrap();
        let mut json: Value =
            serde_json::from_slice(&B64.decode(body.as_str().unwrap()).unwrap()).unwrap();
        json["spec"]["data"]["hash"]["value"] = Value::String("00".repeat(32));
        *body = Value::String(B64.encode(serde_json::to_vec(&json).unwrap()));
    });
    assert!(matches!(e, Err(BundleError::BodyMismatch { .. })), "{e:?}");
    let e = tampered(|b| {
        b.pointer_mut(&format!("{entry}/logId/keyId"))
            .map(|v| *v = Value::String(B64.encode([7u8; 32])))
            .unwrap()
    });
    assert!(matches!(e, Err(BundleError::UntrustedLog { .. })), "{e:?}");
    let e = tampered(|b| {
        b["verificationMaterial"]["tlogEntries"] = Value::Array(Vec::new());
    });
    assert_eq!(e, Err(BundleError::NoTlogEntry));
    let e = tampered(|b| {
        b["mediaType"] = Value::String("application/vnd.dev.sigstore.bundle.v9+json".into())
    });
    assert!(
        matches!(
            e,
            Err(BundleError::Parse(BundleParseError::UnknownMediaType(_)))
        ),
        "{e:?}"
    );
    let e = tampered(|b| {
        b.pointer_mut(&format!("{entry}/logIndex"))
            .map(|v| *v = Value::String("-1".into()))
            .unwrap()
    });
    assert!(matches!(e, Err(BundleError::Parse(_))), "{e:?}");
    // Another key.
    let other = PublicKey::from_file(&cases().join("../../containers-image/cosign.pub")).unwrap();
    let (_, _, artifact) = happy();
    assert_eq!(
        verify(&bytes, Artifact::Bytes(&artifact), &other, &root),
        Err(BundleError::SignatureInvalid)
    );
}

#[test]
fn inclusion_proofs_follow_rfc_9162() {
    // A tree of three leaves: root = H(1, H(1, l0, l1), l2).
    let leaf = |n: u8| -> [u8; 32] { Sha256::digest([0, n]).into() };
    let node = |a: [u8; 32], b: [u8; 32]| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([1]);
        h.update(a);
        h.update(b);
        h.finalize().into()
    };
    let root = node(node(leaf(0), leaf(1)), leaf(2));
    assert_eq!(
        root_from_inclusion_proof(0, 3, leaf(0), &[leaf(1), leaf(2)]),
        Ok(root)
    );
    assert_eq!(
        root_from_inclusion_proof(2, 3, leaf(2), &[node(leaf(0), leaf(1))]),
        Ok(root)
    );
    assert!(root_from_inclusion_proof(3, 3, leaf(2), &[]).is_err());
    assert!(root_from_inclusion_proof(0, 3, leaf(0), &[leaf(1)]).is_err());
    assert_ne!(
        root_from_inclusion_proof(1, 3, leaf(0), &[leaf(1), leaf(2)]),
        Ok(root)
    );
}

#[test]
fn any_listed_key_may_sign() {
    let (bundle, key, artifact) = happy();
    let bundle = parse_bundle(&serde_json::to_vec(&bundle).unwrap()).unwrap();
    let other = PublicKey::from_file(&cases().join("../../containers-image/cosign.pub")).unwrap();
    let root = production_root();
    let verified = cfsgate_verifier::bundle_verify::verify_bundle_with_keys(
        &bundle,
        Artifact::Bytes(&artifact),
        &[other.clone(), key.clone()],
        &root.logs,
        NOW,
    )
    .unwrap();
    assert_eq!(verified.signer, key.key_id());
    assert_eq!(
        cfsgate_verifier::bundle_verify::verify_bundle_with_keys(
            &bundle,
            Artifact::Bytes(&artifact),
            &[other],
            &root.logs,
            NOW,
        ),
        Err(BundleError::SignatureInvalid)
    );
}
