//! Signatures made by `sign_dir_image`: checked by openssl and python (independent of our
//! parser) and by our verifier; then each tampering is rejected with its own reason.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use cfsgate_keyring::{KeyType, PrivateKey, PublicKey};
use cfsgate_verifier::{sign_dir_image, sigstore::SigstoreSignature, Decision, SignatureOutcome};
use common::{
    accepted_identities, evaluate_dir, fixture_image, only_reason, sigstore_requirement,
    NO_TRUSTED_SIGNER, NO_VALID_SIGNATURE,
};

const IDENTITY: &str = "registry.example.com/team/app";

/// A fresh `dir:` image with its own manifest bytes.
fn image_with_manifest(manifest: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("manifest.json"), manifest).expect("manifest");
    dir
}

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

/// Payload and signature bytes decoded from a signature file by python's json and base64.
fn python_decode(signature_file: &Path, out: &Path) -> (PathBuf, PathBuf) {
    let payload = out.join("payload.bin");
    let sig = out.join("sig.bin");
    let script = r#"
import base64, json, sys
data = open(sys.argv[1], 'rb').read()
assert data.startswith(b'\x00sigstore-json\n'), 'prefix'
doc = json.loads(data[len(b'\x00sigstore-json\n'):])
assert doc['mimeType'] == 'application/vnd.dev.cosign.simplesigning.v1+json', doc['mimeType']
open(sys.argv[2], 'wb').write(base64.b64decode(doc['payload'], validate=True))
open(sys.argv[3], 'wb').write(base64.b64decode(doc['annotations']['dev.cosignproject.cosign/signature'], validate=True))
"#;
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(signature_file)
        .arg(&payload)
        .arg(&sig)
        .status()
        .expect("python3");
    assert!(
        status.success(),
        "python could not decode {}",
        signature_file.display()
    );
    (payload, sig)
}

/// `critical` fields read by python, with the manifest's sha256 from hashlib.
fn python_check_payload(payload: &Path, manifest: &Path, identity: &str) {
    let script = r#"
import hashlib, json, sys
p = json.load(open(sys.argv[1]))
c = p['critical']
assert set(c) == {'identity', 'image', 'type'}, c
assert c['type'] == 'cosign container image signature'
assert c['identity']['docker-reference'] == sys.argv[3], c['identity']
want = 'sha256:' + hashlib.sha256(open(sys.argv[2], 'rb').read()).hexdigest()
assert c['image']['docker-manifest-digest'] == want, (c['image'], want)
assert p['optional']['creator'] == 'cfsgate'
assert isinstance(p['optional']['timestamp'], int)
"#;
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(payload)
        .arg(manifest)
        .arg(identity)
        .status()
        .expect("python3");
    assert!(status.success(), "payload check failed");
}

fn write_pub(key: &PrivateKey, dir: &Path) -> PathBuf {
    let path = dir.join("pub.pem");
    std::fs::write(&path, key.public_key().to_pem()).expect("pub");
    path
}

fn openssl(args: &[&std::ffi::OsStr]) -> bool {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    out.status.success()
}

/// The image at `dir` as `cfsgate verify --reference IDENTITY:v1` judges it under a policy
/// trusting `keys` (`matchRepository`).
fn verify_with(dir: &Path, keys: &[PublicKey], reference: &str) -> Decision {
    let key_dir = tempfile::tempdir().expect("tempdir");
    let key_files: Vec<PathBuf> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let path = key_dir.path().join(format!("key-{i}.pub"));
            std::fs::write(&path, key.to_pem()).expect("write key");
            path
        })
        .collect();
    evaluate_dir(
        dir,
        reference,
        &sigstore_requirement(&key_files, "matchRepository"),
    )
    .unwrap_or_else(|e| panic!("{} could not be evaluated: {e}", dir.display()))
}

fn verify(dir: &Path, key: &PublicKey) -> Decision {
    verify_with(dir, std::slice::from_ref(key), &format!("{IDENTITY}:v1"))
}

fn only_outcome(verdict: &Decision) -> &SignatureOutcome {
    match &verdict.signature_outcomes[..] {
        [one] => one,
        other => panic!("expected one signature, got {other:#?}"),
    }
}

fn rejection(verdict: &Decision) -> &str {
    only_reason(verdict)
}

