//! `containers-storage:` references, in skopeo's syntax (containers/image `storage` transport):
//!
//! ```text
//! containers-storage:[[DRIVER@]GRAPHROOT[+RUNROOT]]NAME[:TAG|@sha256:HEX]
//! containers-storage:[[DRIVER@]GRAPHROOT[+RUNROOT]]IMAGE-ID
//! ```
//!
//! The bracketed store specifier is optional; what it leaves out comes from storage.conf(5)
//! (see [`super::conf`]). NAME is a docker reference, normalized as podman stores it
//! (`busybox` → `docker.io/library/busybox`, a missing tag → `:latest`); IMAGE-ID is the 64
//! lowercase hex digits containers-storage names an image by (its config digest).

use std::fmt;
use std::path::PathBuf;

use crate::digest::BlobDigest;
use crate::error::OciError;

/// The transport prefix.
pub const PREFIX: &str = "containers-storage:";
/// Longest docker reference accepted (distribution's limit on a repository name is 255).
const MAX_NAME_LEN: usize = 512;

/// Which image of the store a reference names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSpec {
    /// A normalized repository (`registry.example/app`) with a tag, or a manifest digest.
    Named {
        /// The normalized repository name.
        repository: String,
        /// The tag or digest within it.
        selector: NameSelector,
    },
    /// The image with this ID (64 lowercase hex digits).
    Id(String),
}

/// The tag or digest of a named image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameSelector {
    /// A tag.
    Tag(String),
    /// A manifest digest.
    Digest(BlobDigest),
}

/// A parsed `containers-storage:` reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageRef {
    /// `overlay` or `vfs`; `None`: from storage.conf.
    pub driver: Option<String>,
    /// GRAPHROOT from the reference's store specifier; `None`: from storage.conf.
    pub graph_root: Option<PathBuf>,
    /// RUNROOT from the reference's store specifier; `None`: from storage.conf.
    pub run_root: Option<PathBuf>,
    /// Which image in the store.
    pub image: ImageSpec,
}

impl ImageSpec {
    /// The name as podman lists it (`repo:tag`, `repo@sha256:…`), or the ID.
    pub fn name(&self) -> String {
        match self {
            ImageSpec::Named {
                repository,
                selector: NameSelector::Tag(tag),
            } => format!("{repository}:{tag}"),
            ImageSpec::Named {
                repository,
                selector: NameSelector::Digest(digest),
            } => format!("{repository}@{digest}"),
            ImageSpec::Id(id) => id.clone(),
        }
    }
}

impl StorageRef {
    /// Parse a reference with or without the `containers-storage:` prefix.
    pub fn parse(reference: &str) -> Result<Self, OciError> {
        let bad = |reason: String| OciError::Reference {
            reference: reference.chars().take(MAX_NAME_LEN).collect(),
            reason,
        };
        let rest = reference.strip_prefix(PREFIX).unwrap_or(reference);
        let (mut driver, mut graph_root, mut run_root) = (None, None, None);
        let name = if let Some(spec) = rest.strip_prefix('[') {
            let (spec, name) = spec
                .split_once(']')
                .ok_or_else(|| bad("a store specifier \"[\" without \"]\"".into()))?;
            let mut spec = spec;
            if let Some((d, r)) = spec.split_once('@') {
                if d.is_empty() || !d.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(bad(format!("driver name {d:?}")));
                }
                driver = Some(d.to_string());
                spec = r;
            }
            if let Some((g, r)) = spec.split_once('+') {
                run_root = Some(absolute(r).map_err(&bad)?);
                spec = g;
            }
            if !spec.is_empty() {
                graph_root = Some(absolute(spec).map_err(&bad)?);
            }
            name
        } else {
            rest
        };
        let image = parse_image_spec(name).map_err(bad)?;
        Ok(StorageRef {
            driver,
            graph_root,
            run_root,
            image,
        })
    }
}

