//! Where a containers-storage store is: storage.conf(5) and the reference's store specifier.
//!
//! The configuration file is `$CONTAINERS_STORAGE_CONF` when set, else
//! `/etc/containers/storage.conf`, else `/usr/share/containers/storage.conf` (root's search
//! order in containers/storage). Only the `[storage]` table's `driver`, `graphroot` and
//! `runroot` strings are read; the rest of the file is not interpreted (a line that is not
//! `key = "string"`, a comment, a table header or blank is skipped only outside `[storage]`).
//! Without a file the defaults are containers/storage's for root: `/var/lib/containers/storage`,
//! `/run/containers/storage`, and the driver whose `DRIVER-images` directory exists in the
//! graph root (`overlay` first).
//!
//! Only `overlay` and `vfs` are read: their layer directories hold each layer's files as
//! extracted, which with the layer's tar-split reproduce the layer tar exactly.

use std::path::{Path, PathBuf};

use super::reference::StorageRef;
use crate::error::OciError;

/// containers/storage's default graph root for root.
pub const DEFAULT_GRAPH_ROOT: &str = "/var/lib/containers/storage";
/// containers/storage's default run root for root.
pub const DEFAULT_RUN_ROOT: &str = "/run/containers/storage";
/// The files searched, in order, when `CONTAINERS_STORAGE_CONF` is not set.
pub const CONF_PATHS: [&str; 2] = [
    "/etc/containers/storage.conf",
    "/usr/share/containers/storage.conf",
];
/// Longest storage.conf read (real ones are a few KiB of mostly comments).
const MAX_CONF_SIZE: u64 = 1 << 20;

/// A storage driver cfsgate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// The `overlay` driver (also spelled `overlay2`): layer content under `overlay/<id>/diff`.
    Overlay,
    /// The `vfs` driver: each layer a full copy under `vfs/dir/<id>`.
    Vfs,
}

impl Driver {
    /// The driver a `driver` name means; drivers other than overlay and vfs are refused, saying
    /// so.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "overlay" | "overlay2" => Ok(Driver::Overlay),
            "vfs" => Ok(Driver::Vfs),
            other => Err(format!(
                "storage driver {other:?} is not supported (overlay or vfs)"
            )),
        }
    }

    /// The driver's name as in the store's directory names (`overlay`, `vfs`).
    pub fn name(self) -> &'static str {
        match self {
            Driver::Overlay => "overlay",
            Driver::Vfs => "vfs",
        }
    }

    /// The directory of a layer's files, relative to the graph root.
    pub fn layer_dir(self, id: &str) -> String {
        match self {
            Driver::Overlay => format!("overlay/{id}/diff"),
            Driver::Vfs => format!("vfs/dir/{id}"),
        }
    }
}

/// The store a reference resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreLocation {
    /// The storage driver.
    pub driver: Driver,
    /// `graphroot`: where images and layers are stored.
    pub graph_root: PathBuf,
    /// `runroot`: the store's runtime state directory.
    pub run_root: PathBuf,
}

/// The `[storage]` settings of a storage.conf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageConf {
    /// `driver`, when set.
    pub driver: Option<String>,
    /// `graphroot`, when set.
    pub graph_root: Option<PathBuf>,
    /// `runroot`, when set.
    pub run_root: Option<PathBuf>,
}

impl StorageConf {
    /// Read the configuration file containers/storage would read; none found is the default.
    pub fn load() -> Result<Self, OciError> {
        if let Some(path) = std::env::var_os("CONTAINERS_STORAGE_CONF") {
            return Self::read(Path::new(&path));
        }
        for path in CONF_PATHS {
            if Path::new(path).exists() {
                return Self::read(Path::new(path));
            }
        }
        Ok(StorageConf::default())
    }

