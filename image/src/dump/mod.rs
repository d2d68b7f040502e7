//! composefs-dump(5): the text form of a tree, as `mkcomposefs --from-file` reads it and
//! `composefs-info dump` prints it.
//!
//! One inode (or hard link) per line, fields separated by single spaces, each escaped as
//! `escape` describes; the line ends with `\n`:
//!
//! | # | field | form | meaning |
//! |---|---|---|---|
//! | 1 | PATH | escaped bytes | absolute, `/` first; parents before children |
//! | 2 | SIZE | decimal u64 | file size; ignored for directories; symlinks: target length |
//! | 3 | MODE | `[@]`octal | full `st_mode` with a file type; `@` marks a hard link |
//! | 4 | NLINK | decimal u32 | kept as written |
//! | 5 | UID | decimal u32 | |
//! | 6 | GID | decimal u32 | |
//! | 7 | RDEV | decimal u64 | raw `dev_t` of char/block devices, else 0 |
//! | 8 | MTIME | `SEC.NSEC` | SEC may be negative; NSEC < 10^9 |
//! | 9 | PAYLOAD | optional | symlink target; backing path of a regular file; hard-link target path |
//! | 10 | CONTENT | optional | inline file content, length = SIZE, at most 5000 bytes |
//! | 11 | DIGEST | optional | 64 hex digits: fs-verity SHA-256 of an external file |
//! | 12… | KEY=VALUE | escaped | xattrs, split at the first `=` |
//!
//! Optional fields are `-` when absent. A hard-link line (`@` mode) only uses PATH and PAYLOAD
//! (the target path, resolved after the whole file is read); `composefs-info` repeats the
//! target's other fields there and the reader ignores them, as mkcomposefs does.
//!
//! [`ParseMode::Strict`] adds mkcomposefs's `CFS_PARSE_STRICT` checks: RDEV 0 on non-devices,
//! symlink SIZE equal to the target length, no CONTENT on symlinks, and a final newline. Both
//! modes reject what upstream rejects when reading or writing the tree (see [`limits`]), and
//! unlike upstream also reject malformed DIGEST, GID and RDEV fields, relative paths and empty
//! path components.
//!
//! The dump describes the *user* tree ([`crate::tree`]): xattrs unescaped, whiteouts as char
//! devices 0/0, no `trusted.overlay.*` metadata added.

mod error;
pub(crate) mod escape;
mod parse;
mod write;

use std::io::{BufRead, Write};

use crate::tree::Tree;
pub use error::{DumpError, ParseMode};

/// Limits a dump must respect; mkcomposefs enforces each when reading the dump or writing it.
pub mod limits {
    /// Longest inline CONTENT (`LCFS_INLINE_CONTENT_MAX`): larger files must be external
    /// (the writer's limit, one definition).
    pub use crate::erofs::writer::MAX_INLINE_CONTENT;
    /// Longest PAYLOAD: it must fit in a `PATH_MAX` (4096) buffer with its NUL.
    pub const MAX_PAYLOAD_LEN: usize = 4095;
    /// Largest external file: 1024 chunk indexes of at most 2^43 bytes each fit in the inode's
    /// one-block chunk table (mkcomposefs fails with EFBIG above).
    pub const MAX_EXTERNAL_FILE_SIZE: u64 = 1 << 53;
    /// Xattr bytes one inode may take from a dump (`LCFS_INODE_EXTERNAL_XATTR_MAX`): half of
    /// the 16-bit EROFS xattr area, leaving room for the overlay xattrs composefs adds.
    pub const MAX_INODE_XATTR_BUDGET: usize = u16::MAX as usize / 2;
    /// Budget charge for the xattr body header (`LCFS_XATTR_HEADER_SIZE`), once per inode.
    pub const XATTR_HEADER_CHARGE: usize = 12;
    /// Budget charge per xattr beyond key and value: twice the 4-byte entry header minus one,
    /// the worst case with alignment (as mkcomposefs counts).
    pub const XATTR_ENTRY_CHARGE: usize = 7;
    /// Number of fixed fields before the xattrs.
    pub const FIXED_FIELDS: usize = 11;
}

/// Parse a dump file into a tree.
///
/// Children are sorted bytewise; a hard link becomes a second [`crate::DirEntry`] with
/// `hardlink: true` pointing at its target's inode, whose NLINK stays as written.
pub fn parse(input: impl BufRead, mode: ParseMode) -> Result<Tree, DumpError> {
    parse::parse(input, mode)
}

/// Write a tree as a dump file, as `composefs-info dump` prints it: depth-first, children in
/// sorted order, each hard link as an `@` line repeating its target's fields with the target's
/// path as PAYLOAD.
pub fn write(tree: &Tree, out: impl Write) -> std::io::Result<()> {
    write::write(tree, out)
}
