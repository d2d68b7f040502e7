//! Certificate path building and verification, as Go's `Certificate.Verify` with
//! `KeyUsages: [ExtKeyUsageCodeSigning]` and `CurrentTime: at` (what containers/image's
//! Fulcio and PKI checks call):
//!
//! | step | rule |
//! |---|---|
//! | leaf | no unhandled critical extension; valid at `at`; when the leaf itself is a root, the chain is the leaf alone |
//! | parent candidates | roots first, then intermediates, whose subject DER equals the child's issuer DER (those whose subject key id matches the child's authority key id first); never a certificate already in the chain (same subject and key) |
//! | issuing | the parent is a CA: basic constraints present in a v3 certificate, `cA` true; key usage, when present with any bit, includes `keyCertSign`; the child's signature verifies with the parent's key |
//! | signature algorithms | RSA PKCS#1 v1.5 and PSS (salt = hash length, MGF1 with the same hash) with SHA-256/384/512, ECDSA with SHA-256/384/512, Ed25519; SHA-1, MD5 and anything else refused |
//! | every parent | no unhandled critical extension; valid at `at`; an intermediate must have `cA` true; a `pathLenConstraint` bounds the intermediates below it; name constraints are refused (Go enforces them; cfsgate does not evaluate them) |
//! | extended key usage | walking from the root down, every certificate that lists extended key usages must list code signing or `anyExtendedKeyUsage` (a certificate listing none allows any, as in Go) |
//! | bounds | at most [`MAX_CHAIN_LENGTH`] certificates per chain, [`MAX_SIGNATURE_CHECKS`] signature checks per call |
//!
//! Key usage bits other than `keyCertSign` are ignored, as Go ignores them (the leaf's
//! `digitalSignature` is not required).

use cfsgate_keyring::PublicKey;
use cfsgate_policy::Timestamp;
use der::asn1::ObjectIdentifier;
use der::Decode as _;
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use super::{CertError, Certificate};

/// Most certificates in one chain (leaf and root included). Real chains have 2–4; Go has no
/// explicit depth limit but stops after 100 signature checks, which this also does.
pub const MAX_CHAIN_LENGTH: usize = 10;
/// Most signature checks one verification may make (Go's `maxChainSignatureChecks`): bounds
/// the work a pool of look-alike intermediates can cause.
pub const MAX_SIGNATURE_CHECKS: usize = 100;

/// `id-kp-codeSigning`.
const OID_EKU_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// `anyExtendedKeyUsage`.
const OID_EKU_ANY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37.0");

const OID_RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_RSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const OID_RSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const OID_ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const OID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// Verifies that `leaf` chains to one of `roots`, possibly through some of `intermediates`, at
/// time `at`, for code signing (see the module docs). Returns the chain, leaf first, root
/// last. When no chain is found, the error is the most specific failure met (the last
/// candidate's), or [`CertError::UnknownAuthority`] when no candidate issuer exists.
pub fn verify_chain(
    leaf: &Certificate,
    intermediates: &[Certificate],
    roots: &[Certificate],
    at: Timestamp,
) -> Result<Vec<Certificate>, CertError> {
    check_validity(leaf, at)?;
    if roots.iter().any(|root| root.der() == leaf.der()) {
        let chain = vec![leaf];
        return if allows_code_signing(&chain) {
            Ok(vec![leaf.clone()])
        } else {
            Err(CertError::KeyUsage {
                subject: leaf.subject().to_string(),
            })
        };
    }
    let mut builder = Builder {
        intermediates,
        roots,
        at,
        checks: 0,
        failure: None,
        eku_failed: false,
    };
    let mut chain = vec![leaf];
    if let Some(found) = builder.extend(&mut chain)? {
        return Ok(found.into_iter().cloned().collect());
    }
    if builder.eku_failed {
        return Err(CertError::KeyUsage {
            subject: leaf.subject().to_string(),
        });
    }
    Err(builder
        .failure
        .unwrap_or_else(|| CertError::UnknownAuthority {
            subject: leaf.subject().to_string(),
            issuer: leaf.issuer().to_string(),
        }))
}

