//! Signing a `dir:` image: the same cosign simple-signing payload cosign and containers/image
//! write, in the containers/image sigstore wrapper, as the next `signature-N` file.
//!
//! | step | what |
//! |---|---|
//! | digest | sha256 of `manifest.json`'s exact bytes |
//! | payload | `critical` {identity.docker-reference, image.docker-manifest-digest, type}, `optional` {creator `cfsgate`, timestamp} |
//! | signature | the private key signs the exact payload bytes (ECDSA: DER, Ed25519: 64 bytes) |
//! | file | `signature-N`, N = first unused number; written to a temporary file and linked into place without replacing anything |

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use cfsgate_keyring::PrivateKey;
use cfsgate_policy::DockerReference;

use crate::dir::{signature_file_name, DirError, DirImage};
use crate::payload::SimpleSigningPayload;
use crate::sigstore::SigstoreSignature;
use crate::verify::sha256_of;

/// Why an image could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The `dir:` image cannot be read.
    #[error(transparent)]
    Dir(#[from] DirError),
    /// The identity to sign for is not a docker reference.
    #[error("identity {reference:?} is not a docker reference: {reason}")]
    BadIdentity {
        /// The identity as given.
        reference: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The image cannot be read.
    #[error(transparent)]
    Image(#[from] crate::loaded::ImageError),
    /// The OCI layout's signatures cannot be read or written.
    #[error(transparent)]
    Oci(#[from] crate::ocisig::OciSigError),
    /// The target is not an `oci:PATH[:TAG]` reference (given).
    #[error("{0} is not an OCI layout reference (oci:PATH[:TAG])")]
    NotOci(String),
    /// Writing the signature file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error the kernel returned.
        source: std::io::Error,
    },
}

/// What [`sign_dir_image`] wrote.
#[derive(Debug, Clone)]
pub struct SignedFile {
    /// The signature file written (`signature-N`).
    pub path: PathBuf,
    /// The simple-signing payload signed.
    pub payload: Vec<u8>,
    /// The signature over the payload.
    pub signature: Vec<u8>,
}

/// Signs the image at `dir` as `docker_reference` and writes the next `signature-N`.
pub fn sign_dir_image(
    dir: &Path,
    key: &PrivateKey,
    docker_reference: &str,
) -> Result<SignedFile, SignError> {
    DockerReference::parse_normalized(docker_reference).map_err(|e| SignError::BadIdentity {
        reference: docker_reference.to_string(),
        reason: e.reason,
    })?;
    let image = DirImage::open(dir)?;
    let manifest = image.manifest_bytes()?;
    let timestamp = unix_now();
    let payload =
        SimpleSigningPayload::new(sha256_of(&manifest), docker_reference, timestamp).to_bytes();
    let signature = key.sign(&payload);
    let bytes =
        SigstoreSignature::new_simple_signing(payload.clone(), signature.clone()).to_bytes();
    let path = write_next_signature(&image, &bytes)?;
    Ok(SignedFile {
        path,
        payload,
        signature,
    })
}

/// Writes `bytes` as the first unused `signature-N`; a concurrent signer taking the same
/// number makes this one move to the next.
fn write_next_signature(image: &DirImage, bytes: &[u8]) -> Result<PathBuf, SignError> {
    let write_err = |path: &Path, source| SignError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".signature-")
        .tempfile_in(image.path())
        .map_err(|e| write_err(image.path(), e))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| write_err(temp.path(), e))?;
    loop {
        let index = image.next_signature_index()?;
        let path = image.path().join(signature_file_name(index));
        match temp.persist_noclobber(&path) {
            Ok(_) => return Ok(path),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => temp = e.file,
            Err(e) => return Err(write_err(&path, e.error)),
        }
    }
}

/// What [`sign_oci_image`] wrote.
pub use crate::ocisig::SignedLayer;

/// Signs the image an OCI layout reference (`oci:PATH[:TAG|@sha256:HEX]`) names as
/// `docker_reference`, appending a layer to its cosign `.sig` signature manifest.
pub fn sign_oci_image(
    reference: &str,
    key: &PrivateKey,
    docker_reference: &str,
) -> Result<SignedLayer, SignError> {
    DockerReference::parse_normalized(docker_reference).map_err(|e| SignError::BadIdentity {
        reference: docker_reference.to_string(),
        reason: e.reason,
    })?;
    let image = crate::chain::load_image(reference)?;
    if image.transport != crate::loaded::ImageTransport::Oci {
        return Err(SignError::NotOci(reference.to_string()));
    }
    let payload =
        SimpleSigningPayload::new(image.manifest_digest, docker_reference, unix_now()).to_bytes();
    Ok(crate::ocisig::append_oci_signature(
        &image.path,
        &image.manifest_digest,
        payload,
        key,
    )?)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
