//! Field escaping of composefs-dump(5).
//!
//! A dump line is split at single spaces, so every field is escaped to contain no space, no
//! newline and nothing unprintable:
//!
//! | escape | byte |
//! |---|---|
//! | `\\` | `\` |
//! | `\n` | newline (0x0a) |
//! | `\r` | carriage return (0x0d) |
//! | `\t` | tab (0x09) |
//! | `\xHH` | any byte, two hex digits (the writer prints lowercase; the reader takes either case) |
//!
//! Any other character after `\` is an error. The writer, like `composefs-info dump`, uses the
//! named escapes for `\`, newline, CR and tab, and `\xHH` for every other byte that is not a
//! printable non-space ASCII character (so a space is `\x20`). Inside xattr keys and values `=`
//! is written `\x3d`, because the first `=` separates key from value. In the optional fields
//! (PAYLOAD, CONTENT, DIGEST) a lone `-` means "absent", so a value that is exactly `-` is
//! written `\x2d`.

use std::fmt;

/// What to escape beyond the standard set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Escape {
    /// Paths: the standard set only.
    Standard,
    /// Xattr keys and values: also `=`.
    Equal,
    /// Optional fields: also a value that is exactly `-`.
    LoneDash,
    /// `composefs-info ls` paths: the standard set, but a space stays a space.
    KeepSpace,
}

/// Append the escaped form of `bytes` to `out`.
pub(crate) fn escape_into(out: &mut Vec<u8>, bytes: &[u8], escape: Escape) {
    if escape == Escape::LoneDash && bytes == b"-" {
        out.extend_from_slice(b"\\x2d");
        return;
    }
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'=' if escape == Escape::Equal => push_hex_escape(out, b),
            b' ' if escape == Escape::KeepSpace => out.push(b' '),
            // isgraph() in the C locale: printable and not a space.
            0x21..=0x7e => out.push(b),
            _ => push_hex_escape(out, b),
        }
    }
}

fn push_hex_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(&[
        b'\\',
        b'x',
        HEX[usize::from(b >> 4)],
        HEX[usize::from(b & 0xf)],
    ]);
}

/// A field whose escapes are malformed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum UnescapeError {
    /// `\` is the last character of the field.
    TrailingBackslash,
    /// `\x` not followed by two hex digits.
    BadHex,
    /// `\` followed by a character that starts no escape.
    Unsupported(u8),
}

impl fmt::Display for UnescapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnescapeError::TrailingBackslash => write!(f, "no character after escape '\\'"),
            UnescapeError::BadHex => write!(f, "'\\x' escape not followed by two hex digits"),
            UnescapeError::Unsupported(c) => {
                write!(
                    f,
                    "unsupported escape '\\{}'",
                    std::ascii::escape_default(*c)
                )
            }
        }
    }
}

/// Decode one escaped field.
pub(crate) fn unescape(field: &[u8]) -> Result<Vec<u8>, UnescapeError> {
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter().copied();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next().ok_or(UnescapeError::TrailingBackslash)? {
            b'\\' => out.push(b'\\'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'x' => {
                let hi = bytes
                    .next()
                    .and_then(hex_value)
                    .ok_or(UnescapeError::BadHex)?;
                let lo = bytes
                    .next()
                    .and_then(hex_value)
                    .ok_or(UnescapeError::BadHex)?;
                out.push(hi << 4 | lo);
            }
            other => return Err(UnescapeError::Unsupported(other)),
        }
    }
    Ok(out)
}

/// Decode an optional field: a lone `-` is `None`.
pub(crate) fn unescape_optional(field: &[u8]) -> Result<Option<Vec<u8>>, UnescapeError> {
    if field == b"-" {
        return Ok(None);
    }
    unescape(field).map(Some)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(bytes: &[u8], escape: Escape) -> String {
        let mut out = Vec::new();
        escape_into(&mut out, bytes, escape);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn named_escapes_and_hex() {
        assert_eq!(
            esc(b"a\\b\nc\rd\te", Escape::Standard),
            "a\\\\b\\nc\\rd\\te"
        );
        assert_eq!(
            esc(b"a b\x00\x7f\xff", Escape::Standard),
            "a\\x20b\\x00\\x7f\\xff"
        );
        assert_eq!(esc(b"k=v", Escape::Standard), "k=v");
        assert_eq!(esc(b"k=v", Escape::Equal), "k\\x3dv");
        assert_eq!(esc(b"-", Escape::LoneDash), "\\x2d");
        assert_eq!(esc(b"-", Escape::Standard), "-");
        assert_eq!(esc(b"--", Escape::LoneDash), "--");
    }

    #[test]
    fn unescape_accepts_every_escape() {
        assert_eq!(
            unescape(b"a\\\\b\\nc\\rd\\te\\x20\\xFf\\x3d").unwrap(),
            b"a\\b\nc\rd\te \xff="
        );
        assert_eq!(unescape_optional(b"-").unwrap(), None);
        assert_eq!(unescape_optional(b"\\x2d").unwrap(), Some(b"-".to_vec()));
    }

    #[test]
    fn unescape_rejects_malformed() {
        assert_eq!(unescape(b"a\\q"), Err(UnescapeError::Unsupported(b'q')));
        assert_eq!(unescape(b"a\\"), Err(UnescapeError::TrailingBackslash));
        assert_eq!(unescape(b"\\x1"), Err(UnescapeError::BadHex));
        assert_eq!(unescape(b"\\xg0"), Err(UnescapeError::BadHex));
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        for escape in [Escape::Standard, Escape::Equal, Escape::LoneDash] {
            let mut out = Vec::new();
            escape_into(&mut out, &all, escape);
            assert!(out.iter().all(|&b| (0x21..=0x7e).contains(&b)));
            assert_eq!(unescape(&out).unwrap(), all);
        }
    }
}
