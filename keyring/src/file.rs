//! Reading the small trust files a policy or a command line names — public keys, certificates,
//! CA bundles, OpenPGP keyrings — through `cfsgate_sys::file`: type-checked by `statx` before
//! a non-blocking open (a FIFO or `/dev/zero` is never opened), the descriptor checked to be
//! the same regular file, read under [`TRUST_FILE_LIMIT`]. Every error names the file.

use std::path::Path;

use cfsgate_sys::file::{self, Follow, SizeLimit};

pub use cfsgate_sys::file::FileError as TrustFileError;

/// Largest trust file read: a PEM key is a few hundred bytes, the Mozilla CA bundle (about 150
/// certificates) is about 220 KiB, a distribution's OpenPGP keyring tens of KiB. 4 MiB leaves
/// room for any real bundle while bounding what a hostile path can make us allocate.
pub const MAX_TRUST_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The limit trust files are read under, named for errors.
pub const TRUST_FILE_LIMIT: SizeLimit =
    SizeLimit::new("key, certificate or keyring file", MAX_TRUST_FILE_BYTES);

/// Reads the trust file at `path` (following symbolic links, as containers/image does), at most
/// `limit` bytes.
pub fn read_trust_file(path: &Path, limit: u64) -> Result<Vec<u8>, TrustFileError> {
    file::read(
        path,
        Follow::Symlinks,
        SizeLimit::new(TRUST_FILE_LIMIT.what, limit),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_and_others_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pub");
        std::fs::write(&key, b"key").unwrap();
        assert_eq!(read_trust_file(&key, 16).unwrap(), b"key");
        let error = read_trust_file(&key, 2).unwrap_err().to_string();
        assert!(
            error.contains("limit of 2 bytes") && error.contains("key.pub"),
            "{error}"
        );
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let error = read_trust_file(&fifo, 16).unwrap_err().to_string();
        assert!(
            error.contains("is a FIFO") && error.contains("fifo"),
            "{error}"
        );
        let error = read_trust_file(Path::new("/dev/zero"), 16)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("/dev/zero: is a character device"),
            "{error}"
        );
        let error = read_trust_file(dir.path(), 16).unwrap_err().to_string();
        assert!(error.contains("is a directory"), "{error}");
    }
}
