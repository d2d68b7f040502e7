//! `docker://` images: `cfsgate pull`, and the staging every other command uses for them.
//!
//! | command | does | stdout |
//! |---|---|---|
//! | `cfsgate [--repo DIR] pull docker://HOST/NAME[:TAG\|@DIGEST] [--ref NAME] [--no-partial]` | manifest, config, layers and cosign signatures into the repository (`oci/blobs/sha256/`), then the composefs image as `import` does; zstd:chunked layers only by the files the repository lacks ([`super::partial`]) unless `--no-partial` | `manifest sha256:…` and `composefs sha256:…` lines |
//!
//! `import`, `compute-id`, `seal`, `verify` and `sign` take `docker://` references too: the image
//! is first fetched (verified on arrival) into a temporary OCI layout, which the command then
//! reads as `oci:LAYOUT@DIGEST`. The registry options are the same everywhere: `--tls-verify`,
//! `--cert-dir`, `--authfile`, `--creds`. One progress bar per layer download is drawn on
//! stderr when it is a terminal.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cfsgate_image::store::Repository;
use cfsgate_oci::registry::push_layout_tag;
use cfsgate_oci::registry::staging::pull_staging;
use cfsgate_oci::registry::{
    fetch_image, AuthSource, ClientOptions, Credentials, DockerRef, Endpoint, FetchOptions,
    Fetched, RegistriesConf, RegistryClient,
};
use cfsgate_oci::BlobDigest;
use clap::Args;

use super::progress::{clear, fetch_progress, LayerBars};

/// How to reach a registry (for `docker://` references).
#[derive(Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// Require HTTPS with a verified certificate (false: accept any certificate, or plain HTTP).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// certs.d directory: HOST[:PORT]/*.crt CAs, *.cert/*.key client certificates [default:
    /// /etc/containers/certs.d, /etc/docker/certs.d, ~/.config/containers/certs.d].
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Credentials file (containers-auth.json(5)) instead of the default lookup.
    #[arg(long, value_name = "FILE", conflicts_with = "creds")]
    pub authfile: Option<PathBuf>,
    /// Credentials USER:PASSWORD for the registry.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
    /// registries.conf(5) to use alone [default: $CONTAINERS_REGISTRIES_CONF,
    /// ~/.config/containers/registries.conf or /etc/containers/registries.conf, plus .conf.d/].
    #[arg(long, value_name = "FILE")]
    pub registries_conf: Option<PathBuf>,
}

impl RegistryArgs {
    /// The client options these arguments ask for.
    pub fn client_options(&self) -> Result<ClientOptions> {
        let mut options = ClientOptions {
            tls_verify: self.tls_verify,
            ..ClientOptions::default()
        };
        if let Some(dir) = &self.cert_dir {
            options.cert_dirs = vec![dir.clone()];
        }
        if let Some(file) = &self.authfile {
            options.auth = AuthSource::File(file.clone());
        }
        if let Some(creds) = &self.creds {
            options.auth = AuthSource::Explicit(
                Credentials::parse(creds).map_err(|e| anyhow::anyhow!("--creds: {e}"))?,
            );
        }
        Ok(options)
    }

    /// Connect to an endpoint (an insecure one turns certificate checks off).
    pub fn connect(&self, endpoint: &Endpoint) -> Result<RegistryClient> {
        let mut options = self.client_options()?;
        options.tls_verify &= !endpoint.insecure;
        RegistryClient::connect(&endpoint.reference, &options)
            .with_context(|| format!("connecting to {}", endpoint.reference.host))
    }

    /// registries.conf as these arguments ask.
    pub fn registries_conf(&self) -> Result<RegistriesConf> {
        Ok(RegistriesConf::load(self.registries_conf.as_deref())?)
    }
}

/// Whether a reference names a registry image.
pub fn is_docker(reference: &str) -> bool {
    reference.starts_with(cfsgate_oci::registry::reference::DOCKER_PREFIX)
}

/// An image ready to be read as a local reference; a fetched one lives in a temporary layout
/// that is removed when this is dropped.
pub struct Staged {
    /// `oci:…`, `dir:…` (as given) or `oci:TMP@DIGEST` (fetched).
    pub reference: String,
    /// The registry reference, when fetched.
    pub docker: Option<DockerRef>,
    pub fetched: Option<Fetched>,
    _dir: Option<tempfile::TempDir>,
}

/// `reference` as a local image: a `docker://` one is fetched (with layers when `layers`).
pub fn stage(reference: &str, args: &RegistryArgs, layers: bool) -> Result<Staged> {
    if !is_docker(reference) {
        return Ok(Staged {
            reference: reference.to_string(),
            docker: None,
            fetched: None,
            _dir: None,
        });
    }
    let docker = DockerRef::parse(reference)?;
    let dir = tempfile::Builder::new()
        .prefix("cfsgate-pull-")
        .tempdir()
        .context("creating a temporary layout")?;
    let fetched = fetch(&docker, args, dir.path(), layers)?;
    Ok(Staged {
        reference: fetched.oci_reference.clone(),
        docker: Some(docker),
        fetched: Some(fetched),
        _dir: Some(dir),
    })
}

/// Fetch into `layout`, drawing layer bars on a terminal.
fn fetch(docker: &DockerRef, args: &RegistryArgs, layout: &Path, layers: bool) -> Result<Fetched> {
    with_endpoints(docker, args, |endpoint| {
        fetch_from(endpoint, args, layout, layers)
    })
}

