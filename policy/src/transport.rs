//! Transports: which scope keys each accepts, and how an image reference turns into the
//! ordered list of scope keys to look up (containers/image `PolicyConfigurationIdentity`
//! followed by `PolicyConfigurationNamespaces`).
//!
//! | transport | valid scope keys (besides `""`) | lookup order for an image |
//! |---|---|---|
//! | `docker`, `atomic` | anything (upstream does not validate) | `name:tag` or `name@digest`; `name`; each parent namespace up to the host; `*.domain` wildcards from most to least specific (host without port) |
//! | `dir` | absolute, clean path, not `/` | the path; its parent directories (not `/`) |
//! | `oci`, `oci-archive` | absolute, clean path, not `/` | the directory (or archive) path; itself again as a namespace and each parent (not `/`) |
//! | `docker-daemon`, `docker-archive`, `tarball`, `sif` | none | — |
//! | `containers-storage` | `[store-spec]` optionally followed by a name | not evaluated by cfsgate |
//! | any other name | anything (unknown to upstream, never consulted) | — |

use std::path::{Component, Path};

use crate::reference::DockerReference;

/// Checks a (non-empty) scope key against the rules of `transport`, like
/// `ImageTransport.ValidatePolicyConfigurationScope`.
pub fn validate_scope(transport: &str, scope: &str) -> Result<(), String> {
    match transport {
        "dir" | "oci" | "oci-archive" => validate_path_scope(scope),
        "docker-daemon" | "docker-archive" | "tarball" | "sif" => Err(format!(
            "{transport}: does not support any scopes except the default \"\" one"
        )),
        "containers-storage" => validate_storage_scope(scope),
        _ => Ok(()),
    }
}

/// Whether containers/image knows this transport name (scopes of others are never used).
pub fn is_known_transport(transport: &str) -> bool {
    matches!(
        transport,
        "docker"
            | "atomic"
            | "dir"
            | "oci"
            | "oci-archive"
            | "docker-daemon"
            | "docker-archive"
            | "tarball"
            | "sif"
            | "containers-storage"
            | "ostree"
    )
}

fn validate_path_scope(scope: &str) -> Result<(), String> {
    if !scope.starts_with('/') {
        return Err("must be an absolute path".to_string());
    }
    if scope == "/" {
        return Err("use the generic default scope \"\" instead of \"/\"".to_string());
    }
    let cleaned = clean_path(scope);
    if cleaned != scope {
        return Err(format!(
            "uses non-canonical format, perhaps try {cleaned:?}"
        ));
    }
    Ok(())
}

/// `[driver@graphroot+runroot:options]` optionally followed by a docker reference or an
/// `@id`. Only the bracket structure and an absolute graph root are checked.
fn validate_storage_scope(scope: &str) -> Result<(), String> {
    let Some(rest) = scope.strip_prefix('[') else {
        return Err("must start with a [store specification]".to_string());
    };
    let Some((spec, name)) = rest.split_once(']') else {
        return Err("store specification lacks a closing `]`".to_string());
    };
    let root = spec.split_once('@').map_or(spec, |(_, root)| root);
    if !root.starts_with('/') {
        return Err("the store's graph root must be an absolute path".to_string());
    }
    if !name.is_empty() && !name.starts_with('@') {
        DockerReference::parse_normalized(name).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Lexical `filepath.Clean` for absolute paths: removes `.`, `..`, and repeated or
/// trailing slashes.
pub fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().unwrap_or_default()),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    let mut out = String::from("/");
    out.push_str(&parts.join("/"));
    out
}

/// Why an [`ImageRef`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    /// The path of a path-based transport (`dir:`, `oci:`, ...) is relative.
    #[error("{transport}: path {path:?} must be absolute (resolve it before evaluating a policy)")]
    RelativePath {
        /// The transport name.
        transport: String,
        /// The path as given.
        path: String,
    },
    /// A `docker://` reference is not a valid docker reference.
    #[error("{0}")]
    Reference(#[from] crate::reference::ReferenceError),
    /// A `docker://` reference has both a tag and a digest (given).
    #[error("docker: reference {0} has both a tag and a digest, which is not supported")]
    TagAndDigest(String),
    /// The text does not start with a known `TRANSPORT:` (given).
    #[error("cannot parse image name {0:?}: expected TRANSPORT:DETAILS (docker://, dir:, oci:, oci-archive:)")]
    UnknownForm(String),
}

/// An image as the policy sees it: the transport whose scopes apply, the scope keys to
/// try in order, and the docker reference used for `signedIdentity` matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    transport: String,
    identity: String,
    namespaces: Vec<String>,
    docker_reference: Option<DockerReference>,
    /// For an image read from a local transport but named with a docker reference: that
    /// transport and its location.
    source: Option<(String, String)>,
}

