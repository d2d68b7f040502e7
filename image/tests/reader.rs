//! Tests of the hardened EROFS reader (`cfsgate_image::erofs::reader`).
//!
//! 1. Oracle images: trees written by the independent `composefs` 0.9.4 crate (V0 format, which
//!    matches upstream mkcomposefs for trees without whiteouts, big files or late hard-link
//!    primaries) must read back as the tree we built by hand.
//! 2. Writer round trip: cfsgate's own writer output must read back as the tree written, and
//!    for every upstream conformance dump, dump -> writer -> reader gives the parsed dump.
//! 3. Hostile images: targeted corruptions must fail with the right error; truncations, random
//!    byte flips and proptest mutations must return (Ok or Err) quickly and never panic.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cfsgate_image::dump::{self, ParseMode};
use cfsgate_image::erofs::reader::{read_image, referenced_objects, ObjectRef, ReadError};
use cfsgate_image::erofs::writer::{write_image, WriteOptions};
use cfsgate_image::fsverity::digest_bytes;
use cfsgate_image::tree::*;
use cfsgate_image::FsVeritySha256;

use composefs::dumpfile::dumpfile_to_validated_filesystem;
use composefs::erofs::format::FormatVersion;
use composefs::erofs::writer::mkfs_erofs_versioned;
use composefs::fsverity::Sha256HashValue;
use sha2::{Digest, Sha256};

#[path = "reader/hostile.rs"]
mod hostile;
#[path = "reader/oracle.rs"]
mod oracle;
#[path = "reader/round_trip.rs"]
mod round_trip;

/// A hang guard, not a speed check: small images read in milliseconds; this bound only catches
/// a reader that loops.
const MAX_READ_TIME: Duration = Duration::from_secs(30);

/// A stable, human-readable description of a tree, independent of arena order: one line per
/// entry in breadth-first order, hard links shown as `@` + the primary path.
fn canon(tree: &Tree) -> Vec<String> {
    let order = tree.bfs();
    let primary: HashMap<InodeId, String> = order
        .iter()
        .map(|(id, path)| (*id, String::from_utf8_lossy(path).into_owned()))
        .collect();
    let describe = |id: InodeId| describe(tree, id);
    let mut out = vec![format!("/ {}", describe(InodeId::ROOT))];
    for (id, path) in &order {
        for e in tree.inode(*id).entries().unwrap_or_default() {
            let mut p = path.clone();
            if p.len() > 1 {
                p.push(b'/');
            }
            p.extend_from_slice(&e.name);
            let p = String::from_utf8_lossy(&p).into_owned();
            if e.hardlink {
                out.push(format!(
                    "{p} @{}",
                    primary.get(&e.inode).map_or("?", |s| s.as_str())
                ));
            } else {
                out.push(format!("{p} {}", describe(e.inode)));
            }
        }
    }
    out
}

/// One inode's metadata, xattrs and content as text.
fn describe(tree: &Tree, id: InodeId) -> String {
    let inode = tree.inode(id);
    let content = match &inode.content {
        Content::Directory(_) => "dir".to_string(),
        Content::Regular(FileData::Inline(d)) => format!("inline {}", hex::encode(d)),
        Content::Regular(FileData::External {
            size,
            digest,
            backing,
        }) => {
            format!(
                "external {size} {digest:?} {:?}",
                backing.as_deref().map(String::from_utf8_lossy)
            )
        }
        Content::Symlink(t) => format!("symlink {}", String::from_utf8_lossy(t)),
        Content::Special { size } => format!("special {size}"),
    };
    let xattrs: Vec<String> = inode
        .xattrs
        .iter()
        .map(|x| {
            format!(
                "{}={}",
                String::from_utf8_lossy(&x.key),
                hex::encode(&x.value)
            )
        })
        .collect();
    format!("{:?} {content} [{}]", inode.stat, xattrs.join(" "))
}

