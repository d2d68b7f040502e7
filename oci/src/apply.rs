//! Applying layer tars, in order, into one merged [`Tree`].
//!
//! Layer semantics (OCI image spec, "Applying Changesets"), as podman/docker apply them:
//!
//! | entry | effect |
//! |---|---|
//! | `DIR/.wh.NAME` | removes `NAME` (and all below it) as left by lower layers |
//! | `DIR/.wh..wh..opq` | removes everything lower layers left in `DIR` |
//! | `DIR/.wh..wh.*` (other) | aufs bookkeeping: ignored |
//! | a directory over a directory | the new metadata (mode, owner, mtime, xattrs) replaces the old; contents merge |
//! | anything else over an existing name | replaces it (a duplicate entry: the later one wins) |
//! | hard link | a second name for the target's inode (target looked up in the merged tree: within or across layers) |
//!
//! Whiteouts apply to lower layers only: a name this layer created stays even if a whiteout
//! for it follows in the same layer (composefs-rs removes it; the spec and containers/storage
//! keep it; layers written by real tools never contain both).
//!
//! Hostile input: leading `/` is stripped (as docker does), `.` components are dropped, a `..`
//! component is refused, a path whose parent is a symlink (or any non-directory) in the merged
//! tree is refused, hard links to directories or to missing targets are refused, sizes, entry
//! counts and the total uncompressed bytes are capped ([`Limits`]). Nothing is ever written to
//! the file system except objects through the [`ObjectSink`].
//!
//! Each layer is applied to a copy of the tree, which replaces the tree only after the layer's
//! blob digest and diff_id checked out: a bad layer leaves the tree as it was. The blob is also
//! hashed in full before any of its content reaches the sink, so a blob that does not match its
//! digest stores nothing.
//!
//! ## Canonical form (composefs OCI convention, composefs-rs 0.9)
//! - Regular files of at most [`INLINE_CONTENT_MAX`] (64) bytes are inline, larger ones
//!   external with backing path `xx/<hex>` of their fs-verity digest.
//! - mtimes are whole seconds (sub-second PAX mtimes are truncated, as composefs-rs does) unless
//!   [`BuildOptions::keep_subsecond_mtime`] is set.
//! - The root directory takes mode, owner, mtime and xattrs from `/usr` when `/usr` is a
//!   directory (composefs-rs `copy_root_metadata_from_usr`). Without `/usr`, the layers' last
//!   root entry (`./`) is used, else `0755 root:root` at mtime 0 (composefs-rs refuses those).
//! - Deliberate difference: a missing parent directory is created (mode 0755, root:root,
//!   mtime 0, as docker does) where composefs-rs refuses the layer.
//! - Regular-file nlink = the number of names the inode has in the merged tree; the first name
//!   in breadth-first, bytewise-sorted order is the primary entry.

use std::collections::HashSet;
use std::io::{self, BufReader, Read};

use cfsgate_image::tree::{
    Content, FileData, Inode, InodeId, Stat, Tree, Xattr, MAX_SYMLINK_LEN, MAX_XATTR_KEY_LEN,
    MAX_XATTR_VALUE_LEN, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG,
};

use crate::digest::BlobHasher;
use crate::error::OciError;
use crate::layout::{ImageSource, VerifyingReader};
use crate::readahead::{self, Counted};
use crate::resolve::{Compression, Layer, ResolvedImage};
use crate::sink::ObjectSink;
use crate::tarstream::{EntryKind, TarEntry, TarError, TarStream};

/// Files up to this many bytes are stored inside the image (composefs-rs `INLINE_CONTENT_MAX`).
pub const INLINE_CONTENT_MAX: u64 = 64;
/// Default cap on the uncompressed bytes of all layers together (a decompression bomb stops here).
pub const DEFAULT_MAX_UNCOMPRESSED_BYTES: u64 = 1 << 40;
/// Default cap on tar headers in one layer (bounds the tree's memory).
pub const DEFAULT_MAX_LAYER_ENTRIES: u64 = 4_000_000;
/// Default cap on inodes in the merged tree (bounds memory; EROFS images this large are absurd).
pub const DEFAULT_MAX_INODES: usize = 8_000_000;

