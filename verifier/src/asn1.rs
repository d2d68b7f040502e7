//! A minimal DER reader for the structures sigstore verification walks by hand (CMS
//! `SignedData` of RFC 3161 timestamps, `TSTInfo`): tag–length–value elements, read strictly.
//!
//! Only single-byte tags (every tag of those structures), definite lengths in their shortest
//! form, and elements that fit the input are accepted; anything else is an error, never a guess.
//! Each element keeps its whole encoding ([`Element::raw`]) for what is signed as encoded
//! (signed attributes) or handed to a full parser (certificates).

/// Most nesting a walk descends (CMS timestamps need 8; bounds hostile inputs).
pub const MAX_DEPTH: usize = 32;

/// `SEQUENCE`.
pub const SEQUENCE: u8 = 0x30;
/// `SET`.
pub const SET: u8 = 0x31;
/// `INTEGER`.
pub const INTEGER: u8 = 0x02;
/// `OCTET STRING`.
pub const OCTET_STRING: u8 = 0x04;
/// `OBJECT IDENTIFIER`.
pub const OID: u8 = 0x06;
/// `GeneralizedTime`.
pub const GENERALIZED_TIME: u8 = 0x18;
/// `BOOLEAN`.
pub const BOOLEAN: u8 = 0x01;

/// Constructed context-specific tag `[n]`.
pub const fn context(n: u8) -> u8 {
    0xa0 | n
}

/// One DER element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    /// The tag byte.
    pub tag: u8,
    /// The contents.
    pub value: &'a [u8],
    /// The whole encoding: tag, length and contents.
    pub raw: &'a [u8],
}

/// A DER element could not be read; the text says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed DER: {0}")]
pub struct DerError(pub String);

fn err(what: impl Into<String>) -> DerError {
    DerError(what.into())
}

/// Reads the element at the start of `input`; returns it and what follows.
pub fn read(input: &[u8]) -> Result<(Element<'_>, &[u8]), DerError> {
    let [tag, first, rest @ ..] = input else {
        return Err(err("truncated element"));
    };
    if tag & 0x1f == 0x1f {
        return Err(err("multi-byte tag"));
    }
    let (len, rest) = if first & 0x80 == 0 {
        (usize::from(*first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(err("bad length"));
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if rest[0] == 0 || len < 0x80 {
            return Err(err("length not in its shortest form"));
        }
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(err("element longer than its input"));
    }
    let header = input.len() - rest.len();
    Ok((
        Element {
            tag: *tag,
            value: &rest[..len],
            raw: &input[..header + len],
        },
        &rest[len..],
    ))
}

/// Reads exactly one element filling `input`.
pub fn read_one(input: &[u8]) -> Result<Element<'_>, DerError> {
    let (element, rest) = read(input)?;
    if !rest.is_empty() {
        return Err(err("trailing bytes after an element"));
    }
    Ok(element)
}

/// The elements inside a constructed element, in order.
pub fn children<'a>(element: &Element<'a>) -> Result<Vec<Element<'a>>, DerError> {
    if element.tag & 0x20 == 0 {
        return Err(err(format!("tag {:#04x} is not constructed", element.tag)));
    }
    let mut out = Vec::new();
    let mut rest = element.value;
    while !rest.is_empty() {
        let (child, tail) = read(rest)?;
        out.push(child);
        rest = tail;
    }
    Ok(out)
}

impl<'a> Element<'a> {
    /// Fails unless the tag is `tag`; `what` names the element in the error.
    pub fn expect(self, tag: u8, what: &str) -> Result<Self, DerError> {
        if self.tag == tag {
            Ok(self)
        } else {
            Err(err(format!(
                "{what}: tag {:#04x} where {tag:#04x} was expected",
                self.tag
            )))
        }
    }

    /// The children of a constructed element with tag `tag`.
    pub fn items(self, tag: u8, what: &str) -> Result<Vec<Element<'a>>, DerError> {
        children(&self.expect(tag, what)?)
    }
}

/// The dotted form of an OBJECT IDENTIFIER's contents (`1.2.840.113549.1.7.2`).
pub fn oid_string(value: &[u8]) -> Result<String, DerError> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for (i, b) in value.iter().enumerate() {
        if acc == 0 && *b == 0x80 {
            return Err(err("OID arc not in its shortest form"));
        }
        acc = acc
            .checked_mul(128)
            .ok_or_else(|| err("OID arc too large"))?
            | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        } else if i + 1 == value.len() {
            return Err(err("truncated OID"));
        }
    }
    if arcs.is_empty() {
        return Err(err("empty OID"));
    }
    Ok(arcs
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join("."))
}

/// The OID of an element that must be an OBJECT IDENTIFIER.
pub fn oid(element: &Element<'_>, what: &str) -> Result<String, DerError> {
    oid_string(element.expect(OID, what)?.value)
}

/// Unix seconds of a `GeneralizedTime` (`YYYYMMDDHHMMSS[.f*]Z`; fractions truncated).
pub fn generalized_time(element: &Element<'_>) -> Result<i64, DerError> {
    let text = std::str::from_utf8(element.expect(GENERALIZED_TIME, "time")?.value)
        .map_err(|_| err("GeneralizedTime is not ASCII"))?;
    let bad = || err(format!("GeneralizedTime {text:?}"));
    if text.len() < 15 || !text.ends_with('Z') || !text.is_char_boundary(14) {
        return Err(bad());
    }
    let (digits, rest) = text.split_at(14);
    let fraction = &rest[..rest.len() - 1];
    if !digits.bytes().all(|b| b.is_ascii_digit())
        || !(fraction.is_empty()
            || (fraction.len() > 1
                && fraction.starts_with('.')
                && fraction[1..].bytes().all(|b| b.is_ascii_digit())))
    {
        return Err(bad());
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &digits[0..4],
        &digits[4..6],
        &digits[6..8],
        &digits[8..10],
        &digits[10..12],
        &digits[12..14]
    );
    cfsgate_policy::Timestamp::parse_rfc3339(&rfc3339)
        .map(|t| t.0)
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_elements_and_refuses_bad_lengths() {
        let seq = [0x30, 0x06, 0x06, 0x01, 0x2a, 0x02, 0x01, 0x05];
        let e = read_one(&seq).unwrap();
        let items = e.items(SEQUENCE, "seq").unwrap();
        assert_eq!(oid(&items[0], "oid").unwrap(), "1.2");
        assert_eq!(items[1].value, [5]);
        assert!(
            read_one(&[0x30, 0x81, 0x05, 0, 0, 0, 0, 0]).is_err(),
            "long form for 5"
        );
        assert!(read_one(&[0x30, 0x05, 0]).is_err(), "truncated");
        assert!(read_one(&[0x02, 0x01, 0x05, 0x00]).is_err(), "trailing");
    }

    #[test]
    fn oids_and_times() {
        let sd = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
        assert_eq!(oid_string(&sd).unwrap(), "1.2.840.113549.1.7.2");
        let t = b"20250612120220Z";
        let mut der = vec![GENERALIZED_TIME, t.len() as u8];
        der.extend_from_slice(t);
        assert_eq!(
            generalized_time(&read_one(&der).unwrap()).unwrap(),
            1_749_729_740
        );
        let t = b"20250612120220.123Z";
        let mut der = vec![GENERALIZED_TIME, t.len() as u8];
        der.extend_from_slice(t);
        assert_eq!(
            generalized_time(&read_one(&der).unwrap()).unwrap(),
            1_749_729_740
        );
    }
}
