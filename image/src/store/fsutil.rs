//! Small file-system helpers the store modules share: temporary files, directory syncs, atomic
//! small-file replacement.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::StoreError;

/// Mode of files the store creates: objects and images are world-readable (overlayfs reads them
/// with the mounter's credentials), and never written after they are renamed into place.
pub(crate) const STORED_FILE_MODE: u32 = 0o644;

/// Names tried before giving up on finding a free temporary name (collisions need the same pid,
/// counter and nanosecond clock, so more than one retry means something else is wrong).
const TEMP_NAME_ATTEMPTS: u32 = 16;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Create a new, empty temporary file in `dir` (O_EXCL, so never someone else's file).
pub(crate) fn create_temp(dir: &Path) -> Result<(File, PathBuf), StoreError> {
    let mut last = None;
    for _ in 0..TEMP_NAME_ATTEMPTS {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let count = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{}.{count}.{nanos:08x}", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(STORED_FILE_MODE)
            .open(&path)
        {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(StoreError::io("create temporary file in", dir)(e)),
        }
    }
    let e = last.unwrap_or_else(|| io::Error::other("no free temporary name"));
    Err(StoreError::io("create temporary file in", dir)(e))
}

/// fsync a directory so the names created or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io("fsync directory", dir))
}

/// Replace `dest` atomically and durably with `content` (temporary file in `tmp_dir`, fsync,
/// rename, fsync of the parent directory).
pub(crate) fn replace_file(tmp_dir: &Path, dest: &Path, content: &[u8]) -> Result<(), StoreError> {
    let (mut file, tmp) = create_temp(tmp_dir)?;
    let written = file.write_all(content).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(StoreError::io("write", &tmp)(e));
    }
    rename_into(&tmp, dest)?;
    match dest.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Rename `tmp` to `dest`, creating `dest`'s parent directory if needed. A concurrent remover of
/// an empty parent (ref removal) can win the race once; retrying then succeeds.
pub(crate) fn rename_into(tmp: &Path, dest: &Path) -> Result<(), StoreError> {
    const ATTEMPTS: u32 = 8;
    let mut result = Ok(());
    for _ in 0..ATTEMPTS {
        if let Some(parent) = dest.parent() {
            if let Err(e) = fs::create_dir_all(parent) {
                result = Err(e);
                continue;
            }
        }
        result = fs::rename(tmp, dest);
        match &result {
            Err(e) if e.kind() == io::ErrorKind::NotFound && tmp.exists() => continue,
            _ => break,
        }
    }
    result.map_err(|e| {
        let _ = fs::remove_file(tmp);
        StoreError::io("rename into place", dest)(e)
    })
}

/// Read a whole file, refusing one longer than `limit` bytes.
pub(crate) fn read_limited(
    path: &Path,
    limit: u64,
    what: &'static str,
) -> Result<Vec<u8>, StoreError> {
    use std::io::Read;
    let file = File::open(path).map_err(StoreError::io(what, path))?;
    let mut data = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut data)
        .map_err(StoreError::io(what, path))?;
    if data.len() as u64 > limit {
        return Err(StoreError::BadSource {
            path: path.to_path_buf(),
            reason: format!("longer than {limit} bytes"),
        });
    }
    Ok(data)
}

/// Why [`read_stored`] returned no content.
#[derive(Debug)]
pub(crate) enum StoredReadError {
    /// Opening, `fstat` or reading failed (`NotFound`: no such name).
    Io(io::Error),
    /// The name is a symbolic link (refused by `O_NOFOLLOW`: the store never writes one).
    Symlink,
    /// The name is not a regular file (a directory, FIFO, device, socket): nothing was read.
    NotRegular,
    /// The file holds more than the limit.
    TooLarge,
}

/// Read a whole file the store wrote (`meta.json`, an image) in one open instead of a stat,
/// a stat and an open: `openat` with `O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY |
/// O_CLOEXEC` (a FIFO put there opens at once, a symbolic link is refused), then `fstat` of the
/// descriptor: only a regular file is read, into a buffer sized from its length (capped by
/// `limit`), at most `limit + 1` bytes; the extra byte means [`StoredReadError::TooLarge`].
pub(crate) fn read_stored(path: &Path, limit: u64) -> Result<Vec<u8>, StoredReadError> {
    use rustix::fs::{FileType, Mode, OFlags, CWD};
    use std::io::Read;
    let flags =
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(CWD, path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::LOOP) => return Err(StoredReadError::Symlink),
        Err(e) => return Err(StoredReadError::Io(e.into())),
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| StoredReadError::Io(e.into()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(StoredReadError::NotRegular);
    }
    let length = u64::try_from(stat.st_size).unwrap_or(0);
    let room = usize::try_from(length.min(limit).saturating_add(1)).unwrap_or(usize::MAX);
    let mut data = Vec::new();
    data.try_reserve_exact(room).map_err(|_| {
        StoredReadError::Io(io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("cannot allocate {room} bytes"),
        ))
    })?;
    data.resize(room, 0);
    let mut file = File::from(fd);
    // Reads as large as the buffer (read_to_end starts at 8 KiB: four reads for a 28 KiB
    // image), until the end or the buffer is full.
    let mut filled = 0;
    while filled < room {
        match file.read(&mut data[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StoredReadError::Io(e)),
        }
    }
    data.truncate(filled);
    if filled == room {
        // Full: the file grew since the fstat; the rest, still under `limit + 1` in all.
        let rest = limit.saturating_add(1).saturating_sub(filled as u64);
        file.take(rest)
            .read_to_end(&mut data)
            .map_err(StoredReadError::Io)?;
    }
    if data.len() as u64 > limit {
        return Err(StoredReadError::TooLarge);
    }
    Ok(data)
}
