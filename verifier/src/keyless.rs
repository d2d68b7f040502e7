//! `sigstoreSigned` with `fulcio` (keyless) or `pki`: a signature counts when the certificate
//! in its annotations chains to the policy's CAs and names the required subject, and that
//! certificate's key verified the payload — containers/image's `fulcio_cert.go`,
//! `pki_cert.go` and `policy_eval_sigstore.go`, in their order:
//!
//! | # | `fulcio` | `pki` |
//! |---|---|---|
//! | 1 | the `dev.sigstore.cosign/bundle` (SET) and `dev.sigstore.cosign/certificate` annotations are present | the certificate annotation is present |
//! | 2 | the SET verifies with a `rekorPublicKey*` key and logs this signature, payload and exactly this certificate ([`crate::rekor::verify_bundle_for_certificate`]); its `integratedTime` is the time judged at | no Rekor (the policy parser refuses Rekor keys with `pki`); the time judged at is the current time (Go's `Verify` without `CurrentTime`) |
//! | 3 | the annotation holds exactly one certificate; with `dev.sigstore.cosign/chain`, its certificates except the last (the root, which must come from the policy) are untrusted intermediates | the same, the policy's `caIntermediates*` added to the intermediates |
//! | 4 | the chain verifies to `caPath`/`caData` at the SET time for code signing ([`crate::cert::verify_chain`]), a critical SAN without DNS/e-mail/IP/URI names allowed | the chain verifies to `caRoots*` now |
//! | 5 | the Fulcio OIDC issuer equals `oidcIssuer`; `subjectEmail` is one of the SAN e-mails | `subjectEmail`, when set, is one of the SAN e-mails; `subjectHostname`, when set, matches ([`crate::cert::Certificate::matches_hostname`]) |
//! | 6 | the certificate's key verifies the signature over the exact payload: ECDSA (any curve) over SHA-256, ASN.1 DER; RSA PKCS#1 v1.5 SHA-256; Ed25519 (sigstore's `LoadVerifier` with SHA-256) | the same |
//! | 7 | payload, manifest digest and identity, as for key-signed signatures ([`crate::verify`]) | the same |
//!
//! CA files are read as trust files (type-checked, size-limited); the roots as Go's
//! `AppendCertsFromPEM` reads them (other blocks skipped, at least one certificate), the PKI
//! intermediates strictly.

use cfsgate_image::ContentSha256;
use cfsgate_keyring::PublicKey;
use cfsgate_policy::{CertSource, Fulcio, Pki, Timestamp, TrustRoot};
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use sha2::{Digest as _, Sha256};

use crate::cert::{verify_chain, Certificate};
use crate::chain::{JudgeContext, KeyAttempt, SignatureJudgement};
use crate::loaded::{FoundSignature, SignatureContent};
use crate::rekor::{verify_bundle_for_certificate, RekorKey};
use crate::sigstore::{
    SigstoreSignature, BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION,
    SIMPLE_SIGNING_MIME_TYPE,
};
use crate::verify::{judge_vouched_payload, IdentityRequirement, SignatureOutcome};

/// The certificate trust of a `fulcio` or `pki` requirement, loaded.
#[derive(Debug, Clone)]
pub enum KeylessRoot {
    /// `fulcio`.
    Fulcio {
        /// `caPath` / `caData`.
        roots: Vec<Certificate>,
        /// `oidcIssuer`.
        oidc_issuer: String,
        /// `subjectEmail`.
        subject_email: String,
    },
    /// `pki`.
    Pki {
        /// `caRootsPath` / `caRootsData`.
        roots: Vec<Certificate>,
        /// `caIntermediatesPath` / `caIntermediatesData` (empty when absent).
        intermediates: Vec<Certificate>,
        /// `subjectEmail`, when set.
        subject_email: Option<String>,
        /// `subjectHostname`, when set.
        subject_hostname: Option<String>,
    },
}

