//! The one crate of cfsgate allowed to hold `unsafe` code (the composefs-ioctls model), and the
//! checked file reader every other crate uses.
//!
//! Every other crate of the workspace forbids `unsafe`. Each wrapper here is small, passes only
//! live Rust buffers with their exact lengths or `#[repr(C)]` copies of the kernel's UAPI
//! structures (their sizes are asserted in unit tests), keeps no pointer beyond the call and
//! returns a typed error.
//!
//! | module | kernel interface | safe? |
//! |---|---|---|
//! | [`file`](mod@file) | `statx`/`openat`/`fstat`: open a named file type-checked before any blocking open, read it under a named size limit | safe code |
//! | [`fsverity`] | `FS_IOC_ENABLE_VERITY`, `FS_IOC_MEASURE_VERITY` with typed errors (not supported, already enabled, opened for write) | `unsafe` ioctls |
//! | [`mount`] | `mount_setattr(MOUNT_ATTR_IDMAP)`; the 64-bit unique mount id (`statx` `STATX_MNT_ID_UNIQUE`) | `unsafe` syscall |
//! | [`loopdev`] | `LOOP_CTL_GET_FREE`, `LOOP_CONFIGURE` | `unsafe` ioctls |
//! | [`keyctl`] | `add_key(2)`, `keyctl(2)` including `KEYCTL_PKEY_QUERY`/`KEYCTL_PKEY_VERIFY` | `unsafe` syscalls |
//! | [`sha256x2`] | none: two SHA-256 messages at once with the x86 SHA extensions (fs-verity's Merkle leaves), runtime-detected | `unsafe` intrinsics (`#[target_feature]`) |
//! | [`verity`] | none: [`verity::VerityMode`], who checks object contents (kernel, userspace, none), shared by the policy, the store and the mounter | safe code |
//!
//! This crate depends on no other crate of the workspace, so every crate can use it.

pub mod file;
pub mod fsverity;
pub mod keyctl;
pub mod loopdev;
pub mod mount;
pub mod sha256x2;
pub mod verity;
