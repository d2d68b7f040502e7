//! Sigstore's `trusted_root.json` (`application/vnd.dev.sigstore.trustedroot+json;version=0.1`,
//! `dev.sigstore.trustroot.v1.TrustedRoot` in protobuf JSON): what an offline verifier trusts.
//!
//! | field | what is read |
//! |---|---|
//! | `tlogs[]` | transparency logs (Rekor v1 and v2): `baseUrl`, `publicKey.rawBytes` (SPKI DER), `publicKey.validFor`, `logId.keyId` |
//! | `ctlogs[]` | certificate transparency logs, same shape; their keys verify the SCTs embedded in Fulcio certificates (SPKI DER, or PKCS#1 for RSA logs) |
//! | `certificateAuthorities[]` | Fulcio CAs: `uri`, `certChain.certificates[].rawBytes` (DER, issuing certificate first, root last), `validFor` |
//! | `timestampAuthorities[]` | RFC 3161 timestamp authorities, same shape (the TSA's signing certificate first) |
//!
//! Every `validFor` is a closed interval: its `start` is required (a window without a start is
//! refused, never read as unbounded), its `end` is optional and inclusive. Everything of the
//! root is checked when it is read: a log whose key does not parse, a bad `logId`, an empty
//! chain are errors, never skipped silently, since the root is the trust anchor.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use cfsgate_keyring::PublicKey;
use cfsgate_policy::Timestamp;
use serde::Deserialize;

/// Most entries of each list read from one root (the public-good root has 2 to 5 of each).
pub const MAX_ROOT_ENTRIES: usize = 64;
/// Most certificates in one authority's chain (real chains have 1 to 3).
pub const MAX_CHAIN_CERTIFICATES: usize = 8;

/// Why a trusted root is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trusted root: {0}")]
pub struct TrustedRootError(pub String);

/// A closed time interval (unix seconds): `start <= t <= end`, `end` open when `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// First second of the window.
    pub start: i64,
    /// Last second of the window (inclusive); unbounded when `None`.
    pub end: Option<i64>,
}

impl Validity {
    /// Whether `t` (unix seconds) is inside the window, both ends included.
    pub fn contains(&self, t: i64) -> bool {
        t >= self.start && self.end.is_none_or(|end| t <= end)
    }
}

/// A transparency log (Rekor) or a certificate transparency log trusted to vouch for entries.
#[derive(Debug, Clone)]
pub struct TrustedLog {
    /// The log's id: for Rekor v1 and CT logs the sha256 of the key's SPKI, for Rekor v2 the
    /// checkpoint key id (the `logId` its entries and SCTs carry).
    pub id: [u8; 32],
    /// The log's public key.
    pub key: PublicKey,
    /// When the key may have been used (unix seconds, inclusive).
    pub valid_from: Option<i64>,
    /// End of that validity (unix seconds, inclusive); open when `None`.
    pub valid_until: Option<i64>,
    /// A name for messages (the log's base URL, or where the key came from).
    pub label: String,
    /// `baseUrl` as given (empty when the log is known by its key alone).
    pub base_url: String,
}

impl TrustedLog {
    /// A log known by its key alone (a policy's `rekorPublicKey*`).
    pub fn from_key(key: PublicKey, label: String) -> Self {
        Self {
            id: key.key_id().0,
            key,
            valid_from: None,
            valid_until: None,
            label,
            base_url: String::new(),
        }
    }

    /// Whether `t` (unix seconds) is inside the key's validity, both ends included.
    pub fn valid_at(&self, t: i64) -> bool {
        self.valid_from.is_none_or(|from| t >= from) && self.valid_until.is_none_or(|u| t <= u)
    }

    /// The host name of `baseUrl` (`https://log2025-1.rekor.sigstore.dev` →
    /// `log2025-1.rekor.sigstore.dev`): the signer name of a Rekor v2 checkpoint.
    pub fn host(&self) -> &str {
        let rest = self
            .base_url
            .split_once("://")
            .map_or(self.base_url.as_str(), |(_, r)| r);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        match authority.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => authority,
        }
    }
}