impl KeylessRoot {
    /// The certificate trust of `trust_root`: `None` for public keys, else the loaded CAs;
    /// an error says why they cannot be used (then no signature can count).
    pub fn load(trust_root: &TrustRoot) -> Result<Option<Self>, String> {
        match trust_root {
            TrustRoot::PublicKeys { .. } => Ok(None),
            TrustRoot::Fulcio(fulcio) => load_fulcio(fulcio).map(Some),
            TrustRoot::Pki(pki) => load_pki(pki).map(Some),
        }
    }

    /// [`judge_keyless`] with the evaluation's Rekor keys and time.
    pub fn judge(
        &self,
        found: &FoundSignature,
        manifest_digest: &ContentSha256,
        identity: &IdentityRequirement,
        context: JudgeContext,
    ) -> SignatureJudgement {
        judge_keyless(
            found,
            manifest_digest,
            self,
            context.rekor_keys,
            identity,
            context.now,
        )
    }

    /// One line for the explanation.
    pub fn describe(&self) -> String {
        match self {
            KeylessRoot::Fulcio {
                roots,
                oidc_issuer,
                subject_email,
            } => format!(
                "Fulcio: {} CA certificate(s), OIDC issuer {oidc_issuer:?}, subject e-mail {subject_email:?}",
                roots.len()
            ),
            KeylessRoot::Pki {
                roots,
                intermediates,
                subject_email,
                subject_hostname,
            } => format!(
                "PKI: {} root(s), {} intermediate(s), subject e-mail {}, hostname {}",
                roots.len(),
                intermediates.len(),
                subject_email.as_deref().map_or("-".into(), |e| format!("{e:?}")),
                subject_hostname.as_deref().map_or("-".into(), |h| format!("{h:?}")),
            ),
        }
    }
}

fn read_source(source: &CertSource, what: &str) -> Result<(Vec<u8>, String), String> {
    match source {
        CertSource::Path(file) => {
            let label = format!("{what} file {}", file.path.display());
            cfsgate_keyring::read_trust_file(&file.path, cfsgate_keyring::MAX_TRUST_FILE_BYTES)
                .map(|bytes| (bytes, label))
                .map_err(|e| e.to_string())
        }
        CertSource::Data(bytes) => Ok((bytes.clone(), format!("{what} data"))),
    }
}

fn load_pool(source: &CertSource, what: &str) -> Result<Vec<Certificate>, String> {
    let (bytes, label) = read_source(source, what)?;
    Certificate::parse_pem_pool(&bytes)
        .map_err(|e| format!("{label}: error loading CA certificates: {e}"))
}

fn load_fulcio(fulcio: &Fulcio) -> Result<KeylessRoot, String> {
    Ok(KeylessRoot::Fulcio {
        roots: load_pool(&fulcio.ca, "Fulcio CA")?,
        oidc_issuer: fulcio.oidc_issuer.clone(),
        subject_email: fulcio.subject_email.clone(),
    })
}

fn load_pki(pki: &Pki) -> Result<KeylessRoot, String> {
    let intermediates = match &pki.ca_intermediates {
        None => Vec::new(),
        Some(source) => {
            let (bytes, label) = read_source(source, "PKI intermediates")?;
            Certificate::parse_pem_bundle(&bytes)
                .map_err(|e| format!("{label}: loading trusted intermediate certificates: {e}"))?
        }
    };
    Ok(KeylessRoot::Pki {
        roots: load_pool(&pki.ca_roots, "PKI CA roots")?,
        intermediates,
        subject_email: pki.subject_email.clone(),
        subject_hostname: pki.subject_hostname.clone(),
    })
}

