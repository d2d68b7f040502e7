//! registries.conf(5): where a `docker://` reference is really pulled from.
//!
//! Read (version 2 format; other tables such as `[aliases]` and keys such as
//! `unqualified-search-registries` are ignored):
//!
//! | key | meaning here |
//! |---|---|
//! | `[[registry]] prefix` | which references the entry applies to: `host[/path]` matching at a `/`, `:` or `@` boundary, or `*.domain` matching hosts; the longest matching prefix wins (default: `location`) |
//! | `location` | what the prefix is rewritten to (`prefix` → `location`, the rest kept) |
//! | `insecure` | HTTPS without certificate checks, else plain HTTP (as `--tls-verify=false`) |
//! | `blocked` | refuse every pull and push of matching references |
//! | `mirror-by-digest-only` | mirrors only for references by digest |
//! | `[[registry.mirror]] location`, `insecure`, `pull-from-mirror` | tried in order before `location`; `pull-from-mirror` = `all` (default), `digest-only` or `tag-only` |
//!
//! Files: `--registries-conf FILE` alone when given; else `$CONTAINERS_REGISTRIES_CONF`, else
//! `~/.config/containers/registries.conf` if it exists, else `/etc/containers/registries.conf`;
//! then every `*.conf` of the matching `registries.conf.d/` directory in name order, whose
//! `[[registry]]` entries replace those of the same prefix. A missing file is an empty
//! configuration; a file that cannot be parsed is an error (fail closed: a typo must not
//! unblock a blocked registry).
//!
//! A mirror is only a source of bytes: the policy still sees the reference as written, and a
//! signature must name that reference's manifest digest, so a mirror cannot substitute an image.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::RegistryError;
use super::reference::DockerRef;

/// Largest registries.conf read (Debian's, with all its comments, is 4 KiB).
pub const MAX_CONF_SIZE: u64 = 1 << 20;
/// Most drop-in files read from a registries.conf.d directory.
pub const MAX_DROP_INS: usize = 256;

#[derive(Deserialize, Default)]
struct ConfFile {
    #[serde(default)]
    registry: Vec<Entry>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "kebab-case")]
struct Entry {
    prefix: Option<String>,
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<Mirror>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "kebab-case")]
struct Mirror {
    location: String,
    #[serde(default)]
    insecure: bool,
    pull_from_mirror: Option<String>,
}

/// Where one pull attempt goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The reference rewritten for this endpoint (same tag and digest).
    pub reference: DockerRef,
    /// Certificate checks off (and plain HTTP allowed).
    pub insecure: bool,
    /// Whether this endpoint is a mirror (not the registry the reference names).
    pub mirror: bool,
}

/// A parsed registries.conf (with its drop-ins).
#[derive(Clone, Debug, Default)]
pub struct RegistriesConf {
    entries: Vec<Entry>,
    /// The files read, for messages.
    pub files: Vec<PathBuf>,
}

impl RegistriesConf {
    /// The configuration the module docs describe (`explicit`: `--registries-conf`).
    pub fn load(explicit: Option<&Path>) -> Result<Self, RegistryError> {
        let main = match explicit {
            Some(path) => path.to_path_buf(),
            None => match std::env::var_os("CONTAINERS_REGISTRIES_CONF") {
                Some(path) => PathBuf::from(path),
                None => {
                    let user = std::env::var_os("HOME")
                        .map(|h| Path::new(&h).join(".config/containers/registries.conf"));
                    match user {
                        Some(user) if user.exists() => user,
                        _ => PathBuf::from("/etc/containers/registries.conf"),
                    }
                }
            },
        };
        let mut conf = RegistriesConf::default();
        if let Some(text) = read_conf(&main)? {
            conf.merge(parse(&text, &main)?);
            conf.files.push(main.clone());
        }
        if explicit.is_none() {
            let dir = main.with_extension("conf.d");
            if let Ok(read) = std::fs::read_dir(&dir) {
                let mut drop_ins: Vec<PathBuf> = read
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                    .take(MAX_DROP_INS)
                    .collect();
                drop_ins.sort();
                for path in drop_ins {
                    if let Some(text) = read_conf(&path)? {
                        conf.merge(parse(&text, &path)?);
                        conf.files.push(path);
                    }
                }
            }
        }
        Ok(conf)
    }

