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

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine as _;

use crate::error::{Location, PolicyError, PolicyErrorKind};
use crate::identity::SignedIdentity;
use std::borrow::Cow;

use crate::json::{Items, Kind, Member, Members, Node, Stream, Value};
use crate::model::*;
use crate::time::Timestamp;
use crate::transport::validate_scope;

/// Largest policy file read. Real policies are a few KiB; 1,000 scopes with keys are
/// well under 1 MiB. The cap bounds memory on a hostile or mistaken path.
pub const MAX_POLICY_BYTES: usize = 16 * 1024 * 1024;

/// Largest `threshold` accepted: there is no use for more signers than this, and it keeps
/// the value in a small integer.
pub const MAX_THRESHOLD: u32 = 1000;

type Result<T> = std::result::Result<T, PolicyError>;

fn err(location: Location, kind: PolicyErrorKind) -> PolicyError {
    PolicyError::new(location, kind)
}

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

/// Fails unless a streamed value is of the `expected` type.
fn expect_kind(found: Kind, expected: Kind, location: Location, context: &str) -> Result<()> {
    if found == expected {
        return Ok(());
    }
    Err(wrong_kind(location, context, expected.expectation(), found))
}

/// The members of an object, consumed by name; whatever is left is an unknown field.
/// Built for every object of the policy, so objects of up to [`INLINE_MEMBERS`] members
/// (all but the transport and scope maps) are held without allocating, and the context is
/// named without formatting.
struct Fields<'a> {
    /// Members not taken yet, in document order (`None` once taken).
    slots: Slots<'a>,
    context: Context<'a>,
}

/// Objects with more members than this are held on the heap by [`Fields`]; no policy
/// object other than the maps has more than 10 fields.
const INLINE_MEMBERS: usize = 12;

// The inline variant is large on purpose: it lives on the stack for the duration of one
// object's parse and saves an allocation per object.
#[allow(clippy::large_enum_variant)]
enum Slots<'a> {
    /// The slots and how many of them the object filled.
    Inline([Option<Member<'a>>; INLINE_MEMBERS], usize),
    Heap(Vec<Option<Member<'a>>>),
}

impl<'a> Slots<'a> {
    fn as_mut(&mut self) -> &mut [Option<Member<'a>>] {
        match self {
            Slots::Inline(slots, len) => slots.get_mut(..*len).unwrap_or_default(),
            Slots::Heap(slots) => slots,
        }
    }
}

/// What an object is, for error messages: a fixed name, or a name and the `type` value
/// the object declared (`requirement "sigstoreSigned"`).
#[derive(Clone, Copy)]
struct Context<'a> {
    name: &'static str,
    kind: Option<&'a str>,
}

impl std::fmt::Display for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            None => f.write_str(self.name),
            Some(kind) => write!(f, "{} {kind:?}", self.name),
        }
    }
}

impl<'a> Fields<'a> {
    fn new(node: &Node<'a>, context: &'static str) -> Result<Self> {
        let members = object(node, context)?;
        let slots = if members.len() <= INLINE_MEMBERS {
            let mut slots = [None; INLINE_MEMBERS];
            let len = members.len();
            for (slot, member) in slots.iter_mut().zip(members) {
                *slot = Some(member);
            }
            Slots::Inline(slots, len)
        } else {
            Slots::Heap(members.map(Some).collect())
        };
        Ok(Fields {
            slots,
            context: Context {
                name: context,
                kind: None,
            },
        })
    }

    /// Names the object after its `type` value in later messages.
    fn set_kind(&mut self, name: &'static str, kind: &'a str) {
        self.context = Context {
            name,
            kind: Some(kind),
        };
    }

    /// Removes the member `key`, returning the key's location and the value.
    fn take(&mut self, key: &str) -> Option<(Location, Node<'a>)> {
        let slot = self
            .slots
            .as_mut()
            .iter_mut()
            .find(|slot| slot.is_some_and(|m| m.key == key))?;
        slot.take().map(|m| (m.key_location, m.value))
    }

    /// Whether a member not taken yet has a key starting with `prefix`.
    fn has_key_with_prefix(&mut self, prefix: &str) -> bool {
        self.slots
            .as_mut()
            .iter()
            .flatten()
            .any(|m| m.key.starts_with(prefix))
    }

    fn take_string(&mut self, key: &str) -> Result<Option<(Location, &'a str)>> {
        match self.take(key) {
            None => Ok(None),
            Some((_, node)) => Ok(Some((node.location, string(&node, key)?))),
        }
    }

    fn require_string(&mut self, key: &str, at: Location) -> Result<(Location, &'a str)> {
        self.take_string(key)?.ok_or_else(|| {
            err(
                at,
                PolicyErrorKind::MissingField {
                    field: key.into(),
                    context: self.context.to_string(),
                },
            )
        })
    }

