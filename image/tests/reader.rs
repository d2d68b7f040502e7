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
use cfsgate_image::Sha256Digest;

use composefs::dumpfile::dumpfile_to_validated_filesystem;
use composefs::erofs::format::FormatVersion;
use composefs::erofs::writer::mkfs_erofs_versioned;
use composefs::fsverity::Sha256HashValue;
use sha2::{Digest, Sha256};

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

#[test]
fn oracle_image_reads_back_as_the_tree() {
    let (tree, dump) = rich_tree();
    let image = read_image(&oracle_image(&dump)).expect("valid image");
    assert_eq!(canon(&image.tree), canon(&tree));
    assert_eq!(image.composefs_version, 0);
    assert!(!image.has_acl);
    // 10 user inodes (one hard link) + 256 root whiteout stubs.
    assert_eq!(image.inode_count, 9 + 256);
    assert_eq!(image.build_time, (1000, 0));
    assert_eq!(image.tree.inodes.len(), 9);
}

#[test]
fn oracle_v1_header_version_is_reported() {
    let fs =
        dumpfile_to_validated_filesystem::<Sha256HashValue>(&rich_tree().1).expect("oracle parses");
    let image = read_image(&mkfs_erofs_versioned(&fs, FormatVersion::V1)).expect("valid image");
    assert_eq!(image.composefs_version, 1);
    assert_eq!(canon(&image.tree), canon(&rich_tree().0));
}

#[test]
fn acl_flag_is_reported() {
    let dump = "/ 0 40755 2 0 0 0 1.0 - - - system.posix_acl_access=\\x02\\x00\\x00\\x00\n";
    let image = read_image(&oracle_image(dump)).expect("valid image");
    assert!(image.has_acl);
    assert_eq!(image.tree.root().xattrs.len(), 1);
}

#[test]
fn large_directory_spanning_blocks_reads_back() {
    let mut dump = String::from("/ 0 40755 2 0 0 0 1.0 - - -\n");
    let mut names: Vec<String> = (0..600)
        .map(|i| format!("file-with-a-longish-name-{i:05}"))
        .collect();
    names.sort();
    for n in &names {
        dump.push_str(&format!("/{n} 1 100644 1 0 0 0 1.0 - x -\n"));
    }
    let image = read_image(&oracle_image(&dump)).expect("valid image");
    let root = image.tree.root().entries().unwrap();
    let got: Vec<String> = root
        .iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect();
    assert_eq!(got, names);
}

#[test]
fn referenced_objects_are_sorted_and_deduplicated() {
    let d1 = digest_bytes(b"one");
    let d2 = digest_bytes(b"two");
    let mut dump = String::from("/ 0 40755 2 0 0 0 1.0 - - -\n");
    for (name, d) in [("a", d2), ("b", d1), ("c", d2)] {
        dump.push_str(&format!(
            "/{name} 3 100644 1 0 0 0 1.0 {} - {}\n",
            d.object_path(),
            d.to_hex()
        ));
    }
    let image = read_image(&oracle_image(&dump)).expect("valid image");
    let mut want = vec![
        ObjectRef {
            backing: d1.object_path().into_bytes().into(),
            digest: Some(d1),
        },
        ObjectRef {
            backing: d2.object_path().into_bytes().into(),
            digest: Some(d2),
        },
    ];
    want.sort();
    assert_eq!(referenced_objects(&image.tree), want);
    assert_eq!(image.objects(), want);
}

// ---------------------------------------------------------------------------------------------
// Round trip through cfsgate's own writer: every conformance dump.

/// Inputs upstream reads only in its lenient mode.
const LENIENT: [&str; 3] = [
    "no-newline.dump",
    "longlink.dump",
    "honggfuzz-longlink-unterminated.dump",
];

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance")
}

