//! Errors of the registry client: each says which registry URL, blob or file, and why.

use std::io;
use std::path::PathBuf;

use crate::digest::BlobDigest;
use crate::error::OciError;

/// Anything that can go wrong talking to a registry or storing what it sent.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{method} {url}: the registry answered {status}: {message}")]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        message: String,
    },
    #[error("{method} {url}: {reason}")]
    Transport {
        method: &'static str,
        url: String,
        reason: String,
    },
    #[error("authenticating to {host}: {reason}")]
    Auth { host: String, reason: String },
    #[error("{what} from {url}: the registry sent bytes that hash to {actual}, not the {expected} asked for; nothing was stored")]
    DigestMismatch {
        what: &'static str,
        url: String,
        expected: BlobDigest,
        actual: BlobDigest,
    },
    #[error("{what} from {url} is larger than the limit of {limit} bytes")]
    TooLarge {
        what: &'static str,
        url: String,
        limit: u64,
    },
    #[error("{what} from {url}: {reason}; nothing was stored")]
    BadLength {
        what: &'static str,
        url: String,
        reason: String,
    },
    #[error("{what} from {url}: {reason}")]
    Protocol {
        what: &'static str,
        url: String,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("access to {reference} is blocked by {path}")]
    Blocked { reference: String, path: PathBuf },
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