#[test]
fn p256_signature_verifies_with_openssl_and_us() {
    let image = image_with_manifest(MANIFEST);
    let work = tempfile::tempdir().expect("tempdir");
    let key = PrivateKey::generate(KeyType::P256);
    let signed = sign_dir_image(image.path(), &key, IDENTITY).expect("sign");
    assert_eq!(signed.path, image.path().join("signature-1"));

    let (payload, sig) = python_decode(&signed.path, work.path());
    python_check_payload(&payload, &image.path().join("manifest.json"), IDENTITY);
    let public = write_pub(&key, work.path());
    assert!(openssl(&[
        "dgst".as_ref(),
        "-sha256".as_ref(),
        "-verify".as_ref(),
        public.as_os_str(),
        "-signature".as_ref(),
        sig.as_os_str(),
        payload.as_os_str(),
    ]));
    // The same check must fail on other bytes, or it proves nothing.
    std::fs::write(work.path().join("other.bin"), b"other").expect("write");
    assert!(!openssl(&[
        "dgst".as_ref(),
        "-sha256".as_ref(),
        "-verify".as_ref(),
        public.as_os_str(),
        "-signature".as_ref(),
        sig.as_os_str(),
        work.path().join("other.bin").as_os_str(),
    ]));

    let verdict = verify(image.path(), &key.public_key());
    assert!(verdict.admitted, "{verdict:#?}");
    assert_eq!(verdict.signers, vec![key.public_key().key_id()]);
    assert_eq!(accepted_identities(&verdict), vec![IDENTITY.to_string()]);
}

#[test]
fn ed25519_signature_verifies_with_openssl_and_us() {
    let image = image_with_manifest(MANIFEST);
    let work = tempfile::tempdir().expect("tempdir");
    let key = PrivateKey::generate(KeyType::Ed25519);
    let signed = sign_dir_image(image.path(), &key, IDENTITY).expect("sign");
    let (payload, sig) = python_decode(&signed.path, work.path());
    python_check_payload(&payload, &image.path().join("manifest.json"), IDENTITY);
    let public = write_pub(&key, work.path());
    let pkeyutl = |data: &Path| {
        openssl(&[
            "pkeyutl".as_ref(),
            "-verify".as_ref(),
            "-pubin".as_ref(),
            "-inkey".as_ref(),
            public.as_os_str(),
            "-rawin".as_ref(),
            "-in".as_ref(),
            data.as_os_str(),
            "-sigfile".as_ref(),
            sig.as_os_str(),
        ])
    };
    assert!(pkeyutl(&payload));
    assert!(!pkeyutl(&image.path().join("manifest.json")));
    assert!(verify(image.path(), &key.public_key()).admitted);
}

#[test]
fn second_signature_goes_to_signature_2_and_both_verify() {
    let image = image_with_manifest(MANIFEST);
    let first = PrivateKey::generate(KeyType::P256);
    let second = PrivateKey::generate(KeyType::Ed25519);
    sign_dir_image(image.path(), &first, IDENTITY).expect("sign 1");
    let signed = sign_dir_image(image.path(), &second, IDENTITY).expect("sign 2");
    assert_eq!(signed.path, image.path().join("signature-2"));
    let keys = [first.public_key(), second.public_key()];
    let verdict = verify_with(image.path(), &keys, IDENTITY);
    assert!(verdict.admitted, "{verdict:#?}");
    assert_eq!(verdict.signers, vec![keys[0].key_id(), keys[1].key_id()]);
}

#[test]
fn signing_refuses_a_bad_identity_and_a_missing_manifest() {
    let image = image_with_manifest(MANIFEST);
    let key = PrivateKey::generate(KeyType::P256);
    let err = sign_dir_image(image.path(), &key, "UPPER/Case").expect_err("bad identity");
    assert!(err.to_string().contains("UPPER/Case"), "{err}");
    let empty = tempfile::tempdir().expect("tempdir");
    let err = sign_dir_image(empty.path(), &key, IDENTITY).expect_err("no manifest");
    assert!(err.to_string().contains("manifest.json"), "{err}");
    assert!(!empty.path().join("signature-1").exists());
}

/// Signs, then rewrites signature-1 through `edit` (on the parsed wrapper).
fn signed_then_edited(
    key: &PrivateKey,
    edit: impl FnOnce(&mut SigstoreSignature),
) -> tempfile::TempDir {
    let image = image_with_manifest(MANIFEST);
    let signed = sign_dir_image(image.path(), key, IDENTITY).expect("sign");
    let bytes = std::fs::read(&signed.path).expect("read");
    let mut wrapper = SigstoreSignature::parse(&bytes, "test").expect("parse");
    edit(&mut wrapper);
    std::fs::write(&signed.path, wrapper.to_bytes()).expect("write");
    image
}

#[test]
fn tamper_payload_byte_flipped_is_untrusted() {
    let key = PrivateKey::generate(KeyType::P256);
    // Flip inside the docker-reference value: still valid JSON, so only the signature can
    // catch it.
    let image = signed_then_edited(&key, |w| {
        let at = w
            .payload
            .windows(IDENTITY.len())
            .position(|s| s == IDENTITY.as_bytes())
            .expect("identity in payload");
        w.payload[at + 9] ^= 0x01;
    });
    let verdict = verify(image.path(), &key.public_key());
    assert_eq!(rejection(&verdict), NO_TRUSTED_SIGNER);
    let SignatureOutcome::Untrusted { per_key } = only_outcome(&verdict) else {
        panic!("{verdict:#?}")
    };
    assert_eq!(per_key.len(), 1);
    assert_eq!(per_key[0].reason, "signature does not verify with this key");
}