/// Every conformance dump that mkcomposefs turned into an image: (path, dump text, options,
/// sha256 of the image mkcomposefs wrote).
fn conformance_dumps() -> Vec<(PathBuf, Vec<u8>, WriteOptions, String)> {
    let mut out = Vec::new();
    for sub in ["composefs", "generated"] {
        let dir = conformance_dir().join(sub);
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let Some(input) = name.strip_suffix(".sha256") else {
                continue;
            };
            let path = dir.join(input);
            let Ok(mut raw) = fs::read(&path) else {
                continue;
            }; // shipped without its input
               // Upstream keeps some inputs as git symlinks, stored here as a file holding the
               // target's name (special_v1.dump -> special.dump).
            if let Some(target) = std::str::from_utf8(&raw)
                .ok()
                .filter(|t| !t.contains('\n') && !t.contains('/'))
            {
                if let Ok(t) = fs::read(dir.join(target)) {
                    raw = t;
                }
            }
            let text = if input.ends_with(".gz") {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&raw[..])
                    .read_to_end(&mut out)
                    .expect("gunzip");
                out
            } else {
                raw
            };
            let mut opts = WriteOptions::default();
            if let Ok(v) = fs::read_to_string(dir.join(format!("{input}.version"))) {
                let v: u32 = v.trim().parse().expect("version file holds a number");
                opts = WriteOptions {
                    min_version: v,
                    max_version: v,
                };
            }
            let sha = fs::read_to_string(dir.join(&name)).expect("sha256 file")[..64].to_string();
            out.push((path, text, opts, sha));
        }
    }
    out
}

