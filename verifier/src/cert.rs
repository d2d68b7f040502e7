//! X.509 certificates for keyless (Fulcio) and PKI signatures: parsing, the fields the
//! sigstore checks read, and chain verification with the semantics of Go's `crypto/x509`
//! `Certificate.Verify` (what containers/image and cosign call).
//!
//! Input formats:
//!
//! | input | function | on a bad block |
//! |---|---|---|
//! | one DER certificate | [`Certificate::from_der`] | error |
//! | PEM text, every block must be a certificate (signature annotations, PKI intermediates; sigstore's `cryptoutils.UnmarshalCertificatesFromPEM`) | [`Certificate::parse_pem_bundle`] | error |
//! | PEM text of trusted CAs (`caPath`, `caRootsPath`; Go's `CertPool.AppendCertsFromPEM`) | [`Certificate::parse_pem_pool`] | block skipped; error only when no certificate is left |
//!
//! At most [`MAX_PEM_CERTIFICATES`] certificates are read from one PEM text. Parsing refuses
//! what Go's `x509.ParseCertificate` refuses and this module relies on: inner and outer
//! signature algorithms that differ, a repeated extension, extensions in a non-v3
//! certificate, a malformed extension this module reads (basic constraints, key usage,
//! extended key usage, subject alternative names, key identifiers), a malformed SAN e-mail,
//! DNS name, URI or IP address.
//!
//! Fields ([`names`] holds the name checks):
//!
//! | accessor | source |
//! |---|---|
//! | [`Certificate::public_key`] | SubjectPublicKeyInfo, as `cfsgate_keyring` reads keys (Ed25519, ECDSA P-256/P-384, RSA 2048–4096) |
//! | [`Certificate::not_before`], [`Certificate::not_after`] | validity, unix seconds, both inclusive (Go: refused when `t < notBefore` or `t > notAfter`) |
//! | [`Certificate::san_emails`], [`Certificate::san_dns_names`], [`Certificate::san_uris`], [`Certificate::san_ips`] | subjectAltName `rfc822Name`, `dNSName`, `uniformResourceIdentifier`, `iPAddress` |
//! | [`Certificate::fulcio_oidc_issuer`] | Fulcio's OIDC issuer: `1.3.6.1.4.1.57264.1.1` (raw bytes) and/or `1.3.6.1.4.1.57264.1.8` (a DER string); equal when both are present |
//!
//! Chain verification: [`verify_chain`] ([`path`]).

mod error;
mod extensions;
pub mod names;
pub mod path;

use std::net::IpAddr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use cfsgate_keyring::PublicKey;
use cfsgate_policy::Timestamp;
use der::asn1::ObjectIdentifier;
use der::{Decode as _, Encode as _, Reader as _};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};

pub use error::CertError;
pub(crate) use extensions::{Basic, Extensions};
pub use path::{verify_chain, MAX_CHAIN_LENGTH, MAX_SIGNATURE_CHECKS};

/// Most certificates read from one PEM text: the Mozilla CA bundle holds about 150; a
/// signature's chain holds two or three. 1000 bounds the parsing an attacker-supplied
/// annotation or a wrong file can cause.
pub const MAX_PEM_CERTIFICATES: usize = 1000;

/// `id-ce-basicConstraints`.
pub(crate) const OID_BASIC_CONSTRAINTS: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.5.29.19");
/// `id-ce-keyUsage`.
pub(crate) const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
/// `id-ce-extKeyUsage`.
pub(crate) const OID_EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
/// `id-ce-subjectAltName`.
pub const OID_SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
/// `id-ce-subjectKeyIdentifier`.
const OID_SUBJECT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
/// `id-ce-authorityKeyIdentifier`.
const OID_AUTHORITY_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.35");
/// `id-ce-nameConstraints`: Go enforces them; this module refuses chains whose CAs carry them.
const OID_NAME_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.30");
/// `id-ce-cRLDistributionPoints` (handled by Go: a critical one is not an error).
const OID_CRL_DISTRIBUTION_POINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.31");
/// `id-ce-certificatePolicies` (handled by Go).
const OID_CERTIFICATE_POLICIES: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.32");
/// `id-pe-authorityInfoAccess` (handled by Go).
const OID_AUTHORITY_INFO_ACCESS: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.1");
/// Fulcio's first OIDC issuer extension: the issuer URL as raw bytes (deprecated, still issued).
pub const OID_FULCIO_ISSUER_V1: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// Fulcio's OIDC issuer extension since 2022: a DER-encoded string.
pub const OID_FULCIO_ISSUER_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");

