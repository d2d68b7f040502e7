//! A mount asked for with paths only, as `cfsgate mount` and `mount.composefs` give it: the
//! user namespace of an idmapped mount is a file (`/proc/PID/ns/user`), which
//! [`MountRequest::mount`] opens for the length of the mount before calling [`mount_image`].

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use cfsgate_image::FsVeritySha256;

use crate::error::MountError;
use crate::mount::{mount_image, MountOptions, MountReport, UpperLayer};
use crate::verity::VerityMode;

/// What to mount an image with, every part named by path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountRequest {
    /// Object directories, searched in order.
    pub object_dirs: Vec<PathBuf>,
    /// `None`: kernel verity when the kernel supports it, else an error.
    pub verity: Option<VerityMode>,
    /// Writable mount; read-only when `None`.
    pub upper: Option<UpperLayer>,
    /// A user namespace file whose id mapping the EROFS and object layers show through.
    pub idmap: Option<PathBuf>,
    /// mount(8)'s `nodev`.
    pub nodev: bool,
    /// mount(8)'s `nosuid`.
    pub nosuid: bool,
}

impl MountRequest {
    /// Mount `image`, trusted to have fs-verity digest `digest`, on `mountpoint`.
    pub fn mount(
        &self,
        digest: &FsVeritySha256,
        image: &Path,
        mountpoint: &Path,
    ) -> Result<MountReport, MountError> {
        let userns = self.open_userns()?;
        let options = MountOptions {
            object_dirs: self.object_dirs.clone(),
            verity: self.verity,
            upper: self.upper.clone(),
            idmap: userns.as_ref().map(AsFd::as_fd),
            legacy_overlay: false,
            nodev: self.nodev,
            nosuid: self.nosuid,
        };
        mount_image(digest, image, mountpoint, &options)
    }

    fn open_userns(&self) -> Result<Option<File>, MountError> {
        let Some(path) = &self.idmap else {
            return Ok(None);
        };
        File::open(path)
            .map(Some)
            .map_err(|source| MountError::OpenUserns {
                path: path.clone(),
                source,
            })
    }
}

impl UpperLayer {
    /// The writable layer of `upperdir` and `workdir`: both or neither.
    pub fn from_dirs(
        upperdir: Option<PathBuf>,
        workdir: Option<PathBuf>,
    ) -> Result<Option<UpperLayer>, MountError> {
        match (upperdir, workdir) {
            (Some(upperdir), Some(workdir)) => Ok(Some(UpperLayer { upperdir, workdir })),
            (None, None) => Ok(None),
            _ => Err(MountError::Options(
                "upperdir and workdir must be given together".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upper_layer_needs_both_directories() {
        let dir = |p: &str| Some(PathBuf::from(p));
        let upper = UpperLayer::from_dirs(dir("/u"), dir("/w")).expect("both");
        assert_eq!(
            upper,
            Some(UpperLayer {
                upperdir: "/u".into(),
                workdir: "/w".into()
            })
        );
        assert_eq!(UpperLayer::from_dirs(None, None).expect("neither"), None);
        for (u, w) in [(dir("/u"), None), (None, dir("/w"))] {
            let error = UpperLayer::from_dirs(u, w).expect_err("one of them");
            assert_eq!(
                error.to_string(),
                "invalid mount options: upperdir and workdir must be given together"
            );
        }
    }

    #[test]
    fn a_missing_user_namespace_file_is_named_before_anything_is_mounted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let request = MountRequest {
            idmap: Some(dir.path().join("no-such-ns")),
            ..MountRequest::default()
        };
        let digest = FsVeritySha256::from_hex(&"ab".repeat(32)).expect("digest");
        let mountpoint = dir.path().join("mnt");
        let error = request
            .mount(&digest, &dir.path().join("image"), &mountpoint)
            .expect_err("no namespace");
        assert!(
            matches!(&error, MountError::OpenUserns { path, .. } if path.ends_with("no-such-ns")),
            "{error}"
        );
        assert!(!mountpoint.exists());
    }
}
