//! Objects: file contents named by their fs-verity SHA-256 digest, `objects/xx/rest`.
//!
//! Writing (bounded memory whatever the file size): the source is copied into a new temporary
//! file in `tmp/` through one [`COPY_BUFFER_LEN`] buffer while the fs-verity digest is computed;
//! then, if the object is already present, the copy is dropped. An [`ObjectBatch`] keeps the
//! finished temporary files pending and makes them durable together: one `syncfs` for all the
//! content, the renames into `objects/`, one more `syncfs` for the new names. That costs two
//! syncs per batch instead of two fsyncs per object. A crash before the renames leaves only
//! temporary files (removed by gc); after, only complete objects.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::fsverity::{FsVerityHasher, FsVeritySha256, Sha256};

use super::content_index::{ContentSha256, Sha256Tee};
use super::{fsutil, verity};
use super::{LockKind, RepoLock, Repository, StoreError, VerityMode, OBJECTS_DIR, TMP_DIR};

/// Copy buffer: large enough for sequential throughput, small enough to have one per thread.
pub const COPY_BUFFER_LEN: usize = 256 * 1024;
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
        self.dir(OBJECTS_DIR).join(digest.object_path())
    }

    /// Whether the object is present.
    pub fn has_object(&self, digest: &FsVeritySha256) -> bool {
        self.object_path(digest).is_file()
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
            pending: Mutex::new(Pending::default()),
            stats: Mutex::new(BatchStats::default()),
            written: Mutex::new(Vec::new()),
        })
    }
}

/// Finished temporary files awaiting the batch's sync and renames.
#[derive(Default)]
struct Pending {
    files: Vec<(FsVeritySha256, PathBuf)>,
    digests: HashSet<FsVeritySha256>,
    bytes: u64,
    /// Content index entries of the pending files, written once they are renamed.
    index: Vec<(ContentSha256, FsVeritySha256)>,
}

/// Many object writes made durable together. `add_*` may be called from many threads at once.
/// Dropping an uncommitted batch removes its temporary files.
pub struct ObjectBatch<'r> {
    repo: &'r Repository,
    _lock: RepoLock,
    pending: Mutex<Pending>,
    stats: Mutex<BatchStats>,
    /// Every object this batch renamed into the store, with its content index entry: what
    /// [`ObjectBatch::abandon`] hands back for [`Repository::remove_unreferenced`].
    written: Mutex<Vec<(FsVeritySha256, ContentSha256)>>,
}

