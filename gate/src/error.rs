//! The gate's error: a refusal ([`GateError::Denied`], exit status 1 in the CLI) or a failure to
//! do what was asked (everything else, exit status 2), and [`reason_of`], which prints an error
//! with its causes on one line.

use std::path::PathBuf;

/// What went wrong in a gate operation.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The container must not start (or the cleanup must not happen): the reason, in words.
    #[error("denied: {0}")]
    Denied(String),
    /// A file or directory operation failed.
    #[error("{what} {}", path.display())]
    Io {
        /// What was being done (`reading`, `creating`, …).
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document could not be read or written.
    #[error("{what}")]
    Json {
        /// Which document, and where.
        what: String,
        /// serde_json's error (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// The input is well-formed JSON but not what the hook can use.
    #[error("{0}")]
    Invalid(String),
    /// Mounting the verified image failed.
    #[error("mounting sha256:{digest} on {}", rootfs.display())]
    Mount {
        /// The trusted digest being mounted.
        digest: String,
        /// Where.
        rootfs: PathBuf,
        /// The mounter's error.
        #[source]
        source: Box<cfsgate_mounter::MountError>,
    },
    /// The mounter refused or failed (verity probing, unmounting).
    #[error(transparent)]
    Mounter(Box<cfsgate_mounter::MountError>),
    /// Cleaning up a container's state left something behind.
    #[error("cleanup of {}: {}", state.display(), problems.join("; "))]
    Cleanup {
        /// The container's state directory.
        state: PathBuf,
        /// Each thing that could not be undone.
        problems: Vec<String>,
    },
}

impl From<cfsgate_mounter::MountError> for GateError {
    fn from(e: cfsgate_mounter::MountError) -> Self {
        GateError::Mounter(Box::new(e))
    }
}

impl GateError {
    /// Whether this is a refusal (the CLI exits 1) rather than a failure (exit 2).
    pub fn is_denial(&self) -> bool {
        matches!(self, GateError::Denied(_))
    }

    /// A refusal whose reason is this error's text ([`reason_of`]); a refusal stays itself.
    pub fn into_denial(self) -> GateError {
        match self {
            GateError::Denied(_) => self,
            other => GateError::Denied(reason_of(&other)),
        }
    }

    /// `what` on `path` failed with `source`.
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        GateError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

/// `Result` with a [`GateError`].
pub type Result<T, E = GateError> = std::result::Result<T, E>;

/// An error and its causes on one line, `outer: cause: …`, without repeating a cause whose text
/// the message before it already ends with (library errors often print their source inside
/// their own message and expose it as `source()` too). A refusal gives its bare reason.
pub fn reason_of(error: &(dyn std::error::Error + 'static)) -> String {
    if let Some(GateError::Denied(reason)) = error.downcast_ref::<GateError>() {
        return reason.clone();
    }
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_joined_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = GateError::io("reading", "/x/config.json", io);
        assert_eq!(reason_of(&e), "reading /x/config.json: entity not found");
        let denied = GateError::Denied("unsigned".into());
        assert_eq!(reason_of(&denied), "unsigned");
        assert_eq!(denied.to_string(), "denied: unsigned");
        assert!(GateError::Invalid("x".into()).into_denial().is_denial());
    }

    /// Like a thiserror variant `#[error("… {source}")]`: its message includes its source.
    #[derive(Debug)]
    struct Open {
        source: std::io::Error,
    }

    impl std::fmt::Display for Open {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot open image /x: {}", self.source)
        }
    }

    impl std::error::Error for Open {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    /// The CLI's errors (anyhow, with context) on one line: the CLI prints `reason_of`.
    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let error = anyhow::Error::new(Open { source: io }).context("mounting sha256:ab on /m");
        assert_eq!(
            reason_of(error.as_ref()),
            "mounting sha256:ab on /m: cannot open image /x: entity not found"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(reason_of(plain.as_ref()), "outer: inner");
    }
}
