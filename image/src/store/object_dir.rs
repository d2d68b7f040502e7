//! The one object store API: an object directory, `DIR/xx/<62 hex>`, opened by fd.
//!
//! Every object is a regular file named by the fs-verity SHA-256 digest of its content (`xx` =
//! the first two hex digits, then the other 62), mode [`OBJECT_MODE`]. An image's
//! `trusted.overlay.redirect` values are exactly these relative paths, so the directory is
//! given as is to overlayfs as a data-only lower layer. Two layouts use it:
//!
//! | who | objects | staged (temporary) files |
//! |---|---|---|
//! | `mkcomposefs --digest-store=DIR` ([`ObjectDir::create`]) | `DIR/xx/<62 hex>` (upstream's layout) | `DIR/.cfsgate-tmp-<pid>-<n>` |
//! | the repository ([`super::Repository`]) | `objects/xx/<62 hex>` | `tmp/.cfsgate-tmp-<pid>-<n>` |
//! | the mounter ([`ObjectDir::open`]) | any object directory (`basedir=`), only read | — |
//!
//! Writing, safe with any number of concurrent writers (threads or processes):
//! 1. **stage** ([`ObjectDir::stage`]): the content is copied into a fresh temporary file
//!    (`O_EXCL`, a name no other process uses) while its fs-verity digest is computed, so the
//!    object's name is the digest of exactly the bytes written, even if the source changes
//!    meanwhile; the source is read once. A [`PendingObjects`] set then keeps one staged file
//!    per digest and drops the copy at once when the object is already stored or pending
//!    (before any sync: its data usually never reaches the disk).
//! 2. **commit** ([`ObjectDir::commit`]): one `syncfs` makes every staged file's data durable
//!    (instead of an `fsync` per object: the same guarantee, far fewer disk flushes); in a
//!    kernel-verity repository each file is then sealed with fs-verity; then each is renamed to
//!    its object path with `RENAME_NOREPLACE` (a concurrent writer that got there first wins:
//!    its object has the same content and ours is removed); a second `syncfs` makes the renames
//!    durable before the caller writes an image that refers to them. A fan-out directory is
//!    created only when a rename finds it missing, so a commit costs one rename per object.
//!
//! A crash at any point leaves only complete objects under their names, plus at most some
//! staged files that gc removes. Dropping a [`Staged`] file without committing it removes it.
//! Something that is not a regular file where an object should be (a FIFO, a symlink) is not
//! an object: [`ObjectDir::contains`] says absent, a commit replaces it atomically with the
//! real object, and lookups refuse it without blocking on it.
//!
//! Lookups ([`ObjectDir::open_object`], [`ObjectDir::open_beneath`]) resolve beneath the
//! directory's fd (`RESOLVE_BENEATH`, no symlinks anywhere), open with `O_NONBLOCK` (a FIFO
//! opens at once) and return only regular files.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, ResolveFlags};

use crate::fsverity::{FsVerityHasher, FsVeritySha256, Sha256};

use super::{verity, StoreError, VerityMode};

/// Permission bits of an object file: readable by all (overlayfs reads objects with the
/// mounter's credentials), as upstream mkcomposefs makes them, whatever the umask.
pub const OBJECT_MODE: u32 = 0o644;
/// Permission bits of an `xx/` fan-out directory.
pub const FANOUT_DIR_MODE: u32 = 0o755;
/// Prefix of staged (not yet committed) files; never a valid object name.
pub const TEMP_PREFIX: &str = ".cfsgate-tmp-";
/// Copy buffer: large enough for sequential throughput, small enough to have one per thread.
pub const COPY_BUFFER_LEN: usize = 256 * 1024;
/// Renames retried when the fan-out directory vanishes between its creation and the rename
/// (an emptied fan-out directory is removed by gc's candidate removal; writers recreate it).
const RENAME_ATTEMPTS: u32 = 8;

/// Staged-file counter, process-wide so two `ObjectDir`s on one directory never collide.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// An open object directory (see the module doc). Cheap to share between threads.
#[derive(Debug)]
pub struct ObjectDir {
    objects: OwnedFd,
    /// Where staged files are created; `None`: in the object directory itself.
    staging: Option<OwnedFd>,
    path: PathBuf,
    staging_path: PathBuf,
    /// Seal objects with fs-verity before they get their names (a kernel-verity repository).
    seal: bool,
    /// Whether the umask strips bits of [`OBJECT_MODE`], so staged files need an `fchmod`
    /// (found out on the first stage: a reader such as the mounter never asks).
    chmod_needed: OnceLock<bool>,
}

