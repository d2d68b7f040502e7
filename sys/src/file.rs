//! Opening a file that someone else named — a policy (`keyPath`), the command line, an image or
//! the store — without letting its type or its size hurt us.
//!
//! A FIFO blocks `open(2)` until a writer appears, a device node runs a driver's `open` (and
//! `/dev/zero` never ends), a directory is not content. So every such file is opened in three
//! steps, and only a regular file comes out:
//!
//! 1. **stat before open**: `statx` on the name (following symbolic links or not, as the caller
//!    says); anything but a regular file is refused with [`FileError::NotRegular`] before any
//!    `open`, so no FIFO, socket or device is ever opened.
//! 2. **open without blocking**: `openat` with `O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC`
//!    (plus `O_NOFOLLOW` when symbolic links are refused): should the name be swapped for a FIFO
//!    between the two steps, this open still returns at once.
//! 3. **fstat the descriptor**: it must again be a regular file, and the same one (device and
//!    inode) that step 1 saw; otherwise [`FileError::Changed`].
//!
//! Reads go through [`read`] (or [`read_open`] for a descriptor from [`open`]) under a
//! [`SizeLimit`] that names what is being read: at most `limit + 1` bytes are ever read, and
//! reading the extra byte means the file is too large ([`FileError::TooLarge`]). The buffer is
//! sized from the file's length, capped by the limit, so a lying length costs nothing.
//!
//! Every error names the path it is about.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, StatxFlags, CWD};

/// An upper bound on the bytes read from one file, with a name saying what the file is (it
/// appears in the error when the bound is exceeded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeLimit {
    /// What is being read, e.g. `"policy file"`, `"public key file"`.
    pub what: &'static str,
    /// The largest accepted size in bytes.
    pub bytes: u64,
}

impl SizeLimit {
    /// A limit of `bytes` for files described as `what`.
    pub const fn new(what: &'static str, bytes: u64) -> Self {
        SizeLimit { what, bytes }
    }
}

/// Whether the last component of a name may be a symbolic link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    /// Follow symbolic links (files named by admins: policies, keys).
    Symlinks,
    /// Refuse a symbolic link as the last component (files inside the store).
    NoSymlinks,
}

/// The type of a file, as `stat` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file: the only kind this module opens.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link (seen only with [`Follow::NoSymlinks`]).
    Symlink,
    /// A named pipe: opening it for reading blocks until a writer appears.
    Fifo,
    /// A Unix domain socket.
    Socket,
    /// A character device (`/dev/zero`, a terminal, ...).
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A type the kernel reported that none of the above is.
    Unknown,
}

impl FileKind {
    fn of(file_type: FileType) -> Self {
        match file_type {
            FileType::RegularFile => FileKind::Regular,
            FileType::Directory => FileKind::Directory,
            FileType::Symlink => FileKind::Symlink,
            FileType::Fifo => FileKind::Fifo,
            FileType::Socket => FileKind::Socket,
            FileType::CharacterDevice => FileKind::CharDevice,
            FileType::BlockDevice => FileKind::BlockDevice,
            FileType::Unknown => FileKind::Unknown,
        }
    }

    fn of_mode(mode: u32) -> Self {
        Self::of(FileType::from_raw_mode(mode))
    }
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileKind::Regular => "a regular file",
            FileKind::Directory => "a directory",
            FileKind::Symlink => "a symbolic link",
            FileKind::Fifo => "a FIFO",
            FileKind::Socket => "a socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Unknown => "a file of unknown type",
        })
    }
}

/// Why a named file could not be opened or read. Every variant carries the path; the message
/// is `PATH: REASON` ([`FileError::reason`]).
#[derive(Debug)]
pub enum FileError {
    /// `stat` or `open` failed (missing file, permission, a directory component missing, ...).
    Open {
        /// The file.
        path: PathBuf,
        /// What the kernel said.
        source: io::Error,
    },
    /// The name is not a regular file; it was not opened.
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is.
        kind: FileKind,
    },
    /// The name was replaced by another file between the type check and the open.
    Changed {
        /// The file.
        path: PathBuf,
    },
    /// The file holds more than its limit allows; nothing of it is returned.
    TooLarge {
        /// The file.
        path: PathBuf,
        /// What the file is ([`SizeLimit::what`]).
        what: &'static str,
        /// The limit ([`SizeLimit::bytes`]).
        limit: u64,
    },
    /// Reading failed after a successful open.
    Read {
        /// The file.
        path: PathBuf,
        /// What the kernel said.
        source: io::Error,
    },
    /// [`read_to_string`]: the content is not UTF-8.
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Offset of the first byte that is not valid UTF-8.
        offset: usize,
    },
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path().display(), self.reason())
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.io_error().map(|e| e as _)
    }
}