/// `f` on each source of `docker` until one succeeds: mirrors first, in order (a failing one
/// is reported and skipped), then the registry's location, as registries.conf says.
pub fn with_endpoints<T>(
    docker: &DockerRef,
    args: &RegistryArgs,
    mut f: impl FnMut(&Endpoint) -> Result<T>,
) -> Result<T> {
    let endpoints = args.registries_conf()?.pull_endpoints(docker)?;
    let count = endpoints.len();
    let mut last = None;
    for (i, endpoint) in endpoints.into_iter().enumerate() {
        match f(&endpoint) {
            Ok(done) => return Ok(done),
            Err(e) if i + 1 < count => {
                eprintln!(
                    "cfsgate: mirror {} failed, trying the next source: {}",
                    endpoint.reference.name(),
                    super::error_chain(&e)
                );
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no source for {docker}")))
}

fn fetch_from(
    endpoint: &Endpoint,
    args: &RegistryArgs,
    layout: &Path,
    layers: bool,
) -> Result<Fetched> {
    let docker = &endpoint.reference;
    let client = args.connect(endpoint)?;
    let options = FetchOptions {
        layers,
        ..FetchOptions::default()
    };
    let bars = LayerBars::for_stderr(0);
    let result = fetch_image(&client, docker, layout, &options, fetch_progress(&bars))
        .with_context(|| format!("fetching {docker}"));
    clear(&bars);
    result
}

/// `cfsgate verify` with the registry options: a `docker://` image is fetched first (layers
/// only when no `--repo` holds its composefs image) and `--reference` defaults to its
/// `HOST/NAME:TAG`.
#[derive(Args, Debug)]
pub struct VerifyCmd {
    #[command(flatten)]
    pub verify: super::verify::VerifyArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Run `cfsgate verify` (see [`VerifyCmd`]); `Ok(true)` when admitted.
pub fn run_verify(cmd: VerifyCmd) -> Result<bool> {
    let mut args = cmd.verify;
    let staged = stage(&args.image, &cmd.registry, args.repo.is_none())?;
    if let Some(docker) = &staged.docker {
        args.reference
            .get_or_insert_with(|| docker.docker_reference());
    }
    if let (Some(docker), Some(fetched)) = (&staged.docker, &staged.fetched) {
        let digests = [fetched.top_digest, fetched.manifest_digest];
        args.bundles = super::sign::fetch_bundles(&cmd.registry, docker, &digests)?;
    }
    args.image = staged.reference.clone();
    super::verify::run_verify(&args)
}

/// Pull into a repository (see the module docs).
#[derive(Args, Debug)]
pub struct PullArgs {
    /// The image: docker://HOST[:PORT]/NAME[:TAG|@sha256:HEX].
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Name the pulled image (a ref in the repository, a gc root).
    #[arg(long = "ref", value_name = "NAME")]
    pub ref_name: Option<String>,
    /// Download zstd:chunked layers whole instead of only the files the repository lacks.
    #[arg(long)]
    pub no_partial: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Run `cfsgate pull`: blobs into `REPO/oci/blobs/sha256`, then an import of the image.
pub fn run_pull(repo: &Path, args: PullArgs) -> Result<()> {
    let docker = DockerRef::parse(&args.reference)?;
    let repository = Repository::create_or_open(repo)
        .with_context(|| format!("opening or creating the repository {}", repo.display()))?;
    // A layout of this pull whose blobs/ is the repository's (cfsgate_oci::registry::staging).
    let staging = pull_staging(&repository)?;
    if !args.no_partial {
        return super::partial::run_partial_pull(&repository, &docker, &args, staging.path());
    }
    let fetched = fetch(&docker, &args.registry, staging.path(), true)?;
    let image = cfsgate_oci::resolve(&fetched.oci_reference)
        .with_context(|| format!("resolving what was fetched from {docker}"))?;
    let report = super::oci::import_resolved(&repository, &image, args.ref_name.as_deref())
        .with_context(|| format!("importing {docker}"))?;
    println!("manifest {}", fetched.manifest_digest);
    println!("composefs sha256:{}", report.image_digest.to_hex());
    eprintln!(
        "pulled {docker}: {} layer(s) downloaded ({} bytes), {} already present, {} signature tag(s); {} new objects, image {}{}",
        fetched.layers_downloaded,
        fetched.layer_bytes_downloaded,
        fetched.layers_present,
        fetched.signature_tags.len(),
        report.new_objects,
        if report.new_image { "new" } else { "already present" },
        if report.seal.is_some() { ", seal checked" } else { "" },
    );
    Ok(())
}

/// Push the cosign signature manifest tagged `sha256-<hex>.sig` of a staged layout, and its
/// blobs, to the registry the image came from.
pub fn push_signature_tag(
    args: &RegistryArgs,
    docker: &DockerRef,
    layout: &Path,
    signed: &BlobDigest,
) -> Result<BlobDigest> {
    let endpoint = args.registries_conf()?.push_endpoint(docker)?;
    let client = args.connect(&endpoint)?;
    let tag = format!("sha256-{}.sig", signed.hex());
    Ok(push_layout_tag(&client, layout, &tag, &endpoint.reference)?)
}
