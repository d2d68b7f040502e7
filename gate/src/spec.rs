//! What the runtime hands the hooks, parsed: the runtime config on a precreate hook's stdin, the
//! container state (`{id, pid, bundle, …}`) on a createRuntime/poststop hook's stdin, and the
//! bundle's `config.json` that state points to. These are the hook's entry points for hostile
//! input (`fuzz/fuzz_targets/hook_json.rs` fuzzes them).
//!
//! Each document is read under [`MAX_SPEC_BYTES`]. Only the fields the gate uses are typed;
//! a precreate config is kept whole ([`RuntimeConfig::value`]) because the hook prints it back
//! with only `root` changed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::error::{GateError, Result};

/// Largest runtime config, state or bundle config accepted: real ones are a few KiB to tens of
/// KiB; a bound keeps a hostile runtime or bundle from exhausting memory.
pub const MAX_SPEC_BYTES: u64 = 16 << 20;

/// Read at most [`MAX_SPEC_BYTES`] of `what` from `reader`; more is an error.
pub fn read_bounded(reader: impl Read, what: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_SPEC_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| GateError::Invalid(format!("reading the {what}: {e}")))?;
    if bytes.len() as u64 > MAX_SPEC_BYTES {
        return Err(GateError::Invalid(format!(
            "the {what} is larger than {MAX_SPEC_BYTES} bytes"
        )));
    }
    Ok(bytes)
}

/// A precreate hook's runtime config: the whole document and its string annotations.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The config as received (printed back with `root.path` replaced).
    pub value: Value,
    /// `annotations` (string values only).
    pub annotations: BTreeMap<String, String>,
}

/// Parse a runtime config (`what` names it in errors).
pub fn parse_runtime_config(bytes: &[u8], what: &str) -> Result<RuntimeConfig> {
    let value: Value = serde_json::from_slice(bytes).map_err(|source| GateError::Json {
        what: format!("the {what} is not JSON"),
        source,
    })?;
    let annotations = value
        .get("annotations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Ok(RuntimeConfig { value, annotations })
}

impl RuntimeConfig {
    /// Point `root.path` at `rootfs` (writable: the composefs mount has an upper layer).
    pub fn set_root(&mut self, rootfs: &Path) -> Result<()> {
        let root = self
            .value
            .as_object_mut()
            .ok_or_else(|| GateError::Denied("the runtime config is not a JSON object".into()))?
            .entry("root")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        let root = root.as_object_mut().ok_or_else(|| {
            GateError::Denied("the runtime config's root is not an object".into())
        })?;
        root.insert("path".into(), Value::from(rootfs.display().to_string()));
        root.insert("readonly".into(), Value::Bool(false));
        Ok(())
    }
}

/// The container state the runtime passes to createRuntime, prestart and poststop hooks.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerState {
    /// The runtime's container id.
    #[serde(default)]
    pub id: Option<String>,
    /// The container's init process (0 or absent after it exited).
    #[serde(default)]
    pub pid: Option<i64>,
    /// The bundle directory (holds `config.json`).
    #[serde(default)]
    pub bundle: Option<PathBuf>,
}

/// Parse a container state.
pub fn parse_container_state(bytes: &[u8]) -> Result<ContainerState> {
    serde_json::from_slice(bytes).map_err(|source| GateError::Json {
        what: "the container state on stdin is not JSON".into(),
        source,
    })
}

/// What the gate reads of a bundle's `config.json`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BundleConfig {
    /// `root`.
    #[serde(default)]
    pub root: Option<BundleRoot>,
    /// `mounts`: what the runtime mounts into the container (below the root).
    #[serde(default)]
    pub mounts: Vec<BundleMount>,
}

/// `root` of a bundle config.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BundleRoot {
    /// `root.path`, relative to the bundle or absolute.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

