//! [`BundleError`]: why a sigstore bundle does not verify. A leaf below the bundle verifiers
//! (`bundle_verify`, `bundle_tlog`, `bundle_keyless`), re-exported by `bundle_verify`.

/// Why a bundle does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The bundle cannot be parsed.
    #[error(transparent)]
    Parse(#[from] crate::bundle::BundleParseError),
    /// The trusted root file is malformed; the text says how.
    #[error("trusted root: {0}")]
    TrustedRoot(String),
    /// The bundle's kind of signer is not what verification asked for (a key-signed bundle
    /// checked for a certificate identity, or the reverse); the text says which.
    #[error("{0}")]
    SignerKind(String),
    /// The bundle's certificate does not parse, chain to a trusted CA at the signing time,
    /// or carry a valid SCT; the text says which.
    #[error("the signing certificate: {0}")]
    Certificate(String),
    /// The certificate names another identity (SAN) or OIDC issuer than required.
    #[error("the signing certificate is for {found}, not {wanted}")]
    IdentityMismatch {
        /// What the certificate says.
        found: String,
        /// What was required.
        wanted: String,
    },
    /// An RFC 3161 timestamp of the bundle does not verify; the text says why.
    #[error("timestamp {index}: {reason}")]
    Timestamp {
        /// Index of the timestamp in the bundle.
        index: usize,
        /// What fails.
        reason: String,
    },
    /// No verified time (a SET's integrated time, a TSA timestamp) says when the bundle was signed.
    #[error(
        "no verified time of signing: neither a tlog entry with a SET nor a trusted timestamp"
    )]
    NoVerifiedTime,
    /// A verified time of signing is outside the signing certificate's validity.
    #[error("the {which} time {time} is outside the signing certificate's validity")]
    OutsideCertificateValidity {
        /// Which time (`integrated`, `timestamp`).
        which: &'static str,
        /// The time.
        time: cfsgate_policy::Timestamp,
    },
    /// The bundle is certificate-signed (keyless); only key-signed bundles are verified.
    #[error(
        "the bundle is signed with a certificate; this verification needs a key-signed bundle"
    )]
    CertificateNotSupported,
    /// The bundle's `messageDigest` differs from the artifact's sha256.
    #[error("the bundle's messageDigest is not the artifact's sha256")]
    MessageDigestMismatch,
    /// The signature does not verify over the artifact with the key.
    #[error("the signature does not verify with the key over the artifact")]
    SignatureInvalid,
    /// Only a digest of the artifact is known, which only ECDSA can verify (prehashed); the key's
    /// algorithm is given.
    #[error("an artifact given by digest can only be checked against an ECDSA signature (the key is {0})")]
    DigestNeedsEcdsa(String),
    /// The DSSE envelope is malformed or its signature does not verify; the text says which.
    #[error("DSSE envelope: {0}")]
    Dsse(String),
    /// The in-toto statement's subjects do not include the artifact's sha256.
    #[error("the in-toto statement names no subject with the artifact's sha256")]
    SubjectMismatch,
    /// The bundle has no transparency log entry, so no proof the signature was logged.
    #[error("the bundle has no transparency log entry")]
    NoTlogEntry,
    /// A tlog entry comes from a log the trusted root does not list.
    #[error("tlog entry {index}: from log {log_id}, which is not trusted")]
    UntrustedLog {
        /// Index of the entry in the bundle.
        index: u64,
        /// Its `logId`, hex.
        log_id: String,
    },
    /// A tlog entry's kind or version does not fit the bundle's content.
    #[error("tlog entry {index}: kind {kind} {version} does not match the bundle's content")]
    WrongKind {
        /// Index of the entry in the bundle.
        index: u64,
        /// The entry's kind.
        kind: String,
        /// The entry's kind version.
        version: String,
    },
    /// The logged body describes another signature, key or artifact.
    #[error("tlog entry {index}: the logged body does not match the bundle: {reason}")]
    BodyMismatch {
        /// Index of the entry in the bundle.
        index: u64,
        /// What differs.
        reason: String,
    },
    /// The signed entry timestamp does not verify with the log's key.
    #[error(
        "tlog entry {index}: the signed entry timestamp (SET) does not verify with the log key"
    )]
    SetInvalid {
        /// Index of the entry in the bundle.
        index: u64,
    },
    /// The entry claims to be logged later than now.
    #[error("tlog entry {index}: integrated time {time} is after now ({now})")]
    IntegratedTimeInFuture {
        /// Index of the entry in the bundle.
        index: u64,
        /// The integrated time (unix seconds).
        time: i64,
        /// The current time (unix seconds).
        now: i64,
    },
    /// The entry was logged outside the log key's validity window.
    #[error("tlog entry {index}: integrated time {time} is outside the log key's validity")]
    OutsideLogValidity {
        /// Index of the entry in the bundle.
        index: u64,
        /// The integrated time (unix seconds).
        time: i64,
    },
    /// The inclusion proof does not lead to the stated root.
    #[error("tlog entry {index}: the inclusion proof is invalid: {reason}")]
    InclusionProofInvalid {
        /// Index of the entry in the bundle.
        index: u64,
        /// What fails.
        reason: String,
    },
    /// The checkpoint (signed tree head) is malformed, does not verify or does not match the proof.
    #[error("tlog entry {index}: the checkpoint is invalid: {reason}")]
    CheckpointInvalid {
        /// Index of the entry in the bundle.
        index: u64,
        /// What fails.
        reason: String,
    },
    /// A tlog entry has neither a SET nor an inclusion proof.
    #[error("tlog entry {index}: neither a SET nor an inclusion proof")]
    Unproven {
        /// Index of the entry in the bundle.
        index: u64,
    },
}
