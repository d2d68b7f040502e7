//! The repository lock: `flock(2)` on the file `lock` at the repository root.
//!
//! | holder | kind | why |
//! |---|---|---|
//! | writers (objects, images, refs), readers (list, missing-objects, fsck) | shared | many at once; all they need is that nothing is deleted under them |
//! | gc, `fsck --repair` | exclusive | they delete or move files, so no writer may be between writing an object and referencing it |
//!
//! Every [`RepoLock`] opens the lock file anew: flock locks belong to the open file description,
//! so two guards in one process conflict exactly as two processes would (a gc thread waits for
//! the importing threads). The lock is released when the guard is dropped, or when the process
//! dies, so a killed writer never leaves the repository locked.

use std::fs::{File, OpenOptions};
use std::path::Path;

use rustix::fs::{flock, FlockOperation};

use super::StoreError;

/// Which lock to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// Readers and writers that add content: many may hold it at once.
    Shared,
    /// gc and fsck repair, which remove content: no one else holds the lock meanwhile.
    Exclusive,
}

/// A held repository lock; dropping it releases the lock.
#[derive(Debug)]
pub struct RepoLock {
    _file: File,
    kind: LockKind,
}

impl RepoLock {
    /// Block until the lock of `kind` on `path` (created if absent) is held.
    pub(crate) fn acquire(path: &Path, kind: LockKind) -> Result<RepoLock, StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(StoreError::io("open lock file", path))?;
        let op = match kind {
            LockKind::Shared => FlockOperation::LockShared,
            LockKind::Exclusive => FlockOperation::LockExclusive,
        };
        loop {
            match flock(&file, op) {
                Ok(()) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(StoreError::io("flock", path)(e.into())),
            }
        }
        Ok(RepoLock { _file: file, kind })
    }

    /// The kind held.
    pub fn kind(&self) -> LockKind {
        self.kind
    }
}
