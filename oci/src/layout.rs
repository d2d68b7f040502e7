//! Image sources on disk and blob access by digest.
//!
//! | reference | source | blob file of `sha256:H` |
//! |---|---|---|
//! | `oci:PATH`, `oci:PATH:TAG`, `oci:PATH@sha256:H` | an OCI image layout: `oci-layout`, `index.json` | `PATH/blobs/sha256/H` |
//! | `dir:PATH` | a skopeo `dir:` image: `version`, `manifest.json` | `PATH/H` |
//!
//! A tag is the `org.opencontainers.image.ref.name` annotation of an `index.json` entry. A path
//! that itself contains `:` is unambiguous as long as the part after the last `:` contains a `/`
//! (then it is not a tag), as in skopeo.
//!
//! Every blob is checked against its descriptor before anything parses it: the file's size must
//! equal the descriptor's, and the sha256 of its bytes must equal the digest. Small JSON blobs
//! are read whole (with a size limit checked before reading); layers are streamed through
//! [`VerifyingReader`], which checks size and digest when the stream ends.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::digest::{BlobDigest, BlobHasher};
use crate::error::OciError;

/// Longest `index.json`, image index or manifest list accepted (real ones are a few KiB).
pub const MAX_INDEX_SIZE: u64 = 4 << 20;
/// Longest image manifest accepted (real ones are a few KiB; 4 MiB also is what registries allow).
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;
/// Longest image config accepted (history entries make configs grow, but not past this).
pub const MAX_CONFIG_SIZE: u64 = 4 << 20;
/// Longest small metadata file (`oci-layout`, `version`).
const MAX_SMALL_FILE: u64 = 4096;

/// The `version` file skopeo writes into a `dir:` image.
const DIR_VERSION_PREFIX: &str = "Directory Transport Version: 1.";

/// Which on-disk format an image source uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// An OCI image layout directory.
    OciLayout,
    /// A skopeo `dir:` directory.
    Dir,
    /// An image in containers-storage (see [`crate::cstorage`]): blobs are big-data values.
    ContainersStorage,
}

/// What a reference asks for inside its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// The only image of an OCI layout, or the `manifest.json` of a `dir:` image.
    Default,
    /// The `index.json` entry with this `org.opencontainers.image.ref.name`.
    Tag(String),
    /// The manifest or index with this digest.
    Digest(BlobDigest),
}

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// What kind of image source the reference names.
    pub kind: SourceKind,
    /// The layout, `dir:` or storage directory.
    pub path: PathBuf,
    /// Which image in it.
    pub selector: Selector,
}

impl ImageRef {
    /// Parse `oci:PATH[:TAG]`, `oci:PATH@sha256:HEX` or `dir:PATH`.
    pub fn parse(reference: &str) -> Result<Self, OciError> {
        let bad = |reason: &str| OciError::Reference {
            reference: reference.into(),
            reason: reason.into(),
        };
        if let Some(path) = reference.strip_prefix("dir:") {
            if path.is_empty() {
                return Err(bad("empty path"));
            }
            return Ok(ImageRef {
                kind: SourceKind::Dir,
                path: path.into(),
                selector: Selector::Default,
            });
        }
        let Some(rest) = reference.strip_prefix("oci:") else {
            return Err(bad(
                "expected oci:PATH[:TAG], oci:PATH@sha256:HEX or dir:PATH",
            ));
        };
        let (path, selector) = if let Some(at) = rest.rfind("@sha256:") {
            (
                &rest[..at],
                Selector::Digest(BlobDigest::parse(&rest[at + 1..])?),
            )
        } else {
            match rest.rsplit_once(':') {
                Some((path, tag)) if !tag.contains('/') => {
                    if tag.is_empty() {
                        return Err(bad("empty tag"));
                    }
                    (path, Selector::Tag(tag.into()))
                }
                _ => (rest, Selector::Default),
            }
        };
        if path.is_empty() {
            return Err(bad("empty path"));
        }
        Ok(ImageRef {
            kind: SourceKind::OciLayout,
            path: path.into(),
            selector,
        })
    }
}