/// Judges one signature under a `fulcio` or `pki` requirement (see the module table).
/// `rekor_keys` are the requirement's Rekor keys (required for `fulcio`), `now` the current
/// time (unix seconds, what `pki` certificates are judged at).
pub fn judge_keyless(
    found: &FoundSignature,
    manifest_digest: &ContentSha256,
    root: &KeylessRoot,
    rekor_keys: Option<&[RekorKey]>,
    identity: &IdentityRequirement,
    now: i64,
) -> SignatureJudgement {
    let mut judgement = SignatureJudgement {
        source: found.source.clone(),
        outcome: SignatureOutcome::NotSigstore,
        attempts: Vec::new(),
        rekor: None,
    };
    let signature = match &found.content {
        SignatureContent::SimpleSigning(_) => return judgement,
        SignatureContent::Malformed(reason) => {
            judgement.outcome = SignatureOutcome::Malformed {
                reason: reason.clone(),
            };
            return judgement;
        }
        SignatureContent::Sigstore(signature) => signature,
    };
    if signature.mime_type != SIMPLE_SIGNING_MIME_TYPE {
        judgement.outcome = SignatureOutcome::NotSimpleSigning {
            mime_type: signature.mime_type.clone(),
        };
        return judgement;
    }
    let (leaf, rekor) = match certified_key(signature, root, rekor_keys, now) {
        Ok(found) => found,
        Err(reason) => {
            judgement.outcome = SignatureOutcome::CertificateRejected { reason };
            return judgement;
        }
    };
    let label = certificate_label(&leaf);
    let key = match leaf.public_key() {
        Ok(key) => key,
        Err(e) => {
            judgement.outcome = SignatureOutcome::CertificateRejected {
                reason: e.to_string(),
            };
            return judgement;
        }
    };
    let key_id = key.key_id();
    let verified = verify_payload_signature(&key, &signature.payload, &signature.signature);
    judgement.attempts.push(KeyAttempt {
        key_id,
        label,
        result: match &verified {
            Ok(()) => match &rekor {
                Some(entry) => {
                    format!("verified; certificate chain valid at the Rekor SET time ({entry})")
                }
                None => "verified; certificate chain valid now".into(),
            },
            Err(e) => e.clone(),
        },
        verified: verified.is_ok(),
    });
    if let Err(reason) = verified {
        judgement.outcome = SignatureOutcome::CertificateRejected {
            reason: format!("the certificate's key does not verify the signature: {reason}"),
        };
        return judgement;
    }
    judgement.rekor = rekor;
    judgement.outcome =
        judge_vouched_payload(key_id, &signature.payload, manifest_digest, identity);
    judgement
}

fn certificate_label(leaf: &Certificate) -> String {
    let name = leaf
        .san_emails()
        .first()
        .or(leaf.san_uris().first())
        .or(leaf.san_dns_names().first())
        .cloned()
        .unwrap_or_else(|| leaf.subject().to_string());
    format!("certificate of {name} (issuer {})", leaf.issuer())
}

