//! Docker image references with the normalisation of `docker/reference`
//! (distribution's `ParseNormalizedNamed`), which containers/image applies to every name
//! a policy compares.
//!
//! Grammar (from distribution/reference):
//!
//! | part | form |
//! |---|---|
//! | reference | name \[ `:` tag \] \[ `@` digest \] |
//! | name | \[ domain `/` \] path-component ( `/` path-component )*, at most 255 characters |
//! | domain | domain-component ( `.` domain-component )* \[ `:` port \], or `[ipv6]` \[ `:` port \] |
//! | domain-component | `[a-zA-Z0-9]` or `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]` |
//! | path-component | `[a-z0-9]+` joined by one of `.`, `_`, `__`, `-+` |
//! | tag | `[\w][\w.-]{0,127}` |
//! | digest | algorithm `:` hex, where sha256/sha384/sha512 need 64/96/128 lowercase hex |
//!
//! Normalisation (containers/image's `docker/reference`): the first component is a domain only
//! if it contains `.` or `:` or is `localhost` (an upper-case first component is not a host:
//! `UPPERCASE/foo` is refused as a repository name that is not lower case); otherwise the
//! domain is `docker.io`.
//! `index.docker.io` becomes `docker.io`, and a single-component docker.io path gets the
//! `library/` prefix. The repository path must be lower case. A 64-hex-digit string alone
//! is refused (it would be an image ID).

use std::fmt;

/// Longest name (domain + path) accepted, as in distribution/reference `NameTotalLengthMax`.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Longest tag accepted: 1 leading word character + at most 127 more.
pub const TAG_LENGTH_MAX: usize = 128;

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";

/// Why a string is not a docker reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid docker reference {input:?}: {reason}")]
pub struct ReferenceError {
    /// The text that was given.
    pub input: String,
    /// Which rule of the reference grammar it breaks.
    pub reason: String,
}

fn fail(input: &str, reason: impl Into<String>) -> ReferenceError {
    ReferenceError {
        input: input.to_string(),
        reason: reason.into(),
    }
}

/// A digest inside a reference: `algorithm:hex`, validated like go-digest's `Digest.Validate`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReferenceDigest {
    algorithm: String,
    hex: String,
}

impl ReferenceDigest {
    /// Parse `algorithm:hex` (sha256, sha384 or sha512, lowercase hex of the algorithm's length).
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        let (algorithm, hex) = text
            .split_once(':')
            .ok_or_else(|| fail(text, "digest lacks `algorithm:`"))?;
        let expected_len = match algorithm {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            other => {
                return Err(fail(
                    text,
                    format!("unsupported digest algorithm {other:?}"),
                ))
            }
        };
        if hex.len() != expected_len
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(fail(
                text,
                format!("{algorithm} digest must be {expected_len} lowercase hex digits"),
            ));
        }
        Ok(ReferenceDigest {
            algorithm: algorithm.to_string(),
            hex: hex.to_string(),
        })
    }
    /// The algorithm name (`"sha256"`).
    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }
    /// The digest in lowercase hex.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for ReferenceDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

/// A normalised docker reference (`reference.Named`): domain, path, optional tag and digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DockerReference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<ReferenceDigest>,
}

