//! The overlay on top: the EROFS mount as the metadata layer, the object directories as
//! data-only layers, optionally an upper/work dir for writes.
//!
//! New mount API (kernel ≥ 6.8), each value one `fsconfig` string, so paths need no escaping:
//!
//! | key | value |
//! |---|---|
//! | `source` | `composefs` |
//! | `metacopy` | `on` (files are metadata in EROFS, data in objects) |
//! | `redirect_dir` | `on` (composefs redirects name the objects) |
//! | `verity` | `require` in kernel verity mode (every object must have the recorded digest) |
//! | `lowerdir+` | `/proc/self/fd/N` of the detached EROFS mount |
//! | `datadir+` | `/proc/self/fd/N` of each object directory (or its idmapped clone), in order |
//! | `upperdir`, `workdir` | the writable layer, only for writable mounts |
//!
//! Mount attributes (`fsmount`): `MOUNT_ATTR_RDONLY` without an upper layer, `MOUNT_ATTR_NODEV`
//! and `MOUNT_ATTR_NOSUID` when asked (mount(2): `MS_RDONLY`, `MS_NODEV`, `MS_NOSUID`).
//!
//! Fallback (`lowerdir+` unknown to the kernel): `mount(2)` with
//! `lowerdir=EROFS::OBJ1::OBJ2,metacopy=on,redirect_dir=on[,verity=require][,upperdir=…,workdir=…]`,
//! where `::` marks the data-only layers; paths containing `,`, `:` or `\` are refused there.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use cfsgate_sys::mount::{mount_ids, MountIds};
use rustix::mount::{MountAttrFlags, MountFlags, MoveMountFlags};

use crate::error::MountError;
use crate::fsctx::{fd_path, syscall_error, FsContext};

/// Which kernel interface made the overlay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverlayApi {
    /// fsopen/fsconfig with `lowerdir+`/`datadir+`, then move_mount.
    NewMountApi,
    /// mount(2) with a `lowerdir=A::B` option string.
    LegacyMount,
}

/// A made overlay: how, and (new API) who it is, read from the `fsmount` fd once attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverlayMounted {
    /// The interface that made it.
    pub api: OverlayApi,
    /// The attached mount's ids; `None` from mount(2) (no fd) or where the kernel lacks unique
    /// mount ids (the caller reads the mount table then, and refuses what it must).
    pub ids: Option<MountIds>,
}

/// The layers of one composefs overlay.
pub struct OverlayLayers<'a> {
    /// The detached EROFS mount: the metadata lower layer.
    pub erofs: BorrowedFd<'a>,
    /// The object directories, as data-only lower layers, in search order.
    pub data_dirs: Vec<BorrowedFd<'a>>,
    /// `(upperdir, workdir)` for a writable mount.
    pub upper: Option<(&'a Path, &'a Path)>,
    /// Mount with `verity=require`: overlayfs refuses to open a file whose object lacks the
    /// fs-verity digest the image records.
    pub require_verity: bool,
    /// `nodev` on the overlay mount.
    pub nodev: bool,
    /// `nosuid` on the overlay mount.
    pub nosuid: bool,
}

impl OverlayLayers<'_> {
    /// `nodev`/`nosuid` as new-API mount attributes and as mount(2) flags.
    fn restrictions(&self) -> (MountAttrFlags, MountFlags) {
        let (mut attrs, mut flags) = (MountAttrFlags::empty(), MountFlags::empty());
        if self.nodev {
            attrs |= MountAttrFlags::MOUNT_ATTR_NODEV;
            flags |= MountFlags::NODEV;
        }
        if self.nosuid {
            attrs |= MountAttrFlags::MOUNT_ATTR_NOSUID;
            flags |= MountFlags::NOSUID;
        }
        (attrs, flags)
    }
}

/// Mount the overlay on `target` (an open directory), with the new API unless `force_legacy`
/// or the kernel lacks `lowerdir+`.
pub fn mount_overlay(
    layers: &OverlayLayers<'_>,
    target: &Path,
    force_legacy: bool,
) -> Result<OverlayMounted, MountError> {
    if !force_legacy {
        match mount_new_api(layers, target) {
            Ok(ids) => {
                return Ok(OverlayMounted {
                    api: OverlayApi::NewMountApi,
                    ids,
                })
            }
            Err(NewApiFailure::NoLayerAppend) => {}
            Err(NewApiFailure::Other(err)) => return Err(err),
        }
    }
    mount_legacy(layers, target)?;
    Ok(OverlayMounted {
        api: OverlayApi::LegacyMount,
        ids: None,
    })
}

