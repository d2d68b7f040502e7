//! A bundle's transparency log entries, checked offline: the logged body describes exactly this
//! bundle, the SET (Rekor v1's signed promise), the inclusion proof and its checkpoint.
//!
//! | kind | content | what the body (`canonicalizedBody`) must log |
//! |---|---|---|
//! | `hashedrekord` 0.0.1 | message signature | `spec.data.hash` sha256 = the artifact's; `spec.signature.content` = the signature; `spec.signature.publicKey.content` = the signer (PEM key, or PEM certificate) |
//! | `hashedrekord` 0.0.2 (Rekor v2) | message signature | `spec.hashedRekordV002.data` SHA2_256 = the artifact's digest; `.signature.content` = the signature; `.signature.verifier` = the signer (`x509Certificate.rawBytes` or `publicKey.rawBytes`) |
//! | `hashedrekord` 0.0.2 (Rekor v2) | DSSE | the same, over sha256(PAE(payloadType, payload)) and the envelope's one signature |
//! | `dsse` 0.0.1 | DSSE | `spec.payloadHash` = sha256(payload); one of `spec.signatures[]` is the envelope's signature by the signer |
//! | `intoto` 0.0.2 | DSSE | `spec.content.payloadHash` = sha256(payload); one of `spec.content.envelope.signatures[]` is the envelope's signature by the signer |
//!
//! Then: the entry's log is in the trusted root (`logId`); its SET, when present, is the log
//! key's signature over the canonical `{body, integratedTime, logID, logIndex}`, its
//! `integratedTime` not after `now` and inside the log key's validity; its inclusion proof, when
//! present, leads from the body's RFC 6962 leaf hash to the proof's root, and the checkpoint
//! ([`crate::checkpoint`]) is signed by the log and names that root and tree size. Rekor v2
//! entries have no SET and must have a proof; any entry must have one or the other.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use cfsgate_keyring::PublicKey;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::bundle::{Bundle, BundleContent, InclusionProof, TlogEntry};
use crate::bundle_error::BundleError;
use crate::bundle_merkle::root_from_inclusion_proof;
use crate::checkpoint::verify_checkpoint;
use crate::rekor::{push_canonical_string, RekorKey};
use crate::trusted_root::TrustedLog;

/// Who the bundle says signed, as the log must have recorded it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Signer<'a> {
    /// A public key.
    Key(&'a PublicKey),
    /// A certificate (DER).
    Certificate {
        /// The certificate's DER.
        der: &'a [u8],
    },
}

/// What one verified entry vouches for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryOutcome {
    /// The SET-vouched integrated time (unix seconds), when the entry has a SET.
    pub set_time: Option<i64>,
    /// The entry's log, for windows judged later (Rekor v2: against the timestamps).
    pub log_index_in_root: usize,
    /// Whether the entry is a Rekor v2 one (`hashedrekord`/`dsse` 0.0.2).
    pub rekor_v2: bool,
}

