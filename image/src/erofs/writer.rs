//! The EROFS writer: a [`Tree`] in, the exact bytes upstream mkcomposefs writes out.
//!
//! Writing happens in three passes, each in its own function:
//!
//! 1. [`rewrite`](super::rewrite): the composefs rewrites (overlay xattrs, whiteouts, the root's
//!    `00`..`ff` whiteouts) on a copy of the tree, and the format version.
//! 2. `Layout::compute`: breadth-first inode order, shared xattrs, each inode's form (compact or
//!    extended), xattr body, inline tail and data blocks, padding, nids and block addresses.
//!    Nothing is written; every offset is known before the first byte is.
//! 3. `Layout::emit`: header, superblock, inodes (+ xattrs + tails), shared xattrs, data blocks.
//!
//! Placement rules (all from mkcomposefs, see `composefs-format.md`):
//!
//! | thing | rule |
//! |---|---|
//! | inode | starts 32-byte aligned; compact (32 B) iff mtime == the minimum mtime, nlink/uid/gid ≤ 65535 and size ≤ u32::MAX |
//! | inline tail (dir entries, file bytes, symlink target, chunk index) | directly after inode + xattrs; must not cross a 4096 boundary: pad the inode forward by whole slots, else the tail becomes a data block |
//! | symlink | inode + xattrs + target in one block; if that is over a block the target gets a data block |
//! | directory | dirents packed greedily into 4096-byte blocks; the last partial block is inline if ≤ 2048 bytes |
//! | file with content | size/4096 full blocks, the remainder inline if ≤ 2048 bytes, else one more block |
//! | external file | chunk-based: one chunk (2^chunkbits ≥ size, 4 KiB..2^43), index = 0xFFFFFFFF per chunk |
//! | shared xattr | a (key, value) used by more than one inode; ordered key desc, value length desc, value desc |

use xxhash_rust::xxh32::xxh32;

pub use super::error::WriteError;
use super::format::*;
use super::rewrite::{choose_version, rewrite_tree};
use super::seeded_map::{new_map, Map};
use crate::tree::{
    Content, FileData, Inode, InodeId, Tree, MAX_SYMLINK_LEN, MAX_XATTR_KEY_LEN,
    MAX_XATTR_VALUE_LEN, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK,
};

/// Largest inline file content mkcomposefs accepts (`LCFS_INLINE_CONTENT_MAX`).
pub const MAX_INLINE_CONTENT: usize = 5000;
/// At most this many chunks per external file, so the chunk index fits one block
/// (`LCFS_MAX_NONINLINE_CHUNKS`); with 2^43-byte chunks that caps files at 2^53 bytes.
pub const MAX_CHUNKS: u64 = BLOCK_SIZE / 4;
/// The largest chunk: chunk format bits hold chunkbits − 12 in 5 bits.
const MAX_CHUNK_BITS: u32 = BLOCK_BITS + CHUNK_FORMAT_BLKBITS_MASK as u32;
/// An inline tail larger than half a block goes to a block instead (mkcomposefs's heuristic).
const MAX_INLINE_TAIL: u64 = BLOCK_SIZE / 2;

/// Which composefs format versions the writer may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    /// Format version to start from (mkcomposefs `--min-version`, default 0).
    pub min_version: u32,
    /// Highest version the writer may raise to (mkcomposefs `--max-version`, default 1).
    pub max_version: u32,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            min_version: 0,
            max_version: 1,
        }
    }
}

fn invalid(path: &[u8], reason: impl Into<String>) -> WriteError {
    WriteError::Invalid {
        path: String::from_utf8_lossy(path).into_owned(),
        reason: reason.into(),
    }
}

/// Write `tree` as a composefs image, byte-identical to what mkcomposefs writes for it.
/// The composefs rewrites are made on a copy; a caller done with the tree passes it to
/// [`write_image_owned`] instead and saves the copy.
pub fn write_image(tree: &Tree, opts: &WriteOptions) -> Result<Vec<u8>, WriteError> {
    write_image_owned(tree.clone(), opts)
}

