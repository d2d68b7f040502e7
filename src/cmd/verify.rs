//! `cfsgate verify` and `cfsgate sign`: cosign simple-signing signatures of skopeo `dir:`
//! images and OCI layouts, judged by a containers-policy.json policy (see
//! `cfsgate_verifier::evaluate`).
//!
//! | command | does |
//! |---|---|
//! | `verify REF [--policy FILE] [--reference NAME] [--repo DIR] [--json]` | evaluates the policy (default `/etc/cfsgate/policy.json`) |
//! | `verify REF --key FILE… \| --keyring NAME --reference NAME [--identity-match …] [--rekor-key FILE…] [--require-seal] [--repo DIR]` | the same with a one-scope policy built from the keys (`--rekor-key`: `rekorPublicKeyPaths`, a signature then counts only with a Rekor SET from one of them) |
//! | `sign REF --key FILE --identity NAME` | `dir:`: writes the next `signature-N`; `oci:PATH[:TAG]`: appends a layer to the `sha256-<hex>.sig` tag |
//!
//! `docker://` images are fetched into a temporary layout first (and a signature pushed back)
//! by `super::registry`, which wraps these arguments with the registry options.
//!
//! Exit contract of `run_verify`: `Ok(true)` accepted (exit 0, also warn-mode admissions),
//! `Ok(false)` rejected (exit 1), `Err` could not evaluate (exit 2): the policy or a key
//! file is unreadable, the image cannot be read.
//!
//! `--identity-match` defaults to `repository` because cosign signs the repository name
//! only; containers/image's `matchRepoDigestOrExact` would refuse every cosign signature.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cfsgate_keyring::{Passphrase, PrivateKey};
use cfsgate_policy::Policy;
use cfsgate_verifier::evaluate::unix_now;
use cfsgate_verifier::explain::{render_verdict, verification_json};
use cfsgate_verifier::key_policy::{verify_policy as verify_policy_of, KeyPolicy};
use cfsgate_verifier::{evaluate, sign_dir_image, sign_oci_image, EvaluationRequest};

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default)]
pub enum IdentityMatch {
    /// Same repository; tags and digests ignored (`matchRepository`).
    #[default]
    Repository,
    /// Same repository and tag/digest (`matchExact`).
    Exact,
    /// containers/image's default (`matchRepoDigestOrExact`).
    RepoDigestOrExact,
}

impl IdentityMatch {
    fn policy_type(self) -> &'static str {
        match self {
            IdentityMatch::Repository => "matchRepository",
            IdentityMatch::Exact => "matchExact",
            IdentityMatch::RepoDigestOrExact => "matchRepoDigestOrExact",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The image: `dir:PATH`, `oci:PATH[:TAG]`, `oci:PATH@sha256:HEX` or
    /// `containers-storage:[[DRIVER@]GRAPHROOT[+RUNROOT]]NAME[:TAG|@sha256:HEX]` (judged as NAME).
    pub image: String,
    /// A trusted public key (PEM/DER); repeat for several (any one may sign). Replaces the
    /// policy file with a one-scope policy.
    #[arg(long = "key", value_name = "FILE", conflicts_with_all = ["policy", "keyring"])]
    pub keys: Vec<PathBuf>,
    /// Trust every key of this kernel keyring (instead of a policy file).
    #[arg(long, value_name = "NAME", conflicts_with = "policy")]
    pub keyring: Option<String>,
    /// The policy file (default /etc/cfsgate/policy.json when neither --key nor --keyring).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// The docker reference the image is used as (the `docker` scopes then apply, and
    /// signatures must claim a matching identity). Required with --key/--keyring.
    #[arg(long, value_name = "NAME")]
    pub reference: Option<String>,
    /// With --key/--keyring: how the claimed identity must match the reference.
    #[arg(long, value_enum, default_value_t = IdentityMatch::Repository)]
    pub identity_match: IdentityMatch,
    /// With --key/--keyring: a Rekor log public key (ECDSA PEM); repeat for several (any one
    /// may have signed). A signature then counts only with a Rekor signed entry timestamp
    /// that verifies offline and logs that signature, key and payload.
    #[arg(long = "rekor-key", value_name = "FILE", conflicts_with = "policy")]
    pub rekor_keys: Vec<PathBuf>,
    /// With --key/--keyring: also require the composefs seal.
    #[arg(long)]
    pub require_seal: bool,
    /// The global `--repo`, when given: a composefs repository holding the sealed image
    /// (`images/<digest>`); otherwise the image is rebuilt from the layers to check the seal.
    #[arg(skip)]
    pub repo: Option<PathBuf>,
    /// Sigstore bundles of a `docker://` image (its referrers), fetched before evaluating.
    #[arg(skip)]
    pub bundles: Vec<Vec<u8>>,
    /// Print the decision as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct SignArgs {
    /// The image: `dir:PATH` or `oci:PATH[:TAG]`.
    pub image: String,
    /// The private key (PKCS#8 PEM, or an encrypted cosign key: passphrase from the
    /// environment or a prompt).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The docker reference the signature claims (cosign uses the repository name).
    #[arg(long, value_name = "NAME")]
    pub identity: String,
}

/// A one-scope policy trusting `--key` files or a `--keyring` (`cfsgate_verifier::key_policy`).
/// The policy `args` ask for (keys, a keyring or a policy file).
pub fn verify_policy(args: &VerifyArgs) -> Result<Policy> {
    let keys = KeyPolicy {
        keys: &args.keys,
        keyring: args.keyring.as_deref(),
        identity_match: args.identity_match.policy_type(),
        rekor_keys: &args.rekor_keys,
        require_seal: args.require_seal,
    };
    let file = args.policy.as_deref();
    Ok(verify_policy_of(
        &keys,
        file,
        &args.image,
        args.reference.as_deref(),
    )?)
}

pub fn run_verify(args: &VerifyArgs) -> Result<bool> {
    let policy = verify_policy(args)?;
    let decision = evaluate(&EvaluationRequest {
        image: &args.image,
        reference: args.reference.as_deref(),
        policy: &policy,
        repo: args.repo.as_deref(),
        now: unix_now(),
        bundles: &args.bundles,
        store_root: false,
        built_key: None,
    })?;
    if args.json {
        println!("{}", verification_json(&decision)?);
    } else {
        print!("{}", render_verdict(&decision));
    }
    // The process ends right after this: freeing a policy of thousands of scopes one
    // allocation at a time would cost more than its whole evaluation, for nothing.
    std::mem::forget(policy);
    Ok(decision.admitted)
}

/// Runs `sign`.
pub fn run_sign(args: &SignArgs) -> Result<()> {
    let key = PrivateKey::from_file(&args.key, &Passphrase::EnvOrPrompt)
        .with_context(|| format!("cannot load signing key {}", args.key.display()))?;
    let key_id = key.public_key().key_id();
    if let Some(path) = args.image.strip_prefix("dir:") {
        if path.is_empty() {
            bail!("image {:?}: empty path", args.image);
        }
        let signed = sign_dir_image(Path::new(path), &key, &args.identity)?;
        println!(
            "{} signed by {key_id} as {}",
            signed.path.display(),
            args.identity
        );
    } else if args.image.starts_with("oci:") {
        let signed = sign_oci_image(&args.image, &key, &args.identity)?;
        println!(
            "{} tag {} now has {} signature(s); this one by {key_id} as {}",
            args.image, signed.tag, signed.layers, args.identity
        );
    } else {
        bail!(
            "image {:?} is neither dir:PATH nor oci:PATH[:TAG]",
            args.image
        );
    }
    Ok(())
}
