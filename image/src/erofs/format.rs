//! On-disk layout of a composefs image: a composefs header, an EROFS superblock, inodes,
//! shared xattrs and data blocks. Little-endian everywhere; 4096-byte blocks.
//!
//! | offset | size | what |
//! |---|---|---|
//! | 0 | 32 | composefs header: magic, version 1, flags, composefs_version, 4 unused u32 |
//! | 32 | 992 | zeros |
//! | 1024 | 128 | EROFS superblock |
//! | 1152 | … | inodes (nid = offset / 32, root first = nid 36), each followed by its xattr body and inline tail |
//! | inodes_end | … | shared xattrs (`xattr_blkaddr = inodes_end / 4096`) |
//! | next 4096 boundary | … | data blocks: directory blocks and inline-file blocks, in inode order |
//!
//! Superblock (at 1024):
//!
//! | offset | size | field | composefs value |
//! |---|---|---|---|
//! | 0 | 4 | magic | 0xE0F5E1E2 |
//! | 4 | 4 | checksum | 0 |
//! | 8 | 4 | feature_compat | MTIME \| XATTR_FILTER = 0x6 |
//! | 12 | 1 | blkszbits | 12 |
//! | 13 | 1 | sb_extslots | 0 |
//! | 14 | 2 | root_nid | 36 |
//! | 16 | 8 | inos | inode count |
//! | 24 | 8 | build_time | minimum mtime seconds |
//! | 32 | 4 | build_time_nsec | nanoseconds of that minimum |
//! | 36 | 4 | blocks | file length / 4096 |
//! | 40 | 4 | meta_blkaddr | 0 |
//! | 44 | 4 | xattr_blkaddr | inodes_end / 4096 |
//! | 48 | 16 | uuid | zeros |
//! | 64 | 16 | volume_name | zeros |
//! | 80 | 4 | feature_incompat | 0 (mkcomposefs never sets CHUNKED_FILE, even for chunk-based files) |
//! | 84 | 44 | union + extra_devices + … + reserved | zeros |
//!
//! Compact inode (32 bytes): format u16, xattr_icount u16, mode u16, nlink u16, size u32,
//! reserved u32, union u32, ino u32, uid u16, gid u16, reserved u32.
//!
//! Extended inode (64 bytes): format u16, xattr_icount u16, mode u16, reserved u16, size u64,
//! union u32, ino u32, uid u32, gid u32, mtime u64, mtime_nsec u32, nlink u32, reserved 16 bytes.
//!
//! `format` = (extended ? 1 : 0) | layout << 1. The union is `raw_blkaddr` for data blocks,
//! `rdev` for devices, and the chunk format (`chunkbits - 12`) for chunk-based files, whose chunk
//! index (one le32 per chunk, 0xFFFFFFFF = hole) follows the xattrs like an inline tail.
//!
//! Xattr body after the inode: header {name_filter le32, shared_count u8, 7 reserved}, then
//! `shared_count` le32 shared ids, then entries {name_len u8, name_index u8, value_size le16,
//! name, value} each padded to 4 bytes. `xattr_icount = (body_size - 12) / 4 + 1` (0 if none).
//!
//! Directory blocks: an array of 12-byte dirents {nid le64, nameoff le16, file_type u8,
//! reserved u8}, then the names without NUL; `nameoff` is relative to the block start.

/// Size of an EROFS block (the only block size composefs uses).
pub const BLOCK_SIZE: u64 = 4096;
/// log2 of [`BLOCK_SIZE`].
pub const BLOCK_BITS: u32 = 12;
/// Inode slots are 32 bytes: nid = byte offset / 32.
pub const INODE_SLOT_SIZE: u64 = 32;

/// composefs header magic.
pub const COMPOSEFS_MAGIC: u32 = 0xd078_629a;
/// The composefs header `version` field.
pub const COMPOSEFS_HEADER_VERSION: u32 = 1;
/// Header flag: some inode has an ACL xattr (mount without `noacl`).
pub const COMPOSEFS_FLAGS_HAS_ACL: u32 = 1;
/// Size of the composefs header.
pub const COMPOSEFS_HEADER_SIZE: usize = 32;

/// EROFS superblock magic.
pub const EROFS_MAGIC: u32 = 0xE0F5_E1E2;
/// Byte offset of the EROFS superblock.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// Size of the EROFS superblock.
pub const SUPERBLOCK_SIZE: u64 = 128;
/// Where the first inode (the root) starts.
pub const INODES_START: u64 = SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE;
/// The root's nid: `INODES_START / 32`.
pub const ROOT_NID: u64 = INODES_START / INODE_SLOT_SIZE;

