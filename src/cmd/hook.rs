//! `cfsgate hook …`, `cfsgate mounts gc` and `cfsgate install-hooks`: the container runtime gate.
//!
//! | command | stage | stdin | does |
//! |---|---|---|---|
//! | `hook precreate` | podman `precreate` | the proposed runtime config | evaluate the image, mount it, print the config with `root.path` on the mount |
//! | `hook create-runtime` | `createRuntime` / `prestart` | the container state `{id, pid, bundle, …}` | refuse unless the bundle's root is the admitted composefs mount |
//! | `hook poststop` | `poststop` | the container state | unmount and remove what precreate/bundle made |
//! | `mounts gc` | — | — | the same for every container whose process is gone |
//! | `install-hooks [--dir D]` | — | — | writes the hooks.d file pointing at this binary |
//!
//! Per container (`--run-dir`, default [`DEFAULT_RUN_DIR`]), under `<run-dir>/<key>/`:
//!
//! | path | content |
//! |---|---|
//! | `rootfs/` | the composefs overlay mount (the container's root) |
//! | `upper/`, `work/` | the writable layer |
//! | `admission.json` | `{key, container_id, image, reference, manifest_digest, composefs_digest, verity, rootfs, mount_id, dev, time, pid, pid_start}` |
//!
//! `<key>` is the annotation `io.cfsgate.container-id` when set, else a fresh unique name (the
//! precreate stage is not told the runtime's container id). The create-runtime stage finds the
//! admission through the bundle's `root.path`, and adds the runtime's id and the container's pid.
//!
//! The create-runtime check binds the root to the admission by the mount's identity (mount id
//! and device in `/proc/self/mountinfo`, recorded right after the verified mount was made): a
//! root that was unmounted, replaced by another mount, or is a plain directory is refused.
//!
//! Fail closed: an unreadable config or policy, an image that cannot be read, a missing key, a
//! mount that fails, an audit record that cannot be written, or a decision slower than
//! `--timeout` denies (exit 1, the reason on stderr), unless the matched scope is in warn mode
//! (then the decision is recorded and the container admitted).
//!
//! A precreate refusal whose stderr went to /dev/null (podman 4.3 discards it) is also written,
//! as one escaped line, to the engine's stderr: see [`engine_stderr`] (`--no-engine-stderr`
//! turns this off).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use cfsgate_image::Sha256Digest;
use cfsgate_mounter::helper::{Repository, VerityRequest};
use cfsgate_mounter::{mount_image, unmount, MountOptions, UpperLayer, VerityMode};
use cfsgate_policy::Timestamp;
use cfsgate_verifier::audit::{append_record, AuditEntry, DEFAULT_AUDIT_LOG};
use serde_json::{json, Value};

use super::mount::DEFAULT_REPO;

#[path = "hook_engine_stderr.rs"]
pub mod engine_stderr;

/// Where per-container state lives (tmpfs: gone at reboot, like the mounts).
pub const DEFAULT_RUN_DIR: &str = "/run/cfsgate/containers";
/// Where podman and CRI-O look for hooks.d files.
pub const DEFAULT_HOOKS_DIR: &str = "/usr/share/containers/oci/hooks.d";
/// Largest runtime config / state accepted on stdin; real ones are a few KiB to tens of KiB.
const MAX_STDIN_BYTES: u64 = 16 << 20;
/// Default decision deadline: runtimes kill hooks after their own timeout (podman: none by
/// default, CRI-O/kubelet: minutes); a gate that hangs must deny well before that.
const DEFAULT_TIMEOUT_SECS: u64 = 20;
/// Longest accepted container key (CRI ids are 64 hex digits).
const MAX_KEY_LEN: usize = 128;
/// A precreate admission whose container never reached createRuntime is collected by
/// `mounts gc` after this long (the runtime failed between the two stages).
const UNSTARTED_GRACE_SECS: u64 = 600;

/// Annotation naming the image to evaluate (see docs/hooks.md for the lookup order).
pub const IMAGE_ANNOTATION: &str = "io.cfsgate.image";
/// Annotation naming the docker reference the image is judged as.
pub const REFERENCE_ANNOTATION: &str = "io.cfsgate.reference";
/// Annotation choosing the per-container key.
pub const CONTAINER_ID_ANNOTATION: &str = "io.cfsgate.container-id";
const CRIO_IMAGE_REF: &str = "io.kubernetes.cri-o.ImageRef";
const CRIO_IMAGE_NAME: &str = "io.kubernetes.cri-o.ImageName";
const OCI_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A refusal: the reason is printed on stderr, the exit status is 1.
#[derive(Debug)]
pub struct Denied(pub String);

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "denied: {}", self.0)
    }
}

