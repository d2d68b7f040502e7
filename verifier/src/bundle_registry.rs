//! Sigstore bundles in a registry, as OCI 1.1 referrers of the manifest they sign
//! (`cfsgate_oci::registry::referrers`): the bundles of an image fetched for `cfsgate verify`
//! (judged there, under the policy), and a manifest signed with a key-signed bundle
//! ([`crate::bundle_sign`]) and pushed for `cfsgate sign --format bundle`.
//!
//! | push | content |
//! |---|---|
//! | subject | the manifest the reference names (an image index: the index, as `cosign sign` does) |
//! | artifact type, layer media type | [`BUNDLE_V03_MEDIA_TYPE`] |
//! | annotations | `dev.sigstore.bundle.content: dsse-envelope`, `dev.sigstore.bundle.predicateType:` [`COSIGN_SIGN_PREDICATE`] |
//!
//! A registry without the referrers API gets the bundle listed in the `sha256-<hex>` tag
//! instead ([`PushedReferrer::fallback_tag`]).

use std::collections::BTreeMap;

use cfsgate_keyring::PrivateKey;
use cfsgate_oci::registry::referrers::{fetch_referrers, push_referrer, PushedReferrer, Subject};
use cfsgate_oci::registry::{DockerRef, RegistryClient, RegistryError, SessionError, Staged};
use cfsgate_oci::BlobDigest;

use crate::bundle::MAX_BUNDLE_BYTES;
use crate::bundle_sign::{sign_manifest_bundle, BUNDLE_V03_MEDIA_TYPE, COSIGN_SIGN_PREDICATE};

/// Largest manifest signed (an image index of many platforms included).
pub const MAX_SIGNED_MANIFEST_BYTES: u64 = 4 << 20;

/// A registry step failed; each names the image.
#[derive(Debug, thiserror::Error)]
pub enum BundleRegistryError {
    /// The registry could not be reached (registries.conf, credentials, TLS).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// Listing or reading the bundles of a manifest failed.
    #[error("fetching the sigstore bundles of {image}: {source}")]
    Fetch {
        /// `NAME@DIGEST`.
        image: String,
        /// Why.
        source: Box<RegistryError>,
    },
    /// The manifest to sign could not be fetched.
    #[error("fetching the manifest of {image}: {source}")]
    Manifest {
        /// The reference.
        image: String,
        /// Why.
        source: Box<RegistryError>,
    },
    /// The registry has no such manifest.
    #[error("{image}: no such manifest")]
    NoManifest {
        /// The reference.
        image: String,
    },
    /// The bundle could not be pushed.
    #[error("pushing the bundle to {image}: {source}")]
    Push {
        /// The repository.
        image: String,
        /// Why.
        source: Box<RegistryError>,
    },
}

/// The bundles referring to any of `digests` (each digest asked once) in `target`'s
/// repository; `shown` names the image in errors (the reference as the user gave it).
pub fn fetch_manifest_bundles(
    client: &RegistryClient,
    target: &DockerRef,
    shown: &DockerRef,
    digests: &[BlobDigest],
) -> Result<Vec<Vec<u8>>, BundleRegistryError> {
    let mut bundles = Vec::new();
    for (n, digest) in digests.iter().enumerate() {
        if digests[..n].contains(digest) {
            continue;
        }
        let found = fetch_referrers(
            client,
            &target.repository,
            digest,
            BUNDLE_V03_MEDIA_TYPE,
            MAX_BUNDLE_BYTES,
        )
        .map_err(|source| BundleRegistryError::Fetch {
            image: format!("{shown}@{digest}"),
            source: Box::new(source),
        })?;
        bundles.extend(found.into_iter().map(|r| r.blob));
    }
    Ok(bundles)
}

/// The bundles of a staged image for `verify`: for one fetched from a registry, those
/// referring to the digest its reference names or, for an index, to the platform's manifest,
/// looked up at the registry's own location (never a mirror: a mirror is only a source of
/// bytes); none for a local image.
pub fn staged_bundles(staged: &Staged) -> Result<Vec<Vec<u8>>, BundleRegistryError> {
    let Some((docker, fetched, session)) = staged.from_registry() else {
        return Ok(Vec::new());
    };
    let (client, endpoint) = session.at_registry(docker)?;
    let digests = [fetched.top_digest, fetched.manifest_digest];
    fetch_manifest_bundles(&client, &endpoint.reference, docker, &digests)
}

/// What [`sign_and_push_bundle`] did.
#[derive(Clone, Debug)]
pub struct PushedBundle {
    /// The signed manifest's digest (the referrer's subject).
    pub subject: BlobDigest,
    /// The referrer manifest, and the fallback tag when there is no referrers API.
    pub pushed: PushedReferrer,
}

