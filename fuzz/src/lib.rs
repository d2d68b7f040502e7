//! Helpers shared by the libFuzzer targets in `fuzz_targets/`.
//!
//! | helper | what |
//! |---|---|
//! | [`normalise`] | a tree as an EROFS image can keep it (the conformance tests' normalisation) |
//! | [`check_image_round_trip`] | reader → writer → reader properties for an image and its tree |
//! | [`pieces`] | one fuzz input as several files, with digest and size placeholders filled in |
//! | [`ScratchDir`] | a per-process directory (on tmpfs when there is one) for layouts built from inputs |
//!
//! Properties are asserted with `panic!`: a panic is what libFuzzer records as a crash.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use cfsgate_image::erofs::reader::{read_image, Image};
use cfsgate_image::erofs::writer::{write_image, WriteError, WriteOptions};
use cfsgate_image::tree::{Content, S_IFBLK, S_IFCHR, S_IFDIR};
use cfsgate_image::{FileData, Tree};
use sha2::{Digest, Sha256};

/// What a dump can say but an EROFS image cannot keep, removed: directory nlink (recomputed as
/// 2 + subdirectories), mode bits above 16, the size of an empty external file (written inline),
/// the size of devices and whiteouts (written as 0), the device number of anything but a
/// character or block device (written as 0). Same rules as `image/tests/conformance.rs`.
pub fn normalise(mut tree: Tree) -> Tree {
    let counts: Vec<u32> = tree
        .inodes
        .iter()
        .map(|i| match &i.content {
            Content::Directory(entries) => {
                2 + entries
                    .iter()
                    .filter(|e| !e.hardlink && tree.inode(e.inode).stat.file_type() == S_IFDIR)
                    .count() as u32
            }
            _ => i.stat.nlink,
        })
        .collect();
    for (inode, nlink) in tree.inodes.iter_mut().zip(counts) {
        inode.stat.nlink = nlink;
        inode.stat.mode &= 0xffff;
        if let Content::Regular(FileData::External { size: 0, .. }) = inode.content {
            inode.content = Content::Regular(FileData::Inline(Box::default()));
        }
        if let Content::Special { size } = &mut inode.content {
            *size = 0;
        }
        // Only character and block devices store a device number (EROFS `i_u`); the writer
        // writes 0 for a FIFO or socket whatever the tree says.
        let kind = inode.stat.file_type();
        if kind != S_IFCHR && kind != S_IFBLK {
            inode.stat.rdev = 0;
        }
    }
    settled(tree)
}

/// `tree` with hard-link primaries settled, in canonical inode order (for comparisons).
pub fn settled(mut tree: Tree) -> Tree {
    tree.settle_primaries();
    tree.canonical()
}

/// Write `tree`, or `None` when the writer refuses it with a reason (an input it cannot encode).
/// An internal layout error is a writer bug and panics.
pub fn write_or_refuse(tree: &Tree, opts: &WriteOptions) -> Option<Vec<u8>> {
    match write_image(tree, opts) {
        Ok(bytes) => Some(bytes),
        Err(WriteError::Internal(reason)) => panic!("writer internal error: {reason}"),
        Err(_) => None,
    }
}

/// Read an image cfsgate itself wrote: the reader must accept it.
pub fn read_own_image(bytes: &[u8], what: &str) -> Image {
    match read_image(bytes) {
        Ok(image) => image,
        Err(e) => panic!("the reader refuses an image the writer wrote ({what}): {e}"),
    }
}

/// For an image the reader accepted: writing its tree again (same format version) must give an
/// image that reads back to the same tree (up to [`normalise`]), and writing that tree must give the same bytes again
/// (image → reader → writer reproduces the bytes of images cfsgate wrote).
pub fn check_image_round_trip(read: &Image) {
    let opts = WriteOptions {
        min_version: read.composefs_version,
        max_version: read.composefs_version,
    };
    let Some(written) = write_or_refuse(&read.tree, &opts) else {
        return;
    };
    let again = read_own_image(&written, "rewrite of a read tree");
    // `normalise`: the reader keeps a directory nlink as stored, the writer recomputes it.
    assert_same_tree(
        &normalise(read.tree.clone()),
        &settled(again.tree.clone()),
        "a read tree written and read again differs",
    );
    let Some(rewritten) = write_or_refuse(&again.tree, &opts) else {
        panic!("the writer refuses a tree it wrote itself");
    };
    assert!(
        rewritten == written,
        "reading and writing an image cfsgate wrote changes its bytes"
    );
}