/// Steps 1–5: the verified leaf certificate, and the SET for `fulcio`.
fn certified_key(
    signature: &SigstoreSignature,
    root: &KeylessRoot,
    rekor_keys: Option<&[RekorKey]>,
    now: i64,
) -> Result<(Certificate, Option<crate::rekor::RekorEntry>), String> {
    let annotation = |key: &str| signature.annotations.get(key).map(String::as_bytes);
    let missing = |key: &str| format!("missing {key} annotation");
    match root {
        KeylessRoot::Fulcio {
            roots,
            oidc_issuer,
            subject_email,
        } => {
            let rekor_keys = rekor_keys
                .ok_or("Fulcio CA specified without a Rekor public key (internal inconsistency)")?;
            let set = annotation(BUNDLE_ANNOTATION).ok_or_else(|| missing(BUNDLE_ANNOTATION))?;
            let cert_pem = annotation(CERTIFICATE_ANNOTATION)
                .ok_or_else(|| missing(CERTIFICATE_ANNOTATION))?;
            let entry = verify_bundle_for_certificate(
                set,
                rekor_keys,
                &signature.payload,
                &signature.signature,
                cert_pem,
            )
            .map_err(|e| format!("Rekor SET not accepted: {e}"))?;
            let intermediates = chain_intermediates(annotation(CHAIN_ANNOTATION))?;
            let leaf = leaf_certificate(cert_pem)?.accepting_critical_san();
            let at = Timestamp(entry.integrated_time);
            verify_chain(&leaf, &intermediates, roots, at).map_err(|e| {
                format!("verifying the certificate at the Rekor SET time {at} failed: {e}")
            })?;
            let issuer = leaf.fulcio_oidc_issuer().map_err(|e| e.to_string())?;
            if issuer != *oidc_issuer {
                return Err(format!(
                    "unexpected Fulcio OIDC issuer {issuer:?} (the policy requires {oidc_issuer:?})"
                ));
            }
            require_email(&leaf, subject_email)?;
            Ok((leaf, Some(entry)))
        }
        KeylessRoot::Pki {
            roots,
            intermediates: trusted,
            subject_email,
            subject_hostname,
        } => {
            let mut intermediates = trusted.clone();
            intermediates.extend(chain_intermediates(annotation(CHAIN_ANNOTATION))?);
            let cert_pem = annotation(CERTIFICATE_ANNOTATION)
                .ok_or_else(|| missing(CERTIFICATE_ANNOTATION))?;
            let leaf = leaf_certificate(cert_pem)?;
            let at = Timestamp(now);
            verify_chain(&leaf, &intermediates, roots, at)
                .map_err(|e| format!("verifying the certificate now ({at}) failed: {e}"))?;
            if let Some(email) = subject_email {
                require_email(&leaf, email)?;
            }
            if let Some(host) = subject_hostname {
                if !leaf.matches_hostname(host) {
                    return Err(format!(
                        "unexpected subject hostname: the certificate is not valid for {host:?} (SAN DNS names {:?}, IP addresses {:?})",
                        leaf.san_dns_names(),
                        leaf.san_ips()
                    ));
                }
            }
            Ok((leaf, None))
        }
    }
}

/// The chain annotation's certificates but the last (containers/image drops it: the root must
/// come from the policy).
fn chain_intermediates(chain: Option<&[u8]>) -> Result<Vec<Certificate>, String> {
    let Some(pem) = chain.filter(|pem| !pem.is_empty()) else {
        return Ok(Vec::new());
    };
    let mut certs = Certificate::parse_pem_bundle(pem)
        .map_err(|e| format!("loading certificate chain: {e}"))?;
    certs.pop();
    Ok(certs)
}

fn leaf_certificate(pem: &[u8]) -> Result<Certificate, String> {
    let mut certs =
        Certificate::parse_pem_bundle(pem).map_err(|e| format!("parsing leaf certificate: {e}"))?;
    match certs.len() {
        0 => Err("no certificate found in signature certificate data".into()),
        1 => Ok(certs.remove(0)),
        _ => Err("unexpected multiple certificates present in signature certificate data".into()),
    }
}

fn require_email(leaf: &Certificate, email: &str) -> Result<(), String> {
    if leaf.san_emails().iter().any(|e| e == email) {
        Ok(())
    } else {
        Err(format!(
            "required email {email:?} not found (got {:?})",
            leaf.san_emails()
        ))
    }
}

/// The signature over the exact payload, as sigstore's `LoadVerifier(key, SHA256)` checks it.
fn verify_payload_signature(
    key: &PublicKey,
    payload: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let digest = Sha256::digest(payload);
    let ok = match key {
        PublicKey::EcdsaP256(key) => p256::ecdsa::Signature::from_der(signature)
            .is_ok_and(|sig| key.verify_prehash(&digest, &sig).is_ok()),
        PublicKey::EcdsaP384(key) => p384::ecdsa::Signature::from_der(signature)
            .is_ok_and(|sig| key.verify_prehash(&digest, &sig).is_ok()),
        PublicKey::Rsa { key, .. } => key
            .verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, signature)
            .is_ok(),
        PublicKey::Ed25519(key) => {
            use ed25519_dalek::Verifier as _;
            ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(payload, &sig).is_ok())
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("invalid {} signature", key.algorithm()))
    }
}