impl std::error::Error for Denied {}

/// Options shared by every deciding command.
#[derive(Debug, Clone, clap::Args)]
pub struct GateArgs {
    /// The trust policy.
    #[arg(long, default_value = cfsgate_policy::DEFAULT_POLICY_PATH, value_name = "FILE")]
    pub policy: PathBuf,
    /// Repository holding images/<digest>, objects/ and refs/.
    #[arg(long, default_value = DEFAULT_REPO, value_name = "DIR")]
    pub repo: PathBuf,
    /// Where every decision is appended.
    #[arg(long, default_value = DEFAULT_AUDIT_LOG, value_name = "FILE")]
    pub audit_log: PathBuf,
    /// Per-container state and mounts.
    #[arg(long, default_value = DEFAULT_RUN_DIR, value_name = "DIR")]
    pub run_dir: PathBuf,
    /// Verity mode when the policy does not require one: kernel, userspace or none
    /// [default: kernel when the store supports fs-verity, else userspace].
    #[arg(long, value_parser = parse_verity)]
    pub verity: Option<VerityMode>,
    /// Deny when the decision (evaluation and mount) takes longer than this many seconds.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT_SECS, value_name = "SECONDS")]
    pub timeout: u64,
}

fn parse_verity(text: &str) -> Result<VerityMode, String> {
    text.parse().map_err(|e| format!("{e}"))
}

/// `cfsgate hook …`.
#[derive(Debug, clap::Subcommand)]
pub enum HookCmd {
    /// podman precreate: runtime config on stdin, the config to use on stdout.
    Precreate(PrecreateArgs),
    /// createRuntime/prestart: refuse unless the root is the admitted composefs mount.
    CreateRuntime(CheckArgs),
    /// poststop: unmount and remove the container's mount and state.
    Poststop(CheckArgs),
}

/// Options of `hook precreate`.
#[derive(Debug, Clone, clap::Args)]
pub struct PrecreateArgs {
    #[command(flatten)]
    pub gate: GateArgs,
    /// Do not copy a refusal to the engine's stderr (the parent's fd 2) when our own stderr is
    /// /dev/null (podman 4.3 and later releases without the `run.oci.hooks.stderr` support for
    /// precreate hooks give them /dev/null; see docs/hooks.md).
    #[arg(long)]
    pub no_engine_stderr: bool,
}

/// Options of the stages that check or clean up.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    #[arg(long, default_value = DEFAULT_AUDIT_LOG, value_name = "FILE")]
    pub audit_log: PathBuf,
    #[arg(long, default_value = DEFAULT_RUN_DIR, value_name = "DIR")]
    pub run_dir: PathBuf,
}

/// `cfsgate mounts …`.
#[derive(Debug, clap::Subcommand)]
pub enum MountsCmd {
    /// Unmount and remove the mounts of containers that are gone.
    Gc {
        #[arg(long, default_value = DEFAULT_RUN_DIR, value_name = "DIR")]
        run_dir: PathBuf,
    },
    /// List admitted container mounts.
    List {
        #[arg(long, default_value = DEFAULT_RUN_DIR, value_name = "DIR")]
        run_dir: PathBuf,
    },
}

