//! The X.509 a sigstore bundle needs, until `crate::cert` (chains for `sigstoreSigned` fulcio/pki)
//! lands on main: a certificate's key, validity, SANs, Fulcio OIDC issuer, and a chain to a
//! trusted root checked signature by signature.
//!
//! | rule | |
//! |---|---|
//! | path | from the leaf, each parent is a certificate of the trusted chain whose subject (DER) is the child's issuer and whose key verifies the child's signature (ECDSA with SHA-256/384/512, RSA PKCS#1 v1.5 SHA-256), until a root of the trusted root |
//! | parents | CAs by basic constraints; every certificate, leaf included, valid at the time judged |
//! | bounds | at most [`MAX_PATH`] certificates |
//! | Fulcio issuer | extension 1.3.6.1.4.1.57264.1.8 (a DER UTF8String), else 1.3.6.1.4.1.57264.1.1 (raw text) |

use cfsgate_keyring::PublicKey;
use cfsgate_policy::Timestamp;
use der::{Decode as _, Encode as _};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, SubjectAltName};

use crate::sigalg::SignatureAlgorithm;

/// Most certificates in a path (Fulcio's are 3: leaf, intermediate, root).
pub const MAX_PATH: usize = 8;

const OID_BASIC_CONSTRAINTS: &str = "2.5.29.19";
const OID_SAN: &str = "2.5.29.17";
const OID_FULCIO_ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";
const OID_FULCIO_ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";

/// Why a certificate is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CertError(pub String);

/// A parsed certificate.
#[derive(Debug, Clone)]
pub struct Certificate {
    der: Vec<u8>,
    tbs: Vec<u8>,
    subject_der: Vec<u8>,
    issuer_der: Vec<u8>,
    subject: String,
    issuer: String,
    spki: Vec<u8>,
    not_before: i64,
    not_after: i64,
    ca: bool,
    signature_oid: String,
    signature: Vec<u8>,
    emails: Vec<String>,
    uris: Vec<String>,
    dns: Vec<String>,
    fulcio_v1: Option<Vec<u8>>,
    fulcio_v2: Option<Vec<u8>>,
}

fn bad(e: impl std::fmt::Display) -> CertError {
    CertError(format!("not a usable X.509 certificate: {e}"))
}

