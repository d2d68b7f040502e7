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

use std::borrow::Cow;

use crate::error::{Location, PolicyError, PolicyErrorKind};

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

/// Parses `bytes` as one JSON document.
pub fn parse(bytes: &[u8]) -> Result<Document<'_>, PolicyError> {
    let mut reader = Reader::new(bytes)?;
    // Every value takes at least two bytes but the last, so this never grows; the pages
    // of unused capacity are never touched.
    reader.doc.entries.reserve(bytes.len() / 2 + 1);
    reader.skip_whitespace();
    reader.value(0)?;
    reader.finish()?;
    Ok(reader.doc)
}

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

/// Reads a document's outer objects and arrays member by member, and the values inside
/// them whole, one at a time, into a reused [`Document`].
///
/// A policy is a few levels of maps (transports, scopes) around many small requirement
/// objects; streaming the maps means only one requirement's entries exist at a time
/// instead of a tape of the whole file. Errors (syntax, duplicate keys inside values,
/// depth) are the ones [`parse`] reports, at the same locations; duplicate keys of the
/// streamed objects themselves are for the caller to find. Callers must read (or enter)
/// each member's or item's value before asking for the next one.
pub struct Stream<'a> {
    reader: Reader<'a>,
    /// For each object or array entered and not yet closed: whether nothing was read
    /// from it yet (so no `,` is due).
    open: Vec<bool>,
}

impl<'a> Stream<'a> {
    /// A stream over `bytes`, positioned before the top-level value (fails on a bad size or
    /// encoding before any value is read).
    pub fn new(bytes: &'a [u8]) -> Result<Self, PolicyError> {
        Ok(Stream {
            reader: Reader::new(bytes)?,
            open: Vec::new(),
        })
    }

    /// The location and type of the next value (whitespace skipped).
    pub fn peek_value(&mut self) -> Result<(Location, Kind), PolicyError> {
        let reader = &mut self.reader;
        reader.skip_whitespace();
        let kind = match reader.peek() {
            None => return Err(reader.syntax("unexpected end of input, expected a value")),
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::Array,
            Some(b'"') => Kind::String,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'n') => Kind::Null,
            Some(b'-' | b'0'..=b'9') => Kind::Number,
            Some(other) => {
                return Err(reader.syntax(format!(
                    "unexpected character {:?}, expected a value",
                    char::from(other)
                )))
            }
        };
        Ok((reader.location(), kind))
    }

    /// Opens the object the stream is at (after [`Stream::peek_value`] said so).
    pub fn enter_object(&mut self) -> Result<(), PolicyError> {
        self.enter(b'{')
    }

    /// Opens the array the stream is at (after [`Stream::peek_value`] said so).
    pub fn enter_array(&mut self) -> Result<(), PolicyError> {
        self.enter(b'[')
    }

    fn enter(&mut self, open: u8) -> Result<(), PolicyError> {
        self.reader.skip_whitespace();
        self.reader.enter(self.open.len())?;
        if self.reader.peek() != Some(open) {
            return Err(self.reader.syntax("internal: not at the expected value"));
        }
        self.reader.bump();
        self.open.push(true);
        Ok(())
    }

    /// The next key of the innermost open object and its location, the stream left at
    /// its value; `None` at the closing brace (the object is closed).
    pub fn next_key(&mut self) -> Result<Option<(Cow<'a, str>, Location)>, PolicyError> {
        let first = self.open.last_mut().map(std::mem::take).unwrap_or(false);
        let reader = &mut self.reader;
        reader.skip_whitespace();
        match reader.peek() {
            Some(b'}') => {
                reader.bump();
                self.open.pop();
                return Ok(None);
            }
            Some(b',') if !first => {
                reader.bump();
                reader.skip_whitespace();
            }
            _ if first => {}
            _ => return Err(reader.syntax("expected `,` or `}` in an object")),
        }
        let key_location = reader.location();
        if reader.peek() != Some(b'"') {
            return Err(reader.syntax("expected a string key"));
        }
        let key = match reader.string()? {
            ReadString::Plain(span) => Cow::Borrowed(
                reader.text_between(span.start as usize, span.start as usize + span.len as usize),
            ),
            ReadString::Decoded(text) => Cow::Owned(text),
        };
        reader.skip_whitespace();
        if reader.peek() != Some(b':') {
            return Err(reader.syntax("expected `:` after an object key"));
        }
        reader.bump();
        reader.skip_whitespace();
        Ok(Some((key, key_location)))
    }

    /// Whether the innermost open array has another item (the stream left at it);
    /// `false` at the closing bracket (the array is closed).
    pub fn next_item(&mut self) -> Result<bool, PolicyError> {
        let first = self.open.last_mut().map(std::mem::take).unwrap_or(false);
        let reader = &mut self.reader;
        reader.skip_whitespace();
        match reader.peek() {
            Some(b']') => {
                reader.bump();
                self.open.pop();
                Ok(false)
            }
            Some(b',') if !first => {
                reader.bump();
                reader.skip_whitespace();
                Ok(true)
            }
            _ if first => Ok(true),
            _ => Err(reader.syntax("expected `,` or `]` in an array")),
        }
    }

    /// Reads the next value whole; it stays readable until the stream is used again.
    pub fn read_value(&mut self) -> Result<Node<'_>, PolicyError> {
        self.reader.doc.entries.clear();
        self.reader.doc.decoded.clear();
        self.reader.value(self.open.len())?;
        Ok(self.reader.doc.root())
    }

    /// Reads the next value whole into a document of its own.
    pub fn take_value(&mut self) -> Result<Document<'a>, PolicyError> {
        self.read_value()?;
        let empty = Document {
            text: self.reader.doc.text,
            entries: Vec::new(),
            decoded: Vec::new(),
        };
        Ok(std::mem::replace(&mut self.reader.doc, empty))
    }

    /// Checks that nothing but whitespace follows the top-level value.
    pub fn finish(mut self) -> Result<(), PolicyError> {
        self.reader.finish()
    }
}

