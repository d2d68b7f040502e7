//! RFC 3161 timestamps (`verificationMaterial.timestampVerificationData.rfc3161Timestamps[]
//! .signedTimestamp`): a timestamp authority's signed statement that a signature existed at a
//! time, checked offline against the trusted root's `timestampAuthorities`.
//!
//! ```text
//! TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken ContentInfo }   (RFC 3161 §2.4.2)
//! ContentInfo   ::= SEQUENCE { contentType id-signedData, content [0] EXPLICIT SignedData }
//! SignedData    ::= SEQUENCE { version, digestAlgorithms SET, encapContentInfo
//!                              { eContentType id-ct-TSTInfo, eContent [0] EXPLICIT OCTET STRING },
//!                              certificates [0] IMPLICIT OPTIONAL, crls [1] OPTIONAL,
//!                              signerInfos SET OF SignerInfo }                       (RFC 5652 §5)
//! SignerInfo    ::= SEQUENCE { version, sid, digestAlgorithm, signedAttrs [0] IMPLICIT,
//!                              signatureAlgorithm, signature OCTET STRING, unsignedAttrs [1] OPTIONAL }
//! TSTInfo       ::= SEQUENCE { version 1, policy, messageImprint { hashAlgorithm, hashedMessage },
//!                              serialNumber, genTime GeneralizedTime, ... }          (RFC 3161 §2.4.2)
//! ```
//!
//! | # | check |
//! |---|---|
//! | 1 | the response's status is granted (0) or granted with modifications (1); its token is CMS `SignedData` of a `TSTInfo`, with exactly one signer |
//! | 2 | the `TSTInfo`'s `messageImprint` is the hash (sha256/384/512) of the bundle's signature bytes |
//! | 3 | the signed attributes name `id-ct-TSTInfo` as content type and hold the hash of the `TSTInfo` (under the signer's digest algorithm) as message digest |
//! | 4 | the signature over the signed attributes (DER `SET OF`) verifies with the signing certificate of a trusted TSA (`certChain[0]`; certificates embedded in the token are never trusted for this) |
//! | 5 | that TSA's chain is whole: each certificate signed by the next, every one valid at `genTime`; `genTime` is inside the TSA's `validFor` (both ends included) |
//!
//! The serial number's sign and the nonce are not judged: they bind nothing offline.

use cfsgate_policy::Timestamp;

use crate::asn1::{self, context, Element, INTEGER, OCTET_STRING, SEQUENCE, SET};
use crate::bundle_cert::Certificate;
use crate::sigalg::{Hash, SignatureAlgorithm};
use crate::trusted_root::Authority;

/// Largest timestamp response read (real ones are 0.5–2 KiB, with embedded certificates).
pub const MAX_TIMESTAMP_BYTES: usize = 64 * 1024;

const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const OID_TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
const OID_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const OID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";

/// A verified timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTimestamp {
    /// `genTime`, unix seconds.
    pub time: i64,
    /// The TSA's `uri` in the trusted root.
    pub authority: String,
}

/// What a timestamp token holds, before any trust.
struct Token<'a> {
    tst_info: &'a [u8],
    digest_algorithm: Hash,
    signed_attrs: Element<'a>,
    signature_algorithm: SignatureAlgorithm,
    signature: &'a [u8],
    imprint_hash: Hash,
    imprint: &'a [u8],
    gen_time: i64,
}

fn malformed(e: asn1::DerError) -> String {
    format!("the timestamp is malformed: {e}")
}

fn algorithm_oid(element: Element<'_>, what: &str) -> Result<String, String> {
    let items = element.items(SEQUENCE, what).map_err(malformed)?;
    let first = items.first().ok_or_else(|| format!("{what}: empty"))?;
    asn1::oid(first, what).map_err(malformed)
}

fn digest(element: Element<'_>, what: &str) -> Result<Hash, String> {
    let oid = algorithm_oid(element, what)?;
    Hash::from_digest_oid(&oid).ok_or_else(|| format!("{what}: unsupported hash {oid}"))
}