/// `cfsgate install-hooks`.
#[derive(Debug, clap::Args)]
pub struct InstallHooksArgs {
    /// hooks.d directory to write into.
    #[arg(long, default_value = DEFAULT_HOOKS_DIR)]
    pub dir: PathBuf,
    /// Gate every container, not only those annotated with io.cfsgate.image.
    #[arg(long)]
    pub always: bool,
    /// The audit log every hook appends to.
    #[arg(long, default_value = DEFAULT_AUDIT_LOG, value_name = "FILE")]
    pub audit_log: PathBuf,
    /// Per-container state and mounts.
    #[arg(long, default_value = DEFAULT_RUN_DIR, value_name = "DIR")]
    pub run_dir: PathBuf,
    /// Extra arguments for `hook precreate` (e.g. --arg=--policy --arg=FILE).
    #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Run `cfsgate hook …`.
pub fn run_hook(cmd: HookCmd) -> Result<()> {
    match cmd {
        HookCmd::Precreate(args) => run_precreate(&args),
        HookCmd::CreateRuntime(args) => run_create_runtime(&args),
        HookCmd::Poststop(args) => run_poststop(&args),
    }
}

// ---------------------------------------------------------------------------------------------
// The decision (one function to swap for `cfsgate_verifier::evaluate`).

/// What the policy said about one image, with everything the audit record needs.
#[derive(Debug, Clone, Default)]
pub struct GateDecision {
    pub admitted: bool,
    pub mode: String,
    pub would_reject: bool,
    pub scope: Option<String>,
    pub requirements: Vec<String>,
    pub manifest_digest: Option<Sha256Digest>,
    pub composefs_digest: Option<Sha256Digest>,
    pub required_verity: Option<VerityMode>,
    pub signers: Vec<String>,
    pub reasons: Vec<String>,
}

impl GateDecision {
    fn denied(reason: String) -> Self {
        GateDecision {
            admitted: false,
            mode: "enforce".into(),
            reasons: vec![reason],
            ..GateDecision::default()
        }
    }
}

/// Evaluate `image` (as `reference`) under the policy file. Never fails: an error is a denial.
pub fn decide(gate: &GateArgs, image: &str, reference: Option<&str>) -> GateDecision {
    let policy = match cfsgate_policy::load_policy_file(&gate.policy) {
        Ok(p) => p,
        Err(e) => return GateDecision::denied(format!("policy unusable: {e}")),
    };
    evaluate_image(&policy, image, reference, &gate.repo)
        .unwrap_or_else(|e| GateDecision::denied(crate::cmd::error_chain(&e)))
}

/// The one call into the policy evaluation (`cfsgate_verifier::evaluate`), mapped to what the
/// hook and the audit record need.
pub fn evaluate_image(
    policy: &cfsgate_policy::Policy,
    image: &str,
    reference: Option<&str>,
    repo: &Path,
) -> Result<GateDecision> {
    let decision = cfsgate_verifier::evaluate(&cfsgate_verifier::EvaluationRequest {
        image,
        reference,
        policy,
        repo: Some(repo),
        now: Timestamp::now().0,
    })?;
    let required_verity = match decision.required_verity.as_deref() {
        None => None,
        Some(mode) => Some(
            mode.parse::<VerityMode>()
                .map_err(|e| anyhow!("the policy requires verity {mode:?}: {e}"))?,
        ),
    };
    let reasons = if decision.reasons.is_empty() {
        vec!["every requirement is satisfied".to_string()]
    } else {
        decision.reasons.clone()
    };
    Ok(GateDecision {
        admitted: decision.admitted,
        mode: decision.mode.to_string(),
        would_reject: decision.would_reject,
        scope: Some(decision.scope.clone()),
        requirements: decision.requirements.clone(),
        manifest_digest: decision.manifest_digest,
        composefs_digest: decision.composefs_digest,
        required_verity,
        signers: decision.signers.iter().map(|k| k.to_string()).collect(),
        reasons,
    })
}

// ---------------------------------------------------------------------------------------------
// Reading stdin and annotations.

fn read_stdin_json(what: &str) -> Result<Value> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(MAX_STDIN_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading the {what} from stdin"))?;
    if bytes.len() as u64 > MAX_STDIN_BYTES {
        bail!("the {what} on stdin is larger than {MAX_STDIN_BYTES} bytes");
    }
    serde_json::from_slice(&bytes).with_context(|| format!("the {what} on stdin is not JSON"))
}

fn annotations(config: &Value) -> BTreeMap<String, String> {
    config
        .get("annotations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The image and reference a container asks for, in the documented lookup order.
pub fn image_from_annotations(
    annotations: &BTreeMap<String, String>,
) -> Result<(String, Option<String>)> {
    let get = |k: &str| annotations.get(k).filter(|v| !v.is_empty()).cloned();
    let image = get(IMAGE_ANNOTATION)
        .or_else(|| get(CRIO_IMAGE_REF))
        .ok_or_else(|| {
            anyhow!("the container names no image: set the annotation {IMAGE_ANNOTATION} (or {CRIO_IMAGE_REF})")
        })?;
    let reference = get(REFERENCE_ANNOTATION)
        .or_else(|| get(CRIO_IMAGE_NAME))
        // A ref.name that is a full reference (has a '/'): a bare tag names no repository.
        .or_else(|| get(OCI_REF_NAME).filter(|r| r.contains('/')));
    Ok((image, reference))
}

fn container_key(annotations: &BTreeMap<String, String>) -> Result<String> {
    if let Some(id) = annotations.get(CONTAINER_ID_ANNOTATION) {
        validate_key(id)?;
        return Ok(id.clone());
    }
    Ok(fresh_key())
}

fn validate_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !ok {
        bail!("container id {key:?} is not 1-{MAX_KEY_LEN} characters of [A-Za-z0-9._-]");
    }
    Ok(())
}

/// Unique per call on this node: nanoseconds, pid and a per-process counter.
pub fn fresh_key() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "cfs-{nanos:x}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

// ---------------------------------------------------------------------------------------------
// Admission: decide, mount, record.

/// A mounted, admitted container root.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub key: String,
    pub rootfs: PathBuf,
    pub decision: GateDecision,
    pub verity: Option<VerityMode>,
}

/// Everything one admission needs to know.
pub struct AdmissionRequest<'a> {
    pub gate: &'a GateArgs,
    pub stage: &'a str,
    pub key: String,
    pub image: String,
    pub reference: Option<String>,
    /// Where to mount; `<run-dir>/<key>/rootfs` when `None`.
    pub rootfs: Option<PathBuf>,
}

