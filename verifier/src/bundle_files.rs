//! A sigstore bundle verified offline from files (`cfsgate sigstore verify-bundle`, in the
//! shape of sigstore-conformance's CLI protocol): the bundle, the expected signer (a key file,
//! or a certificate identity and OIDC issuer), `trusted_root.json` and the artifact (a file, or
//! `sha256:HEX` of it), judged by [`crate::bundle_keyless::verify_bundle`].
//!
//! Everything is judged at the signing time the bundle proves (SET, RFC 3161 timestamp); `now`
//! only bounds the SET's time from above. Every error names the file or argument at fault.

use std::path::{Path, PathBuf};

use cfsgate_keyring::{read_trust_file, KeyError, PublicKey, MAX_TRUST_FILE_BYTES};
use cfsgate_sys::file::{self, FileError, Follow, SizeLimit};

use crate::bundle::{parse_bundle, BundleParseError, MAX_BUNDLE_BYTES};
use crate::bundle_keyless::{verify_bundle, Expected, VerifiedSigning};
use crate::bundle_verify::{Artifact, BundleError};
use crate::trusted_root::{TrustedRoot, TrustedRootError};

/// Where the trusted root is read from when none is named.
pub const DEFAULT_TRUSTED_ROOT: &str = "/etc/cfsgate/sigstore/trusted_root.json";
/// Largest artifact read to verify a message signature over it (use `sha256:HEX` beyond).
pub const MAX_ARTIFACT_BYTES: u64 = 1 << 30;

/// Who must have signed.
#[derive(Clone, Copy, Debug)]
pub enum ExpectedSigner<'a> {
    /// The key in this public key file.
    KeyFile(&'a Path),
    /// A Fulcio certificate for this identity (SAN) from this OIDC issuer, exactly.
    Identity {
        /// The SAN value.
        identity: &'a str,
        /// The OIDC issuer URL.
        issuer: &'a str,
    },
}

impl<'a> ExpectedSigner<'a> {
    /// The signer a command line names: a key file (which wins), or an identity with its
    /// issuer; `None` when it names neither.
    pub fn from_options(
        key: Option<&'a Path>,
        identity: Option<&'a str>,
        issuer: Option<&'a str>,
    ) -> Option<Self> {
        match (key, identity, issuer) {
            (Some(key), _, _) => Some(ExpectedSigner::KeyFile(key)),
            (None, Some(identity), Some(issuer)) => {
                Some(ExpectedSigner::Identity { identity, issuer })
            }
            _ => None,
        }
    }
}

/// The line `cfsgate sigstore verify-bundle` prints for the verified bundle at `bundle`: the
/// signer, the log entries and each time of signing with who vouches for it.
pub fn verified_line(bundle: &Path, verified: &VerifiedSigning) -> String {
    let times: Vec<String> = verified
        .times
        .iter()
        .map(|t| format!("{} by {}", cfsgate_policy::Timestamp(t.time), t.source))
        .collect();
    format!(
        "verified: bundle {} signed by {}, log entries {:?}, signed at {}",
        bundle.display(),
        verified.signer,
        verified.log_indexes,
        times.join(", ")
    )
}

/// The files and arguments to verify.
#[derive(Clone, Copy, Debug)]
pub struct BundleFiles<'a> {
    /// The bundle (`*.sigstore.json`).
    pub bundle: &'a Path,
    /// Who must have signed.
    pub signer: ExpectedSigner<'a>,
    /// `trusted_root.json`; `None`: [`DEFAULT_TRUSTED_ROOT`].
    pub trusted_root: Option<&'a Path>,
    /// The artifact: a file path, or `sha256:HEX`.
    pub artifact: &'a str,
}

