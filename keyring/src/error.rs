//! Error types of the keyring crate: what went wrong, and with which key, file or kernel key.

/// Reading or parsing a key failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file is not a readable regular file of bounded size (see [`crate::file`]).
    #[error(transparent)]
    File(#[from] crate::file::TrustFileError),
    #[error("{source_name}: holds {blocks} PEM blocks; a public key file must hold exactly one key (only the first would be used)")]
    SeveralPemBlocks { source_name: String, blocks: usize },
    #[error("{source_name}: found PEM block \"{found}\", expected {expected}")]
    UnexpectedPem {
        source_name: String,
        found: String,
        expected: &'static str,
    },
    #[error("{source_name}: {reason}")]
    Invalid { source_name: String, reason: String },
    #[error("{source_name}: unsupported key: {found}")]
    Unsupported { source_name: String, found: String },
    #[error(
        "{source_name}: RSA key of {bits} bits, only {min}–{max} bits are accepted",
        min = crate::public::RSA_MIN_BITS,
        max = crate::public::RSA_MAX_BITS
    )]
    RsaSize { source_name: String, bits: usize },
    #[error("{source_name}: the key is encrypted and no passphrase is available (set {env} or run on a terminal)", env = crate::private::PASSPHRASE_ENV)]
    NoPassphrase { source_name: String },
    #[error("{source_name}: cannot decrypt the key (wrong passphrase or corrupt key)")]
    Decrypt { source_name: String },
    #[error("cannot read the passphrase from the terminal: {0}")]
    Prompt(#[source] std::io::Error),
    #[error("cannot generate a key: {0}")]
    Generate(String),
}

/// A signature did not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("signature does not verify with this key")]
    BadSignature,
    #[error("malformed signature: {0}")]
    MalformedSignature(&'static str),
}
