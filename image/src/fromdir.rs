//! Building a [`Tree`] from a directory on disk, as `mkcomposefs SOURCEDIR IMAGE` does.
//!
//! Two phases:
//! 1. **scan** (all cores, rayon, walk and hashing overlapped): each directory is listed
//!    through its own fd, its names sorted bytewise, and its entries processed in parallel with
//!    every other directory's: a subdirectory is opened with `openat(dir, name, O_DIRECTORY |
//!    O_NOFOLLOW)` and scanned in turn; a regular file is opened the same way (`O_NOFOLLOW |
//!    O_NONBLOCK`, `O_NOATIME` when permitted), `fstat`ed, its xattrs read from the fd, and its
//!    content read once through a per-thread buffer: 1–64 byte files become inline content,
//!    larger ones get their fs-verity digest and, with a digest store, are copied into it while
//!    being hashed. Every open names one component relative to an fd already checked to be a
//!    directory, with `O_NOFOLLOW`, so no symlink is ever followed and a concurrent rename cannot
//!    redirect the scan outside the tree; metadata comes from `fstat` of the fd the content is
//!    read from, so the two cannot disagree, and a size change while reading is an error.
//!    Symlinks, devices, fifos and sockets (and names whose `d_type` is unknown) are
//!    `fstatat(…, AT_SYMLINK_NOFOLLOW)`ed and their xattrs read through the directory fd's
//!    `/proc/self/fd` link.
//! 2. **assembly** (one thread, no copying): the scanned directories are put into the tree
//!    breadth-first, names moved in, in sorted order, so the first name of a hard-linked file
//!    met there is its primary name in image order, as upstream's breadth-first walk gives.
//!
//! Hot-path costs per regular file: open, fstat, one `flistxattr` (no allocation when there
//! are no xattrs), reads, close; the read buffer and the fs-verity hasher are per thread and
//! reused. Peak memory is the scanned tree plus one buffer per thread.
//!
//! What is kept, per upstream libcomposefs (`lcfs_build` / `lcfs_load_node_from_file`):
//!
//! | item | kept as |
//! |---|---|
//! | mode, uid, gid, mtime (sec + nsec) | from `lstat`; mtime 0 with `use_epoch` |
//! | rdev | raw `st_rdev` for char/block devices (0 otherwise) |
//! | nlink | 1 for every non-directory (upstream never detects hard links: each path is its own inode); with `preserve_hardlinks`, one inode per (dev, ino) with nlink = its names in the tree; directories 2 + subdirectories |
//! | xattrs | every name `llistxattr` returns, with its value, no namespace skipped (`user.*`, `trusted.*`, `security.*` incl. `security.selinux`, `system.posix_acl_access/default`); none with `skip_xattrs`; only `user.*` with `user_xattrs_only` |
//! | regular file content | size 0: external, no digest, no backing; 1–64 bytes: inline; more: external with fs-verity digest and backing path `xx/yyyy…` |
//! | symlink target | `readlinkat` |
//! | devices | kept, unless `skip_devices` (then char and block devices are left out) |
//! | fifos, sockets | kept |

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rayon::prelude::*;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::fsverity::{FsVerityHasher, Sha256};
use crate::store::{ObjectDir, PendingObjects, StoreError};
use crate::tree::{
    Content, FileData, Inode, InodeId, Stat, Tree, TreeError, Xattr, S_IFBLK, S_IFCHR, S_IFDIR,
    S_IFLNK, S_IFMT, S_IFREG,
};

/// Regular files of 1..=this many bytes are stored inside the image (upstream's
/// `LCFS_BUILD_INLINE_FILE_SIZE_LIMIT`): smaller than an object path, so an object would cost more.
pub const INLINE_MAX_SIZE: u64 = 64;

/// Read buffer per thread: large enough that a typical file is one `read` (amortising the
/// syscall), small enough that what was just copied is still in the core's L2 cache when it is
/// hashed, and memory stays bounded (threads × this).
const READ_BUF_SIZE: usize = 256 * 1024;

/// Bytes of xattr names read without asking the size first: the names of any common file fit,
/// and no allocation is needed when a file has none.
const XATTR_LIST_PROBE: usize = 1024;

