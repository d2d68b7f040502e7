//! Finding admissions and removing them: the lookup of the admission whose root a bundle
//! names, the cleanup of one container (unmount, remove its state), the liveness test of
//! `mounts gc` and the listing of `mounts list`.
//!
//! A container is gone when the process createRuntime recorded has ended (or its pid now names
//! a process started at another time), or when it never reached createRuntime and
//! [`UNSTARTED_GRACE_SECS`] have passed since its admission.
//!
//! Every cleanup that `mounts gc` or `hook poststop` does is an audit record (stage `gc` or
//! `poststop`), written before anything is touched: a cleanup that cannot be recorded does not
//! happen. `admit` means the cleanup was done, `deny` that it was refused (a poststop for a
//! container that does not own the admission) or could not be completed (its reasons say what
//! is left).

use std::path::{Path, PathBuf};

use cfsgate_policy::{Mode, Timestamp};
use cfsgate_verifier::audit::{AuditEntry, AuditSink};

use crate::audit::record;
use serde::Serialize;

use crate::error::{GateError, Result};
use crate::mountinfo::mount_identity;
use crate::procstat::process_start;
use crate::record::{AdmissionRecord, ADMISSION_FILE};

/// A precreate admission whose container never reached createRuntime is collected by
/// `mounts gc` after this long (the runtime failed between the two stages).
pub const UNSTARTED_GRACE_SECS: u64 = 600;

/// Every state directory under the run dir (none when it does not exist). Names starting with
/// `.` are the gate's own files (the built-image record key), never a container's.
pub fn state_dirs(run_dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(run_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(GateError::io("reading", run_dir, e)),
    };
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| GateError::io("reading", run_dir, e))?;
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        dirs.push(entry.path());
    }
    dirs.sort();
    Ok(dirs)
}

/// The admission whose rootfs is `root` (canonical): (state dir, record).
pub fn find_admission(run_dir: &Path, root: &Path) -> Result<Option<(PathBuf, AdmissionRecord)>> {
    for state in state_dirs(run_dir)? {
        let Ok(record) = AdmissionRecord::read(&state) else {
            continue;
        };
        if std::fs::canonicalize(&record.rootfs).is_ok_and(|r| r == root) {
            return Ok(Some((state, record)));
        }
    }
    Ok(None)
}

