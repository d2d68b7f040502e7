//! What is wrong with one object an image references: the problems userspace verification
//! ([`crate::objects`]) finds and a [`crate::MountError::Objects`] carries, each naming the file.
//! A leaf module, so the error type and the verifier both use it without using each other.

use std::fmt;

use cfsgate_image::FsVeritySha256;

/// One file whose object is not as the image says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectProblem {
    /// The file's path in the image.
    pub file: String,
    /// The object path (redirect), when known.
    pub object: Option<String>,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// What is wrong with an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// Not found in any object directory.
    Missing,
    /// Present but with another fs-verity digest.
    DigestMismatch {
        /// The digest the image records.
        expected: FsVeritySha256,
        /// The digest the object has.
        actual: FsVeritySha256,
    },
    /// Not a regular file, unreadable, or outside the directory.
    Unreadable(String),
    /// The image records no digest (empty metacopy) or no redirect for this file.
    NoReference(&'static str),
    /// The metacopy xattr is not a format this mounter knows.
    BadMetacopy(usize),
}

impl fmt::Display for ObjectProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let object = self.object.as_deref().unwrap_or("?");
        match &self.kind {
            ProblemKind::Missing => write!(f, "{}: object {object} is missing from every object directory", self.file),
            ProblemKind::DigestMismatch { expected, actual } => write!(
                f,
                "{}: object {object} is corrupt (fs-verity digest {actual}, the image expects {expected})",
                self.file
            ),
            ProblemKind::Unreadable(why) => write!(f, "{}: object {object} cannot be read: {why}", self.file),
            ProblemKind::NoReference(what) => write!(f, "{}: the image records no {what} for this file", self.file),
            ProblemKind::BadMetacopy(len) => {
                write!(f, "{}: unrecognised {len}-byte trusted.overlay.metacopy value", self.file)
            }
        }
    }
}