/// How to build the tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Hard-linked files (same dev and inode) become one inode with extra names, instead of
    /// one inode per path with nlink 1 (upstream mkcomposefs behaviour).
    pub preserve_hardlinks: bool,
    /// Hashing threads; `None` = one per core.
    pub threads: Option<usize>,
    /// Copy every external file's content into this object directory (implies digests).
    pub digest_store: Option<PathBuf>,
    /// Compute fs-verity digests of external files (mkcomposefs always does).
    pub compute_digests: bool,
    /// Leave out all xattrs (`mkcomposefs --skip-xattrs`).
    pub skip_xattrs: bool,
    /// Keep only `user.*` xattrs (`mkcomposefs --user-xattrs`).
    pub user_xattrs_only: bool,
    /// Leave out char and block devices (`mkcomposefs --skip-devices`).
    pub skip_devices: bool,
    /// Store every mtime as 0 (`mkcomposefs --use-epoch`).
    pub use_epoch: bool,
}

/// A directory that could not be turned into a tree.
#[derive(Debug, thiserror::Error)]
pub enum FromDirError {
    /// A system call on a file of the source directory failed.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The file, as the root joined with its path below it.
        path: PathBuf,
        /// The operation (`"open"`, `"read"`, `"listxattr"`, ...).
        op: &'static str,
        /// The error the kernel returned.
        source: io::Error,
    },
    /// A file changed between two looks at it (its type, size or identity), so the tree would
    /// not describe one state of the directory.
    #[error("{path}: changed while the tree was being read ({what})")]
    Changed {
        /// The file that changed.
        path: PathBuf,
        /// What differed between the two looks.
        what: &'static str,
    },
    /// The file cannot be added to the tree (bad name, too many inodes, ...).
    #[error("{path}: {source}")]
    Tree {
        /// The file being added.
        path: PathBuf,
        /// Why the tree refused it.
        source: TreeError,
    },
    /// Copying content into the digest store (`--digest-store`) failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The hashing thread pool could not start, or one of its threads panicked.
    #[error("starting the hashing threads: {0}")]
    Threads(String),
    /// Both `skip_xattrs` and `user_xattrs_only` were asked for.
    #[error("--skip-xattrs and --user-xattrs conflict")]
    ConflictingXattrOptions,
}

/// A path below the root as a chain of names, built on the stack as the scan descends and
/// turned into a `PathBuf` only for an error message.
#[derive(Clone, Copy)]
struct RelPath<'p> {
    parent: Option<&'p RelPath<'p>>,
    name: &'p [u8],
}

impl<'p> RelPath<'p> {
    const ROOT: RelPath<'static> = RelPath {
        parent: None,
        name: b"",
    };

    fn child(&'p self, name: &'p [u8]) -> RelPath<'p> {
        RelPath {
            parent: Some(self),
            name,
        }
    }

    fn under(&self, root: &Path) -> PathBuf {
        let mut names = Vec::new();
        let mut at = Some(self);
        while let Some(p) = at {
            names.push(p.name);
            at = p.parent;
        }
        let mut path = root.to_owned();
        for name in names.into_iter().rev().filter(|n| !n.is_empty()) {
            path.push(OsStr::from_bytes(name));
        }
        path
    }
}

/// One scanned directory entry, waiting to be put into the tree.
struct Scanned {
    name: Box<[u8]>,
    inode: Inode,
    /// A directory's scanned entries, sorted by name.
    children: Vec<Scanned>,
    /// (dev, ino) of a non-directory with more than one link, for `preserve_hardlinks`.
    link_key: Option<(u64, u64)>,
}

/// Per-thread scratch space, reused for every file the thread reads.
struct Scratch {
    buf: Vec<u8>,
    hasher: FsVerityHasher<Sha256>,
}

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

/// Everything the scan needs, shared by the worker threads.
struct Scan<'a> {
    root: &'a Path,
    opts: &'a BuildOptions,
    store: Option<&'a ObjectDir>,
    /// Read external files (for digests or the store).
    read_external: bool,
    /// Objects staged in the store (one per digest), committed after the scan.
    staged: Option<PendingObjects<'a>>,
    /// Cleared once `O_NOATIME` was refused (not the file's owner): not tried again.
    noatime: AtomicBool,
    /// Entries scanned so far, to size the tree's inode arena once.
    entries: AtomicUsize,
}

#[allow(clippy::unnecessary_cast)] // field widths differ between architectures
fn to_stat(st: &rustix::fs::Stat, opts: &BuildOptions) -> Stat {
    let mode = st.st_mode as u32;
    let is_device = matches!(mode & S_IFMT, S_IFCHR | S_IFBLK);
    Stat {
        mode,
        nlink: 1,
        uid: st.st_uid as u32,
        gid: st.st_gid as u32,
        rdev: if is_device { st.st_rdev as u64 } else { 0 },
        mtime_sec: if opts.use_epoch {
            0
        } else {
            st.st_mtime as i64
        },
        mtime_nsec: if opts.use_epoch {
            0
        } else {
            st.st_mtime_nsec as u32
        },
    }
}

