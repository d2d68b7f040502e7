//! Fuzz the Rekor bundle parser (`dev.sigstore.cosign/bundle` annotation) and the offline SET
//! verification built on it.
//!
//! | step | input | property beyond "no panic" |
//! |---|---|---|
//! | 1 | the bytes, through `rekor::parse_bundle` | an accepted payload's canonical JSON parses back (serde_json) to exactly the four fields `body`, `integratedTime`, `logID`, `logIndex` with the same values, and canonicalises again to the same bytes |
//! | 2 | the bytes, through `rekor::verify_bundle` with two fixed Rekor keys (Sigstore public-good, and [`FUZZ_REKOR_PRIVATE_KEY`]'s) and the artifact of the conformance fixture `dir-img-cosign-key-rekor-valid` | an accepted bundle yields an entry with the payload's time, index and logID |
//! | 3 | an accepted payload re-signed here with [`FUZZ_REKOR_PRIVATE_KEY`] (SET over its canonical JSON, logID = that key) | the SET verifies, so verification always reaches the body checks (random bytes never carry a valid SET, so step 2 alone would never fuzz them); the fixture's own body is accepted |
#![no_main]

use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use cfsgate_keyring::{KeyId, Passphrase, PrivateKey, PublicKey};
use cfsgate_verifier::rekor::{
    parse_bundle, verify_bundle, RekorError, RekorKey, RekorPayload, SignedArtifact,
};
use libfuzzer_sys::fuzz_target;

/// The Sigstore public-good Rekor key (`verifier/tests/data/rekor-public-good.pub`): the key
/// whose SET the seed bundle carries.
const REKOR_PUBLIC_GOOD: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2G2Y+2tabdTV5BcGiBIx0a9fAFwr
kBbmLSGtks4L3qX6yYY0zufBnhC8Ur/iy55GhWP/9A/bY2LhC30M9+RYtw==
-----END PUBLIC KEY-----
";

/// A P-256 key made for this target with `openssl genpkey -algorithm EC -pkeyopt
/// ec_paramgen_curve:P-256`; it protects nothing. Signing is deterministic (RFC 6979), so
/// every run of an input does the same.
const FUZZ_REKOR_PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgz90cyupikWfBkw6m
XCDHPDHbnlv0NbFTvfpFbrHaLyOhRANCAAREMnoZD8nas1FIlCgPLkg+8V0msSer
8dSgiX+Qee1hF+93jR8hV24LY6Ot7yYzbqtAVFN0qVIGifcC+hG0g7xE
-----END PRIVATE KEY-----
";

/// The cosign key that signed the fixture `dir-img-cosign-key-rekor-valid` (the key its
/// Rekor entry logs).
const FIXTURE_SIGNER: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEwOkOF9xpfG8ghueIhnZ66ooujwt1
+ReV3HupgKnGFYnEh3Hh1YTg5L6kN1Yakkt5WltRoav8/R3hpCtUO3Rldw==
-----END PUBLIC KEY-----
";

/// The fixture's cosign signature (annotation `dev.cosignproject.cosign/signature`).
const FIXTURE_SIGNATURE: &str =
    "MEUCIQClOJvH+5f5Gr+FLd1c+NS/a+TJQ+BDDoJcnlD0FKqI3AIgPVcMB5yb/JdtohCSzrxATJX6UcyWO+uAWO8Q7CNGnRQ=";

/// The fixture's simple-signing payload, base64 as in its signature file.
const FIXTURE_PAYLOAD: &str = "eyJjcml0aWNhbCI6eyJpZGVudGl0eSI6eyJkb2NrZXItcmVmZXJlbmNlIjoiMTkyLjE2OC42NC4yOjUwMDAvY29zaWduLXNpZ25lZC9rZXktMSJ9LCJpbWFnZSI6eyJkb2NrZXItbWFuaWZlc3QtZGlnZXN0Ijoic2hhMjU2OjA0ODk0NzRkYThlYTIyNDI2ZWNlODZhY2U2YzFjMDAyNmFiMmZkM2NkZmJiZDYyYjdlOTQ2NTAyNjZjMzdkOWEifSwidHlwZSI6ImNvc2lnbiBjb250YWluZXIgaW1hZ2Ugc2lnbmF0dXJlIn0sIm9wdGlvbmFsIjpudWxsfQ==";

/// The base64 `Payload.body` of the fixture's bundle: the one body the fixture's artifact
/// must be accepted with.
const FIXTURE_BODY: &str =
    "eyJhcGlWZXJzaW9uIjoiMC4wLjEiLCJraW5kIjoiaGFzaGVkcmVrb3JkIiwic3BlYyI6eyJkYXRhIjp7Imhhc2giOnsiYWxnb3JpdGhtIjoic2hhMjU2IiwidmFsdWUiOiI1ZjQxMDc3NDc2OWEyZWRkNGNkMWVlMzYwNzIyMjMwMThhYzkzNDk1Yzk2OGE0NDJkNDIwOGRhNWNhNzUzZjM3In19LCJzaWduYXR1cmUiOnsiY29udGVudCI6Ik1FVUNJUUNsT0p2SCs1ZjVHcitGTGQxYytOUy9hK1RKUStCRERvSmNubEQwRktxSTNBSWdQVmNNQjV5Yi9KZHRvaENTenJ4QVRKWDZVY3lXTyt1QVdPOFE3Q05HblJRPSIsInB1YmxpY0tleSI6eyJjb250ZW50IjoiTFMwdExTMUNSVWRKVGlCUVZVSk1TVU1nUzBWWkxTMHRMUzBLVFVacmQwVjNXVWhMYjFwSmVtb3dRMEZSV1VsTGIxcEplbW93UkVGUlkwUlJaMEZGZDA5clQwWTVlSEJtUnpobmFIVmxTV2h1V2pZMmIyOTFhbmQwTVFvclVtVldNMGgxY0dkTGJrZEdXVzVGYUROSWFERlpWR2MxVERaclRqRlpZV3RyZERWWGJIUlNiMkYyT0M5U00yaHdRM1JWVHpOU2JHUjNQVDBLTFMwdExTMUZUa1FnVUZWQ1RFbERJRXRGV1MwdExTMHRDZz09In19fX0=";