/// A parsed X.509 certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    /// The exact signed bytes (`tbsCertificate` TLV).
    pub(crate) tbs: Vec<u8>,
    pub(crate) subject_der: Vec<u8>,
    pub(crate) issuer_der: Vec<u8>,
    subject: String,
    issuer: String,
    pub(crate) spki_der: Vec<u8>,
    not_before: Timestamp,
    not_after: Timestamp,
    /// Version: 1, 2 or 3.
    pub(crate) version: u8,
    pub(crate) signature_algorithm: spki::AlgorithmIdentifierOwned,
    pub(crate) signature: Vec<u8>,
    pub(crate) ext: Extensions,
}

impl Certificate {
    /// Parses one DER certificate (see the module docs for what is refused).
    pub fn from_der(der_bytes: &[u8]) -> Result<Self, CertError> {
        let parse = |e: der::Error| CertError::Parse(e.to_string());
        let cert = x509_cert::Certificate::from_der(der_bytes).map_err(parse)?;
        let tbs = first_tlv(der_bytes).map_err(parse)?;
        let tbs_cert = &cert.tbs_certificate;
        if tbs_cert.signature != cert.signature_algorithm {
            return Err(CertError::Parse(
                "inner and outer signature algorithm identifiers differ".into(),
            ));
        }
        let version = match tbs_cert.version {
            x509_cert::Version::V1 => 1,
            x509_cert::Version::V2 => 2,
            x509_cert::Version::V3 => 3,
        };
        let extensions = tbs_cert.extensions.as_deref().unwrap_or_default();
        if version != 3 && !extensions.is_empty() {
            return Err(CertError::Parse(format!(
                "a v{version} certificate cannot have extensions"
            )));
        }
        let ext = read_extensions(extensions)?;
        let time = |t: &x509_cert::time::Time| {
            Timestamp(i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX))
        };
        let signature = cert
            .signature
            .as_bytes()
            .ok_or_else(|| CertError::Parse("signature has unused bits".into()))?
            .to_vec();
        Ok(Self {
            der: der_bytes.to_vec(),
            tbs: tbs.to_vec(),
            subject_der: tbs_cert.subject.to_der().map_err(parse)?,
            issuer_der: tbs_cert.issuer.to_der().map_err(parse)?,
            subject: tbs_cert.subject.to_string(),
            issuer: tbs_cert.issuer.to_string(),
            spki_der: tbs_cert.subject_public_key_info.to_der().map_err(parse)?,
            not_before: time(&tbs_cert.validity.not_before),
            not_after: time(&tbs_cert.validity.not_after),
            version,
            signature_algorithm: cert.signature_algorithm.clone(),
            signature,
            ext,
        })
    }

    /// Parses PEM text in which every block is a certificate, as sigstore's
    /// `cryptoutils.UnmarshalCertificatesFromPEM` does: a block that does not decode or is not
    /// a certificate is an error; text after the last block must be white space. May return
    /// an empty list for empty input (callers decide whether that is an error).
    pub fn parse_pem_bundle(pem: &[u8]) -> Result<Vec<Self>, CertError> {
        let mut out = Vec::new();
        for block in pem_blocks(pem)? {
            if out.len() == MAX_PEM_CERTIFICATES {
                return Err(CertError::TooMany {
                    limit: MAX_PEM_CERTIFICATES,
                });
            }
            out.push(Self::from_der(&block.der?)?);
        }
        Ok(out)
    }

    /// Parses the PEM text of trusted CA certificates as Go's `CertPool.AppendCertsFromPEM`
    /// does: blocks that are not `CERTIFICATE`, have headers, or do not parse are skipped;
    /// [`CertError::Empty`] when no certificate remains.
    pub fn parse_pem_pool(pem: &[u8]) -> Result<Vec<Self>, CertError> {
        let mut out = Vec::new();
        for block in pem_blocks_lenient(pem) {
            if block.label != "CERTIFICATE" || block.has_headers {
                continue;
            }
            let Ok(der_bytes) = block.der else { continue };
            if let Ok(cert) = Self::from_der(&der_bytes) {
                if out.len() == MAX_PEM_CERTIFICATES {
                    return Err(CertError::TooMany {
                        limit: MAX_PEM_CERTIFICATES,
                    });
                }
                out.push(cert);
            }
        }
        if out.is_empty() {
            return Err(CertError::Empty);
        }
        Ok(out)
    }

    /// The certificate's DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// PEM `CERTIFICATE` text of the certificate (64-column base64, LF).
    pub fn to_pem(&self) -> String {
        let body = BASE64.encode(&self.der);
        let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in body.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
        out
    }

    /// The subject name (RFC 4514 text), for messages.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The issuer name (RFC 4514 text), for messages.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The subject's DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The certified public key, when cfsgate supports its type.
    pub fn public_key(&self) -> Result<PublicKey, CertError> {
        PublicKey::from_spki_der(&self.spki_der, "certificate").map_err(|e| {
            CertError::UnsupportedKey {
                subject: self.subject.clone(),
                reason: e.to_string(),
            }
        })
    }

    /// `notBefore`, unix seconds.
    pub fn not_before(&self) -> Timestamp {
        self.not_before
    }

    /// `notAfter`, unix seconds.
    pub fn not_after(&self) -> Timestamp {
        self.not_after
    }

    /// Whether `at` lies within the validity period (both ends inclusive, as Go).
    pub fn valid_at(&self, at: Timestamp) -> bool {
        at >= self.not_before && at <= self.not_after
    }

    /// The SAN e-mail addresses (`rfc822Name`), as written.
    pub fn san_emails(&self) -> &[String] {
        &self.ext.san_emails
    }

    /// The SAN DNS names, as written.
    pub fn san_dns_names(&self) -> &[String] {
        &self.ext.san_dns
    }

    /// The SAN URIs, as written.
    pub fn san_uris(&self) -> &[String] {
        &self.ext.san_uris
    }

    /// The SAN IP addresses.
    pub fn san_ips(&self) -> &[IpAddr] {
        &self.ext.san_ips
    }

    /// Whether the certificate is a CA by its basic constraints.
    pub fn is_ca(&self) -> bool {
        self.ext.basic.is_some_and(|b| b.ca)
    }

    /// Critical extensions neither Go nor cfsgate handles (any one makes verification fail).
    pub fn unhandled_critical_extensions(&self) -> &[ObjectIdentifier] {
        &self.ext.unhandled_critical
    }

    /// The same certificate with a critical subjectAltName no longer counted as unhandled.
    /// Go leaves a critical SAN without DNS, e-mail, IP or URI names unhandled; containers/image
    /// removes it before verifying a Fulcio certificate, whose identity it matches itself.
    pub fn accepting_critical_san(mut self) -> Self {
        self.ext
            .unhandled_critical
            .retain(|oid| *oid != OID_SUBJECT_ALT_NAME);
        self
    }

    /// The OIDC issuer Fulcio recorded (see the module docs); an error when neither extension
    /// is present, one is malformed, or the two disagree.
    pub fn fulcio_oidc_issuer(&self) -> Result<String, CertError> {
        names::fulcio_issuer(&self.subject, &self.ext)
    }

    /// Whether `host` matches the certificate as Go's `VerifyHostname` judges (SAN DNS names
    /// with a left-most `*` wildcard, or SAN IP addresses for an IP; no common-name fallback).
    pub fn matches_hostname(&self, host: &str) -> bool {
        names::verify_hostname(self.san_ips(), self.san_dns_names(), host)
    }
}