#[allow(clippy::unnecessary_cast)]
fn dev_ino(st: &rustix::fs::Stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

#[allow(clippy::unnecessary_cast)]
fn link_key(st: &rustix::fs::Stat) -> Option<(u64, u64)> {
    let file_type = st.st_mode as u32 & S_IFMT;
    (file_type != S_IFDIR && st.st_nlink as u64 > 1).then(|| dev_ino(st))
}

/// Which xattr names to keep.
fn keep_xattr(name: &[u8], opts: &BuildOptions) -> bool {
    !opts.user_xattrs_only || name.starts_with(b"user.")
}

/// Split a NUL-separated xattr name list.
fn split_names(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    list.split(|&b| b == 0).filter(|n| !n.is_empty())
}

/// Read a size-queried buffer, retrying when it grew between the query and the read.
fn read_sized(
    mut query: impl FnMut() -> rustix::io::Result<usize>,
    mut read: impl FnMut(&mut [u8]) -> rustix::io::Result<usize>,
) -> rustix::io::Result<Vec<u8>> {
    loop {
        let size = query()?;
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; size];
        match read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(rustix::io::Errno::RANGE) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Where a file's xattrs are read from.
enum XattrSource<'a> {
    /// An open fd of the file itself.
    Fd(BorrowedFd<'a>),
    /// A path that names the file without following it (`/proc/self/fd/DIR/NAME`).
    Path(&'a Path),
}

impl XattrSource<'_> {
    fn list(&self, buf: &mut [u8]) -> rustix::io::Result<usize> {
        match self {
            XattrSource::Fd(fd) => rustix::fs::flistxattr(fd, buf),
            XattrSource::Path(p) => rustix::fs::llistxattr(*p, buf),
        }
    }

    fn list_query(&self) -> rustix::io::Result<usize> {
        match self {
            XattrSource::Fd(fd) => rustix::fs::flistxattr_query(fd),
            XattrSource::Path(p) => rustix::fs::llistxattr_query(*p),
        }
    }

    fn get(&self, key: &OsStr, buf: &mut [u8]) -> rustix::io::Result<usize> {
        match self {
            XattrSource::Fd(fd) => rustix::fs::fgetxattr(fd, key, buf),
            XattrSource::Path(p) => rustix::fs::lgetxattr(*p, key, buf),
        }
    }

    fn get_query(&self, key: &OsStr) -> rustix::io::Result<usize> {
        match self {
            XattrSource::Fd(fd) => rustix::fs::fgetxattr_query(fd, key),
            XattrSource::Path(p) => rustix::fs::lgetxattr_query(*p, key),
        }
    }
}

/// `openat(dir, name)` of one component, never following a symlink.
fn open_at(dir: BorrowedFd<'_>, name: &[u8], flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
    rustix::fs::openat(dir, OsStr::from_bytes(name), flags, Mode::empty())
}

/// What a name turned out to be when its `d_type` was not trusted.
enum Probe {
    Directory,
    Regular,
    Other(rustix::fs::Stat),
}

impl<'a> Scan<'a> {
    fn io(&self, at: &RelPath<'_>, op: &'static str, e: impl Into<io::Error>) -> FromDirError {
        FromDirError::Io {
            path: at.under(self.root),
            op,
            source: e.into(),
        }
    }

    fn changed(&self, at: &RelPath<'_>, what: &'static str) -> FromDirError {
        FromDirError::Changed {
            path: at.under(self.root),
            what,
        }
    }

    /// The kept xattrs of a file, sorted.
    fn xattrs(&self, src: XattrSource<'_>, at: &RelPath<'_>) -> Result<Vec<Xattr>, FromDirError> {
        if self.opts.skip_xattrs {
            return Ok(Vec::new());
        }
        let mut probe = [0u8; XATTR_LIST_PROBE];
        let list_err = |e| self.io(at, "listing xattrs", e);
        let heap;
        let list = match src.list(&mut probe) {
            Ok(0) => return Ok(Vec::new()),
            Ok(n) => &probe[..n],
            Err(rustix::io::Errno::RANGE) => {
                heap = read_sized(|| src.list_query(), |buf| src.list(buf)).map_err(list_err)?;
                &heap[..]
            }
            Err(e) => return Err(list_err(e)),
        };
        let mut xattrs = Vec::new();
        for key in split_names(list).filter(|k| keep_xattr(k, self.opts)) {
            let key_os = OsStr::from_bytes(key);
            match read_sized(|| src.get_query(key_os), |buf| src.get(key_os, buf)) {
                Ok(value) => xattrs.push(Xattr {
                    key: key.into(),
                    value: value.into(),
                }),
                // Removed between list and get: it is not there any more.
                Err(rustix::io::Errno::NODATA) => {}
                Err(e) => return Err(self.io(at, "reading xattr", e)),
            }
        }
        xattrs.sort();
        Ok(xattrs)
    }

    /// Scan the directory open as `fd` (already checked to be a directory).
    fn scan_dir(
        &self,
        fd: OwnedFd,
        st: &rustix::fs::Stat,
        at: &RelPath<'_>,
    ) -> Result<(Inode, Vec<Scanned>), FromDirError> {
        let xattrs = self.xattrs(XattrSource::Fd(fd.as_fd()), at)?;
        let mut names = Vec::new();
        let mut dir = rustix::fs::Dir::new(fd).map_err(|e| self.io(at, "reading directory", e))?;
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|e| self.io(at, "reading directory", e))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push((Box::<[u8]>::from(name), entry.file_type()));
            }
        }
        names.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // A directory changing while it is listed can show a renamed name twice.
        if names.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(self.changed(at, "a name listed twice"));
        }
        self.entries.fetch_add(names.len(), Ordering::Relaxed);
        let dir_fd = dir.fd().map_err(|e| self.io(at, "reading directory", e))?;
        let children: Vec<Scanned> = names
            .into_par_iter()
            .map(|(name, file_type)| self.scan_entry(dir_fd, name, file_type, at))
            .filter_map(Result::transpose)
            .collect::<Result<_, _>>()?;
        let inode = Inode {
            stat: to_stat(st, self.opts),
            xattrs,
            content: Content::Directory(Vec::new()),
        };
        Ok((inode, children))
    }

    /// Scan one directory entry; `None` when it is left out (`skip_devices`).
    fn scan_entry(
        &self,
        dir: BorrowedFd<'_>,
        name: Box<[u8]>,
        file_type: FileType,
        parent: &RelPath<'_>,
    ) -> Result<Option<Scanned>, FromDirError> {
        let at = parent.child(&name);
        let probe = match file_type {
            FileType::Directory => Probe::Directory,
            FileType::RegularFile => Probe::Regular,
            _ => self.probe(dir, &name, &at)?,
        };
        let scanned = match probe {
            Probe::Directory => self.scan_subdir(dir, &name, &at)?,
            Probe::Regular => self.scan_file(dir, &name, &at)?,
            Probe::Other(st) => self.scan_other(dir, &name, &st, &at)?,
        };
        Ok(scanned.map(|(inode, children, link_key)| Scanned {
            name,
            inode,
            children,
            link_key,
        }))
    }

    /// `fstatat` a name whose type the directory listing did not tell (or that changed).
    fn probe(
        &self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        at: &RelPath<'_>,
    ) -> Result<Probe, FromDirError> {
        let st = rustix::fs::statat(dir, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io(at, "stat", e))?;
        Ok(match st.st_mode as u32 & S_IFMT {
            S_IFDIR => Probe::Directory,
            S_IFREG => Probe::Regular,
            _ => Probe::Other(st),
        })
    }

    #[allow(clippy::type_complexity)]
    fn scan_subdir(
        &self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        at: &RelPath<'_>,
    ) -> Result<Option<(Inode, Vec<Scanned>, Option<(u64, u64)>)>, FromDirError> {
        let fd = match open_at(dir, name, OFlags::RDONLY | OFlags::DIRECTORY) {
            Ok(fd) => fd,
            // Replaced by something else since it was listed: take it as what it is now.
            Err(rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP) => {
                return match self.probe(dir, name, at)? {
                    Probe::Other(st) => self.scan_other(dir, name, &st, at),
                    _ => Err(self.changed(at, "replaced while being opened")),
                };
            }
            Err(e) => return Err(self.io(at, "opening directory", e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| self.io(at, "stat", e))?;
        let (inode, children) = self.scan_dir(fd, &st, at)?;
        Ok(Some((inode, children, None)))
    }

    /// Open a regular file for reading, with `O_NOATIME` while that is permitted.
    fn open_file(&self, dir: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<OwnedFd> {
        // O_NONBLOCK: if the file was replaced by a fifo, opening must not hang (fstat catches it).
        let flags = OFlags::RDONLY | OFlags::NONBLOCK;
        if self.noatime.load(Ordering::Relaxed) {
            match open_at(dir, name, flags | OFlags::NOATIME) {
                Err(rustix::io::Errno::PERM) => self.noatime.store(false, Ordering::Relaxed),
                other => return other,
            }
        }
        open_at(dir, name, flags)
    }

    #[allow(clippy::type_complexity)]
    fn scan_file(
        &self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        at: &RelPath<'_>,
    ) -> Result<Option<(Inode, Vec<Scanned>, Option<(u64, u64)>)>, FromDirError> {
        let fd = match self.open_file(dir, name) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::LOOP) => {
                return match self.probe(dir, name, at)? {
                    Probe::Other(st) => self.scan_other(dir, name, &st, at),
                    _ => Err(self.changed(at, "replaced while being opened")),
                };
            }
            Err(e) => return Err(self.io(at, "opening", e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| self.io(at, "stat", e))?;
        if st.st_mode as u32 & S_IFMT != S_IFREG {
            // Replaced by a directory, fifo or device since it was listed.
            return Err(self.changed(at, "replaced while being opened"));
        }
        let xattrs = self.xattrs(XattrSource::Fd(fd.as_fd()), at)?;
        #[allow(clippy::unnecessary_cast)]
        let size = st.st_size as u64;
        let data = self.read_content(fd, size, at)?;
        let inode = Inode {
            stat: to_stat(&st, self.opts),
            xattrs,
            content: Content::Regular(data),
        };
        Ok(Some((inode, Vec::new(), link_key(&st))))
    }

    /// A symlink, device, fifo or socket.
    #[allow(clippy::type_complexity)]
    fn scan_other(
        &self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        st: &rustix::fs::Stat,
        at: &RelPath<'_>,
    ) -> Result<Option<(Inode, Vec<Scanned>, Option<(u64, u64)>)>, FromDirError> {
        let stat = to_stat(st, self.opts);
        let file_type = stat.mode & S_IFMT;
        if self.opts.skip_devices && matches!(file_type, S_IFCHR | S_IFBLK) {
            return Ok(None);
        }
        let xattrs = if self.opts.skip_xattrs {
            Vec::new()
        } else {
            let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
            path.extend_from_slice(name);
            self.xattrs(XattrSource::Path(Path::new(OsStr::from_bytes(&path))), at)?
        };
        let content = if file_type == S_IFLNK {
            let target = rustix::fs::readlinkat(dir, OsStr::from_bytes(name), Vec::new())
                .map_err(|e| self.io(at, "reading symlink", e))?;
            Content::Symlink(target.into_bytes().into())
        } else {
            Content::Special { size: 0 }
        };
        let inode = Inode {
            stat,
            xattrs,
            content,
        };
        Ok(Some((inode, Vec::new(), link_key(st))))
    }

    /// Read a regular file's content as the image keeps it (see the module doc).
    fn read_content(
        &self,
        fd: OwnedFd,
        size: u64,
        at: &RelPath<'_>,
    ) -> Result<FileData, FromDirError> {
        let read_err = |e: io::Error| self.io(at, "reading", e);
        if size == 0 || (size > INLINE_MAX_SIZE && !self.read_external) {
            return Ok(FileData::External {
                size,
                digest: None,
                backing: None,
            });
        }
        if size <= INLINE_MAX_SIZE {
            // One byte more than expected tells a grown file from an unchanged one.
            let mut content = [0u8; INLINE_MAX_SIZE as usize + 1];
            let n = read_full(&fd, &mut content).map_err(read_err)?;
            if n as u64 != size {
                return Err(self.changed(at, "size changed while reading"));
            }
            return Ok(FileData::Inline(content[..n].into()));
        }
        let (digest, read_size) = SCRATCH.with(|cell| {
            let mut cell = cell.borrow_mut();
            let scratch = cell.get_or_insert_with(|| Scratch {
                buf: vec![0u8; READ_BUF_SIZE],
                hasher: FsVerityHasher::new(),
            });
            match self.store {
                Some(store) => {
                    let name = at.under(self.root);
                    let staged = store.stage_with_buffer(
                        std::fs::File::from(fd),
                        &name,
                        &mut scratch.buf,
                    )?;
                    let result = (staged.digest, staged.size);
                    if let Some(pending) = &self.staged {
                        pending.offer(staged, ());
                    }
                    Ok::<_, FromDirError>(result)
                }
                None => {
                    let hasher = &mut scratch.hasher;
                    hasher.reset();
                    let mut read_size = 0u64;
                    loop {
                        let n = match rustix::io::read(&fd, &mut scratch.buf) {
                            Ok(0) => break,
                            Ok(n) => n,
                            Err(rustix::io::Errno::INTR) => continue,
                            Err(e) => return Err(read_err(e.into())),
                        };
                        hasher.update(&scratch.buf[..n]);
                        read_size += n as u64;
                    }
                    Ok((hasher.finish_reset(), read_size))
                }
            }
        })?;
        if read_size != size {
            return Err(self.changed(at, "size changed while reading"));
        }
        let backing = digest.object_path().into_bytes().into_boxed_slice();
        Ok(FileData::External {
            size,
            digest: Some(digest),
            backing: Some(backing),
        })
    }
}

/// Read until `buf` is full or the end of the file; the number of bytes read.
fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::io::read(fd, &mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(filled)
}

/// Put the scanned tree into `tree` breadth-first (see the module doc).
fn assemble(
    tree: &mut Tree,
    root_children: Vec<Scanned>,
    opts: &BuildOptions,
    root: &Path,
) -> Result<(), FromDirError> {
    // (dev, ino) → inode and its name count, for `preserve_hardlinks`.
    let mut links: HashMap<(u64, u64), (InodeId, u32)> = HashMap::new();
    let mut queue: VecDeque<(InodeId, Vec<Scanned>)> = VecDeque::new();
    queue.push_back((InodeId::ROOT, root_children));
    let tree_err = |source| FromDirError::Tree {
        path: root.to_owned(),
        source,
    };
    while let Some((dir_id, children)) = queue.pop_front() {
        let mut subdirs = 0u32;
        if let Content::Directory(entries) = &mut tree.inode_mut(dir_id).content {
            entries.reserve_exact(children.len());
        }
        for child in children {
            if opts.preserve_hardlinks {
                if let Some(key) = child.link_key {
                    if let Some((id, names)) = links.get_mut(&key) {
                        *names += 1;
                        tree.append_link(dir_id, child.name, *id)
                            .map_err(tree_err)?;
                        continue;
                    }
                }
            }
            let is_dir = matches!(child.inode.content, Content::Directory(_));
            let id = tree
                .append(dir_id, child.name, child.inode)
                .map_err(tree_err)?;
            if let (true, Some(key)) = (opts.preserve_hardlinks, child.link_key) {
                links.insert(key, (id, 1));
            }
            if is_dir {
                subdirs += 1;
                queue.push_back((id, child.children));
            }
        }
        tree.inode_mut(dir_id).stat.nlink = 2 + subdirs;
    }
    for (id, names) in links.values() {
        tree.inode_mut(*id).stat.nlink = *names;
    }
    Ok(())
}

/// Build the tree of the directory `root` (see the module doc for what is kept).
pub fn build_from_dir(root: &Path, opts: &BuildOptions) -> Result<Tree, FromDirError> {
    if opts.skip_xattrs && opts.user_xattrs_only {
        return Err(FromDirError::ConflictingXattrOptions);
    }
    let root_fd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| FromDirError::Io {
        path: root.to_owned(),
        op: "opening directory",
        source: e.into(),
    })?;
    let root_st = rustix::fs::fstat(&root_fd).map_err(|e| FromDirError::Io {
        path: root.to_owned(),
        op: "stat",
        source: e.into(),
    })?;
    let store = opts
        .digest_store
        .as_deref()
        .map(ObjectDir::create)
        .transpose()?;
    let scan = Scan {
        root,
        opts,
        store: store.as_ref(),
        read_external: opts.compute_digests || store.is_some(),
        staged: store.as_ref().map(PendingObjects::new),
        noatime: AtomicBool::new(true),
        entries: AtomicUsize::new(0),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.unwrap_or(0))
        .build()
        .map_err(|e| FromDirError::Threads(e.to_string()))?;
    let (root_inode, children) =
        pool.install(|| scan.scan_dir(root_fd, &root_st, &RelPath::ROOT))?;
    if let Some(pending) = &scan.staged {
        pending.commit()?;
    }

    let mut tree = Tree::new(Stat::default());
    tree.inodes[0] = root_inode;
    tree.inodes
        .reserve_exact(scan.entries.load(Ordering::Relaxed));
    assemble(&mut tree, children, opts, root)?;
    Ok(tree)
}
