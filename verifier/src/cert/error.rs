//! [`CertError`]: why a certificate cannot be parsed or does not verify. A leaf below the
//! parser (`cert`), the name checks (`names`) and the path builder (`path`).

use cfsgate_policy::Timestamp;

/// Why a certificate cannot be parsed or does not verify. Each failure says which
/// certificate (by subject) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// The bytes are not an X.509 certificate Go would parse.
    #[error("not a valid X.509 certificate: {0}")]
    Parse(String),
    /// PEM text that does not decode.
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// No certificate in the input.
    #[error("no certificate found")]
    Empty,
    /// More than [`MAX_PEM_CERTIFICATES`] certificates.
    #[error("more than {limit} certificates in one PEM text")]
    TooMany {
        /// The limit.
        limit: usize,
    },
    /// The certificate's key cannot be used by cfsgate.
    #[error("certificate {subject:?}: unusable public key: {reason}")]
    UnsupportedKey {
        /// The certificate's subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// The certificate is not valid at the time it is judged at.
    #[error("certificate {subject:?} is not valid at {at} (valid {not_before} to {not_after})")]
    NotValidAt {
        /// The certificate's subject.
        subject: String,
        /// The time judged at.
        at: Timestamp,
        /// Its `notBefore`.
        not_before: Timestamp,
        /// Its `notAfter`.
        not_after: Timestamp,
    },
    /// A critical extension cfsgate (like Go) does not handle.
    #[error("certificate {subject:?} has an unhandled critical extension {oid}")]
    UnhandledCriticalExtension {
        /// The certificate's subject.
        subject: String,
        /// The extension.
        oid: String,
    },
    /// An issuer that is not a CA (no basic constraints in a v3 certificate, or `cA` false).
    #[error(
        "certificate {subject:?} is not a CA (basicConstraints), so it cannot issue {child:?}"
    )]
    NotCa {
        /// The would-be issuer.
        subject: String,
        /// The certificate it would have issued.
        child: String,
    },
    /// An issuer whose key usage lacks `keyCertSign`.
    #[error("certificate {subject:?} may not sign certificates (keyUsage lacks keyCertSign), so it cannot issue {child:?}")]
    NoKeyCertSign {
        /// The would-be issuer.
        subject: String,
        /// The certificate it would have issued.
        child: String,
    },
    /// A CA with name constraints (Go enforces them; cfsgate refuses such chains).
    #[error("certificate {subject:?} carries name constraints, which cfsgate does not evaluate (refused)")]
    NameConstraints {
        /// The CA's subject.
        subject: String,
    },
    /// A CA whose `pathLenConstraint` is exceeded.
    #[error(
        "certificate {subject:?} allows {max} intermediate(s) below it, the chain has {found}"
    )]
    PathLength {
        /// The CA's subject.
        subject: String,
        /// Its `pathLenConstraint`.
        max: u8,
        /// Intermediates below it.
        found: usize,
    },
    /// A signature algorithm that is not supported or not secure (SHA-1, MD5, DSA, …).
    #[error("certificate {subject:?}: signature algorithm {algorithm} is not accepted")]
    SignatureAlgorithm {
        /// The certificate's subject.
        subject: String,
        /// The algorithm (OID or name).
        algorithm: String,
    },
    /// The issuer's key does not verify the certificate's signature.
    #[error("certificate {subject:?}: signature does not verify with the key of {issuer:?}")]
    BadSignature {
        /// The certificate's subject.
        subject: String,
        /// The issuer tried.
        issuer: String,
    },
    /// No trusted root issued the chain.
    #[error("certificate {subject:?}: issuer {issuer:?} is not a trusted root nor issued by one")]
    UnknownAuthority {
        /// The certificate whose issuer was not found.
        subject: String,
        /// The issuer it names.
        issuer: String,
    },
    /// Every chain found lacks code signing in some certificate's extended key usage.
    #[error("certificate {subject:?}: the chain does not allow code signing (extendedKeyUsage)")]
    KeyUsage {
        /// The leaf's subject.
        subject: String,
    },
    /// Path building gave up: too many certificates or signature checks.
    #[error("certificate {subject:?}: chain building exceeded {limit}")]
    ChainTooLong {
        /// The leaf's subject.
        subject: String,
        /// Which limit.
        limit: String,
    },
    /// The Fulcio OIDC issuer extensions are missing or inconsistent.
    #[error("Fulcio certificate {subject:?}: {reason}")]
    FulcioIssuer {
        /// The certificate's subject.
        subject: String,
        /// What is wrong.
        reason: String,
    },
}
