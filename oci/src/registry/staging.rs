//! Where a pull into a repository is fetched: a layout `REPO/tmp/pull-XXXXXX/` of its own
//! (`index.json`, `oci-layout`) whose `blobs` is a symlink to the repository's
//! `REPO/oci/blobs`, so what is fetched stays in the repository for later verification and
//! only the index is the pull's own (removed with the staging directory).

use std::path::Path;

use cfsgate_image::store::Repository;

use crate::registry::error::RegistryError;

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RegistryError + 'a {
    move |source| RegistryError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// A new staging layout in `repository` (see the module docs), removed when dropped.
pub fn pull_staging(repository: &Repository) -> Result<tempfile::TempDir, RegistryError> {
    let blobs = repository.path().join("oci/blobs");
    std::fs::create_dir_all(blobs.join("sha256")).map_err(io("creating", &blobs))?;
    // Absolute: the link lives in tmp/pull-*/, a relative repository path would not resolve
    // from there.
    let blobs = blobs.canonicalize().map_err(io("resolving", &blobs))?;
    let tmp = repository.path().join("tmp");
    let staging = tempfile::Builder::new()
        .prefix("pull-")
        .tempdir_in(&tmp)
        .map_err(io("creating the pull's layout in", &tmp))?;
    let link = staging.path().join("blobs");
    std::os::unix::fs::symlink(&blobs, &link).map_err(io("linking to the blobs", &link))?;
    Ok(staging)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_staging_layout_shares_the_repository_blobs_and_goes_when_dropped() {
        let work = tempfile::tempdir().expect("tempdir");
        let repository = Repository::create_or_open(work.path().join("repo")).expect("repo");
        let staging = pull_staging(&repository).expect("staging");
        let link = std::fs::read_link(staging.path().join("blobs")).expect("a symlink");
        assert!(link.is_absolute(), "{}", link.display());
        std::fs::write(staging.path().join("blobs/sha256/x"), b"blob").expect("write");
        let kept = repository.path().join("oci/blobs/sha256/x");
        assert_eq!(std::fs::read(&kept).expect("in the repository"), b"blob");
        let dir = staging.path().to_owned();
        assert!(dir.starts_with(repository.path().join("tmp")));
        drop(staging);
        assert!(!dir.exists());
        assert!(kept.exists(), "the blob stays in the repository");
    }
}
