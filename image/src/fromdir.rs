//! Building a [`Tree`] from a directory on disk, as `mkcomposefs SOURCEDIR IMAGE` does.
//!
//! Two phases:
//! 1. **walk** (one thread): breadth-first from the root, children sorted bytewise, so the
//!    first name of a hard-linked file met here is its primary name in image order. Every entry
//!    is `fstatat(…, AT_SYMLINK_NOFOLLOW)`ed relative to its directory's fd; directories are
//!    re-opened beneath the root with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` and checked
//!    to be the same inode that was listed, so a concurrent rename cannot redirect the walk.
//! 2. **content** (all cores, rayon): every non-empty regular file is opened the same way,
//!    checked against its walk-time (dev, ino, size), and read once, streaming through a fixed
//!    buffer: 1–64 byte files become inline content, larger ones get their fs-verity digest and,
//!    with a digest store, are copied into it while being hashed.
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

use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};

use crate::digest_store::{DigestStore, Staged, StoreError};
use crate::fsverity::{FsVerityHasher, Sha256};
use crate::tree::{
    Content, FileData, Inode, InodeId, Stat, Tree, TreeError, Xattr, S_IFBLK, S_IFCHR, S_IFDIR,
    S_IFLNK, S_IFMT, S_IFREG,
};

/// Regular files of 1..=this many bytes are stored inside the image (upstream's
/// `LCFS_BUILD_INLINE_FILE_SIZE_LIMIT`): smaller than an object path, so an object would cost more.
pub const INLINE_MAX_SIZE: u64 = 64;

/// Read buffer per hashing thread: large enough to amortise syscalls, small enough to stay in
/// cache and keep memory bounded (threads × this).
const READ_BUF_SIZE: usize = 128 * 1024;

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
    #[error("{path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    #[error("{path}: changed while the tree was being read ({what})")]
    Changed { path: PathBuf, what: &'static str },
    #[error("{path}: {source}")]
    Tree { path: PathBuf, source: TreeError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("starting the hashing threads: {0}")]
    Threads(String),
    #[error("--skip-xattrs and --user-xattrs conflict")]
    ConflictingXattrOptions,
}

/// A regular file whose content is read in the parallel phase.
struct PendingFile {
    inode: InodeId,
    /// Path relative to the root.
    rel: Vec<u8>,
    dev: u64,
    ino: u64,
    size: u64,
}

/// The walk's state.
struct Walker<'a> {
    root: &'a Path,
    root_fd: OwnedFd,
    opts: &'a BuildOptions,
    tree: Tree,
    pending: Vec<PendingFile>,
    /// (dev, ino) → inode and its name count, for `preserve_hardlinks`.
    links: HashMap<(u64, u64), (InodeId, u32)>,
}

fn join_rel(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut rel = Vec::with_capacity(parent.len() + 1 + name.len());
    if !parent.is_empty() {
        rel.extend_from_slice(parent);
        rel.push(b'/');
    }
    rel.extend_from_slice(name);
    rel
}

