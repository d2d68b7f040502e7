//! One on-disk inode: the compact (32-byte) or extended (64-byte) record, its xattr body, and
//! where its data lives. Nothing here follows directory entries; see `walk`.
//!
//! | record | fields (little-endian) |
//! |---|---|
//! | compact | format u16, xattr_icount u16, mode u16, nlink u16, size u32, reserved u32, union u32, ino u32, uid u16, gid u16, reserved u32 |
//! | extended | format u16, xattr_icount u16, mode u16, reserved u16, size u64, union u32, ino u32, uid u32, gid u32, mtime u64, mtime_nsec u32, nlink u32, reserved 16 |
//!
//! `format` bit 0 = extended, bits 1..=3 = layout; other bits are refused. A compact inode's
//! mtime is the superblock build time. Data: FLAT_PLAIN = `ceil(size / 4096)` blocks at
//! `union`; FLAT_INLINE = `size / 4096` blocks at `union` plus a `size % 4096` tail right after
//! the xattr body, inside the inode's block; CHUNK_BASED = `union` is the chunk format and a
//! le32 index per chunk follows the xattr body (composefs writes only holes).

use super::bytes::{le_u16, le_u32, le_u64, ImageBytes};
use super::superblock::Superblock;
use super::xattr::{self, RawXattr};
use super::{Budget, ReadError};
use crate::erofs::format::*;
use crate::tree::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};

/// `format` bits this reader understands: the version bit and the 3 layout bits.
const KNOWN_FORMAT_BITS: u16 = 0x000f;
/// Chunk format bits other than the chunk size (0x20 = 8-byte chunk indexes) are refused.
const KNOWN_CHUNK_FORMAT_BITS: u32 = CHUNK_FORMAT_BLKBITS_MASK as u32;
/// Largest chunk size EROFS allows: chunkbits at most 12 + 31, and composefs caps it at 2^43.
const MAX_CHUNK_BITS: u32 = 43;
/// An index entry per chunk.
const CHUNK_INDEX_ENTRY_SIZE: u64 = 4;

/// Where an inode's data lives, as byte ranges of the image.
#[derive(Clone, Debug, Default)]
pub(super) struct DataPlace {
    /// Whole blocks: byte start and length (a multiple of 4096).
    pub blocks: Option<(u64, u64)>,
    /// Inline tail: byte start and length (FLAT_INLINE).
    pub tail: Option<(u64, u64)>,
}

/// An inode as stored, before the composefs rewrites are undone.
#[derive(Clone, Debug)]
pub(super) struct RawInode {
    pub offset: u64,
    /// End of the inode record + xattr body + inline tail or chunk index.
    pub extent_end: u64,
    pub layout: u16,
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// `raw_blkaddr`, `rdev` or chunk format, depending on type and layout.
    pub union: u32,
    pub mtime_sec: i64,
    pub mtime_nsec: u32,
    /// Full keys (prefix expanded), in stored order (shared first).
    pub xattrs: Vec<RawXattr>,
    pub data: DataPlace,
}

impl RawInode {
    pub fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }
}

fn bad(offset: u64, reason: impl Into<String>) -> ReadError {
    ReadError::BadInode {
        offset,
        reason: reason.into(),
    }
}

/// Parse the inode at `nid`.
pub(super) fn parse(
    img: ImageBytes<'_>,
    sb: &Superblock,
    nid: u64,
    budget: &mut Budget,
) -> Result<RawInode, ReadError> {
    let offset = nid
        .checked_mul(INODE_SLOT_SIZE)
        .and_then(|o| o.checked_add(sb.meta_base))
        .ok_or_else(|| bad(u64::MAX, format!("nid {nid} overflows a byte offset")))?;
    let head = img.slice(offset, COMPACT_INODE_SIZE, || format!("inode nid {nid}"))?;
    let format = le_u16(head, 0);
    if format & !KNOWN_FORMAT_BITS != 0 {
        return Err(bad(offset, format!("unknown i_format bits {format:#06x}")));
    }
    let extended = format & 1 != 0;
    let layout = (format >> 1) & 0x7;
    if ![LAYOUT_FLAT_PLAIN, LAYOUT_FLAT_INLINE, LAYOUT_CHUNK_BASED].contains(&layout) {
        return Err(bad(
            offset,
            format!("unsupported data layout {layout} (compressed or unknown)"),
        ));
    }
    let icount = le_u16(head, 2);
    let mode = u32::from(le_u16(head, 4));
    let (isize, nlink, uid, gid, size, union, mtime_sec, mtime_nsec) = if extended {
        let rec = img.slice(offset, EXTENDED_INODE_SIZE, || {
            format!("extended inode nid {nid}")
        })?;
        // A signed time stored as its two's complement (see the superblock's build_time).
        let mtime = le_u64(rec, 32) as i64;
        let nsec = le_u32(rec, 40);
        if nsec >= 1_000_000_000 {
            return Err(bad(
                offset + 40,
                format!("mtime_nsec {nsec} is not below 10^9"),
            ));
        }
        (
            EXTENDED_INODE_SIZE,
            le_u32(rec, 44),
            le_u32(rec, 24),
            le_u32(rec, 28),
            le_u64(rec, 8),
            le_u32(rec, 16),
            mtime,
            nsec,
        )
    } else {
        (
            COMPACT_INODE_SIZE,
            u32::from(le_u16(head, 6)),
            u32::from(le_u16(head, 24)),
            u32::from(le_u16(head, 26)),
            u64::from(le_u32(head, 8)),
            le_u32(head, 16),
            sb.build_time,
            sb.build_time_nsec,
        )
    };

    let xattr_start = offset + isize;
    let (xattrs, xattr_size) = xattr::parse_body(img, sb, nid, xattr_start, icount, budget)?;
    let after_xattrs = xattr_start + xattr_size;

    let mut inode = RawInode {
        offset,
        extent_end: after_xattrs,
        layout,
        mode,
        nlink,
        uid,
        gid,
        size,
        union,
        mtime_sec,
        mtime_nsec,
        xattrs,
        data: DataPlace::default(),
    };
    place_data(img, nid, &mut inode, after_xattrs)?;
    Ok(inode)
}

