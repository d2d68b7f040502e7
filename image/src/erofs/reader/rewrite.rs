//! Undo the composefs rewrites the writer applies, turning walked inodes into the user's
//! [`Tree`] (see "Tree rewrite before writing" in the format notes):
//!
//! | stored | user tree |
//! |---|---|
//! | `trusted.overlay.overlay.X` | `trusted.overlay.X` |
//! | chunk-based file + `trusted.overlay.metacopy` (empty or `00 24 00 01` + digest) + `trusted.overlay.redirect` `/PATH` | `FileData::External { size, digest, backing: PATH }` |
//! | root's `trusted.overlay.opaque` | dropped |
//! | any other unescaped `trusted.overlay.*` | refused |
//! | root char 0/0 devices named `00`…`ff` with one link | dropped (writer-added whiteout stubs) |
//! | empty regular file with `trusted.overlay.whiteout=""` and `user.overlay.whiteout=""` | char 0/0 device, those xattrs removed |
//! | its parent's `*.overlay.whiteouts` (and for version ≥ 1 `*.overlay.opaque=x`) | removed |

use super::bytes::ImageBytes;
use super::inode::RawInode;
use super::walk::{Slot, Walked};
use super::{Budget, ReadError};
use crate::erofs::format::*;
use crate::fsverity::FsVeritySha256;
use crate::tree::*;

use crate::erofs::format::{
    XATTR_OVERLAY_WHITEOUT as TRUSTED_WHITEOUT, XATTR_USER_OVERLAY_WHITEOUT as USER_WHITEOUT,
};
const PARENT_MARKERS: [&[u8]; 2] = [XATTR_OVERLAY_WHITEOUTS, XATTR_USER_OVERLAY_WHITEOUTS];
const PARENT_OPAQUE: [&[u8]; 2] = [XATTR_OVERLAY_OPAQUE, XATTR_USER_OVERLAY_OPAQUE];
/// Value of the opaque marker the writer puts on a whiteout's parent (format version >= 1).
const PARENT_OPAQUE_VALUE: &[u8] = b"x";

fn bad_xattr(inode: &RawInode, reason: String) -> ReadError {
    ReadError::BadXattr {
        offset: inode.offset,
        reason,
    }
}

fn bad_inode(inode: &RawInode, reason: impl Into<String>) -> ReadError {
    ReadError::BadInode {
        offset: inode.offset,
        reason: reason.into(),
    }
}

/// Overlay metadata the writer attached to an external file.
#[derive(Default)]
struct OverlayMeta {
    metacopy: Option<Box<[u8]>>,
    redirect: Option<Box<[u8]>>,
}

/// Split stored xattrs into user xattrs (unescaped, sorted) and composefs-internal metadata.
fn user_xattrs(inode: &RawInode, is_root: bool) -> Result<(Vec<Xattr>, OverlayMeta), ReadError> {
    let external = inode.file_type() == S_IFREG && inode.layout == LAYOUT_CHUNK_BASED;
    let mut meta = OverlayMeta::default();
    let mut out = Vec::with_capacity(inode.xattrs.len());
    for x in &inode.xattrs {
        if let Some(rest) = x.key.strip_prefix(XATTR_ESCAPED_OVERLAY_PREFIX) {
            let mut key = XATTR_TRUSTED_OVERLAY_PREFIX.to_vec();
            key.extend_from_slice(rest);
            out.push(Xattr {
                key: key.into(),
                value: x.value.clone(),
            });
        } else if x.key.starts_with(XATTR_TRUSTED_OVERLAY_PREFIX) {
            match &*x.key {
                XATTR_OVERLAY_METACOPY if external => meta.metacopy = Some(x.value.clone()),
                XATTR_OVERLAY_REDIRECT if external => meta.redirect = Some(x.value.clone()),
                XATTR_OVERLAY_OPAQUE if is_root => {}
                _ => {
                    return Err(bad_xattr(
                        inode,
                        format!(
                            "unexpected composefs-internal xattr {:?} on inode of mode {:#o}",
                            String::from_utf8_lossy(&x.key),
                            inode.mode
                        ),
                    ))
                }
            }
        } else {
            out.push(Xattr {
                key: x.key.clone(),
                value: x.value.clone(),
            });
        }
    }
    out.sort_unstable();
    Ok((out, meta))
}