impl fmt::Display for StorageRef {
    /// The reference with every part of the store specifier that is known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        if self.driver.is_some() || self.graph_root.is_some() || self.run_root.is_some() {
            f.write_str("[")?;
            if let Some(d) = &self.driver {
                write!(f, "{d}@")?;
            }
            if let Some(g) = &self.graph_root {
                write!(f, "{}", g.display())?;
            }
            if let Some(r) = &self.run_root {
                write!(f, "+{}", r.display())?;
            }
            f.write_str("]")?;
        }
        f.write_str(&self.image.name())
    }
}

fn absolute(path: &str) -> Result<PathBuf, String> {
    if !path.starts_with('/') || path.contains('\0') {
        return Err(format!("store path {path:?} is not absolute"));
    }
    Ok(PathBuf::from(path))
}

/// Whether `text` is an image ID: 64 lowercase hex digits.
pub fn is_image_id(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn parse_image_spec(name: &str) -> Result<ImageSpec, String> {
    if name.is_empty() {
        return Err("no image name or ID".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("image name longer than {MAX_NAME_LEN} bytes"));
    }
    if is_image_id(name) {
        return Ok(ImageSpec::Id(name.to_string()));
    }
    let (named, selector) = if let Some((named, digest)) = name.split_once('@') {
        let digest = BlobDigest::parse(digest).map_err(|e| e.to_string())?;
        (named, NameSelector::Digest(digest))
    } else {
        match name.rsplit_once(':') {
            Some((named, tag)) if !tag.contains('/') => {
                validate_tag(tag)?;
                (named, NameSelector::Tag(tag.to_string()))
            }
            _ => (name, NameSelector::Tag("latest".into())),
        }
    };
    Ok(ImageSpec::Named {
        repository: normalize_repository(named)?,
        selector,
    })
}

fn validate_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} is not [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}"
        ))
    }
}

/// docker's normalization: a first component without `.` or `:` that is not `localhost` is a
/// path on `docker.io`, and a single docker.io component is under `library/`.
pub fn normalize_repository(name: &str) -> Result<String, String> {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest.to_string())
        }
        _ => ("docker.io", name.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    let path = if domain == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    let domain_ok = domain.bytes().all(|b| {
        b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':' || b == b'[' || b == b']'
    });
    let path_ok = path.split('/').all(|component| {
        !component.is_empty()
            && component.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_' || b == b'-'
            })
            && component
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    if domain.is_empty() || !domain_ok || !path_ok {
        return Err(format!(
            "{name:?} is not a docker reference (lowercase path components of [a-z0-9._-])"
        ));
    }
    Ok(format!("{domain}/{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_skopeo_syntax() {
        let r = StorageRef::parse("containers-storage:busybox").unwrap();
        assert_eq!(r.image.name(), "docker.io/library/busybox:latest");
        assert_eq!((r.driver, r.graph_root, r.run_root), (None, None, None));
        let r = StorageRef::parse("containers-storage:[vfs@/var/g+/run/r]registry.example/app:1")
            .unwrap();
        assert_eq!(r.driver.as_deref(), Some("vfs"));
        assert_eq!(r.graph_root, Some(PathBuf::from("/var/g")));
        assert_eq!(r.run_root, Some(PathBuf::from("/run/r")));
        assert_eq!(r.image.name(), "registry.example/app:1");
        assert_eq!(
            r.to_string(),
            "containers-storage:[vfs@/var/g+/run/r]registry.example/app:1"
        );
        let r = StorageRef::parse("[/g]localhost:5000/a/b").unwrap();
        assert_eq!(r.image.name(), "localhost:5000/a/b:latest");
        let id = "a".repeat(64);
        assert_eq!(
            StorageRef::parse(&id).unwrap().image,
            ImageSpec::Id(id.clone())
        );
        let d = BlobDigest::of(b"m");
        let r = StorageRef::parse(&format!("quay.io/x/y@{d}")).unwrap();
        assert_eq!(r.image.name(), format!("quay.io/x/y@{d}"));
        for bad in [
            "",
            "[/g",
            "[rel]x",
            "[bad-driver@/g]x",
            "Upper/case",
            "x:",
            "x@sha256:12",
            "a//b",
        ] {
            assert!(StorageRef::parse(bad).is_err(), "{bad:?}");
        }
    }
}
