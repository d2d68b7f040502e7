//! What `composefs-info` prints about images (`cfsgate info`), as upstream prints it.
//!
//! | function | output |
//! |---|---|
//! | [`write_ls`] | every path (depth first, in directory order), `/` + tab after directories, tab `-> TARGET` after symlinks, tab `@ BACKING` after files with an object; one line each |
//! | [`backing_paths`] | the backing paths (object names) of all trees, each once, sorted bytewise |
//! | [`object_exists`] | whether a backing path is present below an object directory |
//!
//! Escaping in `ls` is upstream's: `\\`, `\n`, `\r`, `\t`, and `\xHH` for other unprintable
//! bytes; spaces are kept in paths (upstream's `NOESCAPE_SPACE`) but escaped in targets and
//! backing paths.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::Path;

use crate::dump::escape::{escape_into, Escape};
use crate::erofs::reader::referenced_objects;
use crate::tree::{Content, FileData, InodeId, Tree};

/// How `ls` escapes a field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LsEscape {
    /// Paths: spaces stay (escape what `isprint` rejects).
    KeepSpace,
    /// Targets and backing paths: escape what `isgraph` rejects (space too).
    Standard,
}

fn escape(out: &mut Vec<u8>, bytes: &[u8], how: LsEscape) {
    let escape = match how {
        LsEscape::KeepSpace => Escape::KeepSpace,
        LsEscape::Standard => Escape::Standard,
    };
    escape_into(out, bytes, escape);
}

/// `composefs-info ls` of one tree.
pub fn write_ls(tree: &Tree, out: &mut impl Write) -> io::Result<()> {
    let mut path = Vec::new();
    ls_dir(tree, InodeId::ROOT, &mut path, out)
}

/// The entries of directory `dir` (whose path is `path`), depth first.
fn ls_dir(tree: &Tree, dir: InodeId, path: &mut Vec<u8>, out: &mut impl Write) -> io::Result<()> {
    let Some(entries) = tree.inode(dir).entries() else {
        return Ok(());
    };
    for entry in entries {
        let len = path.len();
        path.push(b'/');
        path.extend_from_slice(&entry.name);
        let inode = tree.inode(entry.inode);
        let mut line = Vec::with_capacity(path.len() + 80);
        escape(&mut line, path, LsEscape::KeepSpace);
        match &inode.content {
            Content::Directory(_) => line.extend_from_slice(b"/\t"),
            Content::Symlink(target) => {
                line.extend_from_slice(b"\t-> ");
                escape(&mut line, target, LsEscape::Standard);
            }
            Content::Regular(FileData::External {
                backing: Some(backing),
                ..
            }) => {
                line.extend_from_slice(b"\t@ ");
                escape(&mut line, backing, LsEscape::Standard);
            }
            _ => {}
        }
        line.push(b'\n');
        out.write_all(&line)?;
        // A hard link to a directory cannot exist, so recursing on primary entries only is the
        // whole tree, each directory once.
        if !entry.hardlink {
            ls_dir(tree, entry.inode, path, out)?;
        }
        path.truncate(len);
    }
    Ok(())
}

/// The backing paths the trees refer to, each once, sorted bytewise.
pub fn backing_paths<'a>(trees: impl IntoIterator<Item = &'a Tree>) -> BTreeSet<Box<[u8]>> {
    trees
        .into_iter()
        .flat_map(|tree| referenced_objects(tree).into_iter().map(|o| o.backing))
        .collect()
}

/// Whether `backing` (relative; a leading `/` is ignored) exists below `dir`, following
/// symlinks as upstream's `fstatat` does.
pub fn object_exists(dir: &Path, backing: &[u8]) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let rel = backing.strip_prefix(b"/").unwrap_or(backing);
    dir.join(std::ffi::OsStr::from_bytes(rel)).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::{self, ParseMode};
    use crate::erofs::reader::read_image;
    use crate::erofs::writer::{write_image, WriteOptions};

    /// A tree through the real writer and reader, as `cfsgate info` loads one.
    fn image_of(dump_text: &str) -> Tree {
        let tree = dump::parse(dump_text.as_bytes(), ParseMode::Strict).expect("dump");
        let bytes = write_image(&tree, &WriteOptions::default()).expect("write");
        read_image(&bytes).expect("read").tree
    }

    const DUMP: &str = "/ 0 40755 3 0 0 0 0.0 - - -\n\
        /a\\x20b 0 40755 2 0 0 0 0.0 - - -\n\
        /a\\x20b/f 5 100644 1 0 0 0 0.0 ab/cdef - -\n\
        /l 3 120777 1 0 0 0 0.0 x\\x20y - -\n\
        /t\\tab 0 100644 1 0 0 0 0.0 - - -\n";

    #[test]
    fn ls_escapes_paths_targets_and_backing_paths_as_upstream() {
        let mut out = Vec::new();
        write_ls(&image_of(DUMP), &mut out).expect("ls");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "/a b/\t\n/a b/f\t@ ab/cdef\n/l\t-> x\\x20y\n/t\\tab\n"
        );
    }

    #[test]
    fn backing_paths_are_listed_once_and_found_below_the_object_directory() {
        let other = "/ 0 40755 2 0 0 0 0.0 - - -\n\
            /g 5 100644 1 0 0 0 0.0 ab/cdef - -\n\
            /h 5 100644 1 0 0 0 0.0 01/23 - -\n";
        let trees = [image_of(DUMP), image_of(other)];
        let paths = backing_paths(&trees);
        let paths: Vec<&[u8]> = paths.iter().map(|p| &p[..]).collect();
        assert_eq!(paths, [&b"01/23"[..], &b"ab/cdef"[..]]);
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("ab")).expect("mkdir");
        std::fs::write(dir.path().join("ab/cdef"), b"hello").expect("write");
        assert!(object_exists(dir.path(), b"/ab/cdef"));
        assert!(object_exists(dir.path(), b"ab/cdef"));
        assert!(!object_exists(dir.path(), b"01/23"));
    }
}