/// A staged file waiting for [`ObjectDir::commit`]; removed if dropped uncommitted.
#[derive(Debug)]
pub struct Staged<'d> {
    dir: &'d ObjectDir,
    /// The temporary file name in the staging directory, while it exists.
    temp: Option<String>,
    /// The fs-verity digest of the staged content, which becomes its name.
    pub digest: FsVeritySha256,
    /// Length of the staged content in bytes.
    pub size: u64,
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            // Best effort: a leftover staged file is harmless (never an object name; gc).
            let _ = rustix::fs::unlinkat(self.dir.staging_fd(), temp.as_str(), AtFlags::empty());
        }
    }
}

/// What a commit did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Objects renamed into place by this commit.
    pub added: u64,
    /// Content bytes of those objects.
    pub bytes_added: u64,
    /// Staged objects another writer had stored meanwhile (ours discarded).
    pub raced: Vec<FsVeritySha256>,
}

fn open_dir(path: &Path) -> Result<OwnedFd, StoreError> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| StoreError::io("open directory", path)(e.into()))
}

/// Whether the process umask removes bits of [`OBJECT_MODE`] (read once per directory from
/// `/proc/self/status`: `umask(2)` can only read it by setting it, racing other threads).
fn umask_strips_object_mode() -> bool {
    let Ok(status) = fs::read_to_string("/proc/self/status") else {
        return true;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("Umask:"))
        .and_then(|text| u32::from_str_radix(text.trim(), 8).ok())
        .is_none_or(|umask| umask & OBJECT_MODE != 0)
}

/// The kind of a file that is not an object, for errors.
fn kind_name(file_type: FileType) -> &'static str {
    match file_type {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "a file of unknown type",
    }
}

impl ObjectDir {
    /// Open the digest store `path` (creating it and its parents if needed); staged files go
    /// into `path` itself, as `mkcomposefs --digest-store` does.
    pub fn create(path: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(path).map_err(StoreError::io("create directory", path))?;
        Self::open(path)
    }