/// `feature_compat` bit: the superblock carries a crc32c checksum (`checksum` field).
pub const FEATURE_COMPAT_SB_CHKSUM: u32 = 0x1;
/// `feature_compat` bit: compact inodes store an mtime relative to the superblock's `build_time`.
pub const FEATURE_COMPAT_MTIME: u32 = 0x2;
/// `feature_compat` bit: inodes carry the 32-bit xattr name bloom filter (see
/// [`XATTR_FILTER_SEED`]).
pub const FEATURE_COMPAT_XATTR_FILTER: u32 = 0x4;
/// `feature_incompat` bit: some files use the chunk-based layout ([`LAYOUT_CHUNK_BASED`]);
/// composefs uses it for external files.
pub const FEATURE_INCOMPAT_CHUNKED_FILE: u32 = 0x4;

/// Size in bytes of an EROFS compact inode (`erofs_inode_compact`, format bit 0 clear).
pub const COMPACT_INODE_SIZE: u64 = 32;
/// Size in bytes of an EROFS extended inode (`erofs_inode_extended`, format bit 0 set).
pub const EXTENDED_INODE_SIZE: u64 = 64;

/// Data layouts (`format >> 1`).
pub const LAYOUT_FLAT_PLAIN: u16 = 0;
/// Data blocks followed by a tail packed right after the inode (`EROFS_INODE_FLAT_INLINE`).
pub const LAYOUT_FLAT_INLINE: u16 = 2;
/// Data described by a chunk index (`EROFS_INODE_CHUNK_BASED`); composefs writes only holes, the
/// content lives in the object store.
pub const LAYOUT_CHUNK_BASED: u16 = 4;

/// Chunk format: low 5 bits = chunkbits - 12; `EROFS_CHUNK_FORMAT_INDEXES` 0x20 is never set.
pub const CHUNK_FORMAT_BLKBITS_MASK: u16 = 0x1f;
/// A chunk index entry meaning "hole" (no block).
pub const CHUNK_HOLE: u32 = 0xFFFF_FFFF;

/// Size of the dirent record.
pub const DIRENT_SIZE: u64 = 12;

/// EROFS directory entry file types.
pub const FT_UNKNOWN: u8 = 0;
/// Directory entry type of a regular file.
pub const FT_REG_FILE: u8 = 1;
/// Directory entry type of a directory.
pub const FT_DIR: u8 = 2;
/// Directory entry type of a character device.
pub const FT_CHRDEV: u8 = 3;
/// Directory entry type of a block device.
pub const FT_BLKDEV: u8 = 4;
/// Directory entry type of a named pipe.
pub const FT_FIFO: u8 = 5;
/// Directory entry type of a unix socket.
pub const FT_SOCK: u8 = 6;
/// Directory entry type of a symbolic link.
pub const FT_SYMLINK: u8 = 7;

/// Xattr name prefix indexes.
pub const XATTR_INDEX_USER: u8 = 1;
/// Prefix index of the name `system.posix_acl_access` (stored with an empty suffix).
pub const XATTR_INDEX_POSIX_ACL_ACCESS: u8 = 2;
/// Prefix index of the name `system.posix_acl_default` (stored with an empty suffix).
pub const XATTR_INDEX_POSIX_ACL_DEFAULT: u8 = 3;
/// Prefix index of `trusted.` names.
pub const XATTR_INDEX_TRUSTED: u8 = 4;
/// Prefix index of `security.` names.
pub const XATTR_INDEX_SECURITY: u8 = 6;
/// The prefix table, in the order mkcomposefs tries them.
pub const XATTR_PREFIXES: [(&[u8], u8); 5] = [
    (b"user.", XATTR_INDEX_USER),
    (b"system.posix_acl_access", XATTR_INDEX_POSIX_ACL_ACCESS),
    (b"system.posix_acl_default", XATTR_INDEX_POSIX_ACL_DEFAULT),
    (b"trusted.", XATTR_INDEX_TRUSTED),
    (b"security.", XATTR_INDEX_SECURITY),
];
/// Size of the inode xattr body header.
pub const XATTR_IBODY_HEADER_SIZE: u64 = 12;
/// Size of an xattr entry header.
pub const XATTR_ENTRY_HEADER_SIZE: u64 = 4;
/// At most this many shared xattr references per inode (EROFS_XATTR_LONG_PREFIX = 0x80).
pub const MAX_SHARED_XATTRS_PER_INODE: usize = 128;
/// Seed of the xattr bloom filter hash (xxh32 of the name suffix, seed + prefix index).
pub const XATTR_FILTER_SEED: u32 = 0x25BB_E08F;
/// Bloom filter default: all bits set (a set bit means "definitely absent").
pub const XATTR_FILTER_DEFAULT: u32 = 0xFFFF_FFFF;