/// Like [`canon`] but blind to which entry of a hard-linked inode is the primary one: each
/// inode is listed once with all its paths. (Entries to one inode with no other inode placed
/// between them in breadth-first order give the same image, so a reader cannot tell them apart.)
fn canon_ignoring_primaries(tree: &Tree) -> Vec<String> {
    let mut paths: HashMap<InodeId, Vec<String>> =
        HashMap::from([(InodeId::ROOT, vec!["/".to_string()])]);
    let mut queue = vec![(InodeId::ROOT, Vec::new())];
    while let Some((dir, prefix)) = queue.pop() {
        for e in tree.inode(dir).entries().unwrap_or_default() {
            let mut p: Vec<u8> = prefix.clone();
            p.push(b'/');
            p.extend_from_slice(&e.name);
            paths
                .entry(e.inode)
                .or_default()
                .push(String::from_utf8_lossy(&p).into_owned());
            if tree.inode(e.inode).entries().is_some() {
                queue.push((e.inode, p));
            }
        }
    }
    let mut out: Vec<String> = paths
        .into_iter()
        .map(|(id, mut ps)| {
            ps.sort();
            format!("{ps:?} {}", describe(tree, id))
        })
        .collect();
    out.sort();
    out
}

fn stat(mode: u32, nlink: u32, uid: u32, gid: u32, mtime: i64) -> Stat {
    Stat {
        mode,
        nlink,
        uid,
        gid,
        rdev: 0,
        mtime_sec: mtime,
        mtime_nsec: 0,
    }
}

fn inode(stat: Stat, content: Content, xattrs: &[(&str, &[u8])]) -> Inode {
    let mut i = Inode {
        stat,
        xattrs: Vec::new(),
        content,
    };
    for (k, v) in xattrs {
        i.set_xattr(k.as_bytes(), v);
    }
    i
}

/// Dump-format escaping of arbitrary bytes (everything hex-escaped: always valid).
fn esc(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\x{b:02x}")).collect()
}

/// A rich tree (no whiteouts, files < 4 GiB, hard-link primaries first in BFS order), as a
/// hand-built [`Tree`] and as the dump text the oracle writer reads.
fn rich_tree() -> (Tree, String) {
    let big_content = b"not stored in the image".repeat(1000);
    let big_digest = digest_bytes(&big_content);
    let medium: Vec<u8> = (0..500u32).map(|i| (i * 7 % 251) as u8).collect();
    let selinux: &[u8] = b"system_u:object_r:usr_t:s0";

    let mut t = Tree::new(stat(S_IFDIR | 0o755, 3, 0, 0, 1000));
    t.inode_mut(InodeId::ROOT).set_xattr(b"user.root", b"yes");
    let small = t
        .add(
            InodeId::ROOT,
            b"aaa-small",
            inode(
                stat(S_IFREG | 0o644, 2, 1, 2, 1000),
                Content::Regular(FileData::Inline((*b"abcd").into())),
                &[
                    ("security.selinux", selinux),
                    ("trusted.overlay.custom", b"escaped"),
                ],
            ),
        )
        .unwrap();
    t.add(
        InodeId::ROOT,
        b"big",
        inode(
            Stat {
                mtime_nsec: 5,
                ..stat(S_IFREG | 0o600, 1, 70000, 70001, 2000)
            },
            Content::Regular(FileData::External {
                size: big_content.len() as u64,
                digest: Some(big_digest),
                backing: Some(big_digest.object_path().into_bytes().into()),
            }),
            &[("security.selinux", selinux)],
        ),
    )
    .unwrap();
    let mut dev = stat(S_IFCHR | 0o620, 1, 0, 5, 1000);
    dev.rdev = 0x0501;
    t.add(
        InodeId::ROOT,
        b"dev-tty",
        inode(dev, Content::Special { size: 0 }, &[]),
    )
    .unwrap();
    t.add(
        InodeId::ROOT,
        b"empty",
        inode(
            stat(S_IFREG | 0o644, 1, 0, 0, 1000),
            Content::Regular(FileData::Inline([].into())),
            &[],
        ),
    )
    .unwrap();
    t.add(
        InodeId::ROOT,
        b"medium",
        inode(
            stat(S_IFREG | 0o644, 1, 0, 0, 1000),
            Content::Regular(FileData::Inline(medium.clone().into())),
            &[("user.a", b"1"), ("user.b", &[0u8; 300])],
        ),
    )
    .unwrap();
    let sub = t
        .add(
            InodeId::ROOT,
            b"subdir",
            inode(
                stat(S_IFDIR | 0o700, 2, 0, 0, 1000),
                Content::Directory(Vec::new()),
                &[("security.selinux", selinux)],
            ),
        )
        .unwrap();
    t.link(sub, b"hardlink", small, true).unwrap();
    let long_target = vec![b't'; 1000];
    t.add(
        sub,
        b"longlink",
        inode(
            stat(S_IFLNK | 0o777, 1, 0, 0, 1000),
            Content::Symlink(long_target.clone().into()),
            &[],
        ),
    )
    .unwrap();
    t.add(
        InodeId::ROOT,
        b"sym",
        inode(
            stat(S_IFLNK | 0o777, 1, 0, 0, 1000),
            Content::Symlink((*b"/target").into()),
            &[],
        ),
    )
    .unwrap();

    let dump = format!(
        "/ 0 40755 3 0 0 0 1000.0 - - - user.root=yes\n\
         /aaa-small 4 100644 2 1 2 0 1000.0 - abcd - security.selinux={sel} trusted.overlay.custom=escaped\n\
         /big {bigsize} 100600 1 70000 70001 0 2000.5 {bigpath} - {bigdigest} security.selinux={sel}\n\
         /dev-tty 0 20620 1 0 5 1281 1000.0 - - -\n\
         /empty 0 100644 1 0 0 0 1000.0 - - -\n\
         /medium 500 100644 1 0 0 0 1000.0 - {medium} - user.a=1 user.b={zeros}\n\
         /subdir 0 40700 2 0 0 0 1000.0 - - - security.selinux={sel}\n\
         /subdir/hardlink 0 @100644 - - - - 0.0 /aaa-small - -\n\
         /subdir/longlink 1000 120777 1 0 0 0 1000.0 {target} - -\n\
         /sym 7 120777 1 0 0 0 1000.0 /target - -\n",
        sel = esc(selinux),
        bigsize = big_content.len(),
        bigpath = big_digest.object_path(),
        bigdigest = big_digest.to_hex(),
        medium = esc(&medium),
        zeros = esc(&[0u8; 300]),
        target = String::from_utf8(long_target).unwrap(),
    );
    (t, dump)
}

