//! Verifying the cosign signatures of a `dir:` image against trusted keys and an identity
//! rule, with containers/image's `sigstoreSigned` semantics.
//!
//! For each `signature-N`, fail closed, in this order:
//!
//! | step | on failure the signature is |
//! |---|---|
//! | has the sigstore prefix | [`SignatureOutcome::NotSigstore`] (ignored, as a GPG signature) |
//! | wrapper parses | [`SignatureOutcome::Malformed`] |
//! | `mimeType` is simple signing | [`SignatureOutcome::NotSimpleSigning`] |
//! | the signature verifies over the exact payload bytes with some trusted key | [`SignatureOutcome::Untrusted`] |
//! | only then: the payload parses strictly | [`SignatureOutcome::BadPayload`] |
//! | signed digest = sha256 of `manifest.json`'s exact bytes | [`SignatureOutcome::DigestMismatch`] |
//! | the claimed identity is accepted by the rule | [`SignatureOutcome::IdentityMismatch`] |
//!
//! The image is accepted if at least one signature passes every step; the others are
//! reported but do not reject. Otherwise the verdict says why: the manifest cannot be read,
//! there is no sigstore signature at all, no signature is by a trusted key, or every
//! trusted signature fails a payload check.

use std::path::{Path, PathBuf};

use cfsgate_image::ContentSha256;
use cfsgate_keyring::{KeyId, PublicKey};
use cfsgate_policy::{DockerReference, SignedIdentity, Timestamp};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::dir::DirImage;
use crate::payload::SimpleSigningPayload;
use crate::sigstore::{self, SigstoreSignature, SIMPLE_SIGNING_MIME_TYPE};

/// Which identities the signatures may claim.
#[derive(Debug, Clone)]
pub struct IdentityRequirement {
    /// The policy's `signedIdentity`.
    pub rule: SignedIdentity,
    /// The reference the image is being used as (`None`: the image has no docker reference;
    /// then only `exactReference`/`exactRepository` can match).
    pub image_reference: Option<DockerReference>,
}

impl IdentityRequirement {
    /// The one place a claimed identity is judged (delegated to cfsgate-policy).
    pub fn accepts(&self, claimed: &str) -> bool {
        self.rule
            .matches_claim(self.image_reference.as_ref(), claimed)
    }
}

/// What happened to one signature file.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SignatureOutcome {
    /// Passed every check.
    Accepted {
        /// The key that verified it.
        key_id: KeyId,
        /// The identity the payload claims.
        identity: String,
    },
    /// Not a sigstore signature (e.g. a GPG simple signing signature); not counted.
    NotSigstore,
    /// Meant as a sigstore signature but not well-formed.
    Malformed {
        /// What is wrong with it.
        reason: String,
    },
    /// A sigstore attachment that is not a simple-signing signature.
    NotSimpleSigning {
        /// Its media type.
        mime_type: String,
    },
    /// Does not verify with any trusted key (one entry per key tried).
    Untrusted {
        /// Why each trusted key failed, in policy order.
        per_key: Vec<KeyFailure>,
    },
    /// Verified by a trusted key, but the payload is refused.
    BadPayload {
        /// The key that verified the signature.
        key_id: KeyId,
        /// Why the payload is refused.
        reason: String,
    },
    /// Verified, but signs another manifest.
    DigestMismatch {
        /// The key that verified the signature.
        key_id: KeyId,
        /// The manifest digest the payload signs.
        signed: String,
        /// The image's manifest digest.
        actual: String,
    },
    /// Verified, but claims an identity the rule does not accept.
    IdentityMismatch {
        /// The key that verified the signature.
        key_id: KeyId,
        /// The identity the payload claims.
        claimed: String,
    },
    /// Verified by a trusted key, but Rekor keys are required and its Rekor bundle does not
    /// vouch for it (missing, not signed by a trusted log, or logging something else).
    RekorRejected {
        /// The key that verified the signature.
        key_id: KeyId,
        /// Why the Rekor bundle does not vouch for it.
        reason: String,
    },
    /// Under a `fulcio` or `pki` requirement: the signature's certificate is not accepted
    /// (missing, not chaining to the CAs, another subject or issuer, its Rekor SET refused,
    /// or its key does not verify the signature); see [`crate::keyless`].
    CertificateRejected {
        /// Why.
        reason: String,
    },
    /// Verified by a trusted key, but made (at unix time `at`: the Rekor SET's time when
    /// one was verified, else the current time) outside that key's validity window.
    OutsideValidity {
        /// The key that verified the signature.
        key_id: KeyId,
        /// The signing time used (unix seconds).
        at: i64,
        /// The key's window, as text.
        window: String,
    },
}

/// Why one trusted key did not verify a signature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyFailure {
    /// The key tried (sha256 of its SPKI).
    pub key_id: KeyId,
    /// Why it did not verify.
    pub reason: String,
}

