//! Inode xattr bodies and shared xattr entries.
//!
//! | part | layout |
//! |---|---|
//! | body header (12 bytes) | name_filter le32, shared_count u8, 7 reserved |
//! | shared ids | `shared_count` × le32; entry at `xattr_blkaddr * 4096 + id * 4` |
//! | inline entries | {name_len u8, name_index u8, value_size le16, name, value}, padded to 4 |
//!
//! The body is `12 + (xattr_icount - 1) * 4` bytes (none when `xattr_icount` is 0) and must be
//! used up exactly by the shared ids and entries. Keys must be unique in an inode, 1–255 bytes,
//! with a known prefix index. When the superblock enables the bloom filter, no present key may
//! have its filter bit set: the kernel would then hide it, and the mounted tree would differ from
//! the tree read here.

use xxhash_rust::xxh32::xxh32;

use super::bytes::{byte, le_u16, le_u32, ImageBytes};
use super::superblock::Superblock;
use super::{Budget, ReadError};
use crate::erofs::format::*;
use crate::tree::MAX_XATTR_KEY_LEN;

/// One xattr with its full stored key (composefs escaping not yet undone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RawXattr {
    pub key: Box<[u8]>,
    pub value: Box<[u8]>,
}

fn bad(offset: u64, reason: impl Into<String>) -> ReadError {
    ReadError::BadXattr {
        offset,
        reason: reason.into(),
    }
}

/// Parse the xattr body of inode `nid` starting at `start`. Returns the xattrs and body size.
pub(super) fn parse_body(
    img: ImageBytes<'_>,
    sb: &Superblock,
    nid: u64,
    start: u64,
    icount: u16,
    budget: &mut Budget,
) -> Result<(Vec<RawXattr>, u64), ReadError> {
    if icount == 0 {
        return Ok((Vec::new(), 0));
    }
    let size = XATTR_IBODY_HEADER_SIZE + (u64::from(icount) - 1) * 4;
    let body = img.slice(start, size, || format!("xattr body of inode nid {nid}"))?;
    let filter = le_u32(body, 0);
    let shared_count = usize::from(byte(body, 4));
    let mut pos = XATTR_IBODY_HEADER_SIZE as usize;
    if pos + 4 * shared_count > body.len() {
        return Err(bad(
            start + 4,
            format!("{shared_count} shared xattr ids overrun the {size}-byte body"),
        ));
    }
    let mut out = Vec::new();
    for _ in 0..shared_count {
        let id = le_u32(body, pos);
        let at = sb.xattr_base + u64::from(id) * 4;
        let (x, _) = parse_entry(img, at, img.len(), || {
            format!("shared xattr id {id} of inode nid {nid}")
        })?;
        budget.spend_xattr(x.key.len(), x.value.len())?;
        out.push(x);
        pos += 4;
    }
    let body_end = start + size;
    while pos < body.len() {
        let at = start + pos as u64;
        let (x, len) = parse_entry(img, at, body_end, || {
            format!("inline xattr of inode nid {nid}")
        })?;
        budget.spend_xattr(x.key.len(), x.value.len())?;
        out.push(x);
        pos += len.next_multiple_of(4) as usize;
    }
    if sb.uses_xattr_filter() {
        for x in &out {
            let (index, suffix) = xattr_prefix(&x.key);
            let bit = xxh32(suffix, XATTR_FILTER_SEED.wrapping_add(u32::from(index))) & 31;
            if filter & (1 << bit) != 0 {
                return Err(bad(
                    start,
                    format!(
                        "name filter {filter:#010x} hides xattr {:?} from the kernel",
                        String::from_utf8_lossy(&x.key)
                    ),
                ));
            }
        }
    }
    let mut keys: Vec<&[u8]> = out.iter().map(|x| &*x.key).collect();
    keys.sort_unstable();
    if let Some(pair) = keys.windows(2).find(|w| w[0] == w[1]) {
        return Err(bad(
            start,
            format!("duplicate xattr {:?}", String::from_utf8_lossy(pair[0])),
        ));
    }
    Ok((out, size))
}

/// Parse one entry at byte `at` of `img` that must end by byte `end`; returns it and its
/// unpadded length.
fn parse_entry(
    img: ImageBytes<'_>,
    at: u64,
    end: u64,
    what: impl Fn() -> String,
) -> Result<(RawXattr, u64), ReadError> {
    let head = img.slice(at, XATTR_ENTRY_HEADER_SIZE, &what)?;
    let name_len = u64::from(byte(head, 0));
    let index = byte(head, 1);
    let value_len = u64::from(le_u16(head, 2));
    let entry_end = at + XATTR_ENTRY_HEADER_SIZE + name_len + value_len;
    if entry_end > end {
        return Err(bad(
            at,
            format!(
                "entry of {} bytes overruns its xattr body ending at byte {end}",
                entry_end - at
            ),
        ));
    }
    let name = img.slice(at + XATTR_ENTRY_HEADER_SIZE, name_len, &what)?;
    let value = img.slice(at + XATTR_ENTRY_HEADER_SIZE + name_len, value_len, &what)?;
    let key = xattr_key(index, name)
        .ok_or_else(|| bad(at, format!("unknown xattr name index {index}")))?;
    let needs_suffix =
        ![XATTR_INDEX_POSIX_ACL_ACCESS, XATTR_INDEX_POSIX_ACL_DEFAULT].contains(&index);
    if (needs_suffix && name.is_empty()) || key.len() > MAX_XATTR_KEY_LEN {
        return Err(bad(
            at,
            format!(
                "xattr key {:?} is empty or longer than {MAX_XATTR_KEY_LEN} bytes",
                String::from_utf8_lossy(&key)
            ),
        ));
    }
    if key.contains(&0) {
        return Err(bad(at, "xattr key contains a NUL byte"));
    }
    let entry = RawXattr {
        key: key.into(),
        value: value.into(),
    };
    Ok((entry, XATTR_ENTRY_HEADER_SIZE + name_len + value_len))
}
