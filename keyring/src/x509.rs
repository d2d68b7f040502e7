//! The little of X.509 cfsgate needs: a certificate's DER (what the kernel's `asymmetric` key
//! type parses) and its SubjectPublicKeyInfo (for the key id and algorithm). No chain or
//! validity checking happens here: trust comes from the admin putting the certificate into
//! the keyring.

use der::{Decode as _, Encode as _};

use crate::error::KeyError;
use crate::public::{as_pem, pem_decode, PublicKey};

/// A parsed certificate.
pub struct Certificate {
    /// The certificate's DER encoding.
    pub der: Vec<u8>,
    /// Its public key, or why cfsgate cannot use it in userspace.
    pub public_key: Result<PublicKey, KeyError>,
}

impl Certificate {
    /// Parses a DER certificate or a PEM `CERTIFICATE` block; `source` names it in errors.
    pub fn parse(bytes: &[u8], source: &str) -> Result<Self, KeyError> {
        let der_bytes = match as_pem(bytes) {
            Some(text) => {
                let (label, der_bytes) = pem_decode(text, source)?;
                if label != "CERTIFICATE" {
                    return Err(KeyError::UnexpectedPem {
                        source_name: source.to_string(),
                        found: label,
                        expected: "CERTIFICATE",
                    });
                }
                der_bytes
            }
            None => bytes.to_vec(),
        };
        let cert = x509_cert::Certificate::from_der(&der_bytes).map_err(|e| KeyError::Invalid {
            source_name: source.to_string(),
            reason: format!("not an X.509 certificate: {e}"),
        })?;
        let public_key = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| KeyError::Invalid {
                source_name: source.to_string(),
                reason: format!("cannot re-encode the certificate's public key: {e}"),
            })
            .and_then(|spki| PublicKey::from_spki_der(&spki, source));
        Ok(Self {
            der: der_bytes,
            public_key,
        })
    }

    /// True when `bytes` hold a certificate rather than a bare public key.
    pub fn looks_like_certificate(bytes: &[u8]) -> bool {
        match as_pem(bytes) {
            Some(text) => text.contains("-----BEGIN CERTIFICATE-----"),
            None => x509_cert::Certificate::from_der(bytes).is_ok(),
        }
    }
}
