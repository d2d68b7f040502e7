//! Mounting a composefs image by trusted digest, and unmounting it.
//!
//! [`mount_image`] steps, each of which must succeed before the next (nothing is attached to
//! the mount table until the last one):
//!
//! | step | what | module |
//! |---|---|---|
//! | 1 | decide the verity mode (explicit, or kernel when supported, else refuse) | [`crate::verity`] |
//! | 2 | open the image once, pin its bytes, check digest == trusted and the header | [`crate::pinned`] |
//! | 3 | detached read-only EROFS mount of the pinned bytes (file-backed, or loop device) | [`crate::erofs`] |
//! | 4 | userspace mode: hash every referenced object, name the files whose object is bad | [`crate::objects`] |
//! | 5 | idmap: `MOUNT_ATTR_IDMAP` on the EROFS mount and on a clone of each object dir | [`cfsgate_sys`] |
//! | 6 | overlay (metacopy, redirect_dir, data-only object layers, optional upper), attached with move_mount | [`crate::overlay`] |
//!
//! `nodev` and `nosuid` ([`MountOptions`]) are attributes of the overlay: it is the only mount
//! anyone reaches by path (the EROFS layer is detached, or in the fallback attached for a moment
//! below a private 0700 directory), and the kernel checks a device open and a setuid exec
//! against the mount of the path used, the overlay's.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use cfsgate_image::FsVeritySha256;
use rustix::mount::{OpenTreeFlags, UnmountFlags};

use crate::erofs::{mount_erofs, ErofsSource};
use crate::error::MountError;
use crate::fsctx::syscall_error;
use crate::objects::{open_object_dirs, verify_objects, VerifyStats};
use crate::overlay::{mount_overlay, OverlayApi, OverlayLayers, OverlayMounted};
use crate::pinned::{ImagePinning, PinnedImage};
use crate::verity::{kernel_has_verity, kernel_supports_verity, VerityMode, VeritySupport};
use cfsgate_sys::mount::{mount_setattr_idmap, MountIds};

/// `statfs.f_type` of overlayfs (linux/magic.h OVERLAYFS_SUPER_MAGIC).
const OVERLAYFS_SUPER_MAGIC: u64 = 0x794c_7630;

/// The writable layer of a container mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpperLayer {
    /// The directory holding the container's changes.
    pub upperdir: PathBuf,
    /// An empty directory on the same filesystem as `upperdir`.
    pub workdir: PathBuf,
}

/// How to mount.
#[derive(Debug, Default)]
pub struct MountOptions<'a> {
    /// Object directories, searched in order (overlay data-only layers).
    pub object_dirs: Vec<PathBuf>,
    /// `None`: kernel verity when the kernel supports it, else an error.
    pub verity: Option<VerityMode>,
    /// Writable mount; read-only when `None`.
    pub upper: Option<UpperLayer>,
    /// A user namespace (e.g. an open /proc/PID/ns/user) whose id mapping the EROFS and object
    /// layers show through.
    pub idmap: Option<BorrowedFd<'a>>,
    /// Use the mount(2) `lowerdir=A::B` fallback even where the new API works.
    pub legacy_overlay: bool,
    /// mount(8)'s `nodev`: device nodes in the image cannot be opened through the mount.
    pub nodev: bool,
    /// mount(8)'s `nosuid`: setuid/setgid bits and file capabilities in the image are ignored.
    pub nosuid: bool,
}

/// What a successful mount did: every security-relevant choice, stated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountReport {
    /// The trusted fs-verity digest the image was checked against.
    pub digest: FsVeritySha256,
    /// The verity mode in force for the objects.
    pub verity: VerityMode,
    /// How the image was kept from changing while mounted.
    pub pinning: ImagePinning,
    /// What the EROFS layer was mounted from.
    pub erofs: ErofsSource,
    /// Which overlayfs mount interface was used.
    pub overlay: OverlayApi,
    /// The overlay mount's ids, read from its `fsmount` fd once attached (new mount API on
    /// Linux 6.8+; `None` otherwise): the mount this call made, not whatever is on top of the
    /// mount point by the time the caller looks.
    pub mount_ids: Option<MountIds>,
    /// Userspace mode: what was verified.
    pub verified: Option<VerifyStats>,
    /// Whether an upper layer made the mount writable.
    pub writable: bool,
    /// Whether the lower layers are idmapped.
    pub idmapped: bool,
}