/// The oracle: the `composefs` crate's mkcomposefs-compatible writer.
fn oracle_image(dump: &str) -> Vec<u8> {
    let fs = match dumpfile_to_validated_filesystem::<Sha256HashValue>(dump) {
        Ok(fs) => fs,
        Err(e) => panic!("oracle refuses the dump: {:.300}", format!("{e:#}")),
    };
    mkfs_erofs_versioned(&fs, FormatVersion::V0).into_vec()
}

fn rich_image() -> Vec<u8> {
    oracle_image(&rich_tree().1)
}

/// The tree as the image can hold it: what the writer stores lossily (documented in the format
/// notes) normalised the same way — a 16-bit mode, directory nlink = 2 + subdirectories, device/fifo/socket
/// size 0, and an empty external file is an empty file (it gets no overlay xattrs).
fn as_stored(tree: &Tree) -> Tree {
    let mut t = tree.clone();
    for i in 0..t.inodes.len() {
        let subdirs = t.inodes[i].entries().map(|es| {
            es.iter()
                .filter(|e| !e.hardlink && tree.inode(e.inode).stat.file_type() == S_IFDIR)
                .count() as u32
        });
        let inode = &mut t.inodes[i];
        inode.stat.mode &= 0xffff; // EROFS stores a 16-bit mode
        if let Some(subdirs) = subdirs {
            inode.stat.nlink = 2 + subdirs;
        }
        match &mut inode.content {
            Content::Special { size } => *size = 0,
            Content::Regular(data @ FileData::External { size: 0, .. }) => {
                *data = FileData::Inline([].into())
            }
            _ => {}
        }
    }
    t
}

/// Read with a time limit; returns the result.
fn timed_read(bytes: &[u8]) -> Result<cfsgate_image::erofs::reader::Image, ReadError> {
    let start = Instant::now();
    let res = read_image(bytes);
    assert!(
        start.elapsed() < MAX_READ_TIME,
        "read took {:?}",
        start.elapsed()
    );
    res
}
