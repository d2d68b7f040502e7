//! The sigstore bundles (v0.3, cosign v3's default signature) of the image the gate judges:
//! found where they are kept, and (opt-in) fetched from the registry the image came from.
//!
//! | source | when | what |
//! |---|---|---|
//! | `REPO/oci/bundles/<subject hex>/<bundle sha256 hex>.json` | always | bundles kept for the image's manifest or an index naming it (by an earlier fetch) |
//! | the registry of the name the image is judged as (`HOST/NAME:TAG`), through registries.conf's location for it (never a mirror) | `hook precreate --fetch-bundles` | the referrers of each subject: the OCI 1.1 referrers API, else the `sha256-<hex>` tag (`cfsgate_oci::registry::referrers`); each one found is kept as above |
//!
//! The subjects are the verified manifest digest and the indexes that name it (the manifest
//! lists podman kept with a pulled multi-arch image: `cfsgate_verifier::LoadedImage::indexes`).
//! podman 4.3 neither fetches nor keeps bundles, so for a podman-pulled image the first start
//! with `--fetch-bundles` fetches them and later starts find them kept (also with the registry
//! down). A bundle is a signature: where it is kept need not be trusted, since the policy
//! evaluation verifies each against the trusted keys and the verified digests
//! (`cfsgate_verifier::bundle_sign`); a junk file only costs its reading, under
//! [`MAX_BUNDLE_BYTES`] each and [`MAX_KEPT_PER_SUBJECT`] per subject. A fetch that fails is no
//! refusal by itself: the bundles kept are judged, and the failure is reported with a denial.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cfsgate_oci::registry::referrers::fetch_referrers;
use cfsgate_oci::registry::{ClientOptions, DockerRef, RegistriesConf, RegistryClient};
use cfsgate_oci::BlobDigest;
use cfsgate_sys::file::{read, Follow, SizeLimit};
use cfsgate_verifier::bundle::MAX_BUNDLE_BYTES;
use cfsgate_verifier::bundle_sign::BUNDLE_V03_MEDIA_TYPE;

use crate::GateConfig;

/// The kept bundles' directory in the repository.
pub const KEPT_DIR: &str = "oci/bundles";
/// Most kept bundles read for one subject (as many as the referrers fetched for one manifest).
pub const MAX_KEPT_PER_SUBJECT: usize = cfsgate_oci::registry::referrers::MAX_REFERRERS;
const BUNDLE_LIMIT: SizeLimit = SizeLimit::new("kept sigstore bundle", MAX_BUNDLE_BYTES);
/// Retries of a transient registry failure within the hook (the deadline bounds the rest).
const FETCH_RETRIES: u32 = 1;

/// The bundles found, and what went wrong fetching (in words, for a denial).
#[derive(Debug, Default)]
pub struct FoundBundles {
    /// Each bundle's bytes, once each.
    pub bundles: Vec<Vec<u8>>,
    /// Why a fetch failed, if one did.
    pub problems: Vec<String>,
}

/// The bundles of `image` (judged as `reference`) under `config` (see the module table).
pub fn image_bundles(config: &GateConfig, image: &str, reference: Option<&str>) -> FoundBundles {
    let mut found = FoundBundles::default();
    // Nothing to fetch and nothing kept: no second read of the image.
    if !config.fetch_bundles && !config.repo.join(KEPT_DIR).is_dir() {
        return found;
    }
    // An image that cannot be read has no bundles; the evaluation says why it is refused.
    let Ok(loaded) = cfsgate_verifier::load_image(image) else {
        return found;
    };
    let subjects: Vec<BlobDigest> = std::iter::once(loaded.manifest_digest)
        .chain(loaded.indexes.iter().copied())
        .map(BlobDigest)
        .collect();
    if config.fetch_bundles {
        if let Some(reference) = reference {
            if let Err(problem) = fetch_and_keep(config, reference, &subjects) {
                found.problems.push(problem);
            }
        }
    }
    for subject in &subjects {
        for bundle in kept(&config.repo, subject) {
            if !found.bundles.contains(&bundle) {
                found.bundles.push(bundle);
            }
        }
    }
    found
}

fn subject_dir(repo: &Path, subject: &BlobDigest) -> PathBuf {
    repo.join(KEPT_DIR).join(subject.hex())
}

/// The bundles kept for `subject`, in name order (unreadable entries skipped).
pub fn kept(repo: &Path, subject: &BlobDigest) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(subject_dir(repo, subject)) else {
        return Vec::new();
    };
    let mut names: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    names
        .iter()
        .take(MAX_KEPT_PER_SUBJECT)
        .filter_map(|p| read(p, Follow::NoSymlinks, BUNDLE_LIMIT).ok())
        .collect()
}

/// Keep `bundle` for `subject` (named by its sha256; written to a temporary file, renamed).
pub fn keep(repo: &Path, subject: &BlobDigest, bundle: &[u8]) -> std::io::Result<()> {
    let dir = subject_dir(repo, subject);
    std::fs::create_dir_all(&dir)?;
    let name = dir.join(format!("{}.json", BlobDigest::of(bundle).hex()));
    if name.is_file() {
        return Ok(());
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".bundle-")
        .tempfile_in(&dir)?;
    tmp.write_all(bundle)?;
    tmp.as_file().sync_all()?;
    tmp.persist(&name).map_err(|e| e.error)?;
    Ok(())
}

/// Fetch the bundles referring to each of `subjects` from the registry `reference` names and
/// keep them; `Err` says why not.
fn fetch_and_keep(
    config: &GateConfig,
    reference: &str,
    subjects: &[BlobDigest],
) -> Result<(), String> {
    let docker = DockerRef::parse(&format!("docker://{reference}"))
        .map_err(|e| format!("fetching sigstore bundles: {reference} names no registry: {e}"))?;
    let fail =
        |e: &dyn std::fmt::Display| format!("fetching the sigstore bundles of {docker}: {e}");
    let endpoint = RegistriesConf::load(config.registries_conf.as_deref())
        .and_then(|conf| conf.push_endpoint(&docker))
        .map_err(|e| fail(&e))?;
    let options = ClientOptions {
        tls_verify: !endpoint.insecure,
        timeout: Duration::from_secs(config.timeout_secs.max(1)),
        retries: FETCH_RETRIES,
        ..ClientOptions::default()
    };
    let client = RegistryClient::connect(&endpoint.reference, &options).map_err(|e| fail(&e))?;
    for subject in subjects {
        let found = fetch_referrers(
            &client,
            &endpoint.reference.repository,
            subject,
            BUNDLE_V03_MEDIA_TYPE,
            MAX_BUNDLE_BYTES,
        )
        .map_err(|e| fail(&e))?;
        for referrer in found {
            keep(&config.repo, subject, &referrer.blob).map_err(|e| {
                fail(&format!(
                    "keeping a bundle in {}: {e}",
                    config.repo.display()
                ))
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_bundles_are_read_back_once_each() {
        let repo = tempfile::tempdir().unwrap();
        let subject = BlobDigest::of(b"a manifest");
        assert!(kept(repo.path(), &subject).is_empty());
        keep(repo.path(), &subject, b"{\"one\":1}").unwrap();
        keep(repo.path(), &subject, b"{\"one\":1}").unwrap();
        keep(repo.path(), &subject, b"{\"two\":2}").unwrap();
        let mut found = kept(repo.path(), &subject);
        found.sort();
        assert_eq!(
            found,
            vec![b"{\"one\":1}".to_vec(), b"{\"two\":2}".to_vec()]
        );
        assert!(kept(repo.path(), &BlobDigest::of(b"another")).is_empty());
    }
}
