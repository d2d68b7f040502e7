//! [`ReadError`]: why an image cannot be read. A leaf below every reader stage.

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
