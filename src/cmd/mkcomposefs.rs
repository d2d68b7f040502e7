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
//! (`cfsgate_image::mkcomposefs`, with the version defaults, the dump source and the output).

use std::path::PathBuf;

use cfsgate_image::dump::ParseMode;
use cfsgate_image::fromdir::BuildOptions;
use cfsgate_image::mkcomposefs::{mkcomposefs, ImageOutput, MkcomposefsRequest};

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

pub fn run(args: MkcomposefsArgs) -> anyhow::Result<()> {
    let output = ImageOutput::choose(args.image.as_deref(), args.print_digest_only)?;
    let dump_mode = if args.strict {
        ParseMode::Strict
    } else {
        ParseMode::Lenient
    };
    let digest = mkcomposefs(&MkcomposefsRequest {
        source: &args.source,
        dump: args.from_file.then_some(dump_mode),
        build: BuildOptions {
            preserve_hardlinks: args.preserve_hardlinks,
            threads: args.threads.map(|n| n as usize),
            digest_store: args.digest_store.clone(),
            compute_digests: true,
            skip_xattrs: args.skip_xattrs,
            user_xattrs_only: args.user_xattrs,
            skip_devices: args.skip_devices,
            use_epoch: args.use_epoch,
        },
        versions: (args.min_version, args.max_version),
        output,
        digest: args.print_digest || args.print_digest_only,
    })?;
    if let Some(digest) = digest {
        println!("{digest}");
    }
    Ok(())
}
