//! `cfsgate doctor`: every check of whether the gate can run on this node, in one report. The
//! kernel's checks are `cfsgate_mounter::probe` (probed by trying), the set-up's are
//! `cfsgate_verifier::doctor` (hooks, policy, store, audit log); this module runs them in the
//! order they are shown and decides readiness: every required check passed.
//!
//! The text ([`DoctorReport::text`]) is one line per check, `ok  `, `FAIL` (required) or `warn`
//! before its name and detail, a `remedy:` line under each failure, then the verdict.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cfsgate_verifier::audit::text::key_path_or_default;
use cfsgate_verifier::doctor::{
    check_audit, check_hooks, check_policy, check_store, Check, HOOKS_DIRS,
};
use serde::Serialize;

/// What to check.
#[derive(Clone, Debug)]
pub struct DoctorRequest<'a> {
    /// The repository the hooks use.
    pub repo: &'a Path,
    /// The policy the hooks use.
    pub policy: &'a Path,
    /// The audit log the hooks append to.
    pub audit_log: &'a Path,
    /// The checkpoint key; `None`: the default key when it exists.
    pub audit_key: Option<&'a Path>,
    /// hooks.d directories to look in; empty: where podman and CRI-O look ([`HOOKS_DIRS`]).
    pub hooks_dirs: &'a [PathBuf],
}

/// Every check, and whether the gate can run.
#[derive(Clone, Debug, Serialize)]
pub struct DoctorReport {
    /// Every required check passed.
    pub ready: bool,
    /// The checks: the kernel's, then hooks, policy, store, audit.
    pub checks: Vec<Check>,
}

/// Run every check.
pub fn doctor(request: &DoctorRequest<'_>) -> DoctorReport {
    let mut checks: Vec<Check> = cfsgate_mounter::probe::probe_kernel(request.repo)
        .into_iter()
        .map(|p| Check {
            name: p.name.into(),
            ok: p.ok,
            required: p.required,
            detail: p.detail,
            remedy: p.remedy,
        })
        .collect();
    let hooks_dirs = if request.hooks_dirs.is_empty() {
        HOOKS_DIRS.iter().map(PathBuf::from).collect()
    } else {
        request.hooks_dirs.to_vec()
    };
    checks.push(check_hooks(&hooks_dirs));
    checks.push(check_policy(request.policy));
    checks.push(check_store(request.repo));
    let key = key_path_or_default(request.audit_key);
    checks.push(check_audit(request.audit_log, key.as_deref()));
    DoctorReport {
        ready: checks.iter().all(|c| c.ok || !c.required),
        checks,
    }
}

impl DoctorReport {
    /// The report for people (see the module docs).
    pub fn text(&self) -> String {
        let mut text = String::new();
        for c in &self.checks {
            let mark = match (c.ok, c.required) {
                (true, _) => "ok  ",
                (false, true) => "FAIL",
                (false, false) => "warn",
            };
            let _ = writeln!(text, "{mark} {:<20} {}", c.name, c.detail);
            if !c.ok {
                let _ = writeln!(text, "     {:<20} remedy: {}", "", c.remedy);
            }
        }
        let failed = self.checks.iter().filter(|c| !c.ok && c.required).count();
        if self.ready {
            text.push_str("\nthe gate can run on this node\n");
        } else {
            let _ = writeln!(
                text,
                "\nthe gate cannot run: {failed} required check(s) failed"
            );
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_without_policy_or_hooks_cannot_run_the_gate_and_says_what_to_do() {
        let work = tempfile::tempdir().expect("tempdir");
        let (policy, log) = (work.path().join("policy.json"), work.path().join("a.jsonl"));
        let hooks = [work.path().join("hooks.d")];
        let report = doctor(&DoctorRequest {
            repo: &work.path().join("repo"),
            policy: &policy,
            audit_log: &log,
            audit_key: None,
            hooks_dirs: &hooks,
        });
        assert!(!report.ready);
        let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names[names.len() - 4..],
            ["hooks", "policy", "store", "audit"]
        );
        let by_name = |n: &str| report.checks.iter().find(|c| c.name == n).expect(n);
        assert!(!by_name("policy").ok && by_name("policy").required);
        assert!(!by_name("store").ok && !by_name("store").required);
        let text = report.text();
        assert!(text.contains("\nFAIL policy "), "{text}");
        assert!(text.contains("\nwarn store "), "{text}");
        let failed = report.checks.iter().filter(|c| !c.ok && c.required).count();
        assert!(text.ends_with(&format!(
            "\nthe gate cannot run: {failed} required check(s) failed\n"
        )));
    }
}
