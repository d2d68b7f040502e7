//! Admission: decide, and when admitted mount the verified composefs image as the container's
//! root and write its [`AdmissionRecord`]; one audit record either way (through the verifier's
//! audit API). The whole decision runs under the `--timeout` deadline: on expiry the decision
//! is a denial. An admitted image whose composefs image is not in the store yet (verified, never
//! imported) has it built from its verified layers first ([`crate::ensure`]).
//!
//! Per container, under `<run-dir>/<key>/`: `rootfs/` (the overlay mount, unless the caller
//! chose another mount point), `upper/` and `work/` (the writable layer) and `admission.json`.
//!
//! Fail closed: a mount that fails or an audit record that cannot be written is a denial, and
//! what was mounted for it is undone.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cfsgate_image::store::RepoPaths;
use cfsgate_image::FsVeritySha256;
use cfsgate_mounter::helper::VerityRequest;
use cfsgate_mounter::{mount_image, unmount, MountOptions, UpperLayer, VerityMode};
use cfsgate_policy::Timestamp;
use cfsgate_verifier::audit::AuditEntry;

use crate::decision::{decide, GateDecision};
use crate::ensure::ensure_image;
use crate::error::{reason_of, GateError, Result};
use crate::gc::cleanup_container;
use crate::mountinfo::{mount_identity, unique_mount_id, MountIdentity};
use crate::record::{current_boot_id, AdmissionRecord, ADMISSION_RECORD_VERSION};
use crate::GateConfig;

/// A mounted, admitted container root.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// The per-container key.
    pub key: String,
    /// The mount point.
    pub rootfs: PathBuf,
    /// What the policy said.
    pub decision: GateDecision,
    /// How the mount checks objects.
    pub verity: Option<VerityMode>,
}

/// Everything one admission needs to know.
#[derive(Debug, Clone)]
pub struct AdmissionRequest<'a> {
    /// Policy, repository, audit log, run dir, deadline.
    pub config: &'a GateConfig,
    /// The audit record's stage (`precreate`, `bundle`).
    pub stage: &'a str,
    /// The per-container key (state directory name).
    pub key: String,
    /// The image to judge.
    pub image: String,
    /// The docker reference it is judged as.
    pub reference: Option<String>,
    /// Where to mount; `<run-dir>/<key>/rootfs` when `None`.
    pub rootfs: Option<PathBuf>,
}

/// Mode of the run dir and of each container's state directory.
pub const STATE_DIR_MODE: u32 = 0o700;

/// What was mounted: the mount point and how it checks objects, or why not.
type Mounted = std::result::Result<(PathBuf, Option<VerityMode>), String>;

/// Decide, and when admitted mount and record the admission; one audit record either way.
/// Every refusal is a [`GateError::Denied`].
///
/// Only the evaluation runs on a worker thread, and it has no side effect: the mount is made
/// by this thread, after the verdict, and only when the verdict came within the deadline. The
/// deadline is checked again once the mount is made; a mount finished past it is undone before
/// the denial is reported. So nothing outlives a `--timeout` denial: a worker still evaluating
/// when the deadline passes can only read.
pub fn admit(req: AdmissionRequest<'_>) -> Result<Admitted> {
    let config = req.config.clone();
    let deadline = Instant::now() + Duration::from_secs(config.timeout_secs);
    let timeout_reason = format!(
        "no decision within {} s (--timeout): failing closed",
        config.timeout_secs
    );
    let (tx, rx) = mpsc::channel();
    let (image, reference) = (req.image.clone(), req.reference.clone());
    let worker_config = config.clone();
    std::thread::spawn(move || {
        let _ = tx.send(decide(&worker_config, &image, reference.as_deref()));
    });
    let waited = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    let (decision, mounted): (GateDecision, Mounted) = match waited {
        Err(_) => (
            GateDecision::denied(timeout_reason.clone()),
            Err("timed out".into()),
        ),
        Ok(decision) if !decision.admitted => (decision, Err("not admitted".into())),
        Ok(mut decision) => {
            let mounted = match decision.composefs_digest {
                Some(digest) => ensure_stored(&req, &decision, &digest)
                    .and_then(|()| mount_container(&req, &decision, &digest))
                    .map_err(|e| reason_of(&e)),
                // Only in warn mode: an enforced admission always names its root.
                None => Err(
                    "admitted, but there is no verified composefs image to mount (the image's root could not be built or its seal does not match)"
                        .into(),
                ),
            };
            if Instant::now() > deadline {
                if let Ok((rootfs, _)) = &mounted {
                    cleanup_container(&config.run_dir.join(&req.key), Some(rootfs));
                }
                decision.admitted = false;
                decision.reasons.push(timeout_reason);
                (decision, Err("timed out".into()))
            } else {
                (decision, mounted)
            }
        }
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
        mode: decision.mode,
        would_reject: decision.would_reject,
        reasons: decision.reasons.clone(),
        verity,
    };
    if let Err(e) = &mounted {
        if decision.admitted {
            entry.reasons.push(e.clone());
        }
    }
    if let Err(e) = crate::audit::record(&config.audit, &entry) {
        if let Ok((rootfs, _)) = &mounted {
            cleanup_container(&config.run_dir.join(&req.key), Some(rootfs));
        }
        return Err(GateError::Denied(format!(
            "cannot record the decision, failing closed: {e}"
        )));
    }
    match mounted {
        Ok((rootfs, verity)) if decision.admitted => Ok(Admitted {
            key: req.key,
            rootfs,
            decision,
            verity,
        }),
        Ok(_) => Err(GateError::Denied(entry.reasons.join("; "))),
        Err(_) => Err(GateError::Denied(format!(
            "{}{}",
            if decision.admitted && decision.would_reject {
                "(warn mode) "
            } else {
                ""
            },
            entry.reasons.join("; ")
        ))),
    }
}

