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
use cfsgate_image::info::{listed_objects, load_image, measure_file, write_ls};

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
                write_ls(&load_image(image)?, &mut out)?;
            }
        }
        InfoCmd::Dump(args) => {
            for image in &args.images {
                let tree = load_image(image)?;
                cfsgate_image::dump::write(&tree, &mut out).context("writing the dump")?;
            }
        }
        InfoCmd::Objects(args) => write_lines(&mut out, listed_objects(&args.images, None)?)?,
        InfoCmd::MissingObjects(args) => {
            let missing = listed_objects(&args.images, args.basedir.as_deref())?;
            write_lines(&mut out, missing)?;
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

/// Each of `lines` (raw bytes: backing paths are not UTF-8 necessarily) on a line.
fn write_lines(out: &mut impl Write, lines: Vec<Box<[u8]>>) -> io::Result<()> {
    for line in lines {
        out.write_all(&line)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
