//! Breadth-first traversal of the directory graph from the root, iteratively (no recursion on
//! attacker-controlled depth).
//!
//! Each inode is parsed once (by nid). A directory may be reached only once (a second path to
//! it is a loop or a hard-linked directory, both refused), its `.` must name itself and its `..`
//! its parent (the root's `..` is the root), and every dirent's file type must match the
//! inode's mode. After the walk, inode records and data blocks must not overlap: that keeps the
//! total work and memory proportional to the image size even for hostile nids.
//!
//! Hard links: mkcomposefs places inodes in breadth-first order of their primary entries, so
//! walking dirents in that same order, the entry pointing at the next inode in nid order is the
//! primary one; any other entry to an already-seen or later inode is a hard link.

use std::collections::HashMap;

use super::bytes::ImageBytes;
use super::dir::{self, RawDirent};
use super::inode::{self, RawInode};
use super::superblock::Superblock;
use super::{Budget, ReadError};
use crate::erofs::format::*;
use crate::tree::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK};

/// An index into [`Walked::inodes`] (visit order; the root is 0).
pub(super) type Slot = usize;

/// One named entry of a directory (`.` and `..` excluded).
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub name: Box<[u8]>,
    pub slot: Slot,
    pub primary: bool,
}

/// The result of the walk: every reachable inode once, and every directory's entries.
pub(super) struct Walked {
    pub inodes: Vec<RawInode>,
    pub nids: Vec<u64>,
    /// Entries of each directory slot (empty for non-directories).
    pub entries: Vec<Vec<Entry>>,
    /// Directories in breadth-first order.
    pub dir_order: Vec<Slot>,
    /// The entry through which each slot was first reached: (directory slot, name).
    first_link: Vec<Option<(Slot, Box<[u8]>)>>,
}

