//! Which container, and which image, the engine is starting: from the engine's own records.
//!
//! podman hands a precreate hook the runtime spec, whose `root.path` is its mount of the
//! container's layer: `GRAPHROOT/overlay/<layer id>/merged` (overlay) or
//! `GRAPHROOT/vfs/dir/<layer id>` (vfs). The store's container records name, for that layer,
//! the container, the image it was created from (by ID), and podman's metadata, whose
//! `image-name` is the name the user asked for:
//!
//! | file (below the graph root) | what is taken from it |
//! |---|---|
//! | `DRIVER-containers/containers.lock`, `DRIVER-layers/layers.lock`, `DRIVER-images/images.lock` | a shared lock on each, held while its records are read (one at a time: never waiting for one while holding another) |
//! | `DRIVER-containers/containers.json`, `volatile-containers.json` | `id`, `names`, `image`, `layer`, `metadata` (`image-name`, `name`) |
//! | `DRIVER-layers/layers.json`, `volatile-layers.json` | the container layer's `parent`: the image's top layer |
//!
//! Each link is cross-checked ([`find_container`]): exactly one record has that layer, the
//! layer's parent is the top layer of the image the record names, the name podman recorded is
//! one of that image's names, and the container ID the caller saw elsewhere in the spec (the
//! hostname, `cgroupsPath`, bind-mount sources under `DRIVER-containers/<id>/`) is the record's.
//! Any disagreement refuses. A caller's annotations play no part.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::conf::{Driver, StoreLocation};
use super::reference::{is_image_id, ImageSpec, StorageRef};
use super::store::{lock_shared, read_records, ImageRecord, LayerRecord};
use crate::error::OciError;

/// A container record of `containers.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct ContainerRecord {
    /// The container ID (64 hex digits).
    pub id: String,
    /// The container's names.
    #[serde(default)]
    pub names: Vec<String>,
    /// The ID of the image it was created from.
    pub image: String,
    /// The ID of its own (writable) layer.
    pub layer: String,
    /// The engine's JSON metadata as a string (podman writes `image-name` and `name`).
    #[serde(default)]
    pub metadata: Option<String>,
}

/// podman's container metadata (libpod `RuntimeContainerMetadata`).
#[derive(Debug, Default, Deserialize)]
struct PodmanMetadata {
    #[serde(default, rename = "image-name")]
    image_name: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// The container the engine is starting, as its records say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineContainer {
    /// The container ID (64 hex digits).
    pub id: String,
    /// The container's name (podman's `--name`), when recorded.
    pub name: Option<String>,
    /// The ID of its own (writable) layer, whose mount is the runtime spec's root.
    pub layer: String,
    /// The image it was created from, pinned by ID in this store.
    pub image: StorageRef,
    /// The name the image was asked for (podman's `image-name`), one of the image's names.
    pub image_name: String,
}

fn refuse(location: &StoreLocation, reason: String) -> OciError {
    OciError::Storage {
        path: location.graph_root.display().to_string(),
        reason,
    }
}

/// The container layer ID a `root.path` names in this store, if it is one of its mounts.
pub fn layer_of_root(location: &StoreLocation, root: &Path) -> Option<String> {
    let rel = root.strip_prefix(&location.graph_root).ok()?;
    let parts: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
    let id = match (location.driver, parts.as_slice()) {
        (Driver::Overlay, ["overlay", id, "merged"]) => *id,
        (Driver::Vfs, ["vfs", "dir", id]) => *id,
        _ => return None,
    };
    is_image_id(id).then(|| id.to_string())
}