impl FileError {
    /// What is wrong, without the path: for callers whose own error names the path apart.
    pub fn reason(&self) -> String {
        match self {
            FileError::Open { source, .. } => source.to_string(),
            FileError::NotRegular { kind, .. } => format!("is {kind}, not a regular file"),
            FileError::Changed { .. } => "replaced by another file while being opened".into(),
            FileError::TooLarge { what, limit, .. } => {
                format!("{what} larger than its limit of {limit} bytes")
            }
            FileError::Read { source, .. } => format!("reading failed: {source}"),
            FileError::NotUtf8 { offset, .. } => {
                format!("not UTF-8 text (first bad byte at offset {offset})")
            }
        }
    }

    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            FileError::Open { path, .. }
            | FileError::NotRegular { path, .. }
            | FileError::Changed { path }
            | FileError::TooLarge { path, .. }
            | FileError::Read { path, .. }
            | FileError::NotUtf8 { path, .. } => path,
        }
    }

    /// Whether the file (or a directory on its path) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, FileError::Open { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// The operating system error behind this one, if there is one.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            FileError::Open { source, .. } | FileError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Open the regular file `path` (relative paths from the current directory) for reading, its
/// type checked before any blocking open (see the module documentation).
pub fn open(path: &Path, follow: Follow) -> Result<File, FileError> {
    open_at_named(CWD, path, path, follow)
}

/// [`open`] for `name` relative to the directory `dir` (an absolute `name` ignores `dir`).
/// Errors name `dir_path` joined with `name`.
pub fn open_at(
    dir: BorrowedFd<'_>,
    dir_path: &Path,
    name: &Path,
    follow: Follow,
) -> Result<File, FileError> {
    open_at_named(dir, name, &dir_path.join(name), follow)
}

fn open_at_named(
    dir: impl AsFd,
    name: &Path,
    shown: &Path,
    follow: Follow,
) -> Result<File, FileError> {
    let dir = dir.as_fd();
    let open_error = |e: rustix::io::Errno| FileError::Open {
        path: shown.to_path_buf(),
        source: e.into(),
    };
    let stat_flags = match follow {
        Follow::Symlinks => AtFlags::empty(),
        Follow::NoSymlinks => AtFlags::SYMLINK_NOFOLLOW,
    };
    let before = rustix::fs::statx(
        dir,
        name,
        stat_flags | AtFlags::STATX_DONT_SYNC,
        StatxFlags::TYPE | StatxFlags::INO,
    )
    .map_err(open_error)?;
    let kind = FileKind::of_mode(u32::from(before.stx_mode));
    if kind != FileKind::Regular {
        return Err(FileError::NotRegular {
            path: shown.to_path_buf(),
            kind,
        });
    }
    let mut flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    if follow == Follow::NoSymlinks {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        // ELOOP under O_NOFOLLOW: the name became a symbolic link after the check.
        Err(rustix::io::Errno::LOOP) if follow == Follow::NoSymlinks => {
            return Err(FileError::Changed {
                path: shown.to_path_buf(),
            })
        }
        Err(e) => return Err(open_error(e)),
    };
    let after = rustix::fs::fstat(&fd).map_err(open_error)?;
    let kind = FileKind::of_mode(after.st_mode);
    let same = u64::from(before.stx_dev_major) == u64::from(rustix::fs::major(after.st_dev))
        && u64::from(before.stx_dev_minor) == u64::from(rustix::fs::minor(after.st_dev))
        && before.stx_ino == after.st_ino;
    if kind != FileKind::Regular || !same {
        return Err(FileError::Changed {
            path: shown.to_path_buf(),
        });
    }
    Ok(File::from(fd))
}

/// Read the whole regular file `path` under `limit` (see the module documentation).
pub fn read(path: &Path, follow: Follow, limit: SizeLimit) -> Result<Vec<u8>, FileError> {
    let mut file = open(path, follow)?;
    read_open(&mut file, path, limit)
}

/// [`read`] for `name` relative to the directory `dir`; errors name `dir_path` joined with `name`.
pub fn read_at(
    dir: BorrowedFd<'_>,
    dir_path: &Path,
    name: &Path,
    follow: Follow,
    limit: SizeLimit,
) -> Result<Vec<u8>, FileError> {
    let shown = dir_path.join(name);
    let mut file = open_at_named(dir, name, &shown, follow)?;
    read_open(&mut file, &shown, limit)
}

