//! The building blocks every object of the policy is read with: [`Fields`] (an object's
//! members taken by name, the rest refused as unknown), the JSON type checks with their
//! "X must be Y, found Z" errors, and the value readers shared by several fields (absolute
//! key paths, base64 data, non-empty lists, timestamps, small integers).

use std::path::PathBuf;

use base64::Engine as _;

use crate::error::{Location, PolicyError, PolicyErrorKind};
use crate::json::{Items, Kind, Member, Members, Node, Value};
use crate::model::KeyFile;
use crate::time::Timestamp;

pub(super) type Result<T> = std::result::Result<T, PolicyError>;

pub(super) fn err(location: Location, kind: PolicyErrorKind) -> PolicyError {
    PolicyError::new(location, kind)
}

/// Fails unless a streamed value is of the `expected` type.
pub(super) fn expect_kind(
    found: Kind,
    expected: Kind,
    location: Location,
    context: &str,
) -> Result<()> {
    if found == expected {
        return Ok(());
    }
    Err(wrong_kind(location, context, expected.expectation(), found))
}

/// The members of an object, consumed by name; whatever is left is an unknown field.
/// Built for every object of the policy, so objects of up to [`INLINE_MEMBERS`] members
/// (all but the transport and scope maps) are held without allocating, and the context is
/// named without formatting.
pub(super) struct Fields<'a> {
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
    pub(super) fn new(node: &Node<'a>, context: &'static str) -> Result<Self> {
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
    pub(super) fn set_kind(&mut self, name: &'static str, kind: &'a str) {
        self.context = Context {
            name,
            kind: Some(kind),
        };
    }

    /// Removes the member `key`, returning the key's location and the value.
    pub(super) fn take(&mut self, key: &str) -> Option<(Location, Node<'a>)> {
        let slot = self
            .slots
            .as_mut()
            .iter_mut()
            .find(|slot| slot.is_some_and(|m| m.key == key))?;
        slot.take().map(|m| (m.key_location, m.value))
    }

    /// Whether a member not taken yet has a key starting with `prefix`.
    pub(super) fn has_key_with_prefix(&mut self, prefix: &str) -> bool {
        self.slots
            .as_mut()
            .iter()
            .flatten()
            .any(|m| m.key.starts_with(prefix))
    }

    pub(super) fn take_string(&mut self, key: &str) -> Result<Option<(Location, &'a str)>> {
        match self.take(key) {
            None => Ok(None),
            Some((_, node)) => Ok(Some((node.location, string(&node, key)?))),
        }
    }

    pub(super) fn require_string(
        &mut self,
        key: &str,
        at: Location,
    ) -> Result<(Location, &'a str)> {
        self.take_string(key)?.ok_or_else(|| self.missing(key, at))
    }

    /// Removes the member `key`, which must be there (else a missing-field error at `at`).
    pub(super) fn require(&mut self, key: &str, at: Location) -> Result<(Location, Node<'a>)> {
        self.take(key).ok_or_else(|| self.missing(key, at))
    }

    /// The error for a missing `key` of this object (reported at `at`).
    fn missing(&self, key: &str, at: Location) -> PolicyError {
        err(
            at,
            PolicyErrorKind::MissingField {
                field: key.into(),
                context: self.context.to_string(),
            },
        )
    }

    /// Fails on the first member nobody took.
    pub(super) fn finish(mut self) -> Result<()> {
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

pub(super) fn wrong_type(node: &Node<'_>, context: &str, expected: &'static str) -> PolicyError {
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

pub(super) fn object<'a>(node: &Node<'a>, context: &str) -> Result<Members<'a>> {
    match node.value() {
        Value::Object(members) => Ok(members),
        _ => Err(wrong_type(node, context, "an object")),
    }
}

pub(super) fn array<'a>(node: &Node<'a>, context: &str) -> Result<Items<'a>> {
    match node.value() {
        Value::Array(items) => Ok(items),
        _ => Err(wrong_type(node, context, "an array")),
    }
}

pub(super) fn string<'a>(node: &Node<'a>, context: &str) -> Result<&'a str> {
    match node.value() {
        Value::String(s) => Ok(s),
        _ => Err(wrong_type(node, context, "a string")),
    }
}

pub(super) fn boolean(node: &Node, context: &str) -> Result<bool> {
    match node.value() {
        Value::Bool(b) => Ok(b),
        _ => Err(wrong_type(node, context, "a boolean")),
    }
}

pub(super) fn absolute_path(node: &Node, field: &str) -> Result<KeyFile> {
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

pub(super) fn base64_data(node: &Node, field: &str) -> Result<Vec<u8>> {
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
pub(super) fn non_empty_list<T>(
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

pub(super) fn timestamp(node: &Node, field: &str) -> Result<Timestamp> {
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

pub(super) fn small_integer(node: &Node, field: &str, max: u32) -> Result<u32> {
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
