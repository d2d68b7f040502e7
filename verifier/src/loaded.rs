//! The image as loaded for evaluation, and the errors of loading and placing it: where it was
//! read from ([`ImageTransport`]), its exact manifest bytes and digest, the signatures found
//! for it ([`FoundSignature`], classified by [`classify_wrapper`]) and the indexes that name
//! it. A leaf below the loaders (`chain`, `cstorage`) and the judges (`root`, `keyless`,
//! `signedby`, `evaluate`), so they share these types without importing each other.

use std::path::PathBuf;

use cfsgate_image::ContentSha256;
use serde::Serialize;

use crate::sigstore::{self, SigstoreSignature};

/// Where an image is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageTransport {
    /// A skopeo `dir:` directory.
    Dir,
    /// An OCI image layout.
    Oci,
    /// An image in containers-storage (see [`crate::cstorage`]).
    ContainersStorage,
}

impl ImageTransport {
    /// The transport name as in image names (`"dir"`, `"oci"`, `"containers-storage"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ImageTransport::Dir => "dir",
            ImageTransport::Oci => "oci",
            ImageTransport::ContainersStorage => "containers-storage",
        }
    }
}

/// Why an image could not be read at all (the caller cannot evaluate it).
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The image name cannot be parsed or resolved.
    #[error("image name {image:?}: {reason}")]
    BadName {
        /// The image name as given.
        image: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The image's manifest or signatures cannot be read.
    #[error("image {image}: {reason}")]
    Unreadable {
        /// The image name as given.
        image: String,
        /// What could not be read, and why.
        reason: String,
    },
}

/// One signature as found, before any check.
#[derive(Debug, Clone)]
pub struct FoundSignature {
    /// File path or `TAG layer N`, for reports.
    pub source: String,
    /// What the signature is, once parsed.
    pub content: SignatureContent,
}

/// The content of a found signature.
#[derive(Debug, Clone)]
pub enum SignatureContent {
    /// Not a sigstore wrapper: a simple-signing (GPG) signature blob, counted only by
    /// `signedBy` ([`crate::signedby`]).
    SimpleSigning(Vec<u8>),
    /// Meant as a sigstore signature, but not well-formed.
    Malformed(String),
    /// A parsed sigstore (cosign) signature, to be verified.
    Sigstore(SigstoreSignature),
}

/// An image's manifest and signatures: what links 1–4 need.
#[derive(Debug)]
pub struct LoadedImage {
    /// Where the image was read from.
    pub transport: ImageTransport,
    /// The canonical directory.
    pub path: PathBuf,
    /// The reference the oci crate resolves (`dir:/abs` or `oci:/abs[:TAG|@DIGEST]`).
    pub oci_reference: String,
    /// The manifest exactly as stored: its sha256 is what signatures vouch for.
    pub manifest_bytes: Vec<u8>,
    /// sha256 of `manifest_bytes`.
    pub manifest_digest: ContentSha256,
    /// Every signature found for the manifest, in storage order.
    pub signatures: Vec<FoundSignature>,
    /// The image indexes that name this manifest by digest, each verified against its own
    /// digest: those the reference was resolved through (outermost first), or for
    /// containers-storage the manifest lists podman kept with the image. A signature over one
    /// of them vouches for the manifest, as cosign's over the digest a multi-arch tag names.
    pub indexes: Vec<ContentSha256>,
    /// The OCI layout image as resolved when it was loaded (manifest and config read and
    /// digest-checked): the seal check ([`crate::root`]) uses it rather than reading the
    /// layout a second time. `None` for other transports, and when the config could not be
    /// read (the seal check then resolves again and reports why).
    pub(crate) resolved: Option<cfsgate_oci::ResolvedImage>,
}

/// Classifies the bytes of one found signature: a sigstore wrapper (parsed), a malformed one,
/// or a simple-signing blob for `signedBy`.
pub(crate) fn classify_wrapper(bytes: &[u8], source: &str) -> SignatureContent {
    if !sigstore::is_sigstore(bytes) {
        return SignatureContent::SimpleSigning(bytes.to_vec());
    }
    match SigstoreSignature::parse(bytes, source) {
        Ok(signature) => SignatureContent::Sigstore(signature),
        Err(e) => SignatureContent::Malformed(e.to_string()),
    }
}

/// Why a request could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The image cannot be read.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// `--reference` is not a valid docker reference.
    #[error("--reference {reference:?}: {reason}")]
    BadReference {
        /// The reference as given.
        reference: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The image cannot be given an identity for scope lookup.
    #[error("image {image}: cannot be placed in the policy: {reason}")]
    PolicyIdentity {
        /// The image name as given.
        image: String,
        /// Why.
        reason: String,
    },
    /// `--reference` pins a manifest digest that is not this image's (containers/image's
    /// docker transport refuses such a manifest before any policy runs).
    #[error("--reference {reference:?} pins manifest {pinned}, but image {image} has manifest {actual}: refused (an image signed for another digest cannot stand in for the pinned one)")]
    PinnedDigestMismatch {
        /// The `--reference` as given.
        reference: String,
        /// The image name as given.
        image: String,
        /// The manifest digest the reference pins.
        pinned: String,
        /// The image's manifest digest.
        actual: String,
    },
}