/// The first TLV inside the outer SEQUENCE (the `tbsCertificate`), exactly as encoded.
fn first_tlv(der_bytes: &[u8]) -> der::Result<&[u8]> {
    let mut outer = der::SliceReader::new(der_bytes)?;
    let header = der::Header::decode(&mut outer)?;
    let body = outer.read_slice(header.length)?;
    let mut inner = der::SliceReader::new(body)?;
    inner.tlv_bytes()
}

fn read_extensions(extensions: &[x509_cert::ext::Extension]) -> Result<Extensions, CertError> {
    let mut ext = Extensions::default();
    let mut seen: Vec<ObjectIdentifier> = Vec::new();
    for e in extensions {
        if seen.contains(&e.extn_id) {
            return Err(CertError::Parse(format!(
                "repeated extension {}",
                e.extn_id
            )));
        }
        seen.push(e.extn_id);
        let value = e.extn_value.as_bytes();
        let bad = |what: &str, err: &dyn std::fmt::Display| {
            CertError::Parse(format!("malformed {what} extension: {err}"))
        };
        let mut handled = true;
        match e.extn_id {
            OID_BASIC_CONSTRAINTS => {
                let b =
                    BasicConstraints::from_der(value).map_err(|x| bad("basicConstraints", &x))?;
                ext.basic = Some(Basic {
                    ca: b.ca,
                    path_len: b.path_len_constraint,
                });
            }
            OID_KEY_USAGE => {
                let k = KeyUsage::from_der(value).map_err(|x| bad("keyUsage", &x))?;
                if !k.0.is_empty() {
                    ext.key_cert_sign = Some(k.0.contains(KeyUsages::KeyCertSign));
                }
            }
            OID_EXT_KEY_USAGE => {
                let k = ExtendedKeyUsage::from_der(value).map_err(|x| bad("extKeyUsage", &x))?;
                ext.ext_key_usage = k.0;
            }
            OID_SUBJECT_ALT_NAME => {
                let san = SubjectAltName::from_der(value).map_err(|x| bad("subjectAltName", &x))?;
                names::read_san(&san, &mut ext)?;
                // Go: a SAN with none of the four name types it knows stays unhandled.
                handled = !(ext.san_dns.is_empty()
                    && ext.san_emails.is_empty()
                    && ext.san_ips.is_empty()
                    && ext.san_uris.is_empty());
            }
            OID_SUBJECT_KEY_ID => {
                let k = SubjectKeyIdentifier::from_der(value)
                    .map_err(|x| bad("subjectKeyIdentifier", &x))?;
                ext.subject_key_id = Some(k.0.as_bytes().to_vec());
            }
            OID_AUTHORITY_KEY_ID => {
                let k = AuthorityKeyIdentifier::from_der(value)
                    .map_err(|x| bad("authorityKeyIdentifier", &x))?;
                ext.authority_key_id = k.key_identifier.map(|id| id.as_bytes().to_vec());
            }
            OID_NAME_CONSTRAINTS => ext.name_constraints = true,
            OID_CRL_DISTRIBUTION_POINTS | OID_CERTIFICATE_POLICIES | OID_AUTHORITY_INFO_ACCESS => {}
            OID_FULCIO_ISSUER_V1 => {
                ext.fulcio_issuer_v1 = Some(value.to_vec());
                handled = false;
            }
            OID_FULCIO_ISSUER_V2 => {
                ext.fulcio_issuer_v2 = Some(value.to_vec());
                handled = false;
            }
            _ => handled = false,
        }
        if e.critical && !handled {
            ext.unhandled_critical.push(e.extn_id);
        }
    }
    Ok(ext)
}

