//! The admission record: what precreate (or `cfsgate bundle`) admitted and mounted, kept as
//! `<run-dir>/<key>/admission.json` until poststop or `mounts gc` removes the container. The
//! createRuntime check binds a root to it; gc reads the owner's pid from it.
//!
//! | field | content |
//! |---|---|
//! | `version` | [`ADMISSION_RECORD_VERSION`]; another version is refused |
//! | `key` | the per-container key (the state directory's name) |
//! | `container_id` | the runtime's container id, set by the first createRuntime |
//! | `image`, `reference` | what was judged, as what |
//! | `manifest_digest` | `sha256:<hex>` of the manifest, when known |
//! | `composefs_digest` | `sha256:<hex>`, the fs-verity digest of the mounted image |
//! | `verity` | `kernel`, `userspace` or `none`: how objects are checked |
//! | `rootfs` | the mount point |
//! | `boot_id` | the kernel's boot id (`/proc/sys/kernel/random/boot_id`) when it was admitted |
//! | `mount_unique_id` | the overlay mount's 64-bit unique id (`statx` `STATX_MNT_ID_UNIQUE`): never reused until reboot, so it identifies the mount only together with `boot_id` |
//! | `mount_id`, `dev` | mountinfo's (recyclable) id and `major:minor` of the overlay mount, for people |
//! | `time` | when it was admitted (RFC 3339, UTC) |
//! | `pid`, `pid_start` | the container's process and its start time (`/proc/PID/stat`) |

use std::path::{Path, PathBuf};

use cfsgate_image::{ContentSha256, FsVeritySha256};
use cfsgate_mounter::VerityMode;
use serde::{Deserialize, Serialize};

use crate::error::{GateError, Result};
use crate::fsutil;

/// The record format written by this version of cfsgate.
pub const ADMISSION_RECORD_VERSION: u32 = 3;

/// Where the kernel says which boot this is: a random UUID chosen at each boot.
pub const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

/// A boot id is a UUID (36 characters and a newline); anything longer is not one.
const MAX_BOOT_ID_BYTES: u64 = 64;
/// The record's file name in a container's state directory.
pub const ADMISSION_FILE: &str = "admission.json";
/// Largest admission record read: a record is well under 4 KiB; the bound keeps a corrupted
/// or planted file from exhausting memory.
pub const MAX_ADMISSION_BYTES: u64 = 64 << 10;

/// One admitted container root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmissionRecord {
    /// [`ADMISSION_RECORD_VERSION`].
    pub version: u32,
    /// The per-container key (name of the state directory).
    pub key: String,
    /// The runtime's container id, once createRuntime named it.
    pub container_id: Option<String>,
    /// The image that was judged.
    pub image: String,
    /// The docker reference it was judged as.
    pub reference: Option<String>,
    /// The manifest's digest.
    #[serde(with = "content_text")]
    pub manifest_digest: Option<ContentSha256>,
    /// The fs-verity digest of the mounted composefs image.
    #[serde(with = "digest_text")]
    pub composefs_digest: FsVeritySha256,
    /// How the mount checks objects (its name: the derive of the one `VerityMode`).
    pub verity: VerityMode,
    /// The mount point.
    pub rootfs: PathBuf,
    /// The boot the mount was made in ([`current_boot_id`]): unique mount ids restart at each
    /// boot, and a run dir on a disk (not tmpfs) keeps records across one.
    pub boot_id: String,
    /// The overlay mount's unique id (what createRuntime binds the root to, in `boot_id`).
    pub mount_unique_id: u64,
    /// mountinfo's mount id of the overlay (recyclable: shown, never trusted alone).
    pub mount_id: u64,
    /// `major:minor` of the overlay.
    pub dev: String,
    /// When it was admitted.
    pub time: String,
    /// The container's process, once createRuntime named it.
    pub pid: Option<i64>,
    /// That process's start time (field 22 of `/proc/PID/stat`).
    pub pid_start: Option<u64>,
}

impl AdmissionRecord {
    /// Write the record into the state directory `state` (atomically; not fsynced: it describes
    /// a mount, and mounts do not outlive a reboot; see `fsutil::Durability::UntilReboot`).
    pub fn write(&self, state: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|source| GateError::Json {
            what: "serialising the admission record".into(),
            source,
        })?;
        bytes.push(b'\n');
        fsutil::write_atomic(
            state,
            ADMISSION_FILE,
            &bytes,
            fsutil::Durability::UntilReboot,
        )
    }

    /// Read the record of the state directory `state`.
    pub fn read(state: &Path) -> Result<AdmissionRecord> {
        let path = state.join(ADMISSION_FILE);
        let bytes = fsutil::read_regular(&path, MAX_ADMISSION_BYTES)?;
        Self::parse(&bytes, &path)
    }

    /// Parse a record (`path` names it in errors).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<AdmissionRecord> {
        let record: AdmissionRecord =
            serde_json::from_slice(bytes).map_err(|source| GateError::Json {
                what: format!("parsing {}", path.display()),
                source,
            })?;
        if record.version != ADMISSION_RECORD_VERSION {
            return Err(GateError::Invalid(format!(
                "{}: admission record version {} (this cfsgate reads version {ADMISSION_RECORD_VERSION})",
                path.display(),
                record.version
            )));
        }
        Ok(record)
    }
}

