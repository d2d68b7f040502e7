//! A small, strict JSON reader that remembers where every value came from.
//!
//! `serde_json` keeps the last of two duplicate keys and reports no position for semantic
//! errors found after parsing, which is not acceptable for a security policy. This reader
//! builds a tree in which every value and every object key carries its [`Location`]
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
//! their order so that explanations and serialisation follow the file.

use std::collections::HashSet;

use crate::error::{Location, PolicyError, PolicyErrorKind};

/// Deepest nesting of arrays/objects accepted. A policy is at most ~6 levels deep; the
/// limit keeps the recursive reader's stack use bounded on hostile input.
pub const MAX_NESTING_DEPTH: usize = 64;

/// Objects up to this many members are checked for duplicate keys by a linear scan,
/// which is cheaper than hashing at that size.
const SMALL_OBJECT_MEMBERS: usize = 16;

/// A JSON value with the location of its first character.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub location: Location,
}

/// One `"key": value` member of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub key: String,
    pub key_location: Location,
    pub value: Node,
}

/// The JSON data model; numbers keep their source text (policies only need small integers).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Node>),
    Object(Vec<Member>),
}

impl Value {
    /// The JSON type name, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
}

/// Parses `bytes` as one JSON document.
pub fn parse(bytes: &[u8]) -> Result<Node, PolicyError> {
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
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        line: 1,
        column: 1,
    };
    reader.skip_whitespace();
    let node = reader.value(0)?;
    reader.skip_whitespace();
    if reader.pos < reader.bytes.len() {
        return Err(PolicyError::new(
            reader.location(),
            PolicyErrorKind::TrailingData,
        ));
    }
    Ok(node)
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
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: u32,
    column: u32,
}

impl Reader<'_> {
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
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.bump();
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

    fn value(&mut self, depth: usize) -> Result<Node, PolicyError> {
        let location = self.location();
        let value = match self.peek() {
            None => return Err(self.syntax("unexpected end of input, expected a value")),
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Value::String(self.string()?),
            Some(b't') => {
                self.expect_literal("true")?;
                Value::Bool(true)
            }
            Some(b'f') => {
                self.expect_literal("false")?;
                Value::Bool(false)
            }
            Some(b'n') => {
                self.expect_literal("null")?;
                Value::Null
            }
            Some(b'-' | b'0'..=b'9') => Value::Number(self.number()?),
            Some(other) => {
                return Err(self.syntax(format!(
                    "unexpected character {:?}, expected a value",
                    char::from(other)
                )))
            }
        };
        Ok(Node { value, location })
    }

    fn enter(&self, depth: usize) -> Result<usize, PolicyError> {
        if depth >= MAX_NESTING_DEPTH {
            return Err(PolicyError::new(self.location(), PolicyErrorKind::TooDeep));
        }
        Ok(depth + 1)
    }

    fn object(&mut self, depth: usize) -> Result<Value, PolicyError> {
        let depth = self.enter(depth)?;
        self.bump(); // '{'
        let mut members: Vec<Member> = Vec::new();
        // Duplicate detection: a linear scan while the object is small (most policy
        // objects have a handful of keys), a hash set once it grows, so a transport with
        // thousands of scopes stays linear.
        let mut seen: Option<HashSet<String>> = None;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.bump();
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_whitespace();
            let key_location = self.location();
            if self.peek() != Some(b'"') {
                return Err(self.syntax("expected a string key"));
            }
            let key = self.string()?;
            let duplicate = match &mut seen {
                Some(set) => !set.insert(key.clone()),
                None => {
                    let found = members.iter().any(|m| m.key == key);
                    if members.len() >= SMALL_OBJECT_MEMBERS {
                        seen = Some(
                            members
                                .iter()
                                .map(|m| m.key.clone())
                                .chain(std::iter::once(key.clone()))
                                .collect(),
                        );
                    }
                    found
                }
            };
            if duplicate {
                return Err(PolicyError::new(
                    key_location,
                    PolicyErrorKind::DuplicateKey(key),
                ));
            }
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.syntax("expected `:` after an object key"));
            }
            self.bump();
            self.skip_whitespace();
            let value = self.value(depth)?;
            members.push(Member {
                key,
                key_location,
                value,
            });
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.bump(),
                Some(b'}') => {
                    self.bump();
                    return Ok(Value::Object(members));
                }
                _ => return Err(self.syntax("expected `,` or `}` in an object")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, PolicyError> {
        let depth = self.enter(depth)?;
        self.bump(); // '['
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.bump();
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.bump(),
                Some(b']') => {
                    self.bump();
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.syntax("expected `,` or `]` in an array")),
            }
        }
    }

    fn number(&mut self) -> Result<String, PolicyError> {
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
        Ok(self
            .text
            .get(start..self.pos)
            .unwrap_or_default()
            .to_string())
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

    fn string(&mut self) -> Result<String, PolicyError> {
        self.bump(); // opening quote
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.bump();
            }
            // Runs start and stop only at ASCII bytes, so both ends are char boundaries.
            out.push_str(self.text.get(run_start..self.pos).unwrap_or_default());
            match self.peek() {
                None => return Err(self.syntax("unterminated string")),
                Some(b'"') => {
                    self.bump();
                    return Ok(out);
                }
                Some(b'\\') => {
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
                            out.push(self.unicode_escape()?);
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