/// Decide, and when admitted mount and record the admission; one audit record either way.
/// Runs under the `--timeout` deadline; on expiry the decision is a denial.
pub fn admit(req: AdmissionRequest<'_>) -> Result<Admitted> {
    let gate = req.gate.clone();
    let (tx, rx) = mpsc::channel();
    let (key, image, reference, rootfs) = (
        req.key.clone(),
        req.image.clone(),
        req.reference.clone(),
        req.rootfs.clone(),
    );
    let worker_gate = gate.clone();
    std::thread::spawn(move || {
        let outcome = decide_and_mount(&worker_gate, &key, &image, reference.as_deref(), rootfs);
        let _ = tx.send(outcome);
    });
    let (decision, mounted) = match rx.recv_timeout(Duration::from_secs(gate.timeout)) {
        Ok(outcome) => outcome,
        Err(_) => (
            GateDecision::denied(format!(
                "no decision within {} s (--timeout): failing closed",
                gate.timeout
            )),
            Err(anyhow!("timed out")),
        ),
    };
    let verity = mounted.as_ref().ok().and_then(|m| m.1);
    let mut entry = AuditEntry {
        time: Some(Timestamp::now()),
        stage: req.stage.to_string(),
        container_id: Some(req.key.clone()),
        image: req.image.clone(),
        reference: req.reference.clone(),
        manifest_digest: decision.manifest_digest,
        composefs_digest: decision.composefs_digest,
        scope: decision.scope.clone(),
        requirements: decision.requirements.clone(),
        signers: decision.signers.clone(),
        admitted: decision.admitted && mounted.is_ok(),
        mode: decision.mode.clone(),
        would_reject: decision.would_reject,
        reasons: decision.reasons.clone(),
        verity: verity.map(|v| v.to_string()),
    };
    if let Err(e) = &mounted {
        if decision.admitted {
            entry.reasons.push(crate::cmd::error_chain(e));
        }
    }
    if let Err(e) = append_record(&gate.audit_log, &entry) {
        if let Ok((rootfs, _)) = &mounted {
            cleanup_container(&gate.run_dir.join(&req.key), Some(rootfs));
        }
        return Err(Denied(format!("cannot record the decision, failing closed: {e}")).into());
    }
    match mounted {
        Ok((rootfs, verity)) if decision.admitted => Ok(Admitted {
            key: req.key,
            rootfs,
            decision,
            verity,
        }),
        Ok(_) => Err(Denied(entry.reasons.join("; ")).into()),
        Err(_) => Err(Denied(format!(
            "{}{}",
            if decision.admitted && decision.would_reject {
                "(warn mode) "
            } else {
                ""
            },
            entry.reasons.join("; ")
        ))
        .into()),
    }
}

type Mounted = Result<(PathBuf, Option<VerityMode>)>;

fn decide_and_mount(
    gate: &GateArgs,
    key: &str,
    image: &str,
    reference: Option<&str>,
    rootfs: Option<PathBuf>,
) -> (GateDecision, Mounted) {
    let decision = decide(gate, image, reference);
    if !decision.admitted {
        return (decision, Err(anyhow!("not admitted")));
    }
    let mounted = match decision.composefs_digest {
        Some(digest) => mount_container(gate, key, image, reference, &decision, &digest, rootfs),
        None => Err(anyhow!(
            "admitted, but the image carries no composefs seal: there is no verified root to mount"
        )),
    };
    (decision, mounted)
}

