//! A digest store: the object directory `mkcomposefs --digest-store=DIR` fills.
//!
//! Every object is a regular file named by the fs-verity digest of its content, at
//! `DIR/xx/yyyy…` (`xx` = the first two hex digits, then the other 62), mode 0644. An image's
//! `trusted.overlay.redirect` values are exactly these relative paths, so `DIR` can be given to
//! overlayfs as a data-only lower layer.
//!
//! | path | what |
//! |---|---|
//! | `DIR/xx/` | one directory per first digest byte, created on demand (0755) |
//! | `DIR/xx/<62 hex>` | an object: content whose fs-verity digest is `xx<62 hex>` |
//! | `DIR/.cfsgate-tmp-<pid>-<n>` | a staged object not yet renamed into place |
//!
//! Writes are atomic and safe with concurrent writers (other `mkcomposefs` runs):
//! 1. **stage**: the content is copied into a fresh temporary file in `DIR` (`O_EXCL`, a name no
//!    other process uses) while it is hashed, so the object's name is the digest of exactly the
//!    bytes written, even if the source changes meanwhile; the source is read once. If the
//!    object already exists (or this run staged the same digest already), the temporary file is
//!    removed at once and nothing more is written.
//! 2. **commit**: one `syncfs` makes every staged file's data durable (instead of an `fsync` per
//!    object: the same guarantee, far fewer disk flushes), then each file is renamed to its
//!    object path with `RENAME_NOREPLACE` (a concurrent writer that got there first wins; its
//!    object has the same content, ours is removed), then a second `syncfs` makes the renames
//!    durable before the caller writes an image that refers to them.
//!
//! A crash at any point leaves only complete objects under their names, plus at most some
//! `.cfsgate-tmp-*` files that a later gc may remove. Dropping a [`Staged`] object without
//! committing it removes its temporary file.

use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};

use crate::fsverity::{FsVerityHasher, FsVeritySha256, Sha256};

/// Permission bits of an object file (readable by all, as upstream mkcomposefs makes them).
pub const OBJECT_MODE: u32 = 0o644;
/// Permission bits of an `xx/` fan-out directory.
pub const FANOUT_DIR_MODE: u32 = 0o755;
/// Prefix of staged (not yet committed) files in the store's top directory.
pub const TEMP_PREFIX: &str = ".cfsgate-tmp-";

/// A digest store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An operation on the store directory or a file in it failed.
    #[error("digest store {store}: {op} {path}: {source}")]
    Io {
        /// The store directory.
        store: PathBuf,
        /// The operation (`"create"`, `"rename"`, `"syncfs"`, ...).
        op: &'static str,
        /// The name inside the store it was applied to (an object or temporary file name).
        path: String,
        /// The error the kernel returned.
        source: io::Error,
    },
    /// Reading the content to store failed.
    #[error("digest store {store}: reading the source {source_name}: {source}")]
    Source {
        /// The store directory.
        store: PathBuf,
        /// The caller's name for the source (usually its path in the tree being built).
        source_name: String,
        /// The read error.
        source: io::Error,
    },
}

/// An open digest store directory.
pub struct DigestStore {
    dir: OwnedFd,
    path: PathBuf,
    /// Digests staged or found present during this run, so duplicates are written once.
    seen: Mutex<std::collections::HashSet<FsVeritySha256>>,
    next_temp: AtomicU64,
}

/// Content copied into the store's top directory, waiting for [`DigestStore::commit`].
pub struct Staged<'a> {
    store: &'a DigestStore,
    /// The temporary file name, while one exists.
    temp: Option<String>,
    /// The fs-verity digest of the staged content, which becomes its name in the store.
    pub digest: FsVeritySha256,
    /// Length of the staged content in bytes.
    pub size: u64,
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            // Best effort: a leftover temp file is harmless (never an object name).
            let _ = rustix::fs::unlinkat(&self.store.dir, temp.as_str(), AtFlags::empty());
        }
    }
}

/// What a commit did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CommitStats {
    /// Objects renamed into place by this commit.
    pub added: usize,
    /// Staged objects another writer had added meanwhile (ours discarded).
    pub raced: usize,
}

fn io_err(store: &Path, op: &'static str, path: &str, e: impl Into<io::Error>) -> StoreError {
    StoreError::Io {
        store: store.to_owned(),
        op,
        path: path.to_owned(),
        source: e.into(),
    }
}

