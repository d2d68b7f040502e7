//! Offline verification of a sigstore [`Bundle`] against a whole `trusted_root.json`
//! ([`TrustedRoot`]): keyless (a Fulcio certificate, an identity and its OIDC issuer) or by a
//! known key, with the times of signing vouched for by the log (SET) or by RFC 3161 timestamps.
//! This is what `cfsgate sigstore verify-bundle` runs (sigstore's conformance protocol).
//!
//! Checks, in this order; each failure is its own [`BundleError`]:
//!
//! | # | check |
//! |---|---|
//! | 1 | the bundle's signer is what was asked for: a certificate (v0.3 `certificate`, v0.1/0.2 `x509CertificateChain` whose first certificate signs, and which carries no self-signed root) for an identity, a `publicKey` for a key |
//! | 2 | the signature over the artifact (message signature or DSSE + in-toto subject) verifies with the certificate's (or the given) key |
//! | 3 | at least one tlog entry, each checked by [`crate::bundle_tlog`] (body, SET, inclusion proof, checkpoint) |
//! | 4 | every RFC 3161 timestamp verifies ([`crate::tsa`]) over the signature bytes |
//! | 5 | at least one verified time of signing: a SET's integrated time or a timestamp's time; Rekor v2 entries (no integrated time) are judged in their log key's window at every timestamp |
//! | 6 | certificate: at every verified time, it chains to a Fulcio CA of the root whose `validFor` holds that time, every certificate of the chain valid then (so the leaf's 10-minute validity holds the signing) |
//! | 7 | certificate: one embedded SCT verifies with a CT log of the root ([`crate::sct`]) |
//! | 8 | certificate: a SAN (URI, e-mail or DNS name) equals the identity, and the Fulcio OIDC issuer extension equals the issuer, exactly |

use cfsgate_keyring::PublicKey;
use cfsgate_policy::Timestamp;
use serde::Serialize;

use crate::bundle::{Bundle, BundleContent, SigningMaterial};
use crate::bundle_cert::{verify_chain, Certificate};
use crate::bundle_tlog::{check_entry, Signer};
use crate::bundle_verify::{check_content, dsse_payload, Artifact, BundleError};
use crate::sct::verify_embedded_sct;
use crate::trusted_root::TrustedRoot;
use crate::tsa::verify_timestamp;

/// What the bundle must have been signed by.
#[derive(Debug, Clone, Copy)]
pub enum Expected<'a> {
    /// A key known out of band.
    Key(&'a PublicKey),
    /// A Fulcio certificate for this identity (SAN) from this OIDC issuer.
    Identity {
        /// The SAN value: a URI (a workflow), an e-mail address, a DNS name.
        identity: &'a str,
        /// The OIDC issuer URL.
        issuer: &'a str,
    },
}

/// A time of signing some part of the bundle vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SigningTime {
    /// Unix seconds.
    pub time: i64,
    /// Who vouches: `tlog entry N (SET)` or `timestamp authority URI`.
    pub source: String,
}

/// A verified bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedSigning {
    /// The signer: the key's id, or the certificate's identity and issuer.
    pub signer: String,
    /// The verified times of signing.
    pub times: Vec<SigningTime>,
    /// The verified entries' log indexes.
    pub log_indexes: Vec<u64>,
    /// For DSSE: the payload (an in-toto statement).
    #[serde(skip)]
    pub dsse_payload: Option<Vec<u8>>,
}

fn cert_error(what: &str) -> impl Fn(crate::bundle_cert::CertError) -> BundleError + '_ {
    move |e| BundleError::Certificate(format!("{what}: {e}"))
}