/// Resource limits for one build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most uncompressed bytes of all layers together (default [`DEFAULT_MAX_UNCOMPRESSED_BYTES`]).
    pub max_uncompressed_bytes: u64,
    /// Most tar headers in one layer (default [`DEFAULT_MAX_LAYER_ENTRIES`]).
    pub max_layer_entries: u64,
    /// Most inodes in the merged tree (default [`DEFAULT_MAX_INODES`]).
    pub max_inodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_uncompressed_bytes: DEFAULT_MAX_UNCOMPRESSED_BYTES,
            max_layer_entries: DEFAULT_MAX_LAYER_ENTRIES,
            max_inodes: DEFAULT_MAX_INODES,
        }
    }
}

/// Options of [`build_tree_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// The resource limits of the build.
    pub limits: Limits,
    /// Keep PAX sub-second mtimes (differs from composefs-rs digests when layers carry them).
    pub keep_subsecond_mtime: bool,
}

/// Build the merged tree of an image, storing file contents in `sink`.
pub fn build_tree(image: &ResolvedImage, sink: &dyn ObjectSink) -> Result<Tree, OciError> {
    build_tree_with(image, sink, &BuildOptions::default())
}

/// [`build_tree`] with explicit options.
pub fn build_tree_with(
    image: &ResolvedImage,
    sink: &dyn ObjectSink,
    opts: &BuildOptions,
) -> Result<Tree, OciError> {
    let mut builder = TreeBuilder::new(*opts);
    for (index, layer) in image.layers.iter().enumerate() {
        builder.apply_layer(&image.source, index, layer, sink)?;
    }
    builder.finish()
}

/// Applies layers one at a time (for callers that report progress between layers).
pub struct TreeBuilder {
    tree: Tree,
    opts: BuildOptions,
    /// Metadata of the last root entry (`./`) seen in any layer.
    root_entry: Option<(Stat, Vec<Xattr>)>,
    uncompressed_left: u64,
}

impl TreeBuilder {
    /// A builder holding an empty root directory, with these options.
    pub fn new(opts: BuildOptions) -> Self {
        TreeBuilder {
            tree: Tree::new(default_dir_stat()),
            opts,
            root_entry: None,
            uncompressed_left: opts.limits.max_uncompressed_bytes,
        }
    }

    /// Verify layer `index` of `source` and apply it; on error the tree is unchanged.
    pub fn apply_layer(
        &mut self,
        source: &ImageSource,
        index: usize,
        layer: &Layer,
        sink: &dyn ObjectSink,
    ) -> Result<(), OciError> {
        if let Some(storage) = source.storage() {
            // containers-storage: the tar rebuilt from tar-split and files, hashed in full
            // against the diff_id first, then again as it is applied (files may change between).
            crate::cstorage::verify_layer(storage, index, layer)?;
            let reader = LayerReader::Storage(Box::new(storage.layer_stream(index)?));
            return self.apply_stream(reader, Compression::None, index, layer, sink);
        }
        // Hash the whole blob first: a blob that is not what its digest says reaches nothing.
        source.verify_blob(&layer.digest, layer.size)?;
        let reader = source.stream_blob(&layer.digest, layer.size)?;
        self.apply_stream(
            LayerReader::Blob(reader),
            layer.compression,
            index,
            layer,
            sink,
        )
    }

