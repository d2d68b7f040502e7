//! Which image the engine is starting, from the engine's own records: the container podman
//! builds the runtime spec for, found from the spec's `root.path` in containers-storage
//! (`cfsgate_oci::cstorage::containers`), and the image it was created from, judged by its ID
//! under the name it was created from. A caller's annotations play no part, unless the opt-in
//! annotation mode is used; then the image they name must be the container's own.
//!
//! | from the spec | gives | checked |
//! |---|---|---|
//! | `root.path` = `G/overlay/<layer>/merged` or `G/vfs/dir/<layer>` | driver, graph root `G`, the container layer | `G` and `G/DRIVER-containers` are directories owned by this user, writable by no one else |
//! | bind-mount sources `R/DRIVER-containers/<id>/userdata/…` | the run root `R` (else storage.conf's, else the default), a container ID claim | every claim names one ID |
//! | `linux.cgroupsPath` (`…/libpod-<id>`, `…:libpod:<id>`) | a container ID claim | the same |
//! | `hostname` of 12 hex digits (podman's default) | a short ID claim | a prefix of the record's ID |
//!
//! The record of that layer (exactly one) must have the claimed ID, its layer must sit on the
//! image's top layer, and the image name podman recorded must be one of the image's names
//! ([`find_container`]); any disagreement refuses. The image is then
//! `containers-storage:[DRIVER@G+R]<image id>` judged as the docker reference of that name,
//! normalised as podman does (`busybox` → `docker.io/library/busybox:latest`); the signatures
//! are the ones stored with the image.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use cfsgate_oci::cstorage::containers::{find_container, EngineContainer};
use cfsgate_oci::cstorage::{Driver, StorageConf, StoreLocation};
use cfsgate_policy::DockerReference;
use serde_json::Value;

use cfsgate_policy::{Mode, Timestamp};
use cfsgate_verifier::audit::AuditEntry;

use crate::annotations::{container_key, image_from_annotations};
use crate::error::{reason_of, GateError, Result};
use crate::spec::RuntimeConfig;
use crate::GateConfig;

/// containers/storage's default run root for root (storage.conf(5)).
pub const DEFAULT_RUN_ROOT: &str = "/run/containers/storage";
/// podman's default hostname: this many leading hex digits of the container ID.
pub const SHORT_ID_LEN: usize = 12;
/// A container ID: 64 lowercase hex digits.
const ID_LEN: usize = 64;

/// The image a container starts, and the per-container key.
#[derive(Debug, Clone)]
pub struct StartedImage {
    /// What is evaluated (`containers-storage:[…]<id>`, or the annotation's image).
    pub image: String,
    /// The docker reference it is judged as.
    pub reference: Option<String>,
    /// The per-container key (the engine's container ID when known).
    pub key: String,
    /// The container as the engine's records say, when `root.path` is one of its mounts.
    pub container: Option<EngineContainer>,
}

/// A refusal before any decision: the image named so far (for the engine's stderr and the
/// audit record), and why.
#[derive(Debug)]
pub struct Refusal {
    /// The image the container names, when known.
    pub image: Option<String>,
    /// Why it is refused.
    pub error: GateError,
}

impl Refusal {
    fn new(image: Option<&str>) -> impl FnOnce(GateError) -> Refusal + '_ {
        move |error| Refusal {
            image: image.map(str::to_string),
            error,
        }
    }

    /// Append the refusal to the audit log (stage `precreate`) when it names an image (one
    /// record per decision that named one); the denial to report (which says so when the
    /// record could not be written).
    pub fn record(self, config: &GateConfig) -> GateError {
        if self.image.is_none() {
            return self.error.into_denial();
        }
        let reason = reason_of(&self.error);
        let entry = AuditEntry {
            time: Some(Timestamp::now()),
            stage: "precreate".into(),
            image: self.image.unwrap_or_default(),
            mode: Mode::Enforce,
            reasons: vec![reason.clone()],
            ..AuditEntry::default()
        };
        match crate::audit::record(&config.audit, &entry) {
            Ok(_) => self.error.into_denial(),
            Err(e) => GateError::Denied(format!(
                "{reason}; cannot record the decision, failing closed: {e}"
            )),
        }
    }
}