/// The location just after `prefix` (used for the position of an invalid byte).
fn location_after(prefix: &str) -> Location {
    let mut location = Location { line: 1, column: 1 };
    for c in prefix.chars() {
        if c == '\n' {
            location.line += 1;
            location.column = 1;
        } else {
            location.column += 1;
        }
    }
    location
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u32,
    column: u32,
    /// The document being built.
    doc: Document<'a>,
}

/// A string as read: a span of the input, or decoded because it held escapes.
enum ReadString {
    Plain(Span),
    Decoded(String),
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`, which must be UTF-8 and at most `u32::MAX` long.
    fn new(bytes: &'a [u8]) -> Result<Self, PolicyError> {
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(err) => {
                let valid = &bytes[..err.valid_up_to()];
                // The valid prefix is UTF-8 by construction, so this cannot fail.
                let prefix = std::str::from_utf8(valid).unwrap_or_default();
                return Err(PolicyError::new(
                    location_after(prefix),
                    PolicyErrorKind::InvalidUtf8,
                ));
            }
        };
        if u32::try_from(bytes.len()).is_err() {
            // Spans are u32 offsets; policies are capped far below this.
            return Err(PolicyError::new(
                Location { line: 1, column: 1 },
                PolicyErrorKind::TooLarge(u32::MAX as usize),
            ));
        }
        Ok(Reader {
            bytes: text.as_bytes(),
            pos: 0,
            line: 1,
            column: 1,
            doc: Document {
                text,
                entries: Vec::new(),
                decoded: Vec::new(),
            },
        })
    }

    /// Checks that nothing but whitespace is left.
    fn finish(&mut self) -> Result<(), PolicyError> {
        self.skip_whitespace();
        if self.pos < self.bytes.len() {
            return Err(PolicyError::new(
                self.location(),
                PolicyErrorKind::TrailingData,
            ));
        }
        Ok(())
    }

    fn location(&self) -> Location {
        Location {
            line: self.line,
            column: self.column,
        }
    }

    fn syntax(&self, message: impl Into<String>) -> PolicyError {
        PolicyError::new(self.location(), PolicyErrorKind::Syntax(message.into()))
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Moves past one byte, keeping line/column exact: a column is one Unicode scalar
    /// value, so UTF-8 continuation bytes do not advance it.
    fn bump(&mut self) {
        if let Some(&b) = self.bytes.get(self.pos) {
            self.pos += 1;
            if b == b'\n' {
                self.line += 1;
                self.column = 1;
            } else if b & 0xC0 != 0x80 {
                self.column += 1;
            }
        }
    }

    fn skip_whitespace(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b' ' | b'\t' | b'\r' => self.column += 1,
                b'\n' => {
                    self.line += 1;
                    self.column = 1;
                }
                _ => return,
            }
            self.pos += 1;
        }
    }

    fn expect_literal(&mut self, literal: &str) -> Result<(), PolicyError> {
        for expected in literal.bytes() {
            if self.peek() != Some(expected) {
                return Err(self.syntax(format!("invalid literal, expected `{literal}`")));
            }
            self.bump();
        }
        Ok(())
    }

    /// Appends an entry whose subtree is itself alone; returns its index.
    fn push(&mut self, item: Item, location: Location) -> Result<usize, PolicyError> {
        let index = self.doc.entries.len();
        let end = u32::try_from(index + 1).map_err(|_| self.syntax("too many values"))?;
        self.doc.entries.push(Entry {
            item,
            location,
            end,
        });
        Ok(index)
    }

    /// Sets a container's member/item count and the end of its subtree.
    fn close(&mut self, index: usize, count: usize) -> Result<(), PolicyError> {
        let end =
            u32::try_from(self.doc.entries.len()).map_err(|_| self.syntax("too many values"))?;
        let count = u32::try_from(count).map_err(|_| self.syntax("too many values"))?;
        if let Some(entry) = self.doc.entries.get_mut(index) {
            entry.end = end;
            match &mut entry.item {
                Item::Array { len } | Item::Object { len } => *len = count,
                _ => {}
            }
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<(), PolicyError> {
        let location = self.location();
        let item = match self.peek() {
            None => return Err(self.syntax("unexpected end of input, expected a value")),
            Some(b'{') => return self.object(depth, location),
            Some(b'[') => return self.array(depth, location),
            Some(b'"') => match self.string()? {
                ReadString::Plain(span) => Item::String(span),
                ReadString::Decoded(text) => Item::Decoded(self.keep_decoded(text)?),
            },
            Some(b't') => {
                self.expect_literal("true")?;
                Item::Bool(true)
            }
            Some(b'f') => {
                self.expect_literal("false")?;
                Item::Bool(false)
            }
            Some(b'n') => {
                self.expect_literal("null")?;
                Item::Null
            }
            Some(b'-' | b'0'..=b'9') => Item::Number(self.number()?),
            Some(other) => {
                return Err(self.syntax(format!(
                    "unexpected character {:?}, expected a value",
                    char::from(other)
                )))
            }
        };
        self.push(item, location)?;
        Ok(())
    }

    fn enter(&self, depth: usize) -> Result<usize, PolicyError> {
        if depth >= MAX_NESTING_DEPTH {
            return Err(PolicyError::new(self.location(), PolicyErrorKind::TooDeep));
        }
        Ok(depth + 1)
    }

    /// Whether the object opened at `object` already has the key `key` (a linear walk of
    /// its members so far).
    fn has_key(&self, object: usize, count: usize, key: &str) -> bool {
        let mut members = Members {
            doc: &self.doc,
            next: object + 1,
            remaining: count,
        };
        members.any(|m| m.key == key)
    }

    /// Stores a decoded string; returns its index in [`Document::decoded`].
    fn keep_decoded(&mut self, text: String) -> Result<u32, PolicyError> {
        let index =
            u32::try_from(self.doc.decoded.len()).map_err(|_| self.syntax("too many strings"))?;
        self.doc.decoded.push(text);
        Ok(index)
    }

    fn object(&mut self, depth: usize, location: Location) -> Result<(), PolicyError> {
        let depth = self.enter(depth)?;
        self.bump(); // '{'
        let index = self.push(Item::Object { len: 0 }, location)?;
        let mut count = 0;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.bump();
            return self.close(index, count);
        }
        loop {
            self.skip_whitespace();
            let key_location = self.location();
            if self.peek() != Some(b'"') {
                return Err(self.syntax("expected a string key"));
            }
            let key = match self.string()? {
                ReadString::Plain(span) => Item::Key(span),
                ReadString::Decoded(text) => Item::DecodedKey(self.keep_decoded(text)?),
            };
            let key_index = self.push(key, key_location)?;
            // Small objects (most policy objects have a handful of keys): a linear scan now.
            if count < SMALL_OBJECT_MEMBERS {
                let key = self.doc.key_at(key_index).unwrap_or_default();
                if self.has_key(index, count, key) {
                    return Err(PolicyError::new(
                        key_location,
                        PolicyErrorKind::DuplicateKey(key.to_string()),
                    ));
                }
            }
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.syntax("expected `:` after an object key"));
            }
            self.bump();
            self.skip_whitespace();
            self.value(depth)?;
            count += 1;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.bump(),
                Some(b'}') => {
                    self.bump();
                    self.close(index, count)?;
                    if count > SMALL_OBJECT_MEMBERS {
                        first_duplicate(Members {
                            doc: &self.doc,
                            next: index + 1,
                            remaining: count,
                        })?;
                    }
                    return Ok(());
                }
                _ => return Err(self.syntax("expected `,` or `}` in an object")),
            }
        }
    }

    fn array(&mut self, depth: usize, location: Location) -> Result<(), PolicyError> {
        let depth = self.enter(depth)?;
        self.bump(); // '['
        let index = self.push(Item::Array { len: 0 }, location)?;
        let mut count = 0;
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.bump();
            return self.close(index, count);
        }
        loop {
            self.skip_whitespace();
            self.value(depth)?;
            count += 1;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.bump(),
                Some(b']') => {
                    self.bump();
                    return self.close(index, count);
                }
                _ => return Err(self.syntax("expected `,` or `]` in an array")),
            }
        }
    }

    fn number(&mut self) -> Result<Span, PolicyError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.bump();
        }
        match self.peek() {
            Some(b'0') => self.bump(),
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.peek() {
                    self.bump();
                }
            }
            _ => return Err(self.syntax("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.bump();
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.syntax("invalid number: expected a digit after `.`"));
            }
            while let Some(b'0'..=b'9') = self.peek() {
                self.bump();
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.bump();
            if let Some(b'+' | b'-') = self.peek() {
                self.bump();
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.syntax("invalid number: expected a digit in the exponent"));
            }
            while let Some(b'0'..=b'9') = self.peek() {
                self.bump();
            }
        }
        // Only ASCII was consumed, so both ends are char boundaries.
        Ok(span(start, self.pos))
    }

    fn hex4(&mut self) -> Result<u32, PolicyError> {
        let mut code = 0u32;
        for _ in 0..4 {
            let digit = match self.peek() {
                Some(b @ b'0'..=b'9') => u32::from(b - b'0'),
                Some(b @ b'a'..=b'f') => u32::from(b - b'a' + 10),
                Some(b @ b'A'..=b'F') => u32::from(b - b'A' + 10),
                _ => return Err(self.syntax("invalid \\u escape: expected 4 hex digits")),
            };
            code = code * 16 + digit;
            self.bump();
        }
        Ok(code)
    }

    /// Reads a string (at its opening quote): a span of the input unless it holds an
    /// escape.
    fn string(&mut self) -> Result<ReadString, PolicyError> {
        self.bump(); // opening quote
        let content_start = self.pos;
        let mut decoded: Option<String> = None;
        loop {
            let run_start = self.pos;
            self.skip_plain_string_bytes();
            let run_end = self.pos;
            match self.peek() {
                None => return Err(self.syntax("unterminated string")),
                Some(b'"') => {
                    self.bump();
                    return Ok(match decoded {
                        None => ReadString::Plain(span(content_start, run_end)),
                        Some(mut out) => {
                            out.push_str(self.text_between(run_start, run_end));
                            ReadString::Decoded(out)
                        }
                    });
                }
                Some(b'\\') => {
                    let run = self.text_between(run_start, run_end);
                    let out = decoded.get_or_insert_with(String::new);
                    out.push_str(run);
                    self.bump();
                    let escaped = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.bump();
                            let c = self.unicode_escape()?;
                            decoded.get_or_insert_with(String::new).push(c);
                            continue;
                        }
                        _ => return Err(self.syntax("invalid escape in string")),
                    };
                    self.bump();
                    out.push(escaped);
                }
                Some(_) => return Err(self.syntax("control character in string")),
            }
        }
    }

    /// The input between two positions that are char boundaries (runs start and stop only
    /// at ASCII bytes).
    fn text_between(&self, start: usize, end: usize) -> &'a str {
        self.doc.text.get(start..end).unwrap_or_default()
    }

    /// Moves past string bytes that need no attention (not `"`, `\\` or a control
    /// character) in one go: no newline can be among them, so only the column moves, by
    /// the number of Unicode scalar values (bytes that are not UTF-8 continuations).
    fn skip_plain_string_bytes(&mut self) {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let (len, continuations) = plain_run(rest);
        self.pos += len;
        let scalars = len - continuations;
        self.column = self
            .column
            .saturating_add(u32::try_from(scalars).unwrap_or(u32::MAX));
    }

    /// Reads the hex digits of a `\u` escape (the `\u` already consumed), joining a
    /// UTF-16 surrogate pair into one character.
    fn unicode_escape(&mut self) -> Result<char, PolicyError> {
        let first = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&first) {
            if self.peek() != Some(b'\\') {
                return Err(self.syntax("unpaired UTF-16 surrogate in \\u escape"));
            }
            self.bump();
            if self.peek() != Some(b'u') {
                return Err(self.syntax("unpaired UTF-16 surrogate in \\u escape"));
            }
            self.bump();
            let second = self.hex4()?;
            if !(0xDC00..0xE000).contains(&second) {
                return Err(self.syntax("invalid low surrogate in \\u escape"));
            }
            0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        } else {
            first
        };
        char::from_u32(code).ok_or_else(|| self.syntax("\\u escape is not a Unicode scalar value"))
    }
}

