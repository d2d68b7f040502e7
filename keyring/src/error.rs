//! Error types of the keyring crate: what went wrong, and with which key, file or kernel key.

/// Reading or parsing a key failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file is not a readable regular file of bounded size (see [`crate::file`]).
    #[error(transparent)]
    File(#[from] crate::file::TrustFileError),
    /// A public key file holds more than one PEM block, so which key is meant is unclear.
    #[error("{source_name}: holds {blocks} PEM blocks; a public key file must hold exactly one key (only the first would be used)")]
    SeveralPemBlocks {
        /// Where the key came from (a file path or a caller's label), for the message.
        source_name: String,
        /// Number of PEM blocks found.
        blocks: usize,
    },
    /// The PEM block's label is not the one this kind of key file needs.
    #[error("{source_name}: found PEM block \"{found}\", expected {expected}")]
    UnexpectedPem {
        /// Where the key came from (a file path or a caller's label), for the message.
        source_name: String,
        /// The label found (`CERTIFICATE`, `RSA PRIVATE KEY`, ...).
        found: String,
        /// The label or labels accepted here.
        expected: &'static str,
    },
    /// The key's encoding (PEM, DER, SPKI, PKCS#8) is malformed.
    #[error("{source_name}: {reason}")]
    Invalid {
        /// Where the key came from (a file path or a caller's label), for the message.
        source_name: String,
        /// What the decoder rejected.
        reason: String,
    },
    /// A well-formed key of an algorithm or curve cfsgate does not accept.
    #[error("{source_name}: unsupported key: {found}")]
    Unsupported {
        /// Where the key came from (a file path or a caller's label), for the message.
        source_name: String,
        /// The algorithm or curve found (an OID or name).
        found: String,
    },
    /// An RSA key outside the accepted modulus sizes.
    #[error("{source_name}: RSA key of {bits} bits, only {min}–{max} bits are accepted")]
    RsaSize {
        /// Where the key came from (a file path or a caller's label), for the message.
        source_name: String,
        /// The modulus size of the key in bits.
        bits: usize,
        /// Smallest accepted size (`public::RSA_MIN_BITS`), carried here so that this module
        /// depends on no other.
        min: usize,
        /// Largest accepted size (`public::RSA_MAX_BITS`).
        max: usize,
    },
    /// The private key is encrypted, and neither the environment nor a terminal gives a
    /// passphrase.
    #[error("{source_name}: the key is encrypted and no passphrase is available (set {env} or run on a terminal)")]
    NoPassphrase {
        /// Where the key came from (a file path or a caller's label), for the message.
        source_name: String,
        /// The environment variable that would hold the passphrase (`private::PASSPHRASE_ENV`).
        env: &'static str,
    },
    /// Decrypting an encrypted private key failed.
    #[error("{source_name}: cannot decrypt the key (wrong passphrase or corrupt key)")]
    Decrypt {
        /// Where the key came from (a file path or a caller's label), for the message.
        source_name: String,
    },
    /// Reading the passphrase from the terminal failed.
    #[error("cannot read the passphrase from the terminal: {0}")]
    Prompt(#[source] std::io::Error),
    /// A newly generated key could not be encoded (PKCS#8 or PEM); the text says which step.
    #[error("cannot generate a key: {0}")]
    Generate(String),
}

/// A signature did not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// The signature is well formed but does not match the data under this key.
    #[error("signature does not verify with this key")]
    BadSignature,
    /// The signature bytes cannot be a signature of this key's algorithm (wrong length or
    /// encoding); the text says what is wrong.
    #[error("malformed signature: {0}")]
    MalformedSignature(&'static str),
}