#[test]
fn tamper_signature_byte_flipped_is_untrusted() {
    let key = PrivateKey::generate(KeyType::Ed25519);
    let image = signed_then_edited(&key, |w| w.signature[10] ^= 0x80);
    let verdict = verify(image.path(), &key.public_key());
    assert_eq!(rejection(&verdict), NO_TRUSTED_SIGNER);
    assert!(
        matches!(only_outcome(&verdict), SignatureOutcome::Untrusted { per_key } if per_key.len() == 1)
    );
}

#[test]
fn tamper_truncated_signature_is_malformed_for_the_key() {
    let key = PrivateKey::generate(KeyType::Ed25519);
    let image = signed_then_edited(&key, |w| w.signature.truncate(63));
    let verdict = verify(image.path(), &key.public_key());
    let SignatureOutcome::Untrusted { per_key } = only_outcome(&verdict) else {
        panic!("{verdict:#?}")
    };
    assert!(
        per_key[0].reason.contains("malformed signature"),
        "{per_key:?}"
    );
}

#[test]
fn untrusted_key_is_untrusted() {
    let key = PrivateKey::generate(KeyType::P256);
    let image = image_with_manifest(MANIFEST);
    sign_dir_image(image.path(), &key, IDENTITY).expect("sign");
    let stranger = PrivateKey::generate(KeyType::P256).public_key();
    let verdict = verify(image.path(), &stranger);
    assert_eq!(rejection(&verdict), NO_TRUSTED_SIGNER);
    let SignatureOutcome::Untrusted { per_key } = only_outcome(&verdict) else {
        panic!("{verdict:#?}")
    };
    assert_eq!(per_key[0].key_id, stranger.key_id());
}

#[test]
fn tamper_manifest_edited_is_a_digest_mismatch() {
    let key = PrivateKey::generate(KeyType::P256);
    let image = image_with_manifest(MANIFEST);
    sign_dir_image(image.path(), &key, IDENTITY).expect("sign");
    let mut edited = MANIFEST.to_vec();
    edited.push(b'\n');
    std::fs::write(image.path().join("manifest.json"), &edited).expect("edit");
    let verdict = verify(image.path(), &key.public_key());
    assert!(
        rejection(&verdict).starts_with(NO_VALID_SIGNATURE),
        "{verdict:#?}"
    );
    let SignatureOutcome::DigestMismatch { signed, actual, .. } = only_outcome(&verdict) else {
        panic!("{verdict:#?}")
    };
    assert_ne!(signed, actual);
    assert_eq!(actual, &cfsgate_verifier::sha256_of(&edited).to_string());
}

#[test]
fn replayed_signature_of_another_image_is_a_digest_mismatch() {
    let key = PrivateKey::generate(KeyType::P256);
    let other = fixture_image("dir-img-cosign-valid");
    let other_manifest = std::fs::read(other.path().join("manifest.json")).expect("read");
    let source = image_with_manifest(&other_manifest);
    let signed = sign_dir_image(source.path(), &key, IDENTITY).expect("sign");
    let target = image_with_manifest(MANIFEST);
    std::fs::copy(&signed.path, target.path().join("signature-1")).expect("replay");
    let verdict = verify(target.path(), &key.public_key());
    assert!(
        rejection(&verdict).starts_with(NO_VALID_SIGNATURE),
        "{verdict:#?}"
    );
    let SignatureOutcome::DigestMismatch { signed, .. } = only_outcome(&verdict) else {
        panic!("{verdict:#?}")
    };
    // sha256sum of the fixture manifest
    assert_eq!(
        signed,
        "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"
    );
}

/// A validly signed wrapper around arbitrary payload bytes.
fn image_with_signed_payload(key: &PrivateKey, payload: &[u8]) -> tempfile::TempDir {
    let image = image_with_manifest(MANIFEST);
    let wrapper = SigstoreSignature::new_simple_signing(payload.to_vec(), key.sign(payload));
    std::fs::write(image.path().join("signature-1"), wrapper.to_bytes()).expect("write");
    image
}

fn manifest_digest() -> String {
    cfsgate_verifier::sha256_of(MANIFEST).to_string()
}