/// Work out (and bounds-check) where the data of `inode` lives.
fn place_data(
    img: ImageBytes<'_>,
    nid: u64,
    inode: &mut RawInode,
    after_xattrs: u64,
) -> Result<(), ReadError> {
    let offset = inode.offset;
    if ![S_IFREG, S_IFDIR, S_IFLNK].contains(&inode.file_type()) {
        // Devices, fifos and sockets have no data: their union is `rdev` and their size is
        // only a number to report.
        return Ok(());
    }
    let size = inode.size;
    let block_start = |nblocks: u64| -> Result<Option<(u64, u64)>, ReadError> {
        if nblocks == 0 {
            return Ok(None);
        }
        let start = u64::from(inode.union) * BLOCK_SIZE;
        let len = nblocks
            .checked_mul(BLOCK_SIZE)
            .ok_or_else(|| bad(offset, format!("size {size} overflows a block count")))?;
        img.slice(start, len, || format!("data blocks of inode nid {nid}"))?;
        Ok(Some((start, len)))
    };
    match inode.layout {
        LAYOUT_FLAT_PLAIN => {
            inode.data.blocks = block_start(size.div_ceil(BLOCK_SIZE))?;
        }
        LAYOUT_FLAT_INLINE => {
            inode.data.blocks = block_start(size / BLOCK_SIZE)?;
            let tail = size % BLOCK_SIZE;
            if tail > 0 {
                // The kernel reads the tail from the inode's own block: it must not cross it.
                if after_xattrs % BLOCK_SIZE + tail > BLOCK_SIZE {
                    return Err(bad(offset, format!("inline tail of {tail} bytes at byte {after_xattrs} crosses a block boundary")));
                }
                img.slice(after_xattrs, tail, || {
                    format!("inline tail of inode nid {nid}")
                })?;
                inode.data.tail = Some((after_xattrs, tail));
                inode.extent_end = after_xattrs + tail;
            }
        }
        _ => {
            // CHUNK_BASED: only holes are accepted, so nothing outside the inode is read.
            let chunk_bits = BLOCK_BITS + (inode.union & KNOWN_CHUNK_FORMAT_BITS);
            if chunk_bits <= MAX_CHUNK_BITS {
                let chunks = size.div_ceil(1u64 << chunk_bits);
                let overshoot = (after_xattrs - offset) % INODE_SLOT_SIZE;
                if chunks * CHUNK_INDEX_ENTRY_SIZE + overshoot > BLOCK_SIZE {
                    // An index that cannot fit after any slot-aligned inode start: mkcomposefs
                    // moved it to a data block (the union keeps that block's high address half
                    // above the format) and wrote nothing inline. composefs never reads it:
                    // overlayfs redirects to the object. Nothing of it is trusted here.
                    inode.extent_end = after_xattrs;
                    return Ok(());
                }
            }
            if inode.union & !KNOWN_CHUNK_FORMAT_BITS != 0 {
                return Err(bad(
                    offset + 16,
                    format!("unsupported chunk format {:#x}", inode.union),
                ));
            }
            let chunk_bits = BLOCK_BITS + (inode.union & KNOWN_CHUNK_FORMAT_BITS);
            if chunk_bits > MAX_CHUNK_BITS {
                return Err(bad(
                    offset + 16,
                    format!("chunk size 2^{chunk_bits} is larger than 2^{MAX_CHUNK_BITS}"),
                ));
            }
            let chunks = size.div_ceil(1u64 << chunk_bits);
            let index_len = chunks * CHUNK_INDEX_ENTRY_SIZE;
            let index = img.slice(after_xattrs, index_len, || {
                format!("chunk index ({chunks} chunks for size {size}) of inode nid {nid}")
            })?;
            if let Some(pos) = index
                .chunks_exact(4)
                .position(|e| le_u32(e, 0) != CHUNK_HOLE)
            {
                return Err(bad(
                    after_xattrs + pos as u64 * CHUNK_INDEX_ENTRY_SIZE,
                    "chunk index entry points at a block inside the image; composefs writes only holes",
                ));
            }
            inode.extent_end = after_xattrs + index_len;
        }
    }
    Ok(())
}
