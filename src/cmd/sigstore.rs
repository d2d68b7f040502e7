//! `cfsgate sigstore verify-bundle`: a sigstore bundle checked offline, in the shape of
//! sigstore-conformance's CLI protocol (`docs/cli_protocol.md`), so its public cases run
//! against cfsgate.
//!
//! | command | does |
//! |---|---|
//! | `sigstore verify-bundle --bundle FILE --key KEY.pub [--trusted-root FILE] FILE_OR_sha256:HEX` | verifies a key-signed bundle: exit 0 when it verifies |
//! | `sigstore verify-bundle --bundle FILE --certificate-identity ID --certificate-oidc-issuer URL [--trusted-root FILE] FILE_OR_sha256:HEX` | verifies a keyless (Fulcio certificate) bundle for that identity and issuer, exactly |
//!
//! Both run [`cfsgate_verifier::bundle_files::verify_bundle_files`] against `--trusted-root`
//! (sigstore's `trusted_root.json`: logs, CT logs, CAs, timestamp authorities), by default
//! `/etc/cfsgate/sigstore/trusted_root.json`. Everything is judged offline at the signing time
//! the bundle proves (SET, RFC 3161 timestamp); `now` only bounds the SET's time from above.
//! A refusal exits 1 and says which check failed.

use std::path::PathBuf;

use anyhow::{Context, Result};
use cfsgate_verifier::bundle_files::{
    verified_line, verify_bundle_files, BundleFiles, ExpectedSigner,
};
use cfsgate_verifier::evaluate::unix_now;

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
    let signer = ExpectedSigner::from_options(
        args.key.as_deref(),
        args.certificate_identity.as_deref(),
        args.certificate_oidc_issuer.as_deref(),
    )
    .context("give --key, or --certificate-identity and --certificate-oidc-issuer")?;
    let files = BundleFiles {
        bundle: &args.bundle,
        signer,
        trusted_root: args.trusted_root.as_deref(),
        artifact: &args.artifact,
    };
    let verified = verify_bundle_files(&files, unix_now())?;
    println!("{}", verified_line(&args.bundle, &verified));
    Ok(())
}
