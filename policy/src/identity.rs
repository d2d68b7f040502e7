//! `signedIdentity`: which docker reference a signature may claim for an image, with the
//! semantics of containers/image `policy_reference_match.go`.
//!
//! | kind | accepts the signature's claimed identity S for image reference I when |
//! |---|---|
//! | `matchExact` | I and S both have a tag or digest and are the same string |
//! | `matchRepoDigestOrExact` (default) | S has a tag/digest, and: I tagged → S = I; I digest-only → same repository; I name-only → never |
//! | `matchRepository` | same repository name (tags and digests ignored) |
//! | `exactReference` | S = the configured `dockerReference` (both with tag/digest); I is ignored |
//! | `exactRepository` | S names the configured `dockerRepository`; I is ignored |
//! | `remapIdentity` | I with `prefix` replaced by `signedPrefix` (when I's name starts with `prefix` at a `/` boundary), then as `matchRepoDigestOrExact` |
//!
//! All names are compared after docker normalisation (see [`crate::reference`]).

use crate::reference::{valid_domain, valid_path_component, DockerReference, ReferenceError};

/// A parsed `signedIdentity` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedIdentity {
    /// `matchExact`: the signed reference must equal the image's, tag or digest included.
    MatchExact,
    /// `matchRepoDigestOrExact`: same repository when the image is named by digest, else exact.
    MatchRepoDigestOrExact,
    /// `matchRepository`: the same repository, any tag or digest.
    MatchRepository,
    /// `dockerReference` as written (validated: normalisable, with a tag or digest).
    ExactReference(String),
    /// `dockerRepository` as written (validated: normalisable).
    ExactRepository(String),
    /// `remapIdentity`: the image's name with `prefix` replaced by `signed_prefix`, then as
    /// `matchRepoDigestOrExact`.
    RemapIdentity {
        /// `prefix`: a host, host/namespace or repository the image name must start with.
        prefix: String,
        /// `signedPrefix`: what replaces `prefix` before comparing with the signed identity.
        signed_prefix: String,
    },
}

impl Default for SignedIdentity {
    /// containers/image uses `matchRepoDigestOrExact` when `signedIdentity` is absent.
    fn default() -> Self {
        SignedIdentity::MatchRepoDigestOrExact
    }
}

