//! The composefs rewrites mkcomposefs applies to a tree before writing it as EROFS.
//!
//! The image is the lower layer of an overlayfs mount, so the tree is rewritten into what
//! overlayfs needs to see, in place on the tree the writer was given to own (the writer copies a
//! borrowed tree first):
//!
//! | what | becomes |
//! |---|---|
//! | a user xattr `trusted.overlay.X` | `trusted.overlay.overlay.X` (overlayfs unescapes it) |
//! | a regular file of size > 0 stored outside the image | + `trusted.overlay.metacopy` (empty, or `00 24 00 01` + fs-verity digest) and, with a backing path, `trusted.overlay.redirect` = `/` + path |
//! | a whiteout (char device 0/0) | a regular file (same permission bits and size) with `trusted.overlay.overlay.whiteout` and `user.overlay.whiteout`; its parent gets `trusted.overlay.overlay.whiteouts` and `user.overlay.whiteouts`, and from format version 1 also `trusted.overlay.overlay.opaque=x` and `user.overlay.opaque=x` |
//! | the root | + `trusted.overlay.opaque=y`, and 256 real whiteouts `00`…`ff` (char 0/0, mode 0644, the root's owner, mtime and `security.selinux`) unless those names exist |
//!
//! The format version starts at `min_version` and is raised to 1 only if `max_version` allows it
//! and the tree contains a whiteout (version 1 changed how whiteouts are written).

use super::error::WriteError;
use super::format::{
    METACOPY_HEADER, XATTR_ESCAPED_OVERLAY_PREFIX, XATTR_OVERLAY_METACOPY, XATTR_OVERLAY_OPAQUE,
    XATTR_OVERLAY_REDIRECT, XATTR_TRUSTED_OVERLAY_PREFIX,
};
use crate::tree::{Content, FileData, Inode, InodeId, Stat, Tree, Xattr, S_IFCHR, S_IFMT, S_IFREG};

/// Highest composefs format version this writer knows (mkcomposefs `LCFS_VERSION_MAX`).
pub const MAX_FORMAT_VERSION: u32 = 1;

use crate::erofs::format::{
    XATTR_ESCAPED_OVERLAY_OPAQUE as OPAQUE_ESCAPED,
    XATTR_ESCAPED_OVERLAY_WHITEOUT as WHITEOUT_ESCAPED,
    XATTR_ESCAPED_OVERLAY_WHITEOUTS as WHITEOUTS_ESCAPED, XATTR_USER_OVERLAY_OPAQUE as OPAQUE_USER,
    XATTR_USER_OVERLAY_WHITEOUT as WHITEOUT_USER, XATTR_USER_OVERLAY_WHITEOUTS as WHITEOUTS_USER,
};
const SELINUX: &[u8] = b"security.selinux";

/// Whether an inode is an overlayfs whiteout: a char device with device number 0/0.
pub fn is_whiteout(inode: &Inode) -> bool {
    inode.stat.file_type() == S_IFCHR && inode.stat.rdev == 0
}

/// The format version mkcomposefs would choose for this tree.
pub fn choose_version(tree: &Tree, min_version: u32, max_version: u32) -> Result<u32, WriteError> {
    if min_version > MAX_FORMAT_VERSION || max_version > MAX_FORMAT_VERSION {
        return Err(WriteError::Version {
            min_version,
            max_version,
            supported: MAX_FORMAT_VERSION,
        });
    }
    let max_version = max_version.max(min_version);
    if min_version < 1
        && max_version >= 1
        && tree.bfs_ids().iter().any(|id| is_whiteout(tree.inode(*id)))
    {
        return Ok(1);
    }
    Ok(min_version)
}

/// Rename `trusted.overlay.X` to `trusted.overlay.overlay.X`, keeping the list sorted.
fn escape_overlay_xattrs(inode: &mut Inode) {
    if !inode
        .xattrs
        .iter()
        .any(|x| x.key.starts_with(XATTR_TRUSTED_OVERLAY_PREFIX))
    {
        return;
    }
    for x in &mut inode.xattrs {
        if let Some(rest) = x.key.strip_prefix(XATTR_TRUSTED_OVERLAY_PREFIX) {
            let mut key = XATTR_ESCAPED_OVERLAY_PREFIX.to_vec();
            key.extend_from_slice(rest);
            x.key = key.into();
        }
    }
    inode.xattrs.sort();
}

/// Set `key` to an already built `value` (one allocation fewer than [`Inode::set_xattr`],
/// which copies it), keeping the list sorted.
fn set_xattr_boxed(inode: &mut Inode, key: &[u8], value: Box<[u8]>) {
    match inode.xattrs.binary_search_by(|x| (*x.key).cmp(key)) {
        Ok(i) => inode.xattrs[i].value = value,
        Err(i) => inode.xattrs.insert(
            i,
            Xattr {
                key: key.into(),
                value,
            },
        ),
    }
}