/// One entry of a bundle config's `mounts`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BundleMount {
    /// Where in the container (absolute, inside the root).
    pub destination: PathBuf,
    /// The filesystem type, when given.
    #[serde(default, rename = "type")]
    pub fs_type: Option<String>,
    /// The source, when given.
    #[serde(default)]
    pub source: Option<String>,
}

/// Parse a bundle config (`path` names it in errors).
pub fn parse_bundle_config(bytes: &[u8], path: &Path) -> Result<BundleConfig> {
    serde_json::from_slice(bytes).map_err(|source| GateError::Json {
        what: format!("parsing {}", path.display()),
        source,
    })
}

impl ContainerState {
    /// The bundle directory, required.
    pub fn bundle_dir(&self) -> Result<&Path> {
        self.bundle
            .as_deref()
            .ok_or_else(|| GateError::Invalid("the state on stdin has no bundle".into()))
    }
}

/// The bundle's config and its resolved root (`root.path`, canonical).
pub fn read_bundle(bundle: &Path) -> Result<(BundleConfig, PathBuf)> {
    let config_path = bundle.join("config.json");
    let bytes = crate::fsutil::read_regular(&config_path, MAX_SPEC_BYTES)?;
    let config = parse_bundle_config(&bytes, &config_path)?;
    let root = config
        .root
        .as_ref()
        .and_then(|r| r.path.as_ref())
        .ok_or_else(|| GateError::Invalid(format!("{} has no root.path", config_path.display())))?;
    let root = bundle.join(root);
    let root = std::fs::canonicalize(&root).map_err(|e| GateError::io("resolving", &root, e))?;
    Ok((config, root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_fields_are_typed_and_others_ignored() {
        let s = parse_container_state(
            br#"{"ociVersion":"1.0.2","id":"c1","status":"creating","pid":42,"bundle":"/b","annotations":{}}"#,
        )
        .unwrap();
        assert_eq!(s.id.as_deref(), Some("c1"));
        assert_eq!(s.pid, Some(42));
        assert_eq!(s.bundle_dir().unwrap(), Path::new("/b"));
        assert!(parse_container_state(br#"{"pid":"x"}"#).is_err());
        assert!(parse_container_state(b"{}").unwrap().bundle_dir().is_err());
    }

    #[test]
    fn runtime_config_keeps_everything_and_replaces_the_root() {
        let mut c = parse_runtime_config(
            br#"{"ociVersion":"1.0.2","x":[1],"annotations":{"a":"b","n":1},"root":{"path":"/old"}}"#,
            "runtime config",
        )
        .unwrap();
        assert_eq!(c.annotations.len(), 1);
        c.set_root(Path::new("/new")).unwrap();
        assert_eq!(c.value["root"]["path"], "/new");
        assert_eq!(c.value["root"]["readonly"], false);
        assert_eq!(c.value["x"][0], 1);
        let mut bad = parse_runtime_config(br#"{"root":3}"#, "runtime config").unwrap();
        assert!(bad.set_root(Path::new("/new")).unwrap_err().is_denial());
        let mut list = parse_runtime_config(b"[]", "runtime config").unwrap();
        assert!(list.set_root(Path::new("/new")).is_err());
    }

    #[test]
    fn bundle_config_mounts() {
        let c = parse_bundle_config(
            br#"{"root":{"path":"rootfs"},"mounts":[{"destination":"/proc","type":"proc","source":"proc","options":["nosuid"]}]}"#,
            Path::new("config.json"),
        )
        .unwrap();
        assert_eq!(c.mounts[0].destination, Path::new("/proc"));
        assert_eq!(c.mounts[0].fs_type.as_deref(), Some("proc"));
        assert!(parse_bundle_config(br#"{"mounts":[{}]}"#, Path::new("c")).is_err());
    }

    #[test]
    fn oversized_input_is_refused() {
        let big = vec![b' '; MAX_SPEC_BYTES as usize + 1];
        assert!(read_bounded(&big[..], "state").is_err());
        assert_eq!(read_bounded(&b"{}"[..], "state").unwrap(), b"{}");
    }
}
