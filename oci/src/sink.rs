//! Where regular-file content goes while a layer is applied.
//!
//! Every file larger than [`crate::apply::INLINE_CONTENT_MAX`] bytes is streamed into an
//! [`ObjectSink`], which hashes it (fs-verity, SHA-256, 4 KiB blocks) while it stores it and
//! returns the digest that names it. The object store's repository implements the trait; this
//! module provides two simple sinks:
//!
//! | sink | stores | used for |
//! |---|---|---|
//! | [`DirSink`] | `DIR/xx/<62 hex>` (temporary file in `DIR`, then an atomic no-clobber rename) | tests, plain object directories |
//! | [`NullSink`] | nothing, only hashes | `compute-id`: the image digest without writing |
//!
//! Content is read in fixed-size chunks: memory stays bounded whatever the file size.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use cfsgate_image::fsverity::{FsVerityHasher, Sha256};
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

/// Stores each object as `DIR/xx/<rest of the hex digest>`.
///
/// The content is written to a temporary file inside `DIR` and renamed into place only once it
/// has been read completely and hashed, so a failed or interrupted store leaves no object behind
/// and a reader never sees a partial object. An object that already exists is kept (same name,
/// same content).
#[derive(Debug, Clone)]
pub struct DirSink {
    dir: PathBuf,
}

impl DirSink {
    /// A sink writing into `dir` (created if missing).
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(DirSink { dir })
    }

    /// The object directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the object with this digest lives.
    pub fn object_path(&self, digest: &FsVeritySha256) -> PathBuf {
        self.dir.join(digest.object_path())
    }
}

impl ObjectSink for DirSink {
    fn store(&self, content: &mut dyn Read) -> io::Result<(FsVeritySha256, u64)> {
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-object-")
            .tempfile_in(&self.dir)?;
        let (digest, size) = {
            let mut out = io::BufWriter::with_capacity(STREAM_CHUNK, tmp.as_file_mut());
            let result = hash_stream(content, |chunk| out.write_all(chunk))?;
            out.flush()?;
            result
        };
        let path = self.object_path(&digest);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        match tmp.persist_noclobber(&path) {
            Ok(_) => {}
            // Another writer stored the same content first: identical by construction.
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.error),
        }
        Ok((digest, size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfsgate_image::fsverity::digest_bytes;

    #[test]
    fn dir_sink_stores_by_fsverity_digest_and_null_sink_agrees() {
        let dir = tempfile::tempdir().unwrap();
        let sink = DirSink::new(dir.path().join("objects")).unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let (digest, size) = sink.store(&mut &data[..]).unwrap();
        assert_eq!(size, data.len() as u64);
        assert_eq!(digest, digest_bytes(&data));
        assert_eq!(fs::read(sink.object_path(&digest)).unwrap(), data);
        // Storing again is fine and leaves one object and no temporary files.
        sink.store(&mut &data[..]).unwrap();
        let leftovers: Vec<_> = fs::read_dir(sink.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        assert_eq!(NullSink.store(&mut &data[..]).unwrap(), (digest, size));
    }
}