/// The image `runtime` starts: from the engine's records, or (with `annotations`, opt-in) from
/// the annotations, checked against the records when `root.path` is a container mount.
pub fn started_image(
    runtime: &RuntimeConfig,
    annotations: bool,
) -> std::result::Result<StartedImage, Refusal> {
    if annotations {
        let (image, reference) =
            image_from_annotations(&runtime.annotations).map_err(Refusal::new(None))?;
        let checked = engine_container(&runtime.value).and_then(|container| {
            let key = match &container {
                Some(own) => check_named_is_own(&image, own).map(|()| own.id.clone())?,
                None => container_key(&runtime.annotations)?,
            };
            Ok((container, key))
        });
        let (container, key) = checked.map_err(Refusal::new(Some(&image)))?;
        return Ok(StartedImage {
            image,
            reference,
            key,
            container,
        });
    }
    // Until the records name the image, the refusal names the root podman gave.
    let root = root_path(&runtime.value).map(|p| format!("root.path {}", p.display()));
    let own = engine_container(&runtime.value)
        .and_then(|own| {
            own.ok_or_else(|| {
                GateError::Invalid(format!(
                    "root.path {} is not a container mount of a containers-storage store (GRAPHROOT/overlay/<layer>/merged or GRAPHROOT/vfs/dir/<layer>): the image cannot be found in the engine's records (podman run --rootfs is not gated; the annotation mode is opt-in: hook precreate --annotations)",
                    root_path(&runtime.value).map_or("(none)".into(), |p| p.display().to_string())
                ))
            })
        })
        .map_err(Refusal::new(root.as_deref()))?;
    let image = own.image.to_string();
    let reference = DockerReference::parse_normalized(&own.image_name)
        .map_err(|e| {
            GateError::Invalid(format!(
                "container {} was created from {:?}, which is no docker reference: {e}",
                own.id, own.image_name
            ))
        })
        .map_err(Refusal::new(Some(&image)))?
        .with_default_tag()
        .to_string();
    Ok(StartedImage {
        image,
        reference: Some(reference),
        key: own.id.clone(),
        container: Some(own),
    })
}

/// The spec's `root.path`, when it is a string.
fn root_path(spec: &Value) -> Option<PathBuf> {
    spec.get("root")?.get("path")?.as_str().map(PathBuf::from)
}

/// The container whose layer is mounted at `root.path`, `None` when that path has the shape
/// of no store's container mount; an error when it has, and the records or the claims disagree.
pub fn engine_container(spec: &Value) -> Result<Option<EngineContainer>> {
    let Some(root) = root_path(spec) else {
        return Ok(None);
    };
    let Some((driver, graph_root)) = store_of_root(&root) else {
        return Ok(None);
    };
    check_store_dir(&graph_root)?;
    check_store_dir(&graph_root.join(format!("{}-containers", driver.name())))?;
    let mut claims = Vec::new();
    let mut run_root = None;
    for source in mount_sources(spec) {
        if let Some((root_dir, id)) = container_dir_of(&source, driver) {
            if root_dir != graph_root {
                run_root.get_or_insert(root_dir);
            }
            claims.push((format!("bind-mount source {}", source.display()), id));
        }
    }
    if let Some(id) = spec
        .pointer("/linux/cgroupsPath")
        .and_then(Value::as_str)
        .and_then(id_of_cgroup)
    {
        claims.push(("linux.cgroupsPath".to_string(), id));
    }
    let claimed = match claims.split_first() {
        None => None,
        Some(((_, first), rest)) => {
            if let Some((what, other)) = rest.iter().find(|(_, id)| id != first) {
                return Err(GateError::Invalid(format!(
                    "the runtime spec names two containers: {first} ({}) and {other} ({what})",
                    claims[0].0
                )));
            }
            Some(first.clone())
        }
    };
    let run_root = match run_root {
        Some(r) => r,
        None => StorageConf::load()
            .ok()
            .filter(|c| c.graph_root.as_deref() == Some(graph_root.as_path()))
            .and_then(|c| c.run_root)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_RUN_ROOT)),
    };
    let location = StoreLocation {
        driver,
        graph_root,
        run_root,
    };
    let container = find_container(&location, &root, claimed.as_deref())
        .map_err(|e| GateError::Invalid(format!("the engine's records: {e}")))?;
    if let Some(hostname) = spec.get("hostname").and_then(Value::as_str) {
        if hostname.len() == SHORT_ID_LEN && is_hex(hostname) && !container.id.starts_with(hostname)
        {
            return Err(GateError::Invalid(format!(
                "the runtime spec's hostname {hostname} is the short ID of another container than {} (whose layer root.path is)",
                container.id
            )));
        }
    }
    Ok(Some(container))
}

