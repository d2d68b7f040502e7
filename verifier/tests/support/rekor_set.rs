//! Rekor entries and SETs crafted for tests, shared by `rekor.rs` and `keyless_attacks.rs`:
//! the `hashedrekord` body a log records for a signature, and the bundle whose SET a test's
//! Rekor key signs over the RFC 8785 canonical payload.

// Each test file uses a part of it.
#![allow(dead_code)]

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// The `hashedrekord` entry Rekor logs for `signature` over `payload` with `public_key_pem`
/// (a public key or a certificate, PEM).
pub fn hashedrekord_body(payload: &[u8], signature: &[u8], public_key_pem: &[u8]) -> Value {
    json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {
                "algorithm": "sha256",
                "value": hex::encode(Sha256::digest(payload)),
            }},
            "signature": {
                "content": B64.encode(signature),
                "publicKey": {"content": B64.encode(public_key_pem)},
            },
        },
    })
}

/// The bundle of a logged `body`: its `Payload`, and the SET `sign` makes over the payload's
/// RFC 8785 form (written by hand: keys in order, no whitespace; the strings are base64 and
/// hex, which JSON writes without escapes).
pub fn set_bundle(
    body: &Value,
    integrated_time: u64,
    log_index: u64,
    log_id: &str,
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Value {
    let body = B64.encode(body.to_string());
    let canonical = format!(
        r#"{{"body":"{body}","integratedTime":{integrated_time},"logID":"{log_id}","logIndex":{log_index}}}"#
    );
    let set = sign(canonical.as_bytes());
    json!({
        "SignedEntryTimestamp": B64.encode(set),
        "Payload": {
            "body": body,
            "integratedTime": integrated_time,
            "logIndex": log_index,
            "logID": log_id,
        },
    })
}