    /// Parse one file's text (`path` for messages).
    pub fn parse_text(text: &str, path: &Path) -> Result<Self, RegistryError> {
        let mut conf = RegistriesConf::default();
        conf.merge(parse(text, path)?);
        conf.files.push(path.to_path_buf());
        Ok(conf)
    }

    fn merge(&mut self, file: ConfFile) {
        for entry in file.registry {
            let key = entry_prefix(&entry);
            self.entries.retain(|e| entry_prefix(e) != key);
            self.entries.push(entry);
        }
    }

    fn matching(&self, reference: &DockerRef) -> Option<&Entry> {
        let name = reference.name();
        self.entries
            .iter()
            .filter(|e| prefix_matches(&entry_prefix(e), &name, &reference.host))
            .max_by_key(|e| entry_prefix(e).len())
    }

    /// Whether `reference` is blocked (also for pushes).
    pub fn check_blocked(&self, reference: &DockerRef) -> Result<(), RegistryError> {
        match self.matching(reference) {
            Some(entry) if entry.blocked => Err(RegistryError::Blocked {
                reference: reference.docker_reference(),
                path: self.files.last().cloned().unwrap_or_default(),
            }),
            _ => Ok(()),
        }
    }

    /// Where to pull `reference` from, in order: the mirrors that apply, then the location.
    pub fn pull_endpoints(&self, reference: &DockerRef) -> Result<Vec<Endpoint>, RegistryError> {
        self.check_blocked(reference)?;
        let Some(entry) = self.matching(reference) else {
            return Ok(vec![Endpoint {
                reference: reference.clone(),
                insecure: false,
                mirror: false,
            }]);
        };
        let prefix = entry_prefix(entry);
        let by_digest = reference.digest.is_some();
        let mut endpoints = Vec::new();
        for mirror in &entry.mirror {
            let mode =
                mirror
                    .pull_from_mirror
                    .as_deref()
                    .unwrap_or(if entry.mirror_by_digest_only {
                        "digest-only"
                    } else {
                        "all"
                    });
            let applies = match mode {
                "all" => !entry.mirror_by_digest_only || by_digest,
                "digest-only" => by_digest,
                "tag-only" => !by_digest,
                other => {
                    return Err(RegistryError::Config {
                        path: self.files.last().cloned().unwrap_or_default(),
                        reason: format!(
                            "pull-from-mirror = {other:?} (expected all, digest-only or tag-only)"
                        ),
                    })
                }
            };
            if applies {
                endpoints.push(Endpoint {
                    reference: self.rewrite(reference, &prefix, &mirror.location)?,
                    insecure: mirror.insecure,
                    mirror: true,
                });
            }
        }
        let location = entry.location.clone().unwrap_or_default();
        endpoints.push(Endpoint {
            reference: if location.is_empty() || prefix.starts_with("*.") {
                reference.clone()
            } else {
                self.rewrite(reference, &prefix, &location)?
            },
            insecure: entry.insecure,
            mirror: false,
        });
        Ok(endpoints)
    }

    /// Where a push of `reference` goes (the location, never a mirror).
    pub fn push_endpoint(&self, reference: &DockerRef) -> Result<Endpoint, RegistryError> {
        let mut endpoints = self.pull_endpoints(reference)?;
        Ok(endpoints.pop().unwrap_or(Endpoint {
            reference: reference.clone(),
            insecure: false,
            mirror: false,
        }))
    }

    fn rewrite(
        &self,
        reference: &DockerRef,
        prefix: &str,
        location: &str,
    ) -> Result<DockerRef, RegistryError> {
        let name = reference.name();
        let rest = if prefix.starts_with("*.") {
            name.split_once('/')
                .map(|(_, r)| format!("/{r}"))
                .unwrap_or_default()
        } else {
            name[prefix.len().min(name.len())..].to_string()
        };
        let mut text = format!("{location}{rest}");
        if let Some(tag) = &reference.tag {
            text.push(':');
            text.push_str(tag);
        }
        if let Some(digest) = &reference.digest {
            text.push('@');
            text.push_str(&digest.to_string());
        }
        DockerRef::parse_name(&text).map_err(|reason| RegistryError::Config {
            path: self.files.last().cloned().unwrap_or_default(),
            reason: format!("{prefix:?} rewritten to {location:?} gives {text:?}: {reason}"),
        })
    }
}