/// The user-visible content of a regular file.
fn regular_data(
    img: ImageBytes<'_>,
    inode: &RawInode,
    meta: OverlayMeta,
    budget: &mut Budget,
) -> Result<FileData, ReadError> {
    if inode.layout != LAYOUT_CHUNK_BASED {
        return Ok(FileData::Inline(read_data(img, inode, budget)?.into()));
    }
    let digest = match meta.metacopy.as_deref() {
        // Without metacopy overlayfs would serve the file from the image through its chunk
        // index, which this reader does not interpret: the mounted content could differ from
        // what is reported here. The writer always adds metacopy to external files.
        None => {
            return Err(bad_inode(
                inode,
                "chunk-based file without trusted.overlay.metacopy",
            ))
        }
        Some([]) => None,
        Some(v) if v.len() == 4 + FsVeritySha256::LEN && v[..4] == METACOPY_HEADER => {
            FsVeritySha256::from_slice(&v[4..])
        }
        Some(v) => {
            return Err(bad_xattr(
                inode,
                format!(
                    "malformed trusted.overlay.metacopy value of {} bytes",
                    v.len()
                ),
            ))
        }
    };
    let backing = match meta.redirect.as_deref() {
        None => None,
        Some([b'/', rest @ ..]) if !rest.is_empty() && !rest.contains(&0) => Some(rest.into()),
        Some(v) => {
            return Err(bad_xattr(
                inode,
                format!(
                    "malformed trusted.overlay.redirect {:?}: not '/' + a path",
                    String::from_utf8_lossy(v)
                ),
            ))
        }
    };
    Ok(FileData::External {
        size: inode.size,
        digest,
        backing,
    })
}

/// The bytes of a FLAT_PLAIN or FLAT_INLINE inode.
fn read_data(
    img: ImageBytes<'_>,
    inode: &RawInode,
    budget: &mut Budget,
) -> Result<Vec<u8>, ReadError> {
    budget.spend_data(inode.size)?;
    // The size is covered by ranges already checked against the image, so it fits in memory.
    let mut out = Vec::with_capacity(inode.size as usize);
    if let Some((start, len)) = inode.data.blocks {
        let want = len.min(inode.size - out.len() as u64);
        out.extend_from_slice(img.slice(start, want, || "data blocks".into())?);
    }
    if let Some((start, len)) = inode.data.tail {
        out.extend_from_slice(img.slice(start, len, || "inline tail".into())?);
    }
    if out.len() as u64 != inode.size {
        return Err(bad_inode(
            inode,
            format!(
                "data holds {} bytes but the size is {}",
                out.len(),
                inode.size
            ),
        ));
    }
    Ok(out)
}

/// Convert one walked inode (directory entries are filled in later).
fn convert(
    img: ImageBytes<'_>,
    inode: &RawInode,
    is_root: bool,
    budget: &mut Budget,
) -> Result<Inode, ReadError> {
    let (xattrs, meta) = user_xattrs(inode, is_root)?;
    let file_type = inode.file_type();
    let mut stat = Stat {
        mode: inode.mode,
        nlink: inode.nlink,
        uid: inode.uid,
        gid: inode.gid,
        rdev: 0,
        mtime_sec: inode.mtime_sec,
        mtime_nsec: inode.mtime_nsec,
    };
    let content = match file_type {
        S_IFDIR => Content::Directory(Vec::new()),
        S_IFREG => Content::Regular(regular_data(img, inode, meta, budget)?),
        S_IFLNK => {
            if inode.layout == LAYOUT_CHUNK_BASED {
                return Err(bad_inode(inode, "chunk-based symlink"));
            }
            if inode.size == 0 || inode.size > MAX_SYMLINK_LEN as u64 {
                return Err(bad_inode(
                    inode,
                    format!(
                        "symlink target of {} bytes (must be 1..={MAX_SYMLINK_LEN})",
                        inode.size
                    ),
                ));
            }
            let target = read_data(img, inode, budget)?;
            if target.contains(&0) {
                return Err(bad_inode(inode, "symlink target contains a NUL byte"));
            }
            Content::Symlink(target.into())
        }
        S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK => {
            stat.rdev = inode.union.into();
            Content::Special { size: inode.size }
        }
        other => {
            return Err(bad_inode(
                inode,
                format!("unknown file type {other:#o} in mode {:#o}", inode.mode),
            ))
        }
    };
    Ok(Inode {
        stat,
        xattrs,
        content,
    })
}