/// [`write_image`] of a tree the writer may consume: the rewrites are made in place. For a
/// 100k-file tree the copy was ~40 MiB of fresh memory, and first touches of fresh pages are
/// most of the single-threaded tail of a build on a VM.
pub fn write_image_owned(tree: Tree, opts: &WriteOptions) -> Result<Vec<u8>, WriteError> {
    let version = choose_version(&tree, opts.min_version, opts.max_version)?;
    let rewritten = rewrite_tree(tree, version)?;
    let layout = Layout::compute(&rewritten, version)?;
    layout.emit(&rewritten)
}

/// How an inode's data is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataKind {
    None,
    Directory,
    Symlink,
    /// Content inside the image (inline tail and/or data blocks).
    Inline,
    /// Content outside: a chunk index of `count` holes with chunk format `format`.
    Chunked {
        count: u64,
        format: u16,
    },
}

/// Everything computed about one inode before writing.
#[derive(Debug)]
struct InodeLayout {
    id: InodeId,
    /// `st_mode` after the rewrites (dirents record the target's file type).
    mode: u32,
    nlink: u32,
    compact: bool,
    kind: DataKind,
    /// For each xattr of the inode, in order, at this range of [`Layout::shared_refs`]: its
    /// shared-area offset, or `None` if inline (one list for all inodes: no allocation each).
    shared: std::ops::Range<usize>,
    xattr_size: u64,
    n_blocks: u64,
    tail: u64,
    /// Padding written before the inode.
    pad: u64,
    nid: u64,
    /// First data block (0 if none).
    blkaddr: u64,
}

/// A directory's entries including `.` and `..`, sorted: (name, BFS index of the target). The
/// names are the tree's own (borrowed, not copied).
type DirentList<'t> = Vec<(&'t [u8], usize)>;
/// A shared xattr: (key, value), borrowed from the tree.
type SharedXattr<'t> = (&'t [u8], &'t [u8]);

/// Where everything goes, for the tree of lifetime `'t`.
struct Layout<'t> {
    version: u32,
    has_acl: bool,
    min_mtime: (i64, u32),
    nodes: Vec<InodeLayout>,
    /// Each inode's directory entries by its BFS index (empty for non-directories).
    dirents: Vec<DirentList<'t>>,
    /// The inodes' shared-xattr references (see [`InodeLayout::shared`]).
    shared_refs: Vec<Option<u64>>,
    shared_xattrs: Vec<SharedXattr<'t>>,
    shared_size: u64,
    inodes_end: u64,
    data_start: u64,
    n_data_blocks: u64,
}

fn round_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

/// Size of one stored xattr entry, padded to 4 bytes.
fn xattr_entry_size(key: &[u8], value: &[u8]) -> u64 {
    let (_, suffix) = xattr_prefix(key);
    round_up(
        XATTR_ENTRY_HEADER_SIZE + suffix.len() as u64 + value.len() as u64,
        4,
    )
}

/// Chunk bits for an external file: the smallest power of two ≥ size, within 12..=43.
fn chunk_bits(size: u64) -> u32 {
    let bits = if size <= 1 {
        0
    } else {
        64 - (size - 1).leading_zeros()
    };
    bits.clamp(BLOCK_BITS, MAX_CHUNK_BITS)
}

/// Directory blocks and tail for these entries (names incl. `.` and `..`).
fn dir_size(entries: &[(&[u8], usize)]) -> (u64, u64) {
    let mut n_blocks = 0;
    let mut used = 0;
    for (name, _) in entries {
        let len = DIRENT_SIZE + name.len() as u64;
        if used + len > BLOCK_SIZE {
            n_blocks += 1;
            used = 0;
        }
        used += len;
    }
    if used > MAX_INLINE_TAIL {
        (n_blocks + 1, 0)
    } else {
        (n_blocks, used)
    }
}

fn file_type(mode: u32) -> u8 {
    match mode & S_IFMT {
        S_IFREG => FT_REG_FILE,
        S_IFDIR => FT_DIR,
        S_IFCHR => FT_CHRDEV,
        S_IFBLK => FT_BLKDEV,
        S_IFIFO => FT_FIFO,
        S_IFSOCK => FT_SOCK,
        S_IFLNK => FT_SYMLINK,
        _ => FT_UNKNOWN,
    }
}

