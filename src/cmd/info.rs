//! `cfsgate info`: inspect composefs images, like upstream `composefs-info`.
//!
//! | command | prints |
//! |---|---|
//! | `ls IMAGE…` | every path (depth first, sorted), `/` + tab after directories, tab `-> TARGET` after symlinks, tab `@ BACKING` after files with an object |
//! | `dump IMAGE…` | the composefs-dump(5) text of each image |
//! | `objects IMAGE…` | the backing paths of all images, each once, sorted bytewise |
//! | `missing-objects --basedir=DIR IMAGE…` | those backing paths not present under DIR (all of them without `--basedir`) |
//! | `measure-file FILE…` | the fs-verity (SHA-256) digest of each file, one lowercase hex line each |
//!
//! Paths in `ls` are escaped as upstream does: `\\`, `\n`, `\r`, `\t`, and `\xHH` for other
//! unprintable bytes (spaces are kept in paths but escaped in targets).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cfsgate_image::erofs::reader::{read_image, referenced_objects};
use cfsgate_image::fsverity::{digest_reader, Sha256};
use cfsgate_image::tree::{Content, FileData, InodeId, Tree};

#[derive(clap::Args, Debug, Clone)]
pub struct ImagesArgs {
    /// Object directory to look objects up in (for missing-objects).
    #[arg(long, value_name = "DIR")]
    pub basedir: Option<PathBuf>,
    /// composefs image files.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct FilesArgs {
    /// Files to measure.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum InfoCmd {
    /// List the paths of images, with symlink targets and backing objects.
    Ls(ImagesArgs),
    /// Print images in the composefs-dump(5) format.
    Dump(ImagesArgs),
    /// List the objects (backing paths) images refer to.
    Objects(ImagesArgs),
    /// List the objects images refer to that are not in --basedir.
    MissingObjects(ImagesArgs),
    /// Print the fs-verity digest of files.
    MeasureFile(FilesArgs),
}

pub fn run(cmd: InfoCmd) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match cmd {
        InfoCmd::Ls(args) => {
            for image in &args.images {
                let tree = load(image)?;
                let mut path = Vec::new();
                ls_dir(&tree, InodeId::ROOT, &mut path, &mut out)?;
            }
        }
        InfoCmd::Dump(args) => {
            for image in &args.images {
                let tree = load(image)?;
                cfsgate_image::dump::write(&tree, &mut out).context("writing the dump")?;
            }
        }
        InfoCmd::Objects(args) => print_objects(&args, false, &mut out)?,
        InfoCmd::MissingObjects(args) => print_objects(&args, true, &mut out)?,
        InfoCmd::MeasureFile(args) => {
            for path in &args.files {
                let file =
                    File::open(path).with_context(|| format!("opening {}", path.display()))?;
                let digest = digest_reader::<Sha256>(file)
                    .with_context(|| format!("measuring {}", path.display()))?;
                writeln!(out, "{digest}")?;
            }
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(())
}

/// Read and parse one image.
fn load(path: &Path) -> anyhow::Result<Tree> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let image = read_image(&bytes).with_context(|| format!("loading image {}", path.display()))?;
    Ok(image.tree)
}

/// How `ls` escapes a field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LsEscape {
    /// Paths: spaces stay (upstream `NOESCAPE_SPACE`: escape what `isprint` rejects).
    KeepSpace,
    /// Targets and backing paths: escape what `isgraph` rejects (space too).
    Standard,
}

fn escape(out: &mut Vec<u8>, bytes: &[u8], how: LsEscape) {
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b' ' if how == LsEscape::KeepSpace => out.push(b' '),
            0x21..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
}

/// Print the entries of directory `dir` (whose path is `path`), depth first.
fn ls_dir(
    tree: &Tree,
    dir: InodeId,
    path: &mut Vec<u8>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
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

fn print_objects(
    args: &ImagesArgs,
    missing_only: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let basedir = match (&args.basedir, missing_only) {
        (Some(dir), true) => {
            let md = std::fs::metadata(dir)
                .with_context(|| format!("opening basedir {}", dir.display()))?;
            if !md.is_dir() {
                bail!("basedir {} is not a directory", dir.display());
            }
            Some(dir)
        }
        _ => None,
    };
    let mut objects = BTreeSet::new();
    for image in &args.images {
        let tree = load(image)?;
        objects.extend(referenced_objects(&tree).into_iter().map(|o| o.backing));
    }
    for backing in objects {
        if missing_only && basedir.is_some_and(|dir| object_exists(dir, &backing)) {
            continue;
        }
        out.write_all(&backing)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Whether `backing` (relative; a leading `/` is ignored) exists below `dir`, following
/// symlinks as upstream's `fstatat` does.
fn object_exists(dir: &Path, backing: &[u8]) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let rel = backing.strip_prefix(b"/").unwrap_or(backing);
    dir.join(std::ffi::OsStr::from_bytes(rel)).exists()
}
