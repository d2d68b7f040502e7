//! Small file helpers that hold everywhere in the gate: a file named by a runtime, a bundle or
//! the run dir is opened without blocking (a FIFO cannot hang the hook), type-checked (regular
//! files only) and read under a named size limit; state files are written atomically.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};

use crate::error::{GateError, Result};

/// The first read's room for a file whose size is not known ahead (procfs reports 0).
const PROC_FILE_ROOM: u64 = 4096;

/// The contents of the regular file `path`, at most `limit` bytes (more is an error).
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = rustix::fs::open(path, flags, Mode::empty())
        .map_err(|e| GateError::io("reading", path, e.into()))?;
    let stat =
        rustix::fs::fstat(fd.as_fd()).map_err(|e| GateError::io("reading", path, e.into()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(GateError::Invalid(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    // Room for the whole file (procfs says 0: one page, the size of boot_id and of a small
    // mountinfo), so read_to_end does not probe from 32 bytes up (8 reads for 1 KiB).
    let room = (stat.st_size.max(0) as u64).max(PROC_FILE_ROOM).min(limit) + 1;
    let mut bytes = Vec::with_capacity(usize::try_from(room).unwrap_or(usize::MAX));
    std::fs::File::from(fd)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| GateError::io("reading", path, e))?;
    if bytes.len() as u64 > limit {
        return Err(GateError::Invalid(format!(
            "{} is larger than {limit} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// How long a state file must survive once written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Across a crash or power loss: fsync before the rename (hooks.d files, bundles).
    Durable,
    /// Until reboot only: no fsync. For state that describes mounts (an admission record binds
    /// a root by its unique mount id, which the kernel reuses after a reboot, when every mount
    /// it describes is gone): a crash loses the mounts with the record, so an fsync buys
    /// nothing, and it was the largest part of the createRuntime hook's time (~0.5 ms, and
    /// the rename behind it waited for the journal commit: up to 4 ms on a busy ext4 run dir).
    /// Readers still see the old or the new record, never a mix (the rename is atomic).
    UntilReboot,
}

/// Write `bytes` to `dir/name` atomically (temporary file, fsync when `durability` asks for it,
/// rename).
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8], durability: Durability) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    let mut file = std::fs::File::create(&tmp).map_err(|e| GateError::io("creating", &tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| match durability {
            Durability::Durable => file.sync_all(),
            Durability::UntilReboot => Ok(()),
        })
        .map_err(|e| GateError::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| GateError::io("writing", &path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_fifos_and_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let e = read_regular(&fifo, 10).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        write_atomic(dir.path(), "f", b"0123456789x", Durability::Durable).unwrap();
        let f = dir.path().join("f");
        assert!(read_regular(&f, 10)
            .unwrap_err()
            .to_string()
            .contains("larger than 10"));
        assert_eq!(read_regular(&f, 11).unwrap(), b"0123456789x");
        assert!(!dir.path().join(".f.tmp").exists());
    }
}