/// Checks one entry (see the module table): `digest` is the artifact's sha256, `signature` the
/// bundle's signature bytes.
pub(crate) fn check_entry(
    entry: &TlogEntry,
    bundle: &Bundle,
    digest: &[u8; 32],
    signature: &[u8],
    signer: Signer<'_>,
    logs: &[TrustedLog],
    now: i64,
) -> Result<EntryOutcome, BundleError> {
    let index = entry.log_index;
    let log_index_in_root = logs
        .iter()
        .position(|log| log.id == entry.log_id)
        .ok_or_else(|| BundleError::UntrustedLog {
            index,
            log_id: hex::encode(entry.log_id),
        })?;
    let log = &logs[log_index_in_root];
    let body_mismatch = |reason: String| BundleError::BodyMismatch { index, reason };
    let rekor_v2 = matches!(
        (entry.kind.as_str(), entry.version.as_str()),
        ("hashedrekord" | "dsse", "0.0.2")
    );
    match (&bundle.content, entry.kind.as_str(), entry.version.as_str()) {
        (BundleContent::MessageSignature { .. }, "hashedrekord", "0.0.1") => {
            check_hashedrekord(&entry.body, digest, signature, signer).map_err(body_mismatch)?
        }
        (BundleContent::MessageSignature { .. }, "hashedrekord", "0.0.2") => {
            check_hashedrekord_v2(&entry.body, digest, signature, signer).map_err(body_mismatch)?
        }
        (BundleContent::Dsse(envelope), "hashedrekord", "0.0.2") => {
            let pae: [u8; 32] = Sha256::digest(envelope.pae()).into();
            check_hashedrekord_v2(&entry.body, &pae, signature, signer).map_err(body_mismatch)?
        }
        (BundleContent::Dsse(envelope), "dsse", "0.0.1") => {
            check_dsse_body(&entry.body, &envelope.payload, signature, signer)
                .map_err(body_mismatch)?
        }
        (BundleContent::Dsse(envelope), "intoto", "0.0.2") => {
            check_intoto_body(&entry.body, &envelope.payload, signature, signer)
                .map_err(body_mismatch)?
        }
        _ => {
            return Err(BundleError::WrongKind {
                index,
                kind: entry.kind.clone(),
                version: entry.version.clone(),
            })
        }
    }
    let mut set_time = None;
    if let Some(set) = &entry.set {
        if rekor_v2 {
            return Err(BundleError::SetInvalid { index });
        }
        let rekor_key = RekorKey::new(log.key.clone(), log.label.clone())
            .map_err(|_| BundleError::SetInvalid { index })?;
        let mut canonical = String::from("{\"body\":");
        push_canonical_string(&mut canonical, &BASE64.encode(&entry.body));
        canonical.push_str(&format!(
            ",\"integratedTime\":{},\"logID\":",
            entry.integrated_time
        ));
        push_canonical_string(&mut canonical, &hex::encode(entry.log_id));
        canonical.push_str(&format!(",\"logIndex\":{}}}", entry.log_index));
        if !rekor_key.verifies(canonical.as_bytes(), set) {
            return Err(BundleError::SetInvalid { index });
        }
        let at = i64::try_from(entry.integrated_time).unwrap_or(i64::MAX);
        if at > now {
            return Err(BundleError::IntegratedTimeInFuture {
                index,
                time: at,
                now,
            });
        }
        if !log.valid_at(at) {
            return Err(BundleError::OutsideLogValidity { index, time: at });
        }
        set_time = Some(at);
    }
    match &entry.inclusion_proof {
        Some(proof) => check_inclusion(entry, proof, log)?,
        None if rekor_v2 => {
            return Err(BundleError::InclusionProofInvalid {
                index,
                reason: "a Rekor v2 entry needs an inclusion proof".into(),
            })
        }
        None if entry.set.is_none() => return Err(BundleError::Unproven { index }),
        None => {}
    }
    Ok(EntryOutcome {
        set_time,
        log_index_in_root,
        rekor_v2,
    })
}

fn decode_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Result<&'a str, String> {
    let mut at = value;
    for part in path {
        at = at
            .get(part)
            .ok_or_else(|| format!("no {}", path.join(".")))?;
    }
    at.as_str()
        .ok_or_else(|| format!("{} is not a string", path.join(".")))
}

fn b64_at(value: &Value, path: &[&str]) -> Result<Vec<u8>, String> {
    BASE64
        .decode(str_at(value, path)?)
        .map_err(|e| format!("{} is not base64: {e}", path.join(".")))
}

/// The DER of the one PEM `CERTIFICATE` block of `pem`, if it is one.
fn pem_certificate(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
    let end = pem[start..].find("-----END CERTIFICATE-----")? + start;
    let text: String = pem[start..end].split_whitespace().collect();
    BASE64.decode(text).ok()
}

/// The logged PEM (base64 in the body) names the signer: the same certificate, or the same key.
fn same_signer(pem_base64: &str, signer: Signer<'_>) -> Result<(), String> {
    let pem = BASE64
        .decode(pem_base64)
        .map_err(|e| format!("logged key is not base64: {e}"))?;
    let text = String::from_utf8_lossy(&pem);
    match (pem_certificate(&text), signer) {
        (Some(logged), Signer::Certificate { der, .. }) if logged == der => Ok(()),
        (Some(_), Signer::Certificate { .. }) => Err("another certificate is logged".into()),
        (Some(_), Signer::Key(_)) => Err("a certificate is logged, not the key".into()),
        (None, Signer::Certificate { .. }) => Err("a key is logged, not the certificate".into()),
        (None, Signer::Key(key)) => {
            let logged = PublicKey::from_bytes(&pem, "logged key").map_err(|e| e.to_string())?;
            if logged.key_id() != key.key_id() {
                return Err("another key is logged".into());
            }
            Ok(())
        }
    }
}

fn check_hashedrekord(
    body: &[u8],
    digest: &[u8; 32],
    signature: &[u8],
    signer: Signer<'_>,
) -> Result<(), String> {
    let body = decode_json(body)?;
    if str_at(&body, &["spec", "data", "hash", "algorithm"])? != "sha256" {
        return Err("the logged hash is not sha256".into());
    }
    if str_at(&body, &["spec", "data", "hash", "value"])? != hex::encode(digest) {
        return Err("another artifact is logged".into());
    }
    if b64_at(&body, &["spec", "signature", "content"])? != signature {
        return Err("another signature is logged".into());
    }
    same_signer(
        str_at(&body, &["spec", "signature", "publicKey", "content"])?,
        signer,
    )
}

