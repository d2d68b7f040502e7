//! The cfsgate extensions: a `sigstoreSigned` requirement's `cfsgate` object (k-of-n
//! `threshold`, `keys` with validity windows and kernel keyrings, `bundleIdentity`) and the
//! top-level `cfsgate.modes` (per-scope warn mode).

use super::fields::{
    absolute_path, array, base64_data, object, small_integer, string, timestamp, Fields,
};
use super::fields::{err, Result};
use crate::error::{Location, PolicyErrorKind};
use crate::json::Node;
use crate::model::*;

/// Largest `threshold` accepted: there is no use for more signers than this, and it keeps
/// the value in a small integer.
pub const MAX_THRESHOLD: u32 = 1000;

/// The one value of `cfsgate.bundleIdentity`.
pub const BUNDLE_DIGEST_ONLY: &str = "digest-only";

/// The `cfsgate` object of a `sigstoreSigned` requirement: `threshold`, `keys` and
/// `bundleIdentity`.
pub(super) fn sigstore_extension(
    location: Location,
    node: &Node,
) -> Result<(SigstoreExtension, Vec<TrustedKey>)> {
    let mut fields = Fields::new(node, "sigstoreSigned.cfsgate")?;
    let threshold = fields.take("threshold");
    let keys_node = fields.take("keys");
    let bundle_identity = fields.take("bundleIdentity");
    fields.finish()?;
    let bundle_digest_only = match bundle_identity {
        None => false,
        Some((_, node)) => match string(&node, "cfsgate.bundleIdentity")? {
            BUNDLE_DIGEST_ONLY => true,
            _ => {
                return Err(err(
                    node.location,
                    PolicyErrorKind::InvalidValue {
                        field: "cfsgate.bundleIdentity".into(),
                        reason: format!("only {BUNDLE_DIGEST_ONLY:?} is defined"),
                    },
                ))
            }
        },
    };
    let (threshold_value, threshold_location) = match threshold {
        Some((l, n)) => (small_integer(&n, "threshold", MAX_THRESHOLD)?, Some(l)),
        None => (1, None),
    };
    let mut keys = Vec::new();
    if let Some((_, keys_node)) = keys_node {
        let items = array(&keys_node, "cfsgate.keys")?;
        if items.len() == 0 {
            return Err(err(
                keys_node.location,
                PolicyErrorKind::InvalidValue {
                    field: "cfsgate.keys".into(),
                    reason: "contains no entries".into(),
                },
            ));
        }
        for item in items {
            keys.push(trusted_key(&item)?);
        }
    }
    Ok((
        SigstoreExtension {
            location,
            threshold: threshold_value,
            threshold_location,
            threshold_explicit: threshold_location.is_some(),
            has_keys: !keys.is_empty(),
            bundle_digest_only,
        },
        keys,
    ))
}