impl Walked {
    /// The path of the first entry that reached `slot` (`/` for the root).
    pub fn path(&self, slot: Slot) -> String {
        let mut parts: Vec<&[u8]> = Vec::new();
        let mut cur = slot;
        // Links always point at earlier-visited directories, so this ends; the bound is a guard.
        for _ in 0..=self.inodes.len() {
            match &self.first_link[cur] {
                Some((parent, name)) => {
                    parts.push(name);
                    cur = *parent;
                }
                None => break,
            }
        }
        if parts.is_empty() {
            return "/".into();
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Wrap an error with the path and nid of `slot`.
    pub fn at(&self, slot: Slot, err: ReadError) -> ReadError {
        ReadError::InInode {
            path: self.path(slot),
            nid: self.nids[slot],
            source: Box::new(err),
        }
    }

    pub fn is_dir(&self, slot: Slot) -> bool {
        self.inodes[slot].file_type() == S_IFDIR
    }
}

/// The dirent file type for a mode's file type bits.
fn dirent_type(file_type: u32) -> Option<u8> {
    Some(match file_type {
        S_IFREG => FT_REG_FILE,
        S_IFDIR => FT_DIR,
        S_IFCHR => FT_CHRDEV,
        S_IFBLK => FT_BLKDEV,
        S_IFIFO => FT_FIFO,
        S_IFSOCK => FT_SOCK,
        S_IFLNK => FT_SYMLINK,
        _ => return None,
    })
}

pub(super) fn walk(
    img: ImageBytes<'_>,
    sb: &Superblock,
    budget: &mut Budget,
) -> Result<Walked, ReadError> {
    budget.spend_inode()?;
    let root = inode::parse(img, sb, sb.root_nid, budget).map_err(|e| ReadError::InInode {
        path: "/".into(),
        nid: sb.root_nid,
        source: Box::new(e),
    })?;
    let mut w = Walked {
        inodes: vec![root],
        nids: vec![sb.root_nid],
        entries: vec![Vec::new()],
        dir_order: vec![0],
        first_link: vec![None],
    };
    if !w.is_dir(0) {
        return Err(w.at(
            0,
            ReadError::BadInode {
                offset: w.inodes[0].offset,
                reason: "the root is not a directory".into(),
            },
        ));
    }
    let mut slot_of: HashMap<u64, Slot> = HashMap::from([(sb.root_nid, 0)]);
    let mut parent_of: HashMap<Slot, Slot> = HashMap::from([(0, 0)]);
    let mut next_dir = 0;
    while next_dir < w.dir_order.len() {
        let d = w.dir_order[next_dir];
        next_dir += 1;
        let raw = dir::parse(img, w.nids[d], &w.inodes[d], budget).map_err(|e| w.at(d, e))?;
        let (mut saw_dot, mut saw_dotdot) = (false, false);
        let mut entries = Vec::with_capacity(raw.len().saturating_sub(2));
        for e in raw {
            let bad = |reason: String| ReadError::BadDirent {
                offset: e.offset,
                reason,
            };
            if &*e.name == b"." || &*e.name == b".." {
                let is_dot = &*e.name == b".";
                let expect = if is_dot {
                    w.nids[d]
                } else {
                    w.nids[parent_of[&d]]
                };
                if e.nid != expect || e.file_type != FT_DIR {
                    let what = if is_dot { "'.'" } else { "'..'" };
                    return Err(w.at(
                        d,
                        bad(format!(
                            "{what} points at nid {} (type {}), expected directory nid {expect}",
                            e.nid, e.file_type
                        )),
                    ));
                }
                if is_dot {
                    saw_dot = true;
                } else {
                    saw_dotdot = true;
                }
                continue;
            }
            let slot = reach(img, sb, budget, &mut w, &mut slot_of, d, &e)?;
            if w.is_dir(slot) {
                parent_of.insert(slot, d);
            }
            let stored = dirent_type(w.inodes[slot].file_type());
            if stored != Some(e.file_type) {
                return Err(w.at(
                    d,
                    bad(format!(
                        "entry {:?} has file type {} but its inode has mode {:#o}",
                        String::from_utf8_lossy(&e.name),
                        e.file_type,
                        w.inodes[slot].mode
                    )),
                ));
            }
            entries.push(Entry {
                name: e.name,
                slot,
                primary: false,
            });
        }
        if !saw_dot || !saw_dotdot {
            return Err(w.at(
                d,
                ReadError::BadInode {
                    offset: w.inodes[d].offset,
                    reason: "directory lacks '.' or '..'".into(),
                },
            ));
        }
        w.entries[d] = entries;
    }
    if w.inodes.len() as u64 != sb.inos {
        return Err(ReadError::InodeCountMismatch {
            superblock: sb.inos,
            found: w.inodes.len() as u64,
        });
    }
    check_no_overlap(&w)?;
    assign_primaries(&mut w);
    Ok(w)
}

/// The slot of the inode a dirent points at, parsing the inode on first sight.
fn reach(
    img: ImageBytes<'_>,
    sb: &Superblock,
    budget: &mut Budget,
    w: &mut Walked,
    slot_of: &mut HashMap<u64, Slot>,
    dir: Slot,
    e: &RawDirent,
) -> Result<Slot, ReadError> {
    if let Some(&slot) = slot_of.get(&e.nid) {
        if w.is_dir(slot) {
            let mut again = w.path(dir);
            if again != "/" {
                again.push('/');
            }
            again.push_str(&String::from_utf8_lossy(&e.name));
            return Err(ReadError::DirectoryReachedTwice {
                path: w.path(slot),
                nid: e.nid,
                again,
            });
        }
        return Ok(slot);
    }
    budget.spend_inode()?;
    let slot = w.inodes.len();
    let parsed = inode::parse(img, sb, e.nid, budget);
    w.nids.push(e.nid);
    w.first_link.push(Some((dir, e.name.clone())));
    w.entries.push(Vec::new());
    let parsed = match parsed {
        Ok(inode) => inode,
        Err(err) => return Err(w.at(slot, err)),
    };
    let is_dir = parsed.file_type() == S_IFDIR;
    w.inodes.push(parsed);
    slot_of.insert(e.nid, slot);
    if is_dir {
        w.dir_order.push(slot);
    }
    Ok(slot)
}

/// Refuse inode records or data blocks that share bytes.
fn check_no_overlap(w: &Walked) -> Result<(), ReadError> {
    // (start, end, slot, is_data)
    let mut extents: Vec<(u64, u64, Slot, bool)> = Vec::with_capacity(w.inodes.len() * 2);
    for (slot, inode) in w.inodes.iter().enumerate() {
        extents.push((inode.offset, inode.extent_end, slot, false));
        if let Some((start, len)) = inode.data.blocks {
            extents.push((start, start + len, slot, true));
        }
    }
    extents.sort_unstable();
    let label = |&(_, _, slot, is_data): &(u64, u64, Slot, bool)| {
        let what = if is_data { "data blocks" } else { "inode" };
        format!("{what} of {} (nid {})", w.path(slot), w.nids[slot])
    };
    for pair in extents.windows(2) {
        if pair[1].0 < pair[0].1 {
            return Err(ReadError::Overlap {
                first: label(&pair[0]),
                second: label(&pair[1]),
                offset: pair[1].0,
            });
        }
    }
    Ok(())
}

/// Mark, for every inode, which entry is its primary one (see the module doc).
fn assign_primaries(w: &mut Walked) {
    let mut by_nid: Vec<Slot> = (1..w.inodes.len()).collect();
    by_nid.sort_unstable_by_key(|&s| w.nids[s]);
    let mut has_primary = vec![false; w.inodes.len()];
    has_primary[0] = true;
    let mut next = 0;
    for i in 0..w.dir_order.len() {
        let d = w.dir_order[i];
        for j in 0..w.entries[d].len() {
            let slot = w.entries[d][j].slot;
            let expected = by_nid.get(next) == Some(&slot);
            if !has_primary[slot] && (expected || w.is_dir(slot)) {
                has_primary[slot] = true;
                w.entries[d][j].primary = true;
            }
            while by_nid.get(next).is_some_and(|&s| has_primary[s]) {
                next += 1;
            }
        }
    }
    // Inodes stored out of breadth-first order: their first entry becomes the primary one.
    for i in 0..w.dir_order.len() {
        let d = w.dir_order[i];
        for e in &mut w.entries[d] {
            if !has_primary[e.slot] {
                has_primary[e.slot] = true;
                e.primary = true;
            }
        }
    }
}