    /// Fails on the first member nobody took.
    fn finish(mut self) -> Result<()> {
        match self.slots.as_mut().iter().flatten().next() {
            None => Ok(()),
            Some(member) => Err(err(
                member.key_location,
                PolicyErrorKind::UnknownField {
                    field: member.key.to_string(),
                    context: self.context.to_string(),
                },
            )),
        }
    }
}

fn wrong_type(node: &Node<'_>, context: &str, expected: &'static str) -> PolicyError {
    wrong_kind(node.location, context, expected, node.value().kind())
}

fn wrong_kind(
    location: Location,
    context: &str,
    expected: &'static str,
    found: Kind,
) -> PolicyError {
    err(
        location,
        PolicyErrorKind::WrongType {
            context: context.to_string(),
            expected,
            found: found.type_name(),
        },
    )
}

fn object<'a>(node: &Node<'a>, context: &str) -> Result<Members<'a>> {
    match node.value() {
        Value::Object(members) => Ok(members),
        _ => Err(wrong_type(node, context, "an object")),
    }
}

fn array<'a>(node: &Node<'a>, context: &str) -> Result<Items<'a>> {
    match node.value() {
        Value::Array(items) => Ok(items),
        _ => Err(wrong_type(node, context, "an array")),
    }
}

fn string<'a>(node: &Node<'a>, context: &str) -> Result<&'a str> {
    match node.value() {
        Value::String(s) => Ok(s),
        _ => Err(wrong_type(node, context, "a string")),
    }
}

fn boolean(node: &Node, context: &str) -> Result<bool> {
    match node.value() {
        Value::Bool(b) => Ok(b),
        _ => Err(wrong_type(node, context, "a boolean")),
    }
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
            let (_, identity) = fields.take("baseLayerIdentity").ok_or_else(|| {
                err(
                    node.location,
                    PolicyErrorKind::MissingField {
                        field: "baseLayerIdentity".into(),
                        context: fields.context.to_string(),
                    },
                )
            })?;
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

fn absolute_path(node: &Node, field: &str) -> Result<KeyFile> {
    let text = string(node, field)?;
    if !text.starts_with('/') {
        return Err(err(
            node.location,
            PolicyErrorKind::RelativePath {
                field: field.to_string(),
                path: text.to_string(),
            },
        ));
    }
    Ok(KeyFile {
        path: PathBuf::from(text),
        location: node.location,
    })
}

fn base64_data(node: &Node, field: &str) -> Result<Vec<u8>> {
    let text = string(node, field)?;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| {
            err(
                node.location,
                PolicyErrorKind::InvalidValue {
                    field: field.to_string(),
                    reason: format!("not valid base64: {e}"),
                },
            )
        })
}

/// A JSON array of at least one item, each read by `item`.
fn non_empty_list<T>(
    node: &Node,
    name: &str,
    item: impl Fn(&Node, &str) -> Result<T>,
) -> Result<Vec<T>> {
    let items = array(node, name)?;
    if items.len() == 0 {
        return Err(err(
            node.location,
            PolicyErrorKind::InvalidValue {
                field: name.to_string(),
                reason: "contains no entries".into(),
            },
        ));
    }
    items.map(|i| item(&i, name)).collect()
}

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

fn signed_by(fields: &mut Fields, at: Location) -> Result<SignedBy> {
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

fn sigstore_signed(fields: &mut Fields, at: Location) -> Result<SigstoreSigned> {
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
pub(crate) fn signed_identity(node: &Node) -> Result<SignedIdentity> {
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

fn timestamp(node: &Node, field: &str) -> Result<Timestamp> {
    Timestamp::parse_rfc3339(string(node, field)?).map_err(|reason| {
        err(
            node.location,
            PolicyErrorKind::InvalidValue {
                field: field.to_string(),
                reason,
            },
        )
    })
}

fn small_integer(node: &Node, field: &str, max: u32) -> Result<u32> {
    let invalid = |reason: String| {
        err(
            node.location,
            PolicyErrorKind::InvalidValue {
                field: field.to_string(),
                reason,
            },
        )
    };
    match node.value() {
        Value::Number(text) => match text.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(invalid(format!(
                "must be an integer from 1 to {max}, found {text}"
            ))),
        },
        _ => Err(wrong_type(node, field, "a number")),
    }
}

/// The one value of `cfsgate.bundleIdentity`.
pub const BUNDLE_DIGEST_ONLY: &str = "digest-only";

/// The `cfsgate` object of a `sigstoreSigned` requirement: `threshold`, `keys` and
/// `bundleIdentity`.
fn sigstore_extension(
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
fn apply_extension(policy: &mut Policy, node: &Node) -> Result<()> {
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
