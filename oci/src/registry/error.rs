//! Errors of the registry client: each says which registry URL, blob or file, and why.

use std::io;
use std::path::PathBuf;

use crate::digest::BadDigest;
use crate::digest::BlobDigest;
use crate::error::OciError;

/// Anything that can go wrong talking to a registry or storing what it sent.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered with an HTTP error status.
    #[error("{method} {url}: the registry answered {status}: {message}")]
    Status {
        /// The HTTP method.
        method: &'static str,
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The registry's error message (from its JSON error body, when it sent one).
        message: String,
    },
    /// The request did not complete (connection, TLS, timeout, redirect).
    #[error("{method} {url}: {reason}")]
    Transport {
        /// The HTTP method.
        method: &'static str,
        /// The URL requested.
        url: String,
        /// What failed.
        reason: String,
    },
    /// Getting a token or using credentials failed.
    #[error("authenticating to {host}: {reason}")]
    Auth {
        /// The registry host.
        host: String,
        /// What failed.
        reason: String,
    },
    /// The registry sent bytes that do not hash to the digest asked for.
    #[error("{what} from {url}: the registry sent bytes that hash to {actual}, not the {expected} asked for; nothing was stored")]
    DigestMismatch {
        /// What was fetched (`"manifest"`, `"blob"`, ...).
        what: &'static str,
        /// The URL.
        url: String,
        /// The digest asked for.
        expected: BlobDigest,
        /// The digest of the bytes received.
        actual: BlobDigest,
    },
    /// A response is larger than the named size limit for its kind.
    #[error("{what} from {url} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// What was fetched.
        what: &'static str,
        /// The URL.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// A response is shorter or longer than its descriptor or `Content-Length` says.
    #[error("{what} from {url}: {reason}; nothing was stored")]
    BadLength {
        /// What was fetched.
        what: &'static str,
        /// The URL.
        url: String,
        /// How the lengths differ.
        reason: String,
    },
    /// The registry broke the distribution protocol (a bad header, body or redirect).
    #[error("{what} from {url}: {reason}")]
    Protocol {
        /// What was being fetched.
        what: &'static str,
        /// The URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// A registries.conf, auth or policy configuration file is malformed.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A local file cannot be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error the kernel returned.
        #[source]
        source: io::Error,
    },
    /// The registries configuration blocks this registry or repository.
    #[error("access to {reference} is blocked by {path}")]
    Blocked {
        /// The reference asked for.
        reference: String,
        /// The configuration file that blocks it.
        path: PathBuf,
    },
    /// What the registry sent is not a valid OCI image.
    #[error(transparent)]
    Oci(#[from] OciError),
}

impl RegistryError {
    /// The HTTP status of a refused request, if that is what this is.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        RegistryError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

impl From<BadDigest> for RegistryError {
    fn from(bad: BadDigest) -> Self {
        RegistryError::Oci(bad.into())
    }
}
