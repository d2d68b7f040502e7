//! The composefs image of a verified image, in the store: found when it is there, else built
//! from the image's layers and stored (the import path of `cfsgate import`), so that an image
//! verified but never imported can still be admitted (`cfsgate bundle`, the precreate hook).
//!
//! [`ensure_image`] is called after the policy admitted the image, with the manifest digest the
//! verifier checked. The image is resolved again to build it; the manifest resolved now must be
//! the one verified (else whoever can write the image's storage swapped it in between: refused,
//! nothing stored). Every layer is checked against its digest and diff_id while it is applied,
//! so the objects and the image stored are exactly those of the verified manifest. When the
//! caller knows the digest the image must have (a verified seal), the stored image must have
//! it; a sealed image whose label differs from what its layers build is refused by the import.
//!
//! | found by | when |
//! |---|---|
//! | `images/<expected>` | a seal names the digest and the store has that image |
//! | `oci/manifests/<manifest>.json` | this manifest was imported before (its record names the image) |
//! | a build | otherwise (writes objects, `images/<digest>`, the OCI metadata; no ref) |

use std::path::Path;

use cfsgate_image::store::Repository;
use cfsgate_image::{ContentSha256, FsVeritySha256};
use cfsgate_oci::import::{import_image, read_import_record, NoProgress};
use cfsgate_oci::{resolve, BlobDigest};

use crate::error::{reason_of, GateError, Result};

/// How the composefs image came to be in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// It was already stored.
    Stored,
    /// It was built from the verified layers now.
    Built,
}

/// The composefs image of a verified image, in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnsuredImage {
    /// Its fs-verity digest: `images/<digest>` exists.
    pub digest: FsVeritySha256,
    /// Found or built.
    pub provenance: Provenance,
}

/// Make sure the composefs image of `image` (whose verified manifest is `manifest`) is in the
/// repository at `repo` (created when missing), building it from its layers when it is not.
/// `expected`: the digest it must have (a verified seal), if known. Every failure is a
/// [`GateError::Denied`] naming the image: the caller must not start the container.
pub fn ensure_image(
    repo: &Path,
    image: &str,
    manifest: &ContentSha256,
    expected: Option<&FsVeritySha256>,
) -> Result<EnsuredImage> {
    let deny = |what: &str, e: &(dyn std::error::Error + 'static)| {
        GateError::Denied(format!(
            "{image}: {what} its composefs image: {}",
            reason_of(e)
        ))
    };
    let store = Repository::create_or_open(repo).map_err(|e| deny("cannot store", &e))?;
    if let Some(digest) = expected {
        if store.has_image(digest) {
            return Ok(EnsuredImage {
                digest: *digest,
                provenance: Provenance::Stored,
            });
        }
    }
    if let Some(digest) = recorded_image(&store, manifest) {
        if expected.is_none_or(|e| *e == digest) && store.has_image(&digest) {
            return Ok(EnsuredImage {
                digest,
                provenance: Provenance::Stored,
            });
        }
    }
    let resolved = resolve(image).map_err(|e| deny("cannot read the image to build", &e))?;
    if resolved.manifest_digest != BlobDigest(*manifest) {
        return Err(GateError::Denied(format!(
            "{image}: the manifest is now {}, not the verified {manifest}: the image \
             changed after it was verified; nothing built",
            resolved.manifest_digest
        )));
    }
    let report =
        import_image(&store, &resolved, None, &NoProgress).map_err(|e| deny("cannot build", &e))?;
    if let Some(digest) = expected {
        if report.image_digest != *digest {
            return Err(GateError::Denied(format!(
                "{image}: its layers build the composefs image sha256:{}, not the verified \
                 sha256:{digest}",
                report.image_digest
            )));
        }
    }
    Ok(EnsuredImage {
        digest: report.image_digest,
        provenance: Provenance::Built,
    })
}

/// The image an earlier import of `manifest` recorded, if any (an unreadable record is as if
/// there were none: the image is built again).
fn recorded_image(store: &Repository, manifest: &ContentSha256) -> Option<FsVeritySha256> {
    read_import_record(store, &BlobDigest(*manifest))
        .ok()?
        .map(|record| record.image)
}