fn parse(bytes: &[u8]) -> Result<Token<'_>, String> {
    if bytes.len() > MAX_TIMESTAMP_BYTES {
        return Err(format!("larger than {MAX_TIMESTAMP_BYTES} bytes"));
    }
    let outer = asn1::read_one(bytes)
        .and_then(|e| e.items(SEQUENCE, "TimeStampResp"))
        .map_err(malformed)?;
    let [status, token, ..] = outer.as_slice() else {
        return Err("the response has no timeStampToken".into());
    };
    let status = status.items(SEQUENCE, "PKIStatusInfo").map_err(malformed)?;
    match status.first().map(|s| (s.tag, s.value)) {
        Some((INTEGER, [0] | [1])) => {}
        _ => return Err("the response's status is not granted".into()),
    }
    let content_info = token.items(SEQUENCE, "ContentInfo").map_err(malformed)?;
    let [content_type, content] = content_info.as_slice() else {
        return Err("ContentInfo is not { contentType, content }".into());
    };
    if asn1::oid(content_type, "contentType").map_err(malformed)? != OID_SIGNED_DATA {
        return Err("the token is not CMS SignedData".into());
    }
    let signed_data = content
        .items(context(0), "content")
        .map_err(malformed)?
        .into_iter()
        .next()
        .ok_or("empty content")?
        .items(SEQUENCE, "SignedData")
        .map_err(malformed)?;
    let (encap, signer_infos) = match signed_data.as_slice() {
        [_version, _digests, encap, rest @ ..] if !rest.is_empty() => {
            (*encap, rest[rest.len() - 1])
        }
        _ => return Err("SignedData has too few fields".into()),
    };
    let encap = encap
        .items(SEQUENCE, "encapContentInfo")
        .map_err(malformed)?;
    let [e_type, e_content] = encap.as_slice() else {
        return Err("encapContentInfo has no content".into());
    };
    if asn1::oid(e_type, "eContentType").map_err(malformed)? != OID_TST_INFO {
        return Err("the signed content is not a TSTInfo".into());
    }
    let tst_info = e_content
        .items(context(0), "eContent")
        .map_err(malformed)?
        .into_iter()
        .next()
        .ok_or("empty eContent")?
        .expect(OCTET_STRING, "eContent")
        .map_err(malformed)?
        .value;
    let signers = signer_infos.items(SET, "signerInfos").map_err(malformed)?;
    let [signer] = signers.as_slice() else {
        return Err(format!(
            "{} signers, exactly one is expected",
            signers.len()
        ));
    };
    let fields = signer.items(SEQUENCE, "SignerInfo").map_err(malformed)?;
    let [_version, _sid, digest_alg, signed_attrs, sig_alg, signature, ..] = fields.as_slice()
    else {
        return Err("SignerInfo has no signed attributes".into());
    };
    let signed_attrs = signed_attrs
        .expect(context(0), "signedAttrs")
        .map_err(malformed)?;
    let digest_algorithm = digest(*digest_alg, "digestAlgorithm")?;
    let sig_oid = algorithm_oid(*sig_alg, "signatureAlgorithm")?;
    let signature_algorithm = SignatureAlgorithm::from_oid(&sig_oid, Some(digest_algorithm))
        .ok_or_else(|| format!("unsupported signature algorithm {sig_oid}"))?;
    let signature = signature
        .expect(OCTET_STRING, "signature")
        .map_err(malformed)?
        .value;
    let info = asn1::read_one(tst_info)
        .and_then(|e| e.items(SEQUENCE, "TSTInfo"))
        .map_err(malformed)?;
    let [_version, _policy, imprint, _serial, gen_time, ..] = info.as_slice() else {
        return Err("TSTInfo has too few fields".into());
    };
    let imprint = imprint
        .items(SEQUENCE, "messageImprint")
        .map_err(malformed)?;
    let [imprint_alg, imprint_value] = imprint.as_slice() else {
        return Err("messageImprint is not { hashAlgorithm, hashedMessage }".into());
    };
    Ok(Token {
        tst_info,
        digest_algorithm,
        signed_attrs,
        signature_algorithm,
        signature,
        imprint_hash: digest(*imprint_alg, "messageImprint.hashAlgorithm")?,
        imprint: imprint_value
            .expect(OCTET_STRING, "hashedMessage")
            .map_err(malformed)?
            .value,
        gen_time: asn1::generalized_time(gen_time).map_err(malformed)?,
    })
}

