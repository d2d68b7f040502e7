//! What is set up on this node for the gate (for `cfsgate doctor`): the hooks podman and
//! CRI-O will run, the policy, the store and the audit log. The kernel's side is
//! `cfsgate_mounter::probe`; both give [`Check`]s of the same shape.
//!
//! | check | passes when | required |
//! |---|---|---|
//! | `hooks` | a `*.json` in a hooks.d directory names an existing executable cfsgate | yes |
//! | `policy` | the policy file parses and lint finds no error | yes |
//! | `store` | the repository opens (its verity mode and image count reported) | no: the first import creates it |
//! | `audit` | the audit log's chain is intact (keyed: MACs and checkpoint too), or there is no log yet | yes |

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::audit::{verify_log, AuditKey, VerifyOptions};

/// One check's outcome (the `checks[]` element of `cfsgate doctor --json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable name (docs/json.md).
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// Whether the gate cannot run when it fails.
    pub required: bool,
    /// What was found, one line.
    pub detail: String,
    /// What to do, one line (empty when it passed).
    pub remedy: String,
}

fn check(name: &str, required: bool, result: Result<String, (String, String)>) -> Check {
    let (ok, detail, remedy) = match result {
        Ok(detail) => (true, detail, String::new()),
        Err((detail, remedy)) => (false, detail, remedy),
    };
    Check {
        name: name.into(),
        ok,
        required,
        detail,
        remedy,
    }
}

/// Where podman and CRI-O look for hooks.d files.
pub const HOOKS_DIRS: [&str; 2] = [
    "/usr/share/containers/oci/hooks.d",
    "/etc/containers/oci/hooks.d",
];

/// Most bytes of a hooks.d file read (they are a few hundred bytes).
const MAX_HOOK_FILE_BYTES: u64 = 64 * 1024;

/// The hooks.d files in `dirs` that run cfsgate.
pub fn check_hooks(dirs: &[PathBuf]) -> Check {
    let mut found = Vec::new();
    let mut broken = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let Ok((bytes, _)) =
                crate::audit::checkpoint::read_small(&path, MAX_HOOK_FILE_BYTES, "read")
            else {
                continue;
            };
            let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            let Some(binary) = json["hook"]["path"].as_str() else {
                continue;
            };
            if !binary.ends_with("cfsgate") {
                continue;
            }
            let executable = std::fs::metadata(binary).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            });
            if executable {
                found.push(path.display().to_string());
            } else {
                broken.push(format!(
                    "{} runs {binary}, which is not an executable",
                    path.display()
                ));
            }
        }
    }
    let dirs_text = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(" or ");
    check(
        "hooks",
        true,
        if !broken.is_empty() {
            Err((
                broken.join("; "),
                "cfsgate install-hooks (or ./run install) rewrites them".into(),
            ))
        } else if found.is_empty() {
            Err((
                format!("no hooks.d file runs cfsgate in {dirs_text}"),
                "cfsgate install-hooks (podman and CRI-O read /usr/share/containers/oci/hooks.d)"
                    .into(),
            ))
        } else {
            Ok(format!("installed: {}", found.join(", ")))
        },
    )
}

/// The policy at `path`: parses, and lint finds no error.
pub fn check_policy(path: &Path) -> Check {
    let result = match cfsgate_policy::load_policy_file(path) {
        Err(e @ cfsgate_policy::LoadError::Invalid { .. }) => Err((
            e.to_string(),
            format!("cfsgate policy check {} shows where", path.display()),
        )),
        Err(e) => Err((
            e.to_string(),
            format!(
                "write a policy at {} (./run install makes one from /etc/containers/policy.json)",
                path.display()
            ),
        )),
        Ok(policy) => {
            let findings = cfsgate_policy::lint(&policy, Path::new("/"));
            let errors: Vec<_> = findings
                .iter()
                .filter(|f| f.severity == cfsgate_policy::Severity::Error)
                .collect();
            match errors.first() {
                Some(first) => Err((
                    format!("{} lint error(s), first: {}", errors.len(), first.message),
                    format!("cfsgate policy check {}", path.display()),
                )),
                None => Ok(format!(
                    "{} parses, {} lint finding(s), no error",
                    path.display(),
                    findings.len()
                )),
            }
        }
    };
    check("policy", true, result)
}

/// The repository at `repo`.
pub fn check_store(repo: &Path) -> Check {
    let result = match cfsgate_image::store::Repository::open(repo) {
        Ok(store) => match store.list_images() {
            Ok(images) => Ok(format!(
                "{}: verity mode {:?}, {} image(s)",
                repo.display(),
                store.meta().verity,
                images.len()
            )),
            Err(e) => Err((
                e.to_string(),
                format!("cfsgate --repo {} fsck", repo.display()),
            )),
        },
        Err(e) => Err((
            e.to_string(),
            format!("cfsgate --repo {} import IMAGE creates it", repo.display()),
        )),
    };
    check("store", false, result)
}

/// The audit log's chain (keyed when `key` is given).
pub fn check_audit(log: &Path, key: Option<&Path>) -> Check {
    let key = match key.map(AuditKey::load).transpose() {
        Ok(key) => key,
        Err(e) => {
            return check(
                "audit",
                true,
                Err((
                    e.to_string(),
                    "cfsgate audit init-key, or chmod 600 the key".into(),
                )),
            )
        }
    };
    let options = VerifyOptions {
        key,
        allow_pruned: false,
    };
    let result = match verify_log(log, &options) {
        Ok(report) if report.files.is_empty() => Ok(format!(
            "{}: no log yet (created by the first decision)",
            log.display()
        )),
        Ok(report) => match &report.problem {
            None => Ok(format!(
                "{}: {} records in {} file(s), chain intact{}",
                log.display(),
                report.records,
                report.files.len(),
                if report.macs_verified > 0 {
                    ", keyed"
                } else {
                    ""
                }
            )),
            Some(p) => Err((
                format!(
                    "chain broken at {} line {}: {}",
                    p.file.display(),
                    p.line,
                    p.message
                ),
                format!(
                    "cfsgate audit verify --audit-log {} (keep the log as evidence)",
                    log.display()
                ),
            )),
        },
        Err(e) => Err((e.to_string(), format!("check {}", log.display()))),
    };
    check("audit", true, result)
}
