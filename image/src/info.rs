//! What `composefs-info` prints about images (`cfsgate info`), as upstream prints it.
//!
//! | function | output |
//! |---|---|
//! | [`write_ls`] | every path (depth first, in directory order), `/` + tab after directories, tab `-> TARGET` after symlinks, tab `@ BACKING` after files with an object; one line each |
//! | [`backing_paths`] | the backing paths (object names) of all trees, each once, sorted bytewise |
//! | [`object_exists`] | whether a backing path is present below an object directory |
//! | [`write_listing`] | one of the above ([`Listing`]) of image files, as `cfsgate info ls\|dump\|objects\|missing-objects` print it |
//! | [`listed_objects`] | `objects` (all backing paths of the image files) and `missing-objects` (those not below `--basedir`) |
//! | [`load_image`], [`measure_file`] | an image file read and parsed; a file's fs-verity digest (`measure-file`) |
//!
//! Escaping in `ls` is upstream's: `\\`, `\n`, `\r`, `\t`, and `\xHH` for other unprintable
//! bytes; spaces are kept in paths (upstream's `NOESCAPE_SPACE`) but escaped in targets and
//! backing paths.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::dump::escape::{escape_into, Escape};
use crate::erofs::reader::{read_image, referenced_objects, ReadError};
use crate::fsverity::{digest_reader, FsVeritySha256, Sha256};
use crate::tree::{Content, FileData, InodeId, Tree};

/// What stopped `cfsgate info`, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum InfoError {
    /// A file could not be read.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done (`reading`, `opening`, `measuring`, `opening basedir`).
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// An image file is not a composefs image this reader accepts.
    #[error("loading image {}: {source}", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// What is wrong with it.
        source: ReadError,
    },
    /// `--basedir` names something other than a directory.
    #[error("basedir {} is not a directory", path.display())]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The listing could not be written out.
    #[error("writing the listing: {0}")]
    Output(#[source] io::Error),
}

/// What `cfsgate info` prints of image files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing<'a> {
    /// [`write_ls`] of each image.
    Ls,
    /// The composefs-dump(5) text of each image.
    Dump,
    /// [`listed_objects`], one per line: all, or those missing from the directory.
    Objects(Option<&'a Path>),
}

/// Write `listing` of the image files `images` to `out`, image by image.
pub fn write_listing(
    images: &[PathBuf],
    listing: Listing<'_>,
    out: &mut impl Write,
) -> Result<(), InfoError> {
    if let Listing::Objects(missing_from) = listing {
        for backing in listed_objects(images, missing_from)? {
            out.write_all(&backing)
                .and_then(|()| out.write_all(b"\n"))
                .map_err(InfoError::Output)?;
        }
        return Ok(());
    }
    for image in images {
        let tree = load_image(image)?;
        match listing {
            Listing::Dump => crate::dump::write(&tree, &mut *out),
            _ => write_ls(&tree, out),
        }
        .map_err(InfoError::Output)?;
    }
    Ok(())
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> InfoError {
    let path = path.to_owned();
    move |source| InfoError::Io { what, path, source }
}

/// The tree of the image file at `path`.
pub fn load_image(path: &Path) -> Result<Tree, InfoError> {
    let bytes = std::fs::read(path).map_err(io_error("reading", path))?;
    let image = read_image(&bytes).map_err(|source| InfoError::Image {
        path: path.to_owned(),
        source,
    })?;
    Ok(image.tree)
}

/// The fs-verity (SHA-256) digest of the file at `path`.
pub fn measure_file(path: &Path) -> Result<FsVeritySha256, InfoError> {
    let file = File::open(path).map_err(io_error("opening", path))?;
    digest_reader::<Sha256>(file).map_err(io_error("measuring", path))
}

/// The backing paths of the image files `images`, each once, sorted bytewise; with
/// `missing_from`, only those not present below that object directory (which must be a
/// directory). Upstream's `objects` is `None`, `missing-objects` is `--basedir` (without it,
/// every object is missing).
pub fn listed_objects(
    images: &[PathBuf],
    missing_from: Option<&Path>,
) -> Result<Vec<Box<[u8]>>, InfoError> {
    if let Some(dir) = missing_from {
        let metadata = std::fs::metadata(dir).map_err(io_error("opening basedir", dir))?;
        if !metadata.is_dir() {
            return Err(InfoError::NotADirectory {
                path: dir.to_owned(),
            });
        }
    }
    let trees = images
        .iter()
        .map(|image| load_image(image))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(backing_paths(&trees)
        .into_iter()
        .filter(|backing| missing_from.is_none_or(|dir| !object_exists(dir, backing)))
        .collect())
}

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

    #[test]
    fn objects_and_missing_objects_of_image_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = dump::parse(DUMP.as_bytes(), ParseMode::Strict).expect("dump");
        let image = dir.path().join("a.cfs");
        let bytes = write_image(&tree, &WriteOptions::default()).expect("write");
        std::fs::write(&image, &bytes).expect("write");
        let images = [image.clone(), image.clone()];
        let all = listed_objects(&images, None).expect("objects");
        assert_eq!(all, [Box::from(&b"ab/cdef"[..])]);
        let objects = dir.path().join("objects");
        std::fs::create_dir_all(objects.join("ab")).expect("mkdir");
        let missing = listed_objects(&images, Some(&objects)).expect("missing");
        assert_eq!(missing, all);
        std::fs::write(objects.join("ab/cdef"), b"hello").expect("write");
        assert!(listed_objects(&images, Some(&objects))
            .expect("missing")
            .is_empty());
        let error = listed_objects(&images, Some(&image)).expect_err("not a directory");
        assert_eq!(
            error.to_string(),
            format!("basedir {} is not a directory", image.display())
        );
        let error = listed_objects(&[objects.join("ab/cdef")], None).expect_err("no image");
        assert!(matches!(error, InfoError::Image { .. }), "{error}");
        let mut printed = Vec::new();
        write_listing(&images, Listing::Objects(None), &mut printed).expect("objects");
        assert_eq!(printed, b"ab/cdef\n");
        let mut printed = Vec::new();
        write_listing(&images[..1], Listing::Ls, &mut printed).expect("ls");
        let mut expected = Vec::new();
        write_ls(&tree, &mut expected).expect("ls");
        assert_eq!(printed, expected);
        let mut printed = Vec::new();
        write_listing(&images, Listing::Dump, &mut printed).expect("dump");
        let mut expected = Vec::new();
        dump::write(&tree, &mut expected).expect("dump");
        assert_eq!(printed, [expected.clone(), expected].concat(), "each image");
        let digest = measure_file(&image).expect("measure");
        assert_eq!(digest, crate::fsverity::digest_bytes(&bytes));
        let error = measure_file(&dir.path().join("none")).expect_err("missing");
        assert!(error.to_string().starts_with("opening "), "{error}");
    }
}
