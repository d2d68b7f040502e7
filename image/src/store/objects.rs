//! Object batches: the repository's way of writing objects through its [`ObjectDir`](super::ObjectDir).
//!
//! Writing (bounded memory whatever the file size): the source is staged into `tmp/` by
//! [`ObjectDir::stage`](super::ObjectDir::stage) (one [`COPY_BUFFER_LEN`] buffer per thread, hashed while copied, with
//! the plain sha256 of the content computed beside it for the content index); if the object is
//! already present the copy is dropped. An [`ObjectBatch`] keeps the staged files pending
//! ([`PendingObjects`]) and commits them together ([`ObjectDir::commit`](super::ObjectDir::commit): one `syncfs`, the
//! `RENAME_NOREPLACE` renames into `objects/`, one more `syncfs`), then writes their content
//! index entries. That costs two syncs per batch instead of two fsyncs per object. A crash
//! before the renames leaves only staged files (removed by gc); after, only complete objects.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::fsverity::{FsVeritySha256, Sha256};

use super::content_index::{ContentSha256, Sha256Tee};
use super::object_dir::{Offered, PendingObjects, Staged};
use super::{LockKind, RepoLock, Repository, StoreError};

pub use super::object_dir::{copy_hashing, COPY_BUFFER_LEN};

/// Pending objects after which a batch commits by itself, bounding `tmp/` and the pending list.
pub const MAX_PENDING_OBJECTS: usize = 16 * 1024;
/// Pending bytes after which a batch commits by itself, bounding dirty data awaiting one syncfs.
pub const MAX_PENDING_BYTES: u64 = 1 << 30;

/// What a batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// New objects renamed into the store.
    pub objects_written: u64,
    /// Content bytes of those new objects.
    pub bytes_written: u64,
    /// Objects offered that were already present (in the store or earlier in the batch).
    pub objects_present: u64,
}

impl Repository {
    /// Where the object with this digest lives (whether or not it is present).
    pub fn object_path(&self, digest: &FsVeritySha256) -> PathBuf {
        self.objects().object_path(digest)
    }

    /// Whether the object is present (a regular file under its name).
    pub fn has_object(&self, digest: &FsVeritySha256) -> bool {
        self.objects().contains(digest)
    }

    /// Store one object from a reader and make it durable. Holds the shared lock only while
    /// writing: to keep the object safe from gc until an image references it, hold
    /// [`Repository::lock`] (shared) across the whole sequence, or use an [`ObjectBatch`].
    pub fn write_object_from_reader(
        &self,
        reader: impl Read,
    ) -> Result<FsVeritySha256, StoreError> {
        let batch = self.object_batch()?;
        let digest = batch.add_reader(reader, Path::new("<reader>"))?;
        batch.commit()?;
        Ok(digest)
    }

    /// Start a batch of object writes (holds a shared lock until committed or dropped).
    pub fn object_batch(&self) -> Result<ObjectBatch<'_>, StoreError> {
        Ok(ObjectBatch {
            repo: self,
            _lock: self.lock(LockKind::Shared)?,
            pending: PendingObjects::new(self.objects()),
            stats: Mutex::new(BatchStats::default()),
            written: Mutex::new(Vec::new()),
        })
    }
}

/// Many object writes made durable together. `add_*` may be called from many threads at once.
/// Dropping an uncommitted batch removes its staged files.
pub struct ObjectBatch<'r> {
    repo: &'r Repository,
    _lock: RepoLock,
    /// Staged files, each with its content index entry, written once it is renamed.
    pending: PendingObjects<'r, ContentSha256>,
    stats: Mutex<BatchStats>,
    /// Every object this batch renamed into the store, with its content index entry: what
    /// [`ObjectBatch::abandon`] hands back for [`Repository::remove_unreferenced`].
    written: Mutex<Vec<(FsVeritySha256, ContentSha256)>>,
}

impl<'r> ObjectBatch<'r> {
    /// Copy everything `reader` yields into the batch; returns its digest. `source` names the
    /// reader in errors.
    pub fn add_reader(
        &self,
        reader: impl Read,
        source: &Path,
    ) -> Result<FsVeritySha256, StoreError> {
        self.add_reader_counted(reader, source)
            .map(|(digest, _)| digest)
    }

    /// [`add_reader`](Self::add_reader), also returning how many bytes the reader yielded.
    pub fn add_reader_counted(
        &self,
        mut reader: impl Read,
        source: &Path,
    ) -> Result<(FsVeritySha256, u64), StoreError> {
        let mut tee = Sha256Tee::new(&mut reader);
        let staged = self.repo.objects().stage(&mut tee, source)?;
        let (digest, size) = (staged.digest, staged.size);
        self.offer(staged, tee.finish())?;
        Ok((digest, size))
    }