/// Check the limits mkcomposefs enforces on one inode; `path` names it in an error and is
/// called only then.
fn validate(inode: &Inode, path: impl Fn() -> Vec<u8>) -> Result<(), WriteError> {
    let ftype = inode.stat.file_type();
    let content_ok = matches!(
        (&inode.content, ftype),
        (Content::Directory(_), S_IFDIR)
            | (Content::Regular(_), S_IFREG)
            | (Content::Symlink(_), S_IFLNK)
            | (
                Content::Special { .. },
                S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK
            )
    );
    if !content_ok {
        return Err(invalid(
            &path(),
            format!(
                "mode {:o} does not match the inode's content",
                inode.stat.mode
            ),
        ));
    }
    for x in &inode.xattrs {
        // `user.`, `trusted.`, `security.` alone name no attribute (Linux refuses them too); the
        // ACL keys are whole names whose suffix is empty by design.
        if x.key.ends_with(b".") && xattr_prefix(&x.key).0 != 0 && xattr_prefix(&x.key).1.is_empty()
        {
            let key = String::from_utf8_lossy(&x.key);
            return Err(invalid(
                &path(),
                format!("xattr key {key:?} is a namespace with no name"),
            ));
        }
        if x.key.is_empty() || x.key.len() > MAX_XATTR_KEY_LEN || x.key.contains(&0) {
            return Err(invalid(
                &path(),
                format!(
                    "xattr key of {} bytes (allowed 1..={MAX_XATTR_KEY_LEN}, no NUL)",
                    x.key.len()
                ),
            ));
        }
        if x.value.len() > MAX_XATTR_VALUE_LEN {
            return Err(invalid(
                &path(),
                format!(
                    "xattr value of {} bytes (max {MAX_XATTR_VALUE_LEN})",
                    x.value.len()
                ),
            ));
        }
    }
    match &inode.content {
        Content::Symlink(target) if target.is_empty() || target.len() > MAX_SYMLINK_LEN => {
            Err(invalid(
                &path(),
                format!(
                    "symlink target of {} bytes (allowed 1..={MAX_SYMLINK_LEN})",
                    target.len()
                ),
            ))
        }
        Content::Regular(FileData::Inline(data)) if data.len() > MAX_INLINE_CONTENT => {
            Err(invalid(
                &path(),
                format!(
                    "inline content of {} bytes (max {MAX_INLINE_CONTENT})",
                    data.len()
                ),
            ))
        }
        Content::Regular(FileData::External { size, .. }) if *size > 0 => {
            let count = size.div_ceil(1u64 << chunk_bits(*size));
            if count > MAX_CHUNKS {
                return Err(invalid(
                    &path(),
                    format!("file of {size} bytes is too big (max 2^53)"),
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

impl<'t> Layout<'t> {
    /// Compute the placement of everything in the (already rewritten) tree.
    fn compute(tree: &'t Tree, version: u32) -> Result<Layout<'t>, WriteError> {
        let order = tree.bfs_ids();
        let mut index_of = vec![usize::MAX; tree.inodes.len()];
        for (i, id) in order.iter().enumerate() {
            index_of[id.index()] = i;
        }

        let mut min_mtime = (tree.root().stat.mtime_sec, tree.root().stat.mtime_nsec);
        let mut has_acl = false;
        let mut parents = vec![0usize; order.len()];
        let mut dirents: Vec<DirentList<'t>> = Vec::with_capacity(order.len());
        let mut nlinks = Vec::with_capacity(order.len());
        for (i, id) in order.iter().enumerate() {
            let inode = tree.inode(*id);
            validate(inode, || tree.path_of(*id))?;
            min_mtime = min_mtime.min((inode.stat.mtime_sec, inode.stat.mtime_nsec));
            has_acl |= inode.xattr(b"system.posix_acl_access").is_some()
                || inode.xattr(b"system.posix_acl_default").is_some();
            let mut nlink = inode.stat.nlink;
            if let Some(entries) = inode.entries() {
                let mut list: DirentList<'t> = Vec::with_capacity(entries.len() + 2);
                list.push((b".", i));
                list.push((b"..", parents[i]));
                let mut subdirs = 0;
                for e in entries {
                    let target = index_of.get(e.inode.index()).copied().unwrap_or(usize::MAX);
                    if target == usize::MAX {
                        return Err(invalid(
                            &e.name,
                            "entry points to an inode outside the tree",
                        ));
                    }
                    let target_is_dir = tree.inode(e.inode).stat.file_type() == S_IFDIR;
                    if e.hardlink && target_is_dir {
                        return Err(invalid(&e.name, "hard link to a directory"));
                    }
                    if !e.hardlink {
                        parents[target] = i;
                        subdirs += u32::from(target_is_dir);
                    }
                    list.push((&e.name, target));
                }
                list.sort_by(|a, b| a.0.cmp(b.0));
                nlink = 2 + subdirs;
                dirents.push(list);
            } else {
                dirents.push(Vec::new());
            }
            nlinks.push(nlink);
        }

        // Shared xattrs: every (key, value) used by more than one inode.
        let mut counts: Map<(&[u8], &[u8]), u32> = new_map(order.len());
        for id in &order {
            for x in &tree.inode(*id).xattrs {
                *counts.entry((&x.key, &x.value)).or_default() += 1;
            }
        }
        let mut shared: Vec<(&[u8], &[u8])> = counts
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(kv, _)| kv)
            .collect();
        shared.sort_by(|a, b| {
            b.0.cmp(a.0)
                .then(b.1.len().cmp(&a.1.len()))
                .then(b.1.cmp(a.1))
        });
        let mut shared_offsets: Map<(&[u8], &[u8]), u64> = new_map(shared.len());
        let mut shared_size = 0;
        for (k, v) in &shared {
            shared_offsets.insert((k, v), shared_size);
            shared_size += xattr_entry_size(k, v);
        }

        let mut nodes = Vec::with_capacity(order.len());
        let mut shared_refs = Vec::new();
        let mut pos = INODES_START;
        for (i, id) in order.iter().enumerate() {
            let inode = tree.inode(*id);
            let ftype = inode.stat.file_type();
            let (kind, mut n_blocks, mut tail, size) = match &inode.content {
                Content::Directory(_) => {
                    let (b, t) = dir_size(&dirents[i]);
                    (DataKind::Directory, b, t, b * BLOCK_SIZE + t)
                }
                Content::Symlink(target) => (
                    DataKind::Symlink,
                    0,
                    target.len() as u64,
                    target.len() as u64,
                ),
                Content::Regular(FileData::Inline(data)) if !data.is_empty() => {
                    let len = data.len() as u64;
                    let (b, t) = (len / BLOCK_SIZE, len % BLOCK_SIZE);
                    let (b, t) = if t > MAX_INLINE_TAIL {
                        (b + 1, 0)
                    } else {
                        (b, t)
                    };
                    (DataKind::Inline, b, t, len)
                }
                Content::Regular(FileData::External { size, .. }) if *size > 0 => {
                    let bits = chunk_bits(*size);
                    let count = size.div_ceil(1u64 << bits);
                    let format = (bits - BLOCK_BITS) as u16;
                    (DataKind::Chunked { count, format }, 0, count * 4, *size)
                }
                Content::Special { size } => (DataKind::None, 0, 0, *size),
                Content::Regular(_) => (DataKind::None, 0, 0, 0),
            };
            let compact = (inode.stat.mtime_sec, inode.stat.mtime_nsec) == min_mtime
                && nlinks[i] <= u32::from(u16::MAX)
                && inode.stat.uid <= u32::from(u16::MAX)
                && inode.stat.gid <= u32::from(u16::MAX)
                && size <= u64::from(u32::MAX);
            let inode_size = if compact {
                COMPACT_INODE_SIZE
            } else {
                EXTENDED_INODE_SIZE
            };

            let refs_start = shared_refs.len();
            let (mut n_shared, mut inline_size) = (0u64, 0u64);
            for x in &inode.xattrs {
                match shared_offsets.get(&(&*x.key, &*x.value)) {
                    Some(off) if (n_shared as usize) < MAX_SHARED_XATTRS_PER_INODE => {
                        n_shared += 1;
                        shared_refs.push(Some(*off));
                    }
                    _ => {
                        inline_size += xattr_entry_size(&x.key, &x.value);
                        shared_refs.push(None);
                    }
                }
            }
            let xattr_size = if inode.xattrs.is_empty() {
                0
            } else {
                round_up(XATTR_IBODY_HEADER_SIZE + 4 * n_shared + inline_size, 4)
            };

            // Place the inode: slot-aligned, and its tail must not cross a block boundary.
            let start = round_up(pos, INODE_SLOT_SIZE);
            let mut pad = start - pos;
            pos = start;
            let head = inode_size + xattr_size;
            let chunked = matches!(kind, DataKind::Chunked { .. });
            if ftype == S_IFLNK || (chunked && tail + xattr_size % INODE_SLOT_SIZE > BLOCK_SIZE) {
                // A symlink's inode, xattrs and target must share one block (the kernel reads
                // them together); a chunk index that cannot fit after any slot-aligned start
                // goes to a data block. Either way the inode starts a new block if the
                // inode plus its would-be tail crosses a boundary.
                if pos / BLOCK_SIZE != (pos + head + tail - 1) / BLOCK_SIZE {
                    let extra = round_up(pos, BLOCK_SIZE) - pos;
                    pad += extra;
                    pos += extra;
                }
                if chunked || head + tail >= BLOCK_SIZE {
                    n_blocks = 1;
                    tail = 0;
                }
            } else if tail > 0 {
                let remaining = BLOCK_SIZE - (pos + head) % BLOCK_SIZE;
                if remaining < tail {
                    let extra = round_up(remaining, INODE_SLOT_SIZE);
                    if tail <= BLOCK_SIZE - (pos + head + extra) % BLOCK_SIZE {
                        pad += extra;
                        pos += extra;
                    } else {
                        n_blocks += 1;
                        tail = 0;
                    }
                }
            }
            let nid = pos / INODE_SLOT_SIZE;
            pos += head + tail;
            nodes.push(InodeLayout {
                id: *id,
                mode: inode.stat.mode,
                nlink: nlinks[i],
                compact,
                kind,
                shared: refs_start..shared_refs.len(),
                xattr_size,
                n_blocks,
                tail,
                pad,
                nid,
                blkaddr: 0,
            });
        }
        let inodes_end = round_up(pos, INODE_SLOT_SIZE);
        let data_start = round_up(inodes_end + shared_size, BLOCK_SIZE);
        let mut next_block = data_start / BLOCK_SIZE;
        for node in &mut nodes {
            if node.n_blocks > 0 {
                node.blkaddr = next_block;
                next_block += node.n_blocks;
            }
        }
        if next_block > u64::from(u32::MAX)
            || nodes.last().is_some_and(|n| n.nid > u64::from(u32::MAX))
        {
            return Err(WriteError::Invalid {
                path: "/".into(),
                reason: "image would exceed 2^32 blocks".into(),
            });
        }
        Ok(Layout {
            version,
            has_acl,
            min_mtime,
            n_data_blocks: next_block - data_start / BLOCK_SIZE,
            nodes,
            dirents,
            shared_refs,
            shared_xattrs: shared,
            shared_size,
            inodes_end,
            data_start,
        })
    }

    fn total_blocks(&self) -> u64 {
        self.data_start / BLOCK_SIZE + self.n_data_blocks
    }

    /// Write the image bytes.
    fn emit(&self, tree: &Tree) -> Result<Vec<u8>, WriteError> {
        let total = self.total_blocks() * BLOCK_SIZE;
        let mut out = Vec::with_capacity(total as usize);
        self.emit_header(&mut out);
        for (i, node) in self.nodes.iter().enumerate() {
            out.resize(out.len() + node.pad as usize, 0);
            self.emit_inode(&mut out, tree, i);
        }
        pad_to(&mut out, INODE_SLOT_SIZE);
        check_offset(&out, self.inodes_end, "inodes")?;
        for (k, v) in &self.shared_xattrs {
            emit_xattr(&mut out, k, v);
        }
        check_offset(&out, self.inodes_end + self.shared_size, "shared xattrs")?;
        pad_to(&mut out, BLOCK_SIZE);
        for (i, node) in self.nodes.iter().enumerate() {
            if node.n_blocks > 0 {
                check_offset(&out, node.blkaddr * BLOCK_SIZE, "data blocks")?;
                self.emit_blocks(&mut out, tree, i);
            }
        }
        check_offset(&out, total, "end of image")?;
        Ok(out)
    }

    fn emit_header(&self, out: &mut Vec<u8>) {
        put_u32(out, COMPOSEFS_MAGIC);
        put_u32(out, COMPOSEFS_HEADER_VERSION);
        put_u32(
            out,
            if self.has_acl {
                COMPOSEFS_FLAGS_HAS_ACL
            } else {
                0
            },
        );
        put_u32(out, self.version);
        out.resize(SUPERBLOCK_OFFSET as usize, 0);

        put_u32(out, EROFS_MAGIC);
        put_u32(out, 0); // checksum
        put_u32(out, FEATURE_COMPAT_MTIME | FEATURE_COMPAT_XATTR_FILTER);
        out.push(BLOCK_BITS as u8);
        out.push(0); // sb_extslots
        put_u16(out, ROOT_NID as u16);
        put_u64(out, self.nodes.len() as u64);
        put_u64(out, self.min_mtime.0 as u64);
        put_u32(out, self.min_mtime.1);
        put_u32(out, self.total_blocks() as u32);
        put_u32(out, 0); // meta_blkaddr: nids count from byte 0
        put_u32(out, (self.inodes_end / BLOCK_SIZE) as u32);
        out.resize((SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) as usize, 0);
    }

    fn emit_inode(&self, out: &mut Vec<u8>, tree: &Tree, i: usize) {
        let node = &self.nodes[i];
        let inode = tree.inode(node.id);
        let layout = match node.kind {
            DataKind::Chunked { .. } => LAYOUT_CHUNK_BASED,
            _ if node.tail > 0 => LAYOUT_FLAT_INLINE,
            _ => LAYOUT_FLAT_PLAIN,
        };
        let format = u16::from(!node.compact) | layout << 1;
        let size = match (&inode.content, node.kind) {
            (Content::Directory(_), _) => node.n_blocks * BLOCK_SIZE + node.tail,
            (Content::Symlink(target), _) => target.len() as u64,
            (Content::Regular(data), _) => data.size(),
            (Content::Special { .. }, _) => 0,
        };
        let union = match node.kind {
            // A chunk index moved to a data block keeps the block address's high half
            // under the chunk format, as mkcomposefs's union write leaves it.
            DataKind::Chunked { format, .. } => {
                (node.blkaddr as u32 & 0xFFFF_0000) | u32::from(format)
            }
            _ if matches!(inode.stat.file_type(), S_IFCHR | S_IFBLK) => inode.stat.rdev as u32,
            _ => node.blkaddr as u32,
        };
        let icount = if node.xattr_size == 0 {
            0
        } else {
            (node.xattr_size - XATTR_IBODY_HEADER_SIZE) / 4 + 1
        };
        let ino = i as u32;
        let st = &inode.stat;
        if node.compact {
            put_u16(out, format);
            put_u16(out, icount as u16);
            put_u16(out, st.mode as u16);
            put_u16(out, node.nlink as u16);
            put_u32(out, size as u32);
            put_u32(out, 0);
            put_u32(out, union);
            put_u32(out, ino);
            put_u16(out, st.uid as u16);
            put_u16(out, st.gid as u16);
            put_u32(out, 0);
        } else {
            put_u16(out, format);
            put_u16(out, icount as u16);
            put_u16(out, st.mode as u16);
            put_u16(out, 0);
            put_u64(out, size);
            put_u32(out, union);
            put_u32(out, ino);
            put_u32(out, st.uid);
            put_u32(out, st.gid);
            put_u64(out, st.mtime_sec as u64);
            put_u32(out, st.mtime_nsec);
            put_u32(out, node.nlink);
            out.resize(out.len() + 16, 0);
        }

        if node.xattr_size > 0 {
            let start = out.len();
            let mut filter = 0u32;
            for x in &inode.xattrs {
                let (index, suffix) = xattr_prefix(&x.key);
                filter |=
                    1 << (xxh32(suffix, XATTR_FILTER_SEED.wrapping_add(u32::from(index))) & 31);
            }
            put_u32(out, XATTR_FILTER_DEFAULT & !filter);
            let shared = &self.shared_refs[node.shared.clone()];
            out.push(shared.iter().flatten().count() as u8);
            out.resize(out.len() + 7, 0);
            for off in shared.iter().flatten() {
                put_u32(out, ((self.inodes_end % BLOCK_SIZE + off) / 4) as u32);
            }
            for (x, shared) in inode.xattrs.iter().zip(shared) {
                if shared.is_none() {
                    emit_xattr(out, &x.key, &x.value);
                }
            }
            out.resize(start + node.xattr_size as usize, 0);
        }

        if node.tail > 0 {
            match (&inode.content, node.kind) {
                (_, DataKind::Directory) => {
                    let entries = &self.dirents[i];
                    let first = dir_chunks(entries).last().map_or(entries.len(), |c| c.0);
                    self.emit_dirents(out, &entries[first..], 1);
                }
                (Content::Symlink(target), _) => out.extend_from_slice(target),
                (Content::Regular(FileData::Inline(data)), _) => {
                    out.extend_from_slice(&data[data.len() - node.tail as usize..]);
                }
                (_, DataKind::Chunked { count, .. }) => {
                    for _ in 0..count {
                        put_u32(out, CHUNK_HOLE);
                    }
                }
                _ => {}
            }
        }
    }

    fn emit_dirents(&self, out: &mut Vec<u8>, entries: &[(&[u8], usize)], align: u64) {
        let start = out.len();
        let mut nameoff = entries.len() as u64 * DIRENT_SIZE;
        for (name, target) in entries {
            let node = &self.nodes[*target];
            put_u64(out, node.nid);
            put_u16(out, nameoff as u16);
            out.push(file_type(self.mode_of(*target)));
            out.push(0);
            nameoff += name.len() as u64;
        }
        for (name, _) in entries {
            out.extend_from_slice(name);
        }
        let len = (out.len() - start) as u64;
        out.resize(start + round_up(len, align) as usize, 0);
    }

    fn mode_of(&self, index: usize) -> u32 {
        self.nodes[index].mode
    }

    fn emit_blocks(&self, out: &mut Vec<u8>, tree: &Tree, i: usize) {
        let node = &self.nodes[i];
        let inode = tree.inode(node.id);
        match &inode.content {
            Content::Directory(_) => {
                let entries = &self.dirents[i];
                let chunks = dir_chunks(entries);
                for &(s, e) in chunks.iter().take(node.n_blocks as usize) {
                    self.emit_dirents(out, &entries[s..e], BLOCK_SIZE);
                }
            }
            Content::Symlink(target) => {
                out.extend_from_slice(target);
                pad_to(out, BLOCK_SIZE);
            }
            Content::Regular(FileData::Inline(data)) => {
                let len = ((node.n_blocks * BLOCK_SIZE) as usize).min(data.len());
                out.extend_from_slice(&data[..len]);
                pad_to(out, BLOCK_SIZE);
            }
            Content::Regular(FileData::External { .. }) => {
                // A chunk index moved out of the inode: a whole block of holes.
                for _ in 0..MAX_CHUNKS {
                    put_u32(out, CHUNK_HOLE);
                }
            }
            _ => {}
        }
    }
}

/// Greedy packing of directory entries into 4096-byte chunks: (start, end) index ranges.
fn dir_chunks(entries: &[(&[u8], usize)]) -> Vec<(usize, usize)> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut used = 0;
    for (i, (name, _)) in entries.iter().enumerate() {
        let len = DIRENT_SIZE + name.len() as u64;
        if used + len > BLOCK_SIZE {
            chunks.push((start, i));
            start = i;
            used = 0;
        }
        used += len;
    }
    if start < entries.len() {
        chunks.push((start, entries.len()));
    }
    chunks
}

fn emit_xattr(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let (index, suffix) = xattr_prefix(key);
    let start = out.len();
    out.push(suffix.len() as u8);
    out.push(index);
    put_u16(out, value.len() as u16);
    out.extend_from_slice(suffix);
    out.extend_from_slice(value);
    out.resize(start + xattr_entry_size(key, value) as usize, 0);
}

fn check_offset(out: &[u8], expected: u64, what: &str) -> Result<(), WriteError> {
    if out.len() as u64 == expected {
        Ok(())
    } else {
        Err(WriteError::Internal(format!(
            "{what} end at byte {}, layout said {expected}",
            out.len()
        )))
    }
}

fn pad_to(out: &mut Vec<u8>, align: u64) {
    let len = round_up(out.len() as u64, align) as usize;
    out.resize(len, 0);
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
