//! A small, strict JSON reader that remembers where every value came from.
//!
//! `serde_json` keeps the last of two duplicate keys and reports no position for semantic
//! errors found after parsing, which is not acceptable for a security policy. This reader
//! builds a [`Document`] in which every value and every object key carries its [`Location`]
//! (1-based line and column, columns counted in Unicode scalar values), and refuses:
//!
//! | input | error |
//! |---|---|
//! | bytes that are not UTF-8 | [`PolicyErrorKind::InvalidUtf8`] at the first bad byte |
//! | a key repeated in one object | [`PolicyErrorKind::DuplicateKey`] at the second key |
//! | anything after the top-level value | [`PolicyErrorKind::TrailingData`] |
//! | nesting deeper than [`MAX_NESTING_DEPTH`] | [`PolicyErrorKind::TooDeep`] |
//! | any other RFC 8259 violation | [`PolicyErrorKind::Syntax`] |
//!
//! The reader is a single forward pass (linear in the input size); object members keep
//! their order so that explanations and serialisation follow the file. It is also cheap,
//! because `cfsgate verify` parses the whole policy on every container start:
//!
//! - the document is one flat array of entries in document order (a "tape"), not a tree
//!   of separately allocated nodes: one allocation for the whole file;
//! - strings and numbers are spans of the input (only strings with escapes are copied),
//!   and an entry is 24 bytes;
//! - string contents are scanned eight bytes at a time;
//! - duplicate keys of large objects are found by sorting borrowed keys (no hashing, so no
//!   hash flooding either).
//!
//! Tape layout (`end` = index just past an entry's subtree, so a reader skips a whole
//! value in one step):
//!
//! | entry | followed by | `end` |
//! |---|---|---|
//! | scalar (`null`, boolean, number, string) | — | own index + 1 |
//! | array of `n` items | the `n` item subtrees | past the last item |
//! | object of `n` members | `n` × (key entry, value subtree) | past the last value |
//! | object key | its value's subtree | own index + 1 |
//!
//! | module | holds |
//! |---|---|
//! | this one | the [`Document`] tape and its read-only views ([`Node`], [`Value`], [`Items`], [`Members`]) |
//! | `reader` | the byte-level reader that builds the tape |
//! | `stream` | [`Stream`], the member-by-member reader of the outer maps |

mod reader;
mod stream;

pub use stream::Stream;

use crate::error::{Location, PolicyError, PolicyErrorKind};
pub use reader::parse;

/// Deepest nesting of arrays/objects accepted. A policy is at most ~6 levels deep; the
/// limit keeps the recursive reader's stack use bounded on hostile input.
pub const MAX_NESTING_DEPTH: usize = 64;

/// Objects up to this many members are checked for duplicate keys by a linear scan as
/// each key is read, which is cheaper than sorting at that size; larger objects are
/// checked once, by sorting, when the object ends.
const SMALL_OBJECT_MEMBERS: usize = 16;

/// A parsed JSON document: the tape of entries, pointing into the input text.
#[derive(Debug, Clone, PartialEq)]
pub struct Document<'a> {
    text: &'a str,
    entries: Vec<Entry>,
    /// Strings that held escapes, decoded ([`Item::Decoded`] and [`Item::DecodedKey`]).
    decoded: Vec<String>,
}

/// One tape entry: 24 bytes, because a policy's tape is as many entries as values and
/// every page of it is a page fault on each `cfsgate verify`.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    item: Item,
    location: Location,
    /// Index just past this entry's subtree.
    end: u32,
}

/// What an entry holds; text is a span of the input (`start`, `len` in bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    Null,
    Bool(bool),
    Number(Span),
    String(Span),
    /// A string with escapes: index into [`Document::decoded`].
    Decoded(u32),
    Array {
        len: u32,
    },
    Object {
        len: u32,
    },
    Key(Span),
    /// A key with escapes: index into [`Document::decoded`].
    DecodedKey(u32),
}

/// A byte range of the input text.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    start: u32,
    len: u32,
}

impl<'a> Document<'a> {
    /// The top-level value.
    pub fn root(&self) -> Node<'_> {
        Node::at(self, 0)
    }

    fn text_of(&self, span: Span) -> &str {
        let start = span.start as usize;
        self.text
            .get(start..start + span.len as usize)
            .unwrap_or_default()
    }

    fn decoded(&self, index: u32) -> &str {
        self.decoded
            .get(index as usize)
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// The key of a key entry.
    fn key_at(&self, index: usize) -> Option<&str> {
        match self.entries.get(index)?.item {
            Item::Key(span) => Some(self.text_of(span)),
            Item::DecodedKey(i) => Some(self.decoded(i)),
            _ => None,
        }
    }
}

/// A value of a [`Document`], with the location of its first character.
#[derive(Debug, Clone, Copy)]
pub struct Node<'d> {
    doc: &'d Document<'d>,
    index: usize,
    /// Where the value's first character is.
    pub location: Location,
}

/// One `"key": value` member of an object.
#[derive(Debug, Clone, Copy)]
pub struct Member<'d> {
    /// The key, with escapes undone.
    pub key: &'d str,
    /// Where the key's opening quote is.
    pub key_location: Location,
    /// The member's value.
    pub value: Node<'d>,
}