/// Unmount the root (every composefs mount stacked on it) and remove the state directory;
/// what could not be undone, in words.
pub fn cleanup_container(state: &Path, rootfs: Option<&Path>) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(rootfs) = rootfs {
        while mount_identity(rootfs).is_ok_and(|m| m.fstype == "overlay") {
            if let Err(e) = cfsgate_mounter::unmount(rootfs) {
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

/// Whether the container of an admission is gone (see the module doc).
pub fn container_gone(state: &Path, record: &AdmissionRecord) -> bool {
    match record.pid {
        Some(pid) => {
            let now = process_start(pid);
            now.is_none() || now != record.pid_start
        }
        None => std::fs::metadata(state.join(ADMISSION_FILE))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > UNSTARTED_GRACE_SECS),
    }
}

/// One admitted container, as `mounts list` shows it (its JSON: `{"state", "record"}`).
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// The state directory.
    pub state: PathBuf,
    /// Its admission record, when readable.
    pub record: Option<AdmissionRecord>,
}

impl Listed {
    /// `mounts list`'s line: the state directory, `sha256:DIGEST` and the root; `-` for each
    /// of those two without a readable record.
    pub fn line(&self) -> String {
        let record = self.record.as_ref();
        format!(
            "{} {} {}",
            self.state.display(),
            record.map_or("-".into(), |r| format!("sha256:{}", r.composefs_digest)),
            record.map_or("-".into(), |r| r.rootfs.display().to_string()),
        )
    }
}

/// Every state directory and its record.
pub fn list(run_dir: &Path) -> Result<Vec<Listed>> {
    Ok(state_dirs(run_dir)?
        .into_iter()
        .map(|state| Listed {
            record: AdmissionRecord::read(&state).ok(),
            state,
        })
        .collect())
}

/// The audit record of a cleanup (`stage` `poststop` or `gc`) of the admission in `state`
/// (`record` when it was readable), asked for by `container_id`.
pub fn cleanup_entry(
    stage: &str,
    container_id: Option<String>,
    state: &Path,
    record: Option<&AdmissionRecord>,
) -> AuditEntry {
    AuditEntry {
        time: Some(Timestamp::now()),
        stage: stage.into(),
        container_id,
        image: record.map_or_else(|| state.display().to_string(), |r| r.image.clone()),
        reference: record.and_then(|r| r.reference.clone()),
        manifest_digest: record.and_then(|r| r.manifest_digest),
        composefs_digest: record.map(|r| r.composefs_digest),
        mode: Mode::Enforce,
        verity: record.map(|r| r.verity),
        ..AuditEntry::default()
    }
}

/// Record `entry` (admitted, `why` as its reason), then clean up: unmount `rootfs`, remove
/// `state`. A cleanup that cannot be recorded is not done; one that leaves something behind
/// is recorded again, as `deny`, with what is left. What could not be undone, in words.
pub fn recorded_cleanup(
    audit: &AuditSink,
    mut entry: AuditEntry,
    why: String,
    state: &Path,
    rootfs: Option<&Path>,
) -> Vec<String> {
    entry.admitted = true;
    entry.reasons = vec![match rootfs {
        Some(root) => format!(
            "{why}: unmounting {} and removing {}",
            root.display(),
            state.display()
        ),
        None => format!("{why}: removing {}", state.display()),
    }];
    if let Err(e) = record(audit, &entry) {
        return vec![format!(
            "cannot record the cleanup of {}, left as it is: {e}",
            state.display()
        )];
    }
    let problems = cleanup_container(state, rootfs);
    if !problems.is_empty() {
        entry.time = Some(Timestamp::now());
        entry.admitted = false;
        entry.reasons = problems.clone();
        if let Err(e) = record(audit, &entry) {
            let mut problems = problems;
            problems.push(format!("cannot record what the cleanup left: {e}"));
            return problems;
        }
    }
    problems
}

/// What one `mounts gc` run did.
#[derive(Debug, Default)]
pub struct GcReport {
    /// State directories removed.
    pub removed: Vec<PathBuf>,
    /// What could not be undone.
    pub problems: Vec<String>,
}

/// Why `mounts gc` removes the admission `record`: its container is gone (see the module doc).
fn gone_because(record: Option<&AdmissionRecord>) -> String {
    match record {
        None => "no readable admission record".into(),
        Some(AdmissionRecord {
            pid: Some(pid),
            container_id,
            ..
        }) => format!(
            "container {} is gone (process {pid} ended)",
            container_id.as_deref().unwrap_or("-")
        ),
        Some(r) => format!(
            "admission {} never reached createRuntime within {UNSTARTED_GRACE_SECS} s",
            r.key
        ),
    }
}

/// Remove every container that is gone (a state directory without a readable record too), one
/// audit record (stage `gc`) in `audit` for each.
pub fn gc(run_dir: &Path, audit: &AuditSink) -> Result<GcReport> {
    let mut report = GcReport::default();
    for listed in list(run_dir)? {
        let record = listed.record.as_ref();
        let gone = record.is_none_or(|r| container_gone(&listed.state, r));
        if !gone {
            continue;
        }
        let owner = record.map(|r| r.container_id.clone().unwrap_or_else(|| r.key.clone()));
        let entry = cleanup_entry("gc", owner, &listed.state, record);
        let rootfs = record.map(|r| r.rootfs.as_path());
        let problems = recorded_cleanup(audit, entry, gone_because(record), &listed.state, rootfs);
        if problems.is_empty() {
            report.removed.push(listed.state);
        }
        report.problems.extend(problems);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_list_shows_each_state_directory_with_or_without_its_record() {
        let run_dir = tempfile::tempdir().expect("tempdir");
        let record = crate::record::tests::sample();
        let with_record = run_dir.path().join("k1");
        std::fs::create_dir(&with_record).expect("mkdir");
        record.write(&with_record).expect("write the record");
        std::fs::create_dir(run_dir.path().join("k2")).expect("mkdir");
        std::fs::write(run_dir.path().join(".built-images.key"), b"key").expect("write");
        let listed = list(run_dir.path()).expect("list");
        let lines: Vec<String> = listed.iter().map(Listed::line).collect();
        assert_eq!(
            lines,
            [
                format!(
                    "{} sha256:{} /run/cfsgate/containers/k1/rootfs",
                    with_record.display(),
                    "cd".repeat(32)
                ),
                format!("{} - -", run_dir.path().join("k2").display()),
            ]
        );
        let json = serde_json::to_value(&listed).expect("json");
        assert_eq!(json[0]["state"], with_record.display().to_string());
        assert_eq!(
            json[0]["record"],
            serde_json::to_value(&record).expect("json")
        );
        assert_eq!(json[1]["record"], serde_json::Value::Null);
    }
}