#[test]
fn conformance_dumps_round_trip_through_writer_and_reader() {
    let dumps = conformance_dumps();
    assert!(
        dumps.len() >= 70,
        "expected the whole corpus, found {}",
        dumps.len()
    );
    let mut failures = Vec::new();
    let (mut identical_to_mkcomposefs, mut same_primaries) = (0, 0);
    for (path, text, opts, sha) in &dumps {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mode = if LENIENT.contains(&name.as_str()) {
            ParseMode::Lenient
        } else {
            ParseMode::Strict
        };
        // Upstream's lenient list misses some inputs without a final newline: fall back.
        let tree = dump::parse(BufReader::new(&text[..]), mode)
            .or_else(|_| dump::parse(BufReader::new(&text[..]), ParseMode::Lenient))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let bytes = match write_image(&tree, opts) {
            Ok(b) => b,
            Err(e) => {
                failures.push(format!("{name}: writer: {e}"));
                continue;
            }
        };
        if hex::encode(Sha256::digest(&bytes)) == *sha {
            identical_to_mkcomposefs += 1;
        }
        let stored = as_stored(&tree);
        match timed_read(&bytes) {
            Ok(image) => {
                let (got, want) = (
                    canon_ignoring_primaries(&image.tree),
                    canon_ignoring_primaries(&stored),
                );
                if got != want {
                    let first = got.iter().zip(&want).find(|(g, w)| g != w).map(|(g, w)| {
                        let common = g.bytes().zip(w.bytes()).take_while(|(a, b)| a == b).count();
                        format!(
                            "at char {common}: {:.300} | {:.300}",
                            &g[common.saturating_sub(40)..],
                            &w[common.saturating_sub(40)..]
                        )
                    });
                    failures.push(format!(
                        "{name}: tree differs (lens {} vs {}): {first:?}",
                        got.len(),
                        want.len()
                    ));
                } else if canon(&image.tree) == canon(&stored) {
                    if dump_text(&image.tree) != dump_text(&stored) {
                        failures.push(format!("{name}: dump of the read tree differs"));
                    }
                    same_primaries += 1;
                }
                // The primaries the reader chose must place every inode where it was: writing
                // the read tree again gives the same bytes.
                match write_image(&image.tree, opts) {
                    Ok(again) if again == bytes => {}
                    Ok(_) => failures.push(format!(
                        "{name}: writing the read tree gives different bytes"
                    )),
                    Err(e) => failures.push(format!("{name}: writing the read tree: {e}")),
                }
                let want_version = u32::from(
                    opts.min_version >= 1 || has_whiteout(&tree) && opts.max_version >= 1,
                );
                if image.composefs_version != want_version {
                    failures.push(format!(
                        "{name}: composefs_version {} (want {want_version})",
                        image.composefs_version
                    ));
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fail:\n{}",
        failures.len(),
        dumps.len(),
        failures.join("\n")
    );
    // Most of the corpus must be read from images byte-identical to what mkcomposefs wrote.
    assert!(
        identical_to_mkcomposefs * 10 >= dumps.len() * 9,
        "only {identical_to_mkcomposefs} images match mkcomposefs"
    );
    // Dumps may pick either of two equivalent hard-link primaries; most pick the first.
    assert!(
        same_primaries * 10 >= dumps.len() * 9,
        "only {same_primaries} trees have the dump's primaries"
    );
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

fn dump_text(tree: &Tree) -> Vec<u8> {
    let mut out = Vec::new();
    dump::write(tree, &mut out).expect("dump writes to memory");
    out
}

fn has_whiteout(tree: &Tree) -> bool {
    tree.inodes
        .iter()
        .any(|i| i.stat.file_type() == S_IFCHR && i.stat.rdev == 0)
}

#[test]
fn whiteouts_round_trip_with_parent_markers_removed() {
    let dump = "/ 0 40755 3 0 0 0 5.0 - - -\n\
                /d 0 40755 2 0 0 0 5.0 - - - user.keep=1\n\
                /d/gone 0 20600 1 0 0 0 5.0 - - -\n\
                /00 0 20644 1 0 0 0 5.0 - - -\n";
    let tree =
        dump::parse(BufReader::new(dump.as_bytes()), ParseMode::Strict).expect("dump parses");
    for max_version in [0, 1] {
        let bytes = write_image(
            &tree,
            &WriteOptions {
                min_version: 0,
                max_version,
            },
        )
        .expect("writer");
        let image = read_image(&bytes).expect("reads");
        assert_eq!(image.composefs_version, max_version);
        assert_eq!(
            canon(&image.tree),
            canon(&as_stored(&tree)),
            "max_version {max_version}"
        );
        assert_eq!(dump_text(&image.tree), dump_text(&as_stored(&tree)));
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile images.

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

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn expect_err(bytes: &[u8], what: &str) -> ReadError {
    match timed_read(bytes) {
        Ok(_) => panic!("{what}: corrupted image was accepted"),
        Err(e) => e,
    }
}

/// The innermost error (under the path/nid wrappers).
fn root_cause(e: &ReadError) -> &ReadError {
    match e {
        ReadError::InInode { source, .. } => root_cause(source),
        other => other,
    }
}

const SB: usize = 1024;
const ROOT_INODE: usize = 1152;

#[test]
fn bad_magics_are_refused() {
    let good = rich_image();
    let mut b = good.clone();
    b[0] ^= 1;
    assert!(matches!(
        expect_err(&b, "composefs magic"),
        ReadError::BadComposefsMagic { .. }
    ));
    let mut b = good.clone();
    b[SB + 3] ^= 0x80;
    assert!(matches!(
        expect_err(&b, "erofs magic"),
        ReadError::BadErofsMagic { .. }
    ));
    let mut b = good.clone();
    put_u32(&mut b, 4, 2);
    assert!(matches!(
        expect_err(&b, "header version"),
        ReadError::UnsupportedHeader {
            field: "version",
            ..
        }
    ));
    let mut b = good.clone();
    put_u32(&mut b, 12, 7);
    assert!(matches!(
        expect_err(&b, "composefs_version"),
        ReadError::UnsupportedHeader {
            field: "composefs_version",
            ..
        }
    ));
    let mut b = good.clone();
    put_u32(&mut b, 8, 0x10);
    assert!(matches!(
        expect_err(&b, "flags"),
        ReadError::UnsupportedHeader { field: "flags", .. }
    ));
}

#[test]
fn bad_superblock_fields_are_refused() {
    let good = rich_image();
    let mut b = good.clone();
    b[SB + 12] = 9;
    assert!(matches!(
        expect_err(&b, "blkszbits"),
        ReadError::UnsupportedSuperblock {
            field: "blkszbits",
            ..
        }
    ));
    let mut b = good.clone();
    put_u32(&mut b, SB + 80, 0x1);
    assert!(matches!(
        expect_err(&b, "incompat"),
        ReadError::UnsupportedSuperblock {
            field: "feature_incompat",
            ..
        }
    ));
    let mut b = good.clone();
    put_u32(&mut b, SB + 36, 0xffff_ffff);
    assert!(matches!(
        expect_err(&b, "blocks"),
        ReadError::OutOfRange { .. }
    ));
    // Root nid far outside the file.
    let mut b = good.clone();
    put_u16(&mut b, SB + 14, 0xfff0);
    assert!(matches!(
        root_cause(&expect_err(&b, "root nid")),
        ReadError::OutOfRange { .. }
    ));
    // Meta block address pushing every inode outside the file.
    let mut b = good.clone();
    put_u32(&mut b, SB + 40, 0x00ff_ffff);
    assert!(matches!(
        root_cause(&expect_err(&b, "meta_blkaddr")),
        ReadError::OutOfRange { .. }
    ));
    // Inode count absurd for the file size, and merely wrong.
    let mut b = good.clone();
    put_u64(&mut b, SB + 16, u64::MAX);
    assert!(matches!(
        expect_err(&b, "inos huge"),
        ReadError::InodeCountMismatch { .. }
    ));
    let mut b = good.clone();
    put_u64(&mut b, SB + 16, 3);
    assert!(matches!(
        expect_err(&b, "inos small"),
        ReadError::LimitExceeded { .. }
    ));
}

#[test]
fn bad_root_inode_fields_are_refused() {
    let good = rich_image();
    // Compressed layout.
    let mut b = good.clone();
    put_u16(&mut b, ROOT_INODE, 1 << 1);
    assert!(matches!(
        root_cause(&expect_err(&b, "layout")),
        ReadError::BadInode { .. }
    ));
    // Unknown format bit.
    let mut b = good.clone();
    b[ROOT_INODE + 1] |= 0x80;
    assert!(matches!(
        root_cause(&expect_err(&b, "format bits")),
        ReadError::BadInode { .. }
    ));
    // Xattr count overrunning the inode and its block.
    let mut b = good.clone();
    put_u16(&mut b, ROOT_INODE + 2, 0xffff);
    expect_err(&b, "xattr icount");
    // Root becomes a regular file.
    let mut b = good.clone();
    put_u16(&mut b, ROOT_INODE + 4, (S_IFREG | 0o755) as u16);
    expect_err(&b, "root type");
    // Directory size far beyond the file.
    let mut b = good.clone();
    put_u32(&mut b, ROOT_INODE + 8, 0x7fff_ffff);
    expect_err(&b, "dir size");
    // Block address outside the file (the root directory spills into blocks: 256 stubs).
    let mut b = good.clone();
    put_u32(&mut b, ROOT_INODE + 16, 0x7fff_ffff);
    assert!(matches!(
        root_cause(&expect_err(&b, "blkaddr")),
        ReadError::OutOfRange { .. }
    ));
}

/// Byte offset of the first dirent block/tail of the directory whose `.` is `dot_nid` and
/// whose `..` is `parent_nid`: found by scanning for the two records, independent of the reader.
fn find_dir_data(img: &[u8], dot_nid: Option<u64>, parent_nid: u64) -> usize {
    let rec = |at: usize| {
        let nid = u64::from_le_bytes(img[at..at + 8].try_into().unwrap());
        let nameoff = u16::from_le_bytes([img[at + 8], img[at + 9]]) as usize;
        (nid, nameoff, img[at + 10], img[at + 11])
    };
    let mut at = 0;
    while at + 24 <= img.len() {
        let (n1, off1, t1, r1) = rec(at);
        let (n2, _, t2, r2) = rec(at + 12);
        if (t1, r1, t2, r2) == (2, 0, 2, 0)
            && off1 >= 24
            && off1 % 12 == 0
            && dot_nid.map_or(n1 != parent_nid, |d| n1 == d)
            && n2 == parent_nid
            && img.get(at + off1..at + off1 + 3) == Some(b"...")
        {
            return at;
        }
        at += 4;
    }
    panic!("directory data not found");
}

#[test]
fn directory_loops_are_refused() {
    let good = rich_image();
    // In /subdir's data ('.' = subdir, '..' = root 36), point "hardlink" at the root.
    let sub = find_dir_data(&good, None, 36);
    let count = u16::from_le_bytes([good[sub + 8], good[sub + 9]]) as usize / 12;
    let hl = (0..count)
        .map(|i| sub + i * 12)
        .find(|&r| {
            let off = u16::from_le_bytes([good[r + 8], good[r + 9]]) as usize;
            good[sub + off..].starts_with(b"hardlink")
        })
        .expect("hardlink dirent");
    let mut b = good.clone();
    put_u64(&mut b, hl, 36);
    b[hl + 10] = 2; // FT_DIR, so only the loop check can catch it
    assert!(
        matches!(
            expect_err(&b, "loop to root"),
            ReadError::DirectoryReachedTwice { .. }
        ),
        "{}",
        expect_err(&b, "x")
    );
    // '.' pointing elsewhere.
    let mut b = good.clone();
    put_u64(&mut b, sub, 36);
    expect_err(&b, "dot");
    // '..' pointing at the directory itself.
    let sub_nid = u64::from_le_bytes(good[sub..sub + 8].try_into().unwrap());
    let mut b = good.clone();
    put_u64(&mut b, sub + 12, sub_nid);
    expect_err(&b, "dotdot");
    // Root entry "subdir" aimed at its own dirent's dir twice: make "sym" point at subdir.
    let root = find_dir_data(&good, Some(36), 36);
    let n = u16::from_le_bytes([good[root + 8], good[root + 9]]) as usize / 12;
    let (mut sym_rec, mut found) = (0, false);
    for i in 0..n {
        let r = root + i * 12;
        let off = u16::from_le_bytes([good[r + 8], good[r + 9]]) as usize;
        let end = if i + 1 < n {
            u16::from_le_bytes([good[r + 20], good[r + 21]]) as usize
        } else {
            off + 3
        };
        if &good[root + off..root + end] == b"sym" {
            (sym_rec, found) = (r, true);
        }
    }
    // The root's entries may span a block and a tail; "sym" sorts last so it is in the tail.
    if found {
        let mut b = good.clone();
        put_u64(&mut b, sym_rec, sub_nid);
        b[sym_rec + 10] = 2;
        assert!(matches!(
            expect_err(&b, "dir twice"),
            ReadError::DirectoryReachedTwice { .. }
        ));
    }
}

#[test]
fn bad_names_and_nameoffs_are_refused() {
    let good = rich_image();
    let pos = good
        .windows(6)
        .position(|w| w == b"subdir")
        .expect("name in image");
    for (name, what) in [
        (&b"sub/ir"[..], "slash"),
        (b"aubdir", "order"),
        (b"sub\0ir", "nul"),
    ] {
        let mut b = good.clone();
        b[pos..pos + 6].copy_from_slice(name);
        expect_err(&b, what);
    }
    let sub = find_dir_data(&good, None, 36);
    // First nameoff not a multiple of 12, zero, beyond the chunk; a later one going backwards.
    for v in [13u16, 0, 0xfff0] {
        let mut b = good.clone();
        put_u16(&mut b, sub + 8, v);
        assert!(matches!(
            root_cause(&expect_err(&b, "nameoff")),
            ReadError::BadDirent { .. }
        ));
    }
    let mut b = good.clone();
    put_u16(&mut b, sub + 20, 1);
    expect_err(&b, "nameoff backwards");
    // A dirent nid outside the file.
    let mut b = good.clone();
    put_u64(&mut b, sub + 24, u64::MAX / 2);
    expect_err(&b, "nid out of range");
    // File type not matching the inode.
    let mut b = good.clone();
    b[sub + 24 + 10] = 6;
    expect_err(&b, "file type");
}

#[test]
fn truncation_at_every_512_byte_boundary_is_refused() {
    let good = rich_image();
    assert_eq!(good.len() % 4096, 0);
    for len in (0..good.len()).step_by(512) {
        expect_err(&good[..len], &format!("truncated to {len}"));
    }
    timed_read(&good).expect("the untruncated image reads");
}

/// xorshift64*: a tiny deterministic generator, so failures are reproducible by seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_byte_flips_never_panic_or_hang() {
    let good = rich_image();
    // Corruptions concentrated in the metadata (first 64 KiB holds everything but big blocks).
    let meta_len = good.len().min(1 << 16);
    let (mut ok, mut err) = (0, 0);
    for seed in 1..=3000u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut b = good.clone();
        let flips = 1 + rng.next() % 8;
        for _ in 0..flips {
            let at = (rng.next() % meta_len as u64) as usize;
            b[at] ^= 1 << (rng.next() % 8);
        }
        match timed_read(&b) {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                err += 1;
            }
        }
    }
    // Most flips land in padding, data or names and still read; many must be caught.
    assert!(
        err > 100,
        "only {err} of {} corruptions were refused",
        ok + err
    );
}

#[test]
fn hostile_field_values_in_every_inode_slot_never_panic() {
    let good = rich_image();
    let end = good.len().min(1 << 16);
    let nasty: [u64; 6] = [0, 1, 0xff, 0xffff, 0xffff_ffff, u64::MAX];
    for at in (ROOT_INODE..end).step_by(4) {
        for v in nasty {
            let mut b = good.clone();
            let n = 8.min(b.len() - at);
            b[at..at + n].copy_from_slice(&v.to_le_bytes()[..n]);
            let _ = timed_read(&b);
        }
    }
}

mod fuzz {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
        #[test]
        fn mutated_images_never_panic(
            edits in proptest::collection::vec((0usize..1 << 16, any::<u8>()), 1..16),
            cut in proptest::option::of(0usize..1 << 17),
        ) {
            let mut b = super::rich_image();
            for (at, v) in edits {
                let len = b.len();
                b[at % len] = v;
            }
            if let Some(cut) = cut {
                b.truncate(cut.min(b.len()));
            }
            let _ = super::timed_read(&b);
        }
    }
}

/// Keep `Sha256Digest` in the public surface the tests rely on.
#[allow(dead_code)]
fn _digest_type(d: Sha256Digest) -> Option<Sha256Digest> {
    Some(d)
}

/// Compact inode records of regular 0644 files of `size` bytes: byte offsets, found by scanning
/// the inode slots (independent of the reader).
fn find_file_inodes(img: &[u8], size: u32) -> Vec<usize> {
    (1152..img.len().min(1 << 16) - 32)
        .step_by(32)
        .filter(|&at| {
            let mode = u16::from_le_bytes([img[at + 4], img[at + 5]]);
            let sz = u32::from_le_bytes(img[at + 8..at + 12].try_into().unwrap());
            img[at] & 1 == 0 && u32::from(mode) == S_IFREG | 0o644 && sz == size
        })
        .collect()
}

#[test]
fn overlapping_data_blocks_are_refused() {
    // Two files of 5000 bytes: one data block plus an inline tail each.
    let mut tree = Tree::new(stat(S_IFDIR | 0o755, 2, 0, 0, 1));
    for (name, byte) in [(&b"a"[..], b'a'), (b"b", b'b')] {
        let data = vec![byte; 5000];
        tree.add(
            InodeId::ROOT,
            name,
            inode(
                stat(S_IFREG | 0o644, 1, 0, 0, 1),
                Content::Regular(FileData::Inline(data.into())),
                &[],
            ),
        )
        .unwrap();
    }
    let good = write_image(&tree, &WriteOptions::default()).expect("writer");
    assert_eq!(canon(&read_image(&good).expect("valid").tree), canon(&tree));
    let files = find_file_inodes(&good, 5000);
    assert_eq!(files.len(), 2, "both file inodes found");
    // Point b's data block at a's: the same bytes would be decoded twice.
    let mut b = good.clone();
    let a_blk = u32::from_le_bytes(good[files[0] + 16..files[0] + 20].try_into().unwrap());
    put_u32(&mut b, files[1] + 16, a_blk);
    assert!(matches!(
        expect_err(&b, "shared data block"),
        ReadError::Overlap { .. }
    ));
    // Point b's data at the inode area.
    let mut b = good.clone();
    put_u32(&mut b, files[1] + 16, 0);
    assert!(matches!(
        expect_err(&b, "data over inodes"),
        ReadError::Overlap { .. }
    ));
}

#[test]
fn deep_trees_read_without_recursion() {
    // 3000 nested directories: a recursive reader would need thousands of stack frames.
    let mut tree = Tree::new(stat(S_IFDIR | 0o755, 3, 0, 0, 1));
    let mut dir = InodeId::ROOT;
    for _ in 0..3000 {
        dir = tree
            .add(
                dir,
                b"d",
                inode(
                    stat(S_IFDIR | 0o755, 3, 0, 0, 1),
                    Content::Directory(Vec::new()),
                    &[],
                ),
            )
            .unwrap();
    }
    tree.add(
        dir,
        b"leaf",
        inode(
            stat(S_IFREG | 0o644, 1, 0, 0, 1),
            Content::Regular(FileData::Inline((*b"x").into())),
            &[],
        ),
    )
    .unwrap();
    let bytes = write_image(&tree, &WriteOptions::default()).expect("writer");
    let image = timed_read(&bytes).expect("deep tree reads");
    assert_eq!(
        canon_ignoring_primaries(&image.tree),
        canon_ignoring_primaries(&as_stored(&tree))
    );
}
