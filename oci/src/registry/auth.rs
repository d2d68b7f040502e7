//! Registry credentials: `--creds`, `--authfile`, and the files containers-auth.json(5) names.
//!
//! Without `--creds` or `--authfile`, the first of these files that has an entry for the
//! reference is used (containers/image's order):
//!
//! | # | file |
//! |---|---|
//! | 1 | `$REGISTRY_AUTH_FILE` |
//! | 2 | `$XDG_RUNTIME_DIR/containers/auth.json` |
//! | 3 | `$XDG_CONFIG_HOME/containers/auth.json` (default `~/.config/containers/auth.json`) |
//! | 4 | `~/.docker/config.json` |
//!
//! A file is `{"auths": {"KEY": {"auth": "<base64 of user:password>"}}}`. KEY is a host, or a
//! host and repository path prefix (`quay.io/ns`); the most specific KEY that matches the
//! reference wins. Docker's keys `https://index.docker.io/v1/` and `https://host/v2/` are read
//! as `docker.io` and `host`. An entry without `auth` (credential helpers, identity tokens) is
//! skipped. A file that exists but cannot be read or parsed is an error, not skipped: a typo in
//! credentials should not silently turn into an anonymous pull.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::Deserialize;

use super::config::read_config_file;
use super::error::RegistryError;
use super::reference::{DockerRef, DOCKER_HUB};

/// Largest credentials file read (real ones are a few KiB).
pub const MAX_AUTH_FILE_SIZE: u64 = 1 << 20;

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password (or a token the registry takes as one).
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password (error messages and logs include Debug output).
        write!(f, "Credentials({:?}, <redacted>)", self.username)
    }
}

impl Credentials {
    /// Parse `USER:PASSWORD` (as `--creds` takes it; the password may contain `:`).
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(Credentials {
                username: user.into(),
                password: password.into(),
            }),
            _ => Err("expected USER:PASSWORD".into()),
        }
    }

    /// The `Authorization: Basic …` value.
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            BASE64.encode(format!("{}:{}", self.username, self.password))
        )
    }
}

/// Where credentials come from.
#[derive(Clone, Debug, Default)]
pub enum AuthSource {
    /// containers-auth.json(5)'s lookup order (see the module docs).
    #[default]
    Default,
    /// Only this file (`--authfile`).
    File(PathBuf),
    /// These credentials for every registry (`--creds`).
    Explicit(Credentials),
    /// None: anonymous access only.
    Anonymous,
}

#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<String>,
}

/// The files searched by [`AuthSource::Default`], in order.
pub fn default_auth_files() -> Vec<PathBuf> {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let home = env("HOME").map(PathBuf::from);
    let mut files = Vec::new();
    if let Some(path) = env("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(path));
    }
    if let Some(dir) = env("XDG_RUNTIME_DIR") {
        files.push(Path::new(&dir).join("containers/auth.json"));
    }
    match (env("XDG_CONFIG_HOME"), &home) {
        (Some(dir), _) => files.push(Path::new(&dir).join("containers/auth.json")),
        (None, Some(home)) => files.push(home.join(".config/containers/auth.json")),
        (None, None) => {}
    }
    if let Some(home) = &home {
        files.push(home.join(".docker/config.json"));
    }
    files
}

/// The credentials `source` gives for `reference`, if any.
pub fn credentials_for(
    source: &AuthSource,
    reference: &DockerRef,
) -> Result<Option<Credentials>, RegistryError> {
    match source {
        AuthSource::Anonymous => Ok(None),
        AuthSource::Explicit(creds) => Ok(Some(creds.clone())),
        AuthSource::File(path) => match read_auth_file(path)? {
            Some(file) => lookup(&file, reference, path),
            None => Err(RegistryError::Config {
                path: path.clone(),
                reason: "no such credentials file".into(),
            }),
        },
        AuthSource::Default => {
            for path in default_auth_files() {
                if let Some(file) = read_auth_file(&path)? {
                    if let Some(creds) = lookup(&file, reference, &path)? {
                        return Ok(Some(creds));
                    }
                }
            }
            Ok(None)
        }
    }
}

/// `None` when the file does not exist.
fn read_auth_file(path: &Path) -> Result<Option<AuthFile>, RegistryError> {
    let bytes = match read_config_file(path, "credentials file", MAX_AUTH_FILE_SIZE)? {
        Some(bytes) => bytes,
        None => return Ok(None),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| RegistryError::Config {
            path: path.into(),
            reason: format!("invalid credentials JSON: {e}"),
        })
}

/// A key of `auths` as a `host[/path]` prefix.
fn normalize_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let key = key
        .strip_suffix("/v1/")
        .or_else(|| key.strip_suffix("/v2/"))
        .or_else(|| key.strip_suffix('/'))
        .unwrap_or(key);
    match key {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        other => other.to_string(),
    }
}

fn lookup(
    file: &AuthFile,
    reference: &DockerRef,
    path: &Path,
) -> Result<Option<Credentials>, RegistryError> {
    let name = reference.name();
    let mut best: Option<(usize, &AuthEntry)> = None;
    for (key, entry) in &file.auths {
        let key = normalize_key(key);
        let matches = name == key
            || (name.starts_with(&key) && name.as_bytes().get(key.len()) == Some(&b'/'));
        if matches && entry.auth.is_some() && best.is_none_or(|(len, _)| key.len() > len) {
            best = Some((key.len(), entry));
        }
    }
    let Some((_, entry)) = best else {
        return Ok(None);
    };
    let bad = |reason: &str| RegistryError::Config {
        path: path.into(),
        reason: format!("the entry for {name}: {reason}"),
    };
    let encoded = entry.auth.as_deref().unwrap_or_default();
    let decoded = BASE64
        .decode(encoded.trim())
        .map_err(|_| bad("auth is not base64"))?;
    let text = String::from_utf8(decoded).map_err(|_| bad("auth is not UTF-8"))?;
    Credentials::parse(&text)
        .map(Some)
        .map_err(|_| bad("auth is not base64 of USER:PASSWORD"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_entry_wins_and_docker_keys_normalize() {
        let auth = |u: &str| BASE64.encode(format!("{u}:pw"));
        let text = serde_json::json!({"auths": {
            "h.io": {"auth": auth("host")},
            "h.io/ns": {"auth": auth("ns")},
            "h.io/n": {"auth": auth("wrong-prefix")},
            "https://index.docker.io/v1/": {"auth": auth("hub")},
        }})
        .to_string();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        std::fs::write(&path, text).unwrap();
        let source = AuthSource::File(path);
        let user = |r: &str| {
            credentials_for(&source, &DockerRef::parse(r).unwrap())
                .unwrap()
                .map(|c| c.username)
        };
        assert_eq!(user("docker://h.io/ns/x").as_deref(), Some("ns"));
        assert_eq!(user("docker://h.io/nsx/y").as_deref(), Some("host"));
        assert_eq!(user("docker://busybox").as_deref(), Some("hub"));
        assert_eq!(user("docker://other.io/x"), None);
        assert!(format!("{:?}", Credentials::parse("u:p:q").unwrap()).contains("redacted"));
    }
}
