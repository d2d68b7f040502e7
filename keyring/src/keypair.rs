//! Key files on disk: a new signing key pair written as `PREFIX.key` and `PREFIX.pub`
//! (`cfsgate key generate`), and the public key of any key file (`cfsgate key id`).
//!
//! | file | content | mode |
//! |---|---|---|
//! | `PREFIX.key` | the private key, PKCS#8 PEM | [`PRIVATE_KEY_MODE`] |
//! | `PREFIX.pub` | the public key, SPKI PEM | [`PUBLIC_KEY_MODE`] |
//!
//! Neither file may exist: each is created exclusively (never following or replacing an
//! existing file) with its mode from the start, written and synced; a failure removes what was
//! created, so no private key is left without its public half.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::file::{read_trust_file, MAX_TRUST_FILE_BYTES};
use crate::x509::Certificate;
use crate::{KeyError, KeyType, Passphrase, PrivateKey, PublicKey};

/// Mode of a written private key: readable by its owner only.
pub const PRIVATE_KEY_MODE: u32 = 0o600;
/// Mode of a written public key: public.
pub const PUBLIC_KEY_MODE: u32 = 0o644;

/// Writing a key pair failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyPairError {
    /// The key could not be encoded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A file could not be created (it exists, or the directory is not writable).
    #[error("creating {} (it must not exist): {source}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A created file could not be written or synced (it was removed).
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A key pair written by [`generate_key_pair`].
#[derive(Debug)]
pub struct WrittenKeyPair {
    /// The public key (its algorithm and id for the caller to report).
    pub public: PublicKey,
    /// `PREFIX.key`.
    pub private_path: PathBuf,
    /// `PREFIX.pub`.
    pub public_path: PathBuf,
}

impl WrittenKeyPair {
    /// What `cfsgate key generate` reports: `ALGORITHM key KEYID written to PRIVATE and PUBLIC`.
    pub fn summary(&self) -> String {
        format!(
            "{} key {} written to {} and {}",
            self.public.algorithm(),
            self.public.key_id(),
            self.private_path.display(),
            self.public_path.display()
        )
    }
}

/// Generate a key of `key_type` and write it as `PREFIX.key` and `PREFIX.pub`.
pub fn generate_key_pair(key_type: KeyType, prefix: &Path) -> Result<WrittenKeyPair, KeyPairError> {
    let private_path = with_suffix(prefix, ".key");
    let public_path = with_suffix(prefix, ".pub");
    let key = PrivateKey::generate(key_type);
    let public = key.public_key();
    write_new(
        &private_path,
        PRIVATE_KEY_MODE,
        key.to_pkcs8_pem()?.as_bytes(),
    )?;
    if let Err(error) = write_new(&public_path, PUBLIC_KEY_MODE, public.to_pem().as_bytes()) {
        // Leave nothing half-written: a private key without its public half is removed.
        let _ = std::fs::remove_file(&private_path);
        return Err(error);
    }
    Ok(WrittenKeyPair {
        public,
        private_path,
        public_path,
    })
}

/// Creates `path` exclusively with `mode` from the start, writes and syncs it; on failure
/// removes what it created.
fn write_new(path: &Path, mode: u32, contents: &[u8]) -> Result<(), KeyPairError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| KeyPairError::Create {
            path: path.to_owned(),
            source,
        })?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(source) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(KeyPairError::Write {
            path: path.to_owned(),
            source,
        });
    }
    Ok(())
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// The public key of a public key file, a certificate, or a private key file (an encrypted
/// one decrypted with `passphrase`).
pub fn public_key_of_file(path: &Path, passphrase: &Passphrase) -> Result<PublicKey, KeyError> {
    let bytes = read_trust_file(path, MAX_TRUST_FILE_BYTES)?;
    let source = path.display().to_string();
    if Certificate::looks_like_certificate(&bytes) {
        return Certificate::parse(&bytes, &source)?.public_key;
    }
    let text = String::from_utf8_lossy(&bytes);
    if text.contains("PRIVATE KEY-----") {
        return Ok(PrivateKey::from_pem(&bytes, &source, passphrase)?.public_key());
    }
    PublicKey::from_bytes(&bytes, &source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_generated_pair_has_its_modes_and_both_files_name_one_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let prefix = dir.path().join("signer");
        for key_type in [KeyType::Ed25519, KeyType::P256] {
            let _ = std::fs::remove_file(with_suffix(&prefix, ".key"));
            let _ = std::fs::remove_file(with_suffix(&prefix, ".pub"));
            let written = generate_key_pair(key_type, &prefix).expect("generate");
            let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode(&written.private_path), PRIVATE_KEY_MODE);
            assert_eq!(mode(&written.public_path), PUBLIC_KEY_MODE);
            let none = Passphrase::Unavailable;
            for path in [&written.private_path, &written.public_path] {
                let key = public_key_of_file(path, &none).expect("read back");
                assert_eq!(key.key_id(), written.public.key_id());
            }
            assert_eq!(
                written.summary(),
                format!(
                    "{} key {} written to {} and {}",
                    written.public.algorithm(),
                    written.public.key_id(),
                    dir.path().join("signer.key").display(),
                    dir.path().join("signer.pub").display()
                )
            );
        }
    }

    #[test]
    fn an_existing_file_is_never_replaced_and_no_half_pair_is_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let prefix = dir.path().join("k");
        std::fs::write(with_suffix(&prefix, ".pub"), b"mine").expect("write");
        let error = generate_key_pair(KeyType::Ed25519, &prefix).expect_err("refused");
        assert!(matches!(error, KeyPairError::Create { .. }), "{error}");
        assert!(error.to_string().contains("(it must not exist)"), "{error}");
        assert!(
            !with_suffix(&prefix, ".key").exists(),
            "private half removed"
        );
        assert_eq!(
            std::fs::read(with_suffix(&prefix, ".pub")).expect("read"),
            b"mine"
        );
    }
}
