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

mod bytes;
mod dir;
mod inode;
mod rewrite;
mod superblock;
mod walk;
mod xattr;

use crate::erofs::format::INODE_SLOT_SIZE;
use crate::fsverity::FsVeritySha256;
use crate::tree::{Content, FileData, Tree};

pub use superblock::MAX_COMPOSEFS_VERSION;

/// Decoded xattr bytes allowed beyond the image size: shared xattrs are legitimately copied
/// into every inode that references them, so the decoded total can exceed the image; this and
/// [`XATTR_AMPLIFICATION`] bound that copying for hostile images.
pub const XATTR_DECODE_SLACK: u64 = 64 << 20;
/// Decoded xattr bytes allowed per image byte (a 4-byte shared reference to a 100-byte value
/// amplifies 25×; typical images stay far below this).
pub const XATTR_AMPLIFICATION: u64 = 32;
/// Per-xattr bookkeeping counted against the budget, so that many empty xattrs also cost.
const XATTR_OVERHEAD: u64 = 32;

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

/// An image that cannot be read. Offsets are byte offsets into the image.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    /// The file cannot hold even the fixed headers.
    #[error("image is {len} bytes, shorter than the {need} bytes of composefs header and EROFS superblock")]
    TooShort {
        /// Length of the image file in bytes.
        len: u64,
        /// Bytes the composefs header plus the EROFS superblock need.
        need: u64,
    },
    /// The first four bytes are not the composefs header magic.
    #[error("bad composefs header magic {found:#010x} at byte 0")]
    BadComposefsMagic {
        /// The little-endian `u32` read at byte 0.
        found: u32,
    },
    /// A composefs header field holds a value this reader does not support.
    #[error("unsupported composefs header {field} {value:#x} at byte {offset}")]
    UnsupportedHeader {
        /// Name of the header field (`version`, `flags`, ...).
        field: &'static str,
        /// Byte offset of the field in the image.
        offset: u64,
        /// The value read there.
        value: u64,
    },
    /// The superblock at byte 1024 does not start with the EROFS magic.
    #[error("bad EROFS superblock magic {found:#010x} at byte 1024")]
    BadErofsMagic {
        /// The little-endian `u32` read at byte 1024.
        found: u32,
    },
    /// An EROFS superblock field holds a value this reader does not support.
    #[error("unsupported EROFS superblock {field} {value:#x} at byte {offset}")]
    UnsupportedSuperblock {
        /// Name of the superblock field (`blkszbits`, `feature_incompat`, ...).
        field: &'static str,
        /// Byte offset of the field in the image.
        offset: u64,
        /// The value read there.
        value: u64,
    },
    /// A structure's byte range reaches past the end of the file.
    #[error("{what} at bytes {start}..{end} lies outside the {file_len}-byte image")]
    OutOfRange {
        /// What was being read (an inode, a directory block, inline data, ...).
        what: String,
        /// First byte of the range.
        start: u64,
        /// One past the last byte of the range.
        end: u64,
        /// Length of the image file in bytes.
        file_len: u64,
    },
    /// An inode cannot be decoded (bad format bits, mode, size or layout).
    #[error("malformed inode at byte {offset}: {reason}")]
    BadInode {
        /// Byte offset of the inode in the image.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// An extended attribute entry (inline or shared) cannot be decoded.
    #[error("malformed xattr at byte {offset}: {reason}")]
    BadXattr {
        /// Byte offset of the xattr entry in the image.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A directory entry cannot be decoded (bad name offset, order, nid or file type).
    #[error("malformed directory entry at byte {offset}: {reason}")]
    BadDirent {
        /// Byte offset of the directory entry in the image.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// Another error, located in the tree by the path of the inode it happened in.
    #[error("{path} (nid {nid}): {source}")]
    InInode {
        /// Path of the inode from the image root.
        path: String,
        /// EROFS node id of the inode (its offset from the metadata start in 32-byte slots).
        nid: u64,
        /// The error met while reading that inode.
        #[source]
        source: Box<ReadError>,
    },
    /// A directory inode is reached by two paths, which would make the walk loop or duplicate.
    #[error("directory {path} (nid {nid}) is reached again as {again}: a directory loop or a hard-linked directory")]
    DirectoryReachedTwice {
        /// The path the directory was first reached by.
        path: String,
        /// EROFS node id of the directory.
        nid: u64,
        /// The second path reaching it.
        again: String,
    },
    /// One of the per-image work limits (see `Budget`) is exceeded.
    #[error("{what}: more than {limit} for a {file_len}-byte image (count {count})")]
    LimitExceeded {
        /// What is counted (inodes, directory entries, xattr bytes, ...).
        what: &'static str,
        /// The count reached when the limit tripped.
        count: u64,
        /// The limit for this image, derived from its size.
        limit: u64,
        /// Length of the image file in bytes.
        file_len: u64,
    },
    /// The superblock's inode count differs from the inodes reachable from the root.
    #[error("the superblock counts {superblock} inodes but {found} are reachable from the root")]
    InodeCountMismatch {
        /// The `inos` field of the superblock.
        superblock: u64,
        /// Distinct inodes found by walking the tree.
        found: u64,
    },
    /// Two structures claim the same bytes of the image.
    #[error("{first} and {second} overlap at byte {offset}")]
    Overlap {
        /// The structure read first.
        first: String,
        /// The structure that overlaps it.
        second: String,
        /// First byte both claim.
        offset: u64,
    },
}

/// Work and memory allowed for one image, proportional to its size. In a well-formed image
/// inodes, directory blocks and file data are disjoint parts of the file, so each total is at
/// most the file size; only shared xattrs are legitimately copied more than once.
struct Budget {
    file_len: u64,
    inodes_left: u64,
    data_left: u64,
    xattr_left: u64,
}

impl Budget {
    fn new(file_len: u64, inos: u64) -> Self {
        Budget {
            file_len,
            inodes_left: (file_len / INODE_SLOT_SIZE).min(inos),
            data_left: file_len,
            xattr_left: XATTR_DECODE_SLACK
                .saturating_add(file_len.saturating_mul(XATTR_AMPLIFICATION)),
        }
    }

    fn exceeded(&self, what: &'static str, limit: u64) -> ReadError {
        ReadError::LimitExceeded {
            what,
            count: limit.saturating_add(1),
            limit,
            file_len: self.file_len,
        }
    }

    /// One more inode (limited by the superblock's count and by 32-byte slots in the file).
    fn spend_inode(&mut self) -> Result<(), ReadError> {
        self.inodes_left = self.inodes_left.checked_sub(1).ok_or_else(|| {
            self.exceeded(
                "reachable inodes (superblock count or 32-byte slots in the file)",
                self.file_len / INODE_SLOT_SIZE,
            )
        })?;
        Ok(())
    }

    /// Directory or file data bytes about to be decoded.
    fn spend_data(&mut self, bytes: u64) -> Result<(), ReadError> {
        self.data_left = self
            .data_left
            .checked_sub(bytes)
            .ok_or_else(|| self.exceeded("decoded directory and file data bytes", self.file_len))?;
        Ok(())
    }

    fn spend_xattr(&mut self, x: &xattr::RawXattr) -> Result<(), ReadError> {
        let cost = (x.key.len() + x.value.len()) as u64 + XATTR_OVERHEAD;
        let limit =
            XATTR_DECODE_SLACK.saturating_add(self.file_len.saturating_mul(XATTR_AMPLIFICATION));
        self.xattr_left = self
            .xattr_left
            .checked_sub(cost)
            .ok_or_else(|| self.exceeded("decoded xattr bytes", limit))?;
        Ok(())
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
