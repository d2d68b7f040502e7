//! The repository's layout as paths, for readers that need no open repository (the mounter,
//! the runtime gate): one definition of where images, objects and refs live.
//!
//! [`RepoPaths`] opens and checks nothing; the table of the layout is in the [store
//! module](super) documentation. The default repository is [`DEFAULT_REPO_PATH`].

use std::path::{Path, PathBuf};

use crate::fsverity::FsVeritySha256;

use super::layout::{IMAGES_DIR, OBJECTS_DIR, REFS_DIR, TMP_DIR};
use super::ref_file::{read_ref_file, validate_ref_name};
use super::StoreError;

/// Where a repository lives unless `--repo` says otherwise.
pub const DEFAULT_REPO_PATH: &str = "/var/lib/cfsgate";

/// The paths of a repository rooted at a directory (nothing is opened or checked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoPaths {
    root: PathBuf,
}

impl Default for RepoPaths {
    /// The repository at [`DEFAULT_REPO_PATH`].
    fn default() -> Self {
        RepoPaths::new(DEFAULT_REPO_PATH)
    }
}

impl RepoPaths {
    /// The repository at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RepoPaths { root: root.into() }
    }

    /// The repository's top directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `objects/`: the object directory ([`super::ObjectDir`]), an overlayfs data layer.
    pub fn objects_dir(&self) -> PathBuf {
        self.root.join(OBJECTS_DIR)
    }

    /// `tmp/`: staged files, renamed into place once complete.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join(TMP_DIR)
    }

    /// `objects/xx/<62 hex>`.
    pub fn object_path(&self, digest: &FsVeritySha256) -> PathBuf {
        self.objects_dir().join(digest.object_path())
    }

    /// `images/<64 hex>`: the composefs image whose fs-verity digest is the name.
    pub fn image_path(&self, digest: &FsVeritySha256) -> PathBuf {
        self.root.join(IMAGES_DIR).join(digest.to_hex())
    }

    /// `refs/<name>`, once `name` is checked to be a valid ref name (it cannot leave `refs/`).
    pub fn ref_path(&self, name: &str) -> Result<PathBuf, StoreError> {
        validate_ref_name(name)?;
        Ok(self.root.join(REFS_DIR).join(name))
    }

    /// A 64-hex digest (optionally `sha256:`-prefixed) as is, else the digest stored in
    /// `refs/<name>`, read by the store's one ref parser
    /// ([`read_ref_file`]: `fsck` and `gc` agree). Whether the image is stored is not checked.
    pub fn resolve(&self, digest_or_ref: &str) -> Result<FsVeritySha256, StoreError> {
        let text = digest_or_ref
            .strip_prefix("sha256:")
            .unwrap_or(digest_or_ref);
        if let Ok(digest) = FsVeritySha256::from_hex(text) {
            return Ok(digest);
        }
        let path = self.ref_path(digest_or_ref)?;
        read_ref_file(&path, digest_or_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_refs_in_a_repository() {
        let dir = tempfile::tempdir().unwrap();
        let hex = "37061ef2ac4c21bec68489b56138c5780306a4ad7fe6676236ecdf2c9027cd92";
        std::fs::create_dir_all(dir.path().join("refs/app")).unwrap();
        std::fs::write(dir.path().join("refs/app/v1"), format!("sha256:{hex}\n")).unwrap();
        let repo = RepoPaths::new(dir.path());
        assert_eq!(repo.resolve("app/v1").unwrap().to_hex(), hex);
        assert_eq!(repo.resolve(hex).unwrap().to_hex(), hex);
        assert!(repo.resolve("../etc/passwd").is_err());
        assert!(repo.resolve("missing").is_err());
        assert_eq!(
            repo.image_path(&repo.resolve(hex).unwrap()),
            dir.path().join("images").join(hex)
        );
        assert_eq!(repo.objects_dir(), dir.path().join("objects"));
        assert_eq!(RepoPaths::default().root(), Path::new("/var/lib/cfsgate"));
    }
}