/// Create `dir` owner-only (0700): a container's root holds the image's device nodes and
/// setuid files, which no other host user may reach through the run dir.
fn create_private_dir(dir: &std::path::Path, recursive: bool) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(recursive)
        .mode(STATE_DIR_MODE)
        .create(dir)?;
    // The umask may have taken bits away, never added any; set exactly 0700.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(STATE_DIR_MODE))
}

/// The verified composefs image in the store: built from the verified layers when the image
/// was never imported ([`crate::ensure`]).
fn ensure_stored(
    req: &AdmissionRequest<'_>,
    decision: &GateDecision,
    digest: &FsVeritySha256,
) -> Result<()> {
    let manifest = decision.manifest_digest.ok_or_else(|| {
        GateError::Denied("admitted, but the verified manifest digest is unknown".into())
    })?;
    ensure_image(&req.config.repo, &req.image, &manifest, Some(digest)).map(|_| ())
}

fn mount_container(
    req: &AdmissionRequest<'_>,
    decision: &GateDecision,
    digest: &FsVeritySha256,
) -> Result<(PathBuf, Option<VerityMode>)> {
    let (config, key) = (req.config, req.key.as_str());
    let state = config.run_dir.join(key);
    if !config.run_dir.is_dir() {
        create_private_dir(&config.run_dir, true)
            .map_err(|e| GateError::io("creating", &config.run_dir, e))?;
    }
    create_private_dir(&state, false).map_err(|e| {
        GateError::Invalid(format!(
            "creating {} (is container {key} already admitted?): {e}",
            state.display()
        ))
    })?;
    let result = (|| {
        let rootfs = req.rootfs.clone().unwrap_or_else(|| state.join("rootfs"));
        let upper = UpperLayer {
            upperdir: state.join("upper"),
            workdir: state.join("work"),
        };
        for dir in [&rootfs, &upper.upperdir, &upper.workdir] {
            std::fs::create_dir_all(dir).map_err(|e| GateError::io("creating", dir, e))?;
        }
        let repo = RepoPaths::new(&config.repo);
        let object_dirs = vec![repo.objects_dir()];
        let verity = match decision.required_verity.or(config.verity) {
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
            // dev,suid: the image's device nodes and setuid files work inside the container
            // (as podman's own roots); the 0700 state directory keeps host users out.
            ..MountOptions::default()
        };
        let report =
            mount_image(digest, &repo.image_path(digest), &rootfs, &options).map_err(|source| {
                GateError::Mount {
                    digest: digest.to_hex(),
                    rootfs: rootfs.clone(),
                    source: Box::new(source),
                }
            })?;
        // Who the new mount is: from the mounter's fd where it had one (no mount table read,
        // and the mount made here even if another was stacked on the path since), else from
        // the mount table, the topmost mount on the path.
        let mounted = match report.mount_ids {
            Some(ids) => Ok((
                MountIdentity {
                    mount_id: ids.mount_id,
                    dev: format!("{}:{}", ids.dev.0, ids.dev.1),
                    fstype: "overlay".into(),
                },
                ids.unique.0,
            )),
            None => mount_identity(&rootfs).and_then(|id| Ok((id, unique_mount_id(&rootfs)?))),
        };
        let identity = match mounted.and_then(|(id, unique)| Ok((id, unique, current_boot_id()?))) {
            Ok(identity) => identity,
            Err(e) => {
                let _ = unmount(&rootfs);
                return Err(e);
            }
        };
        let record = AdmissionRecord {
            version: ADMISSION_RECORD_VERSION,
            key: key.to_string(),
            container_id: None,
            image: req.image.clone(),
            reference: req.reference.clone(),
            manifest_digest: decision.manifest_digest,
            composefs_digest: *digest,
            verity: report.verity,
            rootfs: rootfs.clone(),
            boot_id: identity.2,
            mount_unique_id: identity.1,
            mount_id: identity.0.mount_id,
            dev: identity.0.dev,
            time: Timestamp::now().to_string(),
            pid: None,
            pid_start: None,
        };
        if let Err(e) = record.write(&state) {
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