    /// Apply a layer from an already opened reader (checked again as it is read).
    fn apply_stream(
        &mut self,
        reader: LayerReader,
        compression: Compression,
        index: usize,
        layer: &Layer,
        sink: &dyn ObjectSink,
    ) -> Result<(), OciError> {
        let layer_err = |reason: String| OciError::Layer {
            layer: index,
            digest: layer.digest,
            reason,
        };
        let mut decoder = Decoder::new(reader, compression)
            .map_err(|e| layer_err(format!("starting decompression: {e}")))?;
        let mut staged = self.tree.clone();
        let mut root_entry = self.root_entry.clone();
        // Decompression on a second thread; the diff_id, the tar and its files on this one.
        let (decompressed, (hasher, left, exceeded), result) = std::thread::scope(|scope| {
            let (feed, mut pipe) = readahead::pipe();
            let producer = scope.spawn(|| readahead::produce(&mut decoder, feed));
            let mut counted = Counted {
                inner: &mut pipe,
                hasher: BlobHasher::default(),
                left: self.uncompressed_left,
                exceeded: false,
            };
            let mut stream = TarStream::new(&mut counted, self.opts.limits.max_layer_entries);
            let mut applier = Applier {
                tree: &mut staged,
                sink,
                touched: HashSet::new(),
                root_entry: &mut root_entry,
                opts: &self.opts,
            };
            let result = apply_entries(&mut stream, &mut applier)
                .and_then(|()| stream.drain().map_err(TarError::Io));
            let (hasher, left, exceeded) = (counted.hasher, counted.left, counted.exceeded);
            drop(pipe);
            (producer.join().is_ok(), (hasher, left, exceeded), result)
        });
        if !decompressed {
            return Err(layer_err("the decompression thread panicked".into()));
        }
        if exceeded {
            return Err(OciError::Limit {
                reason: format!(
                    "layer {index} ({}) decompresses past the limit of {} uncompressed bytes for the image",
                    layer.digest, self.opts.limits.max_uncompressed_bytes
                ),
            });
        }
        match result {
            Ok(()) => {}
            Err(TarError::Io(e)) => {
                return Err(layer_err(format!("reading the layer stream: {e}")))
            }
            Err(TarError::Entry { entry, reason }) => {
                return Err(OciError::TarEntry {
                    layer: index,
                    digest: layer.digest,
                    entry,
                    reason,
                })
            }
        }
        let (diff_id, _) = hasher.finish();
        decoder.into_inner().finish()?;
        if diff_id != layer.diff_id {
            return Err(OciError::DiffIdMismatch {
                layer: index,
                digest: layer.digest,
                expected: layer.diff_id,
                actual: diff_id,
            });
        }
        if staged.inodes.len() > self.opts.limits.max_inodes {
            staged = compact(&staged);
            if staged.inodes.len() > self.opts.limits.max_inodes {
                return Err(OciError::Limit {
                    reason: format!("more than {} inodes", self.opts.limits.max_inodes),
                });
            }
        }
        self.tree = staged;
        self.root_entry = root_entry;
        self.uncompressed_left = left;
        Ok(())
    }

    /// Apply a layer given as entries whose regular files are already stored (a zstd:chunked
    /// table of contents, checked by the caller); the same rules as a tar, the same limits; on
    /// error the tree is unchanged. A regular file without content data is an error.
    pub(crate) fn apply_prepared(
        &mut self,
        index: usize,
        layer: &Layer,
        entries: Vec<(TarEntry, Option<FileData>)>,
    ) -> Result<(), OciError> {
        if entries.len() as u64 > self.opts.limits.max_layer_entries {
            return Err(OciError::Limit {
                reason: format!(
                    "layer {index} ({}) has more than {} entries",
                    layer.digest, self.opts.limits.max_layer_entries
                ),
            });
        }
        let mut left = self.uncompressed_left;
        let mut staged = self.tree.clone();
        let mut root_entry = self.root_entry.clone();
        let mut applier = Applier {
            tree: &mut staged,
            sink: &crate::sink::NullSink,
            touched: HashSet::new(),
            root_entry: &mut root_entry,
            opts: &self.opts,
        };
        for (entry, data) in entries {
            let entry_err = |reason: String| OciError::TarEntry {
                layer: index,
                digest: layer.digest,
                entry: String::from_utf8_lossy(&entry.path).into_owned(),
                reason,
            };
            left = left.checked_sub(entry.size).ok_or_else(|| OciError::Limit {
                reason: format!(
                    "layer {index} ({}) holds more than the limit of {} uncompressed bytes for the image",
                    layer.digest, self.opts.limits.max_uncompressed_bytes
                ),
            })?;
            let content = match (entry.kind, data) {
                (EntryKind::Regular, Some(data)) => FileContent::Ready(data),
                (EntryKind::Regular, None) => {
                    return Err(entry_err("no content for a regular file".into()))
                }
                (_, _) => FileContent::Ready(FileData::Inline(Vec::new().into())),
            };
            applier.apply(&entry, content).map_err(|e| match e {
                ApplyError::Io(e) => entry_err(e.to_string()),
                ApplyError::Bad(reason) => entry_err(reason),
            })?;
        }
        if staged.inodes.len() > self.opts.limits.max_inodes {
            staged = compact(&staged);
            if staged.inodes.len() > self.opts.limits.max_inodes {
                return Err(OciError::Limit {
                    reason: format!("more than {} inodes", self.opts.limits.max_inodes),
                });
            }
        }
        self.tree = staged;
        self.root_entry = root_entry;
        self.uncompressed_left = left;
        Ok(())
    }