/// [`read`], then the content as UTF-8 text.
pub fn read_to_string(path: &Path, follow: Follow, limit: SizeLimit) -> Result<String, FileError> {
    let bytes = read(path, follow, limit)?;
    String::from_utf8(bytes).map_err(|e| FileError::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// Read what remains of `file` (opened by [`open`], or any descriptor the caller has checked)
/// under `limit`; `path` is only used in errors.
pub fn read_open(file: &mut File, path: &Path, limit: SizeLimit) -> Result<Vec<u8>, FileError> {
    let read_error = |source: io::Error| FileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    let room = usize::try_from(length.min(limit.bytes).saturating_add(1)).unwrap_or(usize::MAX);
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(room).map_err(|_| {
        read_error(io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("cannot allocate {room} bytes"),
        ))
    })?;
    file.take(limit.bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > limit.bytes {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            what: limit.what,
            limit: limit.bytes,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const LIMIT: SizeLimit = SizeLimit::new("test file", 8);

    #[test]
    fn reads_a_regular_file_up_to_its_limit_and_refuses_one_byte_more() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345678").expect("write");
        assert_eq!(
            read(&path, Follow::Symlinks, LIMIT).expect("read"),
            b"12345678"
        );
        std::fs::write(&path, b"123456789").expect("write");
        let err = read(&path, Follow::Symlinks, LIMIT).expect_err("too large");
        assert!(matches!(err, FileError::TooLarge { limit: 8, .. }), "{err}");
        assert!(err.to_string().contains("test file"), "{err}");
        assert_eq!(err.path(), path);
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fifo");
        rustix::fs::mknodat(CWD, &path, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
            .expect("mkfifo");
        let err = read(&path, Follow::Symlinks, LIMIT).expect_err("fifo");
        assert!(
            matches!(
                err,
                FileError::NotRegular {
                    kind: FileKind::Fifo,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("fifo"), "{err}");
    }

    #[test]
    fn dev_zero_and_directories_are_refused() {
        let err = read(Path::new("/dev/zero"), Follow::Symlinks, LIMIT).expect_err("dev zero");
        assert!(
            matches!(
                err,
                FileError::NotRegular {
                    kind: FileKind::CharDevice,
                    ..
                }
            ),
            "{err}"
        );
        let err = read(Path::new("/"), Follow::Symlinks, LIMIT).expect_err("dir");
        assert!(matches!(
            err,
            FileError::NotRegular {
                kind: FileKind::Directory,
                ..
            }
        ));
    }

    #[test]
    fn symlinks_are_followed_only_when_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("target"), b"x").expect("write");
        let link = dir.path().join("link");
        symlink("target", &link).expect("symlink");
        assert_eq!(read(&link, Follow::Symlinks, LIMIT).expect("read"), b"x");
        let err = read(&link, Follow::NoSymlinks, LIMIT).expect_err("symlink");
        assert!(matches!(
            err,
            FileError::NotRegular {
                kind: FileKind::Symlink,
                ..
            }
        ));
        // A link to a device is judged by its target.
        symlink("/dev/zero", dir.path().join("zero")).expect("symlink");
        let err = read(&dir.path().join("zero"), Follow::Symlinks, LIMIT).expect_err("zero");
        assert!(matches!(
            err,
            FileError::NotRegular {
                kind: FileKind::CharDevice,
                ..
            }
        ));
    }

    #[test]
    fn relative_names_under_a_directory_fd_and_missing_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/f"), b"abc").expect("write");
        let dirfd = File::open(dir.path()).expect("open dir");
        let got = read_at(
            dirfd.as_fd(),
            dir.path(),
            Path::new("sub/f"),
            Follow::NoSymlinks,
            LIMIT,
        )
        .expect("read_at");
        assert_eq!(got, b"abc");
        let err = read_at(
            dirfd.as_fd(),
            dir.path(),
            Path::new("missing"),
            Follow::NoSymlinks,
            LIMIT,
        )
        .expect_err("missing");
        assert!(err.is_not_found());
        assert_eq!(err.path(), dir.path().join("missing"));
    }

    #[test]
    fn text_must_be_utf8() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t");
        std::fs::write(&path, b"ab\xffc").expect("write");
        let err = read_to_string(&path, Follow::Symlinks, LIMIT).expect_err("utf8");
        assert!(matches!(err, FileError::NotUtf8 { offset: 2, .. }), "{err}");
    }
}