struct Builder<'a> {
    intermediates: &'a [Certificate],
    roots: &'a [Certificate],
    at: Timestamp,
    checks: usize,
    failure: Option<CertError>,
    eku_failed: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Intermediate,
    Root,
}

impl<'a> Builder<'a> {
    /// Depth-first search from the last certificate of `chain`; `Ok(Some)` is the first
    /// chain that reaches a root and allows code signing.
    fn extend(
        &mut self,
        chain: &mut Vec<&'a Certificate>,
    ) -> Result<Option<Vec<&'a Certificate>>, CertError> {
        let Some(&child) = chain.last() else {
            return Ok(None);
        };
        for root in candidates(child, self.roots) {
            if in_chain(root, chain) {
                continue;
            }
            if self.consider(child, root, Role::Root, chain)? {
                chain.push(root);
                if allows_code_signing(chain) {
                    return Ok(Some(chain.clone()));
                }
                self.eku_failed = true;
                chain.pop();
            }
        }
        if chain.len() + 1 >= MAX_CHAIN_LENGTH {
            if self.failure.is_none() {
                self.failure = Some(CertError::ChainTooLong {
                    subject: chain.first().map_or("", |c| c.subject()).to_string(),
                    limit: format!("{MAX_CHAIN_LENGTH} certificates"),
                });
            }
            return Ok(None);
        }
        for parent in candidates(child, self.intermediates) {
            if in_chain(parent, chain) {
                continue;
            }
            if self.consider(child, parent, Role::Intermediate, chain)? {
                chain.push(parent);
                if let Some(found) = self.extend(chain)? {
                    return Ok(Some(found));
                }
                chain.pop();
            }
        }
        Ok(None)
    }

    /// Whether `parent` issued `child` and may stand at this place of the chain; a failure is
    /// remembered for the final error.
    fn consider(
        &mut self,
        child: &Certificate,
        parent: &Certificate,
        role: Role,
        chain: &[&Certificate],
    ) -> Result<bool, CertError> {
        self.checks += 1;
        if self.checks > MAX_SIGNATURE_CHECKS {
            return Err(CertError::ChainTooLong {
                subject: chain.first().map_or("", |c| c.subject()).to_string(),
                limit: format!("{MAX_SIGNATURE_CHECKS} signature checks"),
            });
        }
        let verdict =
            check_issued(child, parent).and_then(|()| check_parent(parent, role, chain, self.at));
        match verdict {
            Ok(()) => Ok(true),
            Err(e) => {
                self.failure = Some(e);
                Ok(false)
            }
        }
    }
}

/// The certificates of `pool` whose subject is `child`'s issuer, key-id matches first.
fn candidates<'a>(child: &Certificate, pool: &'a [Certificate]) -> Vec<&'a Certificate> {
    let mut found: Vec<&Certificate> = pool
        .iter()
        .filter(|c| c.subject_der == child.issuer_der)
        .collect();
    if let Some(akid) = &child.ext.authority_key_id {
        found.sort_by_key(|c| c.ext.subject_key_id.as_ref() != Some(akid));
    }
    found
}

fn in_chain(cert: &Certificate, chain: &[&Certificate]) -> bool {
    chain
        .iter()
        .any(|c| c.subject_der == cert.subject_der && c.spki_der == cert.spki_der)
}

fn check_validity(cert: &Certificate, at: Timestamp) -> Result<(), CertError> {
    if let Some(oid) = cert.unhandled_critical_extensions().first() {
        return Err(CertError::UnhandledCriticalExtension {
            subject: cert.subject().to_string(),
            oid: oid.to_string(),
        });
    }
    if !cert.valid_at(at) {
        return Err(CertError::NotValidAt {
            subject: cert.subject().to_string(),
            at,
            not_before: cert.not_before(),
            not_after: cert.not_after(),
        });
    }
    Ok(())
}

