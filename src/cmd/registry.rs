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
use cfsgate_oci::registry::staging::pull_staging;
use cfsgate_oci::registry::{
    is_docker, DockerRef, Endpoint, FetchOptions, RegistrySession, RegistrySettings, SessionError,
    Staged,
};
use cfsgate_oci::summary::{pull_summary, pulled_lines};
use cfsgate_verifier::bundle_registry::staged_bundles;
use clap::Args;

use super::progress::{clear, fetch_progress, import_progress, LayerBars};

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
    /// A session with the settings these arguments give (registries.conf loaded).
    pub fn session(&self) -> Result<RegistrySession> {
        Ok(RegistrySession::open(&RegistrySettings {
            tls_verify: self.tls_verify,
            cert_dir: self.cert_dir.clone(),
            authfile: self.authfile.clone(),
            creds: self.creds.clone(),
            registries_conf: self.registries_conf.clone(),
        })?)
    }
}

/// Reports a failed mirror before the next source is tried (the bars of its attempt cleared).
pub fn report_skipped(bars: &Option<LayerBars>) -> impl FnMut(&Endpoint, &SessionError) + '_ {
    move |endpoint, error| {
        clear(bars);
        eprintln!(
            "cfsgate: mirror {} failed, trying the next source: {}",
            endpoint.reference.name(),
            cfsgate_gate::reason_of(error)
        );
    }
}

/// `reference` as a local image: a `docker://` one is fetched (with layers when `layers`).
pub fn stage(reference: &str, args: &RegistryArgs, layers: bool) -> Result<Staged> {
    if !is_docker(reference) {
        return Ok(Staged::local(reference));
    }
    let docker = DockerRef::parse(reference)?;
    let session = args.session()?;
    let bars = LayerBars::for_stderr(0);
    let staged = Staged::fetch(
        &session,
        docker,
        layers,
        fetch_progress(&bars),
        &mut report_skipped(&bars),
    );
    clear(&bars);
    Ok(staged?)
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
    args.bundles = staged_bundles(&staged)?;
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

/// Run `cfsgate pull` (see [`pull`]).
pub fn run_pull(repo: &Path, args: PullArgs) -> Result<()> {
    let ref_name = args.ref_name.as_deref();
    pull(
        repo,
        &args.reference,
        ref_name,
        !args.no_partial,
        &args.registry,
    )
}

/// Pull `reference` into the repository at `repo`: blobs into `REPO/oci/blobs/sha256`, then an
/// import of the image (zstd:chunked layers by their tables of contents when `partial`).
pub fn pull(
    repo: &Path,
    reference: &str,
    ref_name: Option<&str>,
    partial: bool,
    registry: &RegistryArgs,
) -> Result<()> {
    let docker = DockerRef::parse(reference)?;
    let repository = Repository::create_or_open(repo)
        .with_context(|| format!("opening or creating the repository {}", repo.display()))?;
    // A layout of this pull whose blobs/ is the repository's (cfsgate_oci::registry::staging).
    let staging = pull_staging(&repository)?;
    let session = registry.session()?;
    let bars = LayerBars::for_stderr(0);
    if partial {
        let pulled = session.pull_partial(
            &docker,
            staging.path(),
            &repository,
            ref_name,
            fetch_progress(&bars),
            &mut report_skipped(&bars),
        );
        clear(&bars);
        super::partial::print_pulled(&docker, &pulled?);
        return Ok(());
    }
    let fetched = session.fetch(
        &docker,
        staging.path(),
        &FetchOptions::default(),
        fetch_progress(&bars),
        &mut report_skipped(&bars),
    );
    clear(&bars);
    let fetched = fetched?;
    let image = cfsgate_oci::resolve(&fetched.oci_reference)
        .with_context(|| format!("resolving what was fetched from {docker}"))?;
    let bars = LayerBars::for_stderr(image.layers.len());
    let report = cfsgate_oci::import_image(&repository, &image, ref_name, import_progress(&bars));
    clear(&bars);
    let report = report.with_context(|| format!("importing {docker}"))?;
    print!("{}", pulled_lines(&fetched, &report));
    eprintln!("{}", pull_summary(&docker, &fetched, &report));
    Ok(())
}
