//! Mounting a composefs image by trusted digest: the last link of the trust chain.
//!
//! Handed a digest the verifier trusts, [`mount_image`] mounts exactly the image with that
//! fs-verity digest, or nothing. See [`mount`] for the sequence of steps.
//!
//! | module | what it owns |
//! |---|---|
//! | [`mount`] | [`mount_image`], [`unmount`], options and the report of what was done |
//! | [`verity`] | verity modes, fs-verity support probing, `enable_verity` / `measure_verity` |
//! | [`pinned`] | opening the image once, pinning its bytes, digest and header checks |
//! | [`erofs`] | the detached read-only EROFS mount (file-backed or loop device) |
//! | [`objects`] | userspace verification of every referenced object |
//! | [`problem`] | what is wrong with one referenced object (carried by [`MountError::Objects`]) |
//! | [`overlay`] | the overlayfs mount on top (new mount API, mount(2) fallback) |
//! | [`report`] | a mount's report as one line for people |
//! | [`request`] | a mount asked for by paths: [`MountRequest`] opens the idmap's user namespace and mounts |
//! | [`helper`] | `mount.composefs`-compatible option parsing (the repository layout is `cfsgate_image::store::RepoPaths`) |
//!
//! The syscalls rustix lacks (mount_setattr, fs-verity and loop ioctls) are `cfsgate-sys`'s.

pub mod erofs;
pub mod error;
mod fsctx;
pub mod helper;
pub mod mount;
pub mod objects;
pub mod overlay;
pub mod pinned;
pub mod probe;
pub mod problem;
pub mod report;
pub mod request;
pub mod verity;

pub use error::MountError;
pub use mount::{mount_image, resolve_verity_mode, unmount, MountOptions, MountReport, UpperLayer};
pub use request::MountRequest;
pub use verity::{
    enable_verity, kernel_supports_verity, measure_verity, VerityMode, VeritySupport,
};
