//! From the located JSON tree ([`crate::json`]) to the [`Policy`] model, with the
//! validation rules of containers/image (`policy_config.go`,
//! `policy_config_sigstore.go`) plus cfsgate's stricter ones: relative key paths are
//! errors, and every error carries the line and column of the offending key or value.
//!
//! Top-level layout:
//!
//! ```text
//! { "default": [REQ, ...],                      required, non-empty
//!   "transports": { T: { SCOPE: [REQ, ...] } }, optional
//!   "cfsgate": { "modes": { "default": MODE,    optional (cfsgate extension)
//!                           "transports": { T: { SCOPE: MODE } } } } }
//! ```
//!
//! | module | reads |
//! |---|---|
//! | this one | the top level, `transports`, scope maps, requirement lists, `composefs` |
//! | `fields` | an object's members by name; type checks; shared value readers |
//! | `sigstore` | `signedBy`, `sigstoreSigned`, `fulcio`, `pki`, `signedIdentity` |
//! | `cfsgate` | the cfsgate extensions: a requirement's `cfsgate` object, `cfsgate.modes` |

mod cfsgate;
mod fields;
mod sigstore;

use std::borrow::Cow;
use std::collections::HashMap;

use crate::error::{Location, PolicyErrorKind};
use crate::json::{Kind, Node, Stream};
use crate::model::*;
use crate::transport::validate_scope;

use cfsgate::apply_extension;
pub use cfsgate::{BUNDLE_DIGEST_ONLY, MAX_THRESHOLD};
use fields::{boolean, err, expect_kind, Fields, Result};
use sigstore::{signed_by, signed_identity, sigstore_signed};

/// Largest policy file read. Real policies are a few KiB; 1,000 scopes with keys are
/// well under 1 MiB. The cap bounds memory on a hostile or mistaken path.
pub const MAX_POLICY_BYTES: usize = 16 * 1024 * 1024;

/// Parses and validates policy text.
///
/// The top-level object, `transports` and each transport's scope map are streamed
/// ([`Stream`]); each requirement list item, and the top-level `cfsgate` object, is read
/// whole and turned into the model. So only one requirement's JSON entries exist at a time:
/// `cfsgate verify` pays for the policy's model, not for a second copy of the file.
pub fn parse_policy(bytes: &[u8]) -> Result<Policy> {
    if bytes.len() > MAX_POLICY_BYTES {
        return Err(err(
            Location { line: 1, column: 1 },
            PolicyErrorKind::TooLarge(MAX_POLICY_BYTES),
        ));
    }
    let mut stream = Stream::new(bytes)?;
    let (root_location, kind) = stream.peek_value()?;
    expect_kind(kind, Kind::Object, root_location, "the policy")?;
    stream.enter_object()?;
    let mut seen: Vec<Cow<str>> = Vec::new();
    let mut default = None;
    let mut transports = Vec::new();
    let mut transport_index = HashMap::new();
    let mut extension = None;
    while let Some((key, key_location)) = stream.next_key()? {
        if seen.contains(&key) {
            return Err(err(
                key_location,
                PolicyErrorKind::DuplicateKey(key.into_owned()),
            ));
        }
        match &*key {
            "default" => {
                let (requirements, requirement_locations) = requirements(&mut stream)?;
                default = Some(Scope {
                    name: String::new(),
                    kind: ScopeKind::GlobalDefault,
                    location: key_location,
                    requirements,
                    requirement_locations,
                    mode: Mode::Enforce,
                    mode_location: None,
                });
            }
            "transports" => {
                let (location, kind) = stream.peek_value()?;
                expect_kind(kind, Kind::Object, location, "transports")?;
                stream.enter_object()?;
                while let Some((name, name_location)) = stream.next_key()? {
                    if transport_index.contains_key(&*name) {
                        return Err(err(
                            name_location,
                            PolicyErrorKind::DuplicateKey(name.into_owned()),
                        ));
                    }
                    transport_index.insert(name.to_string(), transports.len());
                    transports.push(transport_scopes(&mut stream, &name, name_location)?);
                }
            }
            "cfsgate" => extension = Some((key_location, stream.take_value()?)),
            _ => {
                return Err(err(
                    key_location,
                    PolicyErrorKind::UnknownField {
                        field: key.into_owned(),
                        context: "the policy".into(),
                    },
                ))
            }
        }
        seen.push(key);
    }
    stream.finish()?;

    let Some(default) = default else {
        return Err(err(
            root_location,
            PolicyErrorKind::MissingField {
                field: "default".into(),
                context: "the policy".into(),
            },
        ));
    };
    let mut policy = Policy {
        default,
        transports,
        extension_location: None,
        transport_index,
    };
    if let Some((location, document)) = extension {
        policy.extension_location = Some(location);
        apply_extension(&mut policy, &document.root())?;
    }
    Ok(policy)
}