    /// Open an existing object directory (staged files go into it).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(ObjectDir {
            objects: open_dir(path)?,
            staging: None,
            path: path.to_owned(),
            staging_path: path.to_owned(),
            seal: false,
            chmod_needed: OnceLock::new(),
        })
    }

    /// The repository's object directory: staged files in `staging` (same file system),
    /// sealed with fs-verity before they are named when `verity` is kernel.
    pub(crate) fn open_with_staging(
        path: &Path,
        staging: &Path,
        verity: VerityMode,
    ) -> Result<Self, StoreError> {
        Ok(ObjectDir {
            objects: open_dir(path)?,
            staging: Some(open_dir(staging)?),
            path: path.to_owned(),
            staging_path: staging.to_owned(),
            seal: verity == VerityMode::Kernel,
            chmod_needed: OnceLock::new(),
        })
    }

    /// The directory as opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the object `digest` lives (whether or not it is present).
    pub fn object_path(&self, digest: &FsVeritySha256) -> PathBuf {
        self.path.join(digest.object_path())
    }

    fn staging_fd(&self) -> BorrowedFd<'_> {
        self.staging.as_ref().unwrap_or(&self.objects).as_fd()
    }

    /// Whether the object `digest` is present (a regular file under its name).
    pub fn contains(&self, digest: &FsVeritySha256) -> bool {
        self.is_regular(&digest.object_path())
    }

    fn is_regular(&self, object: &str) -> bool {
        rustix::fs::statat(&self.objects, object, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
    }

    fn create_temp(&self) -> Result<(String, File), StoreError> {
        loop {
            let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
            let name = format!("{TEMP_PREFIX}{}-{n}", std::process::id());
            match rustix::fs::openat(
                self.staging_fd(),
                name.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                Mode::from_raw_mode(OBJECT_MODE),
            ) {
                Ok(fd) => return Ok((name, File::from(fd))),
                // Left over by an earlier process with our pid: the next number.
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => {
                    return Err(StoreError::io("create staged file in", &self.staging_path)(
                        e.into(),
                    ))
                }
            }
        }
    }

    /// Stage a new temporary file filled by `fill`, with the given digest and size once done.
    fn stage_with(
        &self,
        fill: impl FnOnce(&mut File, &Path) -> Result<(FsVeritySha256, u64), StoreError>,
    ) -> Result<Staged<'_>, StoreError> {
        let (temp, mut file) = self.create_temp()?;
        let mut staged = Staged {
            dir: self,
            temp: Some(temp),
            digest: FsVeritySha256([0; 32]),
            size: 0,
        };
        let temp_path = self
            .staging_path
            .join(staged.temp.as_deref().unwrap_or_default());
        (staged.digest, staged.size) = fill(&mut file, &temp_path)?;
        if *self.chmod_needed.get_or_init(umask_strips_object_mode) {
            rustix::fs::fchmod(&file, Mode::from_raw_mode(OBJECT_MODE))
                .map_err(|e| StoreError::io("chmod", &temp_path)(e.into()))?;
        }
        Ok(staged)
    }

    /// Copy everything `source` yields into a staged file while computing its fs-verity
    /// digest (one read of the source; a per-thread copy buffer). `source_name` names it in
    /// errors.
    pub fn stage(
        &self,
        mut source: impl Read,
        source_name: &Path,
    ) -> Result<Staged<'_>, StoreError> {
        self.stage_with(|file, temp| copy_hashing(&mut source, file, source_name, temp))
    }

    /// [`stage`](Self::stage) through the caller's copy buffer (any non-zero size).
    pub fn stage_with_buffer(
        &self,
        mut source: impl Read,
        source_name: &Path,
        buf: &mut [u8],
    ) -> Result<Staged<'_>, StoreError> {
        self.stage_with(|file, temp| copy_hashing_with(&mut source, file, source_name, temp, buf))
    }

    /// Stage content already in memory whose digest the caller computed from these bytes.
    pub fn stage_hashed_bytes(
        &self,
        digest: FsVeritySha256,
        data: &[u8],
    ) -> Result<Staged<'_>, StoreError> {
        self.stage_with(|file, temp| {
            file.write_all(data)
                .map_err(StoreError::io("write", temp))?;
            Ok((digest, data.len() as u64))
        })
    }

    /// Make staged objects durable and visible (see the module doc for the order of steps).
    /// On an error, the staged files not yet renamed are removed.
    pub fn commit(&self, staged: Vec<Staged<'_>>) -> Result<Committed, StoreError> {
        let mut committed = Committed::default();
        if staged.iter().all(|s| s.temp.is_none()) {
            return Ok(committed);
        }
        self.syncfs()?;
        for mut s in staged {
            let Some(temp) = s.temp.clone() else { continue };
            if self.seal {
                self.seal_staged(&temp, &s.digest)?;
            }
            if self.rename_into_place(&temp, &s.digest)? {
                committed.added += 1;
                committed.bytes_added += s.size;
                s.temp = None;
            } else {
                committed.raced.push(s.digest);
                // Dropping `s` removes our copy.
            }
        }
        self.syncfs()?;
        Ok(committed)
    }

    fn syncfs(&self) -> Result<(), StoreError> {
        rustix::fs::syncfs(&self.objects)
            .map_err(|e| StoreError::io("syncfs", &self.path)(e.into()))
    }

    fn seal_staged(&self, temp: &str, digest: &FsVeritySha256) -> Result<(), StoreError> {
        let path = self.staging_path.join(temp);
        let fd = rustix::fs::openat(
            self.staging_fd(),
            temp,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| StoreError::io("open for fs-verity", &path)(e.into()))?;
        verity::seal_file(&File::from(fd), &path, digest)
    }

    /// Rename the staged `temp` to the object path of `digest` unless a regular file is there
    /// already. Ok(false): it was (another writer's copy of the same content).
    fn rename_into_place(&self, temp: &str, digest: &FsVeritySha256) -> Result<bool, StoreError> {
        let object = digest.object_path();
        let rename_err = |e: rustix::io::Errno| {
            StoreError::io("rename into place", &self.path.join(&object))(e.into())
        };
        let staging = self.staging_fd();
        let mut attempts = 0;
        loop {
            attempts += 1;
            match rustix::fs::renameat_with(
                staging,
                temp,
                &self.objects,
                object.as_str(),
                RenameFlags::NOREPLACE,
            ) {
                Ok(()) => return Ok(true),
                Err(rustix::io::Errno::NOENT) if attempts < RENAME_ATTEMPTS => {
                    // The fan-out directory is missing: create it, then rename again.
                    let fanout = &object[..2];
                    match rustix::fs::mkdirat(
                        &self.objects,
                        fanout,
                        Mode::from_raw_mode(FANOUT_DIR_MODE),
                    ) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => {
                            return Err(
                                StoreError::io("create directory", &self.path.join(fanout))(
                                    e.into(),
                                ),
                            )
                        }
                    }
                }
                // EEXIST: a regular file is another writer's object; anything else (a FIFO, a
                // symlink) is no object, replaced atomically by ours. EINVAL/ENOSYS: no
                // RENAME_NOREPLACE on this file system: the same check, then a plain rename.
                Err(
                    rustix::io::Errno::EXIST | rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS,
                ) => {
                    if self.is_regular(&object) {
                        return Ok(false);
                    }
                    return rustix::fs::renameat(staging, temp, &self.objects, object.as_str())
                        .map(|()| true)
                        .map_err(rename_err);
                }
                Err(e) => return Err(rename_err(e)),
            }
        }
    }

    /// Open the object `digest` for reading: `None` when absent, an error when something
    /// other than a regular file is in its place (never blocking on it).
    pub fn open_object(&self, digest: &FsVeritySha256) -> Result<Option<File>, StoreError> {
        self.open_beneath(&digest.object_path())
    }

    /// Open the regular file at `relative` (e.g. an overlay redirect, leading `/` ignored)
    /// beneath the directory, following no symlink: `None` when absent.
    pub fn open_beneath(&self, relative: &str) -> Result<Option<File>, StoreError> {
        let relative = relative.trim_start_matches('/');
        let path = || self.path.join(relative);
        let opened = rustix::fs::openat2(
            &self.objects,
            relative,
            // O_NONBLOCK: a FIFO in place of an object opens at once (and is then refused by
            // the type check below) instead of waiting for a writer.
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        );
        let fd = match opened {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(rustix::io::Errno::LOOP) => {
                return Err(StoreError::NotAnObject {
                    path: path(),
                    kind: kind_name(FileType::Symlink),
                })
            }
            Err(e) => return Err(StoreError::io("open object", &path())(e.into())),
        };
        let stat = rustix::fs::fstat(&fd).map_err(|e| StoreError::io("stat", &path())(e.into()))?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => Ok(Some(File::from(fd))),
            other => Err(StoreError::NotAnObject {
                path: path(),
                kind: kind_name(other),
            }),
        }
    }

    /// Every object in the directory: (digest, path), sorted. Entries whose names are not
    /// digests are returned separately (fsck reports them).
    pub fn scan(&self) -> Result<ObjectScan, StoreError> {
        let root = &self.path;
        let mut objects = Vec::new();
        let mut strays = Vec::new();
        for prefix in fs::read_dir(root).map_err(StoreError::io("list", root))? {
            let prefix = prefix.map_err(StoreError::io("list", root))?;
            let prefix_path = prefix.path();
            let prefix_name = prefix.file_name();
            let prefix_name = prefix_name.to_string_lossy();
            if !prefix_path.is_dir() {
                // Staged files of a digest store are not strays: in flight or gc's.
                if !prefix_name.starts_with(TEMP_PREFIX) || self.staging.is_some() {
                    strays.push(prefix_path);
                }
                continue;
            }
            for entry in fs::read_dir(&prefix_path).map_err(StoreError::io("list", &prefix_path))? {
                let entry = entry.map_err(StoreError::io("list", &prefix_path))?;
                let name = entry.file_name();
                let text = format!("{prefix_name}{}", name.to_string_lossy());
                match FsVeritySha256::from_hex(&text) {
                    Ok(digest) if text == digest.to_hex() && prefix_name.len() == 2 => {
                        objects.push((digest, entry.path()))
                    }
                    _ => strays.push(entry.path()),
                }
            }
        }
        objects.sort();
        Ok((objects, strays))
    }
}

