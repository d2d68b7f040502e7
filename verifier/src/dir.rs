//! Reading the parts of a skopeo `dir:` image that signatures concern.
//!
//! | file | content |
//! |---|---|
//! | `manifest.json` | the manifest, whose exact bytes a signature's digest names |
//! | `signature-1`, `signature-2`, … | one signature each, numbered from 1 without gaps: reading stops at the first missing number (as containers/image's `dir` transport) |
//!
//! Layer and config blobs are not read here. Files are opened relative to one directory
//! descriptor, so a directory renamed mid-read cannot mix two images.

use std::fs::File;
use std::io::{self, Read as _};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

/// Name of the manifest file.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Largest manifest read: containers/image's `iolimits.MaxManifestBodySize` (4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Largest signature file read: containers/image's `iolimits.MaxSignatureBodySize` (4 MiB).
pub const MAX_SIGNATURE_BYTES: u64 = 4 << 20;
/// Most signature files read: far above any real image, bounds the work a hostile
/// directory can cause.
pub const MAX_SIGNATURES: usize = 1024;

/// Why a `dir:` image could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// The image directory cannot be opened.
    #[error("cannot open image directory {path}: {source}")]
    OpenDir {
        /// The directory.
        path: PathBuf,
        /// The error the kernel returned.
        source: io::Error,
    },
    /// A file of the image (manifest, signature) cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A file is larger than its named size limit.
    #[error("{path} is larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// `signature-1` … go on past `MAX_SIGNATURES`.
    #[error("{path}: more than {MAX_SIGNATURES} signature files")]
    TooManySignatures {
        /// The image directory.
        path: PathBuf,
    },
}

/// The name of signature file number `index` (1-based).
pub fn signature_file_name(index: usize) -> String {
    format!("signature-{index}")
}

/// An open `dir:` image directory.
pub struct DirImage {
    path: PathBuf,
    dir: OwnedFd,
}

/// One signature file: its number, path (for messages) and bytes.
#[derive(Debug, Clone)]
pub struct SignatureFile {
    /// Its number N, from `signature-N`.
    pub index: usize,
    /// The file's path.
    pub path: PathBuf,
    /// Its content.
    pub bytes: Vec<u8>,
}

impl DirImage {
    /// Opens the directory.
    pub fn open(path: &Path) -> Result<Self, DirError> {
        let dir = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| DirError::OpenDir {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            dir,
        })
    }

    /// The directory path this image was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The exact bytes of `manifest.json`.
    pub fn manifest_bytes(&self) -> Result<Vec<u8>, DirError> {
        self.read_file(MANIFEST_FILE, MAX_MANIFEST_BYTES)?
            .ok_or_else(|| DirError::Read {
                path: self.path.join(MANIFEST_FILE),
                source: io::Error::from(io::ErrorKind::NotFound),
            })
    }

    /// `signature-1` … up to the first missing number.
    pub fn signatures(&self) -> Result<Vec<SignatureFile>, DirError> {
        let mut out = Vec::new();
        for index in 1.. {
            let name = signature_file_name(index);
            let Some(bytes) = self.read_file(&name, MAX_SIGNATURE_BYTES)? else {
                break;
            };
            if out.len() == MAX_SIGNATURES {
                return Err(DirError::TooManySignatures {
                    path: self.path.clone(),
                });
            }
            out.push(SignatureFile {
                index,
                path: self.path.join(name),
                bytes,
            });
        }
        Ok(out)
    }

    /// The number the next signature file gets.
    pub fn next_signature_index(&self) -> Result<usize, DirError> {
        for index in 1..=MAX_SIGNATURES + 1 {
            match rustix::fs::statat(
                &self.dir,
                signature_file_name(index).as_str(),
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            ) {
                Ok(_) => continue,
                Err(rustix::io::Errno::NOENT) => return Ok(index),
                Err(e) => {
                    return Err(DirError::Read {
                        path: self.path.join(signature_file_name(index)),
                        source: e.into(),
                    })
                }
            }
        }
        Err(DirError::TooManySignatures {
            path: self.path.clone(),
        })
    }

    /// Reads `name` (following symlinks, as skopeo does) up to `limit` bytes; `None` if
    /// it does not exist.
    fn read_file(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, DirError> {
        let path = self.path.join(name);
        let fd = match rustix::fs::openat(
            &self.dir,
            name,
            // NONBLOCK: a FIFO planted as a manifest or signature must not block the verifier
            // (it is refused just below as not a regular file).
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => {
                return Err(DirError::Read {
                    path,
                    source: e.into(),
                })
            }
        };
        let file = File::from(fd);
        let length = match file.metadata() {
            Ok(meta) if meta.is_file() => meta.len(),
            _ => {
                return Err(DirError::Read {
                    path,
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "not a regular file",
                    ),
                })
            }
        };
        // Sized from the length (read_to_end from empty probes from 32 bytes up: 7 reads for a
        // 611-byte signature), one byte over to see the end.
        let room = usize::try_from(length.min(limit) + 1).unwrap_or(usize::MAX);
        let mut bytes = Vec::with_capacity(room);
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| DirError::Read {
                path: path.clone(),
                source,
            })?;
        if bytes.len() as u64 > limit {
            return Err(DirError::TooLarge { path, limit });
        }
        Ok(Some(bytes))
    }
}
