//! [`Stream`]: the policy's outer maps read member by member, each value inside them read
//! whole into a reused [`Document`] (see the type's documentation).

use std::borrow::Cow;

use super::reader::{ReadString, Reader};
use super::{Document, Kind, Node};
use crate::error::{Location, PolicyError};

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