    /// Read and parse one file.
    pub fn read(path: &Path) -> Result<Self, OciError> {
        // Type-checked before any blocking open (a FIFO named by CONTAINERS_STORAGE_CONF must not
        // hang the hook), read under MAX_CONF_SIZE.
        let text = cfsgate_sys::file::read_to_string(
            path,
            cfsgate_sys::file::Follow::Symlinks,
            cfsgate_sys::file::SizeLimit::new("storage.conf", MAX_CONF_SIZE),
        )
        .map_err(|e| conf_error(path, e.reason()))?;
        Self::parse(&text)
            .map_err(|(line, reason)| conf_error(path, format!("line {line}: {reason}")))
    }

    /// Parse the text of a storage.conf; the error is (line, reason).
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut conf = StorageConf::default();
        let mut in_storage = false;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with('[') {
                in_storage = line == "[storage]";
                continue;
            }
            if !in_storage {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err((n + 1, format!("expected key = \"value\": {line:?}")));
            };
            let key = key.trim();
            if !matches!(key, "driver" | "graphroot" | "runroot") {
                continue;
            }
            let value = parse_string(value.trim()).ok_or((
                n + 1,
                format!("{key} is not a plain quoted string: {:?}", value.trim()),
            ))?;
            match key {
                "driver" => conf.driver = Some(value).filter(|v| !v.is_empty()),
                "graphroot" => conf.graph_root = Some(PathBuf::from(value)),
                _ => conf.run_root = Some(PathBuf::from(value)),
            }
        }
        Ok(conf)
    }

    /// The store of `reference`: its specifier first, this configuration for the rest.
    pub fn locate(&self, reference: &StorageRef) -> Result<StoreLocation, OciError> {
        let graph_root = reference
            .graph_root
            .clone()
            .or_else(|| self.graph_root.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_GRAPH_ROOT));
        let run_root = reference
            .run_root
            .clone()
            .or_else(|| self.run_root.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_RUN_ROOT));
        let bad = |reason: String| OciError::Storage {
            path: graph_root.display().to_string(),
            reason,
        };
        let driver = match reference.driver.as_deref().or(self.driver.as_deref()) {
            Some(name) => Driver::parse(name).map_err(bad)?,
            None => [Driver::Overlay, Driver::Vfs]
                .into_iter()
                .find(|d| graph_root.join(format!("{}-images", d.name())).is_dir())
                .ok_or_else(|| {
                    bad(
                        "no driver configured and neither overlay-images nor vfs-images exists"
                            .into(),
                    )
                })?,
        };
        Ok(StoreLocation {
            driver,
            graph_root,
            run_root,
        })
    }
}

fn conf_error(path: &Path, reason: String) -> OciError {
    OciError::Storage {
        path: path.display().to_string(),
        reason,
    }
}

/// A TOML basic or literal string without escapes, followed by nothing but a comment.
fn parse_string(value: &str) -> Option<String> {
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &value[1..];
    let end = rest.find(quote)?;
    let (inner, tail) = (&rest[..end], rest[end + 1..].trim());
    if (quote == '"' && inner.contains('\\')) || !(tail.is_empty() || tail.starts_with('#')) {
        return None;
    }
    Some(inner.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_storage_table() {
        let conf = StorageConf::parse(
            "# c\n[storage]\ndriver = \"vfs\"\ngraphroot = '/g' # x\nrunroot=\"/r\"\n[storage.options]\nmountopt = \"nodev\"\n",
        )
        .unwrap();
        assert_eq!(conf.driver.as_deref(), Some("vfs"));
        assert_eq!(conf.graph_root, Some(PathBuf::from("/g")));
        assert_eq!(conf.run_root, Some(PathBuf::from("/r")));
        assert!(StorageConf::parse("[storage]\ndriver = vfs\n").is_err());
        assert!(StorageConf::parse("[storage]\ngraphroot = \"a\\\"b\"\n").is_err());
        let r = StorageRef::parse("[overlay@/x]a").unwrap();
        let at = conf.locate(&r).unwrap();
        assert_eq!(
            (at.driver, at.graph_root, at.run_root),
            (Driver::Overlay, PathBuf::from("/x"), PathBuf::from("/r"))
        );
    }
}