/// Panic with the first difference between two trees (whole trees are too long to print).
pub fn assert_same_tree(expected: &Tree, got: &Tree, what: &str) {
    if expected == got {
        return;
    }
    let diff = if expected.inodes.len() != got.inodes.len() {
        format!(
            "{} inodes expected, {} got",
            expected.inodes.len(),
            got.inodes.len()
        )
    } else {
        let paths: Vec<(usize, Vec<u8>)> = expected
            .bfs()
            .into_iter()
            .map(|(id, p)| (id.index(), p))
            .collect();
        let path_of = |i: usize| {
            paths
                .iter()
                .find(|(id, _)| *id == i)
                .map(|(_, p)| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default()
        };
        match expected
            .inodes
            .iter()
            .zip(&got.inodes)
            .position(|(a, b)| a != b)
        {
            Some(i) => {
                let (a, b) = (&expected.inodes[i], &got.inodes[i]);
                let mut parts = Vec::new();
                if a.stat != b.stat {
                    parts.push(format!("stat {:?} expected, {:?} got", a.stat, b.stat));
                }
                if a.xattrs != b.xattrs {
                    let keys = |x: &[cfsgate_image::tree::Xattr]| {
                        x.iter()
                            .map(|x| {
                                format!("{}={}B", String::from_utf8_lossy(&x.key), x.value.len())
                            })
                            .collect::<Vec<_>>()
                    };
                    parts.push(format!(
                        "xattrs {:?} expected, {:?} got",
                        keys(&a.xattrs),
                        keys(&b.xattrs)
                    ));
                }
                if a.content != b.content {
                    let short = |c: &Content| {
                        let text = format!("{c:?}");
                        text.chars().take(300).collect::<String>()
                    };
                    parts.push(format!(
                        "content {} expected, {} got",
                        short(&a.content),
                        short(&b.content)
                    ));
                }
                format!("inode {i} ({:?}): {}", path_of(i), parts.join("; "))
            }
            None => "same inodes, other tree fields differ".to_string(),
        }
    };
    panic!("{what}: {diff}");
}

/// Separates the files packed in one fuzz input (see [`pieces`]).
pub const PIECE_SEPARATOR: &[u8] = b"\n----\n";
/// Most files one input may hold (placeholders name them by one digit).
pub const MAX_PIECES: usize = 10;

/// Split `data` into at most [`MAX_PIECES`] files and fill in placeholders: in file `k`,
/// `@@j` becomes `sha256:<hex>` of file `j` and `##j` its length, for every `j > k` (later
/// files are finished first, so a file can name only files after it). This lets the fuzzer
/// mutate a blob and keep the digests that point at it valid.
pub fn pieces(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut rest = data;
    while out.len() + 1 < MAX_PIECES {
        match find(rest, PIECE_SEPARATOR) {
            Some(at) => {
                out.push(rest[..at].to_vec());
                rest = &rest[at + PIECE_SEPARATOR.len()..];
            }
            None => break,
        }
    }
    out.push(rest.to_vec());
    for k in (0..out.len()).rev() {
        for j in (k + 1)..out.len() {
            let digit = b'0' + j as u8;
            let digest = format!("sha256:{}", hex::encode(Sha256::digest(&out[j])));
            let size = out[j].len().to_string();
            let filled = replace(&out[k], &[b'@', b'@', digit], digest.as_bytes());
            out[k] = replace(&filled, &[b'#', b'#', digit], size.as_bytes());
        }
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = find(rest, needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// A directory for the files one run builds from its inputs, removed when dropped.
pub struct ScratchDir {
    dir: tempfile::TempDir,
}

impl ScratchDir {
    /// On `/dev/shm` when it exists (fuzzing writes files every execution), else the temp dir.
    pub fn new() -> std::io::Result<Self> {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::Builder::new()
                .prefix("cfsgate-fuzz")
                .tempdir_in(shm)?
        } else {
            tempfile::Builder::new().prefix("cfsgate-fuzz").tempdir()?
        };
        Ok(ScratchDir { dir })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Empty the directory (between executions).
    pub fn clear(&self) -> std::io::Result<()> {
        for entry in std::fs::read_dir(self.dir.path())? {
            let path = entry?.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(())
    }
}
