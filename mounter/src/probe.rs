//! What this node's kernel can do for the gate, found by trying it (for `cfsgate doctor`).
//!
//! | check | how | needed |
//! |---|---|---|
//! | `erofs_file_backed` | a one-directory EROFS image written to a temporary file, `fsopen("erofs")` + `source=/proc/self/fd/N` + `FSCONFIG_CMD_CREATE` (nothing is mounted) | no: a loop device is the fallback |
//! | `erofs` | `fsopen("erofs")` | yes |
//! | `overlay_data_only` | `fsopen("overlay")` with `lowerdir=A::B` (a data-only lower layer, Linux 6.5+) on two empty directories, created, not mounted | yes |
//! | `fs_verity` | enabling fs-verity on an `O_TMPFILE` in the store's directory | no: kernel verity mode needs it, userspace mode works without |
//! | `keyring_asymmetric` | `add_key("asymmetric", …)` with an empty payload: refused as a bad payload when the type exists, `ENODEV` when it does not | no: only `keyring:` trust needs it |
//! | `unique_mount_ids` | `statx(STATX_MNT_ID_UNIQUE)` on `/` (Linux 6.8+) | yes: createRuntime refuses without it |
//!
//! Every check gives one line of what was found and, when it fails, one line of remedy.

use std::io::Write as _;
use std::path::Path;

use crate::fsctx::{fd_path, FsContext};
use crate::verity::{kernel_supports_verity, VeritySupport};

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Stable name (docs/json.md).
    pub name: &'static str,
    /// Whether the feature works.
    pub ok: bool,
    /// Whether the gate cannot run without it.
    pub required: bool,
    /// What was found.
    pub detail: String,
    /// What to do when it fails (empty when ok).
    pub remedy: String,
}

fn probe(name: &'static str, required: bool, result: Result<String, (String, String)>) -> Probe {
    match result {
        Ok(detail) => Probe {
            name,
            ok: true,
            required,
            detail,
            remedy: String::new(),
        },
        Err((detail, remedy)) => Probe {
            name,
            ok: false,
            required,
            detail,
            remedy,
        },
    }
}

fn empty_erofs_image() -> Result<tempfile::NamedTempFile, String> {
    let tree = cfsgate_image::Tree::new(cfsgate_image::Stat {
        mode: 0o040755,
        nlink: 2,
        uid: 0,
        gid: 0,
        rdev: 0,
        mtime_sec: 0,
        mtime_nsec: 0,
    });
    let bytes = cfsgate_image::erofs::writer::write_image(&tree, &Default::default())
        .map_err(|e| format!("cannot write a test image: {e}"))?;
    let mut file = tempfile::NamedTempFile::new().map_err(|e| format!("temporary file: {e}"))?;
    file.write_all(&bytes)
        .map_err(|e| format!("temporary file: {e}"))?;
    Ok(file)
}

fn erofs_checks() -> Vec<Probe> {
    let fs = FsContext::open("erofs");
    let available = probe(
        "erofs",
        true,
        match &fs {
            Ok(_) => Ok("the kernel mounts EROFS".into()),
            Err(e) => Err((
                format!("no EROFS: {e}"),
                "load the erofs module (modprobe erofs) or use a kernel built with CONFIG_EROFS_FS"
                    .into(),
            )),
        },
    );
    let file_backed = match (fs, empty_erofs_image()) {
        (Err(_), _) => Err(("no EROFS at all".into(), "see erofs".into())),
        (_, Err(e)) => Err((e, "check that the temporary directory is writable".into())),
        (Ok(ctx), Ok(image)) => {
            let result = std::fs::File::open(image.path())
                .map_err(|e| e.to_string())
                .and_then(|f| {
                    use std::os::fd::AsFd as _;
                    ctx.set_string("source", &fd_path(f.as_fd()))
                        .map_err(|e| e.to_string())?;
                    ctx.set_flag("ro").map_err(|e| e.to_string())?;
                    ctx.create().map_err(|(errno, e)| {
                        if errno == rustix::io::Errno::NOTBLK {
                            "the kernel mounts EROFS only from block devices (file-backed EROFS is Linux 6.12+)".to_string()
                        } else {
                            e.to_string()
                        }
                    })
                });
            match result {
                Ok(()) => Ok("EROFS mounts straight from image files".into()),
                Err(why) => Err((
                    why,
                    "nothing to do: images are mounted through loop devices instead (Linux 6.12+ mounts files directly)".into(),
                )),
            }
        }
    };
    vec![available, probe("erofs_file_backed", false, file_backed)]
}