/// The signed attributes name a TSTInfo and hold its digest.
fn check_signed_attributes(token: &Token<'_>) -> Result<(), String> {
    let mut content_type = None;
    let mut message_digest = None;
    for attribute in asn1::children(&token.signed_attrs).map_err(malformed)? {
        let parts = attribute.items(SEQUENCE, "Attribute").map_err(malformed)?;
        let [oid, values] = parts.as_slice() else {
            return Err("an attribute is not { type, values }".into());
        };
        let values = values.items(SET, "attribute values").map_err(malformed)?;
        let [value] = values.as_slice() else {
            return Err("an attribute has not exactly one value".into());
        };
        match asn1::oid(oid, "attribute type")
            .map_err(malformed)?
            .as_str()
        {
            OID_CONTENT_TYPE => {
                content_type = Some(asn1::oid(value, "contentType").map_err(malformed)?)
            }
            OID_MESSAGE_DIGEST => {
                message_digest = Some(
                    value
                        .expect(OCTET_STRING, "messageDigest")
                        .map_err(malformed)?
                        .value,
                )
            }
            _ => {}
        }
    }
    if content_type.as_deref() != Some(OID_TST_INFO) {
        return Err("the signed attributes do not name a TSTInfo as content type".into());
    }
    if message_digest != Some(token.digest_algorithm.digest(token.tst_info).as_slice()) {
        return Err("the signed attributes' message digest is not the TSTInfo's".into());
    }
    Ok(())
}

/// Checks one authority: its signing certificate's signature, its chain, its windows.
fn check_authority(token: &Token<'_>, authority: &Authority) -> Result<(), String> {
    let chain = authority
        .chain
        .iter()
        .map(|der| Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("its certificate does not parse: {e}"))?;
    let signer = chain.first().ok_or("no certificate")?;
    let key = signer
        .public_key()
        .map_err(|e| format!("its certificate's key: {e}"))?;
    // The signature covers the DER of the attributes as a SET OF (RFC 5652 §5.4), not their
    // [0] IMPLICIT encoding in the SignerInfo.
    let mut signed = token.signed_attrs.raw.to_vec();
    signed[0] = SET;
    if !token
        .signature_algorithm
        .verify(&key, &signed, token.signature)
    {
        return Err("the token's signature does not verify with its signing certificate".into());
    }
    let at = Timestamp(token.gen_time);
    for (i, cert) in chain.iter().enumerate() {
        if !cert.valid_at(at) {
            return Err(format!(
                "certificate {i} of its chain ({}) is not valid at the timestamp's time {at}",
                cert.subject()
            ));
        }
        if let Some(issuer) = chain.get(i + 1) {
            if !cert.is_signed_by(issuer) {
                return Err(format!(
                    "certificate {i} of its chain is not signed by the next one"
                ));
            }
        }
    }
    if !authority.validity.contains(token.gen_time) {
        return Err(format!(
            "the timestamp's time {at} is outside its validFor in the trusted root"
        ));
    }
    Ok(())
}

/// Verifies a timestamp response over `signature` (the bundle's signature bytes) against
/// `authorities` (see the module table). The error names the first failed check, or, when no
/// authority's key signed the token, what each authority said.
pub fn verify_timestamp(
    response: &[u8],
    signature: &[u8],
    authorities: &[Authority],
) -> Result<VerifiedTimestamp, String> {
    let token = parse(response)?;
    if token.imprint != token.imprint_hash.digest(signature).as_slice() {
        return Err("the timestamp is over other bytes than the bundle's signature".into());
    }
    check_signed_attributes(&token)?;
    if authorities.is_empty() {
        return Err("the trusted root has no timestamp authority".into());
    }
    let mut reasons = Vec::new();
    for authority in authorities {
        match check_authority(&token, authority) {
            Ok(()) => {
                return Ok(VerifiedTimestamp {
                    time: token.gen_time,
                    authority: authority.uri.clone(),
                })
            }
            Err(reason) => reasons.push(format!("{}: {reason}", authority.uri)),
        }
    }
    Err(format!(
        "no trusted timestamp authority vouches for it ({})",
        reasons.join("; ")
    ))
}
