//! `cfsgate-policy`: the containers-policy.json(5) trust policy, read strictly, plus the
//! cfsgate extensions (composefs seal, k-of-n thresholds, key validity windows, kernel
//! keyring keys, per-scope warn mode). See `docs/policy.md` for the file format.
//!
//! This crate is pure: it reads the policy file (and, for [`lint`](mod@lint), key files to check
//! they hold PEM text) and never verifies a signature. The verifier asks it:
//!
//! - [`Policy::requirements_for`]: which scope applies to an image ([`MatchedScope`],
//!   with the lookup path tried and the scope's [`Mode`]);
//! - [`SignedIdentity::matches`]: whether a signature's claimed identity is acceptable;
//! - the [`Requirement`] enum: everything a requirement demands.
//!
//! | module | purpose |
//! |---|---|
//! | [`json`] | located, duplicate-refusing JSON reader |
//! | [`parse`] | JSON tree → [`Policy`] with upstream validation rules |
//! | [`model`] | the policy model |
//! | [`reference`](mod@reference) | docker reference normalisation |
//! | [`identity`] | `signedIdentity` matching |
//! | [`transport`] | per-transport scope rules, [`ImageRef`] |
//! | [`resolve`] | scope lookup |
//! | [`lint`](mod@lint) | `policy check` findings |
//! | [`check`] | `policy check`: a file validated and linted, as text |
//! | [`serialize`] | policy → JSON |
//! | [`time`] | RFC 3339 timestamps |
//! | [`synthetic`] | generated large policies for benchmarks |

pub mod check;
pub mod error;
pub mod identity;
pub mod json;
pub mod lint;
pub mod model;
pub mod parse;
pub mod reference;
pub mod resolve;
pub mod serialize;
pub mod synthetic;
pub mod time;
pub mod transport;

use std::io::Read as _;
use std::path::Path;

pub use error::{LoadError, Location, PolicyError, PolicyErrorKind};
pub use identity::SignedIdentity;
pub use lint::{lint, LintFinding, Severity};
pub use model::*;
pub use parse::parse_policy;
pub use reference::{DockerReference, ReferenceDigest, ReferenceError};
pub use resolve::{LookupStep, MatchedScope, StepRole};
pub use serialize::to_json;
pub use time::Timestamp;
pub use transport::{ImageRef, ImageRefError};

/// The policy cfsgate reads when none is named.
pub const DEFAULT_POLICY_PATH: &str = "/etc/cfsgate/policy.json";

/// Reads and parses a policy file (at most [`parse::MAX_POLICY_BYTES`]).
pub fn load_policy_file(path: &Path) -> Result<Policy, LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    // Sized from the file's length up front: growing by doubling would touch (and page
    // fault) about twice the file's size on every verification.
    let size_hint = file
        .metadata()
        .map_or(0, |m| m.len())
        .min(parse::MAX_POLICY_BYTES as u64 + 1);
    let mut bytes = Vec::with_capacity(usize::try_from(size_hint).unwrap_or(0) + 1);
    // One byte over the limit is enough to know the file is too large.
    file.take(parse::MAX_POLICY_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    parse_policy(&bytes).map_err(|error| LoadError::Invalid {
        path: path.to_path_buf(),
        error,
    })
}
