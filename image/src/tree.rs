//! The in-memory filesystem tree: what a composefs image describes.
//!
//! Every producer (dump parser, directory walker, OCI layer applier, EROFS reader) builds a
//! [`Tree`]; every consumer (EROFS writer, dump writer, store, mounter checks) reads one.
//!
//! Inodes live in an arena ([`Tree::inodes`]); directories hold [`DirEntry`]s that point at
//! inodes by [`InodeId`], kept sorted bytewise by name (the order `strcmp` gives, which is the
//! order of EROFS directory entries). A hard link is a second entry pointing at the same inode,
//! marked `hardlink: true`; the entry with `hardlink: false` is the primary one and decides where
//! the inode sits in breadth-first order (as in mkcomposefs). The root is always [`InodeId::ROOT`].
//!
//! The tree stores what the user wrote: user xattrs are *not* escaped here, whiteouts are char
//! devices 0/0, and no `trusted.overlay.*` metadata is added. The EROFS writer applies those
//! composefs rewrites on its own copy, and the reader undoes them.

use crate::fsverity::FsVeritySha256;

/// File-type bits of `st_mode`.
pub const S_IFMT: u32 = 0o170000;
/// File type of a unix socket.
pub const S_IFSOCK: u32 = 0o140000;
/// File type of a symbolic link.
pub const S_IFLNK: u32 = 0o120000;
/// File type of a regular file.
pub const S_IFREG: u32 = 0o100000;
/// File type of a block device.
pub const S_IFBLK: u32 = 0o060000;
/// File type of a directory.
pub const S_IFDIR: u32 = 0o040000;
/// File type of a character device.
pub const S_IFCHR: u32 = 0o020000;
/// File type of a named pipe.
pub const S_IFIFO: u32 = 0o010000;

/// Longest file name EROFS (and Linux) allows.
pub const MAX_NAME_LEN: usize = 255;
/// Longest symlink target composefs writes: the target must fit in one 4096-byte block.
pub const MAX_SYMLINK_LEN: usize = 4095;
/// Longest xattr key (the kernel's XATTR_NAME_MAX).
pub const MAX_XATTR_KEY_LEN: usize = 255;
/// Longest xattr value EROFS can store (value_size is 16 bits).
pub const MAX_XATTR_VALUE_LEN: usize = 65535;

/// An index into [`Tree::inodes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InodeId(pub u32);

impl InodeId {
    /// The root directory.
    pub const ROOT: InodeId = InodeId(0);

    /// The arena index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Inode metadata, as `stat` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Stat {
    /// Full `st_mode`: file type bits and permission bits.
    pub mode: u32,
    /// Link count as the source gave it (the writer recomputes it for directories).
    pub nlink: u32,
    /// Owner user id (`st_uid`).
    pub uid: u32,
    /// Owner group id (`st_gid`).
    pub gid: u32,
    /// Device number of a char/block device (raw `dev_t` as in a dump file), else 0.
    pub rdev: u64,
    /// Modification time, whole seconds since the Unix epoch (may be negative).
    pub mtime_sec: i64,
    /// Nanoseconds part of the modification time (0..1e9).
    pub mtime_nsec: u32,
}

impl Stat {
    /// The `S_IFMT` bits.
    pub fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }
}

/// One extended attribute, exactly as the user sees it (no composefs escaping).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Xattr {
    /// Full name including its namespace (`user.`, `trusted.`, `security.`, `system.`), as raw
    /// bytes.
    pub key: Box<[u8]>,
    /// Raw value bytes (EROFS allows up to [`MAX_XATTR_VALUE_LEN`]).
    pub value: Box<[u8]>,
}

/// A regular file's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileData {
    /// Stored inside the image.
    Inline(Box<[u8]>),
    /// Stored outside the image, in the object store (or nowhere, for a sparse placeholder).
    External {
        /// The file size in bytes `stat` reports.
        size: u64,
        /// The fs-verity digest of the content, when known.
        digest: Option<FsVeritySha256>,
        /// The backing path relative to an object directory (usually `xx/yyyy…`).
        backing: Option<Box<[u8]>>,
    },
}

impl FileData {
    /// The file size in bytes.
    pub fn size(&self) -> u64 {
        match self {
            FileData::Inline(data) => data.len() as u64,
            FileData::External { size, .. } => *size,
        }
    }
}

