//! Directory data: 4096-byte chunks (the directory's blocks, then its inline tail), each an
//! array of 12-byte dirents followed by the names.
//!
//! | dirent field | size |
//! |---|---|
//! | nid | le64 |
//! | nameoff (from the chunk start) | le16 |
//! | file_type | u8 |
//! | reserved | u8 |
//!
//! The first dirent's `nameoff` gives the dirent count (`nameoff / 12`). A name runs to the next
//! dirent's `nameoff`; the last one to the first NUL or the chunk end. Names must be strictly
//! increasing bytewise over the whole directory (the kernel binary-searches them), valid file
//! names (1–255 bytes, no `/` or NUL), or exactly `.` / `..`.

use super::bytes::{byte, le_u16, le_u64, ImageBytes};
use super::inode::RawInode;
use super::{Budget, ReadError};
use crate::erofs::format::*;
use crate::tree::valid_name;

/// One stored directory entry.
#[derive(Clone, Debug)]
pub(super) struct RawDirent {
    pub name: Box<[u8]>,
    pub nid: u64,
    pub file_type: u8,
    /// Byte offset of the dirent record (for error messages).
    pub offset: u64,
}

fn bad(offset: u64, reason: impl Into<String>) -> ReadError {
    ReadError::BadDirent {
        offset,
        reason: reason.into(),
    }
}

/// Byte ranges of the directory's chunks, in order.
fn chunks(inode: &RawInode) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut remaining = inode.size;
    if let Some((start, len)) = inode.data.blocks {
        let mut at = start;
        while remaining > 0 && at < start + len {
            let n = remaining.min(BLOCK_SIZE);
            out.push((at, n));
            remaining -= n;
            at += BLOCK_SIZE;
        }
    }
    if let Some(tail) = inode.data.tail {
        out.push(tail);
    }
    out
}

/// All entries of a directory inode, including `.` and `..`, in stored order.
pub(super) fn parse(
    img: ImageBytes<'_>,
    nid: u64,
    inode: &RawInode,
    budget: &mut Budget,
) -> Result<Vec<RawDirent>, ReadError> {
    if inode.layout == LAYOUT_CHUNK_BASED {
        return Err(ReadError::BadInode {
            offset: inode.offset,
            reason: "chunk-based directory".into(),
        });
    }
    if inode.size == 0 {
        return Err(ReadError::BadInode {
            offset: inode.offset,
            reason: "empty directory data (no '.' and '..')".into(),
        });
    }
    budget.spend_data(inode.size)?;
    let mut out: Vec<RawDirent> = Vec::new();
    for (start, len) in chunks(inode) {
        let chunk = img.slice(start, len, || format!("directory block of nid {nid}"))?;
        parse_chunk(chunk, start, &mut out)?;
    }
    Ok(out)
}

fn parse_chunk(c: &[u8], base: u64, out: &mut Vec<RawDirent>) -> Result<(), ReadError> {
    let dirent = DIRENT_SIZE as usize;
    if c.len() < dirent {
        return Err(bad(
            base,
            format!("directory chunk of {} bytes holds no dirent", c.len()),
        ));
    }
    let first_nameoff = usize::from(le_u16(c, 8));
    if first_nameoff < dirent || first_nameoff % dirent != 0 || first_nameoff > c.len() {
        return Err(bad(
            base + 8,
            format!(
                "first nameoff {first_nameoff} is not a multiple of 12 within the {}-byte chunk",
                c.len()
            ),
        ));
    }
    let count = first_nameoff / dirent;
    for i in 0..count {
        let rec = i * dirent;
        let offset = base + rec as u64;
        let nameoff = usize::from(le_u16(c, rec + 8));
        let name_end = if i + 1 < count {
            usize::from(le_u16(c, rec + dirent + 8))
        } else {
            let rest = c.get(nameoff..).unwrap_or_default();
            nameoff + rest.iter().position(|&b| b == 0).unwrap_or(rest.len())
        };
        if nameoff < first_nameoff || name_end < nameoff || name_end > c.len() {
            return Err(bad(
                offset,
                format!(
                    "name bytes {nameoff}..{name_end} out of order or outside the {}-byte chunk",
                    c.len()
                ),
            ));
        }
        let name = &c[nameoff..name_end];
        if name != b"." && name != b".." && !valid_name(name) {
            return Err(bad(
                offset,
                format!("invalid name {:?}", String::from_utf8_lossy(name)),
            ));
        }
        if let Some(prev) = out.last() {
            if *prev.name >= *name {
                return Err(bad(
                    offset,
                    format!(
                        "name {:?} does not sort after {:?}",
                        String::from_utf8_lossy(name),
                        String::from_utf8_lossy(&prev.name)
                    ),
                ));
            }
        }
        out.push(RawDirent {
            name: name.into(),
            nid: le_u64(c, rec),
            file_type: byte(c, rec + 10),
            offset,
        });
    }
    Ok(())
}
