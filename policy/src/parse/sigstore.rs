//! The signature requirements `signedBy` and `sigstoreSigned` (containers/image's
//! `policy_config.go` and `policy_config_sigstore.go` rules): the key forms, fulcio and pki
//! trust roots, Rekor keys, and `signedIdentity`.

use super::cfsgate::sigstore_extension;
use super::fields::{absolute_path, base64_data, non_empty_list, Fields};
use super::fields::{err, Result};
use crate::error::{Location, PolicyError, PolicyErrorKind};
use crate::identity::SignedIdentity;
use crate::json::Node;
use crate::model::*;

/// Reads the key fields named `path`, `paths`, `data`, `datas` (any subset may be
/// `None` when the requirement does not have that form). Returns every form present.
fn key_lists(
    fields: &mut Fields,
    names: [Option<&str>; 4],
) -> Result<Vec<(Location, &'static str, KeyList)>> {
    let mut found = Vec::new();
    // All four names share a prefix (`key`, `rekorPublicKey`): one scan tells whether any
    // of them is there before looking for each.
    let prefix = match names[0] {
        Some(name) if name.starts_with("rekor") => "rekorPublicKey",
        _ => "key",
    };
    if !fields.has_key_with_prefix(prefix) {
        return Ok(found);
    }
    let [path, paths, data, datas] = names;
    if let Some(name) = path {
        if let Some((location, node)) = fields.take(name) {
            found.push((
                location,
                leak(name),
                KeyList::Path(absolute_path(&node, name)?),
            ));
        }
    }
    if let Some(name) = paths {
        if let Some((location, node)) = fields.take(name) {
            let files = non_empty_list(&node, name, absolute_path)?;
            found.push((location, leak(name), KeyList::Paths(files)));
        }
    }
    if let Some(name) = data {
        if let Some((location, node)) = fields.take(name) {
            found.push((
                location,
                leak(name),
                KeyList::Data(base64_data(&node, name)?),
            ));
        }
    }
    if let Some(name) = datas {
        if let Some((location, node)) = fields.take(name) {
            let datas = non_empty_list(&node, name, base64_data)?;
            found.push((location, leak(name), KeyList::Datas(datas)));
        }
    }
    Ok(found)
}

/// Field names are a fixed set of literals; map them back to `'static` names.
fn leak(name: &str) -> &'static str {
    const NAMES: [&str; 8] = [
        "keyPath",
        "keyPaths",
        "keyData",
        "keyDatas",
        "rekorPublicKeyPath",
        "rekorPublicKeyPaths",
        "rekorPublicKeyData",
        "rekorPublicKeyDatas",
    ];
    NAMES.into_iter().find(|n| *n == name).unwrap_or("key")
}

fn optional_identity(fields: &mut Fields) -> Result<SignedIdentity> {
    match fields.take("signedIdentity") {
        None => Ok(SignedIdentity::default()),
        Some((_, node)) => signed_identity(&node),
    }
}

pub(super) fn signed_by(fields: &mut Fields, at: Location) -> Result<SignedBy> {
    let (key_type_location, key_type) = fields.require_string("keyType", at)?;
    let key_type = SignedByKeyType::parse(key_type).ok_or_else(|| {
        err(
            key_type_location,
            PolicyErrorKind::InvalidValue {
                field: "keyType".into(),
                reason: format!("unrecognized keyType value {key_type:?}"),
            },
        )
    })?;
    let mut lists = key_lists(
        fields,
        [Some("keyPath"), Some("keyPaths"), Some("keyData"), None],
    )?;
    let keys = match lists.len() {
        1 => lists.remove(0).2,
        0 => {
            return Err(err(
                at,
                PolicyErrorKind::Conflict(
                    "exactly one of keyPath, keyPaths and keyData must be specified, none of them present".into(),
                ),
            ))
        }
        _ => {
            return Err(err(
                lists[1].0,
                PolicyErrorKind::Conflict(
                    "exactly one of keyPath, keyPaths and keyData must be specified, more than one present".into(),
                ),
            ))
        }
    };
    Ok(SignedBy {
        key_type,
        keys,
        signed_identity: optional_identity(fields)?,
    })
}

