//! OCI images into composefs: `cfsgate import`, `cfsgate compute-id`, `cfsgate seal`.
//!
//! | command | does | stdout |
//! |---|---|---|
//! | `cfsgate [--repo DIR] import REF [--ref NAME]` | objects, composefs image, manifest/config/signatures into the repository; names the image | the image digest (hex) |
//! | `cfsgate compute-id REF` | the composefs image digest, nothing written; a sealed image's label is checked | the image digest (hex) |
//! | `cfsgate seal SRC DEST [--tag T] [--layer-annotations]` | adds the label `containers.composefs.fsverity` to the config, writes config and manifest to DEST: `oci:PATH[:TAG]` (an OCI layout, tag T by default), `dir:PATH`, or a plain PATH (an OCI layout); another `TRANSPORT:` is refused | the new manifest digest (`sha256:…`) |
//!
//! REF and SRC are `oci:PATH[:TAG]`, `oci:PATH@sha256:HEX`, `dir:PATH` or
//! `docker://HOST/NAME[:TAG|@DIGEST]` (fetched first, see [`super::registry`]), or
//! `containers-storage:[[DRIVER@]GRAPHROOT[+RUNROOT]]NAME[:TAG|@sha256:HEX]` (podman's store,
//! read-only; sealing it writes its layers into DEST as the tars rebuilt from it). While layers are
//! applied, one progress bar per layer (file-content bytes hashed) is drawn on stderr when stderr
//! is a terminal; a summary line goes to stderr.

use std::path::Path;

use anyhow::{Context, Result};
use cfsgate_image::store::Repository;
use cfsgate_oci::registry::is_docker;
use cfsgate_oci::seal_tag::settle_dest_tag;
use cfsgate_oci::summary::{import_summary, seal_summary};
use cfsgate_oci::{
    build_image, check_seal_built, import_image, read_seal, seal_image_to, Convention, NullSink,
    ResolvedImage, SealDest, SealOptions,
};
use clap::Args;

use super::progress::{clear, import_progress, LayerBars};
use super::registry::{pull, stage, RegistryArgs};

/// Import an OCI image into the repository: objects, composefs image, manifest and config;
/// prints the image digest.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The image: oci:PATH[:TAG], oci:PATH@sha256:HEX, dir:PATH, docker://HOST/NAME[:TAG] or containers-storage:NAME.
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Name the imported image (a ref in the repository, a gc root).
    #[arg(long = "ref", value_name = "NAME")]
    pub ref_name: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Print the composefs image digest of an OCI image without writing anything.
#[derive(Args, Debug)]
pub struct ComputeIdArgs {
    /// The image: oci:PATH[:TAG], oci:PATH@sha256:HEX, dir:PATH, docker://HOST/NAME[:TAG] or containers-storage:NAME.
    #[arg(value_name = "REF")]
    pub reference: String,
    /// How the composefs image is made: mkcomposefs (cfsgate's and C mkcomposefs's) or
    /// composefs-rs (composefs-rs 0.9's OCI sealing defaults).
    #[arg(long, value_name = "NAME", default_value = "mkcomposefs")]
    pub convention: Convention,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Seal an OCI image: record its composefs digest in the config label
/// containers.composefs.fsverity and tag the new manifest in an OCI layout.
#[derive(Args, Debug)]
pub struct SealArgs {
    /// The image to seal: oci:PATH[:TAG], oci:PATH@sha256:HEX or dir:PATH.
    #[arg(value_name = "SRC")]
    pub src: String,
    /// Where to write: oci:PATH[:TAG] (an OCI layout, created if missing; may be the source
    /// layout), dir:PATH, or a plain PATH (an OCI layout).
    #[arg(value_name = "DEST")]
    pub dest: String,
    /// Tag of the sealed image in an OCI layout DEST without one [default: the source tag +
    /// "-sealed", or "sealed"].
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Also annotate each layer with the composefs digest of that layer alone.
    #[arg(long)]
    pub layer_annotations: bool,
    /// How the sealed composefs image is made: mkcomposefs or composefs-rs (see compute-id).
    #[arg(long, value_name = "NAME", default_value = "mkcomposefs")]
    pub convention: Convention,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Run `cfsgate import` against the repository at `repo` (created if missing).
pub fn run_import(repo: &Path, args: ImportArgs) -> Result<()> {
    let ref_name = args.ref_name.as_deref();
    if is_docker(&args.reference) {
        return pull(repo, &args.reference, ref_name, true, &args.registry);
    }
    let repository = Repository::create_or_open(repo)
        .with_context(|| format!("opening or creating the repository {}", repo.display()))?;
    let image = resolve(&args.reference)?;
    let bars = LayerBars::for_stderr(image.layers.len());
    let report = import_image(&repository, &image, ref_name, import_progress(&bars));
    clear(&bars);
    let report = report.with_context(|| format!("importing {}", args.reference))?;
    println!("{}", report.image_digest.to_hex());
    eprintln!("{}", import_summary(&args.reference, &report, ref_name));
    Ok(())
}

/// Run `cfsgate compute-id`: print the digest; a sealed image whose label differs is an error.
pub fn run_compute_id(args: ComputeIdArgs) -> Result<()> {
    let staged = stage(&args.reference, &args.registry, true)?;
    let image = resolve(&staged.reference)?;
    let bars = LayerBars::for_stderr(image.layers.len());
    let built = build_image(&image, &NullSink, import_progress(&bars))
        .with_context(|| format!("building the composefs image of {}", args.reference))?;
    clear(&bars);
    let (_, digest) = args.convention.image_of(&built.tree)?;
    if read_seal(&image)?.is_some() {
        let matched = check_seal_built(&image, &built)?;
        eprintln!("seal label matches (the {} convention)", matched.convention);
    }
    println!("{}", digest.to_hex());
    Ok(())
}

/// Run `cfsgate seal`.
pub fn run_seal(args: SealArgs) -> Result<()> {
    let staged = stage(&args.src, &args.registry, true)?;
    let image = resolve(&staged.reference)?;
    let source_tag = staged.source_tag()?;
    let mut dest = SealDest::parse(&args.dest)?;
    let written_as = settle_dest_tag(&mut dest, args.tag.as_deref(), source_tag.as_deref())?;
    let bars = LayerBars::for_stderr(image.layers.len());
    let report = seal_image_to(
        &image,
        &dest,
        SealOptions {
            layer_annotations: args.layer_annotations,
            convention: args.convention,
        },
        import_progress(&bars),
    )
    .with_context(|| format!("sealing {} into {written_as}", args.src))?;
    clear(&bars);
    println!("{}", report.manifest_digest);
    eprintln!("{}", seal_summary(&args.src, &written_as, &report));
    Ok(())
}

fn resolve(reference: &str) -> Result<ResolvedImage> {
    cfsgate_oci::resolve(reference).with_context(|| format!("resolving {reference}"))
}
