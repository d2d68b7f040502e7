//! Signed certificate timestamps embedded in Fulcio certificates (RFC 6962 §3.3, extension
//! 1.3.6.1.4.1.11129.2.4.2): a certificate transparency log's promise that it logged the
//! precertificate, checked offline against the trusted root's `ctlogs`.
//!
//! ```text
//! extension value: OCTET STRING { SignedCertificateTimestampList }     (TLS encoding inside)
//! list:  u16 length, then each SCT as u16 length || SCT
//! SCT:   version u8 (0 = v1) || log id [32] || timestamp u64 (ms) || extensions u16-length bytes
//!        || hash u8 (4 sha256, 5 sha384, 6 sha512) || signature algorithm u8 (1 RSA, 3 ECDSA)
//!        || signature u16-length bytes
//! signed: version || 0 (certificate_timestamp) || timestamp || 1 (precert_entry) (u16)
//!        || sha256(issuer SPKI) || u24-length precertificate TBS || u16-length extensions
//! ```
//!
//! The precertificate TBS is the certificate's `tbsCertificate` without the SCT list extension
//! (and without the precertificate poison, were it there), re-encoded in DER. The issuer is the
//! certificate that signed the leaf in the verified chain. One SCT must verify: from a log the
//! trusted root lists (by log id), whose `validFor` contains the SCT's time, with that log's key.
//! SCT extensions (Static CT's leaf index) are signed bytes like the rest, never interpreted.

use cfsgate_keyring::PublicKey;
use der::{Decode as _, Encode as _};
use sha2::{Digest as _, Sha256};

use crate::sigalg::{Hash, SignatureAlgorithm};
use crate::trusted_root::TrustedLog;

/// `SignedCertificateTimestampList` extension.
const OID_SCT_LIST: &str = "1.3.6.1.4.1.11129.2.4.2";
/// Precertificate poison extension.
const OID_POISON: &str = "1.3.6.1.4.1.11129.2.4.3";
/// Most SCTs read from one certificate (Fulcio embeds one; browsers ask for 2–3).
pub const MAX_SCTS: usize = 16;

/// One parsed SCT.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sct<'a> {
    log_id: [u8; 32],
    timestamp_ms: u64,
    extensions: &'a [u8],
    hash: u8,
    algorithm: u8,
    signature: &'a [u8],
}

struct Tls<'a>(&'a [u8]);

impl<'a> Tls<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("truncated SCT".into());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16_bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.take(2)?;
        self.take(usize::from(u16::from_be_bytes([len[0], len[1]])))
    }
}

fn parse_scts(list: &[u8]) -> Result<Vec<Sct<'_>>, String> {
    let mut outer = Tls(list);
    let mut items = Tls(outer.u16_bytes()?);
    if !outer.0.is_empty() {
        return Err("trailing bytes after the SCT list".into());
    }
    let mut out = Vec::new();
    while !items.0.is_empty() {
        if out.len() == MAX_SCTS {
            return Err(format!("more than {MAX_SCTS} SCTs"));
        }
        let mut sct = Tls(items.u16_bytes()?);
        if sct.u8()? != 0 {
            return Err("an SCT of a version other than v1".into());
        }
        let log_id: [u8; 32] = sct.take(32)?.try_into().map_err(|_| "log id")?;
        let ts = sct.take(8)?;
        let timestamp_ms = u64::from_be_bytes(ts.try_into().map_err(|_| "timestamp")?);
        let extensions = sct.u16_bytes()?;
        let hash = sct.u8()?;
        let algorithm = sct.u8()?;
        let signature = sct.u16_bytes()?;
        if !sct.0.is_empty() {
            return Err("trailing bytes after an SCT".into());
        }
        out.push(Sct {
            log_id,
            timestamp_ms,
            extensions,
            hash,
            algorithm,
            signature,
        });
    }
    Ok(out)
}

