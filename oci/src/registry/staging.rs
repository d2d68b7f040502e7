//! Where a pull into a repository is fetched: a layout `REPO/tmp/pull-XXXXXX/` of its own
//! (`index.json`, `oci-layout`) whose `blobs` is a symlink to the repository's
//! `REPO/oci/blobs`, so what is fetched stays in the repository for later verification and
//! only the index is the pull's own (removed with the staging directory).
//!
//! [`Staged`]: an image reference made readable as a local one for the commands that read
//! images (`import`, `compute-id`, `seal`, `verify`, `sign`): a `docker://` one is fetched,
//! verified on arrival, into a temporary layout of its own and read as `oci:TMP@DIGEST`.

use std::path::Path;

use cfsgate_image::store::Repository;

use crate::digest::BlobDigest;
use crate::registry::config::Endpoint;
use crate::registry::error::RegistryError;
use crate::registry::fetch::{FetchOptions, FetchProgress, Fetched};
use crate::registry::reference::DockerRef;
use crate::registry::session::{signature_tag, RegistrySession, SessionError};
use crate::seal_tag::reference_tag;
use crate::OciError;

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

/// An image ready to be read as a local reference; a fetched one lives in a temporary layout
/// that is removed when this is dropped.
pub struct Staged {
    /// `oci:…`, `dir:…` (as given) or `oci:TMP@DIGEST` (fetched).
    pub reference: String,
    /// The registry reference, when fetched.
    pub docker: Option<DockerRef>,
    /// What the fetch stored, when fetched.
    pub fetched: Option<Fetched>,
    /// The session it was fetched with (for what goes back to the registry).
    session: Option<RegistrySession>,
    _dir: Option<tempfile::TempDir>,
}

impl Staged {
    /// A local reference, read where it is.
    pub fn local(reference: &str) -> Self {
        Staged {
            reference: reference.to_string(),
            docker: None,
            fetched: None,
            session: None,
            _dir: None,
        }
    }

    /// `docker` fetched (its layers too when `layers`) into a new temporary layout, from the
    /// first of its sources that has it (see [`RegistrySession::fetch`]).
    pub fn fetch(
        session: &RegistrySession,
        docker: DockerRef,
        layers: bool,
        progress: &dyn FetchProgress,
        skipped: &mut dyn FnMut(&Endpoint, &SessionError),
    ) -> Result<Self, SessionError> {
        let dir = tempfile::Builder::new()
            .prefix("cfsgate-pull-")
            .tempdir()
            .map_err(io("creating a temporary layout in", &std::env::temp_dir()))?;
        let options = FetchOptions {
            layers,
            ..FetchOptions::default()
        };
        let fetched = session.fetch(&docker, dir.path(), &options, progress, skipped)?;
        Ok(Staged {
            reference: fetched.oci_reference.clone(),
            docker: Some(docker),
            fetched: Some(fetched),
            session: Some(session.clone()),
            _dir: Some(dir),
        })
    }

    /// A fetched image: its registry reference, what was fetched, and the session it was
    /// fetched with; `None` for a local one.
    pub fn from_registry(&self) -> Option<(&DockerRef, &Fetched, &RegistrySession)> {
        match (&self.docker, &self.fetched, &self.session) {
            (Some(docker), Some(fetched), Some(session)) => Some((docker, fetched, session)),
            _ => None,
        }
    }

    /// Push the cosign signature tag of a fetched image, as signing extended it in the
    /// layout, back to the registry's own location ([`RegistrySession::push_signature_tag`]);
    /// returns `NAME:sha256-<hex>.sig` and the pushed manifest's digest (`None`: a local image).
    pub fn push_signature_tag(&self) -> Result<Option<(String, BlobDigest)>, SessionError> {
        let Some((docker, fetched, session)) = self.from_registry() else {
            return Ok(None);
        };
        let signed = &fetched.top_digest;
        let pushed = session.push_signature_tag(docker, &fetched.layout, signed)?;
        Ok(Some((
            format!("{}:{}", docker.name(), signature_tag(signed)),
            pushed,
        )))
    }

    /// The tag the image was named by: the registry reference's, or the local reference's
    /// (`oci:PATH:TAG`, `containers-storage:NAME:TAG`; see [`reference_tag`]).
    pub fn source_tag(&self) -> Result<Option<String>, OciError> {
        match &self.docker {
            Some(docker) => Ok(docker.tag.clone()),
            None => reference_tag(&self.reference),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_reference_is_read_where_it_is() {
        let staged = Staged::local("oci:/images/app:1");
        assert_eq!(staged.reference, "oci:/images/app:1");
        assert!(staged.docker.is_none() && staged.fetched.is_none());
        assert!(staged.from_registry().is_none());
        assert!(staged
            .push_signature_tag()
            .expect("nothing to push")
            .is_none());
        assert_eq!(staged.source_tag().expect("a reference"), Some("1".into()));
        let untagged = Staged::local("dir:/images/app");
        assert_eq!(untagged.source_tag().expect("a reference"), None);
    }

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
