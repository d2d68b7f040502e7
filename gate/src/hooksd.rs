//! hooks.d files (containers/common `pkg/hooks`, schema 1.0.0) that make podman and CRI-O run
//! cfsgate: precreate (judge and mount), createRuntime (check the root) and poststop (clean
//! up). By default every container (`when: always`): precreate judges the image the engine's
//! records say the container starts. The opt-in annotation mode runs them for containers with
//! an `io.cfsgate.image` annotation only and passes `--annotations` to precreate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cfsgate_verifier::audit::AuditSink;
use serde::Serialize;

use crate::annotations::IMAGE_ANNOTATION;
use crate::error::{GateError, Result};
use crate::fsutil;

/// precreate's flag of the annotation mode.
pub const ANNOTATIONS_FLAG: &str = "--annotations";

/// The hooks.d schema version.
pub const HOOKS_SCHEMA_VERSION: &str = "1.0.0";

/// One hooks.d file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HooksFile {
    /// [`HOOKS_SCHEMA_VERSION`].
    pub version: &'static str,
    /// The command to run.
    pub hook: HookCommand,
    /// When to run it.
    pub when: When,
    /// At which stages.
    pub stages: Vec<&'static str>,
}

/// The command of a hooks.d file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookCommand {
    /// The binary.
    pub path: PathBuf,
    /// Its argv (argv\[0\] included).
    pub args: Vec<String>,
}

/// The `when` of a hooks.d file: every container, or those whose annotations match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum When {
    /// `{"always": true}`.
    Always {
        /// Always `true`.
        always: bool,
    },
    /// `{"annotations": {KEY-REGEX: VALUE-REGEX}}`.
    Annotations {
        /// Annotation key pattern → value pattern.
        annotations: BTreeMap<String, String>,
    },
}

impl When {
    /// Those with a non-empty `io.cfsgate.image` when `annotations`, else every container.
    pub fn new(annotations: bool) -> When {
        if !annotations {
            When::Always { always: true }
        } else {
            let key = format!("^{}$", IMAGE_ANNOTATION.replace('.', "\\."));
            When::Annotations {
                annotations: BTreeMap::from([(key, ".+".to_string())]),
            }
        }
    }
}

/// What `install-hooks` writes.
#[derive(Debug, Clone)]
pub struct HooksSetup<'a> {
    /// The cfsgate binary the hooks run.
    pub binary: &'a Path,
    /// The opt-in annotation mode: only containers annotated with `io.cfsgate.image`, judged
    /// by that annotation (precreate gets `--annotations`).
    pub annotations: bool,
    /// How every stage records its decisions (`--audit-log` and the other `--audit-…`).
    pub audit: &'a AuditSink,
    /// Per-container state and mounts (`--run-dir`).
    pub run_dir: &'a Path,
    /// The repository precreate uses (`--repo`, made absolute: the hooks run elsewhere), when
    /// not the default.
    pub repo: Option<&'a Path>,
    /// Extra arguments of `hook precreate` (policy, …), after `--repo`.
    pub precreate_extra: &'a [String],
}

/// The three files: (file name, content).
pub fn hooks_files(setup: &HooksSetup<'_>) -> Result<Vec<(&'static str, HooksFile)>> {
    let mut common = crate::audit::arguments(setup.audit);
    common.extend(["--run-dir".to_string(), setup.run_dir.display().to_string()]);
    let file = |stage: &'static str, sub: &str, extra: &[String]| HooksFile {
        version: HOOKS_SCHEMA_VERSION,
        hook: HookCommand {
            path: setup.binary.to_owned(),
            args: ["cfsgate", "hook", sub]
                .into_iter()
                .map(String::from)
                .chain(common.iter().cloned())
                .chain(extra.iter().cloned())
                .collect(),
        },
        when: When::new(setup.annotations),
        stages: vec![stage],
    };
    let mut precreate_extra = Vec::new();
    if let Some(repo) = setup.repo {
        let repo = std::path::absolute(repo).map_err(|e| GateError::io("resolving", repo, e))?;
        precreate_extra.extend(["--repo".to_string(), repo.display().to_string()]);
    }
    precreate_extra.extend_from_slice(setup.precreate_extra);
    if setup.annotations && !precreate_extra.iter().any(|a| a == ANNOTATIONS_FLAG) {
        precreate_extra.push(ANNOTATIONS_FLAG.to_string());
    }
    Ok(vec![
        (
            "cfsgate-precreate.json",
            file("precreate", "precreate", &precreate_extra),
        ),
        (
            "cfsgate-create-runtime.json",
            file("createRuntime", "create-runtime", &[]),
        ),
        ("cfsgate-poststop.json", file("poststop", "poststop", &[])),
    ])
}

/// Write the hooks.d files into `dir` (atomically each); their paths.
pub fn install_hooks(dir: &Path, setup: &HooksSetup<'_>) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| GateError::io("creating", dir, e))?;
    let mut written = Vec::new();
    for (name, file) in hooks_files(setup)? {
        let bytes = serde_json::to_vec_pretty(&file).map_err(|source| GateError::Json {
            what: format!("serialising {name}"),
            source,
        })?;
        fsutil::write_atomic(dir, name, &bytes, fsutil::Durability::Durable)?;
        written.push(dir.join(name));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_have_the_schema_podman_reads() {
        let extra = vec!["--policy".to_string(), "/p.json".to_string()];
        let setup = HooksSetup {
            binary: Path::new("/usr/bin/cfsgate"),
            annotations: true,
            audit: &AuditSink::new("/log/a"),
            run_dir: Path::new("/run/x"),
            repo: Some(Path::new("/repo")),
            precreate_extra: &extra,
        };
        let files = hooks_files(&setup).unwrap();
        assert_eq!(files.len(), 3);
        let pre = serde_json::to_value(&files[0].1).unwrap();
        assert_eq!(
            pre,
            serde_json::json!({
                "version": "1.0.0",
                "hook": {"path": "/usr/bin/cfsgate", "args": [
                    "cfsgate", "hook", "precreate", "--audit-log", "/log/a", "--run-dir", "/run/x",
                    "--repo", "/repo", "--policy", "/p.json", "--annotations"]},
                "when": {"annotations": {"^io\\.cfsgate\\.image$": ".+"}},
                "stages": ["precreate"]
            })
        );
        let post = serde_json::to_value(&files[2].1).unwrap();
        assert_eq!(post["hook"]["args"][2], "poststop");
        assert!(
            !post["hook"]["args"].to_string().contains("/repo"),
            "--repo is precreate's only"
        );
        assert_eq!(post["stages"][0], "poststop");
        let relative = Path::new("relative/repo");
        let always = HooksSetup {
            annotations: false,
            repo: Some(relative),
            ..setup
        };
        let always_files = hooks_files(&always).unwrap();
        let v = serde_json::to_value(&always_files[1].1).unwrap();
        assert_eq!(v["when"], serde_json::json!({"always": true}));
        assert_eq!(v["stages"][0], "createRuntime");
        let pre = serde_json::to_value(&always_files[0].1).unwrap();
        assert!(!pre["hook"]["args"].to_string().contains("--annotations"));
        let absolute = std::path::absolute(relative).unwrap();
        assert_eq!(pre["hook"]["args"][8], absolute.display().to_string());
    }
}