/// Go's `isValid` for an intermediate or root at this place of the chain.
fn check_parent(
    parent: &Certificate,
    role: Role,
    chain: &[&Certificate],
    at: Timestamp,
) -> Result<(), CertError> {
    check_validity(parent, at)?;
    if parent.ext.name_constraints {
        return Err(CertError::NameConstraints {
            subject: parent.subject().to_string(),
        });
    }
    if role == Role::Intermediate && !parent.is_ca() {
        return Err(CertError::NotCa {
            subject: parent.subject().to_string(),
            child: chain.last().map_or("", |c| c.subject()).to_string(),
        });
    }
    if let Some(max) = parent.ext.basic.and_then(|b| b.path_len) {
        let below = chain.len().saturating_sub(1);
        if below > usize::from(max) {
            return Err(CertError::PathLength {
                subject: parent.subject().to_string(),
                max,
                found: below,
            });
        }
    }
    Ok(())
}

/// Go's `CheckSignatureFrom`: `parent` may issue certificates and its key verifies `child`.
fn check_issued(child: &Certificate, parent: &Certificate) -> Result<(), CertError> {
    let not_ca = match parent.ext.basic {
        None => parent.version == 3,
        Some(b) => !b.ca,
    };
    if not_ca {
        return Err(CertError::NotCa {
            subject: parent.subject().to_string(),
            child: child.subject().to_string(),
        });
    }
    if parent.ext.key_cert_sign == Some(false) {
        return Err(CertError::NoKeyCertSign {
            subject: parent.subject().to_string(),
            child: child.subject().to_string(),
        });
    }
    let key = parent.public_key()?;
    verify_signature(child, &key).map_err(|failure| match failure {
        SignatureFailure::Algorithm(algorithm) => CertError::SignatureAlgorithm {
            subject: child.subject().to_string(),
            algorithm,
        },
        SignatureFailure::Invalid => CertError::BadSignature {
            subject: child.subject().to_string(),
            issuer: parent.subject().to_string(),
        },
    })
}

/// Go's `checkChainForKeyUsage` for code signing, root first.
fn allows_code_signing(chain: &[&Certificate]) -> bool {
    chain.iter().rev().all(|cert| {
        let usages = &cert.ext.ext_key_usage;
        usages.is_empty() || usages.contains(&OID_EKU_ANY) || usages.contains(&OID_EKU_CODE_SIGNING)
    })
}

enum SignatureFailure {
    Algorithm(String),
    Invalid,
}

#[derive(Clone, Copy)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(message).to_vec(),
            Hash::Sha384 => Sha384::digest(message).to_vec(),
            Hash::Sha512 => Sha512::digest(message).to_vec(),
        }
    }
    fn of_oid(oid: ObjectIdentifier) -> Option<Self> {
        match oid {
            OID_SHA256 => Some(Hash::Sha256),
            OID_SHA384 => Some(Hash::Sha384),
            OID_SHA512 => Some(Hash::Sha512),
            _ => None,
        }
    }
    fn len(self) -> u8 {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }
}

enum Scheme {
    RsaPkcs1(Hash),
    RsaPss(Hash),
    Ecdsa(Hash),
    Ed25519,
}