/// An opened image directory: all blob reads go through its directory handle.
#[derive(Debug)]
pub struct ImageSource {
    kind: SourceKind,
    path: PathBuf,
    dir: File,
    /// The opened containers-storage image (kind [`SourceKind::ContainersStorage`]).
    storage: Option<std::sync::Arc<crate::cstorage::StorageImage>>,
}

impl ImageSource {
    /// Open the directory of an image source and check its marker file.
    pub fn open(kind: SourceKind, path: &Path) -> Result<Self, OciError> {
        let dir =
            File::open(path).map_err(|e| OciError::io(format!("opening {}", path.display()), e))?;
        let source = ImageSource {
            kind,
            path: path.to_path_buf(),
            dir,
            storage: None,
        };
        match kind {
            SourceKind::OciLayout => {
                let text = source.read_small_file("oci-layout", MAX_SMALL_FILE)?;
                let v: serde_json::Value = serde_json::from_slice(&text)
                    .map_err(|e| source.layout_error(format!("oci-layout: {e}")))?;
                if v.get("imageLayoutVersion")
                    .and_then(|v| v.as_str())
                    .is_none()
                {
                    return Err(source.layout_error("oci-layout has no imageLayoutVersion".into()));
                }
            }
            SourceKind::ContainersStorage => {
                return Err(source.layout_error(
                    "a containers-storage image is opened by reference, not by path".into(),
                ))
            }
            SourceKind::Dir => {
                let text = source.read_small_file("version", MAX_SMALL_FILE)?;
                if !String::from_utf8_lossy(&text).starts_with(DIR_VERSION_PREFIX) {
                    return Err(source.layout_error(format!(
                        "version file does not start with {DIR_VERSION_PREFIX:?}"
                    )));
                }
            }
        }
        Ok(source)
    }

    /// The source of an opened containers-storage image.
    pub fn from_storage(image: crate::cstorage::StorageImage) -> Result<Self, OciError> {
        let path = image.data_path();
        let dir = image.data_dir().try_clone().map_err(|e| {
            OciError::io(format!("duplicating the handle of {}", path.display()), e)
        })?;
        Ok(ImageSource {
            kind: SourceKind::ContainersStorage,
            path,
            dir: File::from(dir),
            storage: Some(std::sync::Arc::new(image)),
        })
    }

    /// The containers-storage image behind this source, if it is one.
    pub fn storage(&self) -> Option<&crate::cstorage::StorageImage> {
        self.storage.as_deref()
    }

    /// What kind of source this is.
    pub fn kind(&self) -> SourceKind {
        self.kind
    }

