//! `cfsgate bundle`: an OCI runtime bundle for runc/crun whose root is the verified composefs
//! image.
//!
//! [`prepare_bundle`] evaluates the image under the policy, mounts the admitted image at
//! `DIR/rootfs` (writable layer and admission record under the run dir, as for precreate), and
//! writes `DIR/config.json`: a runtime-spec config with runc's defaults for a root-run
//! container (namespaces pid/ipc/uts/mount/network, /proc, /dev, /sys) whose `createRuntime`
//! hook is `cfsgate hook create-runtime` (refuses a swapped root) and `poststop` hook
//! `cfsgate hook poststop` (unmounts and cleans up), both pointing at the given binary. The
//! annotation `run.oci.hooks.stderr=/dev/stderr` makes crun pass the hooks its stderr (runc
//! does so anyway), so a refusal's reason reaches the user with either runtime.
//!
//! | path | what |
//! |---|---|
//! | `DIR/rootfs` | the composefs overlay mount |
//! | `DIR/config.json` | the runtime config (written last, atomically) |

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::admit::{admit, AdmissionRequest, Admitted};
use crate::annotations::{fresh_key, CONTAINER_ID_ANNOTATION};
use crate::error::{GateError, Result};
use crate::{fsutil, GateConfig};

/// Seconds the runtime gives each cfsgate hook of a bundle.
pub const BUNDLE_HOOK_TIMEOUT_SECS: u64 = 30;
/// The container's command when none is given.
pub const DEFAULT_COMMAND: &str = "/bin/sh";

/// What [`prepare_bundle`] is asked for.
#[derive(Debug, Clone)]
pub struct BundleRequest<'a> {
    /// Policy, repository, audit log, run dir, deadline.
    pub config: &'a GateConfig,
    /// The image.
    pub image: &'a str,
    /// The docker reference it is judged as.
    pub reference: Option<&'a str>,
    /// The bundle directory (created when missing).
    pub dir: &'a Path,
    /// The container's command (empty: [`DEFAULT_COMMAND`]).
    pub command: &'a [String],
    /// The cfsgate binary the hooks run.
    pub binary: &'a Path,
}

/// A bundle ready for `runc run`.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory (canonical).
    pub dir: PathBuf,
    /// The admission of its root.
    pub admitted: Admitted,
}

/// Judge, mount and write the bundle.
pub fn prepare_bundle(req: &BundleRequest<'_>) -> Result<Bundle> {
    std::fs::create_dir_all(req.dir).map_err(|e| GateError::io("creating", req.dir, e))?;
    let dir = std::fs::canonicalize(req.dir).map_err(|e| GateError::io("resolving", req.dir, e))?;
    let rootfs = dir.join("rootfs");
    let admitted = admit(AdmissionRequest {
        config: req.config,
        stage: "bundle",
        key: fresh_key(),
        image: req.image.to_string(),
        reference: req.reference.map(str::to_string),
        rootfs: Some(rootfs),
    })?;
    let command = if req.command.is_empty() {
        vec![DEFAULT_COMMAND.to_string()]
    } else {
        req.command.to_vec()
    };
    let config = runtime_config(&command, req.binary, req.config, &admitted.key);
    let bytes = serde_json::to_vec_pretty(&config).map_err(|source| GateError::Json {
        what: "serialising config.json".into(),
        source,
    })?;
    fsutil::write_atomic(&dir, "config.json", &bytes, fsutil::Durability::Durable)?;
    Ok(Bundle { dir, admitted })
}

fn hook(binary: &Path, sub: &str, config: &GateConfig) -> Value {
    let mut args: Vec<String> = ["cfsgate", "hook", sub].map(String::from).into();
    args.extend(crate::audit::arguments(&config.audit));
    args.extend([
        "--run-dir".to_string(),
        config.run_dir.display().to_string(),
    ]);
    json!({
        "path": binary,
        "args": args,
        "timeout": BUNDLE_HOOK_TIMEOUT_SECS,
    })
}

/// runc's default spec for a root-run container (`runc spec`), root at `rootfs`, with the
/// cfsgate hooks.
pub fn runtime_config(command: &[String], binary: &Path, config: &GateConfig, key: &str) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": command,
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "cfsgate",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        // crun gives hooks no stderr unless this annotation names one (runc passes its
        // own and ignores the annotation): with it, crun users see why a root is refused.
        "annotations": {CONTAINER_ID_ANNOTATION: key, "run.oci.hooks.stderr": "/dev/stderr"},
        "hooks": {
            "createRuntime": [hook(binary, "create-runtime", config)],
            "poststop": [hook(binary, "poststop", config)]
        },
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                "/proc/scsi", "/sys/firmware"
            ],
            "readonlyPaths": [
                "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq",
                "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}