/// The scheme an AlgorithmIdentifier names, as Go's `getSignatureAlgorithmFromAI` reads it.
fn scheme_of(alg: &spki::AlgorithmIdentifierOwned) -> Result<Scheme, SignatureFailure> {
    let unknown = || SignatureFailure::Algorithm(alg.oid.to_string());
    Ok(match alg.oid {
        OID_RSA_SHA256 => Scheme::RsaPkcs1(Hash::Sha256),
        OID_RSA_SHA384 => Scheme::RsaPkcs1(Hash::Sha384),
        OID_RSA_SHA512 => Scheme::RsaPkcs1(Hash::Sha512),
        OID_ECDSA_SHA256 => Scheme::Ecdsa(Hash::Sha256),
        OID_ECDSA_SHA384 => Scheme::Ecdsa(Hash::Sha384),
        OID_ECDSA_SHA512 => Scheme::Ecdsa(Hash::Sha512),
        OID_ED25519 if alg.parameters.is_none() => Scheme::Ed25519,
        OID_RSA_PSS => {
            let params = alg.parameters.as_ref().ok_or_else(unknown)?;
            let params_der = der::Encode::to_der(params).map_err(|_| unknown())?;
            let pss = rsa::pkcs1::RsaPssParams::from_der(&params_der).map_err(|_| unknown())?;
            let hash = Hash::of_oid(pss.hash.oid).ok_or_else(unknown)?;
            let null_or_absent = |p: Option<der::asn1::AnyRef<'_>>| {
                p.is_none_or(|any| der::Tagged::tag(&any) == der::Tag::Null)
            };
            let mgf_hash = pss.mask_gen.parameters.as_ref();
            if !null_or_absent(pss.hash.parameters)
                || pss.mask_gen.oid != OID_MGF1
                || mgf_hash.is_none_or(|h| h.oid != pss.hash.oid || !null_or_absent(h.parameters))
                || pss.trailer_field != rsa::pkcs1::TrailerField::BC
                || pss.salt_len != hash.len()
            {
                return Err(unknown());
            }
            Scheme::RsaPss(hash)
        }
        _ => return Err(unknown()),
    })
}

/// Verifies `cert`'s signature with `key` by the certificate's signature algorithm.
fn verify_signature(cert: &Certificate, key: &PublicKey) -> Result<(), SignatureFailure> {
    let scheme = scheme_of(&cert.signature_algorithm)?;
    let message = &cert.tbs;
    let signature = &cert.signature;
    let mismatch = || {
        SignatureFailure::Algorithm(format!(
            "{} with a {} key",
            cert.signature_algorithm.oid,
            key.algorithm()
        ))
    };
    let ok = match (scheme, key) {
        (Scheme::RsaPkcs1(hash), PublicKey::Rsa { key, .. }) => {
            let digest = hash.digest(message);
            let padding = match hash {
                Hash::Sha256 => rsa::Pkcs1v15Sign::new::<Sha256>(),
                Hash::Sha384 => rsa::Pkcs1v15Sign::new::<Sha384>(),
                Hash::Sha512 => rsa::Pkcs1v15Sign::new::<Sha512>(),
            };
            key.verify(padding, &digest, signature).is_ok()
        }
        (Scheme::RsaPss(hash), PublicKey::Rsa { key, .. }) => {
            let digest = hash.digest(message);
            let salt = usize::from(hash.len());
            let padding = match hash {
                Hash::Sha256 => rsa::Pss::new_with_salt::<Sha256>(salt),
                Hash::Sha384 => rsa::Pss::new_with_salt::<Sha384>(salt),
                Hash::Sha512 => rsa::Pss::new_with_salt::<Sha512>(salt),
            };
            key.verify(padding, &digest, signature).is_ok()
        }
        (Scheme::Ecdsa(hash), PublicKey::EcdsaP256(key)) => {
            let digest = hash.digest(message);
            p256::ecdsa::Signature::from_der(signature)
                .is_ok_and(|sig| key.verify_prehash(&digest, &sig).is_ok())
        }
        (Scheme::Ecdsa(hash), PublicKey::EcdsaP384(key)) => {
            let digest = hash.digest(message);
            p384::ecdsa::Signature::from_der(signature)
                .is_ok_and(|sig| key.verify_prehash(&digest, &sig).is_ok())
        }
        (Scheme::Ed25519, PublicKey::Ed25519(key)) => {
            use ed25519_dalek::Verifier as _;
            ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok())
        }
        _ => return Err(mismatch()),
    };
    if ok {
        Ok(())
    } else {
        Err(SignatureFailure::Invalid)
    }
}
