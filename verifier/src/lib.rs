//! `cfsgate-verifier`: from an image and trusted keys to a verdict with reasons, and the
//! signing that produces what it verifies.
//!
//! This first slice handles cosign "simple signing" signatures stored in skopeo `dir:`
//! images (`manifest.json` + `signature-N`), with containers/image's `sigstoreSigned`
//! semantics.
//!
//! | module | purpose |
//! |---|---|
//! | [`sigstore`] | the `\x00sigstore-json\n` signature wrapper: parse, write |
//! | [`payload`] | the cosign simple-signing payload: strict parse, write |
//! | [`dir`] | reading `manifest.json` and `signature-N` of a `dir:` image |
//! | [`verify`] | the checks, in fail-closed order, and the [`Verdict`] |
//! | [`sign`] | writing the next `signature-N` |

#![forbid(unsafe_code)]

pub mod audit;
pub mod dir;
pub mod payload;
pub mod sign;
pub mod sigstore;
pub mod verify;

pub use dir::{DirError, DirImage};
pub use payload::{PayloadError, SimpleSigningPayload};
pub use sign::{sign_dir_image, SignError, SignedFile};
pub use sigstore::{SigstoreParseError, SigstoreSignature};
pub use verify::{
    judge_signature, sha256_of, verify_dir_image, IdentityRequirement, KeyFailure, RejectReason,
    SignatureOutcome, SignatureReport, Verdict,
};