impl AsFd for ObjectDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.objects.as_fd()
    }
}

/// (objects as (digest, path), stray entries) found in an object directory.
pub type ObjectScan = (Vec<(FsVeritySha256, PathBuf)>, Vec<PathBuf>);

/// What [`PendingObjects::offer`] did with a staged file.
#[derive(Debug, PartialEq, Eq)]
pub enum Offered<T> {
    /// Kept for the next commit; the set now holds this many files and bytes.
    Kept {
        /// Staged files pending.
        objects: usize,
        /// Their bytes.
        bytes: u64,
    },
    /// The same digest is pending already: the copy was removed, the caller's value returned.
    Pending(T),
    /// The object is stored already: the copy was removed, the caller's value returned.
    Stored(T),
}

/// Staged files awaiting one commit, at most one per digest, each with a caller's value `T`
/// (the repository's content index entry). Shared by many staging threads.
#[derive(Debug)]
pub struct PendingObjects<'d, T = ()> {
    dir: &'d ObjectDir,
    inner: Mutex<PendingInner<'d, T>>,
}

#[derive(Debug)]
struct PendingInner<'d, T> {
    staged: Vec<(Staged<'d>, T)>,
    digests: HashSet<FsVeritySha256>,
    bytes: u64,
}

impl<T> Default for PendingInner<'_, T> {
    fn default() -> Self {
        PendingInner {
            staged: Vec::new(),
            digests: HashSet::new(),
            bytes: 0,
        }
    }
}

