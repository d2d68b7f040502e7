//! `cfsgate policy check|explain`: validate a policy file, and show how it judges an image.
//!
//! | command | prints | `run_policy` result |
//! |---|---|---|
//! | `policy check FILE` | each finding as `FILE:LINE:COL: severity: message`, then a summary | `Ok(true)` no error (warnings allowed), `Ok(false)` a parse error or an error finding (exit 1) |
//! | `policy explain FILE REF [--reference NAME] [--repo DIR] [--json]` | the verdict line, then every lookup step, requirement, key and signature | `Ok(true)` admitted, `Ok(false)` rejected (exit 1) |
//!
//! `Err` (exit 2): the file cannot be read, or the image cannot be evaluated.

use std::path::{Path, PathBuf};

use anyhow::Result;
use cfsgate_policy::check::check_policy_file;
use cfsgate_policy::load_policy_file;
use cfsgate_verifier::explain::{explain_image, explanation_json, render_explanation};

#[derive(clap::Args, Debug)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate and lint a policy file (exit 1 on errors).
    Check {
        /// The policy file.
        file: PathBuf,
    },
    /// Show which scope applies to an image and why each requirement passes or fails.
    Explain {
        /// The policy file.
        file: PathBuf,
        /// The image: `dir:PATH`, `oci:PATH[:TAG]`.
        image: String,
        /// The docker reference the image is used as.
        #[arg(long, value_name = "NAME")]
        reference: Option<String>,
        /// Print the decision as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `policy` subcommand; see the module table for the result.
/// `repo`: the global `--repo` (a composefs repository holding the sealed image), if given.
pub fn run_policy(args: &PolicyArgs, repo: Option<&Path>) -> Result<bool> {
    match &args.command {
        PolicyCommand::Check { file } => check(file),
        PolicyCommand::Explain {
            file,
            image,
            reference,
            json,
        } => {
            let policy = load_policy_file(file)?;
            let decision = explain_image(&policy, image, reference.as_deref(), repo)?;
            // verifier/tests/cli.rs compiles this file alone: no `super::`.
            if *json {
                println!("{}", explanation_json(&decision)?);
            } else {
                print!("{}", render_explanation(&decision));
            }
            Ok(decision.admitted)
        }
    }
}

fn check(file: &Path) -> Result<bool> {
    let report = check_policy_file(file)?;
    print!("{}", report.text);
    Ok(report.passed)
}