impl SignedIdentity {
    /// The JSON `type` string.
    pub fn type_name(&self) -> &'static str {
        match self {
            SignedIdentity::MatchExact => "matchExact",
            SignedIdentity::MatchRepoDigestOrExact => "matchRepoDigestOrExact",
            SignedIdentity::MatchRepository => "matchRepository",
            SignedIdentity::ExactReference(_) => "exactReference",
            SignedIdentity::ExactRepository(_) => "exactRepository",
            SignedIdentity::RemapIdentity { .. } => "remapIdentity",
        }
    }

    /// Builds `exactReference`, refusing what containers/image refuses.
    pub fn exact_reference(docker_reference: &str) -> Result<Self, String> {
        let parsed =
            DockerReference::parse_normalized(docker_reference).map_err(|e| e.to_string())?;
        if parsed.is_name_only() {
            return Err(format!(
                "dockerReference {docker_reference:?} contains neither a tag nor digest"
            ));
        }
        Ok(SignedIdentity::ExactReference(docker_reference.to_string()))
    }

    /// Builds `exactRepository`, refusing what containers/image refuses.
    pub fn exact_repository(docker_repository: &str) -> Result<Self, String> {
        DockerReference::parse_normalized(docker_repository).map_err(|e| e.to_string())?;
        Ok(SignedIdentity::ExactRepository(
            docker_repository.to_string(),
        ))
    }

    /// Builds `remapIdentity` after containers/image's `validateIdentityRemappingPrefix`:
    /// each prefix is a bare domain (`host[:port]`) or a full name that starts with a domain.
    pub fn remap_identity(prefix: &str, signed_prefix: &str) -> Result<Self, String> {
        for (field, value) in [("prefix", prefix), ("signedPrefix", signed_prefix)] {
            if !valid_remap_prefix(value) {
                return Err(format!("{field} {value:?} is not valid"));
            }
        }
        Ok(SignedIdentity::RemapIdentity {
            prefix: prefix.to_string(),
            signed_prefix: signed_prefix.to_string(),
        })
    }

    /// Whether a signature claiming `signature_identity` is acceptable for an image whose
    /// docker reference is `image_ref`.
    pub fn matches(
        &self,
        image_ref: &DockerReference,
        signature_identity: &DockerReference,
    ) -> bool {
        self.matches_with(Some(image_ref), signature_identity)
    }

    /// As [`Self::matches`], with the claimed identity as the raw string from the
    /// signature payload (an unparsable claim never matches), and an image that may have no
    /// docker reference at all (then only `exactReference`/`exactRepository` can match).
    pub fn matches_claim(
        &self,
        image_ref: Option<&DockerReference>,
        claimed_identity: &str,
    ) -> bool {
        match DockerReference::parse_normalized(claimed_identity) {
            Ok(signature) => self.matches_with(image_ref, &signature),
            Err(_) => false,
        }
    }

    fn matches_with(
        &self,
        image_ref: Option<&DockerReference>,
        signature: &DockerReference,
    ) -> bool {
        match self {
            SignedIdentity::MatchExact => image_ref.is_some_and(|intended| {
                !intended.is_name_only() && !signature.is_name_only() && intended == signature
            }),
            SignedIdentity::MatchRepoDigestOrExact => {
                image_ref.is_some_and(|intended| repo_digest_or_exact(intended, signature))
            }
            SignedIdentity::MatchRepository => {
                image_ref.is_some_and(|intended| intended.name() == signature.name())
            }
            SignedIdentity::ExactReference(configured) => {
                match DockerReference::parse_normalized(configured) {
                    Ok(intended) => {
                        !intended.is_name_only()
                            && !signature.is_name_only()
                            && intended == *signature
                    }
                    Err(_) => false,
                }
            }
            SignedIdentity::ExactRepository(configured) => {
                match DockerReference::parse_normalized(configured) {
                    Ok(intended) => intended.name() == signature.name(),
                    Err(_) => false,
                }
            }
            SignedIdentity::RemapIdentity {
                prefix,
                signed_prefix,
            } => image_ref.is_some_and(|intended| match remap(intended, prefix, signed_prefix) {
                Ok(remapped) => repo_digest_or_exact(&remapped, signature),
                Err(_) => false,
            }),
        }
    }
}

/// containers/image `matchRepoDigestOrExactReferenceValues`.
fn repo_digest_or_exact(intended: &DockerReference, signature: &DockerReference) -> bool {
    if signature.is_name_only() {
        return false;
    }
    if intended.tag().is_some() {
        // Includes a reference with both a tag and a digest: the strings must be equal.
        signature == intended
    } else if intended.digest().is_some() {
        // The digest itself is checked against the manifest by the signature verifier.
        signature.name() == intended.name()
    } else {
        false
    }
}

/// `prmRemapIdentity.remapReferencePrefix`: replace `prefix` by `signed_prefix` when the
/// name starts with `prefix` followed by `/` or the end; the result must be canonical.
pub(crate) fn remap(
    reference: &DockerReference,
    prefix: &str,
    signed_prefix: &str,
) -> Result<DockerReference, ReferenceError> {
    let name = reference.name();
    let matches = name == prefix
        || (name.len() > prefix.len()
            && name.starts_with(prefix)
            && name.as_bytes()[prefix.len()] == b'/');
    if !matches {
        return Ok(reference.clone());
    }
    let full = reference.to_string();
    let rewritten = full.replacen(prefix, signed_prefix, 1);
    DockerReference::parse_canonical(&rewritten)
}

/// containers/image `validateIdentityRemappingPrefix`: a bare domain, or a name (no tag
/// or digest) that starts with a domain.
fn valid_remap_prefix(value: &str) -> bool {
    if valid_domain(value) {
        return true;
    }
    let Some((domain, path)) = value.split_once('/') else {
        return false;
    };
    valid_domain(domain) && !path.is_empty() && path.split('/').all(valid_path_component)
}
