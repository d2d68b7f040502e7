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
//! The listings (and `ls`'s escaping, upstream's) are `cfsgate_image::info`.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cfsgate_image::erofs::reader::read_image;
use cfsgate_image::fsverity::{digest_reader, Sha256};
use cfsgate_image::info::{backing_paths, object_exists, write_ls};
use cfsgate_image::tree::Tree;

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
                write_ls(&load(image)?, &mut out)?;
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
    let trees = args
        .images
        .iter()
        .map(|i| load(i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for backing in backing_paths(&trees) {
        if missing_only && basedir.is_some_and(|dir| object_exists(dir, &backing)) {
            continue;
        }
        out.write_all(&backing)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