    /// The canonical merged tree (see the module docs).
    pub fn finish(self) -> Result<Tree, OciError> {
        let mut tree = compact(&self.tree);
        let usr = tree.lookup(InodeId::ROOT, b"usr").map(|e| e.inode);
        let root_meta = match usr {
            Some(id) if tree.inode(id).stat.file_type() == S_IFDIR => {
                let usr = tree.inode(id);
                Some((usr.stat.clone(), usr.xattrs.clone()))
            }
            _ => self.root_entry.clone(),
        };
        if let Some((stat, xattrs)) = root_meta {
            let root = tree.inode_mut(InodeId::ROOT);
            let nlink = root.stat.nlink;
            root.stat = Stat {
                mode: (stat.mode & !S_IFMT) | S_IFDIR,
                nlink,
                rdev: 0,
                ..stat
            };
            root.xattrs = xattrs;
        }
        Ok(tree)
    }
}

fn default_dir_stat() -> Stat {
    Stat {
        mode: S_IFDIR | 0o755,
        nlink: 2,
        uid: 0,
        gid: 0,
        rdev: 0,
        mtime_sec: 0,
        mtime_nsec: 0,
    }
}

/// Where a layer's bytes come from: a blob checked against its digest, or a containers-storage
/// layer rebuilt from its tar-split (checked by its diff_id only).
enum LayerReader {
    Blob(VerifyingReader),
    Storage(Box<crate::cstorage::tarsplit::TarSplitReader>),
}

impl LayerReader {
    fn finish(self) -> Result<(), OciError> {
        match self {
            LayerReader::Blob(reader) => reader.finish(),
            LayerReader::Storage(_) => Ok(()),
        }
    }
}

impl Read for LayerReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            LayerReader::Blob(r) => r.read(buf),
            LayerReader::Storage(r) => r.read(buf),
        }
    }
}

/// The decompressor for a layer.
enum Decoder {
    Plain(LayerReader),
    Gzip(Box<flate2::read::MultiGzDecoder<LayerReader>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, BufReader<LayerReader>>>),
}

impl Decoder {
    fn new(reader: LayerReader, compression: Compression) -> io::Result<Self> {
        Ok(match compression {
            Compression::None => Decoder::Plain(reader),
            Compression::Gzip => Decoder::Gzip(Box::new(flate2::read::MultiGzDecoder::new(reader))),
            Compression::Zstd => Decoder::Zstd(Box::new(zstd::stream::read::Decoder::new(reader)?)),
        })
    }

    fn into_inner(self) -> LayerReader {
        match self {
            Decoder::Plain(r) => r,
            Decoder::Gzip(d) => d.into_inner(),
            Decoder::Zstd(d) => d.finish().into_inner(),
        }
    }
}

impl Read for Decoder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
        }
    }
}

fn apply_entries(stream: &mut TarStream<'_>, applier: &mut Applier<'_>) -> Result<(), TarError> {
    while let Some(entry) = stream.next_entry()? {
        let size = if entry.kind == EntryKind::Regular {
            entry.size
        } else {
            0
        };
        let mut content = stream.content(size);
        applier
            .apply(&entry, FileContent::Stream(&mut content))
            .map_err(|reason| match reason {
                ApplyError::Io(e) => TarError::Io(e),
                ApplyError::Bad(reason) => TarError::Entry {
                    entry: String::from_utf8_lossy(&entry.path).into_owned(),
                    reason,
                },
            })?;
    }
    Ok(())
}

