//! Which mount is on a path, from `/proc/self/mountinfo` (proc(5)): one line per mount,
//! `ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPEROPTIONS`,
//! with spaces, tabs, newlines and backslashes in paths escaped as `\NNN` (octal).
//!
//! Of the mounts on a path, the topmost is the one that is no other's parent; the device the
//! path shows (`stat`) must be that mount's, else the path is a directory beneath some other
//! mount.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{GateError, Result};
use crate::fsutil;

/// Where the mount table is read.
pub const MOUNTINFO: &str = "/proc/self/mountinfo";
/// Largest mount table read: a line is ~150 bytes, so this is ~100,000 mounts.
pub const MAX_MOUNTINFO_BYTES: u64 = 16 << 20;

/// Which mount is on a path: mountinfo's mount id, `major:minor` and filesystem type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountIdentity {
    /// mountinfo's mount id.
    pub mount_id: u64,
    /// `major:minor`.
    pub dev: String,
    /// The filesystem type (`overlay`, `tmpfs`, …).
    pub fstype: String,
}

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// The mount id.
    pub id: u64,
    /// The parent's mount id.
    pub parent: u64,
    /// `major:minor`.
    pub dev: String,
    /// The mount point (unescaped).
    pub mount_point: PathBuf,
    /// The filesystem type.
    pub fstype: String,
}

/// Undo mountinfo's octal escapes (`\040` for a space, …).
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let octal = std::str::from_utf8(&bytes[i + 1..i + 4]).ok();
            if let Some(v) = octal.and_then(|o| u8::from_str_radix(o, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse one mountinfo line; `None` for a line that is not one.
pub fn parse_line(line: &str) -> Option<MountEntry> {
    let fields: Vec<&str> = line.split(' ').collect();
    let sep = fields.iter().position(|f| *f == "-")?;
    if fields.len() < 5 || sep < 5 || sep + 1 >= fields.len() {
        return None;
    }
    Some(MountEntry {
        id: fields[0].parse().ok()?,
        parent: fields[1].parse().ok()?,
        dev: fields[2].to_string(),
        mount_point: PathBuf::from(unescape(fields[4])),
        fstype: fields[sep + 1].to_string(),
    })
}

/// Every mount of a mount table.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

/// The current mount table.
pub fn read_mount_table() -> Result<Vec<MountEntry>> {
    let bytes = fsutil::read_regular(Path::new(MOUNTINFO), MAX_MOUNTINFO_BYTES)?;
    Ok(parse(&String::from_utf8_lossy(&bytes)))
}

/// The topmost of the mounts on exactly `path` in `table`.
pub fn topmost<'a>(table: &'a [MountEntry], path: &Path) -> Option<&'a MountEntry> {
    let on_path: Vec<&MountEntry> = table.iter().filter(|m| m.mount_point == path).collect();
    on_path
        .iter()
        .find(|m| !on_path.iter().any(|o| o.parent == m.id))
        .copied()
}

/// `major:minor` of a `st_dev`, as mountinfo prints it.
pub fn dev_text(dev: u64) -> String {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    format!("{major}:{minor}")
}

/// The topmost mount on exactly `path` (no mount on the path: an error).
pub fn mount_identity(path: &Path) -> Result<MountIdentity> {
    mount_identity_and_table(path).map(|(identity, _)| identity)
}

/// [`mount_identity`] and the mount table it was read from, for a caller that checks more of
/// the same table (one read of mountinfo, one snapshot for every check).
pub fn mount_identity_and_table(path: &Path) -> Result<(MountIdentity, Vec<MountEntry>)> {
    let path = std::fs::canonicalize(path).map_err(|e| GateError::io("resolving", path, e))?;
    let table = read_mount_table()?;
    let identity = identity_in(&table, &path)?;
    Ok((identity, table))
}

/// The topmost mount on exactly the canonical `path` in `table`, checked against the device
/// the path shows.
fn identity_in(table: &[MountEntry], path: &Path) -> Result<MountIdentity> {
    let top = topmost(table, path)
        .ok_or_else(|| GateError::Invalid(format!("nothing is mounted on {}", path.display())))?;
    let dev = std::fs::metadata(path)
        .map_err(|e| GateError::io("stat", path, e))?
        .dev();
    let shown = dev_text(dev);
    if shown != top.dev {
        return Err(GateError::Invalid(format!(
            "{} shows device {shown}, not that of the mount on it ({})",
            path.display(),
            top.dev
        )));
    }
    Ok(MountIdentity {
        mount_id: top.id,
        dev: top.dev.clone(),
        fstype: top.fstype.clone(),
    })
}

/// The 64-bit unique id of the mount exactly at `path` (opened `O_PATH`, no symlink followed
/// at the last component); an error where the kernel lacks unique ids (before 6.8): the caller
/// refuses rather than fall back to the recyclable mountinfo id.
pub fn unique_mount_id(path: &Path) -> Result<u64> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path, flags, Mode::empty())
        .map_err(|e| GateError::io("opening", path, e.into()))?;
    cfsgate_sys::mount::unique_mount_id(&fd)
        .map(|id| id.0)
        .map_err(|e| GateError::Invalid(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 0:21 / /run rw,nosuid shared:5 - tmpfs tmpfs rw,mode=755
90 22 0:50 / /run/c\\040d/rootfs rw,relatime - overlay overlay rw,lowerdir=/a
95 90 0:51 / /run/c\\040d/rootfs rw master:3 shared:9 - tmpfs swapped rw
96 95 0:52 / /run/c\\040d/rootfs/bin rw - tmpfs t rw
not a mount line
97 x 0:52 / /y rw - tmpfs t rw
";

    #[test]
    fn parses_escapes_optional_fields_and_skips_junk() {
        let t = parse(TABLE);
        assert_eq!(t.len(), 4);
        assert_eq!(t[1].mount_point, Path::new("/run/c d/rootfs"));
        assert_eq!(t[2].fstype, "tmpfs");
        assert_eq!(t[2].parent, 90);
        assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn the_topmost_mount_wins() {
        let t = parse(TABLE);
        let top = topmost(&t, Path::new("/run/c d/rootfs")).unwrap();
        assert_eq!((top.id, top.dev.as_str()), (95, "0:51"));
        assert!(topmost(&t, Path::new("/nowhere")).is_none());
    }

    #[test]
    fn device_numbers_print_as_the_kernel_does() {
        assert_eq!(dev_text(rustix::fs::makedev(0, 77)), "0:77");
        assert_eq!(dev_text(rustix::fs::makedev(259, 300_000)), "259:300000");
    }
}