/// Split an xattr key into (prefix index, suffix) as EROFS stores it.
pub fn xattr_prefix(key: &[u8]) -> (u8, &[u8]) {
    for (prefix, index) in XATTR_PREFIXES {
        if let Some(rest) = key.strip_prefix(prefix) {
            return (index, rest);
        }
    }
    (0, key)
}

/// The full xattr key for a stored (index, suffix), or `None` for an unknown index.
pub fn xattr_key(index: u8, suffix: &[u8]) -> Option<Vec<u8>> {
    if index == 0 {
        return Some(suffix.to_vec());
    }
    let (prefix, _) = XATTR_PREFIXES.iter().find(|(_, i)| *i == index)?;
    let mut key = prefix.to_vec();
    key.extend_from_slice(suffix);
    Some(key)
}

/// The composefs xattrs the writer adds and the reader removes.
pub const XATTR_OVERLAY_METACOPY: &[u8] = b"trusted.overlay.metacopy";
/// The xattr naming an external file's backing path (`/xx/yyyy…`) in the object directory.
pub const XATTR_OVERLAY_REDIRECT: &[u8] = b"trusted.overlay.redirect";
/// The xattr marking a directory opaque to overlayfs; the writer sets it (value `y`) on the
/// root directory and the reader drops it there.
pub const XATTR_OVERLAY_OPAQUE: &[u8] = b"trusted.overlay.opaque";
/// The overlayfs whiteout marker on a whiteout's placeholder file (composefs format >= 1 stores
/// a whiteout as an empty regular file carrying it and its `user.` twin).
pub const XATTR_OVERLAY_WHITEOUT: &[u8] = b"trusted.overlay.whiteout";
/// The unprivileged-overlayfs twin of [`XATTR_OVERLAY_WHITEOUT`].
pub const XATTR_USER_OVERLAY_WHITEOUT: &[u8] = b"user.overlay.whiteout";
/// [`XATTR_OVERLAY_WHITEOUT`] as the writer stores it (escaped with one more `overlay.`).
pub const XATTR_ESCAPED_OVERLAY_WHITEOUT: &[u8] = b"trusted.overlay.overlay.whiteout";
/// The marker on a directory that holds whiteouts.
pub const XATTR_OVERLAY_WHITEOUTS: &[u8] = b"trusted.overlay.whiteouts";
/// The unprivileged-overlayfs twin of [`XATTR_OVERLAY_WHITEOUTS`].
pub const XATTR_USER_OVERLAY_WHITEOUTS: &[u8] = b"user.overlay.whiteouts";
/// [`XATTR_OVERLAY_WHITEOUTS`] as the writer stores it.
pub const XATTR_ESCAPED_OVERLAY_WHITEOUTS: &[u8] = b"trusted.overlay.overlay.whiteouts";
/// The unprivileged-overlayfs twin of [`XATTR_OVERLAY_OPAQUE`].
pub const XATTR_USER_OVERLAY_OPAQUE: &[u8] = b"user.overlay.opaque";
/// [`XATTR_OVERLAY_OPAQUE`] as the writer stores it on a whiteout's parent.
pub const XATTR_ESCAPED_OVERLAY_OPAQUE: &[u8] = b"trusted.overlay.overlay.opaque";
/// A user xattr `trusted.overlay.X` is stored as `trusted.overlay.overlay.X`.
pub const XATTR_TRUSTED_OVERLAY_PREFIX: &[u8] = b"trusted.overlay.";
/// How the writer stores a user's `trusted.overlay.` xattr so overlayfs does not act on it; the
/// reader strips one `overlay.`.
pub const XATTR_ESCAPED_OVERLAY_PREFIX: &[u8] = b"trusted.overlay.overlay.";
/// The metacopy value header: version 0, len 36, flags 0, digest algo 1 (SHA-256).
pub const METACOPY_HEADER: [u8; 4] = [0x00, 0x24, 0x00, 0x01];