pub(super) fn sigstore_signed(fields: &mut Fields, at: Location) -> Result<SigstoreSigned> {
    let mut key_sources = key_lists(
        fields,
        [
            Some("keyPath"),
            Some("keyPaths"),
            Some("keyData"),
            Some("keyDatas"),
        ],
    )?;
    let fulcio = fields
        .take("fulcio")
        .map(|(l, n)| Ok::<_, PolicyError>((l, fulcio(&n)?)))
        .transpose()?;
    let pki = fields
        .take("pki")
        .map(|(l, n)| Ok::<_, PolicyError>((l, pki(&n)?)))
        .transpose()?;
    let mut rekor = key_lists(
        fields,
        [
            Some("rekorPublicKeyPath"),
            Some("rekorPublicKeyPaths"),
            Some("rekorPublicKeyData"),
            Some("rekorPublicKeyDatas"),
        ],
    )?;
    let signed_identity = optional_identity(fields)?;
    let extension = fields.take("cfsgate");

    let mut sources: Vec<Location> = key_sources.iter().map(|s| s.0).collect();
    sources.extend(fulcio.iter().map(|f| f.0));
    sources.extend(pki.iter().map(|p| p.0));
    sources.sort();
    let (extension, extension_keys) = match extension {
        Some((location, node)) => {
            let (ext, keys) = sigstore_extension(location, &node)?;
            (Some(ext), keys)
        }
        None => (None, Vec::new()),
    };
    const ONE_OF: &str =
        "exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified";
    if sources.len() > 1 {
        return Err(err(
            sources[1],
            PolicyErrorKind::Conflict(format!("{ONE_OF}, more than one present")),
        ));
    }
    if sources.is_empty() && extension_keys.is_empty() {
        return Err(err(
            at,
            PolicyErrorKind::Conflict(format!("{ONE_OF} (or cfsgate.keys), none of them present")),
        ));
    }
    if rekor.len() > 1 {
        return Err(err(
            rekor[1].0,
            PolicyErrorKind::Conflict(
                "at most one of rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData and rekorPublicKeyDatas can be used simultaneously".into(),
            ),
        ));
    }
    let rekor_location = rekor.first().map(|r| r.0);
    let rekor_public_keys = rekor.pop().map(|r| r.2);
    let trust_root = if let Some((location, fulcio)) = fulcio {
        if rekor_public_keys.is_none() {
            return Err(err(
                location,
                PolicyErrorKind::Conflict(
                    "at least one of rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData and rekorPublicKeyDatas must be specified if fulcio is used".into(),
                ),
            ));
        }
        TrustRoot::Fulcio(Box::new(fulcio))
    } else if let Some((_, pki)) = pki {
        if let Some(rekor_location) = rekor_location {
            // containers/image: a PKI certificate is not logged in Rekor; refusing the
            // combination keeps an admin from believing a Rekor check happens.
            return Err(err(
                rekor_location,
                PolicyErrorKind::Conflict(
                    "rekorPublickeyPath, rekorPublicKeyPaths, rekorPublickeyData and rekorPublicKeyDatas are not supported for pki".into(),
                ),
            ));
        }
        TrustRoot::Pki(Box::new(pki))
    } else {
        TrustRoot::PublicKeys {
            standard: key_sources.pop().map(|s| s.2),
            extension: extension_keys,
        }
    };
    if let (Some(ext), TrustRoot::Fulcio(_) | TrustRoot::Pki(_)) = (&extension, &trust_root) {
        if ext.threshold_explicit || ext.has_keys {
            return Err(err(
                ext.location,
                PolicyErrorKind::Conflict(
                    "cfsgate.threshold and cfsgate.keys are about public keys; they cannot be used with fulcio or pki".into(),
                ),
            ));
        }
    }
    Ok(SigstoreSigned {
        trust_root,
        rekor_public_keys,
        signed_identity,
        extension,
    })
}

fn cert_source(
    fields: &mut Fields,
    path_name: &str,
    data_name: &str,
) -> Result<Option<(Location, CertSource)>> {
    let path = fields.take(path_name);
    let data = fields.take(data_name);
    match (path, data) {
        (Some(_), Some((location, _))) => Err(err(
            location,
            PolicyErrorKind::Conflict(format!(
                "{path_name} and {data_name} cannot be used simultaneously"
            )),
        )),
        (Some((l, node)), None) => Ok(Some((
            l,
            CertSource::Path(absolute_path(&node, path_name)?),
        ))),
        (None, Some((l, node))) => Ok(Some((l, CertSource::Data(base64_data(&node, data_name)?)))),
        (None, None) => Ok(None),
    }
}

