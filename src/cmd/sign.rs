//! `cfsgate sign`: `--format simple` (default) writes a cosign simple-signing signature
//! (`super::verify::run_sign`; for a `docker://` image pushed to the `sha256-<hex>.sig` tag),
//! `--format bundle docker://…` a key-signed sigstore bundle v0.3 of the image's
//! manifest (`cfsgate_verifier::bundle_sign`: DSSE, an in-toto statement naming the manifest
//! digest, no transparency log), pushed as an OCI 1.1 referrer of that manifest through the
//! registry's referrers API or, when it has none, the `sha256-<hex>` referrers tag
//! (`cfsgate_oci::registry::referrers`). Prints the artifact manifest's digest and how it was
//! indexed. A tag naming an image index gets a bundle over the index's digest, as `cosign sign`
//! does (docs/registry.md, "Multi-arch images").

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use cfsgate_keyring::{Passphrase, PrivateKey};
use cfsgate_oci::registry::referrers::{fetch_referrers, push_referrer, Subject};
use cfsgate_oci::registry::DockerRef;
use cfsgate_verifier::bundle::MAX_BUNDLE_BYTES;
use cfsgate_verifier::bundle_sign::{
    sign_manifest_bundle, BUNDLE_V03_MEDIA_TYPE, COSIGN_SIGN_PREDICATE,
};

use clap::Args;

use super::registry::{is_docker, push_signature_tag, stage, RegistryArgs};
use super::verify::SignArgs;

/// Signature formats `sign` writes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignFormat {
    /// cosign simple signing: the `sha256-<hex>.sig` tag (a `dir:` image: `signature-N`).
    #[default]
    Simple,
    /// A sigstore bundle v0.3 pushed as an OCI referrer (docker:// only).
    Bundle,
}

/// `cfsgate sign` with the registry options: for a `docker://` image the signature is added
/// to the registry's `sha256-<hex>.sig` tag (fetched, extended, pushed back).
#[derive(Args, Debug)]
pub struct SignCmd {
    #[command(flatten)]
    pub sign: super::verify::SignArgs,
    /// What to write.
    #[arg(long, value_enum, default_value_t = SignFormat::Simple)]
    pub format: SignFormat,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Run `cfsgate sign` (see [`SignCmd`]).
pub fn run_sign(cmd: SignCmd) -> Result<()> {
    let mut args = cmd.sign;
    if cmd.format == SignFormat::Bundle {
        anyhow::ensure!(
            is_docker(&args.image),
            "--format bundle signs docker:// images"
        );
        return run_bundle(&args, &cmd.registry);
    }
    if !is_docker(&args.image) {
        return super::verify::run_sign(&args);
    }
    let staged = stage(&args.image, &cmd.registry, false)?;
    let (Some(docker), Some(fetched)) = (&staged.docker, &staged.fetched) else {
        anyhow::bail!("{} was not fetched", args.image);
    };
    args.image = staged.reference.clone();
    super::verify::run_sign(&args)?;
    let pushed = push_signature_tag(&cmd.registry, docker, &fetched.layout, &fetched.top_digest)?;
    println!(
        "pushed {}:sha256-{}.sig (manifest {pushed})",
        docker.name(),
        fetched.top_digest.hex()
    );
    Ok(())
}

/// The sigstore bundles referring to any of `digests` (the digest the reference names and, for
/// an index, the platform's manifest; referrers API, else the `sha256-<hex>` tag) in the
/// registry `docker` names, for `verify` (judged there, under the policy).
pub fn fetch_bundles(
    registry: &RegistryArgs,
    docker: &DockerRef,
    digests: &[cfsgate_oci::BlobDigest],
) -> Result<Vec<Vec<u8>>> {
    // The registry's own location (never a mirror: a mirror is only a source of bytes).
    let endpoint = registry.registries_conf()?.push_endpoint(docker)?;
    let client = registry.connect(&endpoint)?;
    let mut bundles = Vec::new();
    for (n, digest) in digests.iter().enumerate() {
        if digests[..n].contains(digest) {
            continue;
        }
        let found = fetch_referrers(
            &client,
            &endpoint.reference.repository,
            digest,
            BUNDLE_V03_MEDIA_TYPE,
            MAX_BUNDLE_BYTES,
        )
        .with_context(|| format!("fetching the sigstore bundles of {docker}@{digest}"))?;
        bundles.extend(found.into_iter().map(|r| r.blob));
    }
    Ok(bundles)
}

/// Largest manifest signed (an image index of many platforms included).
pub const MAX_SIGNED_MANIFEST_BYTES: u64 = 4 << 20;

/// Sign `args.image` (a `docker://` reference) with a bundle and push it.
fn run_bundle(args: &SignArgs, registry: &RegistryArgs) -> Result<()> {
    let docker = DockerRef::parse(&args.image)?;
    let key = PrivateKey::from_file(&args.key, &Passphrase::EnvOrPrompt)
        .with_context(|| format!("cannot load signing key {}", args.key.display()))?;
    let endpoint = registry.registries_conf()?.push_endpoint(&docker)?;
    let client = registry.connect(&endpoint)?;
    let target = &endpoint.reference;
    let manifest = client
        .get_manifest(
            &target.repository,
            &target.manifest_reference(),
            target.digest.as_ref(),
            MAX_SIGNED_MANIFEST_BYTES,
        )
        .with_context(|| format!("fetching the manifest of {docker}"))?
        .with_context(|| format!("{docker}: no such manifest"))?;
    let bundle = sign_manifest_bundle(&key, &args.identity, &manifest.digest.0 .0);
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
        &client,
        &target.repository,
        &subject,
        BUNDLE_V03_MEDIA_TYPE,
        &bundle,
        BUNDLE_V03_MEDIA_TYPE,
        &annotations,
    )
    .with_context(|| format!("pushing the bundle to {}", target.name()))?;
    println!(
        "pushed sigstore bundle {} referring to {}@{} ({})",
        pushed.manifest,
        target.name(),
        manifest.digest,
        match &pushed.fallback_tag {
            Some(tag) => format!("no referrers API: listed in the {tag} tag"),
            None => "indexed by the referrers API".into(),
        }
    );
    Ok(())
}