/// Decide the verity mode: the requested one if possible, else kernel if supported, else an error.
pub fn resolve_verity_mode(
    requested: Option<VerityMode>,
    object_dirs: &[PathBuf],
) -> Result<VerityMode, MountError> {
    let support = |dirs: &[PathBuf]| -> Result<VeritySupport, MountError> {
        if dirs.is_empty() {
            return Ok(if kernel_has_verity() {
                VeritySupport::Supported
            } else {
                VeritySupport::Unsupported {
                    reason: "the running kernel lacks fs-verity (CONFIG_FS_VERITY)".into(),
                }
            });
        }
        for dir in dirs {
            let probed = kernel_supports_verity(dir).map_err(|source| MountError::ObjectDir {
                path: dir.clone(),
                source,
            })?;
            if let VeritySupport::Unsupported { .. } = probed {
                return Ok(probed);
            }
        }
        Ok(VeritySupport::Supported)
    };
    match requested {
        Some(VerityMode::Kernel) => match support(object_dirs)? {
            VeritySupport::Supported => Ok(VerityMode::Kernel),
            VeritySupport::Unsupported { reason } => {
                Err(MountError::KernelVerityUnavailable { reason })
            }
        },
        Some(mode) => Ok(mode),
        None => match support(object_dirs)? {
            VeritySupport::Supported => Ok(VerityMode::Kernel),
            VeritySupport::Unsupported { reason } => {
                Err(MountError::NoDefaultVerityMode { reason })
            }
        },
    }
}

/// Mount the composefs image `image` on `target` if and only if its fs-verity digest is `trusted`.
pub fn mount_image(
    trusted: &FsVeritySha256,
    image: &Path,
    target: &Path,
    opts: &MountOptions<'_>,
) -> Result<MountReport, MountError> {
    let verity = resolve_verity_mode(opts.verity, &opts.object_dirs)?;
    let pinned = PinnedImage::open(image, trusted)?;
    let erofs = mount_erofs(&pinned)?;
    let object_dirs = open_object_dirs(&opts.object_dirs)?;
    let verified = match verity {
        VerityMode::Userspace => Some(verify_objects(erofs.mount.as_fd(), &object_dirs)?),
        VerityMode::Kernel | VerityMode::None => None,
    };

    let mut data_layers: Vec<OwnedFd> = Vec::with_capacity(object_dirs.len());
    if let Some(userns) = opts.idmap {
        mount_setattr_idmap(erofs.mount.as_fd(), userns).map_err(|source| MountError::Syscall {
            step: "mount_setattr MOUNT_ATTR_IDMAP on the EROFS mount".into(),
            source,
            log: Vec::new(),
        })?;
        for (dir, path) in object_dirs.iter().zip(&opts.object_dirs) {
            let clone = rustix::mount::open_tree(
                dir,
                "",
                OpenTreeFlags::OPEN_TREE_CLONE
                    | OpenTreeFlags::OPEN_TREE_CLOEXEC
                    | OpenTreeFlags::AT_EMPTY_PATH,
            )
            .map_err(|e| {
                syscall_error(format!("open_tree clone of {}", path.display()), e, None)
            })?;
            mount_setattr_idmap(clone.as_fd(), userns).map_err(|source| MountError::Syscall {
                step: format!("mount_setattr MOUNT_ATTR_IDMAP on {}", path.display()),
                source,
                log: Vec::new(),
            })?;
            data_layers.push(clone);
        }
    }
    let data_dirs: Vec<BorrowedFd<'_>> = if opts.idmap.is_some() {
        data_layers.iter().map(AsFd::as_fd).collect()
    } else {
        object_dirs.iter().map(AsFd::as_fd).collect()
    };
    let layers = OverlayLayers {
        erofs: erofs.mount.as_fd(),
        data_dirs,
        upper: opts
            .upper
            .as_ref()
            .map(|u| (u.upperdir.as_path(), u.workdir.as_path())),
        require_verity: verity == VerityMode::Kernel,
        nodev: opts.nodev,
        nosuid: opts.nosuid,
    };
    let overlay = match mount_overlay(&layers, target, opts.legacy_overlay) {
        Ok(mounted) => mounted,
        // Kernels before detached mounts were allowed as overlay layers (6.12 among them)
        // refuse the EROFS mount fd. Do what mount.composefs does there: attach the EROFS
        // mount briefly at a private directory, build the overlay from that path, detach it.
        Err(detached_err) if opts.idmap.is_none() => {
            mount_overlay_via_attached_erofs(&layers, erofs.mount.as_fd(), target, opts).map_err(
                |attached_err| {
                    MountError::Options(format!(
                        "overlay with the detached EROFS mount failed ({detached_err}); \
                         with it attached at a private directory too ({attached_err})"
                    ))
                },
            )?
        }
        Err(err) => return Err(err),
    };
    Ok(MountReport {
        digest: *trusted,
        verity,
        pinning: pinned.pinning,
        erofs: erofs.source,
        overlay: overlay.api,
        mount_ids: overlay.ids,
        verified,
        writable: opts.upper.is_some(),
        idmapped: opts.idmap.is_some(),
    })
}