/// A regular file's content as the applier gets it: streamed from the layer into the sink, or
/// already stored and hashed (a partial pull built it from a table of contents).
pub(crate) enum FileContent<'r> {
    Stream(&'r mut dyn Read),
    Ready(FileData),
}

enum ApplyError {
    Io(io::Error),
    Bad(String),
}

fn bad<T>(reason: impl Into<String>) -> Result<T, ApplyError> {
    Err(ApplyError::Bad(reason.into()))
}

/// The path's components after stripping `/` and `.`; `..` is refused.
fn components(path: &[u8]) -> Result<Vec<&[u8]>, ApplyError> {
    let mut out = Vec::new();
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return bad("path has a '..' component"),
            c if !cfsgate_image::tree::valid_name(c) => {
                return bad("path has an invalid component (NUL or longer than 255 bytes)")
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

struct Applier<'a> {
    tree: &'a mut Tree,
    sink: &'a dyn ObjectSink,
    /// (directory, name) pairs this layer created or replaced: whiteouts do not touch them.
    touched: HashSet<(InodeId, Vec<u8>)>,
    root_entry: &'a mut Option<(Stat, Vec<Xattr>)>,
    opts: &'a BuildOptions,
}

impl Applier<'_> {
    /// Walk to the directory `comps`, creating missing ones if `create`; `None` if missing.
    fn walk_dir(&mut self, comps: &[&[u8]], create: bool) -> Result<Option<InodeId>, ApplyError> {
        let mut cur = InodeId::ROOT;
        for (i, comp) in comps.iter().enumerate() {
            let shown = || String::from_utf8_lossy(&comps[..=i].join(&b'/')).into_owned();
            match self.tree.lookup(cur, comp).map(|e| e.inode) {
                Some(id) => match self.tree.inode(id).stat.file_type() {
                    S_IFDIR => cur = id,
                    S_IFLNK => return bad(format!("path goes through the symlink {}", shown())),
                    _ => {
                        return bad(format!(
                            "path goes through {}, which is not a directory",
                            shown()
                        ))
                    }
                },
                None if create => {
                    let inode = Inode {
                        stat: default_dir_stat(),
                        xattrs: Vec::new(),
                        content: Content::Directory(Vec::new()),
                    };
                    let parent = cur;
                    cur = self
                        .tree
                        .add(parent, comp, inode)
                        .map_err(|e| ApplyError::Bad(e.to_string()))?;
                    self.touched.insert((parent, comp.to_vec()));
                }
                None => return Ok(None),
            }
        }
        Ok(Some(cur))
    }

    fn remove(&mut self, dir: InodeId, name: &[u8]) {
        if let Content::Directory(entries) = &mut self.tree.inode_mut(dir).content {
            if let Ok(pos) = entries.binary_search_by(|e| (*e.name).cmp(name)) {
                entries.remove(pos);
            }
        }
    }

    fn apply(&mut self, e: &TarEntry, content: FileContent<'_>) -> Result<(), ApplyError> {
        let comps = components(&e.path)?;
        let stat = self.stat_of(e)?;
        let xattrs = canonical_xattrs(&e.xattrs)?;
        let Some((name, parents)) = comps.split_last() else {
            if e.kind != EntryKind::Directory {
                return bad("the root entry is not a directory");
            }
            *self.root_entry = Some((stat, xattrs));
            return Ok(());
        };
        if let Some(target) = name.strip_prefix(b".wh.") {
            let Some(dir) = self.walk_dir(parents, false)? else {
                return Ok(());
            };
            if target == b".wh..opq" {
                let touched = &self.touched;
                if let Content::Directory(entries) = &mut self.tree.inode_mut(dir).content {
                    entries.retain(|d| touched.contains(&(dir, d.name.to_vec())));
                }
            } else if !target.starts_with(b".wh.")
                && !self.touched.contains(&(dir, target.to_vec()))
            {
                if !cfsgate_image::tree::valid_name(target) {
                    return bad("whiteout of an invalid name");
                }
                self.remove(dir, target);
            }
            return Ok(());
        }
        let dir = self
            .walk_dir(parents, true)?
            .ok_or_else(|| ApplyError::Bad("parent directory missing".into()))?;
        let existing = self.tree.lookup(dir, name).map(|d| d.inode);
        self.touched.insert((dir, name.to_vec()));
        let content = match e.kind {
            EntryKind::HardLink => {
                let target_comps = components(&e.link)?;
                let Some((tname, tparents)) = target_comps.split_last() else {
                    return bad("hard link to the root directory");
                };
                let target = self
                    .walk_dir(tparents, false)?
                    .and_then(|d| self.tree.lookup(d, tname).map(|x| x.inode))
                    .ok_or_else(|| {
                        ApplyError::Bad(format!(
                            "hard link target {:?} does not exist",
                            String::from_utf8_lossy(&e.link)
                        ))
                    })?;
                if self.tree.inode(target).stat.file_type() == S_IFDIR {
                    return bad(format!(
                        "hard link to the directory {:?}",
                        String::from_utf8_lossy(&e.link)
                    ));
                }
                if existing == Some(target) {
                    return Ok(());
                }
                if existing.is_some() {
                    self.remove(dir, name);
                }
                return self
                    .tree
                    .link(dir, name, target, true)
                    .map_err(|x| ApplyError::Bad(x.to_string()));
            }
            EntryKind::Directory => {
                if let Some(id) =
                    existing.filter(|&id| self.tree.inode(id).stat.file_type() == S_IFDIR)
                {
                    let inode = self.tree.inode_mut(id);
                    inode.stat = Stat {
                        nlink: inode.stat.nlink,
                        ..stat
                    };
                    inode.xattrs = xattrs;
                    return Ok(());
                }
                Content::Directory(Vec::new())
            }
            EntryKind::Regular => Content::Regular(match content {
                FileContent::Stream(reader) => self.store(e.size, reader)?,
                FileContent::Ready(data) => data,
            }),
            EntryKind::Symlink => {
                if e.link.is_empty() || e.link.len() > MAX_SYMLINK_LEN {
                    return bad(format!(
                        "symlink target of {} bytes (allowed: 1 to {MAX_SYMLINK_LEN})",
                        e.link.len()
                    ));
                }
                if e.link.contains(&0) {
                    return bad("symlink target contains NUL");
                }
                Content::Symlink(e.link.clone().into())
            }
            EntryKind::CharDevice | EntryKind::BlockDevice | EntryKind::Fifo => {
                Content::Special { size: 0 }
            }
        };
        if existing.is_some() {
            self.remove(dir, name);
        }
        self.tree
            .add(
                dir,
                name,
                Inode {
                    stat,
                    xattrs,
                    content,
                },
            )
            .map_err(|x| ApplyError::Bad(x.to_string()))?;
        Ok(())
    }

    fn store(&mut self, size: u64, content: &mut dyn Read) -> Result<FileData, ApplyError> {
        if size <= INLINE_CONTENT_MAX {
            let mut data = vec![0u8; size as usize];
            content.read_exact(&mut data).map_err(ApplyError::Io)?;
            return Ok(FileData::Inline(data.into()));
        }
        let (digest, stored) = self.sink.store(content).map_err(ApplyError::Io)?;
        if stored != size {
            return Err(ApplyError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("file content ends after {stored} of {size} bytes"),
            )));
        }
        Ok(FileData::External {
            size,
            digest: Some(digest),
            backing: Some(digest.object_path().into_bytes().into()),
        })
    }

    fn stat_of(&self, e: &TarEntry) -> Result<Stat, ApplyError> {
        let kind = match e.kind {
            EntryKind::Regular | EntryKind::HardLink => S_IFREG,
            EntryKind::Symlink => S_IFLNK,
            EntryKind::CharDevice => S_IFCHR,
            EntryKind::BlockDevice => S_IFBLK,
            EntryKind::Directory => S_IFDIR,
            EntryKind::Fifo => S_IFIFO,
        };
        let rdev = if matches!(e.kind, EntryKind::CharDevice | EntryKind::BlockDevice) {
            makedev(e.dev_major, e.dev_minor)
        } else {
            0
        };
        Ok(Stat {
            mode: kind | e.mode,
            nlink: 1,
            uid: e.uid,
            gid: e.gid,
            rdev,
            mtime_sec: e.mtime_sec,
            mtime_nsec: if self.opts.keep_subsecond_mtime {
                e.mtime_nsec
            } else {
                0
            },
        })
    }
}

