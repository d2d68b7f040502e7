//! The three hook stages, each a function of what the runtime passes on stdin.
//!
//! | stage | stdin | does |
//! |---|---|---|
//! | [`precreate`] | the proposed runtime config | find the image the engine starts ([`crate::engine`]), judge it, mount it, return the config with `root.path` on the mount |
//! | [`create_runtime`] | the container state `{id, pid, bundle, …}` | refuse unless the bundle's root is the admitted composefs mount; one audit record either way |
//! | [`poststop`] | the container state | unmount and remove what precreate made, for the owner only; one audit record either way |
//!
//! Each stage reads its stdin itself, at most [`crate::spec::MAX_SPEC_BYTES`]; a precreate
//! refusal is also copied to the engine's stderr when ours goes nowhere
//! ([`crate::engine_stderr`]).
//!
//! The createRuntime check (docs/hooks.md):
//! - binds the root to its admission by the overlay mount's 64-bit unique mount id (`statx`
//!   `STATX_MNT_ID_UNIQUE`, recorded right after the verified mount was made, never reused
//!   before reboot; a kernel without it is refused): a root that was unmounted, replaced by
//!   another mount (even one that recycled the mountinfo id and device number), covered, or is
//!   a plain directory is refused;
//! - refuses any mount below the root that the bundle's `config.json` does not declare in
//!   `mounts`;
//! - gives the admission to one runtime container id, once: another id's claim is refused.

use std::io::Read;
use std::path::{Path, PathBuf};

use cfsgate_policy::{Mode, Timestamp};
use cfsgate_verifier::audit::{AuditEntry, AuditSink};

use crate::audit;

