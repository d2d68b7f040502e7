//! The `signedBy` requirement (GPG simple signing), with containers/image's semantics
//! (`signature/policy_eval_signedby.go`): the image passes when **one** of its simple-signing
//! signatures passes every step below; the others are reported and ignored.
//!
//! | step | fails the requirement / the signature when |
//! |---|---|
//! | `keyType` | not `GPGKeys` (the other names are reserved, unimplemented upstream too): requirement, via [`cfsgate_policy::Requirement::unsupported_reason`] |
//! | keys | a `keyPath`/`keyPaths` file cannot be read (type-checked before it is opened, read under [`cfsgate_keyring::MAX_TRUST_FILE_BYTES`]), or no certificate at all is in the files/`keyData`: requirement |
//! | signatures | the image has no simple-signing signature (sigstore wrappers are not looked at): requirement, "A signature was required, but no signature exists" |
//! | OpenPGP | the blob does not verify with a keyring key or subkey valid now ([`crate::gpg`]): signature |
//! | trusted identity | the signing certificate's primary fingerprint is not one the keyring was read with: signature |
//! | payload | not a strict atomic container signature ([`crate::atomic`]): signature |
//! | manifest | the signed digest is not the sha256 of the manifest's exact bytes: signature |
//! | identity | `signedIdentity` (default `matchRepoDigestOrExact`) refuses the claimed reference: signature |
//!
//! Simple-signing signatures come from `dir:` images (`signature-N` files that are not
//! sigstore wrappers) and `containers-storage:` images (the signature big-data skopeo and
//! podman store, [`crate::cstorage`]); OCI layouts have no place for them (containers/image
//! stores none there), so a `signedBy` scope over an OCI layout rejects as unsigned.

use cfsgate_keyring::{read_trust_file, MAX_TRUST_FILE_BYTES};
use cfsgate_policy::{KeyMaterial, Location, SignedBy};

use crate::atomic::{manifest_matches, AtomicPayload};
use crate::gpg::GpgKeyring;
use crate::loaded::{LoadedImage, SignatureContent};
use crate::verify::IdentityRequirement;

/// What evaluating one `signedBy` requirement produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedByResult {
    /// Explanation lines (indented for the decision's explanation).
    pub lines: Vec<String>,
    /// `Ok(summary)` passed, `Err(reason)` failed.
    pub outcome: Result<String, String>,
    /// Primary fingerprints of the certificates whose signature passed (at most one: one
    /// accepted signature is enough).
    pub signers: Vec<String>,
}

/// Evaluates `requirement` (written at `location`) for `image`; `identity` carries the
/// reference the image is used as.
pub fn evaluate_signed_by(
    requirement: &SignedBy,
    location: Location,
    image: &LoadedImage,
    identity: &IdentityRequirement,
    now: i64,
) -> SignedByResult {
    let mut result = SignedByResult {
        lines: Vec::new(),
        outcome: Err(String::new()),
        signers: Vec::new(),
    };
    result.outcome = judge(requirement, location, image, identity, now, &mut result);
    result
}

fn judge(
    requirement: &SignedBy,
    location: Location,
    image: &LoadedImage,
    identity: &IdentityRequirement,
    now: i64,
    result: &mut SignedByResult,
) -> Result<String, String> {
    let identity = IdentityRequirement {
        rule: requirement.signed_identity.clone(),
        image_reference: identity.image_reference.clone(),
    };
    result.lines.push(format!(
        "  keyType {}, signedIdentity {}",
        requirement.key_type.as_str(),
        requirement.signed_identity.type_name()
    ));
    let keyring = load_keyring(requirement, location)?;
    for skipped in keyring.skipped() {
        result
            .lines
            .push(format!("  keyring entry skipped: {skipped}"));
    }
    let trusted = keyring.fingerprints();
    result.lines.push(format!(
        "  {} trusted OpenPGP key(s): {}",
        trusted.len(),
        trusted.join(", ")
    ));
    let mut rejections = Vec::new();
    for found in &image.signatures {
        let SignatureContent::SimpleSigning(bytes) = &found.content else {
            result.lines.push(format!(
                "  signature {}: a sigstore signature (not looked at by signedBy)",
                found.source
            ));
            continue;
        };
        match judge_one(bytes, image, &keyring, &trusted, &identity, now) {
            Ok((primary, summary)) => {
                result
                    .lines
                    .push(format!("  signature {}: valid, {summary}", found.source));
                result.signers.push(primary);
                return Ok(summary);
            }
            Err(reason) => {
                result
                    .lines
                    .push(format!("  signature {}: rejected: {reason}", found.source));
                rejections.push(reason);
            }
        }
    }
    Err(match rejections.as_slice() {
        [] => "A signature was required, but no signature exists".to_string(),
        [one] => one.clone(),
        many => format!(
            "None of the signatures were accepted, reasons: {}",
            many.join("; ")
        ),
    })
}

/// Every per-signature step; `Ok((primary fingerprint, summary))`.
fn judge_one(
    bytes: &[u8],
    image: &LoadedImage,
    keyring: &GpgKeyring,
    trusted: &[String],
    identity: &IdentityRequirement,
    now: i64,
) -> Result<(String, String), String> {
    let verified = keyring.verify(bytes, now).map_err(|e| e.to_string())?;
    if !trusted.contains(&verified.primary) {
        return Err(format!(
            "signature by key {} of {} is not accepted",
            verified.signing_key, verified.primary
        ));
    }
    let payload = AtomicPayload::parse(&verified.content).map_err(|e| e.to_string())?;
    let matches = manifest_matches(
        &image.manifest_bytes,
        &image.manifest_digest,
        &payload.manifest_digest,
    )
    .map_err(|e| e.to_string())?;
    if !matches {
        return Err(format!(
            "Signature for digest {} does not match (the manifest is {})",
            payload.manifest_digest, image.manifest_digest
        ));
    }
    if !identity.accepts(&payload.docker_reference) {
        return Err(format!(
            "Signature for identity {:?} is not accepted",
            payload.docker_reference
        ));
    }
    let by = if verified.signing_key == verified.primary {
        format!("GPG key {}", verified.primary)
    } else {
        format!(
            "GPG subkey {} of {}",
            verified.signing_key, verified.primary
        )
    };
    Ok((
        verified.primary.clone(),
        format!("signed by {by}, identity {}", payload.docker_reference),
    ))
}

/// Reads every key blob of the requirement: a file that cannot be read fails it whole (as
/// containers/image), a keyring with no certificate at all trusts nothing.
fn load_keyring(requirement: &SignedBy, location: Location) -> Result<GpgKeyring, String> {
    let mut blobs = Vec::new();
    for (material, _) in requirement.keys.materials(location) {
        match material {
            KeyMaterial::File(path) => {
                let bytes = read_trust_file(&path, MAX_TRUST_FILE_BYTES)
                    .map_err(|e| format!("key file: {e}"))?;
                blobs.push((path.display().to_string(), bytes));
            }
            KeyMaterial::Data(bytes) => blobs.push(("keyData".to_string(), bytes)),
            KeyMaterial::Keyring { keyring, .. } => {
                return Err(format!(
                    "keyring {keyring}: GPG keys come from files or keyData only"
                ))
            }
        }
    }
    GpgKeyring::from_blobs(&blobs).map_err(|e| e.to_string())
}