/// One signature file's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignatureReport {
    /// The signature file.
    pub file: PathBuf,
    /// What it established.
    #[serde(flatten)]
    pub outcome: SignatureOutcome,
}

/// Why an image was rejected.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RejectReason {
    /// The image directory or its manifest could not be read.
    ManifestUnreadable {
        /// Why, as text.
        error: String,
    },
    /// The signature files could not be read.
    SignaturesUnreadable {
        /// Why, as text.
        error: String,
    },
    /// No sigstore signature at all (there may be GPG ones).
    Unsigned,
    /// Sigstore signatures exist, but none verifies with a trusted key.
    NoTrustedSigner,
    /// Some signature is by a trusted key, but each fails a payload check.
    NoValidSignature,
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ManifestUnreadable { error } => write!(f, "manifest unreadable: {error}"),
            Self::SignaturesUnreadable { error } => write!(f, "signatures unreadable: {error}"),
            Self::Unsigned => f.write_str("unsigned: no sigstore signature"),
            Self::NoTrustedSigner => f.write_str("signed, but not by any trusted key"),
            Self::NoValidSignature => f.write_str(
                "signed by a trusted key, but no such signature matches this image and identity",
            ),
        }
    }
}

/// The result of verifying an image.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Enough signatures passed every check.
    Accepted {
        /// Keys of the accepted signatures (no repeats, in file order).
        signers: Vec<KeyId>,
        /// Identities the accepted signatures claim (no repeats, in file order).
        identities: Vec<String>,
        /// The manifest digest the signatures vouch for (`sha256:` + hex).
        manifest_digest: String,
        /// Each signature's report, in file order.
        signatures: Vec<SignatureReport>,
    },
    /// The image is refused.
    Rejected {
        /// Why.
        reason: RejectReason,
        /// Each signature's report, in file order.
        signatures: Vec<SignatureReport>,
    },
}

impl Verdict {
    /// Whether the verdict is [`Verdict::Accepted`].
    pub fn is_accepted(&self) -> bool {
        matches!(self, Verdict::Accepted { .. })
    }

    /// Every signature's report.
    pub fn signatures(&self) -> &[SignatureReport] {
        match self {
            Verdict::Accepted { signatures, .. } | Verdict::Rejected { signatures, .. } => {
                signatures
            }
        }
    }
}

/// sha256 of exact bytes, as a typed digest.
pub fn sha256_of(bytes: &[u8]) -> ContentSha256 {
    ContentSha256(Sha256::digest(bytes).into())
}

/// Verifies the `dir:` image at `dir`.
pub fn verify_dir_image(dir: &Path, keys: &[PublicKey], identity: &IdentityRequirement) -> Verdict {
    let rejected = |reason| Verdict::Rejected {
        reason,
        signatures: Vec::new(),
    };
    let image = match DirImage::open(dir) {
        Ok(image) => image,
        Err(e) => {
            return rejected(RejectReason::ManifestUnreadable {
                error: e.to_string(),
            })
        }
    };
    let manifest = match image.manifest_bytes() {
        Ok(bytes) => bytes,
        Err(e) => {
            return rejected(RejectReason::ManifestUnreadable {
                error: e.to_string(),
            })
        }
    };
    let files = match image.signatures() {
        Ok(files) => files,
        Err(e) => {
            return rejected(RejectReason::SignaturesUnreadable {
                error: e.to_string(),
            })
        }
    };
    let manifest_digest = sha256_of(&manifest);
    let signatures: Vec<SignatureReport> = files
        .iter()
        .map(|file| SignatureReport {
            file: file.path.clone(),
            outcome: judge_signature(
                &file.bytes,
                &file.path.display().to_string(),
                &manifest_digest,
                keys,
                identity,
            ),
        })
        .collect();
    summarise(signatures, manifest_digest)
}

fn summarise(signatures: Vec<SignatureReport>, manifest_digest: ContentSha256) -> Verdict {
    let mut signers = Vec::new();
    let mut identities = Vec::new();
    for report in &signatures {
        if let SignatureOutcome::Accepted { key_id, identity } = &report.outcome {
            if !signers.contains(key_id) {
                signers.push(*key_id);
            }
            if !identities.contains(identity) {
                identities.push(identity.clone());
            }
        }
    }
    if !signers.is_empty() {
        return Verdict::Accepted {
            signers,
            identities,
            manifest_digest: manifest_digest.to_string(),
            signatures,
        };
    }
    let outcomes = || signatures.iter().map(|r| &r.outcome);
    let reason = if outcomes().all(|o| *o == SignatureOutcome::NotSigstore) {
        RejectReason::Unsigned
    } else if outcomes().any(|o| {
        matches!(
            o,
            SignatureOutcome::BadPayload { .. }
                | SignatureOutcome::DigestMismatch { .. }
                | SignatureOutcome::IdentityMismatch { .. }
                | SignatureOutcome::OutsideValidity { .. }
                | SignatureOutcome::RekorRejected { .. }
        )
    }) {
        RejectReason::NoValidSignature
    } else {
        RejectReason::NoTrustedSigner
    };
    Verdict::Rejected { reason, signatures }
}