/// One PEM block: its label, whether it had RFC 1421 headers, and its decoded body.
struct PemBlock {
    label: String,
    has_headers: bool,
    der: Result<Vec<u8>, CertError>,
}

/// The PEM blocks of `text`, strictly: an unterminated block or bad base64 is an error, and
/// so is text after the last block other than white space. Text before a block is skipped, as
/// Go's `pem.Decode` skips it.
fn pem_blocks(pem: &[u8]) -> Result<Vec<PemBlock>, CertError> {
    let text = std::str::from_utf8(pem).map_err(|_| CertError::Pem("not UTF-8 text".into()))?;
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.trim().is_empty() {
        let Some((block, after)) = next_block(rest)? else {
            return Err(CertError::Pem("text after the last PEM block".into()));
        };
        if out.len() == MAX_PEM_CERTIFICATES {
            return Err(CertError::TooMany {
                limit: MAX_PEM_CERTIFICATES,
            });
        }
        out.push(block);
        rest = after;
    }
    Ok(out)
}

/// The decoded body of the one PEM block of `pem`, as Go's `pem.Decode` with no data left:
/// text before the block is skipped, after the END line only its line ending may follow.
/// The label is not checked (containers/image compares Rekor's logged PEM by content only).
pub(crate) fn single_pem_block(pem: &[u8]) -> Result<Vec<u8>, CertError> {
    let text = std::str::from_utf8(pem).map_err(|_| CertError::Pem("not UTF-8 text".into()))?;
    let (block, after) = next_block(text)?.ok_or_else(|| CertError::Pem("no PEM block".into()))?;
    let after = after.trim_start_matches([' ', '\t']);
    let after = after
        .strip_prefix("\r\n")
        .or_else(|| after.strip_prefix('\n'))
        .unwrap_or(after);
    if !after.is_empty() {
        return Err(CertError::Pem("data after the PEM block".into()));
    }
    block.der
}

