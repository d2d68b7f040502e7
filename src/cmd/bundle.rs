//! `cfsgate bundle REF DIR`: an OCI runtime bundle for runc/crun whose root is the verified
//! composefs image.
//!
//! Evaluates REF under the policy, mounts the admitted image at `DIR/rootfs` (writable layer
//! and admission record under `--run-dir`, as for `hook precreate`), and writes
//! `DIR/config.json`: a runtime-spec config with runc's defaults for a root-run container
//! (namespaces pid/ipc/uts/mount/network, /proc, /dev, /sys) whose `createRuntime` hook is
//! `cfsgate hook create-runtime` (refuses a swapped root) and `poststop` hook
//! `cfsgate hook poststop` (unmounts and cleans up), both pointing at this binary. The
//! annotation `run.oci.hooks.stderr=/dev/stderr` makes crun pass the hooks its stderr (runc
//! does so anyway), so a refusal's reason reaches the user with either runtime.
//!
//! | path | what |
//! |---|---|
//! | `DIR/rootfs` | the composefs overlay mount |
//! | `DIR/config.json` | the runtime config (written last, atomically) |

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::hook::{admit, fresh_key, AdmissionRequest, GateArgs};

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
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let dir = std::fs::canonicalize(&args.dir)
        .with_context(|| format!("resolving {}", args.dir.display()))?;
    let rootfs = dir.join("rootfs");
    let admitted = admit(AdmissionRequest {
        gate: &args.gate,
        stage: "bundle",
        key: fresh_key(),
        image: args.image.clone(),
        reference: args.reference.clone(),
        rootfs: Some(rootfs.clone()),
    })?;
    let binary = std::env::current_exe().context("locating the cfsgate binary")?;
    let command = if args.command.is_empty() {
        vec!["/bin/sh".to_string()]
    } else {
        args.command.clone()
    };
    let config = runtime_config(&command, &binary, &args.gate, &admitted.key);
    let path = dir.join("config.json");
    let tmp = dir.join(".config.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&config)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    println!(
        "bundle {}: root sha256:{} ({} verity) admitted as {}",
        dir.display(),
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

fn hook(binary: &Path, sub: &str, gate: &GateArgs) -> Value {
    json!({
        "path": binary,
        "args": [
            "cfsgate", "hook", sub,
            "--audit-log", gate.audit_log,
            "--run-dir", gate.run_dir,
        ],
        "timeout": 30,
    })
}

/// runc's default spec for a root-run container (`runc spec`), root at `rootfs`, with the
/// cfsgate hooks.
fn runtime_config(command: &[String], binary: &Path, gate: &GateArgs, key: &str) -> Value {
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
        "annotations": {"io.cfsgate.container-id": key, "run.oci.hooks.stderr": "/dev/stderr"},
        "hooks": {
            "createRuntime": [hook(binary, "create-runtime", gate)],
            "poststop": [hook(binary, "poststop", gate)]
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