/// Eight copies of a byte, for the word-at-a-time scan of [`plain_run`].
const fn repeat_byte(byte: u8) -> u64 {
    u64::from_le_bytes([byte; 8])
}

/// The high bit of each byte of `word` whose byte is below `limit` (`limit` ≤ 0x80).
/// Bits above the lowest true match may be false positives (a borrow carries into the
/// next byte); callers only use the lowest set bit.
fn bytes_below(word: u64, limit: u8) -> u64 {
    word.wrapping_sub(repeat_byte(limit)) & !word & repeat_byte(0x80)
}

/// The high bit of each byte of `word` equal to `byte` (same caveat as [`bytes_below`]).
fn bytes_equal(word: u64, byte: u8) -> u64 {
    bytes_below(word ^ repeat_byte(byte), 1)
}

/// How many bytes of `word` (under `mask`) are UTF-8 continuation bytes (`10xxxxxx`).
/// ASCII words, the usual case, skip the bit count.
fn continuation_count(word: u64, mask: u64) -> usize {
    let high = word & mask & repeat_byte(0x80);
    if high == 0 {
        return 0;
    }
    (high & !(word << 1)).count_ones() as usize
}

/// The length of the run at the start of `bytes` without `"`, `\\` or a control
/// character, and how many of its bytes are UTF-8 continuation bytes. Eight bytes at a
/// time: string contents are most of a policy file's bytes.
fn plain_run(bytes: &[u8]) -> (usize, usize) {
    let mut len = 0;
    let mut continuations = 0;
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let mut word_bytes = [0u8; 8];
        word_bytes.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word_bytes);
        let stops = bytes_equal(word, b'"') | bytes_equal(word, b'\\') | bytes_below(word, 0x20);
        if stops != 0 {
            let plain = (stops.trailing_zeros() / 8) as usize;
            // Keep only the bytes before the stop (little-endian: the low bytes).
            let kept = if plain == 0 {
                0
            } else {
                u64::MAX >> (64 - 8 * plain)
            };
            continuations += continuation_count(word, kept);
            return (len + plain, continuations);
        }
        continuations += continuation_count(word, u64::MAX);
        len += 8;
    }
    for &byte in words.remainder() {
        if byte == b'"' || byte == b'\\' || byte < 0x20 {
            break;
        }
        continuations += usize::from(byte & 0xC0 == 0x80);
        len += 1;
    }
    (len, continuations)
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
