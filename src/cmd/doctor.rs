//! `cfsgate doctor [--json]`: what this node can do and what is set up, each failed check with
//! a one-line remedy. Exit 0 when the gate can run (every required check passed), 1 otherwise.
//! The checks are `cfsgate_mounter::probe` (kernel) and `cfsgate_verifier::doctor` (hooks,
//! policy, store, audit log); this file only prints them.

use std::path::{Path, PathBuf};

use anyhow::Result;
use cfsgate_verifier::audit::checkpoint::DEFAULT_AUDIT_KEY;
use cfsgate_verifier::audit::DEFAULT_AUDIT_LOG;
use cfsgate_verifier::doctor::{
    check_audit, check_hooks, check_policy, check_store, Check, HOOKS_DIRS,
};

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
    let mut checks: Vec<Check> = cfsgate_mounter::probe::probe_kernel(repo)
        .into_iter()
        .map(|p| Check {
            name: p.name.into(),
            ok: p.ok,
            required: p.required,
            detail: p.detail,
            remedy: p.remedy,
        })
        .collect();
    let hooks_dirs = if args.hooks_dirs.is_empty() {
        HOOKS_DIRS.iter().map(PathBuf::from).collect()
    } else {
        args.hooks_dirs.clone()
    };
    checks.push(check_hooks(&hooks_dirs));
    checks.push(check_policy(&args.policy));
    checks.push(check_store(repo));
    let key = args.audit_key.clone().or_else(|| {
        Path::new(DEFAULT_AUDIT_KEY)
            .exists()
            .then(|| DEFAULT_AUDIT_KEY.into())
    });
    checks.push(check_audit(&args.audit_log, key.as_deref()));
    let ready = checks.iter().all(|c| c.ok || !c.required);
    if args.json {
        let doc = serde_json::json!({
            "schema": "cfsgate.doctor/v1",
            "ready": ready,
            "checks": checks,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for c in &checks {
            let mark = match (c.ok, c.required) {
                (true, _) => "ok  ",
                (false, true) => "FAIL",
                (false, false) => "warn",
            };
            println!("{mark} {:<20} {}", c.name, c.detail);
            if !c.ok {
                println!("     {:<20} remedy: {}", "", c.remedy);
            }
        }
        let failed = checks.iter().filter(|c| !c.ok && c.required).count();
        if ready {
            println!("\nthe gate can run on this node");
        } else {
            println!("\nthe gate cannot run: {failed} required check(s) failed");
        }
    }
    Ok(ready)
}
