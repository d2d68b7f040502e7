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

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use cfsgate_image::store::Repository;
use cfsgate_oci::layout::Selector;
use cfsgate_oci::{
    build_image, check_seal_built, import_image, read_seal, resolve_ref, seal_image_to, Convention,
    ImageRef, Layer, NoProgress, NullSink, Platform, Progress, ResolvedImage, SealDest,
    SealOptions,
};
use clap::Args;

use super::registry::{stage, RegistryArgs};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a spinner redraws by itself (a large file can take seconds between updates).
const TICK: Duration = Duration::from_millis(120);

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
    if super::registry::is_docker(&args.reference) {
        return super::registry::run_pull(
            repo,
            super::registry::PullArgs {
                reference: args.reference,
                ref_name: args.ref_name,
                no_partial: false,
                registry: args.registry,
            },
        );
    }
    let repository = Repository::create_or_open(repo)
        .with_context(|| format!("opening or creating the repository {}", repo.display()))?;
    let image = resolve(&args.reference)?;
    let report = import_resolved(&repository, &image, args.ref_name.as_deref())
        .with_context(|| format!("importing {}", args.reference))?;
    println!("{}", report.image_digest.to_hex());
    eprintln!(
        "imported {} (manifest {}): {} new objects ({} bytes), {} already present, image {}{}{}",
        args.reference,
        report.manifest_digest,
        report.new_objects,
        report.new_object_bytes,
        report.reused_objects,
        if report.new_image {
            "new"
        } else {
            "already present"
        },
        if report.seal.is_some() {
            ", seal checked"
        } else {
            ""
        },
        args.ref_name
            .map(|name| format!(", ref {name}"))
            .unwrap_or_default(),
    );
    Ok(())
}

/// Import a resolved image with layer bars on a terminal.
pub fn import_resolved(
    repository: &Repository,
    image: &ResolvedImage,
    ref_name: Option<&str>,
) -> Result<cfsgate_oci::ImportReport> {
    let bars = LayerBars::for_stderr(image.layers.len());
    let report = import_image(repository, image, ref_name, bars.as_progress());
    bars.clear();
    Ok(report?)
}

/// Run `cfsgate compute-id`: print the digest; a sealed image whose label differs is an error.
pub fn run_compute_id(args: ComputeIdArgs) -> Result<()> {
    let staged = stage(&args.reference, &args.registry, true)?;
    let image = resolve(&staged.reference)?;
    let bars = LayerBars::for_stderr(image.layers.len());
    let built = build_image(&image, &NullSink, bars.as_progress())
        .with_context(|| format!("building the composefs image of {}", args.reference))?;
    bars.clear();
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
    let (image, source_tag) = if cfsgate_oci::cstorage::is_storage_reference(&staged.reference) {
        (resolve(&staged.reference)?, storage_tag(&staged.reference)?)
    } else {
        let parsed = ImageRef::parse(&staged.reference)?;
        let source_tag = match (&staged.docker, &parsed.selector) {
            (Some(docker), _) => docker.tag.clone(),
            (None, Selector::Tag(tag)) => Some(tag.clone()),
            (None, _) => None,
        };
        (resolve_ref(&parsed, &Platform::current())?, source_tag)
    };
    let mut dest = SealDest::parse(&args.dest)?;
    let default_tag = match (&args.tag, source_tag) {
        (Some(tag), _) => tag.clone(),
        (None, Some(tag)) => format!("{tag}-sealed"),
        (None, None) => "sealed".to_string(),
    };
    let written_as = match &mut dest {
        SealDest::Layout { tag: Some(tag), .. } if args.tag.as_ref().is_some_and(|t| t != tag) => {
            anyhow::bail!(
                "DEST {} names tag {tag:?} and --tag names another",
                args.dest
            )
        }
        SealDest::Layout { tag, path } => {
            let tag = tag.get_or_insert(default_tag);
            format!("oci:{}:{tag}", path.display())
        }
        SealDest::Dir(path) => format!("dir:{}", path.display()),
    };
    let bars = LayerBars::for_stderr(image.layers.len());
    let report = seal_image_to(
        &image,
        &dest,
        SealOptions {
            layer_annotations: args.layer_annotations,
            convention: args.convention,
        },
        bars.as_progress(),
    )
    .with_context(|| format!("sealing {} into {written_as}", args.src))?;
    bars.clear();
    println!("{}", report.manifest_digest);
    eprintln!(
        "sealed {} as {written_as}: composefs image sha256:{}, config {}",
        args.src,
        report.image_digest.to_hex(),
        report.config_digest,
    );
    Ok(())
}

/// The tag a `containers-storage:NAME:TAG` reference names, if it names one.
fn storage_tag(reference: &str) -> Result<Option<String>> {
    use cfsgate_oci::cstorage::{ImageSpec, NameSelector, StorageRef};
    Ok(match StorageRef::parse(reference)?.image {
        ImageSpec::Named {
            selector: NameSelector::Tag(tag),
            ..
        } => Some(tag),
        _ => None,
    })
}

fn resolve(reference: &str) -> Result<ResolvedImage> {
    cfsgate_oci::resolve(reference).with_context(|| format!("resolving {reference}"))
}

/// One progress bar per layer on stderr, or nothing when stderr is not a terminal.
enum LayerBars {
    Off(NoProgress),
    On(TerminalBars),
}

struct TerminalBars {
    multi: MultiProgress,
    layers: usize,
    current: Mutex<Option<ProgressBar>>,
}

impl LayerBars {
    fn for_stderr(layers: usize) -> Self {
        if std::io::stderr().is_terminal() {
            LayerBars::On(TerminalBars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                layers,
                current: Mutex::new(None),
            })
        } else {
            LayerBars::Off(NoProgress)
        }
    }

    fn as_progress(&self) -> &dyn Progress {
        match self {
            LayerBars::Off(none) => none,
            LayerBars::On(bars) => bars,
        }
    }

    fn clear(&self) {
        if let LayerBars::On(bars) = self {
            let _ = bars.multi.clear();
        }
    }
}

impl TerminalBars {
    fn current(&self) -> std::sync::MutexGuard<'_, Option<ProgressBar>> {
        // Only bar handles live here: a panic elsewhere cannot leave them inconsistent.
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Progress for TerminalBars {
    fn layer_started(&self, index: usize, layer: &Layer) {
        let style = ProgressStyle::with_template(
            "{prefix} {spinner} {bytes} of file content hashed ({binary_bytes_per_sec}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = self.multi.add(ProgressBar::no_length().with_style(style));
        let short = layer.digest.hex();
        bar.set_prefix(format!(
            "layer {}/{} {}",
            index + 1,
            self.layers,
            &short[..12.min(short.len())]
        ));
        bar.set_message(format!(
            "[{} compressed]",
            indicatif::HumanBytes(layer.size)
        ));
        bar.enable_steady_tick(TICK);
        *self.current() = Some(bar);
    }

    fn content(&self, bytes: u64) {
        if let Some(bar) = self.current().as_ref() {
            bar.inc(bytes);
        }
    }

    fn layer_done(&self, _index: usize, _layer: &Layer) {
        if let Some(bar) = self.current().take() {
            bar.finish_with_message("done");
        }
    }
}