/// The container whose layer is mounted at `root`, checked link by link (see the module docs);
/// `claimed_id`: the container ID found elsewhere in the spec, which must be the record's.
pub fn find_container(
    location: &StoreLocation,
    root: &Path,
    claimed_id: Option<&str>,
) -> Result<EngineContainer, OciError> {
    let layer = layer_of_root(location, root).ok_or_else(|| {
        refuse(
            location,
            format!(
                "root {} is not a container mount of this store ({}/{}/…)",
                root.display(),
                location.graph_root.display(),
                match location.driver {
                    Driver::Overlay => "overlay/<layer>/merged",
                    Driver::Vfs => "vfs/dir/<layer>",
                }
            ),
        )
    })?;
    let gr = &location.graph_root;
    let driver = location.driver.name();
    let root_fd: OwnedFd = File::open(gr)
        .map_err(|e| refuse(location, format!("graph root: {e}")))?
        .into();
    let containers_dir = format!("{driver}-containers");
    let layers_dir = format!("{driver}-layers");
    let images_dir = format!("{driver}-images");
    // One shared lock at a time, each released before the next is taken: a containers/storage
    // writer may hold layers.lock while it waits for containers.lock (a container is created on
    // a new layer), so holding containers.lock while waiting for layers.lock deadlocked against
    // parallel `podman run`s (until the 30 s lock wait refused). The cross-checks below refuse
    // records that changed in between.
    let containers = {
        let _lock = lock_shared(&root_fd, gr, &format!("{containers_dir}/containers.lock"))?;
        let mut containers: Vec<ContainerRecord> = read_records(
            &root_fd,
            gr,
            &format!("{containers_dir}/containers.json"),
            true,
        )?;
        containers.extend(read_records::<ContainerRecord>(
            &root_fd,
            gr,
            &format!("{containers_dir}/volatile-containers.json"),
            true,
        )?);
        containers
    };
    let found: Vec<&ContainerRecord> = containers.iter().filter(|c| c.layer == layer).collect();
    let record = match found.as_slice() {
        [one] => *one,
        [] => {
            return Err(refuse(
                location,
                format!("no container record has layer {layer}"),
            ))
        }
        _ => {
            return Err(refuse(
                location,
                format!("{} container records claim layer {layer}", found.len()),
            ))
        }
    };
    if let Some(claimed) = claimed_id {
        if claimed != record.id {
            return Err(refuse(
                location,
                format!(
                    "the spec names container {claimed}, but layer {layer} belongs to container {}",
                    record.id
                ),
            ));
        }
    }
    if !is_image_id(&record.image) {
        return Err(refuse(
            location,
            format!(
                "container {} has no image (created from a root directory?)",
                record.id
            ),
        ));
    }
    let layers = {
        let _lock = lock_shared(&root_fd, gr, &format!("{layers_dir}/layers.lock"))?;
        let mut layers: Vec<LayerRecord> =
            read_records(&root_fd, gr, &format!("{layers_dir}/layers.json"), false)?;
        layers.extend(read_records::<LayerRecord>(
            &root_fd,
            gr,
            &format!("{layers_dir}/volatile-layers.json"),
            true,
        )?);
        layers
    };
    let images: Vec<ImageRecord> = {
        let _lock = lock_shared(&root_fd, gr, &format!("{images_dir}/images.lock"))?;
        read_records(&root_fd, gr, &format!("{images_dir}/images.json"), false)?
    };
    let image = images
        .iter()
        .find(|i| i.id == record.image)
        .ok_or_else(|| {
            refuse(
                location,
                format!("image {} is not in the store", record.image),
            )
        })?;
    let parent = layers
        .iter()
        .find(|l| l.id == layer)
        .map(|l| l.parent.clone().unwrap_or_default())
        .ok_or_else(|| {
            refuse(
                location,
                format!("container layer {layer} is not in layers.json"),
            )
        })?;
    if Some(parent.as_str()) != image.layer.as_deref() {
        return Err(refuse(
            location,
            format!(
                "container layer {layer} sits on layer {parent:?}, not on the top layer of image {}",
                image.id
            ),
        ));
    }
    let metadata: PodmanMetadata = match record.metadata.as_deref() {
        None | Some("") => PodmanMetadata::default(),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| refuse(location, format!("container {} metadata: {e}", record.id)))?,
    };
    let image_name = metadata.image_name.ok_or_else(|| {
        refuse(
            location,
            format!("container {} records no image name", record.id),
        )
    })?;
    if !image.names.contains(&image_name) {
        return Err(refuse(
            location,
            format!(
                "container {} was created from {image_name:?}, which is not a name of image {} ({:?})",
                record.id, image.id, image.names
            ),
        ));
    }
    Ok(EngineContainer {
        id: record.id.clone(),
        name: metadata.name.or_else(|| record.names.first().cloned()),
        layer,
        image: StorageRef {
            driver: Some(driver.to_string()),
            graph_root: Some(location.graph_root.clone()),
            run_root: Some(location.run_root.clone()),
            image: ImageSpec::Id(image.id.clone()),
        },
        image_name,
    })
}

/// The per-container directory podman bind-mounts files from (`/etc/hosts`, …).
pub fn container_dir(location: &StoreLocation, id: &str) -> PathBuf {
    location
        .graph_root
        .join(format!("{}-containers", location.driver.name()))
        .join(id)
}

/// Every container record of the store, by ID (for reports).
pub fn list_containers(location: &StoreLocation) -> Result<BTreeMap<String, String>, OciError> {
    let gr = &location.graph_root;
    let root_fd: OwnedFd = File::open(gr)
        .map_err(|e| refuse(location, format!("graph root: {e}")))?
        .into();
    let dir = format!("{}-containers", location.driver.name());
    let _lock = lock_shared(&root_fd, gr, &format!("{dir}/containers.lock"))?;
    let records: Vec<ContainerRecord> =
        read_records(&root_fd, gr, &format!("{dir}/containers.json"), true)?;
    Ok(records.into_iter().map(|c| (c.id, c.image)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_name_layers() {
        let id = "b".repeat(64);
        let overlay = StoreLocation {
            driver: Driver::Overlay,
            graph_root: "/g".into(),
            run_root: "/r".into(),
        };
        assert_eq!(
            layer_of_root(&overlay, Path::new(&format!("/g/overlay/{id}/merged"))),
            Some(id.clone())
        );
        assert_eq!(
            layer_of_root(&overlay, Path::new(&format!("/g/overlay/{id}/diff"))),
            None
        );
        assert_eq!(
            layer_of_root(&overlay, Path::new("/g/overlay/../merged")),
            None
        );
        let vfs = StoreLocation {
            driver: Driver::Vfs,
            ..overlay
        };
        assert_eq!(
            layer_of_root(&vfs, Path::new(&format!("/g/vfs/dir/{id}"))),
            Some(id)
        );
        assert_eq!(layer_of_root(&vfs, Path::new("/elsewhere")), None);
    }
}
