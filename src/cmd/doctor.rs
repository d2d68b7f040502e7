//! `cfsgate doctor [--json]`: what this node can do and what is set up, each failed check with
//! a one-line remedy. Exit 0 when the gate can run (every required check passed), 1 otherwise.
//! The checks and their text are `cfsgate_gate::doctor`; this file only prints them.

use std::path::{Path, PathBuf};

use anyhow::Result;
use cfsgate_gate::doctor::{doctor, DoctorRequest};
use cfsgate_verifier::audit::DEFAULT_AUDIT_LOG;

/// `cfsgate doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The policy the hooks use.
    #[arg(long, default_value = cfsgate_policy::DEFAULT_POLICY_PATH, value_name = "FILE")]
    pub policy: PathBuf,
    /// The audit log the hooks append to.
    #[arg(long, default_value = DEFAULT_AUDIT_LOG, value_name = "FILE")]
    pub audit_log: PathBuf,
    /// The audit checkpoint key [default: /etc/cfsgate/audit.key when it exists].
    #[arg(long, value_name = "FILE")]
    pub audit_key: Option<PathBuf>,
    /// hooks.d directories to look in [default: where podman and CRI-O look].
    #[arg(long = "hooks-dir", value_name = "DIR")]
    pub hooks_dirs: Vec<PathBuf>,
    /// Print JSON (docs/json.md).
    #[arg(long)]
    pub json: bool,
}

/// Run the checks and print them; `Ok(true)` when the gate can run.
pub fn run(repo: &Path, args: &DoctorArgs) -> Result<bool> {
    let report = doctor(&DoctorRequest {
        repo,
        policy: &args.policy,
        audit_log: &args.audit_log,
        audit_key: args.audit_key.as_deref(),
        hooks_dirs: &args.hooks_dirs,
    });
    if args.json {
        let doc = serde_json::json!({
            "schema": "cfsgate.doctor/v1",
            "ready": report.ready,
            "checks": report.checks,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", report.text());
    }
    Ok(report.ready)
}
