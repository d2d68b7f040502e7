//! Partial pulls from a registry: zstd:chunked layers built from their tables of contents,
//! downloading only the file contents the repository lacks, each checked before it is stored.
//!
//! [`pull_partial`]:
//! 1. fetches the manifest, config and cosign signatures into the layout, every byte verified
//!    ([`fetch_image`] without layers), and resolves the image from there;
//! 2. downloads whole, in parallel, the layers that have no zstd:chunked table of contents
//!    (gzip layers, or zstd without the annotations), digest checked as in any pull;
//! 3. imports the image with [`import_partial`] reading the chunked layers by Range requests
//!    ([`RegistryRanges`]): the table with one request, its sha256 compared with the signed
//!    manifest's annotation before it is parsed; contents found in the repository's content
//!    index reused; the others fetched by merged, bounded ranges, decompressed and checked
//!    against the table's sha256 before they enter the store (a mismatch refuses the pull,
//!    naming the file, and nothing is stored). A table that is what was signed but cannot be
//!    used makes that layer a whole download, with a note saying so.
//!
//! Layer blobs of a partial pull are not kept in the layout (only the whole downloads are):
//! the composefs image and its objects are what the repository keeps of them.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;

use cfsgate_image::store::Repository;

use super::client::RegistryClient;
use super::error::RegistryError;
use super::fetch::{download_blob, download_layers, fetch_image, has_blob};
use super::fetch::{FetchOptions, FetchProgress, Fetched};
use super::reference::DockerRef;
use crate::apply::TreeBuilder;
use crate::chunked::{import_partial, toc_location, PartialReport, PartialSource};
use crate::digest::BlobDigest;
use crate::error::OciError;
use crate::import::{ImportError, ImportReport};
use crate::layout::ImageSource;
use crate::resolve::{Layer, ResolvedImage};
use crate::sink::ObjectSink;

/// What [`pull_partial`] did.
#[derive(Debug)]
pub struct PartialPull {
    /// Manifests, config and signatures fetched; the layers downloaded whole.
    pub fetched: Fetched,
    /// What the import into the repository did.
    pub import: ImportReport,
    /// Tables, ranges, reused and fetched files, fallbacks with why.
    pub partial: PartialReport,
}

/// A partial pull refused.
#[derive(Debug, thiserror::Error)]
pub enum PartialPullError {
    /// Talking to the registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Importing what was fetched failed.
    #[error(transparent)]
    Import(#[from] ImportError),
}

/// Pull `reference` into `repo` through the OCI layout at `layout` (see the module docs).
pub fn pull_partial(
    client: &RegistryClient,
    reference: &DockerRef,
    layout: &Path,
    repo: &Repository,
    ref_name: Option<&str>,
    options: &FetchOptions,
    progress: &dyn FetchProgress,
) -> Result<PartialPull, PartialPullError> {
    let metadata_only = FetchOptions {
        layers: false,
        ..options.clone()
    };
    let mut fetched = fetch_image(client, reference, layout, &metadata_only, progress)?;
    let image = crate::resolve(&fetched.oci_reference).map_err(ImportError::from)?;

    // The layers without a table: whole, in parallel, as a full pull would.
    let whole: Vec<usize> = (0..image.layers.len())
        .filter(|&i| toc_location(&image, i).is_err())
        .collect();
    let blobs: Vec<(BlobDigest, u64)> = whole
        .iter()
        .map(|&i| (image.layers[i].digest, image.layers[i].size))
        .collect();
    let remapped = Remapped {
        inner: progress,
        indices: &whole,
    };
    let (downloaded, bytes, present) = download_layers(
        client,
        &reference.repository,
        layout,
        &blobs,
        options.jobs,
        &remapped,
    )?;
    fetched.layers_downloaded = downloaded;
    fetched.layer_bytes_downloaded = bytes;
    fetched.layers_present = present;

    let source = RegistryRanges::new(client, &reference.repository, layout, &image, progress);
    let (import, partial) = import_partial(repo, &image, &source, ref_name)?;
    for index in source
        .started
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
    {
        progress.layer_done(index, true);
    }
    Ok(PartialPull {
        fetched,
        import,
        partial,
    })
}

/// A layer blob in a registry, read by Range requests; the whole-layer fallback downloads it
/// into the layout first (digest checked) and applies it from there.
pub struct RegistryRanges<'a> {
    client: &'a RegistryClient,
    repository: &'a str,
    layout: &'a Path,
    source: &'a ImageSource,
    progress: &'a dyn FetchProgress,
    /// Layer index by digest (for progress).
    indices: HashMap<BlobDigest, usize>,
    /// Layers whose progress was started.
    started: Mutex<HashSet<usize>>,
}