impl<'d, T> PendingObjects<'d, T> {
    /// An empty set for objects of `dir`.
    pub fn new(dir: &'d ObjectDir) -> Self {
        PendingObjects {
            dir,
            inner: Mutex::new(PendingInner::default()),
        }
    }

    /// The object directory.
    pub fn dir(&self) -> &'d ObjectDir {
        self.dir
    }

    fn lock(&self) -> MutexGuard<'_, PendingInner<'d, T>> {
        // A panic in another stager cannot leave the set inconsistent (each update is whole).
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `digest` is pending here or stored.
    pub fn contains(&self, digest: &FsVeritySha256) -> bool {
        self.lock().digests.contains(digest) || self.dir.contains(digest)
    }

    /// Keep `staged` for the commit unless its digest is pending or stored already; then its
    /// file is removed at once (see [`Offered`]).
    pub fn offer(&self, staged: Staged<'d>, value: T) -> Offered<T> {
        let mut inner = self.lock();
        if inner.digests.contains(&staged.digest) {
            drop(inner);
            drop(staged);
            return Offered::Pending(value);
        }
        if self.dir.contains(&staged.digest) {
            drop(inner);
            drop(staged);
            return Offered::Stored(value);
        }
        inner.digests.insert(staged.digest);
        inner.bytes += staged.size;
        inner.staged.push((staged, value));
        Offered::Kept {
            objects: inner.staged.len(),
            bytes: inner.bytes,
        }
    }

    /// Take everything pending (the set is empty afterwards).
    pub fn take(&self) -> Vec<(Staged<'d>, T)> {
        std::mem::take(&mut *self.lock()).staged
    }

    /// Take everything pending and commit it.
    pub fn commit(&self) -> Result<Committed, StoreError> {
        let staged = self.take().into_iter().map(|(s, _)| s).collect();
        self.dir.commit(staged)
    }
}

/// Copy `reader` to `out` (`io::sink()` to only hash), computing the fs-verity digest through
/// a per-thread buffer; returns (digest, bytes). `source` and `dest` name the two in errors.
pub fn copy_hashing(
    reader: &mut impl Read,
    out: &mut impl Write,
    source: &Path,
    dest: &Path,
) -> Result<(FsVeritySha256, u64), StoreError> {
    COPY_BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.resize(COPY_BUFFER_LEN, 0);
            copy_hashing_with(reader, out, source, dest, &mut buf)
        }
        // Only if a reader itself copies on this thread: a buffer of its own.
        Err(_) => copy_hashing_with(reader, out, source, dest, &mut vec![0; COPY_BUFFER_LEN]),
    })
}

thread_local! {
    /// The copy buffer of [`copy_hashing`], one per thread and kept: a fresh 256 KiB buffer per
    /// object is an mmap, 64 page faults and an munmap for every file (most are small).
    static COPY_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn copy_hashing_with(
    reader: &mut impl Read,
    out: &mut impl Write,
    source: &Path,
    dest: &Path,
    buf: &mut [u8],
) -> Result<(FsVeritySha256, u64), StoreError> {
    let mut hasher = FsVerityHasher::<Sha256>::new();
    let mut size = 0u64;
    loop {
        let n = match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StoreError::io("read", source)(e)),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(StoreError::io("write", dest))?;
        size += n as u64;
    }
    Ok((hasher.finish(), size))
}
