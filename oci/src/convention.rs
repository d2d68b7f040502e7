//! Seal conventions: the two ways of turning an image's merged layers into the composefs image
//! whose fs-verity digest a seal label (`containers.composefs.fsverity`) names.
//!
//! | convention | who writes it | tree | EROFS format |
//! |---|---|---|---|
//! | [`Convention::Mkcomposefs`] | cfsgate, composefs's C `mkcomposefs` of the unpacked tree | the merged layers as they are: every xattr, the root as the layers give it | version 0 (raised to 1 only when the image needs it) |
//! | [`Convention::ComposefsRs`] | composefs-rs 0.9 (`composefs-oci` `seal`, defaults) | the OCI transform below | version 1 (`composefs_version` 1 always) |
//!
//! The composefs-rs OCI transform (`FileSystem::transform_for_oci` with its default
//! `XattrFiltering::AllowlistOnly`, documented in composefs-rs `doc/oci.md`), applied to the
//! merged tree, in this order:
//! 1. the root directory takes `/usr`'s mode, owner, group, mtime and xattrs (the merged tree
//!    already does, see `apply.rs`; repeated here so the transform stands alone; layer tars rarely
//!    carry a root entry and runtimes ignore it; composefs-rs refuses an image without a `/usr`
//!    directory, and so does this convention);
//! 2. `/run`, when present, is emptied and takes `/usr`'s mtime (it is a tmpfs at run time);
//! 3. every inode keeps only the `security.capability` xattr (host labels such as
//!    `security.selinux` and `user.*` xattrs are dropped);
//! 4. inodes no longer reachable are dropped and link counts recounted.
//!
//! A seal check builds the tree once (the expensive part: every file's content hashed) and writes
//! the image under each convention from it, so accepting both costs one more metadata write.

use cfsgate_image::erofs::writer::{write_image, WriteOptions};
use cfsgate_image::fsverity::digest_bytes;
use cfsgate_image::tree::{Content, Tree, S_IFDIR, S_IFMT};
use cfsgate_image::FsVeritySha256;

use crate::apply::compact;
use crate::error::OciError;

/// The merged tree of an image and the composefs image written from it.
pub struct BuiltImage {
    /// The merged file-system tree of all layers.
    pub tree: Tree,
    /// The EROFS image bytes (default write options, byte-identical to mkcomposefs).
    pub image: Vec<u8>,
    /// The fs-verity digest of `image`: the composefs image id.
    pub digest: FsVeritySha256,
}

/// The one xattr composefs-rs keeps in container images (its `CONTAINER_XATTR_ALLOWLIST`).
pub const COMPOSEFS_RS_XATTR_ALLOWLIST: &[&[u8]] = &[b"security.capability"];

/// How the composefs image of an image's layers is made; see the module docs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Convention {
    /// cfsgate's own and C mkcomposefs's: the merged tree unchanged, format version 0.
    #[default]
    Mkcomposefs,
    /// composefs-rs 0.9's OCI sealing defaults: the OCI transform, format version 1.
    ComposefsRs,
}

impl Convention {
    /// Every convention, in the order a seal check tries them.
    pub const ALL: [Convention; 2] = [Convention::Mkcomposefs, Convention::ComposefsRs];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Convention::Mkcomposefs => "mkcomposefs",
            Convention::ComposefsRs => "composefs-rs",
        }
    }

    /// The EROFS write options of this convention.
    pub fn write_options(self) -> WriteOptions {
        match self {
            Convention::Mkcomposefs => WriteOptions::default(),
            Convention::ComposefsRs => WriteOptions {
                min_version: 1,
                max_version: 1,
            },
        }
    }

    /// The composefs image (bytes and fs-verity digest) of `tree` under this convention.
    pub fn image_of(self, tree: &Tree) -> Result<(Vec<u8>, FsVeritySha256), OciError> {
        let bytes = match self {
            Convention::Mkcomposefs => write(tree, self)?,
            Convention::ComposefsRs => write(&composefs_rs_transform(tree)?, self)?,
        };
        let digest = digest_bytes(&bytes);
        Ok((bytes, digest))
    }
}

impl std::fmt::Display for Convention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Convention {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Convention::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| format!("unknown seal convention {s:?}: mkcomposefs or composefs-rs"))
    }
}

fn write(tree: &Tree, convention: Convention) -> Result<Vec<u8>, OciError> {
    write_image(tree, &convention.write_options()).map_err(|e| OciError::Write(e.to_string()))
}

