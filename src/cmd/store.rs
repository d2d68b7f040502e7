//! The object-store commands: `create`, `fsck`, `gc`, `images`, `ref`, `rm`, `missing-objects`.
//!
//! Arguments and output only; the repository logic is `cfsgate_image::store`, the text of its
//! reports `cfsgate_image::store::text`. Every command
//! works on the repository given by the global `--repo DIR` (default `/var/lib/cfsgate`).
//! Results go to stdout (a digest, a table, JSON); notes such as the verification mode go to
//! stderr so scripts can capture the result alone.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cfsgate_image::store::{images, text, Repository};
use clap::{Args, Subcommand};

/// Object-store commands (flattened into the top-level command list).
#[derive(Subcommand, Debug)]
pub enum StoreCmd {
    /// Store a directory (or a dump file with --basedir) as objects and an image; print the image digest.
    Create(super::lazy::Lazy<CreateArgs>),
    /// Recompute every object and image digest, check references and refs; non-zero exit on any problem.
    Fsck {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Move corrupt objects and images to quarantine/.
        #[arg(long)]
        repair: bool,
    },
    /// Remove images and objects no ref reaches; report counts and bytes freed.
    Gc {
        /// Only report what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// List stored images: digest, refs, size, objects, shared and unique object bytes.
    Images {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Name an image (by digest, or by another ref's name).
    Ref {
        /// The ref name (may contain '/').
        name: String,
        /// Image digest (64 hex digits, optionally "sha256:") or an existing ref.
        image: String,
    },
    /// Remove a ref (the image stays until gc).
    Rm {
        /// The ref name.
        name: String,
    },
    /// Print the digests of the objects an image file references that the repository lacks.
    MissingObjects {
        /// A composefs image file (e.g. fetched from another node).
        image: PathBuf,
    },
}

/// `create SOURCE [--ref NAME] [--basedir DIR]`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// A directory, or a composefs dump file (then --basedir is required).
    pub source: PathBuf,
    /// Name the new image.
    #[arg(long = "ref", value_name = "NAME")]
    pub ref_name: Option<String>,
    /// For a dump file: the directory its PAYLOAD (backing file) paths are relative to.
    #[arg(long, value_name = "DIR")]
    pub basedir: Option<PathBuf>,
}

/// The schema of `fsck --json` (docs/json.md).
pub const FSCK_SCHEMA: &str = "cfsgate.fsck/v1";
/// The schema of `images --json` (docs/json.md).
pub const IMAGES_SCHEMA: &str = "cfsgate.images/v1";

/// Run one store command on the repository at `repo`.
pub fn run(repo: &Path, cmd: StoreCmd) -> Result<()> {
    match cmd {
        StoreCmd::Create(super::lazy::Lazy(args)) => create(repo, args),
        StoreCmd::Fsck { json, repair } => fsck(&open(repo)?, json, repair),
        StoreCmd::Gc { dry_run } => {
            print!("{}", text::gc_text(&open(repo)?.gc(dry_run)?, dry_run));
            Ok(())
        }
        StoreCmd::Images { json } => list_images(&open(repo)?, json),
        StoreCmd::Ref { name, image } => {
            let repo = open(repo)?;
            let digest = repo.resolve(&image)?;
            repo.set_ref(&name, &digest)?;
            println!("{name} -> {digest}");
            Ok(())
        }
        StoreCmd::Rm { name } => {
            if !open(repo)?.remove_ref(&name)? {
                bail!("no ref named {name:?}");
            }
            Ok(())
        }
        StoreCmd::MissingObjects { image } => {
            let repo = open(repo)?;
            let bytes = std::fs::read(&image)
                .with_context(|| format!("reading image {}", image.display()))?;
            for digest in repo.missing_objects(&bytes)? {
                println!("{digest}");
            }
            Ok(())
        }
    }
}

fn open(repo: &Path) -> Result<Repository> {
    let repo = Repository::open(repo).with_context(|| {
        format!(
            "opening repository {} (create one with `cfsgate create`)",
            repo.display()
        )
    })?;
    Ok(repo)
}

fn note_verity(repo: &Repository) {
    if let Some(note) = text::verity_note(repo) {
        eprintln!("{note}");
    }
}

fn create(repo: &Path, args: CreateArgs) -> Result<()> {
    let repo = Repository::create_or_open(repo)
        .with_context(|| format!("opening or creating repository {}", repo.display()))?;
    note_verity(&repo);
    let report = repo.import_source(
        &args.source,
        args.basedir.as_deref(),
        args.ref_name.as_deref(),
    )?;
    eprintln!(
        "{} new objects ({} bytes), {} already present",
        report.objects.objects_written,
        report.objects.bytes_written,
        report.objects.objects_present
    );
    println!("{}", report.image);
    Ok(())
}

fn fsck(repo: &Repository, json: bool, repair: bool) -> Result<()> {
    let report = repo.fsck(repair)?;
    if json {
        let doc: serde_json::Value = serde_json::from_str(&report.to_json())?;
        super::print_json(FSCK_SCHEMA, &doc)?;
    } else {
        note_verity(repo);
        print!("{}", text::fsck_text(&report));
    }
    if !report.is_ok() {
        bail!(
            "fsck found {} problem(s) in {}",
            report.problems(),
            repo.path().display()
        );
    }
    Ok(())
}

fn list_images(repo: &Repository, json: bool) -> Result<()> {
    let list = repo.list_images()?;
    if json {
        let images: serde_json::Value = serde_json::from_str(&images::to_json(&list))?;
        return super::print_json(IMAGES_SCHEMA, &serde_json::json!({ "images": images }));
    }
    print!("{}", text::images_table(&list));
    Ok(())
}