fn fulcio(node: &Node) -> Result<Fulcio> {
    let mut fields = Fields::new(node, "fulcio")?;
    let ca = cert_source(&mut fields, "caPath", "caData")?;
    let issuer = fields.take_string("oidcIssuer")?;
    let email = fields.take_string("subjectEmail")?;
    fields.finish()?;
    let missing = |what: &str| err(node.location, PolicyErrorKind::Conflict(what.to_string()));
    let (_, ca) =
        ca.ok_or_else(|| missing("at least one of caPath and caData must be specified"))?;
    let oidc_issuer = issuer
        .filter(|(_, s)| !s.is_empty())
        .ok_or_else(|| missing("oidcIssuer not specified"))?
        .1;
    let subject_email = email
        .filter(|(_, s)| !s.is_empty())
        .ok_or_else(|| missing("subjectEmail not specified"))?
        .1;
    Ok(Fulcio {
        ca,
        oidc_issuer: oidc_issuer.to_string(),
        subject_email: subject_email.to_string(),
    })
}

fn pki(node: &Node) -> Result<Pki> {
    let mut fields = Fields::new(node, "pki")?;
    let roots = cert_source(&mut fields, "caRootsPath", "caRootsData")?;
    let intermediates = cert_source(&mut fields, "caIntermediatesPath", "caIntermediatesData")?;
    let email = fields.take_string("subjectEmail")?;
    let hostname = fields.take_string("subjectHostname")?;
    fields.finish()?;
    let (_, ca_roots) = roots.ok_or_else(|| {
        err(
            node.location,
            PolicyErrorKind::Conflict(
                "at least one of caRootsPath and caRootsData must be specified".into(),
            ),
        )
    })?;
    let subject_email = email.map(|(_, s)| s.to_string()).filter(|s| !s.is_empty());
    let subject_hostname = hostname
        .map(|(_, s)| s.to_string())
        .filter(|s| !s.is_empty());
    if subject_email.is_none() && subject_hostname.is_none() {
        return Err(err(
            node.location,
            PolicyErrorKind::Conflict(
                "at least one of subjectEmail, subjectHostname must be specified".into(),
            ),
        ));
    }
    Ok(Pki {
        ca_roots,
        ca_intermediates: intermediates.map(|(_, c)| c),
        subject_email,
        subject_hostname,
    })
}

fn identity_error(location: Location, message: String) -> PolicyError {
    err(location, PolicyErrorKind::InvalidSignedIdentity(message))
}

/// Parses a `signedIdentity` (or `baseLayerIdentity`) object: each kind takes exactly its
/// own fields.
pub(super) fn signed_identity(node: &Node) -> Result<SignedIdentity> {
    let mut fields = Fields::new(node, "signedIdentity")?;
    let (type_location, kind) = fields.require_string("type", node.location)?;
    fields.set_kind("signedIdentity", kind);
    let identity = match kind {
        "matchExact" => SignedIdentity::MatchExact,
        "matchRepoDigestOrExact" => SignedIdentity::MatchRepoDigestOrExact,
        "matchRepository" => SignedIdentity::MatchRepository,
        "exactReference" => {
            let (location, value) = fields.require_string("dockerReference", node.location)?;
            SignedIdentity::exact_reference(value).map_err(|m| identity_error(location, m))?
        }
        "exactRepository" => {
            let (location, value) = fields.require_string("dockerRepository", node.location)?;
            SignedIdentity::exact_repository(value).map_err(|m| identity_error(location, m))?
        }
        "remapIdentity" => {
            let (location, prefix) = fields.require_string("prefix", node.location)?;
            let (_, signed_prefix) = fields.require_string("signedPrefix", node.location)?;
            SignedIdentity::remap_identity(prefix, signed_prefix)
                .map_err(|m| identity_error(location, m))?
        }
        other => {
            return Err(identity_error(
                type_location,
                format!("unknown policy reference match type {other:?}"),
            ))
        }
    };
    fields.finish()?;
    Ok(identity)
}