/// One name in a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's file name (raw bytes, valid per [`valid_name`]).
    pub name: Box<[u8]>,
    /// The inode the name refers to.
    pub inode: InodeId,
    /// An extra name for an inode whose primary entry is elsewhere (a hard link).
    pub hardlink: bool,
}

/// What an inode is, beyond its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// Entries sorted bytewise by name, without `.` and `..`.
    Directory(Vec<DirEntry>),
    /// A regular file.
    Regular(FileData),
    /// A symbolic link; the target as raw bytes (at most [`MAX_SYMLINK_LEN`]).
    Symlink(Box<[u8]>),
    /// Char or block device, fifo or socket (the type is in `stat.mode`). `size` is whatever the
    /// source said (normally 0); it is kept so a dump round-trips.
    Special {
        /// The size the source recorded for the special file.
        size: u64,
    },
}

/// One inode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inode {
    /// Its `stat` metadata.
    pub stat: Stat,
    /// Sorted bytewise by key; keys unique.
    pub xattrs: Vec<Xattr>,
    /// Its type-specific content.
    pub content: Content,
}

impl Inode {
    /// The size `stat` would report.
    pub fn size(&self) -> u64 {
        match &self.content {
            Content::Directory(_) => 0,
            Content::Regular(data) => data.size(),
            Content::Symlink(target) => target.len() as u64,
            Content::Special { size } => *size,
        }
    }

    /// The directory entries, if this is a directory.
    pub fn entries(&self) -> Option<&[DirEntry]> {
        match &self.content {
            Content::Directory(entries) => Some(entries),
            _ => None,
        }
    }

    /// Look up an xattr value by key.
    pub fn xattr(&self, key: &[u8]) -> Option<&[u8]> {
        self.xattrs
            .binary_search_by(|x| (*x.key).cmp(key))
            .ok()
            .map(|i| &*self.xattrs[i].value)
    }

    /// Set (insert or replace) an xattr, keeping the list sorted.
    pub fn set_xattr(&mut self, key: &[u8], value: &[u8]) {
        match self.xattrs.binary_search_by(|x| (*x.key).cmp(key)) {
            Ok(i) => self.xattrs[i].value = value.into(),
            Err(i) => self.xattrs.insert(
                i,
                Xattr {
                    key: key.into(),
                    value: value.into(),
                },
            ),
        }
    }

    /// Remove an xattr; returns whether it was present.
    pub fn remove_xattr(&mut self, key: &[u8]) -> bool {
        match self.xattrs.binary_search_by(|x| (*x.key).cmp(key)) {
            Ok(i) => {
                self.xattrs.remove(i);
                true
            }
            Err(_) => false,
        }
    }
}

/// Errors from building a tree.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    /// A path component that must be a directory is not one (the path is given).
    #[error("{0} is not a directory")]
    NotADirectory(String),
    /// A name to add is already present in its directory (the path is given).
    #[error("{0} already exists")]
    Exists(String),
    /// A file name cannot be a directory entry (the name is given, lossily decoded).
    #[error("invalid file name {0:?}: empty, '.', '..', longer than 255 bytes, or containing '/' or NUL")]
    BadName(String),
    /// The arena would exceed `u32::MAX` inodes, the range of [`InodeId`].
    #[error("too many inodes (the limit is {})", u32::MAX)]
    TooManyInodes,
}

/// Whether `name` can be a directory entry name.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name != b"."
        && name != b".."
        && name.len() <= MAX_NAME_LEN
        && !name.iter().any(|&b| b == b'/' || b == 0)
}

/// A whole filesystem tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tree {
    /// The inode arena; index 0 is the root directory.
    pub inodes: Vec<Inode>,
}

impl Tree {
    /// A tree with just a root directory with this metadata (its file type is forced to dir).
    pub fn new(mut root: Stat) -> Self {
        root.mode = (root.mode & !S_IFMT) | S_IFDIR;
        Tree {
            inodes: vec![Inode {
                stat: root,
                xattrs: Vec::new(),
                content: Content::Directory(Vec::new()),
            }],
        }
    }

    /// The inode `id` refers to. Panics if `id` is not from this tree.
    pub fn inode(&self, id: InodeId) -> &Inode {
        &self.inodes[id.index()]
    }