/// composefs-rs's `transform_for_oci` with its default xattr filtering; see the module docs.
pub fn composefs_rs_transform(tree: &Tree) -> Result<Tree, OciError> {
    let no_usr = || {
        OciError::Write(
        "the composefs-rs convention needs a /usr directory (its root takes /usr's metadata); this image has none".into(),
    )
    };
    let usr_id = tree.lookup_path(b"usr").ok_or_else(no_usr)?;
    let usr = tree.inode(usr_id);
    if usr.stat.mode & S_IFMT != S_IFDIR {
        return Err(no_usr());
    }
    let usr_stat = usr.stat.clone();
    let usr_xattrs = usr.xattrs.clone();
    let mut out = tree.clone();
    let root = out.inode_mut(cfsgate_image::InodeId::ROOT);
    root.stat.mode = usr_stat.mode;
    root.stat.uid = usr_stat.uid;
    root.stat.gid = usr_stat.gid;
    root.stat.mtime_sec = usr_stat.mtime_sec;
    root.stat.mtime_nsec = usr_stat.mtime_nsec;
    root.xattrs = usr_xattrs;
    if let Some(run_id) = out.lookup_path(b"run") {
        let run = out.inode_mut(run_id);
        if let Content::Directory(entries) = &mut run.content {
            entries.clear();
            run.stat.mtime_sec = usr_stat.mtime_sec;
            run.stat.mtime_nsec = usr_stat.mtime_nsec;
        }
    }
    for inode in &mut out.inodes {
        inode
            .xattrs
            .retain(|x| COMPOSEFS_RS_XATTR_ALLOWLIST.contains(&&*x.key));
    }
    Ok(compact(&out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfsgate_image::tree::{Inode, Stat, S_IFREG};
    use cfsgate_image::FileData;

    fn dir(mode: u32, mtime: i64) -> Inode {
        Inode {
            stat: Stat {
                mode: S_IFDIR | mode,
                nlink: 2,
                mtime_sec: mtime,
                ..Stat::default()
            },
            xattrs: Vec::new(),
            content: Content::Directory(Vec::new()),
        }
    }

    fn file(data: &[u8]) -> Inode {
        Inode {
            stat: Stat {
                mode: S_IFREG | 0o644,
                nlink: 1,
                ..Stat::default()
            },
            xattrs: Vec::new(),
            content: Content::Regular(FileData::Inline(data.into())),
        }
    }

    #[test]
    fn the_transform_takes_usr_metadata_empties_run_and_keeps_only_capabilities() {
        let mut tree = Tree::new(Stat {
            mode: S_IFDIR | 0o700,
            ..Stat::default()
        });
        let mut usr = dir(0o755, 1234);
        usr.set_xattr(b"user.note", b"x");
        let usr = tree.add(cfsgate_image::InodeId::ROOT, b"usr", usr).unwrap();
        let mut bin = file(b"elf");
        bin.set_xattr(b"security.capability", b"cap");
        bin.set_xattr(b"security.selinux", b"label");
        tree.add(usr, b"ping", bin).unwrap();
        let run = tree
            .add(cfsgate_image::InodeId::ROOT, b"run", dir(0o755, 99))
            .unwrap();
        tree.add(run, b"stub", file(b"left by RUN --mount"))
            .unwrap();

        let out = composefs_rs_transform(&tree).unwrap();
        let root = out.root();
        assert_eq!(root.stat.mode, S_IFDIR | 0o755);
        assert_eq!(root.stat.mtime_sec, 1234);
        assert!(
            root.xattrs.is_empty(),
            "user.* is filtered from the root too"
        );
        let run = out.inode(out.lookup_path(b"run").unwrap());
        assert_eq!(run.entries().map(<[_]>::len), Some(0));
        assert_eq!(run.stat.mtime_sec, 1234);
        let ping = out.inode(out.lookup_path(b"usr/ping").unwrap());
        let keys: Vec<&[u8]> = ping.xattrs.iter().map(|x| &*x.key).collect();
        assert_eq!(keys, vec![&b"security.capability"[..]]);
        assert_eq!(out.inodes.len(), 4, "the /run stub is dropped");
    }

    #[test]
    fn an_image_without_usr_has_no_composefs_rs_seal() {
        let tree = Tree::new(Stat::default());
        let err = composefs_rs_transform(&tree).unwrap_err();
        assert!(err.to_string().contains("/usr"), "{err}");
    }

    #[test]
    fn names_parse_back() {
        for c in Convention::ALL {
            assert_eq!(c.name().parse::<Convention>().unwrap(), c);
        }
        assert!("v1".parse::<Convention>().is_err());
    }
}