/// The SCT list of `leaf` (DER) and its precertificate TBS.
fn precertificate(leaf: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let cert = x509_cert::Certificate::from_der(leaf)
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    let mut tbs = cert.tbs_certificate;
    let extensions = tbs.extensions.take().unwrap_or_default();
    let mut list = None;
    let mut kept = Vec::new();
    for extension in extensions {
        match extension.extn_id.to_string().as_str() {
            OID_SCT_LIST => {
                if list.is_some() {
                    return Err("two SCT list extensions".into());
                }
                let inner = der::asn1::OctetString::from_der(extension.extn_value.as_bytes())
                    .map_err(|e| format!("the SCT list extension: {e}"))?;
                list = Some(inner.as_bytes().to_vec());
            }
            OID_POISON => {}
            _ => kept.push(extension),
        }
    }
    let list = list.ok_or("the certificate embeds no SCT")?;
    tbs.extensions = (!kept.is_empty()).then_some(kept);
    let tbs = tbs
        .to_der()
        .map_err(|e| format!("cannot re-encode the precertificate: {e}"))?;
    Ok((list, tbs))
}

fn signed_data(sct: &Sct<'_>, issuer_key_hash: &[u8; 32], tbs: &[u8]) -> Result<Vec<u8>, String> {
    let len = u32::try_from(tbs.len())
        .ok()
        .filter(|l| *l < 1 << 24)
        .ok_or("precertificate too large")?;
    let ext_len = u16::try_from(sct.extensions.len()).map_err(|_| "SCT extensions too large")?;
    let mut out = vec![0u8, 0u8];
    out.extend_from_slice(&sct.timestamp_ms.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(issuer_key_hash);
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(tbs);
    out.extend_from_slice(&ext_len.to_be_bytes());
    out.extend_from_slice(sct.extensions);
    Ok(out)
}

fn verifies(sct: &Sct<'_>, key: &PublicKey, message: &[u8]) -> bool {
    let hash = match sct.hash {
        4 => Hash::Sha256,
        5 => Hash::Sha384,
        6 => Hash::Sha512,
        _ => return false,
    };
    let algorithm = match sct.algorithm {
        1 => SignatureAlgorithm::RsaPkcs1(hash),
        3 => SignatureAlgorithm::Ecdsa(hash),
        _ => return false,
    };
    algorithm.verify(key, message, sct.signature)
}

/// Checks that one SCT embedded in `leaf` (DER), issued by the certificate whose SPKI is
/// `issuer_spki` (DER), verifies with one of `logs` (see the module documentation). The error
/// says what failed.
pub fn verify_embedded_sct(
    leaf: &[u8],
    issuer_spki: &[u8],
    logs: &[TrustedLog],
) -> Result<(), String> {
    let (list, tbs) = precertificate(leaf)?;
    let scts = parse_scts(&list)?;
    if scts.is_empty() {
        return Err("the certificate's SCT list is empty".into());
    }
    let issuer_key_hash: [u8; 32] = Sha256::digest(issuer_spki).into();
    let mut reasons = Vec::new();
    for sct in &scts {
        let Some(log) = logs.iter().find(|l| l.id == sct.log_id) else {
            reasons.push(format!(
                "SCT from log {}, which the trusted root does not list",
                hex::encode(sct.log_id)
            ));
            continue;
        };
        let time = i64::try_from(sct.timestamp_ms / 1000).unwrap_or(i64::MAX);
        if !log.valid_at(time) {
            reasons.push(format!("SCT of {} outside that log's validity", log.label));
            continue;
        }
        if verifies(sct, &log.key, &signed_data(sct, &issuer_key_hash, &tbs)?) {
            return Ok(());
        }
        reasons.push(format!("SCT does not verify with the key of {}", log.label));
    }
    Err(reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sct_lists_are_read_strictly() {
        let mut sct = vec![0u8];
        sct.extend_from_slice(&[7; 32]);
        sct.extend_from_slice(&1_700_000_000_000u64.to_be_bytes());
        sct.extend_from_slice(&[0, 2, 0xaa, 0xbb, 4, 3, 0, 1, 0x55]);
        let mut list = (sct.len() as u16).to_be_bytes().to_vec();
        list.extend_from_slice(&sct);
        let mut outer = (list.len() as u16).to_be_bytes().to_vec();
        outer.extend_from_slice(&list);
        let parsed = parse_scts(&outer).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].extensions, [0xaa, 0xbb]);
        assert_eq!((parsed[0].hash, parsed[0].algorithm), (4, 3));
        outer.push(0);
        assert!(parse_scts(&outer).is_err());
        assert!(parse_scts(&outer[..outer.len() - 3]).is_err());
    }
}
