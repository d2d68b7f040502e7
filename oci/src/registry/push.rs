//! Pushing what a local OCI layout holds under one tag: the manifest the tag names in the
//! layout's `index.json`, after its config and layers (`cfsgate sign docker://…` pushes the
//! cosign signature tag `sha256-<hex>.sig` it extended in a staged layout this way).
//!
//! Blobs go first and the manifest last, so the registry never holds a manifest whose blobs it
//! lacks; a blob the registry already has is not sent again ([`RegistryClient::put_blob`]).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::digest::BlobDigest;
use crate::registry::client::RegistryClient;
use crate::registry::error::RegistryError;
use crate::registry::reference::DockerRef;
use crate::resolve::MEDIA_OCI_MANIFEST;

/// The annotation naming a tag in `index.json`.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Pushing a layout's tag failed.
#[derive(Debug, thiserror::Error)]
pub enum LayoutPushError {
    /// A file of the layout cannot be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The layout does not hold what it should.
    #[error("{}: {reason}", path.display())]
    Layout {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The registry refused a blob or the manifest.
    #[error("pushing {what}: {source}")]
    Push {
        /// The blob or manifest, and where to.
        what: String,
        /// Why (boxed: a registry error is large, the other variants small).
        source: Box<RegistryError>,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, LayoutPushError> {
    // The layout is this process's own staging directory (written by the fetch and the
    // signer), not input from elsewhere: no size limit beyond what was written.
    std::fs::read(path).map_err(|source| LayoutPushError::Read {
        path: path.to_owned(),
        source,
    })
}

fn json(path: &Path, bytes: &[u8]) -> Result<Value, LayoutPushError> {
    serde_json::from_slice(bytes).map_err(|e| LayoutPushError::Layout {
        path: path.to_owned(),
        reason: format!("not JSON: {e}"),
    })
}

fn digest_of(path: &Path, descriptor: &Value) -> Result<BlobDigest, LayoutPushError> {
    let text = descriptor["digest"].as_str().unwrap_or_default();
    BlobDigest::parse(text).map_err(|e| LayoutPushError::Layout {
        path: path.to_owned(),
        reason: format!("descriptor digest {text:?}: {e}"),
    })
}

/// Push the manifest tagged `tag` in `layout`, and its blobs, to `to`'s repository under the
/// same tag; the pushed manifest's digest.
pub fn push_layout_tag(
    client: &RegistryClient,
    layout: &Path,
    tag: &str,
    to: &DockerRef,
) -> Result<BlobDigest, LayoutPushError> {
    let index_path = layout.join("index.json");
    let index = json(&index_path, &read(&index_path)?)?;
    let entry = index["manifests"]
        .as_array()
        .and_then(|list| list.iter().find(|d| d["annotations"][REF_NAME] == tag))
        .ok_or_else(|| LayoutPushError::Layout {
            path: index_path.clone(),
            reason: format!("no {tag} in the layout"),
        })?;
    let digest = digest_of(&index_path, entry)?;
    let media_type = entry["mediaType"].as_str().unwrap_or(MEDIA_OCI_MANIFEST);
    let blob_path = |d: &BlobDigest| layout.join("blobs/sha256").join(d.hex());
    let manifest_path = blob_path(&digest);
    let manifest_bytes = read(&manifest_path)?;
    let manifest = json(&manifest_path, &manifest_bytes)?;
    let descriptors = std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().into_iter().flatten());
    for descriptor in descriptors {
        let d = digest_of(&manifest_path, descriptor)?;
        client
            .put_blob(&to.repository, &read(&blob_path(&d))?)
            .map_err(|source| LayoutPushError::Push {
                what: format!("blob {d} to {to}"),
                source: Box::new(source),
            })?;
    }
    client
        .put_manifest(&to.repository, tag, media_type, &manifest_bytes)
        .map_err(|source| LayoutPushError::Push {
            what: format!("{tag} to {}", to.name()),
            source: Box::new(source),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::client::ClientOptions;

    /// Nothing is sent for a tag the layout lacks: the layout is read before the registry is
    /// asked anything (the address below would refuse any connection).
    #[test]
    fn a_tag_the_layout_lacks_is_refused_naming_the_index() {
        let layout = tempfile::tempdir().expect("tempdir");
        let index = layout.path().join("index.json");
        std::fs::write(
            &index,
            r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}"#,
        )
        .expect("write");
        let to = DockerRef::parse("docker://127.0.0.1:9/app:latest").expect("reference");
        let client = RegistryClient::connect(&to, &ClientOptions::default()).expect("client");
        let error =
            push_layout_tag(&client, layout.path(), "sha256-ab.sig", &to).expect_err("no such tag");
        assert_eq!(
            error.to_string(),
            format!("{}: no sha256-ab.sig in the layout", index.display())
        );
        // The tag present, its manifest blob absent: the read names the blob's path.
        let error = push_layout_tag(&client, layout.path(), "latest", &to).expect_err("no blob");
        assert!(matches!(&error, LayoutPushError::Read { path, .. }
            if path.ends_with("blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000")));
    }
}