impl DigestStore {
    /// Open (creating it and its parents if needed) the store directory `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(path).map_err(|e| io_err(path, "creating", "", e))?;
        let dir = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err(path, "opening", "", e))?;
        Ok(DigestStore {
            dir,
            path: path.to_owned(),
            seen: Mutex::new(Default::default()),
            next_temp: AtomicU64::new(0),
        })
    }

    /// The store directory as given to [`open`](Self::open).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the object `digest` is present.
    pub fn contains(&self, digest: &FsVeritySha256) -> bool {
        rustix::fs::statat(
            &self.dir,
            digest.object_path().as_str(),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .is_ok()
    }

    /// Remember `digest` as handled in this run; false if it already was.
    fn claim(&self, digest: FsVeritySha256) -> bool {
        match self.seen.lock() {
            Ok(mut seen) => seen.insert(digest),
            // A panicked writer thread: fall back to "not seen" (the rename handles duplicates).
            Err(_) => true,
        }
    }

    fn create_temp(&self) -> Result<(String, OwnedFd), StoreError> {
        loop {
            let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
            let name = format!("{TEMP_PREFIX}{}-{n}", std::process::id());
            match rustix::fs::openat(
                &self.dir,
                name.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                Mode::from_raw_mode(OBJECT_MODE),
            ) {
                Ok(fd) => return Ok((name, fd)),
                // Left over by an earlier run with our pid: pick the next number.
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => return Err(io_err(&self.path, "creating", &name, e)),
            }
        }
    }

    /// Copy everything `source` yields into a staged object while computing its fs-verity
    /// digest (one read of the source). `buf` is the copy buffer (any non-zero size).
    ///
    /// Returns the staged object; when the object already exists or was staged before in this
    /// run, the returned value holds no temporary file and commit skips it.
    pub fn stage(
        &self,
        mut source: impl Read,
        source_name: &str,
        buf: &mut [u8],
    ) -> Result<Staged<'_>, StoreError> {
        let (temp, fd) = self.create_temp()?;
        let mut staged = Staged {
            store: self,
            temp: Some(temp),
            digest: FsVeritySha256([0; 32]),
            size: 0,
        };
        let temp_name = staged.temp.clone().unwrap_or_default();
        let mut hasher = FsVerityHasher::<Sha256>::new();
        let mut size = 0u64;
        loop {
            let n = match source.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(StoreError::Source {
                        store: self.path.clone(),
                        source_name: source_name.to_owned(),
                        source: e,
                    })
                }
            };
            hasher.update(&buf[..n]);
            write_all(&fd, &buf[..n]).map_err(|e| io_err(&self.path, "writing", &temp_name, e))?;
            size += n as u64;
        }
        // The mode given to openat is reduced by the umask; objects are always 0644.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(OBJECT_MODE))
            .map_err(|e| io_err(&self.path, "chmod", &temp_name, e))?;
        drop(fd);
        staged.digest = hasher.finish();
        staged.size = size;
        if !self.claim(staged.digest) || self.contains(&staged.digest) {
            // Dropping the temp file now, before any sync, usually means its data never
            // reaches the disk at all.
            if let Some(temp) = staged.temp.take() {
                let _ = rustix::fs::unlinkat(&self.dir, temp.as_str(), AtFlags::empty());
            }
        }
        Ok(staged)
    }

    /// Make staged objects durable and visible (see the module doc for the order of steps).
    pub fn commit(&self, staged: Vec<Staged<'_>>) -> Result<CommitStats, StoreError> {
        let mut stats = CommitStats::default();
        if staged.iter().all(|s| s.temp.is_none()) {
            return Ok(stats);
        }
        rustix::fs::syncfs(&self.dir).map_err(|e| io_err(&self.path, "syncfs", "", e))?;
        for mut s in staged {
            let Some(temp) = s.temp.take() else { continue };
            let object = s.digest.object_path();
            let fanout = &object[..2];
            match rustix::fs::mkdirat(&self.dir, fanout, Mode::from_raw_mode(FANOUT_DIR_MODE)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => {
                    s.temp = Some(temp);
                    return Err(io_err(&self.path, "creating directory", fanout, e));
                }
            }
            match self.rename_noreplace(&temp, &object) {
                Ok(true) => stats.added += 1,
                Ok(false) => {
                    stats.raced += 1;
                    let _ = rustix::fs::unlinkat(&self.dir, temp.as_str(), AtFlags::empty());
                }
                Err(e) => {
                    s.temp = Some(temp);
                    return Err(io_err(&self.path, "renaming into", &object, e));
                }
            }
        }
        rustix::fs::syncfs(&self.dir).map_err(|e| io_err(&self.path, "syncfs", "", e))?;
        Ok(stats)
    }

    /// Rename `temp` to `object` unless `object` exists. Ok(false): it existed.
    fn rename_noreplace(&self, temp: &str, object: &str) -> Result<bool, rustix::io::Errno> {
        match rustix::fs::renameat_with(&self.dir, temp, &self.dir, object, RenameFlags::NOREPLACE)
        {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::EXIST) => Ok(false),
            // Filesystems without RENAME_NOREPLACE: an existing object has the same content (it
            // has the same digest), so replacing it atomically is equally correct.
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOSYS) => {
                if self.contains_path(object) {
                    return Ok(false);
                }
                rustix::fs::renameat(&self.dir, temp, &self.dir, object).map(|()| true)
            }
            Err(e) => Err(e),
        }
    }

    fn contains_path(&self, object: &str) -> bool {
        rustix::fs::statat(&self.dir, object, AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }
}

fn write_all(fd: &impl AsFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
