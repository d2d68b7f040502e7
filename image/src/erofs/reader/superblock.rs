//! The composefs header (byte 0) and the EROFS superblock (byte 1024), validated.
//!
//! Only what composefs writes is accepted: header version 1, no flag but HAS_ACL,
//! composefs_version 0 or 1; EROFS magic, 4096-byte blocks, no incompat feature but
//! CHUNKED_FILE, and a `blocks` count that the file actually holds.

use super::bytes::{byte, le_u16, le_u32, le_u64, ImageBytes};
use super::ReadError;
use crate::erofs::format::*;

/// Highest composefs format version this reader understands.
pub const MAX_COMPOSEFS_VERSION: u32 = 1;

/// Incompat features this reader can handle (anything else changes the layout).
const SUPPORTED_INCOMPAT: u32 = FEATURE_INCOMPAT_CHUNKED_FILE;

/// The validated header and superblock fields the reader uses.
#[derive(Clone, Debug)]
pub(super) struct Superblock {
    pub has_acl: bool,
    pub composefs_version: u32,
    pub feature_compat: u32,
    pub root_nid: u64,
    pub inos: u64,
    pub build_time: i64,
    pub build_time_nsec: u32,
    pub meta_base: u64,
    pub xattr_base: u64,
}

impl Superblock {
    /// Whether the kernel consults the per-inode xattr bloom filter.
    pub fn uses_xattr_filter(&self) -> bool {
        self.feature_compat & FEATURE_COMPAT_XATTR_FILTER != 0
    }
}

pub(super) fn parse(img: ImageBytes<'_>) -> Result<Superblock, ReadError> {
    let need = SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE;
    if img.len() < need {
        return Err(ReadError::TooShort {
            len: img.len(),
            need,
        });
    }
    let hdr = img.slice(0, COMPOSEFS_HEADER_SIZE as u64, || {
        "composefs header".into()
    })?;
    let magic = le_u32(hdr, 0);
    if magic != COMPOSEFS_MAGIC {
        return Err(ReadError::BadComposefsMagic { found: magic });
    }
    let unsupported_header = |field, offset, value: u32| ReadError::UnsupportedHeader {
        field,
        offset,
        value: value.into(),
    };
    let version = le_u32(hdr, 4);
    if version != COMPOSEFS_HEADER_VERSION {
        return Err(unsupported_header("version", 4, version));
    }
    let flags = le_u32(hdr, 8);
    if flags & !COMPOSEFS_FLAGS_HAS_ACL != 0 {
        return Err(unsupported_header("flags", 8, flags));
    }
    let composefs_version = le_u32(hdr, 12);
    if composefs_version > MAX_COMPOSEFS_VERSION {
        return Err(unsupported_header(
            "composefs_version",
            12,
            composefs_version,
        ));
    }

    let sb = img.slice(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, || {
        "EROFS superblock".into()
    })?;
    let unsupported = |field, at: u64, value: u64| ReadError::UnsupportedSuperblock {
        field,
        offset: SUPERBLOCK_OFFSET + at,
        value,
    };
    let magic = le_u32(sb, 0);
    if magic != EROFS_MAGIC {
        return Err(ReadError::BadErofsMagic { found: magic });
    }
    let feature_compat = le_u32(sb, 8);
    if feature_compat & FEATURE_COMPAT_SB_CHKSUM != 0 {
        // composefs never sets it, and an unchecked checksum would be a silent lie.
        return Err(unsupported(
            "feature_compat (superblock checksum)",
            8,
            feature_compat.into(),
        ));
    }
    let blkszbits = byte(sb, 12);
    if u32::from(blkszbits) != BLOCK_BITS {
        return Err(unsupported("blkszbits", 12, blkszbits.into()));
    }
    let incompat = le_u32(sb, 80);
    if incompat & !SUPPORTED_INCOMPAT != 0 {
        return Err(unsupported("feature_incompat", 80, incompat.into()));
    }
    let blocks = u64::from(le_u32(sb, 36));
    let claimed_len = blocks * BLOCK_SIZE;
    if claimed_len > img.len() {
        return Err(ReadError::OutOfRange {
            what: format!("the {blocks} blocks the superblock declares"),
            start: 0,
            end: claimed_len,
            file_len: img.len(),
        });
    }
    // Seconds since the epoch as mkcomposefs stores them: a signed time written as its 64-bit
    // two's complement, so times before 1970 read back negative.
    let build_time = le_u64(sb, 24) as i64;
    let build_time_nsec = le_u32(sb, 32);
    if build_time_nsec >= 1_000_000_000 {
        return Err(unsupported("build_time_nsec", 32, build_time_nsec.into()));
    }
    Ok(Superblock {
        has_acl: flags & COMPOSEFS_FLAGS_HAS_ACL != 0,
        composefs_version,
        feature_compat,
        root_nid: le_u16(sb, 14).into(),
        inos: le_u64(sb, 16),
        build_time,
        build_time_nsec,
        meta_base: u64::from(le_u32(sb, 40)) * BLOCK_SIZE,
        xattr_base: u64::from(le_u32(sb, 44)) * BLOCK_SIZE,
    })
}
