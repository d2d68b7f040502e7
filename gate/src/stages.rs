//! The three hook stages, each a function of what the runtime passes on stdin.
//!
//! | stage | stdin | does |
//! |---|---|---|
//! | [`precreate`] | the proposed runtime config | judge the image, mount it, return the config with `root.path` on the mount |
//! | [`create_runtime`] | the container state `{id, pid, bundle, …}` | refuse unless the bundle's root is the admitted composefs mount; one audit record either way |
//! | [`poststop`] | the container state | unmount and remove what precreate made |
//!
//! The createRuntime check binds the root to its admission by the mount's identity (mount id
//! and device in mountinfo, recorded right after the verified mount was made): a root that was
//! unmounted, replaced by another mount, or is a plain directory is refused.

use std::path::Path;

use cfsgate_policy::Timestamp;
use cfsgate_verifier::audit::{append_record, AuditEntry};

use crate::admit::{admit, AdmissionRequest, Admitted};
use crate::annotations::{container_key, image_from_annotations};
use crate::decision::ENFORCE;
use crate::error::{reason_of, GateError, Result};
use crate::gc::{cleanup_container, find_admission};
use crate::mountinfo::mount_identity;
use crate::procstat::process_start;
use crate::spec::{
    parse_container_state, parse_runtime_config, read_bundle, ContainerState, RuntimeConfig,
};
use crate::GateConfig;

/// What precreate admitted: the config to print and the admission.
#[derive(Debug)]
pub struct Precreated {
    /// The runtime config with `root` on the composefs mount.
    pub config: RuntimeConfig,
    /// The admission.
    pub admitted: Admitted,
}

/// `hook precreate` on the runtime config `input`. Every error is a refusal; `image_seen` is
/// set as soon as the container names an image (for the engine's stderr line).
pub fn precreate(
    config: &GateConfig,
    input: &[u8],
    image_seen: &mut Option<String>,
) -> Result<Precreated> {
    let mut runtime =
        parse_runtime_config(input, "runtime config on stdin").map_err(GateError::into_denial)?;
    let (image, reference) =
        image_from_annotations(&runtime.annotations).map_err(GateError::into_denial)?;
    *image_seen = Some(image.clone());
    let key = container_key(&runtime.annotations).map_err(GateError::into_denial)?;
    let admitted = admit(AdmissionRequest {
        config,
        stage: "precreate",
        key,
        image,
        reference,
        rootfs: None,
    })?;
    if let Err(e) = runtime.set_root(&admitted.rootfs) {
        cleanup_container(&config.run_dir.join(&admitted.key), Some(&admitted.rootfs));
        return Err(e.into_denial());
    }
    Ok(Precreated {
        config: runtime,
        admitted,
    })
}

/// `hook create-runtime` on the container state `input`: the check; one audit record either
/// way. Every error is a refusal.
pub fn create_runtime(run_dir: &Path, audit_log: &Path, input: &[u8]) -> Result<()> {
    let state = parse_container_state(input).map_err(GateError::into_denial)?;
    let mut entry = AuditEntry {
        time: Some(Timestamp::now()),
        stage: "createRuntime".into(),
        container_id: state.id.clone(),
        mode: ENFORCE.into(),
        ..AuditEntry::default()
    };
    let verdict = check_bundle(run_dir, &state, &mut entry);
    entry.admitted = verdict.is_ok();
    if let Err(e) = &verdict {
        entry.reasons.push(reason_of(e));
    }
    if let Err(e) = append_record(audit_log, &entry) {
        return Err(GateError::Denied(format!(
            "cannot record the decision, failing closed: {e}"
        )));
    }
    verdict.map_err(GateError::into_denial)
}

fn check_bundle(run_dir: &Path, state: &ContainerState, entry: &mut AuditEntry) -> Result<()> {
    let (_, root) = read_bundle(state.bundle_dir()?)?;
    entry.image = root.display().to_string();
    let (dir, mut record) = find_admission(run_dir, &root)?.ok_or_else(|| {
        GateError::Invalid(format!("{} was not admitted by cfsgate", root.display()))
    })?;
    entry.image = record.image.clone();
    entry.reference = record.reference.clone();
    entry.composefs_digest = Some(record.composefs_digest);
    entry.manifest_digest = record.manifest_digest;
    entry.verity = Some(record.verity.to_string());
    let digest = record.composefs_digest;
    let mounted = mount_identity(&root).map_err(|e| {
        GateError::Invalid(format!(
            "{} is not the admitted composefs mount: {}",
            root.display(),
            reason_of(&e)
        ))
    })?;
    if mounted.fstype != "overlay"
        || mounted.mount_id != record.mount_id
        || mounted.dev != record.dev
    {
        return Err(GateError::Invalid(format!(
            "the root {} is not the composefs mount of sha256:{digest} admitted at {}: it is mount {} ({}, dev {}), the admitted one was mount {} (dev {}); the root was swapped",
            root.display(),
            record.time,
            mounted.mount_id,
            mounted.fstype,
            mounted.dev,
            record.mount_id,
            record.dev,
        )));
    }
    entry.reasons.push(format!(
        "root {} is the composefs mount of sha256:{digest} admitted at {}",
        root.display(),
        record.time
    ));
    // Remember which container this is, for `mounts gc`.
    if let Some(id) = &state.id {
        record.container_id = Some(id.clone());
    }
    if let Some(pid) = state.pid.filter(|p| *p > 0) {
        record.pid = Some(pid);
        record.pid_start = process_start(pid);
    }
    record.write(&dir)
}

/// `hook poststop` on the container state `input`: unmount and remove the container's mount
/// and state (nothing of ours: nothing to do).
pub fn poststop(run_dir: &Path, input: &[u8]) -> Result<()> {
    let state = parse_container_state(input)?;
    let (_, root) = read_bundle(state.bundle_dir()?)?;
    let Some((dir, _)) = find_admission(run_dir, &root)? else {
        return Ok(());
    };
    let problems = cleanup_container(&dir, Some(&root));
    if !problems.is_empty() {
        return Err(GateError::Cleanup {
            state: dir,
            problems,
        });
    }
    Ok(())
}