    /// Add content already in memory whose digest the caller just computed from these bytes.
    pub(crate) fn add_hashed_bytes(
        &self,
        digest: FsVeritySha256,
        data: &[u8],
    ) -> Result<(), StoreError> {
        let staged = self.repo.objects().stage_hashed_bytes(digest, data)?;
        self.offer(staged, ContentSha256::of(data))
    }

    /// Copy a file into the batch; returns its digest.
    pub fn add_file(&self, path: &Path) -> Result<FsVeritySha256, StoreError> {
        let file = File::open(path).map_err(StoreError::io("open", path))?;
        self.add_reader(file, path)
    }

    /// Whether an object with this digest is already in the store or in this batch; if so it
    /// is counted as present. For a caller that knows a source's digest (it just hashed it)
    /// and can skip copying what is there.
    pub fn contains(&self, digest: &FsVeritySha256) -> bool {
        let found = self.pending.contains(digest);
        if found {
            self.lock_stats().objects_present += 1;
        }
        found
    }

    /// Copy a file into the batch, refusing it unless its digest is `expected`.
    pub fn add_file_verified(
        &self,
        path: &Path,
        expected: &FsVeritySha256,
    ) -> Result<(), StoreError> {
        if self.repo.has_object(expected) {
            // Still verify the source: a dump naming the wrong backing file is an error even if
            // the object it claims is present. Hashing is cheaper than copying.
            let file = File::open(path).map_err(StoreError::io("open", path))?;
            let actual = crate::fsverity::digest_reader::<Sha256>(file)
                .map_err(StoreError::io("read", path))?;
            if actual != *expected {
                return Err(StoreError::DigestMismatch {
                    path: path.into(),
                    expected: *expected,
                    actual,
                });
            }
            self.lock_stats().objects_present += 1;
            return Ok(());
        }
        let actual = self.add_file(path)?;
        if actual != *expected {
            // The mismatching copy may already be committed under its own (true) name; that is
            // harmless (an unreferenced object gc removes).
            return Err(StoreError::DigestMismatch {
                path: path.into(),
                expected: *expected,
                actual,
            });
        }
        Ok(())
    }

    fn offer(&self, staged: Staged<'r>, content: ContentSha256) -> Result<(), StoreError> {
        let digest = staged.digest;
        match self.pending.offer(staged, content) {
            Offered::Kept { objects, bytes } => {
                if objects >= MAX_PENDING_OBJECTS || bytes >= MAX_PENDING_BYTES {
                    self.flush()?;
                }
                Ok(())
            }
            Offered::Pending(_) => {
                self.lock_stats().objects_present += 1;
                Ok(())
            }
            Offered::Stored(content) => {
                self.lock_stats().objects_present += 1;
                self.repo.index_content(&content, &digest)
            }
        }
    }

    /// Give up the batch: its staged files are removed (as on drop), its shared lock
    /// released, and the objects it already made durable (a size-triggered flush) are
    /// returned, with their content index entries, for [`Repository::remove_unreferenced`].
    pub fn abandon(self) -> Vec<(FsVeritySha256, ContentSha256)> {
        std::mem::take(
            &mut *self
                .written
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    /// Make everything added durable and visible.
    pub fn commit(self) -> Result<BatchStats, StoreError> {
        self.flush()?;
        let stats = *self.lock_stats();
        Ok(stats)
    }

    fn flush(&self) -> Result<(), StoreError> {
        let (staged, index): (Vec<_>, Vec<_>) = self
            .pending
            .take()
            .into_iter()
            .map(|(staged, content)| {
                let digest = staged.digest;
                (staged, (content, digest))
            })
            .unzip();
        if staged.is_empty() {
            return Ok(());
        }
        let committed = self.repo.objects().commit(staged)?;
        self.written
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend(
                index
                    .iter()
                    .filter(|(_, digest)| !committed.raced.contains(digest))
                    .map(|(content, digest)| (*digest, *content)),
            );
        // After the renames: an entry never names an object that is not there yet.
        for (content, digest) in &index {
            self.repo.index_content(content, digest)?;
        }
        let mut stats = self.lock_stats();
        stats.objects_written += committed.added;
        stats.bytes_written += committed.bytes_added;
        stats.objects_present += committed.raced.len() as u64;
        Ok(())
    }

    fn lock_stats(&self) -> std::sync::MutexGuard<'_, BatchStats> {
        self.stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