    /// The inode `id` refers to, mutably. Panics if `id` is not from this tree.
    pub fn inode_mut(&mut self, id: InodeId) -> &mut Inode {
        &mut self.inodes[id.index()]
    }

    /// The root directory inode.
    pub fn root(&self) -> &Inode {
        &self.inodes[0]
    }

    /// Add an inode to the arena without linking it anywhere.
    pub fn push_inode(&mut self, inode: Inode) -> Result<InodeId, TreeError> {
        let id = u32::try_from(self.inodes.len()).map_err(|_| TreeError::TooManyInodes)?;
        self.inodes.push(inode);
        Ok(InodeId(id))
    }

    /// Insert a name into directory `dir`, keeping entries sorted. Fails on duplicates.
    pub fn link(
        &mut self,
        dir: InodeId,
        name: &[u8],
        inode: InodeId,
        hardlink: bool,
    ) -> Result<(), TreeError> {
        if !valid_name(name) {
            return Err(TreeError::BadName(
                String::from_utf8_lossy(name).into_owned(),
            ));
        }
        let Content::Directory(entries) = &mut self.inodes[dir.index()].content else {
            return Err(TreeError::NotADirectory(format!("inode {}", dir.0)));
        };
        match entries.binary_search_by(|e| (*e.name).cmp(name)) {
            Ok(_) => Err(TreeError::Exists(
                String::from_utf8_lossy(name).into_owned(),
            )),
            Err(pos) => {
                entries.insert(
                    pos,
                    DirEntry {
                        name: name.into(),
                        inode,
                        hardlink,
                    },
                );
                Ok(())
            }
        }
    }

    /// Add a new inode under `dir` as its primary entry.
    pub fn add(&mut self, dir: InodeId, name: &[u8], inode: Inode) -> Result<InodeId, TreeError> {
        if !valid_name(name) {
            return Err(TreeError::BadName(
                String::from_utf8_lossy(name).into_owned(),
            ));
        }
        let id = self.push_inode(inode)?;
        if let Err(e) = self.link(dir, name, id, false) {
            self.inodes.pop();
            return Err(e);
        }
        Ok(id)
    }

    /// Check that `name` may be appended to directory `dir`: valid, and sorting after every
    /// name already there.
    fn check_append(&self, dir: InodeId, name: &[u8]) -> Result<(), TreeError> {
        if !valid_name(name) {
            return Err(TreeError::BadName(
                String::from_utf8_lossy(name).into_owned(),
            ));
        }
        match self.inodes.get(dir.index()).map(|i| &i.content) {
            Some(Content::Directory(entries)) => {
                if entries.last().is_some_and(|last| *last.name >= *name) {
                    return Err(TreeError::Exists(
                        String::from_utf8_lossy(name).into_owned(),
                    ));
                }
                Ok(())
            }
            _ => Err(TreeError::NotADirectory(format!("inode {}", dir.0))),
        }
    }

    fn push_entry(&mut self, dir: InodeId, entry: DirEntry) {
        if let Content::Directory(entries) = &mut self.inodes[dir.index()].content {
            entries.push(entry);
        }
    }

    /// Add a new inode under `dir` as its primary entry, where `name` sorts after every name
    /// already there. Producers that list a directory in sorted order use this instead of
    /// [`add`](Self::add): no search, no insertion, and the name is moved in, not copied. An
    /// out-of-order or repeated name is refused as [`TreeError::Exists`].
    pub fn append(
        &mut self,
        dir: InodeId,
        name: Box<[u8]>,
        inode: Inode,
    ) -> Result<InodeId, TreeError> {
        self.check_append(dir, &name)?;
        let id = self.push_inode(inode)?;
        self.push_entry(
            dir,
            DirEntry {
                name,
                inode: id,
                hardlink: false,
            },
        );
        Ok(id)
    }

    /// Add a hard link to `inode` under `dir`, with the ordering rule of [`append`](Self::append).
    pub fn append_link(
        &mut self,
        dir: InodeId,
        name: Box<[u8]>,
        inode: InodeId,
    ) -> Result<(), TreeError> {
        self.check_append(dir, &name)?;
        self.push_entry(
            dir,
            DirEntry {
                name,
                inode,
                hardlink: true,
            },
        );
        Ok(())
    }

