//! `cfsgate verify` and `cfsgate sign`: cosign simple-signing signatures of skopeo `dir:`
//! images (see `cfsgate_verifier`).
//!
//! | command | does |
//! |---|---|
//! | `verify dir:PATH --key FILE… --reference NAME [--identity-match repository\|exact\|repo-digest-or-exact] [--json]` | prints `accepted: …` or `rejected: …`, then one line per signature; JSON with `--json` |
//! | `sign dir:PATH --key FILE --identity NAME` | writes the next `signature-N`; prints its path and the key id |
//!
//! `--identity-match` defaults to `repository` because cosign signs the repository name
//! only; containers/image's `matchRepoDigestOrExact` would refuse every cosign signature.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use cfsgate_keyring::{Passphrase, PrivateKey, PublicKey};
use cfsgate_policy::{DockerReference, SignedIdentity};
use cfsgate_verifier::{
    sign_dir_image, verify_dir_image, IdentityRequirement, SignatureOutcome, Verdict,
};

/// The transport prefix of a skopeo `dir:` image.
const DIR_TRANSPORT: &str = "dir:";

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

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The image: `dir:PATH`.
    pub image: String,
    /// A trusted public key (PEM/DER); repeat for several (any one may sign).
    #[arg(long = "key", value_name = "FILE", required = true)]
    pub keys: Vec<PathBuf>,
    /// The docker reference the image is used as; signatures must claim a matching identity.
    #[arg(long, value_name = "NAME")]
    pub reference: String,
    /// How the claimed identity must match the reference.
    #[arg(long, value_enum, default_value_t = IdentityMatch::Repository)]
    pub identity_match: IdentityMatch,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct SignArgs {
    /// The image: `dir:PATH`.
    pub image: String,
    /// The private key (PKCS#8 PEM, or an encrypted cosign key: passphrase from the
    /// environment or a prompt).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The docker reference the signature claims (cosign uses the repository name).
    #[arg(long, value_name = "NAME")]
    pub identity: String,
}

fn dir_path(image: &str) -> Result<PathBuf> {
    match image.strip_prefix(DIR_TRANSPORT) {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => bail!("image {image:?} is not `dir:PATH` (the only transport this command reads)"),
    }
}

/// Runs `verify`; `Ok(true)` when accepted.
pub fn run_verify(args: &VerifyArgs) -> Result<bool> {
    let dir = dir_path(&args.image)?;
    let keys = args
        .keys
        .iter()
        .map(|path| {
            PublicKey::from_file(path)
                .with_context(|| format!("cannot load trusted key {}", path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let image_reference = DockerReference::parse_normalized(&args.reference)
        .with_context(|| format!("--reference {:?}", args.reference))?;
    let rule = match args.identity_match {
        IdentityMatch::Repository => SignedIdentity::MatchRepository,
        IdentityMatch::Exact => SignedIdentity::MatchExact,
        IdentityMatch::RepoDigestOrExact => SignedIdentity::MatchRepoDigestOrExact,
    };
    let requirement = IdentityRequirement {
        rule,
        image_reference: Some(image_reference),
    };
    let verdict = verify_dir_image(&dir, &keys, &requirement);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&verdict)?);
    } else {
        print!("{}", render(&verdict));
    }
    Ok(verdict.is_accepted())
}

/// The human report: one line with the verdict and reason, then one line per signature.
pub fn render(verdict: &Verdict) -> String {
    let mut out = match verdict {
        Verdict::Accepted {
            signers,
            identities,
            manifest_digest,
            ..
        } => format!(
            "accepted: {manifest_digest} signed by {} as {}\n",
            signers
                .iter()
                .map(|k| k.short())
                .collect::<Vec<_>>()
                .join(", "),
            identities.join(", ")
        ),
        Verdict::Rejected { reason, .. } => format!("rejected: {reason}\n"),
    };
    for report in verdict.signatures() {
        out.push_str(&format!(
            "  {}: {}\n",
            report.file.display(),
            describe(&report.outcome)
        ));
    }
    out
}

fn describe(outcome: &SignatureOutcome) -> String {
    match outcome {
        SignatureOutcome::Accepted { key_id, identity } => {
            format!("valid, key {}, identity {identity}", key_id.short())
        }
        SignatureOutcome::NotSigstore => "not a sigstore signature (ignored)".into(),
        SignatureOutcome::Malformed { reason } => format!("malformed: {reason}"),
        SignatureOutcome::NotSimpleSigning { mime_type } => {
            format!("not a simple-signing signature (mimeType {mime_type:?})")
        }
        SignatureOutcome::Untrusted { per_key } => format!(
            "not signed by a trusted key ({})",
            per_key
                .iter()
                .map(|f| format!("{}: {}", f.key_id.short(), f.reason))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        SignatureOutcome::BadPayload { key_id, reason } => {
            format!("key {} signed an invalid payload: {reason}", key_id.short())
        }
        SignatureOutcome::DigestMismatch {
            key_id,
            signed,
            actual,
        } => format!(
            "key {} signed manifest {signed}, but manifest.json is {actual}",
            key_id.short()
        ),
        SignatureOutcome::IdentityMismatch { key_id, claimed } => format!(
            "key {} signed identity {claimed:?}, which the identity rule does not accept",
            key_id.short()
        ),
    }
}

/// Runs `sign`.
pub fn run_sign(args: &SignArgs) -> Result<()> {
    let dir = dir_path(&args.image)?;
    let key = PrivateKey::from_file(&args.key, &Passphrase::EnvOrPrompt)
        .with_context(|| format!("cannot load signing key {}", args.key.display()))?;
    let signed = sign_dir_image(&dir, &key, &args.identity)?;
    println!(
        "{} signed by {} as {}",
        signed.path.display(),
        key.public_key().key_id(),
        args.identity
    );
    Ok(())
}
