//! `cfsgate pull` of zstd:chunked images (the default; `--no-partial` downloads every layer
//! whole): only the file contents the repository lacks are downloaded, by Range requests, each
//! checked against the signed table of contents before it is stored (the logic:
//! `cfsgate_oci::registry::partial_pull`). Layers without a usable table are downloaded whole,
//! with a note on stderr saying so.
//!
//! stdout: `manifest sha256:…` and `composefs sha256:…`, as for a full pull. stderr: the notes,
//! then a summary (layers by table and whole, bytes by ranges and whole, files reused and
//! fetched). A byte bar per layer is drawn on stderr when it is a terminal.

use std::path::Path;

use anyhow::{Context, Result};
use cfsgate_image::store::Repository;
use cfsgate_oci::registry::{pull_partial, DockerRef, FetchOptions, PartialPull};

use super::progress::{clear, fetch_progress, LayerBars};
use super::registry::{with_endpoints, PullArgs};

/// Pull `docker` into `repository` through the staging layout `layout`, partially.
pub fn run_partial_pull(
    repository: &Repository,
    docker: &DockerRef,
    args: &PullArgs,
    layout: &Path,
) -> Result<()> {
    let pulled = with_endpoints(docker, &args.registry, |endpoint| {
        let client = args.registry.connect(endpoint)?;
        let bars = LayerBars::for_stderr(0);
        let result = pull_partial(
            &client,
            &endpoint.reference,
            layout,
            repository,
            args.ref_name.as_deref(),
            &FetchOptions::default(),
            fetch_progress(&bars),
        )
        .with_context(|| format!("pulling {}", endpoint.reference));
        clear(&bars);
        result
    })?;
    print_pulled(docker, &pulled);
    Ok(())
}

fn print_pulled(docker: &DockerRef, pulled: &PartialPull) {
    let PartialPull {
        fetched,
        import,
        partial,
    } = pulled;
    println!("manifest {}", fetched.manifest_digest);
    println!("composefs sha256:{}", import.image_digest.to_hex());
    for note in &partial.notes {
        eprintln!("cfsgate: {note}");
    }
    eprintln!(
        "pulled {docker}: {} layer(s) by table of contents ({} bytes in {} range requests; {} files fetched, {} reused = {} bytes not downloaded), {} whole ({} downloaded, {} bytes; {} already present), {} signature tag(s); {} new objects, image {}{}",
        partial.chunked_layers,
        partial.range_bytes,
        partial.range_requests,
        partial.files_fetched,
        partial.files_reused,
        partial.bytes_reused,
        partial.full_layers,
        fetched.layers_downloaded,
        fetched.layer_bytes_downloaded,
        fetched.layers_present,
        fetched.signature_tags.len(),
        import.new_objects,
        if import.new_image { "new" } else { "already present" },
        if import.seal.is_some() { ", seal checked" } else { "" },
    );
}
