//! The names inside a certificate, read and matched as Go's `crypto/x509` and
//! containers/image do:
//!
//! | check | rule |
//! |---|---|
//! | SAN parsing | `rfc822Name`, `dNSName`, `uniformResourceIdentifier` must be IA5 strings; a URI with an authority must have a host without empty or non-ASCII labels; an `iPAddress` must be 4 or 16 bytes; other name types are ignored |
//! | Fulcio OIDC issuer | v1 extension `1.3.6.1.4.1.57264.1.1`: the value's raw bytes; v2 `1.3.6.1.4.1.57264.1.8`: one DER string (UTF8String, PrintableString, IA5String, NumericString, T61String, GeneralString, BMPString, as Go's `asn1.Unmarshal` into a string), nothing after it; both present: they must be equal; neither: error |
//! | hostname (`subjectHostname`) | an IP (optionally in `[]`) matches SAN IP addresses only; otherwise ASCII-case-insensitive match against SAN DNS names, a left-most `*` label matching one label, trailing dots ignored, when both are valid host names; else exact (case-insensitive) match only; never the common name |

use std::net::IpAddr;

use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;

use super::{CertError, Extensions};

/// Length of an IPv4 `iPAddress`.
const IPV4_LEN: usize = 4;
/// Length of an IPv6 `iPAddress`.
const IPV6_LEN: usize = 16;

