//! `cfsgate bundle IMAGE DIR`: an OCI runtime bundle for runc/crun whose root is the verified
//! composefs image (the work is `cfsgate_gate::bundle::prepare_bundle`, which documents the
//! bundle's layout and config).

use std::path::PathBuf;

use anyhow::{Context, Result};
use cfsgate_gate::bundle::{prepare_bundle, BundleRequest};

use super::hook::GateArgs;

/// `cfsgate bundle`.
#[derive(Debug, clap::Args)]
pub struct BundleArgs {
    /// The image: `dir:PATH`, `oci:PATH[:TAG]` (or a repository ref/digest when supported).
    pub image: String,
    /// The bundle directory to create.
    pub dir: PathBuf,
    /// The docker reference the image is judged as.
    #[arg(long)]
    pub reference: Option<String>,
    #[command(flatten)]
    pub gate: GateArgs,
    /// The container's command [default: /bin/sh].
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// Run `cfsgate bundle`.
pub fn run_bundle(args: BundleArgs) -> Result<()> {
    let binary = std::env::current_exe().context("locating the cfsgate binary")?;
    let bundle = prepare_bundle(&BundleRequest {
        config: &args.gate.config(),
        image: &args.image,
        reference: args.reference.as_deref(),
        dir: &args.dir,
        command: &args.command,
        binary: &binary,
    })?;
    let admitted = &bundle.admitted;
    println!(
        "bundle {}: root sha256:{} ({} verity) admitted as {}",
        bundle.dir.display(),
        admitted
            .decision
            .composefs_digest
            .map_or_else(|| "-".into(), |d| d.to_hex()),
        admitted
            .verity
            .map_or_else(|| "-".into(), |v| v.to_string()),
        admitted.key,
    );
    Ok(())
}
