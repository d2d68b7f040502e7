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
//! The listings (and `ls`'s escaping, upstream's), the image loading and the measuring are
//! `cfsgate_image::info`.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Context;
use cfsgate_image::info::{measure_file, write_listing, Listing};

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
    let mut out = io::BufWriter::new(io::stdout().lock());
    match cmd {
        InfoCmd::Ls(args) => write_listing(&args.images, Listing::Ls, &mut out)?,
        InfoCmd::Dump(args) => write_listing(&args.images, Listing::Dump, &mut out)?,
        InfoCmd::Objects(args) => write_listing(&args.images, Listing::Objects(None), &mut out)?,
        InfoCmd::MissingObjects(args) => {
            let basedir = Listing::Objects(args.basedir.as_deref());
            write_listing(&args.images, basedir, &mut out)?;
        }
        InfoCmd::MeasureFile(args) => {
            for path in &args.files {
                writeln!(out, "{}", measure_file(path)?)?;
            }
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(())
}