use crate::admit::{admit, AdmissionRequest, Admitted};
use crate::engine::started_image;
use crate::engine_stderr::report_denial;
use crate::error::{reason_of, GateError, Result};
use crate::gc::{
    cleanup_container, cleanup_entry, find_admission, recorded_cleanup, UNSTARTED_GRACE_SECS,
};
use crate::mountinfo::{mount_identity_and_table, unique_mount_id, MountEntry};
use crate::procstat::process_start;
use crate::record::{current_boot_id, AdmissionRecord};
use crate::spec::{
    parse_container_state, parse_runtime_config, read_bounded, read_bundle, BundleConfig,
    ContainerState, RuntimeConfig,
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

impl Precreated {
    /// In warn mode, when enforce mode would have refused: the warning to show, with the
    /// reasons.
    pub fn warning(&self) -> Option<String> {
        let decision = &self.admitted.decision;
        decision.would_reject.then(|| {
            format!(
                "warn mode: admitted although enforce mode would deny: {}",
                decision.reasons.join("; ")
            )
        })
    }
}

/// `hook precreate` on the runtime config read from `input`. Every error is a refusal; with
/// `tell_engine`, the refusal is also written to the engine's stderr when ours is discarded
/// (naming the image once the container names one).
pub fn precreate(config: &GateConfig, input: impl Read, tell_engine: bool) -> Result<Precreated> {
    let mut image_seen = None;
    let result = read_bounded(input, "runtime config on stdin")
        .map_err(GateError::into_denial)
        .and_then(|bytes| precreate_config(config, &bytes, &mut image_seen));
    if let Err(refusal) = &result {
        if tell_engine {
            report_denial(image_seen.as_deref(), &reason_of(refusal));
        }
    }
    result
}

/// precreate on the bytes of the runtime config; `image_seen` is set as soon as the container
/// names an image.
fn precreate_config(
    config: &GateConfig,
    input: &[u8],
    image_seen: &mut Option<String>,
) -> Result<Precreated> {
    let mut runtime =
        parse_runtime_config(input, "runtime config on stdin").map_err(GateError::into_denial)?;
    let started = match started_image(&runtime, config.annotations) {
        Ok(started) => started,
        Err(refusal) => {
            image_seen.clone_from(&refusal.image);
            return Err(refusal.record(config));
        }
    };
    // The engine's image by the name it was started as; an annotated image as annotated.
    *image_seen = Some(match (config.annotations, &started.reference) {
        (false, Some(name)) => name.clone(),
        _ => started.image.clone(),
    });
    let admitted = admit(AdmissionRequest {
        config,
        stage: "precreate",
        key: started.key,
        image: started.image,
        reference: started.reference,
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

/// `hook create-runtime` on the container state read from `input`: the check; one audit
/// record either way. Every error is a refusal.
pub fn create_runtime(run_dir: &Path, audit: &AuditSink, input: impl Read) -> Result<()> {
    let input = read_bounded(input, "container state on stdin").map_err(GateError::into_denial)?;
    let state = parse_container_state(&input).map_err(GateError::into_denial)?;
    let mut entry = AuditEntry {
        time: Some(Timestamp::now()),
        stage: "createRuntime".into(),
        container_id: state.id.clone(),
        mode: Mode::Enforce,
        ..AuditEntry::default()
    };
    let verdict = check_bundle(run_dir, &state, &mut entry);
    entry.admitted = verdict.is_ok();
    if let Err(e) = &verdict {
        entry.reasons.push(reason_of(e));
    }
    if let Err(e) = audit::record(audit, &entry) {
        return Err(GateError::Denied(format!(
            "cannot record the decision, failing closed: {e}"
        )));
    }
    verdict.map_err(GateError::into_denial)
}

fn check_bundle(run_dir: &Path, state: &ContainerState, entry: &mut AuditEntry) -> Result<()> {
    let (bundle_config, root) = read_bundle(state.bundle_dir()?)?;
    entry.image = root.display().to_string();
    let (dir, record) = find_admission(run_dir, &root)?.ok_or_else(|| {
        GateError::Invalid(format!("{} was not admitted by cfsgate", root.display()))
    })?;
    entry.image = record.image.clone();
    entry.reference = record.reference.clone();
    entry.composefs_digest = Some(record.composefs_digest);
    entry.manifest_digest = record.manifest_digest;
    entry.verity = Some(record.verity);
    let digest = record.composefs_digest;
    let not_admitted = |e: GateError| {
        GateError::Invalid(format!(
            "{} is not the admitted composefs mount: {}",
            root.display(),
            reason_of(&e)
        ))
    };
    // A unique mount id is unique within one boot only: a record kept across a reboot (a run
    // dir on disk) could be matched by a new mount that reached the same id.
    let boot = current_boot_id().map_err(not_admitted)?;
    if boot != record.boot_id {
        return Err(GateError::Invalid(format!(
            "the root {} was admitted at {} in another boot (boot id {}; this boot is {boot}): \
             its mount identity means nothing now",
            root.display(),
            record.time,
            record.boot_id,
        )));
    }
    let (mounted, table) = mount_identity_and_table(&root).map_err(not_admitted)?;
    // The unique id is never given to another mount before reboot: a root unmounted and
    // replaced, even by a mount that got the same mountinfo id and device number, differs.
    let unique = unique_mount_id(&root).map_err(not_admitted)?;
    if mounted.fstype != "overlay" || unique != record.mount_unique_id {
        return Err(GateError::Invalid(format!(
            "the root {} is not the composefs mount of sha256:{digest} admitted at {}: it is mount {} (unique id {unique}, {}, dev {}), the admitted one was mount {} (unique id {}, dev {}); the root was swapped",
            root.display(),
            record.time,
            mounted.mount_id,
            mounted.fstype,
            mounted.dev,
            record.mount_id,
            record.mount_unique_id,
            record.dev,
        )));
    }
    check_mounts_below(&root, &bundle_config, &table)?;
    claim(&dir, state, &digest)?;
    entry.reasons.push(format!(
        "root {} is the composefs mount of sha256:{digest} admitted at {}",
        root.display(),
        record.time
    ));
    Ok(())
}

/// Refuse any mount below the root that the bundle's config does not declare: after
/// admission, nothing may cover part of the verified tree (a tmpfs over `/bin`) unless the
/// runtime was asked to mount it there. `table` is this (the runtime's) mount namespace's
/// mountinfo, the snapshot the root's identity was read from.
fn check_mounts_below(root: &Path, config: &BundleConfig, table: &[MountEntry]) -> Result<()> {
    let declared: Vec<PathBuf> = config
        .mounts
        .iter()
        .map(|m| root.join(m.destination.strip_prefix("/").unwrap_or(&m.destination)))
        .collect();
    let foreign: Vec<String> = table
        .iter()
        .filter(|m| m.mount_point != root && m.mount_point.starts_with(root))
        .filter(|m| !declared.contains(&m.mount_point))
        .map(|m| format!("{} ({})", m.mount_point.display(), m.fstype))
        .collect();
    if !foreign.is_empty() {
        return Err(GateError::Invalid(format!(
            "a mount below the root {} is not declared in the bundle's config.json mounts: {}; the verified tree was covered",
            root.display(),
            foreign.join(", ")
        )));
    }
    Ok(())
}

/// Bind the admission to the runtime's container id, once: under the state directory's lock,
/// an admission already claimed by another id is refused (and the refusal is recorded by the
/// caller); the first claim records the id and the container's pid for `mounts gc`.
fn claim(dir: &Path, state: &ContainerState, digest: &cfsgate_image::FsVeritySha256) -> Result<()> {
    let lock = std::fs::File::open(dir).map_err(|e| GateError::io("opening", dir, e))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| GateError::io("locking", dir, e.into()))?;
    let mut record = AdmissionRecord::read(dir)?;
    let id = state
        .id
        .clone()
        .ok_or_else(|| GateError::Invalid("the state on stdin has no container id".into()))?;
    match &record.container_id {
        Some(owner) if *owner != id => {
            return Err(GateError::Invalid(format!(
                "the admission of sha256:{digest} belongs to container {owner}; container {id} may not claim it"
            )));
        }
        Some(_) => {}
        None => record.container_id = Some(id),
    }
    if record.pid.is_none() {
        if let Some(pid) = state.pid.filter(|p| *p > 0) {
            record.pid = Some(pid);
            record.pid_start = process_start(pid);
        }
    }
    record.write(dir)
}

/// `hook poststop` on the container state read from `input`: unmount and remove the container's mount
/// and state (nothing of ours: nothing to do), only for the container that owns the admission
/// (the id its first createRuntime recorded). Any other poststop naming an admitted root, and
/// one for an admission no createRuntime claimed (`mounts gc` collects those), is refused,
/// touches nothing, and is recorded; a cleanup is recorded before it is done.
pub fn poststop(run_dir: &Path, audit: &AuditSink, input: impl Read) -> Result<()> {
    let state = parse_container_state(&read_bounded(input, "container state on stdin")?)?;
    let (_, root) = read_bundle(state.bundle_dir()?)?;
    let Some((dir, _)) = find_admission(run_dir, &root)? else {
        return Ok(());
    };
    // Under the state directory's lock (as a claim takes it), so the owner read is the owner.
    let lock = std::fs::File::open(&dir).map_err(|e| GateError::io("opening", &dir, e))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| GateError::io("locking", &dir, e.into()))?;
    let record = AdmissionRecord::read(&dir)?;
    let mut entry = cleanup_entry("poststop", state.id.clone(), &dir, Some(&record));
    let asker = state.id.as_deref().unwrap_or("(no id)");
    let digest = record.composefs_digest;
    let refusal = match &record.container_id {
        Some(owner) if state.id.as_deref() == Some(owner.as_str()) => None,
        Some(owner) => Some(format!(
            "the admission of sha256:{digest} at {} belongs to container {owner}; container {asker} may not clean it up",
            root.display()
        )),
        None => Some(format!(
            "the admission of sha256:{digest} at {} was claimed by no createRuntime, so no container owns it (container {asker} may not clean it up); `mounts gc` removes it {UNSTARTED_GRACE_SECS} s after admission",
            root.display()
        )),
    };
    if let Some(reason) = refusal {
        entry.reasons.push(reason.clone());
        audit::record(audit, &entry).map_err(|e| {
            GateError::Denied(format!("{reason}; and the refusal cannot be recorded: {e}"))
        })?;
        return Err(GateError::Denied(reason));
    }
    let why = format!("container {asker} owns the admission and stopped");
    let problems = recorded_cleanup(audit, entry, why, &dir, Some(&root));
    if !problems.is_empty() {
        return Err(GateError::Cleanup {
            state: dir,
            problems,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GateDecision;

    fn config(dir: &Path) -> GateConfig {
        GateConfig {
            policy: dir.join("policy.json"),
            repo: dir.join("repo"),
            audit: AuditSink::new(dir.join("audit.log")),
            run_dir: dir.join("run"),
            verity: None,
            timeout_secs: 5,
            annotations: false,
            fetch_bundles: false,
            registries_conf: None,
        }
    }

    #[test]
    fn a_warn_mode_admission_says_what_enforce_mode_would_deny() {
        let runtime = parse_runtime_config(br#"{"root":{"path":"/r"}}"#, "config").unwrap();
        let mut precreated = Precreated {
            config: runtime,
            admitted: Admitted {
                key: "k".into(),
                rootfs: "/run/k/rootfs".into(),
                decision: GateDecision::default(),
                verity: None,
            },
        };
        assert_eq!(precreated.warning(), None);
        let decision = &mut precreated.admitted.decision;
        decision.would_reject = true;
        decision.reasons = vec!["no signature".into(), "no seal".into()];
        assert_eq!(
            precreated.warning().as_deref(),
            Some("warn mode: admitted although enforce mode would deny: no signature; no seal")
        );
    }

    #[test]
    fn unreadable_stdin_is_a_refusal_at_every_stage() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let refused = precreate(&config, &b"not json"[..], false).unwrap_err();
        assert!(refused.is_denial(), "{refused}");
        assert!(
            reason_of(&refused).contains("runtime config on stdin"),
            "{refused}"
        );
        let refused = create_runtime(&config.run_dir, &config.audit, &b"{"[..]).unwrap_err();
        assert!(refused.is_denial(), "{refused}");
        assert!(poststop(&config.run_dir, &config.audit, &b"{"[..]).is_err());
        // Refused before any container was named: nothing to record, nothing made.
        assert!(!config.audit.log.exists());
        assert!(!config.run_dir.exists());
    }
}