#[test]
fn unknown_critical_field_is_a_bad_payload() {
    let key = PrivateKey::generate(KeyType::P256);
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{IDENTITY}"}},"image":{{"docker-manifest-digest":"{}"}},"type":"cosign container image signature","extra":1}},"optional":null}}"#,
        manifest_digest()
    );
    let image = image_with_signed_payload(&key, payload.as_bytes());
    let verdict = verify(image.path(), &key.public_key());
    assert!(
        rejection(&verdict).starts_with(NO_VALID_SIGNATURE),
        "{verdict:#?}"
    );
    let SignatureOutcome::BadPayload { reason, .. } = only_outcome(&verdict) else {
        panic!("{verdict:#?}")
    };
    assert!(reason.contains("unknown field `extra`"), "{reason}");
}

#[test]
fn the_same_payload_without_the_unknown_field_is_accepted() {
    // The control for the test above: the payload format itself is right.
    let key = PrivateKey::generate(KeyType::P256);
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{IDENTITY}"}},"image":{{"docker-manifest-digest":"{}"}},"type":"cosign container image signature"}},"optional":null}}"#,
        manifest_digest()
    );
    let image = image_with_signed_payload(&key, payload.as_bytes());
    assert!(verify(image.path(), &key.public_key()).admitted);
}

#[test]
fn signed_but_invalid_payloads_are_each_refused() {
    let key = PrivateKey::generate(KeyType::P256);
    let digest = manifest_digest();
    let cases: Vec<(String, &str)> = vec![
        (
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"{IDENTITY}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"atomic container signature"}}}}"#
            ),
            "critical.type",
        ),
        (
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"{IDENTITY}"}},"image":{{"docker-manifest-digest":"{}"}},"type":"cosign container image signature"}}}}"#,
                digest.to_uppercase().replace("SHA256", "sha256")
            ),
            "docker-manifest-digest",
        ),
        (
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"{IDENTITY}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":{{"timestamp":1.5}}}}"#
            ),
            "optional.timestamp",
        ),
        (
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"{IDENTITY}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"other":{{}}}}"#
            ),
            "unknown field `other`",
        ),
        (
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"{IDENTITY}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature","type":"cosign container image signature"}}}}"#
            ),
            "duplicate field `type`",
        ),
        (
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"{IDENTITY}"}},"type":"cosign container image signature"}}}}"#
            ),
            "missing field `image`",
        ),
    ];
    for (payload, expected) in cases {
        let image = image_with_signed_payload(&key, payload.as_bytes());
        let verdict = verify(image.path(), &key.public_key());
        let SignatureOutcome::BadPayload { reason, .. } = only_outcome(&verdict) else {
            panic!("{payload}: {verdict:#?}")
        };
        assert!(reason.contains(expected), "{payload}: {reason}");
    }
}

#[test]
fn an_unsigned_bad_payload_is_not_parsed() {
    // Garbage payload under a signature by an untrusted key: the verdict is about trust,
    // not about the payload, because the payload is never parsed.
    let key = PrivateKey::generate(KeyType::P256);
    let image = image_with_signed_payload(&key, b"not json at all");
    let stranger = PrivateKey::generate(KeyType::P256).public_key();
    let verdict = verify(image.path(), &stranger);
    assert!(matches!(
        only_outcome(&verdict),
        SignatureOutcome::Untrusted { .. }
    ));
}

#[test]
fn malformed_wrappers_are_named_and_rejected() {
    let key = PrivateKey::generate(KeyType::P256);
    let cases: [(&[u8], &str); 5] = [
        (b"\x00sigstore-json\n{", "malformed sigstore signature JSON"),
        (
            b"\x00sigstore-json\n{\"mimeType\":\"x\",\"payload\":\"!!\",\"annotations\":{\"dev.cosignproject.cosign/signature\":\"AA==\"}}",
            "`payload` is not valid base64",
        ),
        (
            b"\x00sigstore-json\n{\"mimeType\":\"x\",\"payload\":\"AA==\",\"annotations\":{}}",
            "lacks the `dev.cosignproject.cosign/signature` annotation",
        ),
        (
            b"\x00sigstore-json\n{\"mimeType\":\"x\",\"payload\":\"AA==\",\"annotations\":{\"a\":\"1\",\"a\":\"2\"}}",
            "duplicate annotation",
        ),
        (
            b"\x00sigstore-json\n{\"mimeType\":\"x\",\"payload\":\"AA==\",\"annotations\":{},\"extra\":1}",
            "unknown field `extra`",
        ),
    ];
    for (bytes, expected) in cases {
        let image = image_with_manifest(MANIFEST);
        let path = image.path().join("signature-1");
        std::fs::write(&path, bytes).expect("write");
        let verdict = verify(image.path(), &key.public_key());
        assert_eq!(rejection(&verdict), NO_TRUSTED_SIGNER);
        let SignatureOutcome::Malformed { reason } = only_outcome(&verdict) else {
            panic!("{verdict:#?}")
        };
        assert!(reason.contains(expected), "{reason}");
        assert!(reason.contains(&path.display().to_string()), "{reason}");
    }
}