/// Linux `makedev` (glibc encoding), as composefs dump files and EROFS store `rdev`.
pub fn makedev(major: u32, minor: u32) -> u64 {
    let (major, minor) = (u64::from(major), u64::from(minor));
    ((major & 0xffff_f000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff)
}

/// Sorted, unique (the later record wins), checked against the EROFS limits.
fn canonical_xattrs(raw: &[(Vec<u8>, Vec<u8>)]) -> Result<Vec<Xattr>, ApplyError> {
    let mut inode = Inode {
        stat: Stat::default(),
        xattrs: Vec::new(),
        content: Content::Special { size: 0 },
    };
    for (key, value) in raw {
        if key.is_empty() || key.len() > MAX_XATTR_KEY_LEN || key.contains(&0) {
            return bad(format!(
                "xattr name {:?} is empty, has NUL or is longer than {MAX_XATTR_KEY_LEN} bytes",
                String::from_utf8_lossy(key)
            ));
        }
        if value.len() > MAX_XATTR_VALUE_LEN {
            return bad(format!(
                "xattr {} has a {}-byte value (limit {MAX_XATTR_VALUE_LEN})",
                String::from_utf8_lossy(key),
                value.len()
            ));
        }
        inode.set_xattr(key, value);
    }
    Ok(inode.xattrs)
}

/// A copy of `tree` holding only reachable inodes, renumbered in breadth-first order, where the
/// first name of each inode (in that order) is its primary entry and nlink counts the names.
pub fn compact(tree: &Tree) -> Tree {
    let old_root = tree.root();
    let mut out = Tree::new(old_root.stat.clone());
    out.inodes[0].xattrs = old_root.xattrs.clone();
    let mut map: std::collections::HashMap<InodeId, InodeId> = std::collections::HashMap::new();
    map.insert(InodeId::ROOT, InodeId::ROOT);
    let mut queue = std::collections::VecDeque::from([(InodeId::ROOT, InodeId::ROOT)]);
    let mut names: Vec<u32> = vec![1];
    while let Some((old_dir, new_dir)) = queue.pop_front() {
        let Some(entries) = tree.inode(old_dir).entries() else {
            continue;
        };
        for entry in entries {
            if let Some(&new_id) = map.get(&entry.inode) {
                // Names are valid and unique in a valid tree; a failure would be a bug upstream.
                if out.link(new_dir, &entry.name, new_id, true).is_ok() {
                    names[new_id.index()] += 1;
                }
                continue;
            }
            let old = tree.inode(entry.inode);
            let content = match &old.content {
                Content::Directory(_) => Content::Directory(Vec::new()),
                other => other.clone(),
            };
            let inode = Inode {
                stat: old.stat.clone(),
                xattrs: old.xattrs.clone(),
                content,
            };
            if let Ok(new_id) = out.add(new_dir, &entry.name, inode) {
                map.insert(entry.inode, new_id);
                names.push(1);
                if old.stat.file_type() == S_IFDIR {
                    queue.push_back((entry.inode, new_id));
                }
            }
        }
    }
    // nlink: names for non-directories, 2 + subdirectories for directories.
    let subdirs: Vec<u32> = out
        .inodes
        .iter()
        .map(|i| {
            i.entries().map_or(0, |es| {
                es.iter()
                    .filter(|e| !e.hardlink)
                    .filter(|e| out.inode(e.inode).stat.file_type() == S_IFDIR)
                    .count() as u32
            })
        })
        .collect();
    for (i, inode) in out.inodes.iter_mut().enumerate() {
        inode.stat.nlink = if inode.stat.file_type() == S_IFDIR {
            2 + subdirs[i]
        } else {
            names[i]
        };
    }
    out
}