impl PushedBundle {
    /// What `cfsgate sign --format bundle` reports: the referrer pushed, the manifest it
    /// refers to in `target`'s repository, and how the registry indexes it.
    pub fn summary(&self, target: &DockerRef) -> String {
        format!(
            "pushed sigstore bundle {} referring to {}@{} ({})",
            self.pushed.manifest,
            target.name(),
            self.subject,
            match &self.pushed.fallback_tag {
                Some(tag) => format!("no referrers API: listed in the {tag} tag"),
                None => "indexed by the referrers API".into(),
            }
        )
    }
}

/// Sign the manifest `target` names with `key` (the statement naming `identity`) and push the
/// bundle as its referrer; `shown` names the image in errors.
pub fn sign_and_push_bundle(
    client: &RegistryClient,
    target: &DockerRef,
    shown: &DockerRef,
    key: &PrivateKey,
    identity: &str,
) -> Result<PushedBundle, BundleRegistryError> {
    let image = || shown.to_string();
    let manifest = client
        .get_manifest(
            &target.repository,
            &target.manifest_reference(),
            target.digest.as_ref(),
            MAX_SIGNED_MANIFEST_BYTES,
        )
        .map_err(|source| BundleRegistryError::Manifest {
            image: image(),
            source: Box::new(source),
        })?
        .ok_or_else(|| BundleRegistryError::NoManifest { image: image() })?;
    let bundle = sign_manifest_bundle(key, identity, &manifest.digest.0 .0);
    let subject = Subject {
        digest: manifest.digest,
        media_type: manifest.media_type.clone(),
        size: manifest.bytes.len() as u64,
    };
    let annotations = BTreeMap::from([
        (
            "dev.sigstore.bundle.content".to_string(),
            "dsse-envelope".to_string(),
        ),
        (
            "dev.sigstore.bundle.predicateType".to_string(),
            COSIGN_SIGN_PREDICATE.to_string(),
        ),
    ]);
    let pushed = push_referrer(
        client,
        &target.repository,
        &subject,
        BUNDLE_V03_MEDIA_TYPE,
        &bundle,
        BUNDLE_V03_MEDIA_TYPE,
        &annotations,
    )
    .map_err(|source| BundleRegistryError::Push {
        image: target.name(),
        source: Box::new(source),
    })?;
    Ok(PushedBundle {
        subject: manifest.digest,
        pushed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfsgate_keyring::KeyType;
    use cfsgate_oci::registry::ClientOptions;

    #[test]
    fn a_local_image_has_no_registry_bundles() {
        let staged = Staged::local("oci:/images/app:1");
        assert!(staged_bundles(&staged)
            .expect("nothing to fetch")
            .is_empty());
    }

    #[test]
    fn the_summary_says_how_the_bundle_was_indexed() {
        let target = DockerRef::parse("docker://registry.example/app:1").expect("reference");
        let (subject, manifest) = (BlobDigest::of(b"image"), BlobDigest::of(b"artifact"));
        let mut signed = PushedBundle {
            subject,
            pushed: PushedReferrer {
                manifest,
                fallback_tag: None,
            },
        };
        assert_eq!(
            signed.summary(&target),
            format!("pushed sigstore bundle {manifest} referring to registry.example/app@{subject} (indexed by the referrers API)")
        );
        signed.pushed.fallback_tag = Some(format!("sha256-{}", subject.hex()));
        assert_eq!(
            signed.summary(&target),
            format!("pushed sigstore bundle {manifest} referring to registry.example/app@{subject} (no referrers API: listed in the sha256-{} tag)", subject.hex())
        );
    }

    /// A registry that refuses connections (port 9, discard, is closed here): each step's
    /// error names the image as the user gave it, and nothing is pushed.
    #[test]
    fn an_unreachable_registry_is_named_in_each_step() {
        let target = DockerRef::parse("docker://127.0.0.1:9/app:v1").expect("reference");
        let shown = DockerRef::parse("docker://mirror.example/app:v1").expect("reference");
        let options = ClientOptions {
            tls_verify: false,
            retries: 0,
            ..ClientOptions::default()
        };
        let client = RegistryClient::connect(&target, &options).expect("client");
        let digest = BlobDigest::of(b"a manifest");
        let error = fetch_manifest_bundles(&client, &target, &shown, &[digest, digest])
            .expect_err("unreachable");
        assert!(
            error.to_string().starts_with(&format!(
                "fetching the sigstore bundles of {shown}@{digest}: "
            )),
            "{error}"
        );
        let key = PrivateKey::generate(KeyType::Ed25519);
        let error =
            sign_and_push_bundle(&client, &target, &shown, &key, "app").expect_err("unreachable");
        assert!(
            matches!(error, BundleRegistryError::Manifest { .. }),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .starts_with(&format!("fetching the manifest of {shown}: ")),
            "{error}"
        );
    }
}