impl Certificate {
    /// Parses one DER certificate.
    pub fn from_der(bytes: &[u8]) -> Result<Self, CertError> {
        let cert = x509_cert::Certificate::from_der(bytes).map_err(bad)?;
        let tbs = &cert.tbs_certificate;
        let secs = |t: &x509_cert::time::Time| {
            i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
        };
        let mut out = Self {
            der: bytes.to_vec(),
            tbs: tbs.to_der().map_err(bad)?,
            subject_der: tbs.subject.to_der().map_err(bad)?,
            issuer_der: tbs.issuer.to_der().map_err(bad)?,
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            spki: tbs.subject_public_key_info.to_der().map_err(bad)?,
            not_before: secs(&tbs.validity.not_before),
            not_after: secs(&tbs.validity.not_after),
            ca: false,
            signature_oid: cert.signature_algorithm.oid.to_string(),
            signature: cert.signature.raw_bytes().to_vec(),
            emails: Vec::new(),
            uris: Vec::new(),
            dns: Vec::new(),
            fulcio_v1: None,
            fulcio_v2: None,
        };
        for ext in tbs.extensions.as_deref().unwrap_or_default() {
            let value = ext.extn_value.as_bytes();
            match ext.extn_id.to_string().as_str() {
                OID_BASIC_CONSTRAINTS => {
                    out.ca = BasicConstraints::from_der(value).map_err(bad)?.ca
                }
                OID_SAN => {
                    for name in SubjectAltName::from_der(value).map_err(bad)?.0 {
                        match name {
                            GeneralName::Rfc822Name(n) => out.emails.push(n.to_string()),
                            GeneralName::UniformResourceIdentifier(n) => {
                                out.uris.push(n.to_string())
                            }
                            GeneralName::DnsName(n) => out.dns.push(n.to_string()),
                            _ => {}
                        }
                    }
                }
                OID_FULCIO_ISSUER_V1 => out.fulcio_v1 = Some(value.to_vec()),
                OID_FULCIO_ISSUER_V2 => out.fulcio_v2 = Some(value.to_vec()),
                _ => {}
            }
        }
        Ok(out)
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// The subject, as text.
    pub fn subject(&self) -> &str {
        &self.subject
    }
    /// The issuer, as text.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    /// The SubjectPublicKeyInfo, DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }
    /// The certificate's key.
    pub fn public_key(&self) -> Result<PublicKey, CertError> {
        PublicKey::from_spki_der(&self.spki, &self.subject).map_err(|e| CertError(e.to_string()))
    }
    /// Whether `at` is within notBefore..=notAfter.
    pub fn valid_at(&self, at: Timestamp) -> bool {
        self.not_before <= at.0 && at.0 <= self.not_after
    }
    /// Whether basic constraints make it a CA.
    pub fn is_ca(&self) -> bool {
        self.ca
    }
    /// SAN e-mail addresses.
    pub fn san_emails(&self) -> &[String] {
        &self.emails
    }
    /// SAN URIs.
    pub fn san_uris(&self) -> &[String] {
        &self.uris
    }
    /// SAN DNS names.
    pub fn san_dns_names(&self) -> &[String] {
        &self.dns
    }
    /// Kept for the API `crate::cert` will have: the SAN is matched by the caller.
    pub fn accepting_critical_san(self) -> Self {
        self
    }
    /// The Fulcio OIDC issuer (see the module table).
    pub fn fulcio_oidc_issuer(&self) -> Result<String, CertError> {
        if let Some(v2) = &self.fulcio_v2 {
            return der::asn1::Utf8StringRef::from_der(v2)
                .map(|s| s.as_str().to_string())
                .map_err(|e| CertError(format!("Fulcio issuer extension: {e}")));
        }
        self.fulcio_v1
            .as_ref()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .ok_or_else(|| CertError("no Fulcio OIDC issuer extension".into()))
    }
    /// Whether `issuer` issued this certificate: names match and its key verifies the signature.
    pub fn is_signed_by(&self, issuer: &Certificate) -> bool {
        if self.issuer_der != issuer.subject_der {
            return false;
        }
        let (Some(alg), Ok(key)) = (
            SignatureAlgorithm::from_oid(&self.signature_oid, None),
            issuer.public_key(),
        ) else {
            return false;
        };
        alg.verify(&key, &self.tbs, &self.signature)
    }
}

/// The path from `leaf` to one of `roots` through `intermediates`, all valid at `at` (see the
/// module table); leaf first, root last.
pub fn verify_chain(
    leaf: &Certificate,
    intermediates: &[Certificate],
    roots: &[Certificate],
    at: Timestamp,
) -> Result<Vec<Certificate>, CertError> {
    if !leaf.valid_at(at) {
        return Err(CertError(format!("{} is not valid at {at}", leaf.subject)));
    }
    let mut chain = vec![leaf.clone()];
    while chain.len() < MAX_PATH {
        let child = &chain[chain.len() - 1];
        if let Some(root) = roots.iter().find(|r| child.is_signed_by(r)) {
            if !root.valid_at(at) || !root.ca {
                return Err(CertError(format!(
                    "root {} is not valid at {at}",
                    root.subject
                )));
            }
            chain.push(root.clone());
            return Ok(chain);
        }
        let parent = intermediates
            .iter()
            .find(|c| child.is_signed_by(c))
            .ok_or_else(|| CertError(format!("no trusted issuer signed {}", child.subject)))?;
        if !parent.valid_at(at) || !parent.ca {
            return Err(CertError(format!(
                "intermediate {} is not a CA valid at {at}",
                parent.subject
            )));
        }
        chain.push(parent.clone());
    }
    Err(CertError("the path is too long".into()))
}