/// Why the bundle was not verified.
#[derive(Debug, thiserror::Error)]
pub enum BundleFilesError {
    /// A file cannot be read (it names itself).
    #[error(transparent)]
    File(#[from] FileError),
    /// The expected key cannot be read.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The bundle is not a sigstore bundle.
    #[error("bundle {}: {source}", path.display())]
    Parse {
        /// The bundle.
        path: PathBuf,
        /// Why.
        source: BundleParseError,
    },
    /// The trusted root is not valid.
    #[error("trusted root {}: {source}", path.display())]
    Root {
        /// The file.
        path: PathBuf,
        /// Why.
        source: TrustedRootError,
    },
    /// `sha256:` followed by something other than 64 hex digits.
    #[error("{0:?} is not sha256:<64 hex digits>")]
    ArtifactDigest(String),
    /// The bundle does not verify.
    #[error("bundle {}: refused: {source}", path.display())]
    Refused {
        /// The bundle.
        path: PathBuf,
        /// The check that failed.
        source: BundleError,
    },
}

/// Verify the bundle at `files.bundle` (see the module docs) at time `now` (seconds).
pub fn verify_bundle_files(
    files: &BundleFiles<'_>,
    now: i64,
) -> Result<VerifiedSigning, BundleFilesError> {
    let bundle_bytes = file::read(
        files.bundle,
        Follow::Symlinks,
        SizeLimit::new("sigstore bundle", MAX_BUNDLE_BYTES),
    )?;
    let bundle = parse_bundle(&bundle_bytes).map_err(|source| BundleFilesError::Parse {
        path: files.bundle.to_owned(),
        source,
    })?;
    let key;
    let expected = match files.signer {
        ExpectedSigner::KeyFile(path) => {
            key = PublicKey::from_file(path)?;
            Expected::Key(&key)
        }
        ExpectedSigner::Identity { identity, issuer } => Expected::Identity { identity, issuer },
    };
    let root_path = files
        .trusted_root
        .unwrap_or_else(|| Path::new(DEFAULT_TRUSTED_ROOT));
    let root = TrustedRoot::parse(&read_trust_file(root_path, MAX_TRUST_FILE_BYTES)?).map_err(
        |source| BundleFilesError::Root {
            path: root_path.to_owned(),
            source,
        },
    )?;
    let bytes;
    let artifact = match files.artifact.strip_prefix("sha256:") {
        Some(hex) => Artifact::Sha256(
            hex::decode(hex)
                .ok()
                .and_then(|d| d.try_into().ok())
                .ok_or_else(|| BundleFilesError::ArtifactDigest(files.artifact.to_string()))?,
        ),
        None => {
            bytes = file::read(
                Path::new(files.artifact),
                Follow::Symlinks,
                SizeLimit::new("artifact", MAX_ARTIFACT_BYTES),
            )?;
            Artifact::Bytes(&bytes)
        }
    };
    verify_bundle(&bundle, artifact, expected, &root, now).map_err(|source| {
        BundleFilesError::Refused {
            path: files.bundle.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle_keyless::SigningTime;

    #[test]
    fn the_signer_is_a_key_file_or_an_identity_with_its_issuer() {
        let key = Path::new("/k.pub");
        let got = ExpectedSigner::from_options(Some(key), Some("me"), None);
        assert!(matches!(got, Some(ExpectedSigner::KeyFile(k)) if k == key));
        let got = ExpectedSigner::from_options(None, Some("me"), Some("https://issuer"));
        assert!(matches!(
            got,
            Some(ExpectedSigner::Identity {
                identity: "me",
                issuer: "https://issuer"
            })
        ));
        assert!(ExpectedSigner::from_options(None, Some("me"), None).is_none());
        assert!(ExpectedSigner::from_options(None, None, Some("https://issuer")).is_none());
    }

    #[test]
    fn the_verified_line_names_signer_entries_and_times() {
        let verified = VerifiedSigning {
            signer: "key abc".into(),
            times: vec![
                SigningTime {
                    time: 0,
                    source: "tlog entry 7 (SET)".into(),
                },
                SigningTime {
                    time: 86_400,
                    source: "timestamp authority https://tsa".into(),
                },
            ],
            log_indexes: vec![7],
            dsse_payload: None,
        };
        assert_eq!(
            verified_line(Path::new("/b.sigstore.json"), &verified),
            format!(
                "verified: bundle /b.sigstore.json signed by key abc, log entries [7], signed at {} by tlog entry 7 (SET), {} by timestamp authority https://tsa",
                cfsgate_policy::Timestamp(0),
                cfsgate_policy::Timestamp(86_400)
            )
        );
    }

    #[test]
    fn a_missing_or_malformed_bundle_is_named_before_anything_else_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bundle = dir.path().join("b.sigstore.json");
        let files = BundleFiles {
            bundle: &bundle,
            signer: ExpectedSigner::KeyFile(Path::new("/nonexistent/key.pub")),
            trusted_root: Some(Path::new("/nonexistent/root.json")),
            artifact: "sha256:zz",
        };
        let error = verify_bundle_files(&files, 0).expect_err("no bundle");
        assert!(matches!(error, BundleFilesError::File(_)), "{error}");
        assert!(
            error.to_string().contains(&bundle.display().to_string()),
            "{error}"
        );
        std::fs::write(&bundle, b"{\"mediaType\": 1}").expect("write");
        let error = verify_bundle_files(&files, 0).expect_err("not a bundle");
        assert!(matches!(error, BundleFilesError::Parse { .. }), "{error}");
        assert!(
            error
                .to_string()
                .starts_with(&format!("bundle {}: ", bundle.display())),
            "{error}"
        );
    }
}