fn overlay_check() -> Probe {
    let result = (|| {
        let dirs = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (upper, data) = (dirs.path().join("lower"), dirs.path().join("data"));
        std::fs::create_dir(&upper).map_err(|e| e.to_string())?;
        std::fs::create_dir(&data).map_err(|e| e.to_string())?;
        let ctx = FsContext::open("overlay").map_err(|e| format!("no overlayfs: {e}"))?;
        ctx.set_string(
            "lowerdir",
            &format!("{}::{}", upper.display(), data.display()),
        )
        .map_err(|e| format!("lowerdir=A::B refused: {e}"))?;
        ctx.set_flag("ro").map_err(|e| e.to_string())?;
        ctx.create()
            .map_err(|(_, e)| format!("data-only lower layer refused: {e}"))
    })();
    probe(
        "overlay_data_only",
        true,
        match result {
            Ok(()) => Ok("overlayfs takes data-only lower layers (lowerdir=A::B)".into()),
            Err(why) => Err((
                why,
                "use Linux 6.5 or later with overlayfs (modprobe overlay)".into(),
            )),
        },
    )
}

fn verity_check(store: &Path) -> Probe {
    let dir = if store.is_dir() {
        store
    } else {
        store.parent().unwrap_or(Path::new("/"))
    };
    probe(
        "fs_verity",
        false,
        match kernel_supports_verity(dir) {
            Ok(VeritySupport::Supported) => Ok(format!("fs-verity works in {}", dir.display())),
            Ok(VeritySupport::Unsupported { reason }) => Err((
                reason,
                "mount with --verity=userspace (objects checked when mounted), or put the store on ext4/btrfs/f2fs with verity on a kernel built with CONFIG_FS_VERITY".into(),
            )),
            Err(e) => Err((
                format!("cannot probe {}: {e}", dir.display()),
                "check that the store's directory exists and is writable".into(),
            )),
        },
    )
}

fn keyring_check() -> Probe {
    const SESSION_KEYRING: cfsgate_sys::keyctl::Serial = -3;
    let result = cfsgate_sys::keyctl::add_key(
        c"asymmetric",
        c"cfsgate-doctor-probe",
        Some(&[]),
        SESSION_KEYRING,
    );
    probe(
        "keyring_asymmetric",
        false,
        match result {
            Ok(serial) => {
                let _ = cfsgate_sys::keyctl::invalidate(serial);
                Ok("the kernel keyring has the asymmetric key type".into())
            }
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Err((
                "the kernel keyring has no asymmetric key type".into(),
                "load it (modprobe asymmetric_keys x509_key_parser) to use keyring: trust".into(),
            )),
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => Err((
                "no kernel keyring (keyctl: ENOSYS)".into(),
                "use key files in the policy; keyring: trust needs CONFIG_KEYS".into(),
            )),
            // A bad payload: the type exists and parsed (and refused) our empty key.
            Err(_) => Ok("the kernel keyring has the asymmetric key type (RSA PKCS#1 v1.5 verification in the kernel)".into()),
        },
    )
}

fn mount_id_check() -> Probe {
    let result = std::fs::File::open("/")
        .map_err(|e| e.to_string())
        .and_then(|root| cfsgate_sys::mount::unique_mount_id(&root).map_err(|e| e.to_string()));
    probe(
        "unique_mount_ids",
        true,
        match result {
            Ok(_) => Ok("statx reports unique 64-bit mount ids".into()),
            Err(why) => Err((
                why,
                "use Linux 6.8 or later: createRuntime binds admissions to ids that never recur"
                    .into(),
            )),
        },
    )
}

/// Run every kernel check; `store` is the repository (its file system is probed for verity).
pub fn probe_kernel(store: &Path) -> Vec<Probe> {
    let mut probes = erofs_checks();
    probes.push(overlay_check());
    probes.push(verity_check(store));
    probes.push(keyring_check());
    probes.push(mount_id_check());
    probes
}