/// `transports.NAME`: a streamed map of scope name → requirement list.
fn transport_scopes(
    stream: &mut Stream,
    transport: &str,
    transport_location: Location,
) -> Result<TransportScopes> {
    let (location, kind) = stream.peek_value()?;
    expect_kind(
        kind,
        Kind::Object,
        location,
        &format!("transports.{transport}"),
    )?;
    stream.enter_object()?;
    let mut scopes = Vec::new();
    while let Some((scope, scope_location)) = stream.next_key()? {
        if !scope.is_empty() {
            validate_scope(transport, &scope).map_err(|reason| {
                err(
                    scope_location,
                    PolicyErrorKind::InvalidScope {
                        transport: transport.to_string(),
                        scope: scope.to_string(),
                        reason,
                    },
                )
            })?;
        }
        let (requirements, requirement_locations) = requirements(stream)?;
        scopes.push(Scope {
            kind: if scope.is_empty() {
                ScopeKind::TransportDefault
            } else {
                ScopeKind::Named
            },
            name: scope.into_owned(),
            location: scope_location,
            requirements,
            requirement_locations,
            mode: Mode::Enforce,
            mode_location: None,
        });
    }
    let mut transport_scopes = TransportScopes {
        name: transport.to_string(),
        location: transport_location,
        scopes,
        by_name: Vec::new(),
    };
    // A repeated scope name is found once the whole map is read (by sorting the names,
    // which costs less than hashing them as they come).
    if let Some(repeat) = transport_scopes.index_names() {
        if let Some(scope) = transport_scopes.scopes.get(repeat) {
            return Err(err(
                scope.location,
                PolicyErrorKind::DuplicateKey(scope.name.clone()),
            ));
        }
    }
    Ok(transport_scopes)
}

/// A streamed requirement list: each item read whole and turned into a [`Requirement`].
fn requirements(stream: &mut Stream) -> Result<(Vec<Requirement>, Vec<Location>)> {
    let (location, kind) = stream.peek_value()?;
    expect_kind(kind, Kind::Array, location, "a requirement list")?;
    stream.enter_array()?;
    // Sized for the usual one or two requirements: a default-grown Vec would reserve four
    // 168-byte requirements per scope, most of them never used but still paged in.
    let mut out = Vec::with_capacity(2);
    let mut locations = Vec::with_capacity(2);
    while stream.next_item()? {
        let item = stream.read_value()?;
        locations.push(item.location);
        out.push(requirement(&item)?);
    }
    if out.is_empty() {
        return Err(err(location, PolicyErrorKind::EmptyRequirements));
    }
    out.shrink_to_fit();
    Ok((out, locations))
}

fn requirement(node: &Node) -> Result<Requirement> {
    let mut fields = Fields::new(node, "a requirement")?;
    let (type_location, kind) = fields.require_string("type", node.location)?;
    fields.set_kind("requirement", kind);
    let parsed = match kind {
        "insecureAcceptAnything" => Requirement::InsecureAcceptAnything,
        "reject" => Requirement::Reject,
        "signedBy" => Requirement::SignedBy(signed_by(&mut fields, node.location)?),
        "signedBaseLayer" => {
            let (_, identity) = fields.require("baseLayerIdentity", node.location)?;
            Requirement::SignedBaseLayer {
                base_layer_identity: signed_identity(&identity)?,
            }
        }
        "sigstoreSigned" => {
            Requirement::SigstoreSigned(sigstore_signed(&mut fields, node.location)?)
        }
        "composefs" => Requirement::Composefs(composefs(&mut fields)?),
        other => {
            return Err(err(
                type_location,
                PolicyErrorKind::UnknownRequirementType(other.to_string()),
            ))
        }
    };
    fields.finish()?;
    Ok(parsed)
}

/// `{"type": "composefs", "sealed": BOOL, "verity": "kernel"|"userspace"}`.
fn composefs(fields: &mut Fields) -> Result<ComposefsRequirement> {
    let sealed = match fields.take("sealed") {
        Some((_, node)) => boolean(&node, "sealed")?,
        None => true,
    };
    let verity = match fields.take_string("verity")? {
        None => None,
        Some((_, "kernel")) => Some(VerityMode::Kernel),
        Some((_, "userspace")) => Some(VerityMode::Userspace),
        Some((location, other)) => {
            return Err(err(
                location,
                PolicyErrorKind::InvalidValue {
                    field: "verity".into(),
                    reason: format!("must be \"kernel\" or \"userspace\", found {other:?}"),
                },
            ))
        }
    };
    Ok(ComposefsRequirement { sealed, verity })
}
