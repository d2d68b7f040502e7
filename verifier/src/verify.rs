//! The outcome of checking one cosign signature against trusted keys and an identity rule,
//! with containers/image's `sigstoreSigned` semantics, and the payload steps every signature
//! source shares ([`judge_vouched_payload`]).
//!
//! For each signature ([`crate::chain::judge`] applies these steps to every source), fail
//! closed, in this order:
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
//! A `sigstoreSigned` requirement passes if enough signatures pass every step; the others are
//! reported but do not reject ([`crate::evaluate`] says why otherwise).

use cfsgate_image::ContentSha256;
use cfsgate_keyring::KeyId;
use cfsgate_policy::{DockerReference, SignedIdentity, Timestamp};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::payload::SimpleSigningPayload;

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

/// sha256 of exact bytes, as a typed digest.
pub fn sha256_of(bytes: &[u8]) -> ContentSha256 {
    ContentSha256(Sha256::digest(bytes).into())
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
