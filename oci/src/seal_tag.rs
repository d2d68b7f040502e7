//! The tag a sealed image gets in an OCI layout destination (`cfsgate seal SRC DEST [--tag T]`).
//!
//! | DEST | `--tag` | tag written |
//! |---|---|---|
//! | `oci:PATH:TAG` | none or the same TAG | TAG |
//! | `oci:PATH:TAG` | another | refused: two tags named |
//! | `oci:PATH` or `PATH` | T | T |
//! | `oci:PATH` or `PATH` | none | the source's tag + `-sealed` ([`reference_tag`]), else `sealed` |
//! | `dir:PATH` | ignored | none: a `dir:` image has no tags |

use crate::cstorage::{is_storage_reference, ImageSpec, NameSelector, StorageRef};
use crate::layout::{ImageRef, Selector};
use crate::seal::SealDest;
use crate::seal_check::SealError;
use crate::OciError;

/// The tag a local reference names (`oci:PATH:TAG`, `containers-storage:NAME:TAG`), if any.
pub fn reference_tag(reference: &str) -> Result<Option<String>, OciError> {
    if is_storage_reference(reference) {
        return Ok(match StorageRef::parse(reference)?.image {
            ImageSpec::Named {
                selector: NameSelector::Tag(tag),
                ..
            } => Some(tag),
            _ => None,
        });
    }
    Ok(match ImageRef::parse(reference)?.selector {
        Selector::Tag(tag) => Some(tag),
        _ => None,
    })
}

/// Give a layout `dest` without a tag its tag (see the module table): `explicit` is `--tag`,
/// `source_tag` the source image's tag. Returns the destination as written: `oci:PATH:TAG` or
/// `dir:PATH`.
pub fn settle_dest_tag(
    dest: &mut SealDest,
    explicit: Option<&str>,
    source_tag: Option<&str>,
) -> Result<String, SealError> {
    let default_tag = match (explicit, source_tag) {
        (Some(tag), _) => tag.to_string(),
        (None, Some(tag)) => format!("{tag}-sealed"),
        (None, None) => "sealed".to_string(),
    };
    match dest {
        SealDest::Layout {
            tag: Some(tag),
            path,
        } if explicit.is_some_and(|t| t != tag) => Err(SealError::Dest {
            path: format!("oci:{}:{tag}", path.display()).into(),
            reason: format!("names tag {tag:?} and --tag names another"),
        }),
        SealDest::Layout { tag, path } => {
            let tag = tag.get_or_insert(default_tag);
            Ok(format!("oci:{}:{tag}", path.display()))
        }
        SealDest::Dir(path) => Ok(format!("dir:{}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settle(dest: &str, explicit: Option<&str>, source: Option<&str>) -> Result<String, String> {
        let mut dest = SealDest::parse(dest).map_err(|e| e.to_string())?;
        settle_dest_tag(&mut dest, explicit, source).map_err(|e| e.to_string())
    }

    #[test]
    fn a_layout_without_a_tag_gets_the_explicit_the_derived_or_the_default_tag() {
        assert_eq!(settle("oci:/l:t", None, Some("v1")), Ok("oci:/l:t".into()));
        assert_eq!(settle("oci:/l:t", Some("t"), None), Ok("oci:/l:t".into()));
        assert_eq!(
            settle("oci:/l", Some("x"), Some("v1")),
            Ok("oci:/l:x".into())
        );
        assert_eq!(
            settle("/l", None, Some("v1")),
            Ok("oci:/l:v1-sealed".into())
        );
        assert_eq!(settle("oci:/l", None, None), Ok("oci:/l:sealed".into()));
        assert_eq!(settle("dir:/d", Some("x"), None), Ok("dir:/d".into()));
        let refused = settle("oci:/l:t", Some("other"), None).expect_err("two tags");
        assert_eq!(
            refused,
            "destination oci:/l:t: names tag \"t\" and --tag names another"
        );
    }

    #[test]
    fn the_source_tag_is_read_from_layout_and_storage_references() {
        let tag = |r: &str| reference_tag(r).expect(r);
        assert_eq!(tag("oci:/layout:v2"), Some("v2".into()));
        assert_eq!(tag("dir:/image"), None);
        let digest = format!("oci:/layout@sha256:{}", "a".repeat(64));
        assert_eq!(tag(&digest), None);
        assert_eq!(
            tag("containers-storage:example.com/app:v3"),
            Some("v3".into())
        );
    }
}
