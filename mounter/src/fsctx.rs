//! Small helpers around the new mount API (`fsopen` → `fsconfig` → `fsmount`) that turn each
//! failure into a [`MountError::Syscall`] naming the step and carrying the kernel's own message
//! (the filesystem context's log, read from the fsopen fd).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};

use crate::error::MountError;

/// At most this many kernel log lines are kept for one error (the log holds a handful).
const MAX_LOG_LINES: usize = 8;
/// One fs_context log message is at most this long.
const LOG_LINE_SIZE: usize = 1024;

/// A filesystem context being configured.
pub struct FsContext {
    fd: OwnedFd,
    fstype: &'static str,
}

impl FsContext {
    /// `fsopen(fstype)`.
    pub fn open(fstype: &'static str) -> Result<Self, MountError> {
        let fd = rustix::mount::fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)
            .map_err(|e| syscall_error(format!("fsopen({fstype})"), e, None))?;
        Ok(FsContext { fd, fstype })
    }

    /// `fsconfig(FSCONFIG_SET_STRING, key, value)`.
    pub fn set_string(&self, key: &str, value: &str) -> Result<(), MountError> {
        rustix::mount::fsconfig_set_string(&self.fd, key, value)
            .map_err(|e| self.error(format!("fsconfig {} {key}={value}", self.fstype), e))
    }

    /// `fsconfig(FSCONFIG_SET_FLAG, key)`.
    pub fn set_flag(&self, key: &str) -> Result<(), MountError> {
        rustix::mount::fsconfig_set_flag(&self.fd, key)
            .map_err(|e| self.error(format!("fsconfig {} {key}", self.fstype), e))
    }

    /// `fsconfig(FSCONFIG_CMD_CREATE)`, returning the raw errno too so callers can fall back.
    pub fn create(&self) -> Result<(), (rustix::io::Errno, MountError)> {
        rustix::mount::fsconfig_create(&self.fd).map_err(|e| {
            (
                e,
                self.error(format!("creating the {} superblock", self.fstype), e),
            )
        })
    }

    /// `fsmount`: a detached mount of the created superblock, never in any mount table.
    pub fn mount(&self, attrs: MountAttrFlags) -> Result<OwnedFd, MountError> {
        rustix::mount::fsmount(&self.fd, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
            .map_err(|e| self.error(format!("fsmount {}", self.fstype), e))
    }

    fn error(&self, step: String, errno: rustix::io::Errno) -> MountError {
        syscall_error(step, errno, Some(self.fd.as_fd()))
    }
}

/// A [`MountError::Syscall`] with the fs context's log, when there is one.
pub fn syscall_error(
    step: String,
    errno: rustix::io::Errno,
    ctx: Option<BorrowedFd<'_>>,
) -> MountError {
    let log = ctx.map(read_log).unwrap_or_default();
    MountError::Syscall {
        step,
        source: io::Error::from(errno),
        log,
    }
}

/// Drain the fs_context log: each read returns one message, ENODATA when empty.
fn read_log(fd: BorrowedFd<'_>) -> Vec<String> {
    let mut lines = Vec::new();
    let mut buf = [0u8; LOG_LINE_SIZE];
    while lines.len() < MAX_LOG_LINES {
        match rustix::io::read(fd, &mut buf) {
            Ok(n) if n > 0 => lines.push(String::from_utf8_lossy(&buf[..n]).trim_end().to_owned()),
            _ => break,
        }
    }
    lines
}

/// The path through which the kernel can reach what `fd` refers to (a detached mount, a
/// directory, a file): `/proc/self/fd/N`. Valid only while `fd` stays open in this process.
pub fn fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd))
}