/// The signing certificate of a certificate bundle, refusing a chain that carries a root.
fn leaf_certificate(certificates: &[Vec<u8>]) -> Result<Certificate, BundleError> {
    let (leaf, rest) = certificates
        .split_first()
        .ok_or_else(|| BundleError::Certificate("the bundle's chain is empty".into()))?;
    for (i, der) in rest.iter().enumerate() {
        let cert = Certificate::from_der(der).map_err(cert_error("a chain certificate"))?;
        if cert.is_ca() && cert.subject() == cert.issuer() {
            return Err(BundleError::Certificate(format!(
                "the bundle's chain carries a root certificate ({}, position {}): roots come from the trusted root only",
                cert.subject(),
                i + 1
            )));
        }
    }
    // Fulcio leaves have an empty subject and a critical SAN, whose identity is matched here
    // (check 8), as containers/image and sigstore clients do.
    let leaf = Certificate::from_der(leaf)
        .map_err(cert_error("the leaf"))?
        .accepting_critical_san();
    if leaf.is_ca() {
        return Err(BundleError::Certificate(
            "the first certificate is a CA, not a signing certificate".into(),
        ));
    }
    Ok(leaf)
}

/// The chain of `leaf` to a Fulcio CA of `root` valid at `at` (leaf first, root last).
fn chain_at(leaf: &Certificate, root: &TrustedRoot, at: i64) -> Result<Vec<Certificate>, String> {
    let mut reasons = Vec::new();
    for ca in &root.certificate_authorities {
        if !ca.validity.contains(at) {
            reasons.push(format!("{}: not valid at {}", ca.uri, Timestamp(at)));
            continue;
        }
        let certs = ca
            .chain
            .iter()
            .map(|der| Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: a certificate does not parse: {e}", ca.uri))?;
        let Some((top, intermediates)) = certs.split_last() else {
            continue;
        };
        match verify_chain(
            leaf,
            intermediates,
            std::slice::from_ref(top),
            Timestamp(at),
        ) {
            Ok(chain) => return Ok(chain),
            Err(e) => reasons.push(format!("{}: {e}", ca.uri)),
        }
    }
    if reasons.is_empty() {
        reasons.push("the trusted root has no certificate authority".into());
    }
    Err(format!(
        "no chain to a trusted CA at {}: {}",
        Timestamp(at),
        reasons.join("; ")
    ))
}

fn check_identity(leaf: &Certificate, identity: &str, issuer: &str) -> Result<(), BundleError> {
    let sans: Vec<&String> = leaf
        .san_uris()
        .iter()
        .chain(leaf.san_emails())
        .chain(leaf.san_dns_names())
        .collect();
    if !sans.iter().any(|s| s.as_str() == identity) {
        return Err(BundleError::IdentityMismatch {
            found: format!(
                "identity {}",
                sans.iter()
                    .map(|s| format!("{s:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            wanted: format!("{identity:?}"),
        });
    }
    let found = leaf
        .fulcio_oidc_issuer()
        .map_err(cert_error("its OIDC issuer"))?;
    if found != issuer {
        return Err(BundleError::IdentityMismatch {
            found: format!("OIDC issuer {found:?}"),
            wanted: format!("{issuer:?}"),
        });
    }
    Ok(())
}

/// The bundle's signature bytes (the message signature, or the envelope's one signature).
fn signature_bytes(bundle: &Bundle) -> Result<&[u8], BundleError> {
    match &bundle.content {
        BundleContent::MessageSignature { signature, .. } => Ok(signature),
        BundleContent::Dsse(envelope) => match envelope.signatures.as_slice() {
            [signature] => Ok(signature),
            other => Err(BundleError::Dsse(format!(
                "{} signatures, exactly one is expected",
                other.len()
            ))),
        },
    }
}

/// Verifies `bundle` over `artifact` for `expected` against `root` (see the module table).
pub fn verify_bundle(
    bundle: &Bundle,
    artifact: Artifact,
    expected: Expected<'_>,
    root: &TrustedRoot,
    now: i64,
) -> Result<VerifiedSigning, BundleError> {
    // 1. The signer.
    let leaf = match (&bundle.signer, expected) {
        (SigningMaterial::Certificates(certs), Expected::Identity { .. }) => {
            Some(leaf_certificate(certs)?)
        }
        (SigningMaterial::PublicKey { .. }, Expected::Key(_)) => None,
        (SigningMaterial::PublicKey { .. }, Expected::Identity { .. }) => {
            return Err(BundleError::SignerKind(
                "the bundle is signed with a key, not a certificate: verifying it needs that key"
                    .into(),
            ))
        }
        (SigningMaterial::Certificates(_), Expected::Key(_)) => {
            return Err(BundleError::SignerKind(
                "the bundle is signed with a certificate, not a key: verifying it needs an identity and issuer"
                    .into(),
            ))
        }
    };
    let leaf_key = leaf
        .as_ref()
        .map(|l| l.public_key().map_err(cert_error("its key")))
        .transpose()?;
    let (key, signer) = match (&leaf, &leaf_key, expected) {
        (Some(leaf), Some(key), _) => (key, Signer::Certificate { der: leaf.der() }),
        (_, _, Expected::Key(key)) => (key, Signer::Key(key)),
        _ => return Err(BundleError::Certificate("no key".into())),
    };
    // 2. The signature over the artifact.
    check_content(bundle, artifact, key)?;
    let signature = signature_bytes(bundle)?;
    // 3. The log entries.
    if bundle.tlog_entries.is_empty() {
        return Err(BundleError::NoTlogEntry);
    }
    let digest: [u8; 32] = artifact.sha256();
    let mut times = Vec::new();
    let mut v2_logs = Vec::new();
    let mut log_indexes = Vec::new();
    for (i, entry) in bundle.tlog_entries.iter().enumerate() {
        let outcome = check_entry(entry, bundle, &digest, signature, signer, &root.logs, now)?;
        if let Some(time) = outcome.set_time {
            times.push(SigningTime {
                time,
                source: format!("tlog entry {i} (SET)"),
            });
        }
        if outcome.rekor_v2 {
            v2_logs.push((entry.log_index, outcome.log_index_in_root));
        }
        log_indexes.push(entry.log_index);
    }
    // 4. The timestamps.
    let mut stamped = Vec::new();
    for (index, response) in bundle.timestamps.iter().enumerate() {
        let verified = verify_timestamp(response, signature, &root.timestamp_authorities)
            .map_err(|reason| BundleError::Timestamp { index, reason })?;
        stamped.push(verified.time);
        times.push(SigningTime {
            time: verified.time,
            source: format!("timestamp authority {}", verified.authority),
        });
    }
    // 5. A time of signing.
    if times.is_empty() {
        return Err(BundleError::NoVerifiedTime);
    }
    for (index, log) in v2_logs {
        let log = &root.logs[log];
        if let Some(time) = stamped.iter().find(|t| !log.valid_at(**t)) {
            return Err(BundleError::OutsideLogValidity { index, time: *time });
        }
    }
    let signer_name = match (&leaf, expected) {
        (Some(leaf), Expected::Identity { identity, issuer }) => {
            // 6. The chain at every time; 7. the SCT; 8. the identity.
            let mut chain = Vec::new();
            for t in &times {
                if !leaf.valid_at(Timestamp(t.time)) {
                    return Err(BundleError::OutsideCertificateValidity {
                        which: if t.source.ends_with("(SET)") {
                            "integrated"
                        } else {
                            "timestamp"
                        },
                        time: Timestamp(t.time),
                    });
                }
                chain = chain_at(leaf, root, t.time).map_err(BundleError::Certificate)?;
            }
            let issuer_cert = chain.get(1).ok_or_else(|| {
                BundleError::Certificate("the leaf is its own root: no issuer for its SCT".into())
            })?;
            verify_embedded_sct(leaf.der(), issuer_cert.spki_der(), &root.ct_logs)
                .map_err(|e| BundleError::Certificate(format!("its SCT: {e}")))?;
            check_identity(leaf, identity, issuer)?;
            format!("{identity} ({issuer})")
        }
        _ => format!("key {}", key.key_id().short()),
    };
    Ok(VerifiedSigning {
        signer: signer_name,
        times,
        log_indexes,
        dsse_payload: dsse_payload(bundle),
    })
}