/// The PEM blocks of `text` that can be framed, ignoring everything else (Go's
/// `AppendCertsFromPEM` loop); bounded like [`pem_blocks`].
fn pem_blocks_lenient(pem: &[u8]) -> Vec<PemBlock> {
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut rest: &str = &text;
    while let Ok(Some((block, after))) = next_block(rest) {
        if out.len() > MAX_PEM_CERTIFICATES {
            // parse_pem_pool reports TooMany past the limit.
            break;
        }
        out.push(block);
        rest = after;
    }
    out
}

/// Finds the next `-----BEGIN L-----` … `-----END L-----` block of `text`; `None` when there is
/// no BEGIN line; the text after the END line.
fn next_block(text: &str) -> Result<Option<(PemBlock, &str)>, CertError> {
    let Some(start) = text.find("-----BEGIN ") else {
        return Ok(None);
    };
    let after_begin = &text[start + "-----BEGIN ".len()..];
    let line_end = after_begin.find('\n').unwrap_or(after_begin.len());
    let label = after_begin[..line_end]
        .trim_end_matches('\r')
        .strip_suffix("-----")
        .ok_or_else(|| CertError::Pem("malformed BEGIN line".into()))?
        .to_string();
    let body_start = (line_end + 1).min(after_begin.len());
    let body_and_rest = &after_begin[body_start..];
    let end_line = format!("-----END {label}-----");
    let end = body_and_rest
        .find(&end_line)
        .ok_or_else(|| CertError::Pem(format!("no {end_line} line")))?;
    let body = &body_and_rest[..end];
    let after = &body_and_rest[end + end_line.len()..];
    let (has_headers, base64_text) = match body.lines().next() {
        Some(first) if first.contains(':') => {
            let split = body.find("\n\n").or_else(|| body.find("\r\n\r\n"));
            (true, split.map_or("", |at| &body[at..]))
        }
        _ => (false, body),
    };
    let compact: String = base64_text
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = BASE64
        .decode(compact.as_bytes())
        .map_err(|e| CertError::Pem(format!("bad base64 in {label} block: {e}")));
    Ok(Some((
        PemBlock {
            label,
            has_headers,
            der,
        },
        after,
    )))
}