fn mount_container(
    gate: &GateArgs,
    key: &str,
    image: &str,
    reference: Option<&str>,
    decision: &GateDecision,
    digest: &Sha256Digest,
    rootfs: Option<PathBuf>,
) -> Mounted {
    let state = gate.run_dir.join(key);
    std::fs::create_dir_all(&gate.run_dir)
        .with_context(|| format!("creating {}", gate.run_dir.display()))?;
    std::fs::create_dir(&state).with_context(|| {
        format!(
            "creating {} (is container {key} already admitted?)",
            state.display()
        )
    })?;
    let result = (|| {
        let rootfs = rootfs.unwrap_or_else(|| state.join("rootfs"));
        let upper = UpperLayer {
            upperdir: state.join("upper"),
            workdir: state.join("work"),
        };
        for dir in [&rootfs, &upper.upperdir, &upper.workdir] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let repo = Repository::new(&gate.repo);
        let object_dirs = vec![repo.objects_dir()];
        let verity = match decision.required_verity.or(gate.verity) {
            Some(mode) => mode,
            None => VerityRequest::Try
                .resolve(&object_dirs)?
                .unwrap_or(VerityMode::Userspace),
        };
        let options = MountOptions {
            object_dirs,
            verity: Some(verity),
            upper: Some(upper),
            idmap: None,
            legacy_overlay: false,
        };
        let report = mount_image(digest, &repo.image_path(digest), &rootfs, &options)
            .with_context(|| format!("mounting sha256:{digest} on {}", rootfs.display()))?;
        let identity = match mount_identity(&rootfs) {
            Ok(identity) => identity,
            Err(e) => {
                let _ = unmount(&rootfs);
                return Err(e);
            }
        };
        let record = json!({
            "key": key,
            "container_id": Value::Null,
            "image": image,
            "reference": reference,
            "manifest_digest": decision.manifest_digest.map(|d| format!("sha256:{d}")),
            "composefs_digest": format!("sha256:{digest}"),
            "verity": report.verity.to_string(),
            "rootfs": rootfs,
            "mount_id": identity.mount_id,
            "dev": identity.dev,
            "time": Timestamp::now().to_string(),
            "pid": Value::Null,
            "pid_start": Value::Null,
        });
        if let Err(e) = write_admission(&state, &record) {
            let _ = unmount(&rootfs);
            return Err(e);
        }
        Ok((rootfs, Some(report.verity)))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&state);
    }
    result
}

fn write_admission(state: &Path, record: &Value) -> Result<()> {
    let tmp = state.join(".admission.json.tmp");
    let path = state.join("admission.json");
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    serde_json::to_writer_pretty(&mut file, record)?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}

fn read_admission(state: &Path) -> Result<Value> {
    let path = state.join("admission.json");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Mount identity from /proc/self/mountinfo.

/// Which mount is on a path: mountinfo's mount id, `major:minor` and filesystem type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountIdentity {
    pub mount_id: u64,
    pub dev: String,
    pub fstype: String,
}

/// Undo mountinfo's octal escapes (`\040` for a space, …).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let octal = std::str::from_utf8(&bytes[i + 1..i + 4]).ok();
            if let Some(v) = octal.and_then(|o| u8::from_str_radix(o, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The topmost mount on exactly `path` (no mount on a path: an error).
pub fn mount_identity(path: &Path) -> Result<MountIdentity> {
    let path =
        std::fs::canonicalize(path).with_context(|| format!("resolving {}", path.display()))?;
    let text =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    // (id, parent, dev, fstype) of every mount on the path; the topmost is the one that is no
    // other's parent.
    let mut on_path: Vec<(u64, u64, String, String)> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.len() < 5 || sep + 1 >= fields.len() {
            continue;
        }
        if Path::new(&unescape_mountinfo(fields[4])) != path {
            continue;
        }
        let (Ok(id), Ok(parent)) = (fields[0].parse::<u64>(), fields[1].parse::<u64>()) else {
            continue;
        };
        on_path.push((
            id,
            parent,
            fields[2].to_string(),
            fields[sep + 1].to_string(),
        ));
    }
    let top = on_path
        .iter()
        .find(|(id, ..)| !on_path.iter().any(|(_, parent, ..)| parent == id))
        .ok_or_else(|| anyhow!("nothing is mounted on {}", path.display()))?;
    // The device the path shows must be that mount's (not a directory beneath another mount).
    let dev = std::fs::metadata(&path)
        .with_context(|| format!("stat {}", path.display()))?
        .dev();
    let shown = format!("{}:{}", dev_major(dev), dev_minor(dev));
    if shown != top.2 {
        bail!(
            "{} shows device {shown}, not that of the mount on it ({})",
            path.display(),
            top.2
        );
    }
    Ok(MountIdentity {
        mount_id: top.0,
        dev: top.2.clone(),
        fstype: top.3.clone(),
    })
}

fn dev_major(dev: u64) -> u64 {
    ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)
}