fn entry_prefix(entry: &Entry) -> String {
    entry
        .prefix
        .clone()
        .or_else(|| entry.location.clone())
        .unwrap_or_default()
}

/// containers/image's prefix match: at a boundary of the name, or `*.domain` on the host.
fn prefix_matches(prefix: &str, name: &str, host: &str) -> bool {
    if prefix.is_empty() {
        return false;
    }
    if let Some(domain) = prefix.strip_prefix('*') {
        return host.ends_with(domain);
    }
    name == prefix
        || (name.starts_with(prefix)
            && matches!(name.as_bytes().get(prefix.len()), Some(b'/' | b':' | b'@')))
}

fn read_conf(path: &Path) -> Result<Option<String>, RegistryError> {
    let bytes = match read_config_file(path, "registries.conf", MAX_CONF_SIZE)? {
        Some(bytes) => bytes,
        None => return Ok(None),
    };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| RegistryError::Config {
            path: path.into(),
            reason: "not UTF-8".into(),
        })
}

fn parse(text: &str, path: &Path) -> Result<ConfFile, RegistryError> {
    toml::from_str(text).map_err(|e| RegistryError::Config {
        path: path.into(),
        reason: format!("invalid registries.conf: {e}"),
    })
}

/// The bytes of the configuration file `path` (`what`: registries.conf, credentials file),
/// `None` when it does not exist. Its type is checked before any blocking open (a FIFO or a
/// device is refused, not waited on) and it is read under `limit` bytes.
pub(crate) fn read_config_file(
    path: &Path,
    what: &'static str,
    limit: u64,
) -> Result<Option<Vec<u8>>, RegistryError> {
    use cfsgate_sys::file::{read, Follow, SizeLimit};
    match read(path, Follow::Symlinks, SizeLimit::new(what, limit)) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(RegistryError::Config {
            path: path.into(),
            reason: e.reason(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> RegistriesConf {
        RegistriesConf::parse_text(text, Path::new("test.conf")).unwrap()
    }

    fn hosts(c: &RegistriesConf, r: &str) -> Vec<(String, bool)> {
        c.pull_endpoints(&DockerRef::parse(r).unwrap())
            .unwrap()
            .into_iter()
            .map(|e| (e.reference.name(), e.mirror))
            .collect()
    }

    #[test]
    fn prefixes_rewrite_and_mirrors_apply_by_mode() {
        let c = conf(
            r#"
unqualified-search-registries = ["docker.io"]
[aliases]
"x" = "docker.io/library/x"
[[registry]]
prefix = "example.com/foo"
location = "internal.example/bar"
[[registry.mirror]]
location = "mirror.local/m"
[[registry.mirror]]
location = "digests.local/d"
pull-from-mirror = "digest-only"
[[registry]]
location = "blocked.example"
blocked = true
"#,
        );
        assert_eq!(
            hosts(&c, "docker://example.com/foo/app:v1"),
            vec![
                ("mirror.local/m/app".to_string(), true),
                ("internal.example/bar/app".to_string(), false)
            ]
        );
        let d = cfsgate_digest();
        assert_eq!(
            hosts(&c, &format!("docker://example.com/foo/app@{d}")).len(),
            3
        );
        assert_eq!(
            hosts(&c, "docker://example.com/foobar/app:v1"),
            vec![("example.com/foobar/app".to_string(), false)]
        );
        let blocked = c.pull_endpoints(&DockerRef::parse("docker://blocked.example/x").unwrap());
        assert!(matches!(blocked, Err(RegistryError::Blocked { .. })));
        assert!(RegistriesConf::parse_text("[[registry]\n", Path::new("bad.conf")).is_err());
    }

    fn cfsgate_digest() -> crate::BlobDigest {
        crate::BlobDigest::of(b"x")
    }
}