impl ObjectBatch<'_> {
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
        let tmp_dir = self.repo.dir(TMP_DIR);
        let (mut file, tmp) = fsutil::create_temp(&tmp_dir)?;
        let mut tee = Sha256Tee::new(&mut reader);
        let copied = copy_hashing(&mut tee, &mut file, source, &tmp);
        drop(file);
        let (digest, size) = match copied {
            Ok(result) => result,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        self.offer(digest, size, tmp, tee.finish())?;
        Ok((digest, size))
    }

    /// Add content already in memory whose digest the caller just computed from these bytes.
    pub(crate) fn add_hashed_bytes(
        &self,
        digest: FsVeritySha256,
        data: &[u8],
    ) -> Result<(), StoreError> {
        let tmp_dir = self.repo.dir(TMP_DIR);
        let (mut file, tmp) = fsutil::create_temp(&tmp_dir)?;
        let written = file.write_all(data);
        drop(file);
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(StoreError::io("write", &tmp)(e));
        }
        self.offer(digest, data.len() as u64, tmp, ContentSha256::of(data))
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
        let found = self.lock_pending().digests.contains(digest) || self.repo.has_object(digest);
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

    fn offer(
        &self,
        digest: FsVeritySha256,
        size: u64,
        tmp: PathBuf,
        content: ContentSha256,
    ) -> Result<(), StoreError> {
        let mut pending = self.lock_pending();
        if pending.digests.contains(&digest) {
            drop(pending);
            let _ = fs::remove_file(&tmp);
            self.lock_stats().objects_present += 1;
            return Ok(());
        }
        if self.repo.has_object(&digest) {
            drop(pending);
            let _ = fs::remove_file(&tmp);
            self.lock_stats().objects_present += 1;
            return self.repo.index_content(&content, &digest);
        }
        pending.digests.insert(digest);
        pending.files.push((digest, tmp));
        pending.index.push((content, digest));
        pending.bytes += size;
        if pending.files.len() >= MAX_PENDING_OBJECTS || pending.bytes >= MAX_PENDING_BYTES {
            let full = std::mem::take(&mut *pending);
            drop(pending);
            self.flush(full)?;
        }
        Ok(())
    }

    /// Give up the batch: its temporary files are removed (as on drop), its shared lock
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
        let pending = std::mem::take(&mut *self.lock_pending());
        self.flush(pending)?;
        let stats = *self.lock_stats();
        Ok(stats)
    }

    fn flush(&self, pending: Pending) -> Result<(), StoreError> {
        if pending.files.is_empty() {
            return Ok(());
        }
        let tmp_dir = self.repo.dir(TMP_DIR);
        let result = self.sync_and_rename(&tmp_dir, &pending.files);
        if result.is_err() {
            for (_, tmp) in &pending.files {
                let _ = fs::remove_file(tmp);
            }
        }
        let written = result?;
        self.written
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend(
                pending
                    .index
                    .iter()
                    .map(|(content, digest)| (*digest, *content)),
            );
        // After the renames: an entry never names an object that is not there yet.
        for (content, digest) in &pending.index {
            self.repo.index_content(content, digest)?;
        }
        let mut stats = self.lock_stats();
        stats.objects_written += written.0;
        stats.bytes_written += written.1;
        Ok(())
    }

    /// Returns (objects renamed, their bytes).
    fn sync_and_rename(
        &self,
        tmp_dir: &Path,
        files: &[(FsVeritySha256, PathBuf)],
    ) -> Result<(u64, u64), StoreError> {
        syncfs(tmp_dir)?;
        let mut written = (0, 0);
        for (digest, tmp) in files {
            if self.repo.meta().verity == VerityMode::Kernel {
                verity::seal(tmp, digest)?;
            }
            let size = fs::metadata(tmp)
                .map_err(StoreError::io("stat", tmp))?
                .len();
            fsutil::rename_into(tmp, &self.repo.object_path(digest))?;
            written.0 += 1;
            written.1 += size;
        }
        syncfs(tmp_dir)?;
        Ok(written)
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A panic in another adder cannot leave `Pending` inconsistent (each update is one push).
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_stats(&self) -> std::sync::MutexGuard<'_, BatchStats> {
        self.stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for ObjectBatch<'_> {
    fn drop(&mut self) {
        for (_, tmp) in std::mem::take(&mut self.lock_pending().files) {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Copy `reader` to `out` (`io::sink()` to only hash), computing the fs-verity digest;
/// returns (digest, bytes).
pub(crate) fn copy_hashing(
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

/// `syncfs` on the file system holding `dir`.
fn syncfs(dir: &Path) -> Result<(), StoreError> {
    let handle = File::open(dir).map_err(StoreError::io("open", dir))?;
    rustix::fs::syncfs(&handle).map_err(|e| StoreError::io("syncfs", dir)(e.into()))
}

/// (objects as (digest, path), stray files) found under `objects/`.
pub(crate) type ObjectScan = (Vec<(FsVeritySha256, PathBuf)>, Vec<PathBuf>);

/// Every object in the store: (digest, path). Files whose names are not digests are returned
/// separately (fsck reports them).
pub(crate) fn scan_objects(repo: &Repository) -> Result<ObjectScan, StoreError> {
    let root = repo.dir(OBJECTS_DIR);
    let mut objects = Vec::new();
    let mut strays = Vec::new();
    for prefix in fs::read_dir(&root).map_err(StoreError::io("list", &root))? {
        let prefix = prefix.map_err(StoreError::io("list", &root))?;
        let prefix_path = prefix.path();
        let prefix_name = prefix.file_name();
        let prefix_name = prefix_name.to_string_lossy();
        if !prefix_path.is_dir() {
            strays.push(prefix_path);
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