    /// The directory the source was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn layout_error(&self, reason: String) -> OciError {
        OciError::Layout {
            path: self.path.display().to_string(),
            reason,
        }
    }

    /// The path of a blob relative to the source directory.
    pub fn blob_relpath(&self, digest: &BlobDigest) -> String {
        match self.kind {
            SourceKind::OciLayout => format!("blobs/sha256/{}", digest.hex()),
            SourceKind::Dir => digest.hex(),
            SourceKind::ContainersStorage => {
                let manifest = format!("manifest-{digest}");
                let is_manifest = self
                    .storage()
                    .is_some_and(|s| s.record.big_data_names.contains(&manifest));
                let key = if is_manifest {
                    manifest
                } else {
                    digest.to_string()
                };
                crate::cstorage::big_data_file_name(&key)
            }
        }
    }

    /// Open a file below the source directory, refusing anything but a regular file; its
    /// length from the one `fstat` that checked the type (callers size buffers and check blob
    /// sizes with it instead of a second stat).
    pub(crate) fn open_file(&self, relpath: &str) -> io::Result<(File, u64)> {
        let fd = rustix::fs::openat(
            &self.dir,
            relpath,
            // NONBLOCK: opening a FIFO planted in a layout must not wait for a writer; the
            // file is refused below anyway (no effect on regular files).
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::CLOEXEC
                | rustix::fs::OFlags::NOCTTY
                | rustix::fs::OFlags::NONBLOCK,
            rustix::fs::Mode::empty(),
        )?;
        let file = File::from(fd);
        let metadata = file.metadata()?;
        if !metadata.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a regular file",
            ));
        }
        Ok((file, metadata.size()))
    }

    /// Read a whole small file of the layout (not a blob: `index.json`, `oci-layout`), refusing
    /// anything but a regular file (opened `O_NONBLOCK`, type checked by `fstat` before any
    /// read) and one larger than `limit`. The buffer is sized from the file's length (capped by
    /// `limit`): one read for the content and one for the end, not a read per doubling.
    pub fn read_small_file(&self, relpath: &str, limit: u64) -> Result<Vec<u8>, OciError> {
        let what = || format!("reading {}", self.path.join(relpath).display());
        let (file, length) = self
            .open_file(relpath)
            .map_err(|e| OciError::io(what(), e))?;
        let room = usize::try_from(length.min(limit).saturating_add(1)).unwrap_or(usize::MAX);
        let mut data = Vec::new();
        data.try_reserve_exact(room).map_err(|_| {
            OciError::io(
                what(),
                io::Error::new(io::ErrorKind::OutOfMemory, format!("{room} bytes")),
            )
        })?;
        file.take(limit + 1)
            .read_to_end(&mut data)
            .map_err(|e| OciError::io(what(), e))?;
        if data.len() as u64 > limit {
            return Err(self.layout_error(format!("{relpath} is larger than {limit} bytes")));
        }
        Ok(data)
    }

    fn open_blob(&self, digest: &BlobDigest) -> Result<(File, u64), OciError> {
        let rel = self.blob_relpath(digest);
        self.open_file(&rel).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                OciError::BlobMissing {
                    digest: *digest,
                    path: self.path.join(&rel).display().to_string(),
                }
            } else {
                OciError::io(
                    format!("opening blob {}", self.path.join(&rel).display()),
                    e,
                )
            }
        })
    }

    /// Read a whole blob of at most `limit` bytes, check its size and digest, return its bytes.
    pub fn read_blob(
        &self,
        what: &'static str,
        digest: &BlobDigest,
        size: u64,
        limit: u64,
    ) -> Result<Vec<u8>, OciError> {
        check_limit(what, digest, size, limit)?;
        let (file, file_size) = self.open_blob(digest)?;
        read_opened_blob(file, file_size, digest, size)
    }

    /// Read a blob whose size is not known from a descriptor (`manifest.json` of a `dir:` image
    /// or a manifest named only by digest): the size comes from the file (the `fstat` of its
    /// one open), the digest is checked.
    pub fn read_blob_unsized(
        &self,
        what: &'static str,
        digest: &BlobDigest,
        limit: u64,
    ) -> Result<Vec<u8>, OciError> {
        let (file, size) = self.open_blob(digest)?;
        check_limit(what, digest, size, limit)?;
        read_opened_blob(file, size, digest, size)
    }

    /// Hash a whole blob without keeping it (the check before a layer is applied).
    pub fn verify_blob(&self, digest: &BlobDigest, size: u64) -> Result<(), OciError> {
        let mut reader = self.stream_blob(digest, size)?;
        io::copy(&mut reader, &mut io::sink())
            .map_err(|e| OciError::io(format!("reading blob {digest}"), e))?;
        reader.finish()
    }

    /// Stream a blob; the returned reader checks size and digest (see [`VerifyingReader`]).
    pub fn stream_blob(&self, digest: &BlobDigest, size: u64) -> Result<VerifyingReader, OciError> {
        let (file, file_size) = self.open_blob(digest)?;
        if file_size != size {
            return Err(OciError::SizeMismatch {
                digest: *digest,
                expected: size,
                actual: file_size,
            });
        }
        Ok(VerifyingReader {
            inner: file,
            digest: *digest,
            size,
            hasher: BlobHasher::default(),
        })
    }
}