impl DockerReference {
    /// `ParseNormalizedNamed`: accepts short names (`busybox`, `ns/repo:tag`) and fills in
    /// the implied domain and `library/` namespace.
    pub fn parse_normalized(input: &str) -> Result<Self, ReferenceError> {
        if input.len() == 64
            && input
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(fail(input, "cannot specify 64-byte hexadecimal strings"));
        }
        let (domain, remainder) = split_docker_domain(input);
        let remote_name = remainder.split(':').next().unwrap_or_default();
        let remote_name = remote_name.split('@').next().unwrap_or_default();
        if remote_name.to_lowercase() != remote_name {
            return Err(fail(
                input,
                format!("repository name {remote_name:?} must be lowercase"),
            ));
        }
        parse_full(input, &format!("{domain}/{remainder}"))
    }

    /// `ParseNamed`: like [`Self::parse_normalized`] but the input must already be in
    /// normalised (canonical) form.
    pub fn parse_canonical(input: &str) -> Result<Self, ReferenceError> {
        let reference = Self::parse_normalized(input)?;
        if reference.to_string() != input {
            return Err(fail(
                input,
                format!("not in canonical form (would be {reference})"),
            ));
        }
        Ok(reference)
    }

    /// `domain/path`, e.g. `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }
    /// The registry host (with port, if any), after normalisation (`docker.io` by default).
    pub fn domain(&self) -> &str {
        &self.domain
    }
    /// The repository path below the domain, after normalisation (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }
    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    /// The digest, if the reference has one.
    pub fn digest(&self) -> Option<&ReferenceDigest> {
        self.digest.as_ref()
    }
    /// Neither tag nor digest (`reference.IsNameOnly`).
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }
    /// `reference.TagNameOnly`: adds the `latest` tag to a name-only reference.
    pub fn with_default_tag(mut self) -> Self {
        if self.is_name_only() {
            self.tag = Some("latest".to_string());
        }
        self
    }
    /// The same name with no tag or digest.
    pub fn name_only(&self) -> Self {
        DockerReference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }
}

impl fmt::Display for DockerReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for DockerReference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_normalized(s)
    }
}

/// distribution's `splitDockerDomain`.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, remainder) = match name.find('/') {
        // containers/image's own docker/reference (not distribution's newer rule): an upper-case
        // first component is not a host, so `UPPERCASE/foo` is a docker.io path and refused as
        // not lower case.
        Some(i) if name[..i].contains(['.', ':']) || &name[..i] == "localhost" => {
            (name[..i].to_string(), name[i + 1..].to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    let remainder = if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        format!("{OFFICIAL_REPO_PREFIX}{remainder}")
    } else {
        remainder
    };
    (domain, remainder)
}

/// Parses `domain/path[:tag][@digest]` where the domain is known to be explicit.
fn parse_full(input: &str, full: &str) -> Result<DockerReference, ReferenceError> {
    let (before_digest, digest) = match full.split_once('@') {
        Some((before, digest)) => (
            before,
            Some(ReferenceDigest::parse(digest).map_err(|e| fail(input, e.reason))?),
        ),
        None => (full, None),
    };
    let last_slash = before_digest.rfind('/').unwrap_or(0);
    let (name, tag) = match before_digest[last_slash..].rfind(':') {
        Some(colon) => {
            let colon = last_slash + colon;
            (&before_digest[..colon], Some(&before_digest[colon + 1..]))
        }
        None => (before_digest, None),
    };
    if let Some(tag) = tag {
        if !valid_tag(tag) {
            return Err(fail(input, format!("invalid tag {tag:?}")));
        }
    }
    if name.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(fail(
            input,
            format!("name longer than {NAME_TOTAL_LENGTH_MAX} characters"),
        ));
    }
    let (domain, path) = name
        .split_once('/')
        .ok_or_else(|| fail(input, "name has no path"))?;
    if !valid_domain(domain) {
        return Err(fail(input, format!("invalid domain {domain:?}")));
    }
    if path.is_empty() || !path.split('/').all(valid_path_component) {
        return Err(fail(input, format!("invalid repository path {path:?}")));
    }
    Ok(DockerReference {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: tag.map(str::to_string),
        digest,
    })
}

fn valid_tag(tag: &str) -> bool {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= TAG_LENGTH_MAX
        && is_word(bytes[0])
        && bytes[1..]
            .iter()
            .all(|&b| is_word(b) || b == b'.' || b == b'-')
}

/// `domain-component`: alphanumerics, with inner hyphens.
fn valid_domain_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `host[:port]` with host a dotted name or a bracketed IPv6 address.
pub(crate) fn valid_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((ipv6, after)) = rest.split_once(']') else {
            return false;
        };
        if ipv6.is_empty() || !ipv6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after.strip_prefix(':') {
            Some(port) => (None, Some(port)),
            None if after.is_empty() => (None, None),
            None => return false,
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    match host {
        Some(host) => host.split('.').all(valid_domain_component),
        None => true,
    }
}

/// `path-component`: `[a-z0-9]+` runs joined by `.`, `_`, `__` or one or more `-`.
pub(crate) fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}
