//! The runtime gate: a container starts only on the verified composefs root of an image the
//! trust policy admits, and the root it starts on is the one that was admitted.
//!
//! | module | what it owns |
//! |---|---|
//! | [`stages`] | the hook stages: precreate, createRuntime, poststop |
//! | [`admit`](mod@admit) | decide, mount, record, under the `--timeout` deadline; the audit record |
//! | [`audit`] | the audit sink every stage appends to, and its options on hook command lines |
//! | [`decision`] | the one call into the verifier's policy evaluation |
//! | [`doctor`] | `cfsgate doctor`: whether the gate can run on this node |
//! | [`record`] | the typed, versioned admission record (`admission.json`) |
//! | [`spec`] | what the runtime passes: runtime config, container state, bundle config |
//! | [`engine`] | which container and image the engine starts, from its own records |
//! | [`annotations`] | the opt-in annotation mode's image lookup and the per-container key |
//! | [`mountinfo`] | `/proc/self/mountinfo`: which mount is on a path |
//! | [`procstat`] | `/proc/PID/stat`: a process's start time |
//! | [`gc`] | finding, cleaning up and collecting admissions |
//! | [`hooksd`] | the hooks.d files for podman and CRI-O |
//! | [`bundle`] | `cfsgate bundle`: a runc/crun bundle on a verified root |
//! | [`engine_stderr`] | a precreate refusal shown on the engine's stderr |
//! | [`ensure`] | the composefs image of a verified image in the store, built when missing |
//! | [`sigbundles`] | the image's sigstore bundles: kept in the repository, fetched from its registry (opt-in) |
//!
//! The run dir also holds `.built-images.key`, the key of the records of composefs images built
//! from unsealed images (`cfsgate_verifier::built`); names starting with `.` are no container's.
//!
//! Per container, under the run dir (`<run-dir>/<key>/`): `rootfs/` (the composefs overlay
//! mount), `upper/`, `work/` (the writable layer) and `admission.json`. The key is the
//! engine's container ID (from its records); in the annotation mode without such records, the
//! annotation `io.cfsgate.container-id` when set, else a fresh unique name; createRuntime finds
//! the admission through the bundle's `root.path`.
//!
//! Fail closed: an unreadable config or policy, an image that cannot be read, a missing key, a
//! mount that fails, an audit record that cannot be written, or a decision slower than the
//! deadline denies, unless the matched scope is in warn mode (then the decision is recorded and
//! the container admitted).

use std::path::PathBuf;

use cfsgate_mounter::VerityMode;
use cfsgate_verifier::audit::AuditSink;

pub mod admit;
pub mod annotations;
pub mod audit;
pub mod bundle;
pub mod decision;
pub mod doctor;
pub mod engine;
pub mod engine_stderr;
pub mod ensure;
pub mod error;
mod fsutil;
pub mod gc;
pub mod hooksd;
pub mod mountinfo;
pub mod procstat;
pub mod record;
pub mod sigbundles;
pub mod spec;
pub mod stages;

pub use admit::{admit, AdmissionRequest, Admitted};
pub use decision::GateDecision;
pub use error::{reason_of, GateError};
pub use record::AdmissionRecord;

/// Where per-container state lives (tmpfs: gone at reboot, like the mounts).
pub const DEFAULT_RUN_DIR: &str = "/run/cfsgate/containers";
/// Where podman and CRI-O look for hooks.d files.
pub const DEFAULT_HOOKS_DIR: &str = "/usr/share/containers/oci/hooks.d";
/// Default decision deadline: runtimes kill hooks after their own timeout (podman: none by
/// default, CRI-O/kubelet: minutes); a gate that hangs must deny well before that.
pub const DEFAULT_TIMEOUT_SECS: u64 = 20;

/// What every deciding operation needs.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// The trust policy file.
    pub policy: PathBuf,
    /// The repository holding `images/<digest>`, `objects/` and `refs/`.
    pub repo: PathBuf,
    /// Where and how every decision is recorded.
    pub audit: AuditSink,
    /// Per-container state and mounts.
    pub run_dir: PathBuf,
    /// Verity mode when the policy does not require one (`None`: kernel when the store supports
    /// fs-verity, else userspace).
    pub verity: Option<VerityMode>,
    /// Deny when the decision (evaluation, building the composefs image, mount) takes longer
    /// than this.
    pub timeout_secs: u64,
    /// precreate's opt-in annotation mode: judge the image `io.cfsgate.image` names (which
    /// must be the container's own when the engine's records are found), not the engine's.
    pub annotations: bool,
    /// Fetch the image's sigstore bundles from the registry it was pulled from (and keep
    /// them) before judging it ([`sigbundles`]); kept bundles are judged either way.
    pub fetch_bundles: bool,
    /// registries.conf for that fetch (`None`: the default lookup).
    pub registries_conf: Option<PathBuf>,
}
