//! composefs-dump(5) reader and writer, checked against upstream composefs's test dumps
//! (shared/conformance) and against randomly generated trees.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cfsgate_image::dump::{self, DumpError, ParseMode};
use cfsgate_image::tree::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK};
use cfsgate_image::{Content, FileData, FsVeritySha256, Inode, InodeId, Stat, Tree};
use proptest::prelude::*;

#[path = "dump/conformance.rs"]
mod conformance;
#[path = "dump/fields.rs"]
mod fields;
#[path = "dump/random.rs"]
mod random;

/// Dumps upstream parses only without `CFS_PARSE_STRICT` (conformance README).
const LENIENT_ONLY: [&str; 3] = [
    "no-newline.dump",
    "longlink.dump",
    "honggfuzz-longlink-unterminated.dump",
];

fn conformance_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance")
        .join(kind)
}

/// Every dump file (plain or gzip) in a conformance directory, sorted by name.
fn dump_files(kind: &str) -> Vec<PathBuf> {
    let dir = conformance_dir(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("conformance data {} missing: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = file_name(path);
            name.ends_with(".dump") || name.ends_with(".dump.gz")
        })
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn read_dump(path: &Path) -> Vec<u8> {
    let mut raw = std::fs::read(path).unwrap();
    // special_v1.dump is a git symlink upstream, checked out as a file naming its target.
    let is_link = !file_name(path).ends_with(".gz") && !raw.is_empty() && raw.len() < 256;
    if is_link && !raw.contains(&b'\n') && !raw.contains(&b' ') {
        let target = path.with_file_name(String::from_utf8(raw.clone()).unwrap());
        raw = std::fs::read(target).unwrap();
    }
    if file_name(path).ends_with(".gz") {
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut text)
            .unwrap();
        text
    } else {
        raw
    }
}

fn parse_bytes(text: &[u8], mode: ParseMode) -> Result<Tree, DumpError> {
    dump::parse(text, mode)
}

fn write_bytes(tree: &Tree) -> Vec<u8> {
    let mut out = Vec::new();
    dump::write(tree, &mut out).unwrap();
    out
}

fn parse_err(text: &str, mode: ParseMode) -> DumpError {
    match parse_bytes(text.as_bytes(), mode) {
        Ok(tree) => panic!("accepted {text:?} as {tree:?}"),
        Err(e) => e,
    }
}

/// Assert `text` is refused in both modes at `line`, with a message containing `reason`.
fn assert_refused(text: &str, line: usize, reason: &str) {
    for mode in [ParseMode::Strict, ParseMode::Lenient] {
        let err = parse_err(text, mode);
        assert_eq!(err.line, line, "{mode:?}: {err}");
        assert!(
            err.message.contains(reason),
            "{mode:?}: expected {reason:?} in {err}"
        );
        assert_eq!(err.to_string(), format!("line {line}: {}", err.message));
    }
}

/// The same tree with its inode arena renumbered in the order the dump lists inodes (depth-first,
/// sorted), dropping unreachable inodes: two trees are equal as filesystems iff their canonical
/// forms are `==`.
fn canonical(tree: &Tree) -> Tree {
    let mut order = Vec::new();
    let mut stack = vec![InodeId::ROOT];
    while let Some(id) = stack.pop() {
        order.push(id);
        if let Some(entries) = tree.inode(id).entries() {
            stack.extend(
                entries
                    .iter()
                    .rev()
                    .filter(|e| !e.hardlink)
                    .map(|e| e.inode),
            );
        }
    }
    let mut renumber = vec![None; tree.inodes.len()];
    for (new, old) in order.iter().enumerate() {
        renumber[old.index()] = Some(InodeId(new as u32));
    }
    let inodes = order
        .iter()
        .map(|old| {
            let mut inode = tree.inode(*old).clone();
            if let Content::Directory(entries) = &mut inode.content {
                for entry in entries.iter_mut() {
                    entry.inode =
                        renumber[entry.inode.index()].expect("link to an unreachable inode");
                }
            }
            inode
        })
        .collect();
    Tree { inodes }
}

const ROOT: &str = "/ 4096 40755 2 0 0 0 0.0 - - -\n";

fn with_root(lines: &str) -> String {
    format!("{ROOT}{lines}")
}
