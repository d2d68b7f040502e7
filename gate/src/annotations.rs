//! The annotation mode of precreate: which image (and under which name) a container asks for,
//! read from its runtime config's annotations, and the per-container key.
//!
//! | annotation | meaning | order |
//! |---|---|---|
//! | `io.cfsgate.image` | the image (`dir:PATH`, `oci:PATH[:TAG]`) | first |
//! | `io.kubernetes.cri-o.ImageRef` | the image CRI-O starts | second |
//! | `io.cfsgate.reference` | the docker reference it is judged as | first |
//! | `io.kubernetes.cri-o.ImageName` | the name CRI-O pulled it as | second |
//! | `org.opencontainers.image.ref.name` | a full reference (with a `/`) | third |
//! | `io.cfsgate.container-id` | the per-container key (else a fresh one) | — |
//!
//! A `dir:` image must be named by an absolute path.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{GateError, Result};

/// Annotation naming the image to evaluate.
pub const IMAGE_ANNOTATION: &str = "io.cfsgate.image";
/// Annotation naming the docker reference the image is judged as.
pub const REFERENCE_ANNOTATION: &str = "io.cfsgate.reference";
/// Annotation choosing the per-container key.
pub const CONTAINER_ID_ANNOTATION: &str = "io.cfsgate.container-id";
/// CRI-O's annotation of the image it starts.
pub const CRIO_IMAGE_REF: &str = "io.kubernetes.cri-o.ImageRef";
/// CRI-O's annotation of the name the image was pulled as.
pub const CRIO_IMAGE_NAME: &str = "io.kubernetes.cri-o.ImageName";
/// The OCI layout's tag annotation.
pub const OCI_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Longest accepted container key (CRI ids are 64 hex digits).
pub const MAX_KEY_LEN: usize = 128;

/// The image and reference a container asks for, in the documented lookup order.
pub fn image_from_annotations(
    annotations: &BTreeMap<String, String>,
) -> Result<(String, Option<String>)> {
    let get = |k: &str| annotations.get(k).filter(|v| !v.is_empty()).cloned();
    let image = get(IMAGE_ANNOTATION)
        .or_else(|| get(CRIO_IMAGE_REF))
        .ok_or_else(|| {
            GateError::Invalid(format!(
                "the container names no image: set the annotation {IMAGE_ANNOTATION} (or {CRIO_IMAGE_REF})"
            ))
        })?;
    // A relative `dir:` path would be resolved against whatever directory the engine runs the
    // hook in: the image judged would depend on the hook's cwd, not on the caller's words.
    if let Some(path) = image.strip_prefix("dir:") {
        if !path.starts_with('/') {
            return Err(GateError::Invalid(format!(
                "the image {image:?} is a relative dir: path: name it by an absolute path"
            )));
        }
    }
    let reference = get(REFERENCE_ANNOTATION)
        .or_else(|| get(CRIO_IMAGE_NAME))
        // A ref.name that is a full reference (has a '/'): a bare tag names no repository.
        .or_else(|| get(OCI_REF_NAME).filter(|r| r.contains('/')));
    Ok((image, reference))
}

/// The per-container key: the annotation when set (validated), else a fresh one.
pub fn container_key(annotations: &BTreeMap<String, String>) -> Result<String> {
    if let Some(id) = annotations.get(CONTAINER_ID_ANNOTATION) {
        validate_key(id)?;
        return Ok(id.clone());
    }
    Ok(fresh_key())
}

/// A key is 1-[`MAX_KEY_LEN`] characters of `[A-Za-z0-9._-]`, not starting with `.` (it names
/// a directory under the run dir).
pub fn validate_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !ok {
        return Err(GateError::Invalid(format!(
            "container id {key:?} is not 1-{MAX_KEY_LEN} characters of [A-Za-z0-9._-]"
        )));
    }
    Ok(())
}

/// Unique per call on this node: nanoseconds, pid and a per-process counter.
pub fn fresh_key() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "cfs-{nanos:x}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn lookup_order() {
        let a = map(&[
            (CRIO_IMAGE_REF, "oci:/crio"),
            (IMAGE_ANNOTATION, "dir:/img"),
            (OCI_REF_NAME, "latest"),
        ]);
        assert_eq!(
            image_from_annotations(&a).unwrap(),
            ("dir:/img".into(), None)
        );
        let a = map(&[
            (CRIO_IMAGE_REF, "oci:/crio"),
            (OCI_REF_NAME, "r.example/a:1"),
        ]);
        assert_eq!(
            image_from_annotations(&a).unwrap(),
            ("oci:/crio".into(), Some("r.example/a:1".into()))
        );
        let e = image_from_annotations(&map(&[(IMAGE_ANNOTATION, "dir:img")])).unwrap_err();
        assert!(e.to_string().contains("relative dir: path"), "{e}");
        let e = image_from_annotations(&map(&[(IMAGE_ANNOTATION, "")])).unwrap_err();
        assert!(e.to_string().contains("names no image"));
    }

    #[test]
    fn keys() {
        assert!(validate_key("abc-1_2.3").is_ok());
        for bad in ["", ".hidden", "a/b", "../x", &"k".repeat(MAX_KEY_LEN + 1)] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        assert_ne!(fresh_key(), fresh_key());
        assert!(validate_key(&fresh_key()).is_ok());
    }
}
