//! `cfsgate-keyring`: the trust anchors of the gate.
//!
//! - [`PublicKey`]: public keys read from PEM/DER files (Ed25519, ECDSA P-256/P-384, RSA
//!   2048–4096), their stable [`KeyId`] (SHA-256 of the SPKI) and signature verification over
//!   exact bytes.
//! - [`PrivateKey`]: signing keys (PKCS#8, SEC1, PKCS#1, encrypted PKCS#8, cosign's encrypted
//!   format), key generation and PEM output.
//! - [`KernelKeyring`]: a dedicated Linux kernel keyring of `user` keys (verified here) and
//!   `asymmetric` X.509 keys (verified by the kernel).
//!
//! - [`kernel_admin`]: a trust file added to the kernel keyring by what it holds, keys as text.
//! - [`keypair`]: a new key pair written as `PREFIX.key`/`PREFIX.pub`, the public key of any
//!   key file.
//! - [`file`](mod@file): reading key, certificate and keyring files: type-checked before a
//!   non-blocking open, read under [`MAX_TRUST_FILE_BYTES`], errors naming the file.
//!
//! Of the workspace this crate depends only on `cfsgate-sys`, whose `keyctl` module holds the
//! `add_key(2)`/`keyctl(2)` wrappers; this crate has no `unsafe` code.

pub mod error;
pub mod file;
pub mod kernel;
pub mod kernel_admin;
pub mod keypair;
pub mod private;
pub mod public;
pub mod sigstore;
pub mod x509;

pub use error::{KeyError, VerifyError};
pub use file::{read_trust_file, TrustFileError, MAX_TRUST_FILE_BYTES};
pub use kernel::{
    KernelError, KernelKeyInfo, KernelKeyType, KernelKeyring, KeySelector, DEFAULT_KEYRING_NAME,
};
pub use private::{KeyType, Passphrase, PrivateKey, PASSPHRASE_ENV};
pub use public::{KeyAlgorithm, KeyId, PublicKey};