/// Reads the SAN names Go reads into `ext`.
pub(crate) fn read_san(san: &SubjectAltName, ext: &mut Extensions) -> Result<(), CertError> {
    for name in &san.0 {
        match name {
            GeneralName::Rfc822Name(email) => ext.san_emails.push(email.to_string()),
            GeneralName::DnsName(dns) => ext.san_dns.push(dns.to_string()),
            GeneralName::UniformResourceIdentifier(uri) => {
                let uri = uri.to_string();
                check_uri(&uri)?;
                ext.san_uris.push(uri);
            }
            GeneralName::IpAddress(octets) => {
                let bytes = octets.as_bytes();
                let ip = match bytes.len() {
                    IPV4_LEN => <[u8; IPV4_LEN]>::try_from(bytes).ok().map(IpAddr::from),
                    IPV6_LEN => <[u8; IPV6_LEN]>::try_from(bytes).ok().map(IpAddr::from),
                    _ => None,
                };
                let ip = ip.ok_or_else(|| {
                    CertError::Parse(format!(
                        "SAN IP address of length {} (must be 4 or 16)",
                        bytes.len()
                    ))
                })?;
                ext.san_ips.push(ip);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Go refuses a SAN URI whose host has an empty or non-ASCII label.
fn check_uri(uri: &str) -> Result<(), CertError> {
    if uri.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err(CertError::Parse(format!("cannot parse SAN URI {uri:?}")));
    }
    let Some((_, after_scheme)) = uri.split_once("://") else {
        return Ok(());
    };
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.starts_with('[') {
        // An IPv6 literal: a single label for Go's check.
        return Ok(());
    }
    let host = host_port.split(':').next().unwrap_or_default();
    if !host.is_empty() && host.split('.').any(|l| l.is_empty() || !l.is_ascii()) {
        return Err(CertError::Parse(format!(
            "SAN URI {uri:?} has an invalid host {host:?}"
        )));
    }
    Ok(())
}

/// ASN.1 universal tags Go's `asn1.Unmarshal` accepts into a Go string.
mod tag {
    pub(super) const UTF8_STRING: u8 = 12;
    pub(super) const NUMERIC_STRING: u8 = 18;
    pub(super) const PRINTABLE_STRING: u8 = 19;
    pub(super) const T61_STRING: u8 = 20;
    pub(super) const IA5_STRING: u8 = 22;
    pub(super) const GENERAL_STRING: u8 = 27;
    pub(super) const BMP_STRING: u8 = 30;
}

/// See [`Certificate::fulcio_oidc_issuer`].
pub(crate) fn fulcio_issuer(subject: &str, ext: &Extensions) -> Result<String, CertError> {
    let fail = |reason: String| CertError::FulcioIssuer {
        subject: subject.to_string(),
        reason,
    };
    let v1 = match &ext.fulcio_issuer_v1 {
        Some(raw) => Some(
            String::from_utf8(raw.clone())
                .map_err(|_| fail("OIDC issuer v1 extension is not UTF-8".into()))?,
        ),
        None => None,
    };
    let v2 = match &ext.fulcio_issuer_v2 {
        Some(raw) => Some(
            der_string(raw)
                .map_err(|e| fail(format!("invalid ASN.1 in OIDC issuer v2 extension: {e}")))?,
        ),
        None => None,
    };
    match (v1, v2) {
        (Some(a), Some(b)) if a != b => Err(fail(format!(
            "inconsistent OIDC issuer extension values: v1 {a:?}, v2 {b:?}"
        ))),
        (Some(a), _) => Ok(a),
        (None, Some(b)) => Ok(b),
        (None, None) => Err(fail(
            "the certificate is missing the issuer extension".into(),
        )),
    }
}

/// One DER string value with nothing after it, as Go's `asn1.Unmarshal(…, &string)` reads it.
fn der_string(raw: &[u8]) -> Result<String, String> {
    use der::{Decode as _, Reader as _};
    let mut reader = der::SliceReader::new(raw).map_err(|e| e.to_string())?;
    let header = der::Header::decode(&mut reader).map_err(|e| e.to_string())?;
    let body = reader
        .read_slice(header.length)
        .map_err(|e| e.to_string())?;
    if !reader.is_finished() {
        return Err("trailing data".into());
    }
    let number = match header.tag {
        der::Tag::Utf8String => tag::UTF8_STRING,
        der::Tag::NumericString => tag::NUMERIC_STRING,
        der::Tag::PrintableString => tag::PRINTABLE_STRING,
        der::Tag::TeletexString => tag::T61_STRING,
        der::Tag::Ia5String => tag::IA5_STRING,
        der::Tag::BmpString => tag::BMP_STRING,
        other => match u8::from(other) {
            tag::GENERAL_STRING => tag::GENERAL_STRING,
            _ => return Err(format!("{other} is not a string")),
        },
    };
    let text =
        |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(|_| "not UTF-8".to_string());
    match number {
        tag::NUMERIC_STRING if !body.iter().all(|b| b.is_ascii_digit() || *b == b' ') => {
            Err("NumericString with other characters".into())
        }
        tag::PRINTABLE_STRING if !body.iter().all(|b| is_printable(*b)) => {
            Err("PrintableString with other characters".into())
        }
        tag::IA5_STRING if !body.is_ascii() => Err("IA5String with non-ASCII bytes".into()),
        tag::BMP_STRING => {
            if body.len() % 2 != 0 {
                return Err("BMPString of odd length".into());
            }
            let units: Vec<u16> = body
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect();
            String::from_utf16(&units).map_err(|_| "BMPString is not UTF-16".into())
        }
        _ => text(body),
    }
}

/// Go's PrintableString alphabet, with the `*` and `&` it tolerates in parsed certificates.
fn is_printable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" '()+,-./:=?*&".contains(&b)
}

/// See [`Certificate::matches_hostname`].
pub(crate) fn verify_hostname(san_ips: &[IpAddr], san_dns: &[String], host: &str) -> bool {
    let candidate_ip = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .filter(|_| host.len() >= 3)
        .unwrap_or(host);
    if let Ok(ip) = candidate_ip.parse::<IpAddr>() {
        return san_ips
            .iter()
            .any(|san| san.to_canonical() == ip.to_canonical());
    }
    let candidate = host.to_ascii_lowercase();
    let valid_candidate = valid_hostname(&candidate, false);
    san_dns.iter().any(|pattern| {
        if valid_candidate && valid_hostname(pattern, true) {
            match_hostnames(pattern, &candidate)
        } else {
            match_exactly(pattern, &candidate)
        }
    })
}

fn match_exactly(a: &str, b: &str) -> bool {
    if a.is_empty() || a == "." || b.is_empty() || b == "." {
        return false;
    }
    a.eq_ignore_ascii_case(b)
}

fn match_hostnames(pattern: &str, host: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if pattern.is_empty() || host.is_empty() {
        return false;
    }
    let pattern_parts: Vec<&str> = pattern.split('.').collect();
    let host_parts: Vec<&str> = host.split('.').collect();
    pattern_parts.len() == host_parts.len()
        && pattern_parts
            .iter()
            .zip(&host_parts)
            .enumerate()
            .all(|(i, (p, h))| (i == 0 && *p == "*") || p == h)
}

/// Go's `validHostname`: labels of letters, digits, `-` (not first) and `_`; a pattern may
/// start with a `*` label; an input may end with one dot.
fn valid_hostname(host: &str, is_pattern: bool) -> bool {
    let host = if is_pattern {
        host
    } else {
        host.strip_suffix('.').unwrap_or(host)
    };
    if host.is_empty() || host == "*" {
        return false;
    }
    host.split('.').enumerate().all(|(i, part)| {
        if part.is_empty() {
            return false;
        }
        if is_pattern && i == 0 && part == "*" {
            return true;
        }
        part.bytes()
            .enumerate()
            .all(|(j, c)| c.is_ascii_alphanumeric() || (c == b'-' && j != 0) || c == b'_')
    })
}
