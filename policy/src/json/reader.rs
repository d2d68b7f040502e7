//! The byte-level reader behind [`parse`](super::parse) and [`Stream`](super::Stream): one
//! forward pass over UTF-8 text that keeps line and column exact, checks RFC 8259 syntax and
//! the nesting limit, refuses repeated keys, and appends entries to a [`Document`]'s tape.
//! String contents are scanned eight bytes at a time (`plain_run`).

use super::{
    first_duplicate, span, Document, Entry, Item, Members, Span, MAX_NESTING_DEPTH,
    SMALL_OBJECT_MEMBERS,
};
use crate::error::{Location, PolicyError, PolicyErrorKind};

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

pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u32,
    column: u32,
    /// The document being built.
    pub(super) doc: Document<'a>,
}

/// A string as read: a span of the input, or decoded because it held escapes.
pub(super) enum ReadString {
    Plain(Span),
    Decoded(String),
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`, which must be UTF-8 and at most `u32::MAX` long.
    pub(super) fn new(bytes: &'a [u8]) -> Result<Self, PolicyError> {
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
    pub(super) fn finish(&mut self) -> Result<(), PolicyError> {
        self.skip_whitespace();
        if self.pos < self.bytes.len() {
            return Err(PolicyError::new(
                self.location(),
                PolicyErrorKind::TrailingData,
            ));
        }
        Ok(())
    }

    pub(super) fn location(&self) -> Location {
        Location {
            line: self.line,
            column: self.column,
        }
    }

    pub(super) fn syntax(&self, message: impl Into<String>) -> PolicyError {
        PolicyError::new(self.location(), PolicyErrorKind::Syntax(message.into()))
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Moves past one byte, keeping line/column exact: a column is one Unicode scalar
    /// value, so UTF-8 continuation bytes do not advance it.
    pub(super) fn bump(&mut self) {
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

    pub(super) fn skip_whitespace(&mut self) {
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

    pub(super) fn value(&mut self, depth: usize) -> Result<(), PolicyError> {
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

    pub(super) fn enter(&self, depth: usize) -> Result<usize, PolicyError> {
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
    pub(super) fn string(&mut self) -> Result<ReadString, PolicyError> {
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
    pub(super) fn text_between(&self, start: usize, end: usize) -> &'a str {
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
