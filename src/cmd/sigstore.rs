//! `cfsgate sigstore verify-bundle`: a sigstore bundle checked offline, in the shape of
//! sigstore-conformance's CLI protocol (`docs/cli_protocol.md`), so its public cases run
//! against cfsgate.
//!
//! | command | does |
//! |---|---|
//! | `sigstore verify-bundle --bundle FILE --key KEY.pub [--trusted-root FILE] FILE_OR_sha256:HEX` | verifies a key-signed bundle: exit 0 when it verifies |
//! | `sigstore verify-bundle --bundle FILE --certificate-identity ID --certificate-oidc-issuer URL [--trusted-root FILE] FILE_OR_sha256:HEX` | verifies a keyless (Fulcio certificate) bundle for that identity and issuer, exactly |
//!
//! Both run [`cfsgate_verifier::bundle_keyless::verify_bundle`] against `--trusted-root`
//! (sigstore's `trusted_root.json`: logs, CT logs, CAs, timestamp authorities), by default
//! `/etc/cfsgate/sigstore/trusted_root.json`. Everything is judged offline at the signing time
//! the bundle proves (SET, RFC 3161 timestamp); `now` only bounds the SET's time from above.
//! A refusal exits 1 and says which check failed.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use cfsgate_keyring::{read_trust_file, PublicKey, MAX_TRUST_FILE_BYTES};
use cfsgate_verifier::bundle::{parse_bundle, MAX_BUNDLE_BYTES};
use cfsgate_verifier::bundle_keyless::{verify_bundle as verify, Expected};
use cfsgate_verifier::bundle_verify::Artifact;
use cfsgate_verifier::evaluate::unix_now;
use cfsgate_verifier::trusted_root::TrustedRoot;

/// Where the trusted root is read from without `--trusted-root`.
pub const DEFAULT_TRUSTED_ROOT: &str = "/etc/cfsgate/sigstore/trusted_root.json";
/// Largest artifact read to verify a message signature over it (use `sha256:HEX` beyond).
const MAX_ARTIFACT_BYTES: u64 = 1 << 30;

#[derive(clap::Args, Debug)]
pub struct SigstoreArgs {
    #[command(subcommand)]
    pub command: SigstoreCmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum SigstoreCmd {
    /// Verify a sigstore bundle offline (exit 0 only when it verifies).
    VerifyBundle(VerifyBundleArgs),
}

#[derive(clap::Args, Debug)]
pub struct VerifyBundleArgs {
    /// The bundle (`*.sigstore.json`).
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// The signer's public key (PEM), for key-signed bundles.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["certificate_identity", "certificate_oidc_issuer"])]
    pub key: Option<PathBuf>,
    /// The certificate's identity (SAN), for keyless bundles.
    #[arg(long, value_name = "ID", requires = "certificate_oidc_issuer")]
    pub certificate_identity: Option<String>,
    /// The certificate's OIDC issuer, for keyless bundles.
    #[arg(long, value_name = "URL", requires = "certificate_identity")]
    pub certificate_oidc_issuer: Option<String>,
    /// sigstore's trusted_root.json (transparency logs, CAs).
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// The artifact: a file, or `sha256:HEX` of it.
    pub artifact: String,
}

/// Runs `cfsgate sigstore …`.
pub fn run(args: &SigstoreArgs) -> Result<()> {
    match &args.command {
        SigstoreCmd::VerifyBundle(a) => verify_bundle(a),
    }
}

fn verify_bundle(args: &VerifyBundleArgs) -> Result<()> {
    let bundle_bytes = cfsgate_sys::file::read(
        &args.bundle,
        cfsgate_sys::file::Follow::Symlinks,
        cfsgate_sys::file::SizeLimit::new("sigstore bundle", MAX_BUNDLE_BYTES),
    )?;
    let bundle =
        parse_bundle(&bundle_bytes).with_context(|| format!("bundle {}", args.bundle.display()))?;
    let key = args.key.as_deref().map(PublicKey::from_file).transpose()?;
    let expected = match (
        &key,
        &args.certificate_identity,
        &args.certificate_oidc_issuer,
    ) {
        (Some(key), _, _) => Expected::Key(key),
        (None, Some(identity), Some(issuer)) => Expected::Identity { identity, issuer },
        _ => bail!("give --key, or --certificate-identity and --certificate-oidc-issuer"),
    };
    let root_path = args
        .trusted_root
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_TRUSTED_ROOT));
    let root = TrustedRoot::parse(&read_trust_file(&root_path, MAX_TRUST_FILE_BYTES)?)
        .with_context(|| format!("trusted root {}", root_path.display()))?;
    let bytes;
    let artifact = match args.artifact.strip_prefix("sha256:") {
        Some(hex) => {
            let digest: [u8; 32] = hex::decode(hex)
                .ok()
                .and_then(|d| d.try_into().ok())
                .with_context(|| format!("{:?} is not sha256:<64 hex digits>", args.artifact))?;
            Artifact::Sha256(digest)
        }
        None => {
            bytes = cfsgate_sys::file::read(
                std::path::Path::new(&args.artifact),
                cfsgate_sys::file::Follow::Symlinks,
                cfsgate_sys::file::SizeLimit::new("artifact", MAX_ARTIFACT_BYTES),
            )?;
            Artifact::Bytes(&bytes)
        }
    };
    let verified = verify(&bundle, artifact, expected, &root, unix_now())
        .with_context(|| format!("bundle {}: refused", args.bundle.display()))?;
    let times: Vec<String> = verified
        .times
        .iter()
        .map(|t| format!("{} by {}", cfsgate_policy::Timestamp(t.time), t.source))
        .collect();
    println!(
        "verified: bundle {} signed by {}, log entries {:?}, signed at {}",
        args.bundle.display(),
        verified.signer,
        verified.log_indexes,
        times.join(", ")
    );
    Ok(())
}