fn dev_minor(dev: u64) -> u64 {
    (dev & 0xff) | ((dev >> 12) & !0xff)
}

// ---------------------------------------------------------------------------------------------
// The stages.

/// `hook precreate`: any error is a refusal (exit non-zero, the reason on stderr); when the
/// engine discarded our stderr, the reason is also written to the engine's stderr
/// ([`engine_stderr`]) unless `--no-engine-stderr`.
pub fn run_precreate(args: &PrecreateArgs) -> Result<()> {
    let mut image = None;
    let result = precreate(&args.gate, &mut image);
    if let Err(e) = &result {
        if !args.no_engine_stderr && engine_stderr::stderr_discarded() {
            let reason = match e.downcast_ref::<Denied>() {
                Some(Denied(reason)) => reason.clone(),
                None => crate::cmd::error_chain(e),
            };
            engine_stderr::tell_engine(&engine_stderr::denial_line(image.as_deref(), &reason));
        }
    }
    result
}

/// The precreate stage proper; `image` is set as soon as the container names one.
fn precreate(gate: &GateArgs, image_seen: &mut Option<String>) -> Result<()> {
    let mut config =
        read_stdin_json("runtime config").map_err(|e| Denied(crate::cmd::error_chain(&e)))?;
    let annotations = annotations(&config);
    let (key, image, reference) = (|| -> Result<_> {
        let (image, reference) = image_from_annotations(&annotations)?;
        *image_seen = Some(image.clone());
        let key = container_key(&annotations)?;
        Ok((key, image, reference))
    })()
    .map_err(|e| Denied(crate::cmd::error_chain(&e)))?;
    let admitted = admit(AdmissionRequest {
        gate,
        stage: "precreate",
        key,
        image,
        reference,
        rootfs: None,
    })?;
    let root = config
        .as_object_mut()
        .ok_or_else(|| Denied("the runtime config is not a JSON object".into()))?
        .entry("root")
        .or_insert_with(|| json!({}));
    match root.as_object_mut() {
        Some(root) => {
            root.insert("path".into(), json!(admitted.rootfs));
            root.insert("readonly".into(), json!(false));
        }
        None => {
            cleanup_container(&gate.run_dir.join(&admitted.key), Some(&admitted.rootfs));
            return Err(Denied("the runtime config's root is not an object".into()).into());
        }
    }
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &config)?;
    out.write_all(b"\n")?;
    out.flush()?;
    if admitted.decision.would_reject {
        eprintln!(
            "cfsgate: warn mode: admitted although enforce mode would deny: {}",
            admitted.decision.reasons.join("; ")
        );
    }
    Ok(())
}

/// The container root named by a state's bundle: `root.path` of `<bundle>/config.json`.
fn bundle_root(state: &Value) -> Result<PathBuf> {
    let bundle = state
        .get("bundle")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the state on stdin has no bundle"))?;
    let config_path = Path::new(bundle).join("config.json");
    let bytes = std::fs::read(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let config: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("parsing {}", config_path.display()))?;
    let root = config
        .pointer("/root/path")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("{} has no root.path", config_path.display()))?;
    let root = Path::new(bundle).join(root);
    std::fs::canonicalize(&root).with_context(|| format!("resolving {}", root.display()))
}

/// The admission whose rootfs is `root`: (state dir, record).
fn find_admission(run_dir: &Path, root: &Path) -> Result<Option<(PathBuf, Value)>> {
    let entries = match std::fs::read_dir(run_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", run_dir.display())),
    };
    for entry in entries {
        let state = entry?.path();
        let Ok(record) = read_admission(&state) else {
            continue;
        };
        let recorded = record.get("rootfs").and_then(Value::as_str).map(Path::new);
        if recorded.is_some_and(|r| std::fs::canonicalize(r).is_ok_and(|r| r == root)) {
            return Ok(Some((state, record)));
        }
    }
    Ok(None)
}