/// `G/overlay/<id>/merged` → (overlay, G); `G/vfs/dir/<id>` → (vfs, G); an absolute path
/// without `..` only.
fn store_of_root(root: &Path) -> Option<(Driver, PathBuf)> {
    if !root.is_absolute() || root.components().any(|c| c == Component::ParentDir) {
        return None;
    }
    let parts: Vec<&str> = root.iter().filter_map(|c| c.to_str()).collect();
    let n = parts.len();
    let (driver, keep) = match parts.as_slice() {
        [.., "overlay", id, "merged"] if is_id(id) => (Driver::Overlay, n - 3),
        [.., "vfs", "dir", id] if is_id(id) => (Driver::Vfs, n - 3),
        _ => return None,
    };
    let graph_root: PathBuf = root.iter().take(keep).collect();
    (graph_root.parent().is_some()).then_some((driver, graph_root))
}

/// A store directory the engine's records are read from: a real directory owned by this user
/// and writable by no one else (else anyone could write the records that decide the image).
fn check_store_dir(dir: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| GateError::io("reading", dir, e))?;
    let euid = rustix::process::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != euid || meta.mode() & 0o022 != 0 {
        return Err(GateError::Invalid(format!(
            "{} is not a store directory of this user (a directory owned by uid {euid}, writable by no one else): its records are not the engine's",
            dir.display()
        )));
    }
    Ok(())
}

fn mount_sources(spec: &Value) -> Vec<PathBuf> {
    spec.get("mounts")
        .and_then(Value::as_array)
        .map(|mounts| {
            mounts
                .iter()
                .filter_map(|m| m.get("source")?.as_str())
                .filter(|s| s.starts_with('/'))
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

/// `R/DRIVER-containers/<id>/…` → (R, id).
fn container_dir_of(source: &Path, driver: Driver) -> Option<(PathBuf, String)> {
    let dir = format!("{}-containers", driver.name());
    let parts: Vec<&str> = source.iter().filter_map(|c| c.to_str()).collect();
    let at = parts.iter().rposition(|p| *p == dir)?;
    let id = parts.get(at + 1).filter(|id| is_id(id))?;
    Some((source.iter().take(at).collect(), id.to_string()))
}

/// The container ID at the end of a cgroups path: `…/libpod-<id>[.scope]`, `…:libpod:<id>`.
fn id_of_cgroup(path: &str) -> Option<String> {
    let last = path.rsplit(['/', ':']).next()?;
    let last = last.strip_suffix(".scope").unwrap_or(last);
    let id = last.strip_prefix("libpod-").unwrap_or(last);
    is_id(id).then(|| id.to_string())
}

fn is_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_id(text: &str) -> bool {
    text.len() == ID_LEN && is_hex(text)
}

/// Annotation mode: the image the annotations name must be the container's own (the same
/// config, i.e. the same image ID), so no image can name another to be judged in its place.
fn check_named_is_own(named: &str, own: &EngineContainer) -> Result<()> {
    let resolved = cfsgate_oci::resolve(named).map_err(|e| {
        GateError::Invalid(format!(
            "the annotated image {named} cannot be compared with the container's own: {e}"
        ))
    })?;
    let own_id = own.image.image.name();
    if resolved.config_digest.hex() != own_id {
        return Err(GateError::Invalid(format!(
            "the annotations name {named} (config {}), but container {} runs image {own_id} ({}): the annotated image is not the one podman starts",
            resolved.config_digest, own.id, own.image_name
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_shapes() {
        let id = "a".repeat(64);
        assert_eq!(
            store_of_root(Path::new(&format!("/g/s/overlay/{id}/merged"))),
            Some((Driver::Overlay, PathBuf::from("/g/s")))
        );
        assert_eq!(
            store_of_root(Path::new(&format!("/g/vfs/dir/{id}"))),
            Some((Driver::Vfs, PathBuf::from("/g")))
        );
        for bad in [
            format!("/g/overlay/{id}/diff"),
            format!("/g/../overlay/{id}/merged"),
            format!("g/vfs/dir/{id}"),
            "/g/vfs/dir/abc".to_string(),
            format!("/overlay/{id}/merged"),
        ] {
            assert_eq!(store_of_root(Path::new(&bad)), None, "{bad}");
        }
    }

    #[test]
    fn id_claims() {
        let id = "b".repeat(64);
        assert_eq!(
            id_of_cgroup(&format!("/libpod_parent/libpod-{id}")),
            Some(id.clone())
        );
        assert_eq!(
            id_of_cgroup(&format!("machine.slice:libpod:{id}")),
            Some(id.clone())
        );
        assert_eq!(id_of_cgroup("/libpod_parent/conmon"), None);
        assert_eq!(
            container_dir_of(
                Path::new(&format!("/r/overlay-containers/{id}/userdata/hosts")),
                Driver::Overlay
            ),
            Some((PathBuf::from("/r"), id.clone()))
        );
        assert_eq!(
            container_dir_of(
                Path::new(&format!("/r/vfs-containers/{id}/userdata/hosts")),
                Driver::Overlay
            ),
            None
        );
    }
}
