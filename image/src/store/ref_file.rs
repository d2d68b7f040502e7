//! Ref files and ref names: the one parser of `refs/<name>` and the one check of a name,
//! for the store ([`super::refs`], `fsck`, `gc`), the layout ([`super::paths`]) and the
//! mounter (`cfsgate mount NAME`). A leaf: it needs no open repository.
//!
//! The content is the image's digest as 64 hex digits, optionally `sha256:`-prefixed,
//! followed by optional trailing whitespace (the newline); anything else is a bad ref, for all
//! readers alike. The file is type-checked before it is opened (a FIFO or device in its place
//! is refused, never opened) and read under [`MAX_REF_FILE_LEN`].
//!
//! A name is one or more `/`-separated components; each is non-empty, not `.` or `..`, has no
//! NUL and at most [`MAX_REF_COMPONENT_LEN`] bytes, and the whole is at most
//! [`MAX_REF_NAME_LEN`] bytes. So a name can never leave `refs/`.

use std::path::Path;

use cfsgate_sys::file::{Follow, SizeLimit};

use crate::fsverity::FsVeritySha256;

use super::StoreError;

/// Longest ref name (a file path below `refs/`; PATH_MAX leaves room for the repository path).
pub const MAX_REF_NAME_LEN: usize = 1024;
/// Longest component of a ref name (NAME_MAX).
pub const MAX_REF_COMPONENT_LEN: usize = 255;
/// A ref file is one digest and a newline; a little slack for editors.
pub const MAX_REF_FILE_LEN: u64 = 128;

/// Check that `name` is a valid ref name.
pub fn validate_ref_name(name: &str) -> Result<(), StoreError> {
    let bad = |reason| {
        Err(StoreError::BadRefName {
            name: name.chars().take(200).collect(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_REF_NAME_LEN {
        return bad("longer than 1024 bytes");
    }
    if name.contains('\0') {
        return bad("contains NUL");
    }
    for component in name.split('/') {
        match component {
            "" => return bad("empty component (leading, trailing or doubled '/')"),
            "." | ".." => return bad("'.' or '..' component"),
            c if c.len() > MAX_REF_COMPONENT_LEN => return bad("component longer than 255 bytes"),
            _ => {}
        }
    }
    Ok(())
}

/// The digest a ref file's content names (see the module doc), or why it names none.
pub fn parse_ref_content(data: &[u8]) -> Result<FsVeritySha256, String> {
    let text = std::str::from_utf8(data).map_err(|_| "not UTF-8".to_string())?;
    let text = text.trim_end();
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    FsVeritySha256::from_hex(hex).map_err(|e| e.to_string())
}

/// Read the ref file `path` (ref `name`, for errors): type-checked before it is opened, read
/// under [`MAX_REF_FILE_LEN`], parsed by [`parse_ref_content`]. The one ref reader of the
/// store and the mounter.
pub fn read_ref_file(path: &Path, name: &str) -> Result<FsVeritySha256, StoreError> {
    let bad = |reason: String| StoreError::BadRef {
        name: name.to_string(),
        reason,
    };
    let limit = SizeLimit::new("ref file", MAX_REF_FILE_LEN);
    let data =
        cfsgate_sys::file::read(path, Follow::NoSymlinks, limit).map_err(|e| bad(e.to_string()))?;
    parse_ref_content(&data).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names() {
        for good in [
            "a",
            "app/v1",
            "registry.example/ns/app:1.0",
            "x".repeat(255).as_str(),
        ] {
            assert!(validate_ref_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/abs",
            "a/",
            "a//b",
            "..",
            "a/../b",
            "./a",
            "a/.",
            "a\0b",
            "y".repeat(256).as_str(),
        ] {
            assert!(validate_ref_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ref_contents() {
        let hex = "37061ef2ac4c21bec68489b56138c5780306a4ad7fe6676236ecdf2c9027cd92";
        for good in [
            hex.to_string(),
            format!("{hex}\n"),
            format!("sha256:{hex}\n"),
            format!("sha256:{hex}\r\n"),
        ] {
            assert_eq!(parse_ref_content(good.as_bytes()).unwrap().to_hex(), hex);
        }
        for bad in [
            format!(" {hex}"),
            format!("sha512:{hex}"),
            format!("sha256:sha256:{hex}"),
            format!("{hex}\n{hex}\n"),
            hex[..63].to_string(),
            String::new(),
        ] {
            assert!(parse_ref_content(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(parse_ref_content(b"\xff").is_err());
    }
}