    /// Find the entry `name` in directory `dir`.
    pub fn lookup(&self, dir: InodeId, name: &[u8]) -> Option<&DirEntry> {
        let entries = self.inodes[dir.index()].entries()?;
        entries
            .binary_search_by(|e| (*e.name).cmp(name))
            .ok()
            .map(|i| &entries[i])
    }

    /// Resolve an absolute or relative path (`/`-separated, no symlinks followed).
    pub fn lookup_path(&self, path: &[u8]) -> Option<InodeId> {
        let mut cur = InodeId::ROOT;
        for comp in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            cur = self.lookup(cur, comp)?.inode;
        }
        Some(cur)
    }

    /// Inodes in breadth-first order of their primary entries, starting at the root, with the
    /// path of each (root = `/`). This is the order of inodes in an image.
    pub fn bfs(&self) -> Vec<(InodeId, Vec<u8>)> {
        let mut order = vec![(InodeId::ROOT, b"/".to_vec())];
        let mut next = 0;
        while next < order.len() {
            let (id, path) = order[next].clone();
            next += 1;
            if let Some(entries) = self.inodes[id.index()].entries() {
                for e in entries.iter().filter(|e| !e.hardlink) {
                    let mut child = path.clone();
                    if child.len() > 1 {
                        child.push(b'/');
                    }
                    child.extend_from_slice(&e.name);
                    order.push((e.inode, child));
                }
            }
        }
        order
    }

    /// The inodes in the order of [`Tree::bfs`], without their paths: the writer's walks, which
    /// need a path only to name a file in an error (then [`Tree::path_of`] finds it). A path
    /// per inode was an allocation and a copy of its parent's path for each of 100k files.
    pub fn bfs_ids(&self) -> Vec<InodeId> {
        let mut order = Vec::with_capacity(self.inodes.len());
        order.push(InodeId::ROOT);
        let mut next = 0;
        while let Some(&id) = order.get(next) {
            next += 1;
            if let Some(entries) = self.inodes[id.index()].entries() {
                order.extend(entries.iter().filter(|e| !e.hardlink).map(|e| e.inode));
            }
        }
        order
    }

    /// The path of `id` as [`Tree::bfs`] gives it (`/` for the root); empty if the walk does
    /// not reach it. A whole walk: for error messages, not for hot paths.
    pub fn path_of(&self, id: InodeId) -> Vec<u8> {
        self.bfs()
            .into_iter()
            .find(|(i, _)| *i == id)
            .map(|(_, path)| path)
            .unwrap_or_default()
    }

    /// The same tree with inodes renumbered in breadth-first order (unreachable ones dropped).
    /// Two trees describe the same filesystem exactly when their canonical forms are equal,
    /// whatever order their producers created inodes in.
    pub fn canonical(&self) -> Tree {
        let order = self.bfs();
        let mut new_id = vec![u32::MAX; self.inodes.len()];
        for (i, (id, _)) in order.iter().enumerate() {
            new_id[id.index()] = i as u32;
        }
        let inodes = order
            .iter()
            .map(|(id, _)| {
                let mut inode = self.inode(*id).clone();
                if let Content::Directory(entries) = &mut inode.content {
                    for e in entries.iter_mut() {
                        e.inode = InodeId(new_id.get(e.inode.index()).copied().unwrap_or(u32::MAX));
                    }
                }
                inode
            })
            .collect();
        Tree { inodes }
    }

    /// Make each inode's primary entry the earliest one (in breadth-first walk order) that
    /// gives the same inode order. An image cannot tell a hard link from its primary when both
    /// sit where the inode's position is still next (e.g. two names in one directory), so
    /// readers choose this way; trees compared after a round trip are settled first.
    pub fn settle_primaries(&mut self) {
        let order: Vec<InodeId> = self.bfs().into_iter().map(|(id, _)| id).collect();
        let mut placed = vec![false; self.inodes.len()];
        placed[0] = true;
        let mut next = 1;
        for &dir in &order {
            let Content::Directory(entries) = &mut self.inodes[dir.index()].content else {
                continue;
            };
            for e in entries.iter_mut() {
                let is_next = order.get(next) == Some(&e.inode);
                if is_next && !placed[e.inode.index()] {
                    placed[e.inode.index()] = true;
                    e.hardlink = false;
                    next += 1;
                } else {
                    e.hardlink = true;
                }
            }
        }
    }
}