/// The fallback for kernels that refuse detached layers: the EROFS mount is attached at a fresh
/// private directory only while the overlay is created, then detached (MNT_DETACH: the overlay
/// keeps it alive) and the directory removed, whatever the outcome.
fn mount_overlay_via_attached_erofs(
    layers: &OverlayLayers<'_>,
    erofs: BorrowedFd<'_>,
    target: &Path,
    opts: &MountOptions<'_>,
) -> Result<OverlayMounted, MountError> {
    let base = Path::new(ATTACH_BASE);
    std::fs::create_dir_all(base).map_err(|source| MountError::ObjectDir {
        path: base.to_owned(),
        source,
    })?;
    let dir = tempfile::Builder::new()
        .prefix("erofs-")
        .tempdir_in(base)
        .map_err(|source| MountError::ObjectDir {
            path: base.to_owned(),
            source,
        })?;
    rustix::mount::move_mount(
        erofs,
        "",
        rustix::fs::CWD,
        dir.path(),
        rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| {
        syscall_error(
            format!("move_mount EROFS to {}", dir.path().display()),
            e,
            None,
        )
    })?;
    let result = (|| {
        let attached = rustix::fs::open(
            dir.path(),
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| syscall_error(format!("open {}", dir.path().display()), e, None))?;
        let again = OverlayLayers {
            erofs: attached.as_fd(),
            data_dirs: layers.data_dirs.clone(),
            upper: layers.upper,
            require_verity: layers.require_verity,
            nodev: layers.nodev,
            nosuid: layers.nosuid,
        };
        mount_overlay(&again, target, opts.legacy_overlay)
    })();
    // Detach whatever happened: the EROFS mount must not stay in the mount table.
    let _ = rustix::mount::unmount(dir.path(), UnmountFlags::DETACH | UnmountFlags::NOFOLLOW);
    result
}

/// Where the fallback attaches EROFS mounts for a moment (a tmpfs on systemd hosts).
const ATTACH_BASE: &str = "/run/cfsgate/attach";

/// Unmount a composefs mount. The detached EROFS mount, idmapped clones and the loop device
/// (autoclear) and sealed memfd behind it are released by the kernel with the overlay: nothing
/// else was made, so nothing else is left.
pub fn unmount(target: &Path) -> Result<(), MountError> {
    let stat = rustix::fs::statfs(target).map_err(|e| MountError::Unmount {
        path: target.to_owned(),
        source: e.into(),
    })?;
    if stat.f_type as u64 != OVERLAYFS_SUPER_MAGIC {
        return Err(MountError::NotComposefsMount {
            path: target.to_owned(),
        });
    }
    rustix::mount::unmount(target, UnmountFlags::NOFOLLOW).map_err(|e| MountError::Unmount {
        path: target.to_owned(),
        source: e.into(),
    })
}