/// One `cfsgate.keys` entry: exactly one of `keyPath`, `keyData`, `keyring` (with at most
/// one of `description`, `serial`), and optional `notBefore` / `notAfter`.
fn trusted_key(node: &Node) -> Result<TrustedKey> {
    let mut fields = Fields::new(node, "a cfsgate key")?;
    let path = fields.take("keyPath");
    let data = fields.take("keyData");
    let keyring = fields.take("keyring");
    let description = fields.take("description");
    let serial = fields.take("serial");
    let not_before = fields.take("notBefore");
    let not_after = fields.take("notAfter");
    fields.finish()?;

    let mut present: Vec<Location> = [&path, &data, &keyring]
        .iter()
        .filter_map(|f| f.map(|(l, _)| l))
        .collect();
    present.sort();
    if present.len() != 1 {
        let (location, which) = match present.get(1) {
            Some(l) => (*l, "more than one present"),
            None => (node.location, "none of them present"),
        };
        return Err(err(
            location,
            PolicyErrorKind::Conflict(format!(
                "exactly one of keyPath, keyData and keyring must be specified, {which}"
            )),
        ));
    }
    if keyring.is_none() {
        if let Some((l, _)) = description.or(serial) {
            return Err(err(
                l,
                PolicyErrorKind::Conflict(
                    "description and serial select keys of a keyring; they need keyring".into(),
                ),
            ));
        }
    }
    let material = if let Some((_, node)) = path {
        KeyMaterial::File(absolute_path(&node, "keyPath")?.path)
    } else if let Some((_, node)) = data {
        KeyMaterial::Data(base64_data(&node, "keyData")?)
    } else if let Some((_, node)) = keyring {
        let name = string(&node, "keyring")?;
        if name.is_empty() {
            return Err(err(
                node.location,
                PolicyErrorKind::InvalidValue {
                    field: "keyring".into(),
                    reason: "must name a keyring".into(),
                },
            ));
        }
        let selector = match (description, serial) {
            (Some(_), Some((l, _))) => {
                return Err(err(
                    l,
                    PolicyErrorKind::Conflict(
                        "at most one of description and serial can be used".into(),
                    ),
                ))
            }
            (Some((_, d)), None) => {
                KeyringSelector::Description(string(&d, "description")?.to_string())
            }
            (None, Some((_, s))) => {
                let serial = small_integer(&s, "serial", i32::MAX as u32)?;
                KeyringSelector::Serial(i32::try_from(serial).unwrap_or(i32::MAX))
            }
            (None, None) => KeyringSelector::All,
        };
        KeyMaterial::Keyring {
            keyring: name.to_string(),
            selector,
        }
    } else {
        unreachable_key(node.location)?
    };
    let window = ValidityWindow {
        not_before: not_before
            .map(|(_, n)| timestamp(&n, "notBefore"))
            .transpose()?,
        not_after: not_after
            .map(|(_, n)| timestamp(&n, "notAfter"))
            .transpose()?,
    };
    Ok(TrustedKey {
        material,
        window,
        location: node.location,
    })
}

/// Exactly one source was checked above; this keeps the branch total without a panic.
fn unreachable_key(location: Location) -> Result<KeyMaterial> {
    Err(err(
        location,
        PolicyErrorKind::Conflict("no key source".into()),
    ))
}

fn mode(node: &Node) -> Result<Mode> {
    match string(node, "mode")? {
        "enforce" => Ok(Mode::Enforce),
        "warn" => Ok(Mode::Warn),
        other => Err(err(
            node.location,
            PolicyErrorKind::InvalidValue {
                field: "mode".into(),
                reason: format!("must be \"enforce\" or \"warn\", found {other:?}"),
            },
        )),
    }
}

/// The top-level `cfsgate` object: `modes` mirrors `default` + `transports`, naming
/// scopes that must exist.
pub(super) fn apply_extension(policy: &mut Policy, node: &Node) -> Result<()> {
    let mut fields = Fields::new(node, "cfsgate")?;
    let modes = fields.take("modes");
    fields.finish()?;
    let Some((_, modes)) = modes else {
        return Ok(());
    };
    let mut fields = Fields::new(&modes, "cfsgate.modes")?;
    let default = fields.take("default");
    let transports = fields.take("transports");
    fields.finish()?;
    if let Some((_, node)) = default {
        policy.default.mode = mode(&node)?;
        policy.default.mode_location = Some(node.location);
    }
    if let Some((_, node)) = transports {
        for transport in object(&node, "cfsgate.modes.transports")? {
            let Some(&index) = policy.transport_index.get(transport.key) else {
                return Err(err(
                    transport.key_location,
                    PolicyErrorKind::InvalidValue {
                        field: "cfsgate.modes.transports".into(),
                        reason: format!("the policy has no transport {:?}", transport.key),
                    },
                ));
            };
            let scopes = &mut policy.transports[index];
            for scope in object(&transport.value, "cfsgate.modes.transports.*")? {
                let Some(scope_index) = scopes.position(scope.key) else {
                    return Err(err(
                        scope.key_location,
                        PolicyErrorKind::InvalidValue {
                            field: "cfsgate.modes".into(),
                            reason: format!(
                                "transport {:?} has no scope {:?}",
                                transport.key, scope.key
                            ),
                        },
                    ));
                };
                let target = &mut scopes.scopes[scope_index];
                target.mode = mode(&scope.value)?;
                target.mode_location = Some(scope.value.location);
            }
        }
    }
    Ok(())
}