/// Open `rel` beneath `root` without following any symlink on the way.
fn open_beneath(root: &OwnedFd, rel: &[u8], flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
    let path = if rel.is_empty() {
        OsStr::new(".")
    } else {
        OsStr::from_bytes(rel)
    };
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(root, path, flags, Mode::empty(), resolve) {
        // Kernels before 5.6: O_NOFOLLOW protects the last component only.
        Err(rustix::io::Errno::NOSYS) => rustix::fs::openat(root, path, flags, Mode::empty()),
        other => other,
    }
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

impl<'a> Walker<'a> {
    fn path_of(&self, rel: &[u8]) -> PathBuf {
        self.root.join(OsStr::from_bytes(rel))
    }

    fn io(&self, rel: &[u8], op: &'static str, e: impl Into<io::Error>) -> FromDirError {
        FromDirError::Io {
            path: self.path_of(rel),
            op,
            source: e.into(),
        }
    }

    /// The xattrs of `name` in the directory open as `dir` (not following a symlink), read
    /// through the directory fd's /proc magic link so no per-entry fd is needed.
    fn xattrs_at(
        &self,
        dir: &OwnedFd,
        name: &[u8],
        rel: &[u8],
    ) -> Result<Vec<Xattr>, FromDirError> {
        if self.opts.skip_xattrs {
            return Ok(Vec::new());
        }
        let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
        path.extend_from_slice(name);
        let path = Path::new(OsStr::from_bytes(&path));
        let list = read_sized(
            || rustix::fs::llistxattr_query(path),
            |buf| rustix::fs::llistxattr(path, buf),
        )
        .map_err(|e| self.io(rel, "listing xattrs", e))?;
        let mut xattrs = Vec::new();
        for key in split_names(&list).filter(|k| keep_xattr(k, self.opts)) {
            let key_os = OsStr::from_bytes(key);
            let value = read_sized(
                || rustix::fs::lgetxattr_query(path, key_os),
                |buf| rustix::fs::lgetxattr(path, key_os, buf),
            );
            match value {
                Ok(value) => xattrs.push(Xattr {
                    key: key.into(),
                    value: value.into(),
                }),
                // Removed between list and get: it is not there any more.
                Err(rustix::io::Errno::NODATA) => {}
                Err(e) => return Err(self.io(rel, "reading xattr", e)),
            }
        }
        xattrs.sort();
        Ok(xattrs)
    }

    /// The xattrs of the root directory, read from its fd.
    fn root_xattrs(&self) -> Result<Vec<Xattr>, FromDirError> {
        if self.opts.skip_xattrs {
            return Ok(Vec::new());
        }
        let fd = &self.root_fd;
        let list = read_sized(
            || rustix::fs::flistxattr_query(fd),
            |buf| rustix::fs::flistxattr(fd, buf),
        )
        .map_err(|e| self.io(b"", "listing xattrs", e))?;
        let mut xattrs = Vec::new();
        for key in split_names(&list).filter(|k| keep_xattr(k, self.opts)) {
            let key_os = OsStr::from_bytes(key);
            match read_sized(
                || rustix::fs::fgetxattr_query(fd, key_os),
                |buf| rustix::fs::fgetxattr(fd, key_os, buf),
            ) {
                Ok(value) => xattrs.push(Xattr {
                    key: key.into(),
                    value: value.into(),
                }),
                Err(rustix::io::Errno::NODATA) => {}
                Err(e) => return Err(self.io(b"", "reading xattr", e)),
            }
        }
        xattrs.sort();
        Ok(xattrs)
    }

    /// Breadth-first walk: fills `tree` (regular files as placeholders) and `pending`.
    fn walk(&mut self) -> Result<(), FromDirError> {
        let root_st = rustix::fs::fstat(&self.root_fd).map_err(|e| self.io(b"", "stat", e))?;
        let mut root_inode = Inode {
            stat: to_stat(&root_st, self.opts),
            xattrs: self.root_xattrs()?,
            content: Content::Directory(Vec::new()),
        };
        root_inode.stat.nlink = 2;
        self.tree.inodes[0] = root_inode;

        let mut queue: VecDeque<(InodeId, Vec<u8>, (u64, u64))> = VecDeque::new();
        queue.push_back((InodeId::ROOT, Vec::new(), dev_ino(&root_st)));
        while let Some((dir_id, dir_rel, expected)) = queue.pop_front() {
            let dir_fd = open_beneath(&self.root_fd, &dir_rel, OFlags::RDONLY | OFlags::DIRECTORY)
                .map_err(|e| self.io(&dir_rel, "opening directory", e))?;
            let st = rustix::fs::fstat(&dir_fd).map_err(|e| self.io(&dir_rel, "stat", e))?;
            if dev_ino(&st) != expected {
                return Err(FromDirError::Changed {
                    path: self.path_of(&dir_rel),
                    what: "directory replaced",
                });
            }
            let mut names = Vec::new();
            let dir = rustix::fs::Dir::read_from(&dir_fd)
                .map_err(|e| self.io(&dir_rel, "reading directory", e))?;
            for entry in dir {
                let entry = entry.map_err(|e| self.io(&dir_rel, "reading directory", e))?;
                let name = entry.file_name().to_bytes();
                if name != b"." && name != b".." {
                    names.push(name.to_vec());
                }
            }
            names.sort_unstable();
            let mut subdirs = 0u32;
            for name in names {
                let rel = join_rel(&dir_rel, &name);
                if let Some(child) = self.add_entry(dir_id, &dir_fd, &name, &rel)? {
                    subdirs += 1;
                    queue.push_back(child);
                }
            }
            self.tree.inode_mut(dir_id).stat.nlink = 2 + subdirs;
        }
        for (id, names) in self.links.values() {
            self.tree.inode_mut(*id).stat.nlink = *names;
        }
        Ok(())
    }

    /// Add one directory entry; returns the queue item when it is a directory.
    #[allow(clippy::type_complexity)]
    fn add_entry(
        &mut self,
        dir_id: InodeId,
        dir_fd: &OwnedFd,
        name: &[u8],
        rel: &[u8],
    ) -> Result<Option<(InodeId, Vec<u8>, (u64, u64))>, FromDirError> {
        let name_os = OsStr::from_bytes(name);
        let st = rustix::fs::statat(dir_fd, name_os, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io(rel, "stat", e))?;
        let stat = to_stat(&st, self.opts);
        let file_type = stat.mode & S_IFMT;
        if self.opts.skip_devices && matches!(file_type, S_IFCHR | S_IFBLK) {
            return Ok(None);
        }
        let tree_err = |source| FromDirError::Tree {
            path: self.root.join(OsStr::from_bytes(rel)),
            source,
        };

        #[allow(clippy::unnecessary_cast)]
        let multiply_linked = file_type != S_IFDIR && st.st_nlink as u64 > 1;
        if self.opts.preserve_hardlinks && multiply_linked {
            if let Some((id, names)) = self.links.get_mut(&dev_ino(&st)) {
                *names += 1;
                let id = *id;
                self.tree.link(dir_id, name, id, true).map_err(tree_err)?;
                return Ok(None);
            }
        }

        let xattrs = self.xattrs_at(dir_fd, name, rel)?;
        #[allow(clippy::unnecessary_cast)]
        let size = st.st_size as u64;
        let content = match file_type {
            S_IFDIR => Content::Directory(Vec::new()),
            S_IFREG => Content::Regular(FileData::External {
                size,
                digest: None,
                backing: None,
            }),
            S_IFLNK => {
                let target = rustix::fs::readlinkat(dir_fd, name_os, Vec::new())
                    .map_err(|e| self.io(rel, "reading symlink", e))?;
                Content::Symlink(target.into_bytes().into())
            }
            _ => Content::Special { size: 0 },
        };
        let id = self
            .tree
            .add(
                dir_id,
                name,
                Inode {
                    stat,
                    xattrs,
                    content,
                },
            )
            .map_err(tree_err)?;
        if self.opts.preserve_hardlinks && multiply_linked {
            self.links.insert(dev_ino(&st), (id, 1));
        }
        match file_type {
            S_IFDIR => return Ok(Some((id, rel.to_vec(), dev_ino(&st)))),
            S_IFREG if size > 0 => {
                let (dev, ino) = dev_ino(&st);
                self.pending.push(PendingFile {
                    inode: id,
                    rel: rel.to_vec(),
                    dev,
                    ino,
                    size,
                });
            }
            _ => {}
        }
        Ok(None)
    }
}

/// What the content phase produced for one file.
struct FileResult<'s> {
    inode: InodeId,
    data: FileData,
    staged: Option<Staged<'s>>,
}