/// Whether root entry `name` -> `slot` is a whiteout stub the writer added.
fn is_root_stub(w: &Walked, refs: &[u32], name: &[u8], slot: Slot) -> bool {
    let inode = &w.inodes[slot];
    name.len() == 2
        && name
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        && inode.file_type() == S_IFCHR
        && inode.union == 0
        && refs[slot] == 1
}

/// If `inode` is an escaped whiteout, turn it back into a char 0/0 device.
fn unescape_whiteout(inode: &mut Inode) -> bool {
    let empty_regular =
        matches!(&inode.content, Content::Regular(FileData::Inline(d)) if d.is_empty());
    if !empty_regular
        || inode.xattr(TRUSTED_WHITEOUT) != Some(b"")
        || inode.xattr(USER_WHITEOUT) != Some(b"")
    {
        return false;
    }
    inode.remove_xattr(TRUSTED_WHITEOUT);
    inode.remove_xattr(USER_WHITEOUT);
    inode.stat.mode = (inode.stat.mode & !S_IFMT) | S_IFCHR;
    inode.stat.rdev = 0;
    inode.content = Content::Special { size: 0 };
    true
}

/// Build the user tree from the walk.
pub(super) fn build_tree(
    img: ImageBytes<'_>,
    w: &Walked,
    composefs_version: u32,
    budget: &mut Budget,
) -> Result<Tree, ReadError> {
    let mut refs = vec![0u32; w.inodes.len()];
    for entries in &w.entries {
        for e in entries {
            refs[e.slot] = refs[e.slot].saturating_add(1);
        }
    }
    let mut dropped = vec![false; w.inodes.len()];
    for e in &w.entries[0] {
        if is_root_stub(w, &refs, &e.name, e.slot) {
            dropped[e.slot] = true;
        }
    }
    // Arena order: the root, then inodes in nid order (= breadth-first order for mkcomposefs).
    let mut order: Vec<Slot> = (1..w.inodes.len()).filter(|&s| !dropped[s]).collect();
    order.sort_unstable_by_key(|&s| w.nids[s]);
    order.insert(0, 0);
    let mut id_of = vec![InodeId(u32::MAX); w.inodes.len()];
    let mut arena = Vec::with_capacity(order.len());
    let mut whiteout = vec![false; w.inodes.len()];
    for (i, &slot) in order.iter().enumerate() {
        id_of[slot] = InodeId(u32::try_from(i).map_err(|_| ReadError::LimitExceeded {
            what: "inodes",
            count: order.len() as u64,
            limit: u32::MAX.into(),
            file_len: img.len(),
        })?);
        let mut inode =
            convert(img, &w.inodes[slot], slot == 0, budget).map_err(|e| w.at(slot, e))?;
        whiteout[slot] = unescape_whiteout(&mut inode);
        arena.push(inode);
    }
    for &d in &w.dir_order {
        let mut has_whiteout = false;
        let entries: Vec<DirEntry> = w.entries[d]
            .iter()
            .filter(|e| !dropped[e.slot])
            .map(|e| {
                has_whiteout |= e.primary && whiteout[e.slot];
                DirEntry {
                    name: e.name.clone(),
                    inode: id_of[e.slot],
                    hardlink: !e.primary,
                }
            })
            .collect();
        let dir = &mut arena[id_of[d].index()];
        dir.content = Content::Directory(entries);
        if has_whiteout {
            for key in PARENT_MARKERS {
                dir.remove_xattr(key);
            }
            if composefs_version >= 1 {
                for key in PARENT_OPAQUE {
                    if dir.xattr(key) == Some(PARENT_OPAQUE_VALUE) {
                        dir.remove_xattr(key);
                    }
                }
            }
        }
    }
    Ok(Tree { inodes: arena })
}
