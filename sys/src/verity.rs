//! [`VerityMode`]: who checks object contents against their fs-verity digests. The one
//! definition the policy (a `composefs` requirement's `verity`), the object store (a
//! repository's mode in `meta.json`) and the mounter (a mount's mode) share; it lives here
//! because this is the one crate all three depend on.
//!
//! | mode | name | who checks object contents | when | used by |
//! |---|---|---|---|---|
//! | [`VerityMode::Kernel`] | `kernel` | the kernel: fs-verity on the files, overlay `verity=require` | on every open | policy, store, mounter |
//! | [`VerityMode::Userspace`] | `userspace` | cfsgate: each object is hashed (mount: all referenced ones, in parallel, before mounting) | once | policy, store, mounter |
//! | [`VerityMode::None`] | `none` | nobody (the image digest is still checked) | never | mounter only: the policy parser and the store refuse it |
//!
//! The name is the text form everywhere: [`fmt::Display`], [`FromStr`] and serde (a JSON
//! string).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Who checks object contents against the digests recorded in an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerityMode {
    /// The kernel enforces fs-verity on every read (overlay `verity=require`); needs
    /// fs-verity on the store's file system.
    Kernel,
    /// cfsgate checks digests in userspace (at import, fsck, and each object before a mount).
    Userspace,
    /// No object check (the image digest is still checked). A mount option only.
    None,
}

impl VerityMode {
    /// The name (`"kernel"`, `"userspace"`, `"none"`), as in policies, `meta.json`, mount
    /// options and decisions.
    pub fn as_str(self) -> &'static str {
        match self {
            VerityMode::Kernel => "kernel",
            VerityMode::Userspace => "userspace",
            VerityMode::None => "none",
        }
    }

    /// A sentence for users saying what this mode means for an object store.
    pub fn describe(self) -> &'static str {
        match self {
            VerityMode::Kernel => {
                "kernel fs-verity: the kernel checks every read of objects and images"
            }
            VerityMode::Userspace => {
                "userspace verification: this file system or kernel has no fs-verity, so digests are \
                 checked by cfsgate (on import and fsck), not on every read"
            }
            VerityMode::None => "no verification of object contents",
        }
    }
}

impl fmt::Display for VerityMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest part of a refused name quoted back in [`ParseVerityModeError`] (the text may be
/// hostile input).
const MAX_QUOTED_NAME: usize = 64;

/// A verity mode name that is not `kernel`, `userspace` or `none`.
#[derive(Debug, thiserror::Error)]
#[error("unknown verity mode {0:?} (expected kernel, userspace or none)")]
pub struct ParseVerityModeError(pub String);

impl FromStr for VerityMode {
    type Err = ParseVerityModeError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "kernel" => Ok(VerityMode::Kernel),
            "userspace" => Ok(VerityMode::Userspace),
            "none" => Ok(VerityMode::None),
            other => Err(ParseVerityModeError(
                other.chars().take(MAX_QUOTED_NAME).collect(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json() {
        for mode in [VerityMode::Kernel, VerityMode::Userspace, VerityMode::None] {
            assert_eq!(mode.as_str().parse::<VerityMode>().unwrap(), mode);
            assert_eq!(mode.to_string(), mode.as_str());
            let json = serde_json::to_string(&mode).unwrap();
            assert_eq!(json, format!("\"{}\"", mode.as_str()));
            assert_eq!(serde_json::from_str::<VerityMode>(&json).unwrap(), mode);
        }
        assert!("Kernel".parse::<VerityMode>().is_err());
        assert!(serde_json::from_str::<VerityMode>("\"maybe\"").is_err());
    }
}