/// Refuse a blob whose size is over `limit` before reading any of it.
fn check_limit(
    what: &'static str,
    digest: &BlobDigest,
    size: u64,
    limit: u64,
) -> Result<(), OciError> {
    if size > limit {
        return Err(OciError::TooLarge {
            what,
            digest: *digest,
            size,
            limit,
        });
    }
    Ok(())
}

/// Read the opened blob `file` (`file_size` from its `fstat`), which must hold exactly `size`
/// bytes hashing to `digest`.
fn read_opened_blob(
    file: File,
    file_size: u64,
    digest: &BlobDigest,
    size: u64,
) -> Result<Vec<u8>, OciError> {
    if file_size != size {
        return Err(OciError::SizeMismatch {
            digest: *digest,
            expected: size,
            actual: file_size,
        });
    }
    let mut data =
        Vec::with_capacity(usize::try_from(size.saturating_add(1)).unwrap_or(usize::MAX));
    file.take(size + 1)
        .read_to_end(&mut data)
        .map_err(|e| OciError::io(format!("reading blob {digest}"), e))?;
    if data.len() as u64 != size {
        return Err(OciError::SizeMismatch {
            digest: *digest,
            expected: size,
            actual: data.len() as u64,
        });
    }
    let actual = BlobDigest::of(&data);
    if actual != *digest {
        return Err(OciError::DigestMismatch {
            expected: *digest,
            actual,
        });
    }
    Ok(data)
}

/// Reads a blob while hashing it. It never yields more than the descriptor's size, and
/// [`finish`](Self::finish) (after reading to the end) checks the size and digest.
pub struct VerifyingReader {
    inner: File,
    digest: BlobDigest,
    size: u64,
    hasher: BlobHasher,
}

impl Read for VerifyingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.size - self.hasher.len;
        if remaining == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl VerifyingReader {
    /// Read what remains, then check the size and the digest.
    pub fn finish(mut self) -> Result<(), OciError> {
        io::copy(&mut self, &mut io::sink())
            .map_err(|e| OciError::io(format!("reading blob {}", self.digest), e))?;
        let (actual, len) = self.hasher.finish();
        if len != self.size {
            return Err(OciError::SizeMismatch {
                digest: self.digest,
                expected: self.size,
                actual: len,
            });
        }
        if actual != self.digest {
            return Err(OciError::DigestMismatch {
                expected: self.digest,
                actual,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = ImageRef::parse("oci:/tmp/x:latest").unwrap();
        assert_eq!(
            (r.kind, r.path.as_path(), r.selector),
            (
                SourceKind::OciLayout,
                Path::new("/tmp/x"),
                Selector::Tag("latest".into())
            )
        );
        let r = ImageRef::parse("oci:/tmp/x").unwrap();
        assert_eq!(r.selector, Selector::Default);
        let r = ImageRef::parse("oci:/tmp/a:b/c").unwrap();
        assert_eq!(
            (r.path.as_path(), r.selector),
            (Path::new("/tmp/a:b/c"), Selector::Default)
        );
        let d = BlobDigest::of(b"x");
        let r = ImageRef::parse(&format!("oci:/tmp/x@{d}")).unwrap();
        assert_eq!(
            (r.path.as_path(), r.selector),
            (Path::new("/tmp/x"), Selector::Digest(d))
        );
        let r = ImageRef::parse("dir:/tmp/d").unwrap();
        assert_eq!(
            (r.kind, r.path.as_path()),
            (SourceKind::Dir, Path::new("/tmp/d"))
        );
        for bad in ["docker://x", "oci:", "oci:/x:", "dir:", "oci:/x@sha256:zz"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
