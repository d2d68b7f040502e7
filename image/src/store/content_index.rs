//! The content index: the plain sha256 of a file's content → the object that holds it.
//!
//! Objects are named by their fs-verity digest; tables of contents (zstd:chunked layers) name
//! files by the sha256 of their content. This index joins the two so that a partial pull can
//! reuse a file the repository already has instead of downloading it again.
//!
//! | path | what |
//! |---|---|
//! | `sha256/xx/rest` | a symlink whose target is the 64 hex digits of the object's fs-verity digest; `xx/rest` is the content sha256 in hex |
//!
//! Every object write records its entry ([`super::ObjectBatch`] computes the sha256 beside the
//! fs-verity digest in the same pass). An entry is a symlink so that reading it is one
//! `readlink` (no open, nothing to block on, bounded by the kernel), and writing it is a symlink
//! in `tmp/` renamed into place (atomic, last writer wins; all writers agree).
//!
//! The index is a hint, never trusted: whoever can write the repository can point an entry at
//! any object. [`Repository::find_content`] therefore opens the object (type-checked, size
//! checked) and hashes it again, both sha256 and fs-verity, before it returns anything. A
//! dangling or corrupt entry is the same as no entry. Entries are not synced: losing some in a
//! crash only costs a download.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::PathBuf;

use sha2::Digest as _;

use crate::fsverity::{FsVerityHasher, FsVeritySha256, Sha256};

use super::layout::TMP_DIR;
use super::objects::COPY_BUFFER_LEN;
use super::{fsutil, Repository, StoreError};

/// Directory of the content index inside a repository.
pub const CONTENT_INDEX_DIR: &str = "sha256";
/// Longest symlink target an entry may have: 64 hex digits (a longer one is not ours).
const MAX_ENTRY_TARGET_LEN: usize = 64;

/// The plain sha256 of a file's content (what a zstd:chunked table of contents records); the
/// crate's one plain-sha256 type, distinct from the fs-verity [`FsVeritySha256`].
pub use crate::sha256::ContentSha256;

/// An entry's path below [`CONTENT_INDEX_DIR`]: `xx/` + the remaining hex digits.
fn index_path(sha256: &ContentSha256) -> String {
    let hex = sha256.to_hex();
    format!("{}/{}", &hex[..2], &hex[2..])
}

impl Repository {
    fn content_entry_path(&self, content: &ContentSha256) -> PathBuf {
        self.dir(CONTENT_INDEX_DIR).join(index_path(content))
    }

    /// What the index says holds `content`, unverified (a hint: see [`Self::find_content`]).
    pub fn content_hint(&self, content: &ContentSha256) -> Option<FsVeritySha256> {
        let target = fs::read_link(self.content_entry_path(content)).ok()?;
        let text = target.to_str()?;
        if text.len() > MAX_ENTRY_TARGET_LEN {
            return None;
        }
        FsVeritySha256::from_hex(text).ok()
    }

    /// Record that the object `object` holds content whose sha256 is `content`. An entry that
    /// already says so is left alone.
    pub fn index_content(
        &self,
        content: &ContentSha256,
        object: &FsVeritySha256,
    ) -> Result<(), StoreError> {
        if self.content_hint(content) == Some(*object) {
            return Ok(());
        }
        let dest = self.content_entry_path(content);
        let tmp_dir = self.dir(TMP_DIR);
        // A fresh temporary name (create_temp makes it O_EXCL), replaced by the symlink.
        let (file, tmp) = fsutil::create_temp(&tmp_dir)?;
        drop(file);
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(object.to_hex(), &tmp)
            .map_err(StoreError::io("create index entry", &tmp))?;
        fsutil::rename_into(&tmp, &dest)
    }

    /// Remove the entry for `content` if it names `object` (best effort: an entry is a hint),
    /// and its `xx/` directory when that is left empty.
    pub(crate) fn remove_content_entry(&self, content: &ContentSha256, object: &FsVeritySha256) {
        if self.content_hint(content) != Some(*object) {
            return;
        }
        let path = self.content_entry_path(content);
        if fs::remove_file(&path).is_ok() {
            if let Some(dir) = path.parent() {
                let _ = fs::remove_dir(dir);
            }
        }
    }

    /// The object holding content of this sha256 and `size`, checked: the index names it, it
    /// is a regular file of that size, and hashing it again gives both this sha256 and the
    /// object's own name. `None` when any of that fails (the caller downloads the content).
    pub fn find_content(
        &self,
        content: &ContentSha256,
        size: u64,
    ) -> Result<Option<FsVeritySha256>, StoreError> {
        let Some(object) = self.content_hint(content) else {
            return Ok(None);
        };
        let path = self.object_path(&object);
        // The store's type-checked lookup: a FIFO or device planted here is neither blocked on
        // nor read, a symlink not followed.
        let file = match self.objects().open_object(&object) {
            Ok(Some(file)) => file,
            Ok(None) | Err(StoreError::NotAnObject { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = file.metadata().map_err(StoreError::io("stat", &path))?;
        if !meta.file_type().is_file() || meta.len() != size {
            return Ok(None);
        }
        let (verity, sha, read) = hash_both(file, size).map_err(StoreError::io("read", &path))?;
        Ok((read == size && sha == *content && verity == object).then_some(object))
    }
}

/// fs-verity digest, sha256 and length of at most `limit` bytes of `file`.
fn hash_both(file: File, limit: u64) -> io::Result<(FsVeritySha256, ContentSha256, u64)> {
    let mut verity = FsVerityHasher::<Sha256>::new();
    let mut sha = sha2::Sha256::new();
    let mut buf = vec![0u8; COPY_BUFFER_LEN];
    let mut reader = file.take(limit + 1);
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        verity.update(&buf[..n]);
        sha.update(&buf[..n]);
        total += n as u64;
    }
    Ok((verity.finish(), ContentSha256(sha.finalize().into()), total))
}

/// Passes a reader through, computing the sha256 of everything read (for the index entry of an
/// object being written: one pass over the content gives both digests).
pub(crate) struct Sha256Tee<R> {
    inner: R,
    hasher: sha2::Sha256,
}

impl<R: Read> Sha256Tee<R> {
    pub(crate) fn new(inner: R) -> Self {
        Sha256Tee {
            inner,
            hasher: sha2::Sha256::new(),
        }
    }

    pub(crate) fn finish(self) -> ContentSha256 {
        ContentSha256(self.hasher.finalize().into())
    }
}

impl<R: Read> Read for Sha256Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