/// Everything the content phase needs, shared by the worker threads.
struct ContentJob<'a> {
    root: &'a Path,
    root_fd: &'a OwnedFd,
    store: Option<&'a DigestStore>,
    compute_digests: bool,
}

impl ContentJob<'_> {
    fn path_of(&self, rel: &[u8]) -> PathBuf {
        self.root.join(OsStr::from_bytes(rel))
    }

    fn changed(&self, rel: &[u8], what: &'static str) -> FromDirError {
        FromDirError::Changed {
            path: self.path_of(rel),
            what,
        }
    }

    fn process<'s>(
        &'s self,
        file: &PendingFile,
        buf: &mut [u8],
    ) -> Result<FileResult<'s>, FromDirError> {
        let external_needs_read = self.compute_digests || self.store.is_some();
        if file.size > INLINE_MAX_SIZE && !external_needs_read {
            let data = FileData::External {
                size: file.size,
                digest: None,
                backing: None,
            };
            return Ok(FileResult {
                inode: file.inode,
                data,
                staged: None,
            });
        }
        // O_NONBLOCK: if the file was replaced by a fifo, opening must not hang (fstat catches it).
        let fd = open_beneath(self.root_fd, &file.rel, OFlags::RDONLY | OFlags::NONBLOCK).map_err(
            |e| FromDirError::Io {
                path: self.path_of(&file.rel),
                op: "opening",
                source: e.into(),
            },
        )?;
        let st = rustix::fs::fstat(&fd).map_err(|e| FromDirError::Io {
            path: self.path_of(&file.rel),
            op: "stat",
            source: e.into(),
        })?;
        #[allow(clippy::unnecessary_cast)]
        if dev_ino(&st) != (file.dev, file.ino) || st.st_size as u64 != file.size {
            return Err(self.changed(&file.rel, "replaced or resized"));
        }
        let mut reader = std::fs::File::from(fd);
        let read_err = |e: io::Error| FromDirError::Io {
            path: self.path_of(&file.rel),
            op: "reading",
            source: e,
        };

        if file.size <= INLINE_MAX_SIZE {
            // One byte more than expected tells a grown file from an unchanged one.
            let mut content = Vec::with_capacity(INLINE_MAX_SIZE as usize + 1);
            (&mut reader)
                .take(INLINE_MAX_SIZE + 1)
                .read_to_end(&mut content)
                .map_err(read_err)?;
            if content.len() as u64 != file.size {
                return Err(self.changed(&file.rel, "size changed while reading"));
            }
            return Ok(FileResult {
                inode: file.inode,
                data: FileData::Inline(content.into()),
                staged: None,
            });
        }

        let (digest, read_size, staged) = match self.store {
            Some(store) => {
                let name = self.path_of(&file.rel).to_string_lossy().into_owned();
                let staged = store.stage(&mut reader, &name, buf)?;
                (staged.digest, staged.size, Some(staged))
            }
            None => {
                let mut hasher = FsVerityHasher::<Sha256>::new();
                let mut read_size = 0u64;
                loop {
                    let n = match reader.read(buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(read_err(e)),
                    };
                    hasher.update(&buf[..n]);
                    read_size += n as u64;
                }
                (hasher.finish(), read_size, None)
            }
        };
        if read_size != file.size {
            return Err(self.changed(&file.rel, "size changed while reading"));
        }
        let backing = digest.object_path().into_bytes().into_boxed_slice();
        let data = FileData::External {
            size: file.size,
            digest: Some(digest),
            backing: Some(backing),
        };
        Ok(FileResult {
            inode: file.inode,
            data,
            staged,
        })
    }
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
    let mut walker = Walker {
        root,
        root_fd,
        opts,
        tree: Tree::new(Stat::default()),
        pending: Vec::new(),
        links: HashMap::new(),
    };
    walker.walk()?;
    let Walker {
        root_fd,
        mut tree,
        pending,
        ..
    } = walker;

    let store = opts
        .digest_store
        .as_deref()
        .map(DigestStore::open)
        .transpose()?;
    let job = ContentJob {
        root,
        root_fd: &root_fd,
        store: store.as_ref(),
        compute_digests: opts.compute_digests || store.is_some(),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.unwrap_or(0))
        .build()
        .map_err(|e| FromDirError::Threads(e.to_string()))?;
    let results: Vec<FileResult<'_>> = pool.install(|| {
        pending
            .par_iter()
            .map_init(
                || vec![0u8; READ_BUF_SIZE],
                |buf, file| job.process(file, buf),
            )
            .collect::<Result<Vec<_>, _>>()
    })?;

    let mut staged = Vec::new();
    for result in results {
        *tree.inode_mut(result.inode) = Inode {
            content: Content::Regular(result.data),
            ..std::mem::replace(
                tree.inode_mut(result.inode),
                Inode {
                    stat: Stat::default(),
                    xattrs: Vec::new(),
                    content: Content::Special { size: 0 },
                },
            )
        };
        staged.extend(result.staged);
    }
    if let Some(store) = &store {
        store.commit(staged)?;
    }
    Ok(tree)
}
