//! The hardened composefs image reader: bytes in, the user's [`Tree`] out.
//!
//! [`read_image`] validates the composefs header and EROFS superblock, walks the directory graph
//! breadth-first from the root, and undoes the composefs rewrites the writer applied, so that
//! `dump -> write_image -> read_image -> dump` is the identity. The image is treated as hostile:
//! every malformed structure is an error (never a panic, hang or deep recursion), and all work
//! and memory stay proportional to the image size (see `Budget`).
//!
//! | module | what it reads |
//! |---|---|
//! | `superblock` | composefs header (byte 0) and EROFS superblock (byte 1024) |
//! | `inode` | compact / extended inode records and where their data lives |
//! | `xattr` | inode xattr bodies and shared xattr entries |
//! | `dir` | directory chunks: dirents and names |
//! | `walk` | breadth-first traversal, loop and overlap checks, hard-link primaries |
//! | `rewrite` | undoing escapes, metacopy/redirect, whiteouts |

mod budget;
mod bytes;
mod dir;
mod error;
mod inode;
mod rewrite;
mod superblock;
mod walk;
mod xattr;

use crate::fsverity::FsVeritySha256;
use crate::tree::{Content, FileData, Tree};

use budget::Budget;
pub use budget::{XATTR_AMPLIFICATION, XATTR_DECODE_SLACK};
pub use error::ReadError;
pub use superblock::MAX_COMPOSEFS_VERSION;

/// A composefs image read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The user tree (composefs rewrites undone).
    pub tree: Tree,
    /// The composefs format version from the header (0 or 1).
    pub composefs_version: u32,
    /// Header flag: some inode has a POSIX ACL (mount without `noacl`).
    pub has_acl: bool,
    /// Inode count stored in the superblock (including the writer's root whiteout stubs).
    pub inode_count: u64,
    /// Superblock build time: the minimum mtime, (seconds, nanoseconds).
    pub build_time: (i64, u32),
}

impl Image {
    /// The objects this image refers to (see [`referenced_objects`]).
    pub fn objects(&self) -> Vec<ObjectRef> {
        referenced_objects(&self.tree)
    }
}

/// Read a composefs image. Refuses anything malformed or not written the way composefs writes.
pub fn read_image(bytes: &[u8]) -> Result<Image, ReadError> {
    let img = bytes::ImageBytes::new(bytes);
    let sb = superblock::parse(img)?;
    let mut budget = Budget::new(img.len(), sb.inos);
    let walked = walk::walk(img, &sb, &mut budget)?;
    let tree = rewrite::build_tree(img, &walked, sb.composefs_version, &mut budget)?;
    Ok(Image {
        tree,
        composefs_version: sb.composefs_version,
        has_acl: sb.has_acl,
        inode_count: sb.inos,
        build_time: (sb.build_time, sb.build_time_nsec),
    })
}

/// An object an image refers to: a backing path in an object directory and, when the image
/// records it, the fs-verity digest the content must have.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// Relative to an object directory (usually `xx/` + 62 hex digits).
    pub backing: Box<[u8]>,
    /// The fs-verity digest of the content, from the `trusted.overlay.metacopy` xattr; `None`
    /// when the image records no digest for this file.
    pub digest: Option<FsVeritySha256>,
}

/// Every distinct (backing path, digest) of the tree's external files, sorted. External files
/// without a backing path (sparse placeholders) refer to no object and are not listed. Only
/// inodes reachable from the root count (all of a read image's; of a tree about to be written,
/// exactly those the image will hold).
pub fn referenced_objects(tree: &Tree) -> Vec<ObjectRef> {
    let mut out: Vec<ObjectRef> = tree
        .bfs_ids()
        .into_iter()
        .filter_map(|id| match &tree.inode(id).content {
            Content::Regular(FileData::External {
                digest,
                backing: Some(backing),
                ..
            }) => Some(ObjectRef {
                backing: backing.clone(),
                digest: *digest,
            }),
            _ => None,
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}
