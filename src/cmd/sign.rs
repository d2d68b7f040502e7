//! `cfsgate sign`: `--format simple` (default) writes a cosign simple-signing signature
//! (`super::verify::run_sign`; for a `docker://` image pushed to the `sha256-<hex>.sig` tag),
//! `--format bundle docker://…` a key-signed sigstore bundle v0.3 of the image's
//! manifest (`cfsgate_verifier::bundle_sign`: DSSE, an in-toto statement naming the manifest
//! digest, no transparency log), pushed as an OCI 1.1 referrer of that manifest through the
//! registry's referrers API or, when it has none, the `sha256-<hex>` referrers tag
//! (`cfsgate_verifier::bundle_registry`). Prints the artifact manifest's digest and how it was
//! indexed. A tag naming an image index gets a bundle over the index's digest, as `cosign sign`
//! does (docs/registry.md, "Multi-arch images").

use anyhow::{Context, Result};
use cfsgate_keyring::{Passphrase, PrivateKey};
use cfsgate_oci::registry::DockerRef;
use cfsgate_verifier::bundle_registry::{fetch_manifest_bundles, sign_and_push_bundle};

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
    Ok(fetch_manifest_bundles(
        &client,
        &endpoint.reference,
        docker,
        digests,
    )?)
}

/// Sign `args.image` (a `docker://` reference) with a bundle and push it.
fn run_bundle(args: &SignArgs, registry: &RegistryArgs) -> Result<()> {
    let docker = DockerRef::parse(&args.image)?;
    let key = PrivateKey::from_file(&args.key, &Passphrase::EnvOrPrompt)
        .with_context(|| format!("cannot load signing key {}", args.key.display()))?;
    let endpoint = registry.registries_conf()?.push_endpoint(&docker)?;
    let client = registry.connect(&endpoint)?;
    let target = &endpoint.reference;
    let signed = sign_and_push_bundle(&client, target, &docker, &key, &args.identity)?;
    println!(
        "pushed sigstore bundle {} referring to {}@{} ({})",
        signed.pushed.manifest,
        target.name(),
        signed.subject,
        match &signed.pushed.fallback_tag {
            Some(tag) => format!("no referrers API: listed in the {tag} tag"),
            None => "indexed by the referrers API".into(),
        }
    );
    Ok(())
}
