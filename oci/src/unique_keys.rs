//! Duplicate object keys in a manifest, index or image config are refused.
//!
//! JSON leaves a repeated key undefined: `serde_json` and Go's `encoding/json` keep the last,
//! other parsers the first, and serde's derived structs refuse one only among the fields they
//! name (a repeated `Env` inside `config` passes them, a repeated annotation too). An image
//! whose bytes mean different things to different readers is hostile input, so every such
//! document is walked once, whole, before it is used: the first repeated key is an error that
//! names it and where it is (`config.Env`).
//!
//! The walk keeps only the keys of the objects it is inside (at most [`MAX_DEPTH`] deep, the
//! limit `serde_json` enforces too), so its memory is bounded by the document, itself read
//! under its size limit.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Deepest nesting walked (serde_json refuses deeper documents with the same bound).
pub const MAX_DEPTH: usize = 128;

/// Refuse a JSON document in which some object repeats a key: the error names the key and
/// its path (`a.b[2].c`, `$` for the top level). Syntax errors are reported as they are.
pub fn check_unique_keys(bytes: &[u8]) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let walk = Walk {
        path: "$".to_string(),
        depth: 0,
    };
    walk.deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())
}

/// One value being walked, at `path`.
struct Walk {
    path: String,
    depth: usize,
}

impl Walk {
    fn child(&self, step: String) -> Walk {
        Walk {
            path: if self.path == "$" {
                step.trim_start_matches('.').to_string()
            } else {
                format!("{}{step}", self.path)
            },
            depth: self.depth + 1,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.depth > MAX_DEPTH {
            return Err(serde::de::Error::custom(format!(
                "nested deeper than {MAX_DEPTH} levels at {}",
                self.path
            )));
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while seq
            .next_element_seed(self.child(format!("[{index}]")))?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let step = format!(".{key}");
            if !seen.insert(key) {
                let at = self.child(step).path;
                return Err(serde::de::Error::custom(format!(
                    "duplicate key {at:?} (JSON leaves its meaning undefined)"
                )));
            }
            map.next_value_seed(self.child(step))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_first_repeated_key_and_its_path() {
        assert!(check_unique_keys(br#"{"a":1,"b":{"c":[1,{"d":2}]}}"#).is_ok());
        let e = check_unique_keys(br#"{"config":{"Env":["A=1"],"Env":["A=2"]}}"#).unwrap_err();
        assert!(e.contains("duplicate key \"config.Env\""), "{e}");
        let e = check_unique_keys(br#"{"a":[{"x":1},{"x":1,"x":2}]}"#).unwrap_err();
        assert!(e.contains("\"a[1].x\""), "{e}");
        let e = check_unique_keys(br#"{"top":1,"top":1}"#).unwrap_err();
        assert!(e.contains("\"top\""), "{e}");
        // Same key in sibling objects is fine; escapes are compared decoded.
        assert!(check_unique_keys(br#"{"a":{"k":1},"b":{"k":1}}"#).is_ok());
        assert!(check_unique_keys(br#"{"k":1,"\u006b":2}"#).is_err());
        assert!(check_unique_keys(b"{\"a\":1} trailing").is_err());
        assert!(check_unique_keys(b"{\"a\":").is_err());
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(check_unique_keys(deep.as_bytes()).is_err());
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(check_unique_keys(ok.as_bytes()).is_ok());
    }
}