/// Rekor v2's `hashedrekord` 0.0.2 entry over `digest` (sha256).
fn check_hashedrekord_v2(
    body: &[u8],
    digest: &[u8; 32],
    signature: &[u8],
    signer: Signer<'_>,
) -> Result<(), String> {
    let body = decode_json(body)?;
    if str_at(&body, &["kind"])? != "hashedrekord" || str_at(&body, &["apiVersion"])? != "0.0.2" {
        return Err("the body is not a hashedrekord 0.0.2 entry".into());
    }
    let spec = body
        .get("spec")
        .and_then(|s| s.get("hashedRekordV002"))
        .ok_or("no spec.hashedRekordV002")?;
    if str_at(spec, &["data", "algorithm"])? != "SHA2_256" {
        return Err("the logged digest is not SHA2_256".into());
    }
    if b64_at(spec, &["data", "digest"])? != digest {
        return Err("another artifact is logged".into());
    }
    if b64_at(spec, &["signature", "content"])? != signature {
        return Err("another signature is logged".into());
    }
    let verifier = spec
        .get("signature")
        .and_then(|s| s.get("verifier"))
        .ok_or("no signature.verifier")?;
    match signer {
        Signer::Certificate { der, .. } => {
            if b64_at(verifier, &["x509Certificate", "rawBytes"])? != der {
                return Err("another certificate is logged".into());
            }
        }
        Signer::Key(key) => {
            let spki = b64_at(verifier, &["publicKey", "rawBytes"])?;
            let logged =
                PublicKey::from_spki_der(&spki, "logged key").map_err(|e| e.to_string())?;
            if logged.key_id() != key.key_id() {
                return Err("another key is logged".into());
            }
        }
    }
    Ok(())
}

fn check_payload_hash(hash: &Value, payload: &[u8]) -> Result<(), String> {
    if str_at(hash, &["algorithm"])? != "sha256"
        || str_at(hash, &["value"])? != hex::encode(Sha256::digest(payload))
    {
        return Err("another payload is logged".into());
    }
    Ok(())
}

fn check_dsse_body(
    body: &[u8],
    payload: &[u8],
    signature: &[u8],
    signer: Signer<'_>,
) -> Result<(), String> {
    let body = decode_json(body)?;
    check_payload_hash(&body["spec"]["payloadHash"], payload)?;
    let signatures = body["spec"]["signatures"]
        .as_array()
        .ok_or("no spec.signatures")?;
    for logged in signatures {
        let (Some(sig), Some(verifier)) =
            (logged["signature"].as_str(), logged["verifier"].as_str())
        else {
            continue;
        };
        if BASE64.decode(sig).ok().as_deref() == Some(signature)
            && same_signer(verifier, signer).is_ok()
        {
            return Ok(());
        }
    }
    Err("the envelope's signature by this signer is not logged".into())
}

/// Rekor v1's `intoto` 0.0.2: the envelope's signatures are base64 of the base64 text.
fn check_intoto_body(
    body: &[u8],
    payload: &[u8],
    signature: &[u8],
    signer: Signer<'_>,
) -> Result<(), String> {
    let body = decode_json(body)?;
    let content = &body["spec"]["content"];
    check_payload_hash(&content["payloadHash"], payload)?;
    let signatures = content["envelope"]["signatures"]
        .as_array()
        .ok_or("no spec.content.envelope.signatures")?;
    for logged in signatures {
        let (Some(sig), Some(key)) = (logged["sig"].as_str(), logged["publicKey"].as_str()) else {
            continue;
        };
        let once = BASE64.decode(sig).ok();
        let twice = once.as_ref().and_then(|b| BASE64.decode(b).ok());
        if (once.as_deref() == Some(signature) || twice.as_deref() == Some(signature))
            && same_signer(key, signer).is_ok()
        {
            return Ok(());
        }
    }
    Err("the envelope's signature by this signer is not logged".into())
}

fn check_inclusion(
    entry: &TlogEntry,
    proof: &InclusionProof,
    log: &TrustedLog,
) -> Result<(), BundleError> {
    let index = entry.log_index;
    let invalid = |reason: String| BundleError::InclusionProofInvalid { index, reason };
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(&entry.body);
    let leaf: [u8; 32] = hasher.finalize().into();
    let root = root_from_inclusion_proof(proof.log_index, proof.tree_size, leaf, &proof.hashes)
        .map_err(invalid)?;
    if root != proof.root_hash {
        return Err(invalid(
            "the proof does not lead from the entry to the root hash".into(),
        ));
    }
    let bad = |reason: String| BundleError::CheckpointInvalid { index, reason };
    let checkpoint = verify_checkpoint(&proof.checkpoint, log).map_err(bad)?;
    if checkpoint.size != proof.tree_size {
        return Err(bad(format!(
            "it names tree size {}, the proof {}",
            checkpoint.size, proof.tree_size
        )));
    }
    if checkpoint.root_hash != proof.root_hash {
        return Err(bad("it names another root hash than the proof".into()));
    }
    Ok(())
}
