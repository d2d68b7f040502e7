//! `docker://` references: `docker://[HOST[:PORT]/]NAME[:TAG][@sha256:HEX]`.
//!
//! The grammar is distribution's `reference` package, as containers/image applies it:
//!
//! | part | rule |
//! |---|---|
//! | host | the first `/`-separated component when it contains `.` or `:` or is `localhost`; otherwise `docker.io` (and a one-component name gets `library/`) |
//! | name | components of `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`, separated by `/`; at most 255 characters with the host |
//! | tag | `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; `latest` when neither tag nor digest is given |
//! | digest | `sha256:<64 lowercase hex>` (see [`BlobDigest`]) |
//!
//! With both a tag and a digest the digest decides what is fetched (the tag is kept for the
//! docker reference a policy sees), as in containers/image.

use std::fmt;

use crate::digest::BlobDigest;
use crate::error::OciError;

/// The transport prefix of a registry reference.
pub const DOCKER_PREFIX: &str = "docker://";
/// Whether `reference` names a registry image (`docker://…`).
pub fn is_docker(reference: &str) -> bool {
    reference.starts_with(DOCKER_PREFIX)
}

/// The host an unqualified name lives on.
pub const DOCKER_HUB: &str = "docker.io";
/// The API endpoint of [`DOCKER_HUB`].
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// Longest `host/name` accepted (distribution's `NameTotalLengthMax`).
pub const MAX_NAME_LEN: usize = 255;
/// Longest tag (distribution's tag grammar).
pub const MAX_TAG_LEN: usize = 128;

/// A parsed `docker://` reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerRef {
    /// `HOST[:PORT]` as written (or [`DOCKER_HUB`]).
    pub host: String,
    /// The repository path inside the registry (`library/busybox`).
    pub repository: String,
    /// The tag, when the reference has one.
    pub tag: Option<String>,
    /// The manifest digest, when the reference has one.
    pub digest: Option<BlobDigest>,
}

impl DockerRef {
    /// Parse `docker://…` (the prefix is required).
    pub fn parse(text: &str) -> Result<Self, OciError> {
        let bad = |reason: String| OciError::Reference {
            reference: text.chars().take(300).collect(),
            reason,
        };
        let rest = text
            .strip_prefix(DOCKER_PREFIX)
            .ok_or_else(|| bad(format!("does not start with {DOCKER_PREFIX}")))?;
        Self::parse_name(rest).map_err(bad)
    }

    /// Parse a reference without the transport (`HOST/NAME:TAG`, as in a policy or
    /// registries.conf).
    pub fn parse_name(rest: &str) -> Result<Self, String> {
        let (rest, digest) = match rest.split_once('@') {
            Some((name, digest)) => (
                name,
                Some(BlobDigest::parse(digest).map_err(|e| e.to_string())?),
            ),
            None => (rest, None),
        };
        // A tag follows the last ':' after the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if let Some(tag) = &tag {
            check_tag(tag)?;
        }
        let (host, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ if !name.contains('/') => (DOCKER_HUB.to_string(), format!("library/{name}")),
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        check_host(&host)?;
        check_repository(&repository)?;
        if host.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(format!("name longer than {MAX_NAME_LEN} characters"));
        }
        Ok(DockerRef {
            host,
            repository,
            tag,
            digest,
        })
    }

    /// What the manifest endpoint is asked for: the digest if given, else the tag (`latest`).
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }

    /// `HOST/NAME` (the repository a signature's identity names).
    pub fn name(&self) -> String {
        format!("{}/{}", self.host, self.repository)
    }

    /// `HOST/NAME:TAG`, `HOST/NAME@DIGEST` or `HOST/NAME:TAG@DIGEST` (`latest` when neither
    /// was given): the docker reference policies match.
    pub fn docker_reference(&self) -> String {
        let mut out = self.name();
        match (&self.tag, &self.digest) {
            (None, None) => out.push_str(":latest"),
            (tag, digest) => {
                if let Some(t) = tag {
                    out.push(':');
                    out.push_str(t);
                }
                if let Some(d) = digest {
                    out.push('@');
                    out.push_str(&d.to_string());
                }
            }
        }
        out
    }

    /// The host HTTP requests go to (Docker Hub's API lives elsewhere than its name).
    pub fn api_host(&self) -> &str {
        if self.host == DOCKER_HUB {
            DOCKER_HUB_API_HOST
        } else {
            &self.host
        }
    }

    /// The same repository, at another tag.
    pub fn with_tag(&self, tag: &str) -> DockerRef {
        DockerRef {
            tag: Some(tag.into()),
            digest: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for DockerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{DOCKER_PREFIX}{}", self.docker_reference())
    }
}

fn check_tag(tag: &str) -> Result<(), String> {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !first_ok
        || tag.len() > MAX_TAG_LEN
        || !bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(format!(
            "tag {tag:?} is not [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
        ));
    }
    Ok(())
}

fn check_host(host: &str) -> Result<(), String> {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    let name_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok()
    });
    if !name_ok || !port_ok {
        return Err(format!("registry host {host:?} is not HOST[:PORT]"));
    }
    Ok(())
}

fn check_repository(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty repository name".into());
    }
    for component in path.split('/') {
        if !component_ok(component) {
            return Err(format!(
                "repository component {component:?} is not lowercase letters and digits joined by '.', '_', '__' or '-'"
            ));
        }
    }
    Ok(())
}

fn component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__' or one or more '-'.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_docker_transport_references_are_registry_images() {
        assert!(is_docker("docker://registry.example/app:1"));
        assert!(!is_docker("oci:/images/app:1"));
        assert!(!is_docker("dir:/images/docker://x"));
    }

    #[test]
    fn parses_hosts_ports_tags_digests() {
        let r = DockerRef::parse("docker://127.0.0.1:5000/a/b:v1").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "a/b", Some("v1"))
        );
        assert_eq!(r.manifest_reference(), "v1");
        let r = DockerRef::parse("docker://busybox").unwrap();
        assert_eq!(r.docker_reference(), "docker.io/library/busybox:latest");
        assert_eq!(r.api_host(), DOCKER_HUB_API_HOST);
        let d = BlobDigest::of(b"x");
        let r = DockerRef::parse(&format!("docker://localhost/x:t@{d}")).unwrap();
        assert_eq!(r.manifest_reference(), d.to_string());
        assert_eq!(r.docker_reference(), format!("localhost/x:t@{d}"));
        let r = DockerRef::parse("docker://localhost:5000/x").unwrap();
        assert_eq!((r.host.as_str(), r.tag), ("localhost:5000", None));
        for bad in [
            "docker://",
            "oci:/x",
            "docker://h.io/X",
            "docker://h.io/x:",
            "docker://h.io/x:-t",
            "docker://h.io/x@sha256:zz",
            "docker://h.io:99999/x",
            "docker://h.io/a--b_.c",
            "docker://h.io//x",
        ] {
            assert!(DockerRef::parse(bad).is_err(), "{bad}");
        }
        assert!(DockerRef::parse("docker://h.io/a--b__c.d").is_ok());
    }
}