/// Keys and artifact, made once per process.
struct Fixed {
    signer: PrivateKey,
    signer_key: RekorKey,
    keys: Vec<RekorKey>,
    payload: Vec<u8>,
    signature: Vec<u8>,
    cosign_key: KeyId,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let signer = PrivateKey::from_pem(
            FUZZ_REKOR_PRIVATE_KEY.as_bytes(),
            "fuzz Rekor key",
            &Passphrase::Unavailable,
        )
        .expect("fuzz Rekor private key");
        let signer_key = RekorKey::new(signer.public_key(), "fuzz".into()).expect("P-256");
        let public_good = PublicKey::from_bytes(REKOR_PUBLIC_GOOD.as_bytes(), "public-good")
            .expect("public-good key");
        let public_good = RekorKey::new(public_good, "public-good".into()).expect("P-256");
        let cosign_key = PublicKey::from_bytes(FIXTURE_SIGNER.as_bytes(), "fixture signer")
            .expect("fixture signer key")
            .key_id();
        Fixed {
            keys: vec![public_good, signer_key.clone()],
            signer,
            signer_key,
            payload: BASE64.decode(FIXTURE_PAYLOAD).expect("payload base64"),
            signature: BASE64.decode(FIXTURE_SIGNATURE).expect("signature base64"),
            cosign_key,
        }
    })
}

/// Step 1: the canonical form parses back to the same four fields and is a fixed point.
fn check_canonical(payload: &RekorPayload) {
    let canonical = payload.canonical_json();
    let value: serde_json::Value = serde_json::from_slice(&canonical).unwrap_or_else(|e| {
        panic!(
            "canonical JSON does not parse ({e}): {}",
            String::from_utf8_lossy(&canonical)
        )
    });
    let object = value.as_object().expect("canonical JSON is an object");
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        ["body", "integratedTime", "logID", "logIndex"],
        "canonical JSON fields"
    );
    assert_eq!(object["body"].as_str(), Some(payload.body.as_str()), "body");
    assert_eq!(
        object["integratedTime"].as_u64(),
        Some(payload.integrated_time),
        "integratedTime"
    );
    assert_eq!(
        object["logID"].as_str(),
        Some(payload.log_id.as_str()),
        "logID"
    );
    assert_eq!(
        object["logIndex"].as_u64(),
        Some(payload.log_index),
        "logIndex"
    );
    let back: RekorPayload =
        serde_json::from_slice(&canonical).expect("canonical JSON is a RekorPayload");
    assert_eq!(&back, payload, "canonical JSON round trip");
    assert_eq!(
        back.canonical_json(),
        canonical,
        "canonical JSON is not a fixed point"
    );
}

fuzz_target!(|data: &[u8]| {
    let fixed = fixed();
    let artifact = SignedArtifact {
        payload: &fixed.payload,
        signature: &fixed.signature,
        signer: fixed.cosign_key,
    };
    let parsed = parse_bundle(data);

    // Step 2: the whole verification of the raw bytes.
    let verified = verify_bundle(data, &fixed.keys, &artifact);
    match (&parsed, &verified) {
        (Err(p), Err(v)) => assert_eq!(p, v, "verify_bundle fails unlike parse_bundle"),
        (Err(p), Ok(_)) => panic!("verify_bundle accepts what parse_bundle refuses: {p}"),
        (Ok(bundle), Ok(entry)) => {
            assert_eq!(
                u64::try_from(entry.integrated_time).ok(),
                Some(bundle.payload.integrated_time)
            );
            assert_eq!(entry.log_index, bundle.payload.log_index);
            assert_eq!(
                entry.log_id.to_hex(),
                bundle.payload.log_id.to_ascii_lowercase()
            );
        }
        (Ok(_), Err(_)) => {}
    }

    let Ok(bundle) = parsed else { return };
    check_canonical(&bundle.payload);

    // Step 3: the same payload with a SET that verifies, so the body checks are fuzzed.
    let mut payload = bundle.payload.clone();
    payload.log_id = hex::encode(fixed.signer_key.id.0);
    let set = fixed.signer.sign(&payload.canonical_json());
    let resigned = serde_json::json!({
        "SignedEntryTimestamp": BASE64.encode(set),
        "Payload": {
            "body": payload.body,
            "integratedTime": payload.integrated_time,
            "logIndex": payload.log_index,
            "logID": payload.log_id,
        }
    });
    let resigned = serde_json::to_vec(&resigned).expect("serialise");
    match verify_bundle(&resigned, &fixed.keys, &artifact) {
        Ok(entry) => {
            assert_eq!(entry.rekor_key, fixed.signer_key.id);
            assert_eq!(entry.log_index, payload.log_index);
        }
        Err(
            e @ (RekorError::Missing
            | RekorError::Malformed(_)
            | RekorError::IntegerTooLarge { .. }
            | RekorError::SetNotBase64(_)
            | RekorError::LogIdMalformed(_)
            | RekorError::NoRekorKeys
            | RekorError::SetSignatureInvalid { .. }
            | RekorError::LogIdMismatch { .. }),
        ) => panic!("a bundle re-signed with a configured key is refused before its body: {e}"),
        Err(e) => assert_ne!(
            payload.body, FIXTURE_BODY,
            "the fixture's own body is refused for the fixture's artifact: {e}"
        ),
    }
});