/// Every check of one signature file, in the order of the module table.
pub fn judge_signature(
    bytes: &[u8],
    source_name: &str,
    manifest_digest: &ContentSha256,
    keys: &[PublicKey],
    identity: &IdentityRequirement,
) -> SignatureOutcome {
    if !sigstore::is_sigstore(bytes) {
        return SignatureOutcome::NotSigstore;
    }
    let signature = match SigstoreSignature::parse(bytes, source_name) {
        Ok(signature) => signature,
        Err(e) => {
            return SignatureOutcome::Malformed {
                reason: e.to_string(),
            }
        }
    };
    if signature.mime_type != SIMPLE_SIGNING_MIME_TYPE {
        return SignatureOutcome::NotSimpleSigning {
            mime_type: signature.mime_type,
        };
    }
    let key_id = match trusted_signer(&signature, keys) {
        Ok(key_id) => key_id,
        Err(per_key) => return SignatureOutcome::Untrusted { per_key },
    };
    judge_vouched_payload(key_id, &signature.payload, manifest_digest, identity)
}

/// The steps after a trusted key has verified the signature over `payload`: only now is the
/// payload parsed (strictly), then its manifest digest and identity are checked. Shared by
/// every signature source, so each applies exactly the same rules.
pub(crate) fn judge_vouched_payload(
    key_id: KeyId,
    payload: &[u8],
    manifest_digest: &ContentSha256,
    identity: &IdentityRequirement,
) -> SignatureOutcome {
    let payload = match SimpleSigningPayload::parse(payload) {
        Ok(payload) => payload,
        Err(e) => {
            return SignatureOutcome::BadPayload {
                key_id,
                reason: e.to_string(),
            }
        }
    };
    if payload.manifest_digest != *manifest_digest {
        return SignatureOutcome::DigestMismatch {
            key_id,
            signed: payload.manifest_digest.to_string(),
            actual: manifest_digest.to_string(),
        };
    }
    if !identity.accepts(&payload.docker_reference) {
        return SignatureOutcome::IdentityMismatch {
            key_id,
            claimed: payload.docker_reference,
        };
    }
    SignatureOutcome::Accepted {
        key_id,
        identity: payload.docker_reference,
    }
}

/// The first trusted key whose verification of the exact payload bytes succeeds.
fn trusted_signer(
    signature: &SigstoreSignature,
    keys: &[PublicKey],
) -> Result<KeyId, Vec<KeyFailure>> {
    let mut failures = Vec::with_capacity(keys.len());
    for key in keys {
        match key.verify(&signature.payload, &signature.signature) {
            Ok(()) => return Ok(key.key_id()),
            Err(e) => failures.push(KeyFailure {
                key_id: key.key_id(),
                reason: e.to_string(),
            }),
        }
    }
    Err(failures)
}

/// One signature's outcome in words.
pub fn describe_outcome(outcome: &SignatureOutcome) -> String {
    match outcome {
        SignatureOutcome::Accepted { key_id, identity } => {
            format!("valid, key {}, identity {identity}", key_id.short())
        }
        SignatureOutcome::NotSigstore => "not a sigstore signature (ignored)".into(),
        SignatureOutcome::Malformed { reason } => format!("malformed: {reason}"),
        SignatureOutcome::NotSimpleSigning { mime_type } => {
            format!("not a simple-signing signature (mimeType {mime_type:?})")
        }
        SignatureOutcome::Untrusted { .. } => "not signed by any trusted key".into(),
        SignatureOutcome::BadPayload { key_id, reason } => {
            format!("key {} signed an invalid payload: {reason}", key_id.short())
        }
        SignatureOutcome::DigestMismatch {
            key_id,
            signed,
            actual,
        } => format!(
            "key {} signed manifest {signed}, but the manifest is {actual}",
            key_id.short()
        ),
        SignatureOutcome::IdentityMismatch { key_id, claimed } => format!(
            "key {} signed identity {claimed:?}, which signedIdentity does not accept",
            key_id.short()
        ),
        SignatureOutcome::OutsideValidity { key_id, at, window } => format!(
            "key {} signed, but time {} is outside its validity window ({window})",
            key_id.short(),
            Timestamp(*at)
        ),
        SignatureOutcome::CertificateRejected { reason } => {
            format!("certificate not accepted: {reason}")
        }
        SignatureOutcome::RekorRejected { key_id, reason } => format!(
            "key {} signed, but the signature's Rekor SET is not accepted: {reason}",
            key_id.short()
        ),
    }
}