/// Start time of a process (field 22 of /proc/PID/stat), to tell a pid's reuse apart.
fn process_start(pid: i64) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and ')': fields restart after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// `hook create-runtime`: the check; one audit record either way.
pub fn run_create_runtime(args: &CheckArgs) -> Result<()> {
    let state =
        read_stdin_json("container state").map_err(|e| Denied(crate::cmd::error_chain(&e)))?;
    let id = state.get("id").and_then(Value::as_str).map(str::to_string);
    let mut entry = AuditEntry {
        time: Some(Timestamp::now()),
        stage: "createRuntime".into(),
        container_id: id.clone(),
        mode: "enforce".into(),
        ..AuditEntry::default()
    };
    let verdict = check_bundle(&args.run_dir, &state, &mut entry);
    entry.admitted = verdict.is_ok();
    if let Err(e) = &verdict {
        entry.reasons.push(crate::cmd::error_chain(e));
    }
    if let Err(e) = append_record(&args.audit_log, &entry) {
        return Err(Denied(format!("cannot record the decision, failing closed: {e}")).into());
    }
    verdict.map_err(|e| Denied(crate::cmd::error_chain(&e)).into())
}

fn check_bundle(run_dir: &Path, state: &Value, entry: &mut AuditEntry) -> Result<()> {
    let root = bundle_root(state)?;
    entry.image = root.display().to_string();
    let (dir, mut record) = find_admission(run_dir, &root)?
        .ok_or_else(|| anyhow!("{} was not admitted by cfsgate", root.display()))?;
    let text = |k: &str| record.get(k).and_then(Value::as_str).map(str::to_string);
    entry.image = text("image").unwrap_or_default();
    entry.reference = text("reference");
    entry.composefs_digest = text("composefs_digest")
        .and_then(|d| Sha256Digest::from_hex(d.trim_start_matches("sha256:")).ok());
    entry.manifest_digest = text("manifest_digest")
        .and_then(|d| Sha256Digest::from_hex(d.trim_start_matches("sha256:")).ok());
    entry.verity = text("verity");
    let digest = entry
        .composefs_digest
        .ok_or_else(|| anyhow!("the admission record in {} has no digest", dir.display()))?;
    let mounted = mount_identity(&root)
        .with_context(|| format!("{} is not the admitted composefs mount", root.display()))?;
    let recorded_id = record.get("mount_id").and_then(Value::as_u64);
    let recorded_dev = text("dev");
    if mounted.fstype != "overlay"
        || Some(mounted.mount_id) != recorded_id
        || Some(&mounted.dev) != recorded_dev.as_ref()
    {
        bail!(
            "the root {} is not the composefs mount of sha256:{digest} admitted at {}: it is mount {} ({}, dev {}), the admitted one was mount {} (dev {}); the root was swapped",
            root.display(),
            text("time").unwrap_or_default(),
            mounted.mount_id,
            mounted.fstype,
            mounted.dev,
            recorded_id.map_or("?".into(), |i| i.to_string()),
            recorded_dev.unwrap_or_default(),
        );
    }
    entry.reasons.push(format!(
        "root {} is the composefs mount of sha256:{digest} admitted at {}",
        root.display(),
        text("time").unwrap_or_default()
    ));
    // Remember which container this is, for `mounts gc`.
    if let Some(obj) = record.as_object_mut() {
        if let Some(id) = &entry.container_id {
            obj.insert("container_id".into(), json!(id));
        }
        if let Some(pid) = state.get("pid").and_then(Value::as_i64).filter(|p| *p > 0) {
            obj.insert("pid".into(), json!(pid));
            obj.insert("pid_start".into(), json!(process_start(pid)));
        }
    }
    write_admission(&dir, &record)
}

/// Unmount the root (if a composefs mount is still on it) and remove the state directory.
fn cleanup_container(state: &Path, rootfs: Option<&Path>) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(rootfs) = rootfs {
        // Unmount every composefs mount stacked on the root.
        while mount_identity(rootfs).is_ok_and(|m| m.fstype == "overlay") {
            if let Err(e) = unmount(rootfs) {
                problems.push(format!("unmounting {}: {e}", rootfs.display()));
                break;
            }
        }
        if !rootfs.starts_with(state) {
            let _ = std::fs::remove_dir(rootfs);
        }
    }
    if let Err(e) = std::fs::remove_dir_all(state) {
        if e.kind() != std::io::ErrorKind::NotFound {
            problems.push(format!("removing {}: {e}", state.display()));
        }
    }
    problems
}

