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
use cfsgate_oci::registry::{is_docker, DockerRef};
use cfsgate_verifier::bundle_registry::sign_and_push_bundle;

use clap::Args;

use super::registry::{stage, RegistryArgs};
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
    args.image = staged.reference.clone();
    super::verify::run_sign(&args)?;
    if let Some((tag, pushed)) = staged.push_signature_tag()? {
        println!("pushed {tag} (manifest {pushed})");
    }
    Ok(())
}

/// Sign `args.image` (a `docker://` reference) with a bundle and push it.
fn run_bundle(args: &SignArgs, registry: &RegistryArgs) -> Result<()> {
    let docker = DockerRef::parse(&args.image)?;
    let key = PrivateKey::from_file(&args.key, &Passphrase::EnvOrPrompt)
        .with_context(|| format!("cannot load signing key {}", args.key.display()))?;
    let (client, endpoint) = registry.session()?.at_registry(&docker)?;
    let target = &endpoint.reference;
    let signed = sign_and_push_bundle(&client, target, &docker, &key, &args.identity)?;
    println!("{}", signed.summary(target));
    Ok(())
}