enum NewApiFailure {
    /// The kernel does not know `lowerdir+`: use the legacy option string.
    NoLayerAppend,
    Other(MountError),
}

fn mount_new_api(
    layers: &OverlayLayers<'_>,
    target: &Path,
) -> Result<Option<MountIds>, NewApiFailure> {
    let ctx = FsContext::open("overlay").map_err(NewApiFailure::Other)?;
    let set = |key: &str, value: &str| ctx.set_string(key, value).map_err(NewApiFailure::Other);
    set("source", "composefs")?;
    set("metacopy", "on")?;
    set("redirect_dir", "on")?;
    if layers.require_verity {
        set("verity", "require")?;
    }
    if let Err(err) = ctx.set_string("lowerdir+", &fd_path(layers.erofs)) {
        return Err(match &err {
            MountError::Syscall { source, .. } if source.raw_os_error() == Some(libc::EINVAL) => {
                NewApiFailure::NoLayerAppend
            }
            _ => NewApiFailure::Other(err),
        });
    }
    for dir in &layers.data_dirs {
        set("datadir+", &fd_path(*dir))?;
    }
    if let Some((upper, work)) = layers.upper {
        set("upperdir", &path_str(upper).map_err(NewApiFailure::Other)?)?;
        set("workdir", &path_str(work).map_err(NewApiFailure::Other)?)?;
    }
    ctx.create().map_err(|(_, e)| NewApiFailure::Other(e))?;
    let mut attrs = layers.restrictions().0;
    if layers.upper.is_none() {
        attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY;
    }
    let mount = ctx.mount(attrs).map_err(NewApiFailure::Other)?;
    attach(&mount, target).map_err(NewApiFailure::Other)?;
    // The fd names the mount just attached, whatever is mounted on `target` since.
    Ok(mount_ids(&mount).ok())
}

/// `move_mount` the detached overlay onto `target`: the only moment anything becomes visible.
fn attach(mount: &OwnedFd, target: &Path) -> Result<(), MountError> {
    rustix::mount::move_mount(
        mount.as_fd(),
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| syscall_error(format!("move_mount onto {}", target.display()), e, None))
}

fn mount_legacy(layers: &OverlayLayers<'_>, target: &Path) -> Result<(), MountError> {
    let mut lower = fd_path(layers.erofs);
    for dir in &layers.data_dirs {
        lower.push_str("::");
        lower.push_str(&fd_path(*dir));
    }
    let mut data = format!("lowerdir={lower},metacopy=on,redirect_dir=on");
    if layers.require_verity {
        data.push_str(",verity=require");
    }
    let mut flags = MountFlags::RDONLY;
    if let Some((upper, work)) = layers.upper {
        data.push_str(&format!(
            ",upperdir={},workdir={}",
            legacy_option_path(upper)?,
            legacy_option_path(work)?
        ));
        flags = MountFlags::empty();
    }
    flags |= layers.restrictions().1;
    let options = std::ffi::CString::new(data.clone())
        .map_err(|_| MountError::Options(format!("mount options {data:?} contain a NUL byte")))?;
    rustix::mount::mount("composefs", target, "overlay", flags, options.as_c_str()).map_err(|e| {
        syscall_error(
            format!("mount(2) overlay on {} with {data}", target.display()),
            e,
            None,
        )
    })
}

fn path_str(path: &Path) -> Result<String, MountError> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| MountError::Options(format!("path {} is not valid UTF-8", path.display())))
}

/// A path usable inside a mount(2) option string (whose separators are `,` and `:`).
fn legacy_option_path(path: &Path) -> Result<String, MountError> {
    let text = path_str(path)?;
    if text.contains([',', ':', '\\']) {
        return Err(MountError::Options(format!(
            "path {text} contains ',', ':' or '\\', which the mount(2) option string cannot carry"
        )));
    }
    Ok(text)
}