/// What a [`Node`] is; numbers keep their source text (policies only need small integers).
#[derive(Debug, Clone, Copy)]
pub enum Value<'d> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as its source text (validated JSON number syntax).
    Number(&'d str),
    /// A string, with escapes undone.
    String(&'d str),
    /// An array: iterate its items.
    Array(Items<'d>),
    /// An object: iterate its members in source order.
    Object(Members<'d>),
}

impl Value<'_> {
    /// The JSON type of the value.
    pub fn kind(&self) -> Kind {
        match self {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Number(_) => Kind::Number,
            Value::String(_) => Kind::String,
            Value::Array(_) => Kind::Array,
            Value::Object(_) => Kind::Object,
        }
    }

    /// The JSON type name, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        self.kind().type_name()
    }
}

impl<'d> Node<'d> {
    fn at(doc: &'d Document<'d>, index: usize) -> Self {
        let location = doc
            .entries
            .get(index)
            .map(|e| e.location)
            .unwrap_or_default();
        Node {
            doc,
            index,
            location,
        }
    }

    /// Index just past this value's subtree.
    fn end(&self) -> usize {
        self.doc
            .entries
            .get(self.index)
            .map_or(self.index + 1, |e| e.end as usize)
    }

    /// What this value is (`Null` for an index past the document, which parsing never makes).
    pub fn value(&self) -> Value<'d> {
        let doc = self.doc;
        let Some(entry) = doc.entries.get(self.index) else {
            return Value::Null;
        };
        match entry.item {
            Item::Null => Value::Null,
            Item::Bool(b) => Value::Bool(b),
            Item::Number(span) => Value::Number(doc.text_of(span)),
            Item::String(span) | Item::Key(span) => Value::String(doc.text_of(span)),
            Item::Decoded(i) | Item::DecodedKey(i) => Value::String(doc.decoded(i)),
            Item::Array { len } => Value::Array(Items {
                doc,
                next: self.index + 1,
                remaining: len as usize,
            }),
            Item::Object { len } => Value::Object(Members {
                doc,
                next: self.index + 1,
                remaining: len as usize,
            }),
        }
    }
}

/// The items of an array, in order.
#[derive(Debug, Clone, Copy)]
pub struct Items<'d> {
    doc: &'d Document<'d>,
    next: usize,
    remaining: usize,
}

impl<'d> Iterator for Items<'d> {
    type Item = Node<'d>;

    fn next(&mut self) -> Option<Node<'d>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let node = Node::at(self.doc, self.next);
        self.next = node.end();
        Some(node)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Items<'_> {}

/// The members of an object, in order.
#[derive(Debug, Clone, Copy)]
pub struct Members<'d> {
    doc: &'d Document<'d>,
    next: usize,
    remaining: usize,
}

impl<'d> Iterator for Members<'d> {
    type Item = Member<'d>;

    fn next(&mut self) -> Option<Member<'d>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let key = self.doc.key_at(self.next)?;
        let key_location = self.doc.entries.get(self.next)?.location;
        let value = Node::at(self.doc, self.next + 1);
        self.next = value.end();
        Some(Member {
            key,
            key_location,
            value,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Members<'_> {}

/// A JSON type: of a [`Value`], or of the value a [`Stream`] is at (from its first
/// character).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl Kind {
    /// The JSON type name ("found object").
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "boolean",
            Kind::Number => "number",
            Kind::String => "string",
            Kind::Array => "array",
            Kind::Object => "object",
        }
    }

    /// The type as an expectation ("expected an object").
    pub fn expectation(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::Array => "an array",
            Kind::Object => "an object",
        }
    }
}

/// Fails at the first key (in document order) that repeats an earlier key of the object.
fn first_duplicate(members: Members<'_>) -> Result<(), PolicyError> {
    let keys: Vec<(&str, Location)> = members.map(|m| (m.key, m.key_location)).collect();
    let names: Vec<&str> = keys.iter().map(|(key, _)| *key).collect();
    match sorted_order(&names).1.and_then(|i| keys.get(i)) {
        None => Ok(()),
        Some((key, location)) => Err(PolicyError::new(
            *location,
            PolicyErrorKind::DuplicateKey(key.to_string()),
        )),
    }
}

/// The positions of `keys` sorted by key, and the position of the first key (in the
/// original order) that repeats an earlier one. Sorting is O(n log n) whatever the keys
/// are (no hashing, so no hash flooding); used for the keys of large objects and for the
/// scope names of a transport.
pub(crate) fn sorted_order<K: Ord>(keys: &[K]) -> (Vec<u32>, Option<usize>) {
    let mut order: Vec<u32> = (0..keys.len())
        .filter_map(|i| u32::try_from(i).ok())
        .collect();
    let key = |i: u32| keys.get(i as usize);
    // Stable: equal keys keep their order, so each one after the first of a run is a repeat.
    order.sort_by(|&a, &b| key(a).cmp(&key(b)));
    let repeat = order
        .windows(2)
        .filter(|pair| key(pair[0]) == key(pair[1]))
        .map(|pair| pair[1] as usize)
        .min();
    (order, repeat)
}

/// The span `start..end` of the input (both within a text of at most `u32::MAX` bytes,
/// checked by [`parse`]).
fn span(start: usize, end: usize) -> Span {
    Span {
        start: u32::try_from(start).unwrap_or(u32::MAX),
        len: u32::try_from(end.saturating_sub(start)).unwrap_or(0),
    }
}
