//! Where regular-file content goes while a layer is applied.
//!
//! Every file larger than [`crate::apply::INLINE_CONTENT_MAX`] bytes is streamed into an
//! [`ObjectSink`], which hashes it (fs-verity, SHA-256, 4 KiB blocks) while it stores it and
//! returns the digest that names it. Every sink that stores writes through the store's one
//! object writer, [`ObjectDir`] (stage into a temporary file while hashing, `syncfs`, then a
//! `RENAME_NOREPLACE` rename; issue #19):
//!
//! | sink | stores | used for |
//! |---|---|---|
//! | the repository's object batch ([`crate::import::RepoSink`]) | `objects/xx/<62 hex>`, committed with the image | `import`, `pull` |
//! | [`PendingObjects`] of an [`ObjectDir`] | `DIR/xx/<62 hex>` once the caller commits the set (two `syncfs` per commit) | plain object directories, tests |
//! | an [`ObjectDir`] | `DIR/xx/<62 hex>`, each object committed before `store` returns (two `syncfs` per object) | a few objects, durable at once |
//! | [`NullSink`] | nothing, only hashes | `compute-id`: the image digest without writing |
//!
//! Content is read in fixed-size chunks: memory stays bounded whatever the file size.

use std::io::{self, Read};
use std::path::Path;

use cfsgate_image::fsverity::{FsVerityHasher, Sha256};
use cfsgate_image::store::{ObjectDir, PendingObjects};
use cfsgate_image::FsVeritySha256;

/// Read buffer size for streaming content (a multiple of the 4 KiB fs-verity block).
pub const STREAM_CHUNK: usize = 256 * 1024;

/// A content-addressed store of file contents.
pub trait ObjectSink: Sync {
    /// Store everything `content` yields; return its fs-verity digest and its length.
    fn store(&self, content: &mut dyn Read) -> io::Result<(FsVeritySha256, u64)>;
}

/// Hash `content` in chunks, handing each chunk to `write` as well.
fn hash_stream(
    content: &mut dyn Read,
    mut write: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<(FsVeritySha256, u64)> {
    STREAM_BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.resize(STREAM_CHUNK, 0);
            hash_stream_with(content, &mut write, &mut buf)
        }
        // Only if `content` itself hashes a stream on this thread: a buffer of its own.
        Err(_) => hash_stream_with(content, &mut write, &mut vec![0; STREAM_CHUNK]),
    })
}

thread_local! {
    /// The read buffer of [`hash_stream`], one per thread and kept: a fresh 256 KiB buffer per
    /// file is an mmap, 64 page faults and an munmap for every file of a layer (most are small).
    static STREAM_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn hash_stream_with(
    content: &mut dyn Read,
    write: &mut impl FnMut(&[u8]) -> io::Result<()>,
    buf: &mut [u8],
) -> io::Result<(FsVeritySha256, u64)> {
    let mut hasher = FsVerityHasher::<Sha256>::new();
    let mut total = 0u64;
    loop {
        let n = match content.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        write(&buf[..n])?;
        total += n as u64;
    }
    Ok((hasher.finish(), total))
}

/// Hashes content and stores nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl ObjectSink for NullSink {
    fn store(&self, content: &mut dyn Read) -> io::Result<(FsVeritySha256, u64)> {
        hash_stream(content, |_| Ok(()))
    }
}

/// Stages each object into the set, to be stored by [`PendingObjects::commit`]; a copy whose
/// digest is pending or stored already is dropped at once. Dropping the set uncommitted
/// removes its staged files: nothing is stored.
impl ObjectSink for PendingObjects<'_> {
    fn store(&self, content: &mut dyn Read) -> io::Result<(FsVeritySha256, u64)> {
        let staged = self
            .dir()
            .stage(content, Path::new("<layer content>"))
            .map_err(io::Error::other)?;
        let found = (staged.digest, staged.size);
        // Kept, pending or stored: the object will be there after the commit all the same.
        let _ = self.offer(staged, ());
        Ok(found)
    }
}

/// Stores each object at once: staged, then committed (durable and named) before `store`
/// returns. An object that is already present is kept (same name, same content).
impl ObjectSink for ObjectDir {
    fn store(&self, content: &mut dyn Read) -> io::Result<(FsVeritySha256, u64)> {
        let staged = self
            .stage(content, Path::new("<layer content>"))
            .map_err(io::Error::other)?;
        let found = (staged.digest, staged.size);
        if !self.contains(&staged.digest) {
            self.commit(vec![staged]).map_err(io::Error::other)?;
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfsgate_image::fsverity::digest_bytes;
    use std::fs;

    /// The names in `dir` that are not fan-out directories: staged files left behind.
    fn leftovers(dir: &Path) -> Vec<std::ffi::OsString> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.len() != 2)
            .collect()
    }

    #[test]
    fn object_dir_sinks_store_by_fsverity_digest_and_null_sink_agrees() {
        let dir = tempfile::tempdir().unwrap();
        let objects = ObjectDir::create(&dir.path().join("objects")).unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let (digest, size) = objects.store(&mut &data[..]).unwrap();
        assert_eq!(size, data.len() as u64);
        assert_eq!(digest, digest_bytes(&data));
        assert_eq!(fs::read(objects.object_path(&digest)).unwrap(), data);
        // Storing again is fine and leaves one object and no temporary files.
        objects.store(&mut &data[..]).unwrap();
        assert!(
            leftovers(objects.path()).is_empty(),
            "{:?}",
            leftovers(objects.path())
        );
        assert_eq!(NullSink.store(&mut &data[..]).unwrap(), (digest, size));

        // A set stores nothing until committed, and nothing at all if dropped uncommitted.
        let other: Vec<u8> = data.iter().rev().copied().collect();
        let pending = PendingObjects::new(&objects);
        let (other_digest, other_size) = pending.store(&mut &other[..]).unwrap();
        assert_eq!(other_digest, digest_bytes(&other));
        assert_eq!(other_size, other.len() as u64);
        assert_eq!(pending.store(&mut &data[..]).unwrap(), (digest, size));
        assert!(!objects.contains(&other_digest));
        drop(pending);
        assert!(!objects.contains(&other_digest));
        assert!(leftovers(objects.path()).is_empty());
        let pending = PendingObjects::new(&objects);
        pending.store(&mut &other[..]).unwrap();
        assert_eq!(pending.commit().unwrap().added, 1);
        assert_eq!(fs::read(objects.object_path(&other_digest)).unwrap(), other);
        assert!(leftovers(objects.path()).is_empty());
    }
}