/// A certificate authority (Fulcio) or a timestamp authority of the root.
#[derive(Debug, Clone)]
pub struct Authority {
    /// `uri`, for messages.
    pub uri: String,
    /// The chain, DER, as given: the issuing (or TSA signing) certificate first, root last.
    pub chain: Vec<Vec<u8>>,
    /// `validFor`: when the authority may have issued (or timestamped).
    pub validity: Validity,
}

/// The parts of a sigstore `trusted_root.json` (see the module table).
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    /// `tlogs`: the transparency logs trusted to have recorded signatures.
    pub logs: Vec<TrustedLog>,
    /// `ctlogs`: the certificate transparency logs whose SCTs are trusted.
    pub ct_logs: Vec<TrustedLog>,
    /// `certificateAuthorities`: the Fulcio CAs.
    pub certificate_authorities: Vec<Authority>,
    /// `timestampAuthorities`: the RFC 3161 TSAs.
    pub timestamp_authorities: Vec<Authority>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrustedRootJson {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<TlogJson>,
    #[serde(default)]
    ctlogs: Vec<TlogJson>,
    #[serde(default)]
    certificate_authorities: Vec<AuthorityJson>,
    #[serde(default)]
    timestamp_authorities: Vec<AuthorityJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogJson {
    #[serde(default)]
    base_url: String,
    public_key: PublicKeyJson,
    log_id: LogIdJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyJson {
    raw_bytes: String,
    valid_for: Option<ValidForJson>,
}

#[derive(Deserialize)]
struct ValidForJson {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogIdJson {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorityJson {
    #[serde(default)]
    uri: String,
    cert_chain: ChainJson,
    valid_for: Option<ValidForJson>,
}

#[derive(Deserialize)]
struct ChainJson {
    #[serde(default)]
    certificates: Vec<RawBytesJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytesJson {
    raw_bytes: String,
}

fn bad(reason: String) -> TrustedRootError {
    TrustedRootError(reason)
}

fn validity(label: &str, json: Option<&ValidForJson>) -> Result<Validity, TrustedRootError> {
    let json = json.ok_or_else(|| bad(format!("{label}: no validFor")))?;
    let time = |t: &Option<String>| -> Result<Option<i64>, TrustedRootError> {
        t.as_deref()
            .map(|t| Timestamp::parse_rfc3339(t).map(|t| t.0))
            .transpose()
            .map_err(|e| bad(format!("{label}: validFor: {e}")))
    };
    let start = time(&json.start)?.ok_or_else(|| bad(format!("{label}: validFor has no start")))?;
    let end = time(&json.end)?;
    if end.is_some_and(|end| end < start) {
        return Err(bad(format!("{label}: validFor ends before it starts")));
    }
    Ok(Validity { start, end })
}

fn log(kind: &str, i: usize, tlog: &TlogJson) -> Result<TrustedLog, TrustedRootError> {
    let label = format!("{kind} {i} ({})", tlog.base_url);
    let der = BASE64
        .decode(&tlog.public_key.raw_bytes)
        .map_err(|e| bad(format!("{label}: publicKey.rawBytes: {e}")))?;
    // CT logs may be RSA keys given as PKCS#1 (the staging root's `ctfe.sigstage.dev/test`).
    let key = PublicKey::from_spki_der(&der, &label)
        .or_else(|e| PublicKey::from_pkcs1_der(&der, &label).map_err(|_| e))
        .map_err(|e| bad(format!("{label}: {e}")))?;
    let id: [u8; 32] = BASE64
        .decode(&tlog.log_id.key_id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad(format!("{label}: logId.keyId is not 32 base64 bytes")))?;
    let window = validity(&label, tlog.public_key.valid_for.as_ref())?;
    Ok(TrustedLog {
        id,
        key,
        valid_from: Some(window.start),
        valid_until: window.end,
        label,
        base_url: tlog.base_url.clone(),
    })
}

fn authority(kind: &str, i: usize, json: &AuthorityJson) -> Result<Authority, TrustedRootError> {
    let label = format!("{kind} {i} ({})", json.uri);
    let certificates = &json.cert_chain.certificates;
    if certificates.is_empty() || certificates.len() > MAX_CHAIN_CERTIFICATES {
        return Err(bad(format!(
            "{label}: {} certificates in certChain (1 to {MAX_CHAIN_CERTIFICATES})",
            certificates.len()
        )));
    }
    let chain = certificates
        .iter()
        .map(|c| {
            BASE64
                .decode(&c.raw_bytes)
                .map_err(|e| bad(format!("{label}: certChain rawBytes: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Authority {
        uri: json.uri.clone(),
        chain,
        validity: validity(&label, json.valid_for.as_ref())?,
    })
}

impl TrustedRoot {
    /// Parses `trusted_root.json` (see the module table).
    pub fn parse(bytes: &[u8]) -> Result<Self, TrustedRootError> {
        let json: TrustedRootJson =
            serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if !json
            .media_type
            .starts_with("application/vnd.dev.sigstore.trustedroot")
        {
            return Err(bad(format!("mediaType {:?}", json.media_type)));
        }
        let lists = [
            json.tlogs.len(),
            json.ctlogs.len(),
            json.certificate_authorities.len(),
            json.timestamp_authorities.len(),
        ];
        if lists.iter().any(|n| *n > MAX_ROOT_ENTRIES) {
            return Err(bad(format!(
                "more than {MAX_ROOT_ENTRIES} entries in a list"
            )));
        }
        let logs = |kind: &str, list: &[TlogJson]| {
            list.iter()
                .enumerate()
                .map(|(i, t)| log(kind, i, t))
                .collect::<Result<Vec<_>, _>>()
        };
        let authorities = |kind: &str, list: &[AuthorityJson]| {
            list.iter()
                .enumerate()
                .map(|(i, a)| authority(kind, i, a))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            logs: logs("tlog", &json.tlogs)?,
            ct_logs: logs("ctlog", &json.ctlogs)?,
            certificate_authorities: authorities(
                "certificateAuthority",
                &json.certificate_authorities,
            )?,
            timestamp_authorities: authorities("timestampAuthority", &json.timestamp_authorities)?,
        })
    }

    /// A root of transparency logs only (a policy's Rekor keys, no CAs or TSAs).
    pub fn from_logs(logs: Vec<TrustedLog>) -> Self {
        Self {
            logs,
            ct_logs: Vec::new(),
            certificate_authorities: Vec::new(),
            timestamp_authorities: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_is_closed_and_needs_a_start() {
        let w = Validity {
            start: 10,
            end: Some(20),
        };
        assert!(w.contains(10) && w.contains(20) && !w.contains(9) && !w.contains(21));
        let json = ValidForJson {
            start: None,
            end: Some("2025-01-01T00:00:00Z".into()),
        };
        assert!(validity("x", Some(&json)).is_err());
    }

    #[test]
    fn host_of_base_url() {
        let mut log = TrustedLog::from_key(
            // The Ed25519 base point (0x58, then 31 times 0x66): a valid key.
            PublicKey::from_ed25519_raw(
                &[[0x58].as_slice(), &[0x66; 31]]
                    .concat()
                    .try_into()
                    .unwrap(),
                "k",
            )
            .unwrap(),
            "x".into(),
        );
        for (url, host) in [
            (
                "https://log2025-1.rekor.sigstore.dev",
                "log2025-1.rekor.sigstore.dev",
            ),
            ("http://localhost:8000/api", "localhost"),
            ("rekor.example", "rekor.example"),
        ] {
            log.base_url = url.into();
            assert_eq!(log.host(), host);
        }
    }
}