/// `hook poststop`.
pub fn run_poststop(args: &CheckArgs) -> Result<()> {
    let state = read_stdin_json("container state")?;
    let root = bundle_root(&state)?;
    let Some((dir, _)) = find_admission(&args.run_dir, &root)? else {
        // Nothing of ours (or already cleaned up by gc): nothing to do.
        return Ok(());
    };
    let problems = cleanup_container(&dir, Some(&root));
    if !problems.is_empty() {
        bail!("cleanup of {}: {}", dir.display(), problems.join("; "));
    }
    Ok(())
}

/// Whether the container of an admission is gone: its process ended (or its pid was reused),
/// or it never started and the grace period is over.
fn container_gone(state: &Path, record: &Value) -> bool {
    match record.get("pid").and_then(Value::as_i64) {
        Some(pid) => {
            let recorded = record.get("pid_start").and_then(Value::as_u64);
            process_start(pid).is_none() || process_start(pid) != recorded
        }
        None => std::fs::metadata(state.join("admission.json"))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > UNSTARTED_GRACE_SECS),
    }
}

/// Run `cfsgate mounts …`.
pub fn run_mounts(cmd: MountsCmd) -> Result<()> {
    let (run_dir, collect) = match cmd {
        MountsCmd::Gc { run_dir } => (run_dir, true),
        MountsCmd::List { run_dir } => (run_dir, false),
    };
    let entries = match std::fs::read_dir(&run_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", run_dir.display())),
    };
    let mut failures = Vec::new();
    for entry in entries {
        let state = entry?.path();
        let record = read_admission(&state).ok();
        let rootfs = record
            .as_ref()
            .and_then(|r| r.get("rootfs"))
            .and_then(Value::as_str)
            .map(PathBuf::from);
        if !collect {
            println!(
                "{} {} {}",
                state.display(),
                record
                    .as_ref()
                    .and_then(|r| r.get("composefs_digest"))
                    .and_then(Value::as_str)
                    .unwrap_or("-"),
                rootfs
                    .as_deref()
                    .map_or("-".into(), |p| p.display().to_string())
            );
            continue;
        }
        let gone = record.as_ref().is_none_or(|r| container_gone(&state, r));
        if gone {
            let problems = cleanup_container(&state, rootfs.as_deref());
            if problems.is_empty() {
                println!("removed {}", state.display());
            }
            failures.extend(problems);
        }
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}

/// The hooks.d file for podman (`cfsgate install-hooks`, examples/hooks.d/cfsgate-podman.json).
pub fn podman_hooks_json(
    binary: &Path,
    always: bool,
    common: &[String],
    extra: &[String],
) -> Value {
    let when = if always {
        json!({"always": true})
    } else {
        json!({"annotations": {"^io\\.cfsgate\\.image$": ".+"}})
    };
    let mut args = vec![
        "cfsgate".to_string(),
        "hook".to_string(),
        "precreate".to_string(),
    ];
    args.extend(common.iter().cloned());
    args.extend(extra.iter().cloned());
    json!({
        "version": "1.0.0",
        "hook": {"path": binary, "args": args},
        "when": when,
        "stages": ["precreate"],
    })
}

fn check_hooks_json(
    binary: &Path,
    stage: &str,
    sub: &str,
    always: bool,
    common: &[String],
) -> Value {
    let when = if always {
        json!({"always": true})
    } else {
        json!({"annotations": {"^io\\.cfsgate\\.image$": ".+"}})
    };
    let args: Vec<String> = ["cfsgate", "hook", sub]
        .into_iter()
        .map(String::from)
        .chain(common.iter().cloned())
        .collect();
    json!({
        "version": "1.0.0",
        "hook": {
            "path": binary,
            "args": args
        },
        "when": when,
        "stages": [stage],
    })
}

/// Run `cfsgate install-hooks`: three files (precreate, createRuntime, poststop).
pub fn run_install_hooks(args: InstallHooksArgs) -> Result<()> {
    let binary = std::env::current_exe().context("locating the cfsgate binary")?;
    let common = vec![
        "--audit-log".to_string(),
        args.audit_log.display().to_string(),
        "--run-dir".to_string(),
        args.run_dir.display().to_string(),
    ];
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let files = [
        (
            "cfsgate-precreate.json",
            podman_hooks_json(&binary, args.always, &common, &args.args),
        ),
        (
            "cfsgate-create-runtime.json",
            check_hooks_json(
                &binary,
                "createRuntime",
                "create-runtime",
                args.always,
                &common,
            ),
        ),
        (
            "cfsgate-poststop.json",
            check_hooks_json(&binary, "poststop", "poststop", args.always, &common),
        ),
    ];
    for (name, value) in files {
        let path = args.dir.join(name);
        let tmp = args.dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&value)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}
