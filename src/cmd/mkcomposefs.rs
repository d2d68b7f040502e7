//! `cfsgate mkcomposefs`: build a composefs image from a directory or a composefs-dump(5) file,
//! with the options of upstream `mkcomposefs` (composefs 1.0.x):
//!
//! | option | meaning |
//! |---|---|
//! | `--from-file` | SOURCE is a dump file (`-` = stdin), parsed strictly |
//! | `--strict` | (cfsgate) with `--from-file`, also refuse what upstream's parser tolerates (missing final newline, symlink SIZE ≠ target length, RDEV on non-devices, missing trailing fields); the default accepts exactly what upstream `mkcomposefs --from-file` accepts |
//! | `--digest-store=DIR` | copy every external file into DIR under its fs-verity digest |
//! | `--print-digest` | print the image's fs-verity digest after writing it |
//! | `--print-digest-only` | print the digest, write no image (IMAGE must be left out) |
//! | `--min-version=N`, `--max-version=N` | format version range (default 0..1; if only one is given the other is 0, as upstream) |
//! | `--threads=N` | hashing threads (default: one per core) |
//! | `--preserve-hardlinks` | (cfsgate) keep hard links as hard links; upstream stores each path as its own inode |
//! | `--use-epoch`, `--skip-devices`, `--skip-xattrs`, `--user-xattrs` | as upstream |
//!
//! IMAGE `-` is stdout (refused when it is a terminal). A file IMAGE is written to a temporary
//! file beside it and renamed into place, so an error never leaves a partial or stale-mixed image
//! (`cfsgate_image::mkcomposefs`, with the version defaults and the dump source).

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cfsgate_image::dump::ParseMode;
use cfsgate_image::erofs::writer::write_image_owned;
use cfsgate_image::fromdir::{build_from_dir, BuildOptions};
use cfsgate_image::fsverity::digest_bytes;
use cfsgate_image::mkcomposefs::{format_versions, parse_dump_source, write_image_file};

#[derive(clap::Args, Debug, Clone)]
pub struct MkcomposefsArgs {
    /// Source directory, or with --from-file a composefs-dump(5) file (`-` = stdin).
    pub source: PathBuf,
    /// Image file to write (`-` = stdout). Left out with --print-digest-only.
    pub image: Option<PathBuf>,
    /// The source is a composefs-dump(5) file, not a directory.
    #[arg(long)]
    pub from_file: bool,
    /// With --from-file: also refuse what upstream tolerates (missing final newline, symlink
    /// SIZE other than the target length, RDEV on non-devices, missing trailing fields).
    #[arg(long, requires = "from_file")]
    pub strict: bool,
    /// Copy file contents into this object directory, named by fs-verity digest.
    #[arg(long, value_name = "DIR", conflicts_with = "from_file")]
    pub digest_store: Option<PathBuf>,
    /// Print the fs-verity digest of the image.
    #[arg(long)]
    pub print_digest: bool,
    /// Print the fs-verity digest of the image and write no image.
    #[arg(long)]
    pub print_digest_only: bool,
    /// Lowest composefs format version to use (default 0).
    #[arg(long, value_name = "N")]
    pub min_version: Option<u32>,
    /// Highest composefs format version to use (default 1).
    #[arg(long, value_name = "N")]
    pub max_version: Option<u32>,
    /// Threads for hashing and copying files (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// Store hard-linked files once, with hard links (upstream stores one inode per path).
    #[arg(long)]
    pub preserve_hardlinks: bool,
    /// Make all mtimes zero.
    #[arg(long)]
    pub use_epoch: bool,
    /// Leave out char and block devices.
    #[arg(long)]
    pub skip_devices: bool,
    /// Leave out all xattrs.
    #[arg(long, conflicts_with = "user_xattrs")]
    pub skip_xattrs: bool,
    /// Keep only user.* xattrs.
    #[arg(long)]
    pub user_xattrs: bool,
}

impl MkcomposefsArgs {
    fn build_options(&self) -> BuildOptions {
        BuildOptions {
            preserve_hardlinks: self.preserve_hardlinks,
            threads: self.threads.map(|n| n as usize),
            digest_store: self.digest_store.clone(),
            compute_digests: true,
            skip_xattrs: self.skip_xattrs,
            user_xattrs_only: self.user_xattrs,
            skip_devices: self.skip_devices,
            use_epoch: self.use_epoch,
        }
    }
}

/// Where the image goes.
enum Output<'a> {
    None,
    Stdout,
    File(&'a Path),
}

pub fn run(args: MkcomposefsArgs) -> anyhow::Result<()> {
    let output = match (&args.image, args.print_digest_only) {
        (Some(_), true) => bail!("cannot give an IMAGE with --print-digest-only"),
        (None, false) => bail!("no IMAGE given (or use --print-digest-only)"),
        (None, true) => Output::None,
        (Some(p), false) if p.as_os_str() == "-" => {
            if io::stdout().is_terminal() {
                bail!("stdout is a terminal: refusing to write an image to it");
            }
            Output::Stdout
        }
        (Some(p), false) => Output::File(p),
    };
    if args.source.as_os_str().is_empty() {
        bail!("empty source path");
    }
    let write_opts = format_versions(args.min_version, args.max_version)?;

    let tree = if args.from_file {
        let mode = if !args.strict {
            ParseMode::Lenient
        } else {
            ParseMode::Strict
        };
        parse_dump_source(&args.source, mode)?
    } else {
        build_from_dir(&args.source, &args.build_options())
            .with_context(|| format!("reading source directory {}", args.source.display()))?
    };

    // The tree is not needed after this: the writer rewrites it in place instead of a copy.
    let image = write_image_owned(tree, &write_opts).context("writing the composefs image")?;
    match output {
        Output::None => {}
        Output::Stdout => {
            let mut out = io::stdout().lock();
            out.write_all(&image)
                .and_then(|()| out.flush())
                .context("writing the image to stdout")?;
        }
        Output::File(path) => write_image_file(path, &image)?,
    }
    if args.print_digest || args.print_digest_only {
        println!("{}", digest_bytes(&image));
    }
    Ok(())
}