/// The kernel's id of the running boot ([`BOOT_ID_PATH`], trimmed).
pub fn current_boot_id() -> Result<String> {
    let bytes = fsutil::read_regular(Path::new(BOOT_ID_PATH), MAX_BOOT_ID_BYTES)?;
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    if text.len() != 36 || !text.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(GateError::Invalid(format!(
            "{BOOT_ID_PATH}: {text:?} is not a boot id (a UUID)"
        )));
    }
    Ok(text)
}

/// `sha256:<hex>` text of a digest.
mod digest_text {
    use cfsgate_image::FsVeritySha256;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &FsVeritySha256, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("sha256:{}", d.to_hex()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<FsVeritySha256, D::Error> {
        let text = String::deserialize(d)?;
        let hex = text
            .strip_prefix("sha256:")
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not sha256:<hex>")))?;
        FsVeritySha256::from_hex(hex).map_err(serde::de::Error::custom)
    }
}

/// `sha256:<hex>` text of an optional plain (content) sha256, or `null`.
mod content_text {
    use cfsgate_image::ContentSha256;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<ContentSha256>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&d.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ContentSha256>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        text.strip_prefix("sha256:")
            .and_then(ContentSha256::from_hex)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not sha256:<hex>")))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn the_boot_id_is_the_kernels_uuid() {
        let id = current_boot_id().unwrap();
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(id, current_boot_id().unwrap(), "one boot, one id");
        let kernel = std::fs::read_to_string(BOOT_ID_PATH).unwrap();
        assert_eq!(id, kernel.trim());
    }

    /// A record of container `k1`, for the tests of other modules too.
    pub(crate) fn sample() -> AdmissionRecord {
        AdmissionRecord {
            version: ADMISSION_RECORD_VERSION,
            key: "k1".into(),
            container_id: None,
            image: "dir:/img".into(),
            reference: Some("registry.example/app:1".into()),
            manifest_digest: Some(ContentSha256::from_hex(&"ab".repeat(32)).unwrap()),
            composefs_digest: FsVeritySha256::from_hex(&"cd".repeat(32)).unwrap(),
            verity: VerityMode::Userspace,
            rootfs: "/run/cfsgate/containers/k1/rootfs".into(),
            boot_id: "8b5a3c0e-93e7-4a55-8a5f-0d3e51c2a1f4".into(),
            mount_unique_id: (1 << 31) + 9,
            mount_id: 812,
            dev: "0:77".into(),
            time: "2026-12-01T20:00:00Z".into(),
            pid: None,
            pid_start: None,
        }
    }

    #[test]
    fn round_trips_through_the_state_directory() {
        let dir = tempfile::tempdir().unwrap();
        let record = sample();
        record.write(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(ADMISSION_FILE)).unwrap();
        assert!(text.contains(&format!(
            "\"composefs_digest\": \"sha256:{}\"",
            "cd".repeat(32)
        )));
        assert!(text.contains("\"verity\": \"userspace\""));
        assert_eq!(AdmissionRecord::read(dir.path()).unwrap(), record);
    }

    #[test]
    fn refuses_other_versions_unknown_fields_and_bad_digests() {
        let good = serde_json::to_value(sample()).unwrap();
        let path = Path::new("admission.json");
        let mut v = good.clone();
        v["version"] = 1.into();
        let e = AdmissionRecord::parse(&serde_json::to_vec(&v).unwrap(), path).unwrap_err();
        assert!(e.to_string().contains("version 1"), "{e}");
        let mut v = good.clone();
        v["extra"] = 1.into();
        assert!(AdmissionRecord::parse(&serde_json::to_vec(&v).unwrap(), path).is_err());
        let mut v = good.clone();
        v["composefs_digest"] = "cd".repeat(32).into();
        assert!(AdmissionRecord::parse(&serde_json::to_vec(&v).unwrap(), path).is_err());
        let mut v = good;
        v["verity"] = "maybe".into();
        assert!(AdmissionRecord::parse(&serde_json::to_vec(&v).unwrap(), path).is_err());
    }
}
