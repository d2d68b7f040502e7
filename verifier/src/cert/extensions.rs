//! The X.509 extensions cfsgate reads, decoded once by the parser (`cert`) and filled in by
//! the name checks (`names`): a leaf both share.

use std::net::IpAddr;

use der::asn1::ObjectIdentifier;

/// Basic constraints as Go reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Basic {
    pub(crate) ca: bool,
    pub(crate) path_len: Option<u8>,
}

/// The extensions cfsgate reads, decoded once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Extensions {
    pub(crate) basic: Option<Basic>,
    /// Whether `keyCertSign` is set; `None` when key usage is absent or has no bit set (Go
    /// treats both alike).
    pub(crate) key_cert_sign: Option<bool>,
    /// The extended key usages (empty: none, which Go takes as any usage).
    pub(crate) ext_key_usage: Vec<ObjectIdentifier>,
    pub(crate) san_emails: Vec<String>,
    pub(crate) san_dns: Vec<String>,
    pub(crate) san_uris: Vec<String>,
    pub(crate) san_ips: Vec<IpAddr>,
    pub(crate) subject_key_id: Option<Vec<u8>>,
    pub(crate) authority_key_id: Option<Vec<u8>>,
    pub(crate) name_constraints: bool,
    pub(crate) unhandled_critical: Vec<ObjectIdentifier>,
    pub(crate) fulcio_issuer_v1: Option<Vec<u8>>,
    pub(crate) fulcio_issuer_v2: Option<Vec<u8>>,
}
