//! `cfsgate mount`, `cfsgate umount` and `cfsgate mount-helper`: arguments and output only; the
//! work is in the `cfsgate-mounter` crate.
//!
//! | command | does |
//! |---|---|
//! | `cfsgate mount [--repo DIR] DIGEST\|REF MOUNTPOINT [--verity=kernel\|userspace\|none] [--upperdir D --workdir D] [--idmap=/proc/PID/ns/user] [--basedir DIR]… [--dev] [--suid]` | mounts `DIR/images/<digest>` with `DIR/objects` (then each `--basedir`) as object directories; `nodev,nosuid` unless `--dev`/`--suid` |
//! | `cfsgate umount MOUNTPOINT` | unmounts it; the kernel releases the EROFS layer and loop device with it |
//! | `cfsgate mount-helper IMAGE DIR -o digest=…,basedir=…,…` | what `mount -t composefs IMAGE DIR -o …` runs, see below |
//!
//! Installing the helper so `mount -t composefs` works: mount(8) runs `/sbin/mount.composefs
//! IMAGE DIR [-sfnv] -o OPTIONS`, so install a two-line script there:
//!
//! ```sh
//! printf '#!/bin/sh\nexec cfsgate mount-helper "$@"\n' > /sbin/mount.composefs
//! chmod 755 /sbin/mount.composefs
//! mount -t composefs /repo/images/$D /mnt -o digest=$D,basedir=/repo/objects,verity=userspace
//! ```
//!
//! (or symlink /sbin/mount.composefs to the cfsgate binary and have `main` dispatch to
//! [`run_mount_helper`] when `argv[0]` ends in `mount.composefs`, see
//! `cfsgate_mounter::helper::is_mount_helper_name`).
//! Options are those of `mount.composefs` (see `cfsgate_mounter::helper`); `digest=` is required
//! because cfsgate only mounts by trusted digest.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cfsgate_image::store::RepoPaths;
use cfsgate_mounter::helper::parse_helper_options;
use cfsgate_mounter::{unmount, MountRequest, UpperLayer, VerityMode};

/// `cfsgate mount`.
#[derive(Debug, clap::Args)]
pub struct MountArgs {
    /// The trusted image digest (64 hex digits, optionally `sha256:`-prefixed) or a ref name.
    pub image: String,
    /// Where to mount it.
    pub mountpoint: PathBuf,
    /// How object contents are checked: kernel (fs-verity enforced on every read), userspace
    /// (every object hashed before mounting) or none. Default: kernel when supported, else an error.
    #[arg(long)]
    pub verity: Option<VerityMode>,
    /// Writable layer (needs --workdir).
    #[arg(long, requires = "workdir")]
    pub upperdir: Option<PathBuf>,
    /// Work directory of the writable layer (empty, same filesystem as --upperdir).
    #[arg(long, requires = "upperdir")]
    pub workdir: Option<PathBuf>,
    /// Show owners through this user namespace's id mapping (e.g. /proc/PID/ns/user).
    #[arg(long)]
    pub idmap: Option<PathBuf>,
    /// More object directories, searched after the repository's objects/.
    #[arg(long)]
    pub basedir: Vec<PathBuf>,
    /// Let device nodes in the image be opened through the mount (mount(8)'s `dev`; the
    /// default is `nodev`).
    #[arg(long)]
    pub dev: bool,
    /// Honour setuid/setgid bits and file capabilities in the image (mount(8)'s `suid`; the
    /// default is `nosuid`).
    #[arg(long)]
    pub suid: bool,
}

/// `cfsgate umount`.
#[derive(Debug, clap::Args)]
pub struct UmountArgs {
    /// A mount point made by `cfsgate mount` or `mount -t composefs`.
    pub mountpoint: PathBuf,
}

/// `cfsgate mount-helper`: the `mount.composefs` calling convention.
#[derive(Debug, clap::Args)]
pub struct MountHelperArgs {
    /// The composefs image file.
    pub image: PathBuf,
    /// Where to mount it.
    pub mountpoint: PathBuf,
    /// Comma-separated options (may be repeated): digest=, basedir=, verity[=MODE], tryverity,
    /// upperdir=, workdir=, idmap=, ro, rw.
    #[arg(short = 'o')]
    pub options: Vec<String>,
    /// mount(8) flags accepted for compatibility: sloppy, fake, no-mtab, verbose.
    #[arg(short = 's')]
    pub sloppy: bool,
    #[arg(short = 'f')]
    pub fake: bool,
    #[arg(short = 'n')]
    pub no_mtab: bool,
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Filesystem type as mount(8) passes it (`composefs`).
    #[arg(short = 't')]
    pub fstype: Option<String>,
}

/// Run `cfsgate mount` on the repository `repo` (images/<digest>, objects/, refs/<name>).
pub fn run_mount(args: MountArgs, repo: &Path) -> Result<()> {
    let repo = RepoPaths::new(repo);
    let digest = repo.resolve(&args.image)?;
    let mut object_dirs = vec![repo.objects_dir()];
    object_dirs.extend(args.basedir);
    let request = MountRequest {
        object_dirs,
        verity: args.verity,
        upper: UpperLayer::from_dirs(args.upperdir, args.workdir)?,
        idmap: args.idmap,
        nodev: !args.dev,
        nosuid: !args.suid,
    };
    let report = request
        .mount(&digest, &repo.image_path(&digest), &args.mountpoint)
        .with_context(|| format!("mounting sha256:{digest} on {}", args.mountpoint.display()))?;
    println!("{}", report.summary(&args.mountpoint));
    Ok(())
}

/// Run `cfsgate umount`.
pub fn run_umount(args: UmountArgs) -> Result<()> {
    Ok(unmount(&args.mountpoint)?)
}

/// Run `cfsgate mount-helper` (mount.composefs).
pub fn run_mount_helper(args: MountHelperArgs) -> Result<()> {
    if args.fake {
        return Ok(());
    }
    let options = parse_helper_options(&args.options.join(","))?;
    let (digest, request) = options.into_request(&args.image)?;
    let report = request
        .mount(&digest, &args.image, &args.mountpoint)
        .with_context(|| {
            format!(
                "mount.composefs {} on {}",
                args.image.display(),
                args.mountpoint.display()
            )
        })?;
    if args.verbose {
        eprintln!("{}", report.summary(&args.mountpoint));
    }
    Ok(())
}