/// The rewrites of one inode that do not involve its parent; an error is what is reserved
/// (the caller names the file: its path is only looked up then).
fn rewrite_inode(inode: &mut Inode) -> Result<(), &'static str> {
    escape_overlay_xattrs(inode);
    // An empty regular file carrying both escaped whiteout markers would read back as a
    // whiteout: the image could not say which it was.
    if inode.stat.file_type() == S_IFREG
        && inode.size() == 0
        && inode.xattr(WHITEOUT_ESCAPED).is_some()
        && inode.xattr(WHITEOUT_USER).is_some()
    {
        return Err("trusted.overlay.whiteout and user.overlay.whiteout on an empty file");
    }
    if let Content::Regular(FileData::External {
        size,
        digest,
        backing,
    }) = &inode.content
    {
        if *size > 0 {
            // Built in place, at their final size: two of these per file of a 100k-file tree.
            let metacopy: Box<[u8]> = match digest {
                Some(d) => METACOPY_HEADER.iter().chain(&d.0).copied().collect(),
                None => Box::default(),
            };
            let redirect: Option<Box<[u8]>> = backing
                .as_ref()
                .filter(|b| !b.is_empty())
                .map(|b| b"/".iter().chain(b.iter()).copied().collect());
            inode
                .xattrs
                .reserve_exact(1 + usize::from(redirect.is_some()));
            set_xattr_boxed(inode, XATTR_OVERLAY_METACOPY, metacopy);
            if let Some(redirect) = redirect {
                set_xattr_boxed(inode, XATTR_OVERLAY_REDIRECT, redirect);
            }
        }
    }
    if is_whiteout(inode) {
        // An empty regular file: a size given to a device in a dump is not kept.
        inode.stat.mode = S_IFREG | (inode.stat.mode & !S_IFMT);
        inode.stat.rdev = 0;
        inode.content = Content::Regular(FileData::Inline(Box::default()));
        inode.set_xattr(WHITEOUT_ESCAPED, b"");
        inode.set_xattr(WHITEOUT_USER, b"");
    }
    Ok(())
}

fn reserved(path: &[u8], what: &str) -> WriteError {
    WriteError::Invalid {
        path: String::from_utf8_lossy(path).into_owned(),
        reason: format!(
            "{what}: composefs uses these xattrs to mark whiteouts, so the image could not keep \
             the user's value apart from its own"
        ),
    }
}

/// The markers a directory holding whiteouts gets, per format version.
fn whiteout_markers(version: u32) -> &'static [(&'static [u8], &'static [u8])] {
    const V0: &[(&[u8], &[u8])] = &[(WHITEOUTS_ESCAPED, b""), (WHITEOUTS_USER, b"")];
    const V1: &[(&[u8], &[u8])] = &[
        (WHITEOUTS_ESCAPED, b""),
        (WHITEOUTS_USER, b""),
        (OPAQUE_ESCAPED, b"x"),
        (OPAQUE_USER, b"x"),
    ];
    if version >= 1 {
        V1
    } else {
        V0
    }
}

/// The `k`th entry of directory `dir`: (its inode, whether it is a hard link).
fn entry_at(tree: &Tree, dir: InodeId, k: usize) -> Option<(InodeId, bool)> {
    let entry = tree.inode(dir).entries()?.get(k)?;
    Some((entry.inode, entry.hardlink))
}

/// Apply every composefs rewrite to `tree` for format `version`, in place (no copy of a tree
/// of 100k inodes; an inode is rewritten once, when the walk reaches its primary entry).
pub fn rewrite_tree(mut tree: Tree, version: u32) -> Result<Tree, WriteError> {
    let root = InodeId::ROOT;
    rewrite_inode(&mut tree.inodes[0]).map_err(|what| reserved(b"/", what))?;
    for dir in tree.bfs_ids() {
        let mut marked = false;
        let mut k = 0;
        while let Some((child, hardlink)) = entry_at(&tree, dir, k) {
            k += 1;
            if hardlink {
                continue;
            }
            let was_whiteout = is_whiteout(tree.inode(child));
            rewrite_inode(tree.inode_mut(child))
                .map_err(|what| reserved(&tree.path_of(child), what))?;
            if was_whiteout && !marked {
                marked = true;
                for (key, value) in whiteout_markers(version) {
                    if tree.inode(dir).xattr(key).is_some() {
                        let key = String::from_utf8_lossy(key);
                        return Err(reserved(
                            &tree.path_of(dir),
                            &format!("xattr {key} on a directory holding whiteouts"),
                        ));
                    }
                    tree.inode_mut(dir).set_xattr(key, value);
                }
            }
        }
    }

    tree.inode_mut(root).set_xattr(XATTR_OVERLAY_OPAQUE, b"y");
    add_root_whiteouts(&mut tree)?;
    Ok(tree)
}

/// Add the 256 whiteouts `00`..`ff` to the root: overlayfs then never looks up a name of the
/// object store's fan-out directories through the image.
fn add_root_whiteouts(tree: &mut Tree) -> Result<(), WriteError> {
    let root = tree.root().stat.clone();
    let selinux = tree.root().xattr(SELINUX).map(|v| v.to_vec());
    for i in 0..=255u8 {
        let name = format!("{i:02x}");
        if tree.lookup(InodeId::ROOT, name.as_bytes()).is_some() {
            continue;
        }
        let mut whiteout = Inode {
            stat: Stat {
                mode: S_IFCHR | 0o644,
                nlink: 1,
                uid: root.uid,
                gid: root.gid,
                rdev: 0,
                mtime_sec: root.mtime_sec,
                mtime_nsec: root.mtime_nsec,
            },
            xattrs: Vec::new(),
            content: Content::Special { size: 0 },
        };
        if let Some(value) = &selinux {
            whiteout.xattrs.push(Xattr {
                key: SELINUX.into(),
                value: value.clone().into(),
            });
        }
        tree.add(InodeId::ROOT, name.as_bytes(), whiteout)
            .map_err(|e| WriteError::Invalid {
                path: format!("/{name}"),
                reason: e.to_string(),
            })?;
    }
    Ok(())
}