impl<'a> RegistryRanges<'a> {
    /// Ranges of `image`'s layers from `repository` on `client`; whole layers go to `layout`
    /// (the layout `image` was resolved from).
    pub fn new(
        client: &'a RegistryClient,
        repository: &'a str,
        layout: &'a Path,
        image: &'a ResolvedImage,
        progress: &'a dyn FetchProgress,
    ) -> Self {
        let indices = image
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| (l.digest, i))
            .collect();
        RegistryRanges {
            client,
            repository,
            layout,
            source: &image.source,
            progress,
            indices,
            started: Mutex::new(HashSet::new()),
        }
    }

    /// The layer's index, its progress started once.
    fn start(&self, layer: &Layer) -> usize {
        let index = self.indices.get(&layer.digest).copied().unwrap_or(0);
        let mut started = self.started.lock().unwrap_or_else(|p| p.into_inner());
        if started.insert(index) {
            self.progress
                .layer_started(index, &layer.digest, layer.size);
        }
        index
    }
}

impl PartialSource for RegistryRanges<'_> {
    fn open_range(&self, layer: &Layer, range: Range<u64>) -> io::Result<Box<dyn Read + '_>> {
        if range.end > layer.size || range.start > range.end {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("range {range:?} is outside the {} byte blob", layer.size),
            ));
        }
        let index = self.start(layer);
        let body = self
            .client
            .open_blob_range(self.repository, &layer.digest, range)
            .map_err(io::Error::other)?;
        Ok(Box::new(Counted {
            inner: body,
            report: move |n| self.progress.layer_bytes(index, n),
        }))
    }

    fn apply_full(
        &self,
        builder: &mut TreeBuilder,
        index: usize,
        layer: &Layer,
        sink: &dyn ObjectSink,
    ) -> Result<(), OciError> {
        if !has_blob(self.layout, &layer.digest, layer.size) {
            let bar = self.start(layer);
            download_blob(
                self.client,
                self.repository,
                self.layout,
                &layer.digest,
                layer.size,
                &|n| self.progress.layer_bytes(bar, n),
            )
            .map_err(|e| OciError::Layer {
                layer: index,
                digest: layer.digest,
                reason: format!("downloading the whole layer: {e}"),
            })?;
        }
        builder.apply_layer(self.source, index, layer, sink)
    }
}

/// Reports the bytes read through it.
struct Counted<R, F> {
    inner: R,
    report: F,
}

impl<R: Read, F: Fn(u64)> Read for Counted<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.report)(n as u64);
        Ok(n)
    }
}

/// Progress of a subset of the layers, reported with their indices in the image.
struct Remapped<'a> {
    inner: &'a dyn FetchProgress,
    indices: &'a [usize],
}

impl Remapped<'_> {
    fn index(&self, i: usize) -> usize {
        self.indices.get(i).copied().unwrap_or(i)
    }
}

impl FetchProgress for Remapped<'_> {
    fn layer_started(&self, index: usize, digest: &BlobDigest, size: u64) {
        self.inner.layer_started(self.index(index), digest, size);
    }
    fn layer_bytes(&self, index: usize, bytes: u64) {
        self.inner.layer_bytes(self.index(index), bytes);
    }
    fn layer_done(&self, index: usize, downloaded: bool) {
        self.inner.layer_done(self.index(index), downloaded);
    }
}
