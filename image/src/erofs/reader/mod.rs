//! The hardened composefs image reader: bytes in, the user's [`Tree`] out.
//!
//! [`read_image`] validates the composefs header and EROFS superblock, walks the directory graph
//! breadth-first from the root, and undoes the composefs rewrites the writer applied, so that
//! `dump -> write_image -> read_image -> dump` is the identity. The image is treated as hostile:
//! every malformed structure is an error (never a panic, hang or deep recursion), and all work
//! and memory stay proportional to the image size (see [`Budget`]).
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
use crate::fsverity::Sha256Digest;
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
    #[error("image is {len} bytes, shorter than the {need} bytes of composefs header and EROFS superblock")]
    TooShort { len: u64, need: u64 },
    #[error("bad composefs header magic {found:#010x} at byte 0")]
    BadComposefsMagic { found: u32 },
    #[error("unsupported composefs header {field} {value:#x} at byte {offset}")]
    UnsupportedHeader {
        field: &'static str,
        offset: u64,
        value: u64,
    },
    #[error("bad EROFS superblock magic {found:#010x} at byte 1024")]
    BadErofsMagic { found: u32 },
    #[error("unsupported EROFS superblock {field} {value:#x} at byte {offset}")]
    UnsupportedSuperblock {
        field: &'static str,
        offset: u64,
        value: u64,
    },
    #[error("{what} at bytes {start}..{end} lies outside the {file_len}-byte image")]
    OutOfRange {
        what: String,
        start: u64,
        end: u64,
        file_len: u64,
    },
    #[error("malformed inode at byte {offset}: {reason}")]
    BadInode { offset: u64, reason: String },
    #[error("malformed xattr at byte {offset}: {reason}")]
    BadXattr { offset: u64, reason: String },
    #[error("malformed directory entry at byte {offset}: {reason}")]
    BadDirent { offset: u64, reason: String },
    #[error("{path} (nid {nid}): {source}")]
    InInode {
        path: String,
        nid: u64,
        #[source]
        source: Box<ReadError>,
    },
    #[error("directory {path} (nid {nid}) is reached again as {again}: a directory loop or a hard-linked directory")]
    DirectoryReachedTwice {
        path: String,
        nid: u64,
        again: String,
    },
    #[error("{what}: more than {limit} for a {file_len}-byte image (count {count})")]
    LimitExceeded {
        what: &'static str,
        count: u64,
        limit: u64,
        file_len: u64,
    },
    #[error("the superblock counts {superblock} inodes but {found} are reachable from the root")]
    InodeCountMismatch { superblock: u64, found: u64 },
    #[error("{first} and {second} overlap at byte {offset}")]
    Overlap {
        first: String,
        second: String,
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
    pub digest: Option<Sha256Digest>,
}

/// Every distinct (backing path, digest) of the tree's external files, sorted. External files
/// without a backing path (sparse placeholders) refer to no object and are not listed.
pub fn referenced_objects(tree: &Tree) -> Vec<ObjectRef> {
    let mut out: Vec<ObjectRef> = tree
        .inodes
        .iter()
        .filter_map(|inode| match &inode.content {
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