impl ImageRef {
    /// `docker://NAME`: a name-only reference gets the `latest` tag as the docker
    /// transport does; a reference with both a tag and a digest is refused as upstream.
    pub fn docker(reference: DockerReference) -> Result<Self, ImageRefError> {
        if reference.tag().is_some() && reference.digest().is_some() {
            return Err(ImageRefError::TagAndDigest(reference.to_string()));
        }
        let reference = reference.with_default_tag();
        Ok(ImageRef {
            transport: "docker".to_string(),
            identity: reference.to_string(),
            namespaces: docker_namespaces(&reference),
            docker_reference: Some(reference),
            source: None,
        })
    }

    /// `dir:PATH` (a skopeo directory). `path` must be absolute and should already have
    /// its symbolic links resolved, as containers/image resolves them.
    pub fn dir(path: &Path) -> Result<Self, ImageRefError> {
        let identity = absolute_clean("dir", path)?;
        let namespaces = dir_namespaces(&identity);
        Ok(ImageRef {
            transport: "dir".to_string(),
            identity,
            namespaces,
            docker_reference: None,
            source: None,
        })
    }

    /// `oci:PATH[:IMAGE]` (an OCI layout directory; the image name is not part of the
    /// policy identity upstream) or, with `transport = "oci-archive"`, a tar of one.
    pub fn oci(transport: &str, path: &Path) -> Result<Self, ImageRefError> {
        let identity = absolute_clean(transport, path)?;
        let namespaces = oci_namespaces(&identity);
        Ok(ImageRef {
            transport: transport.to_string(),
            identity,
            namespaces,
            docker_reference: None,
            source: None,
        })
    }

    /// A local image (`dir:`, `oci:`) named by `--reference NAME`: the `docker` scopes
    /// apply to NAME, as they would after `podman pull` stored it under that name, and NAME
    /// (with `latest` when it has no tag or digest) is the identity signatures must match.
    pub fn with_docker_reference(self, reference: DockerReference) -> Result<Self, ImageRefError> {
        let source = (self.transport.clone(), self.identity.clone());
        let mut named = ImageRef::docker(reference)?;
        named.source = Some(source);
        Ok(named)
    }

    /// Parses `docker://REF`, `dir:PATH`, `oci:PATH[:IMAGE]`, `oci-archive:PATH[:IMAGE]`.
    pub fn parse(text: &str) -> Result<Self, ImageRefError> {
        if let Some(rest) = text.strip_prefix("docker://") {
            return ImageRef::docker(DockerReference::parse_normalized(rest)?);
        }
        if let Some(rest) = text.strip_prefix("dir:") {
            return ImageRef::dir(Path::new(rest));
        }
        for transport in ["oci", "oci-archive"] {
            if let Some(rest) = text
                .strip_prefix(transport)
                .and_then(|r| r.strip_prefix(':'))
            {
                // `PATH:IMAGE`: the image name is not part of the identity.
                let path = rest.split_once(':').map_or(rest, |(path, _)| path);
                return ImageRef::oci(transport, Path::new(path));
            }
        }
        Err(ImageRefError::UnknownForm(text.to_string()))
    }

    /// The transport whose scopes apply.
    pub fn transport(&self) -> &str {
        &self.transport
    }
    /// `PolicyConfigurationIdentity`: the most specific scope key.
    pub fn identity(&self) -> &str {
        &self.identity
    }
    /// `PolicyConfigurationNamespaces`: the further keys, most specific first.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }
    /// The docker reference signatures are matched against, if the image has one.
    pub fn docker_reference(&self) -> Option<&DockerReference> {
        self.docker_reference.as_ref()
    }
    /// The local transport and path when the image was named with `--reference`.
    pub fn source(&self) -> Option<(&str, &str)> {
        self.source.as_ref().map(|(t, p)| (t.as_str(), p.as_str()))
    }
}

fn absolute_clean(transport: &str, path: &Path) -> Result<String, ImageRefError> {
    let text = path.to_string_lossy();
    if !path.is_absolute() {
        return Err(ImageRefError::RelativePath {
            transport: transport.to_string(),
            path: text.into_owned(),
        });
    }
    Ok(clean_path(&text))
}

/// containers/image `DockerReferenceNamespaces`.
pub fn docker_namespaces(reference: &DockerReference) -> Vec<String> {
    let mut out = Vec::new();
    let mut name = reference.name();
    loop {
        out.push(name.clone());
        match name.rfind('/') {
            Some(slash) => name.truncate(slash),
            None => break,
        }
    }
    // `name` is now the host[:port]; wildcards use the host without port.
    if let Some(colon) = name.find(':') {
        name.truncate(colon);
    }
    let mut rest = name.as_str();
    while let Some(dot) = rest.find('.') {
        rest = &rest[dot + 1..];
        out.push(format!("*.{rest}"));
    }
    out
}

/// dir transport: parent directories of the path, excluding `/`.
fn dir_namespaces(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = path;
    while let Some(slash) = current.rfind('/') {
        if slash == 0 {
            break;
        }
        current = &current[..slash];
        out.push(current.to_string());
    }
    out
}

/// oci transport: the path itself and each parent, excluding `/`.
fn oci_namespaces(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = path;
    while let Some(slash) = current.rfind('/') {
        if current == "/" {
            break;
        }
        out.push(current.to_string());
        current = &current[..slash];
    }
    out
}
