//! The composefs format, in pure Rust.
//!
//! | module | what it owns |
//! |---|---|
//! | [`fsverity`] | fs-verity digests computed in userspace (SHA-256/SHA-512, 4 KiB blocks, streaming) |
//! | [`sha256`] | [`ContentSha256`], the plain sha256 of content (manifests, configs, blobs), a type distinct from the fs-verity [`FsVeritySha256`] |
//! | [`tree`] | the in-memory filesystem tree every other module reads or writes |
//! | [`dump`] | the text format of composefs-dump(5): strict and lenient parser, writer |
//! | [`erofs`] | the EROFS image: on-disk layout, writer (byte-identical to mkcomposefs), hardened reader |
//! | [`info`] | what `composefs-info` prints: `ls` lines, the objects images refer to |
//! | [`mkcomposefs`] | around a build: upstream's format-version defaults, a dump source, the image file written atomically |
//! | [`fromdir`] | building a tree from a directory on disk, hashing files in parallel (objects into a [`store::ObjectDir`] with `--digest-store`) |
//! | [`store`] | the object store: [`store::ObjectDir`] (the one object-writing API: staged copies, one syncfs, atomic renames), the repository, gc and fsck |
//!
//! Nothing here mounts or trusts anything: this crate turns trees into bytes and bytes into trees.

pub mod dump;
pub mod erofs;
pub mod fromdir;
pub mod fsverity;
pub mod info;
pub mod mkcomposefs;
pub mod sha256;
pub mod store;
pub mod tree;

pub use fsverity::{FsVeritySha256, FsVeritySha512};
pub use sha256::ContentSha256;
pub use tree::{Content, DirEntry, FileData, Inode, InodeId, Stat, Tree};
