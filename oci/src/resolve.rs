//! From a reference to one image manifest, its config and its layers.
//!
//! Resolution walks `index.json` (OCI layout) or `manifest.json` (`dir:`), then any nested image
//! indexes or Docker manifest lists, picking the child for the wanted [`Platform`], until it
//! reaches an image manifest. Every blob on the way is read by digest and verified before it is
//! parsed; the media type a descriptor claims must agree with the `mediaType` inside the JSON.
//! A key repeated in any object of an index, manifest or config is refused
//! ([`crate::unique_keys`]), naming the key.
//!
//! | media type | what |
//! |---|---|
//! | `application/vnd.oci.image.index.v1+json` | OCI image index |
//! | `application/vnd.docker.distribution.manifest.list.v2+json` | Docker manifest list |
//! | `application/vnd.oci.image.manifest.v1+json` | OCI image manifest |
//! | `application/vnd.docker.distribution.manifest.v2+json` | Docker image manifest (schema 2) |
//! | `application/vnd.oci.image.config.v1+json`, `application/vnd.docker.container.image.v1+json` | image config |
//! | layer types | see [`Compression::from_media_type`] |
//!
//! Platform matching: `os` and `architecture` must be equal; a wanted `variant` must be equal
//! (with `arm64` ≡ `arm64/v8` and `arm` ≡ `arm/v7` when one side omits it); a wanted
//! `os.version` must be equal. The first matching child in index order wins. A child that is
//! itself an index is entered when it has no platform or a matching one.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::Deserialize;

use crate::digest::BlobDigest;
use crate::error::OciError;
use crate::layout::{
    ImageRef, ImageSource, Selector, SourceKind, MAX_CONFIG_SIZE, MAX_INDEX_SIZE, MAX_MANIFEST_SIZE,
};
use crate::unique_keys::check_unique_keys;

/// Media type of an OCI image index.
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of a Docker manifest list (read as an index).
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Media type of an OCI image manifest.
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of a Docker schema 2 manifest (read as an OCI manifest).
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Media type of an OCI image config.
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of a Docker image config (read as an OCI config).
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// The index annotation that names a tag in an OCI layout.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Deepest chain of nested indexes followed (real images use one level).
pub const MAX_INDEX_DEPTH: usize = 4;
pub use crate::limits::MAX_LAYERS;

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// An uncompressed tar.
    None,
    /// A gzip-compressed tar.
    Gzip,
    /// A zstd-compressed tar (including zstd:chunked).
    Zstd,
}

impl Compression {
    /// The compression a layer media type names, or `None` for a type that is not a layer.
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        Some(match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Compression::Zstd,
            _ => return None,
        })
    }
}

/// The platform to select from an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `os` (`linux`).
    pub os: String,
    /// `architecture`, GOARCH spelling (`amd64`, `arm64`).
    pub architecture: String,
    /// `variant` (`v8` for arm64), when one is asked for.
    pub variant: Option<String>,
    /// `os.version`, when one is asked for.
    pub os_version: Option<String>,
}

impl Platform {
    /// `os/arch[/variant]`.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.into(),
            architecture: architecture.into(),
            variant: variant.map(Into::into),
            os_version: None,
        }
    }

    /// The platform this program runs on, in OCI (GOARCH) names.
    pub fn current() -> Self {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", None),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform::new(std::env::consts::OS, arch, variant)
    }

    fn default_variant(arch: &str) -> Option<&'static str> {
        match arch {
            "arm64" => Some("v8"),
            "arm" => Some("v7"),
            _ => None,
        }
    }

    /// Whether an index entry's platform satisfies this wanted platform.
    pub fn matches(&self, p: &oci_spec::image::Platform) -> bool {
        if p.os().to_string() != self.os || p.architecture().to_string() != self.architecture {
            return false;
        }
        if let Some(want) = &self.variant {
            let have = p
                .variant()
                .as_deref()
                .or(Self::default_variant(&self.architecture));
            let want = Some(want.as_str());
            if have != want {
                return false;
            }
        }
        if let Some(want) = &self.os_version {
            if p.os_version().as_deref() != Some(want.as_str()) {
                return false;
            }
        }
        true
    }
}

/// One layer to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// The layer blob's digest.
    pub digest: BlobDigest,
    /// The blob's size in bytes, from the manifest.
    pub size: u64,
    /// The layer's media type as written.
    pub media_type: String,
    /// How the blob is compressed (from the media type).
    pub compression: Compression,
    /// sha256 of the uncompressed tar, from the config's `rootfs.diff_ids`.
    pub diff_id: BlobDigest,
}

/// An image resolved down to one manifest, with its verified bytes.
#[derive(Debug)]
pub struct ResolvedImage {
    /// Where the image was read from.
    pub source: ImageSource,
    /// Indexes walked through, outermost first (not including `index.json` itself).
    pub index_chain: Vec<BlobDigest>,
    /// sha256 of the manifest's exact bytes.
    pub manifest_digest: BlobDigest,
    /// The manifest's media type.
    pub manifest_media_type: String,
    /// The manifest's exact bytes (what a signature covers).
    pub manifest_bytes: Vec<u8>,
    /// The parsed manifest.
    pub manifest: ImageManifest,
    /// The image config's digest, from the manifest.
    pub config_digest: BlobDigest,
    /// The config's media type, from the manifest.
    pub config_media_type: String,
    /// The config's exact bytes.
    pub config_bytes: Vec<u8>,
    /// The layers in application order, lowest first.
    pub layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct ConfigRootfs {
    rootfs: Rootfs,
}

#[derive(Deserialize)]
struct Rootfs {
    #[serde(rename = "type")]
    kind: String,
    diff_ids: Vec<String>,
}

#[derive(Deserialize)]
struct MediaTypeProbe {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<serde::de::IgnoredAny>,
    config: Option<serde::de::IgnoredAny>,
}

enum Node {
    Index(Box<ImageIndex>),
    Manifest(Box<ImageManifest>, String),
}

/// The blob digest a descriptor names (sha256 only).
pub fn descriptor_digest(desc: &Descriptor) -> Result<BlobDigest, OciError> {
    Ok(BlobDigest::parse(desc.digest().as_ref())?)
}

/// Resolve a parsed reference for `platform`.
pub fn resolve_ref(reference: &ImageRef, platform: &Platform) -> Result<ResolvedImage, OciError> {
    let source = ImageSource::open(reference.kind, &reference.path)?;
    let name = reference.path.display().to_string();
    let (digest, bytes, declared) = match reference.kind {
        SourceKind::OciLayout => {
            let index_bytes = source.read_small_file("index.json", MAX_INDEX_SIZE)?;
            let index: ImageIndex = serde_json::from_slice(&index_bytes)
                .map_err(|e| source.layout_error(format!("index.json: {e}")))?;
            let top = select_top(&source, &index, &reference.selector, &name)?;
            let digest = descriptor_digest(&top)?;
            let declared = top.media_type().to_string();
            let bytes = source.read_blob("manifest", &digest, top.size(), limit_for(&declared))?;
            (digest, bytes, Some(declared))
        }
        SourceKind::Dir => {
            if reference.selector != Selector::Default {
                return Err(OciError::Reference {
                    reference: name,
                    reason: "a dir: image takes no tag or digest".into(),
                });
            }
            let bytes = source.read_small_file("manifest.json", MAX_MANIFEST_SIZE)?;
            (BlobDigest::of(&bytes), bytes, None)
        }
        SourceKind::ContainersStorage => {
            return Err(OciError::Reference {
                reference: name,
                reason: "a containers-storage image is resolved by its reference text".into(),
            })
        }
    };
    resolve_from(source, digest, bytes, declared, platform, &name)
}

fn limit_for(media_type: &str) -> u64 {
    if media_type == MEDIA_OCI_INDEX || media_type == MEDIA_DOCKER_LIST {
        MAX_INDEX_SIZE
    } else {
        MAX_MANIFEST_SIZE
    }
}

fn select_top(
    source: &ImageSource,
    index: &ImageIndex,
    selector: &Selector,
    name: &str,
) -> Result<Descriptor, OciError> {
    let not_found = |reason: String| OciError::NotFound {
        reference: name.into(),
        reason,
    };
    let tags = || {
        index
            .manifests()
            .iter()
            .filter_map(|d| d.annotations().as_ref()?.get(ANNOTATION_REF_NAME).cloned())
            .collect::<Vec<_>>()
    };
    match selector {
        Selector::Default => match index.manifests().as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(not_found("index.json lists no image".into())),
            _ => Err(not_found(format!(
                "index.json lists several images; name one by tag: {:?}",
                tags()
            ))),
        },
        Selector::Tag(tag) => {
            let mut found = index.manifests().iter().filter(|d| {
                d.annotations()
                    .as_ref()
                    .and_then(|a| a.get(ANNOTATION_REF_NAME))
                    == Some(tag)
            });
            match (found.next(), found.next()) {
                (Some(d), None) => Ok(d.clone()),
                (Some(_), Some(_)) => Err(not_found(format!(
                    "tag {tag:?} names several index.json entries"
                ))),
                (None, _) => Err(not_found(format!(
                    "no image tagged {tag:?} (tags: {:?})",
                    tags()
                ))),
            }
        }
        Selector::Digest(want) => {
            // Breadth-first through index.json and nested indexes, bounded by MAX_INDEX_DEPTH.
            let mut level: Vec<Descriptor> = index.manifests().clone();
            for _ in 0..=MAX_INDEX_DEPTH {
                let mut next = Vec::new();
                for d in &level {
                    let digest = descriptor_digest(d)?;
                    if digest == *want {
                        return Ok(d.clone());
                    }
                    let mt = d.media_type().to_string();
                    if mt == MEDIA_OCI_INDEX || mt == MEDIA_DOCKER_LIST {
                        let bytes =
                            source.read_blob("image index", &digest, d.size(), MAX_INDEX_SIZE)?;
                        let child: ImageIndex =
                            serde_json::from_slice(&bytes).map_err(|e| OciError::Json {
                                what: "image index",
                                digest,
                                reason: e.to_string(),
                            })?;
                        next.extend(child.manifests().iter().cloned());
                    }
                }
                level = next;
            }
            Err(not_found(format!(
                "no manifest or index with digest {want}"
            )))
        }
    }
}

fn parse_node(digest: BlobDigest, bytes: &[u8], declared: Option<&str>) -> Result<Node, OciError> {
    check_unique_keys(bytes).map_err(|reason| OciError::Json {
        what: "manifest",
        digest,
        reason,
    })?;
    let probe: MediaTypeProbe = serde_json::from_slice(bytes).map_err(|e| OciError::Json {
        what: "manifest",
        digest,
        reason: e.to_string(),
    })?;
    let media_type = match (declared, probe.media_type.as_deref()) {
        (Some(d), Some(inner)) if d != inner => {
            return Err(OciError::MediaType {
                what: "manifest",
                digest,
                media_type: format!("{d} (descriptor) but {inner} (content)"),
            })
        }
        (Some(d), _) => d.to_string(),
        (None, Some(inner)) => inner.to_string(),
        (None, None) if probe.manifests.is_some() => MEDIA_OCI_INDEX.to_string(),
        (None, None) if probe.config.is_some() => MEDIA_OCI_MANIFEST.to_string(),
        (None, None) => {
            return Err(OciError::MediaType {
                what: "manifest",
                digest,
                media_type: "(none)".into(),
            })
        }
    };
    match media_type.as_str() {
        MEDIA_OCI_INDEX | MEDIA_DOCKER_LIST => serde_json::from_slice(bytes)
            .map(|i| Node::Index(Box::new(i)))
            .map_err(|e| OciError::Json {
                what: "image index",
                digest,
                reason: e.to_string(),
            }),
        MEDIA_OCI_MANIFEST | MEDIA_DOCKER_MANIFEST => serde_json::from_slice(bytes)
            .map(|m| Node::Manifest(Box::new(m), media_type.clone()))
            .map_err(|e| OciError::Json {
                what: "manifest",
                digest,
                reason: e.to_string(),
            }),
        _ => Err(OciError::MediaType {
            what: "manifest",
            digest,
            media_type,
        }),
    }
}

/// The entry of `index` to follow for `platform`: the first whose platform matches, or a
/// nested index without a platform.
pub fn select_child<'a>(index: &'a ImageIndex, platform: &Platform) -> Option<&'a Descriptor> {
    index.manifests().iter().find(|d| {
        let mt = d.media_type().to_string();
        let nested = mt == MEDIA_OCI_INDEX || mt == MEDIA_DOCKER_LIST;
        match d.platform() {
            Some(p) => platform.matches(p),
            None => nested,
        }
    })
}

/// Continue resolution from a verified manifest or index blob.
pub(crate) fn resolve_from(
    source: ImageSource,
    mut digest: BlobDigest,
    mut bytes: Vec<u8>,
    mut declared: Option<String>,
    platform: &Platform,
    name: &str,
) -> Result<ResolvedImage, OciError> {
    let mut index_chain = Vec::new();
    loop {
        match parse_node(digest, &bytes, declared.as_deref())? {
            Node::Manifest(manifest, media_type) => {
                return finish(source, index_chain, digest, media_type, bytes, *manifest);
            }
            Node::Index(index) => {
                if index_chain.len() >= MAX_INDEX_DEPTH {
                    return Err(OciError::NotFound {
                        reference: name.into(),
                        reason: format!("image indexes nested deeper than {MAX_INDEX_DEPTH}"),
                    });
                }
                index_chain.push(digest);
                let child = select_child(&index, platform).ok_or_else(|| OciError::NotFound {
                    reference: name.into(),
                    reason: format!(
                        "index {digest} has no manifest for platform {}/{}{}",
                        platform.os,
                        platform.architecture,
                        platform
                            .variant
                            .as_deref()
                            .map(|v| format!("/{v}"))
                            .unwrap_or_default()
                    ),
                })?;
                digest = descriptor_digest(child)?;
                let mt = child.media_type().to_string();
                bytes = source.read_blob("manifest", &digest, child.size(), limit_for(&mt))?;
                declared = Some(mt);
            }
        }
    }
}

fn finish(
    source: ImageSource,
    index_chain: Vec<BlobDigest>,
    manifest_digest: BlobDigest,
    manifest_media_type: String,
    manifest_bytes: Vec<u8>,
    manifest: ImageManifest,
) -> Result<ResolvedImage, OciError> {
    let config = manifest.config();
    let config_digest = descriptor_digest(config)?;
    let config_media_type = config.media_type().to_string();
    if config_media_type != MEDIA_OCI_CONFIG && config_media_type != MEDIA_DOCKER_CONFIG {
        return Err(OciError::MediaType {
            what: "image config",
            digest: config_digest,
            media_type: config_media_type,
        });
    }
    let config_bytes = source.read_blob(
        "image config",
        &config_digest,
        config.size(),
        MAX_CONFIG_SIZE,
    )?;
    check_unique_keys(&config_bytes).map_err(|reason| OciError::Json {
        what: "image config",
        digest: config_digest,
        reason,
    })?;
    let rootfs: ConfigRootfs =
        serde_json::from_slice(&config_bytes).map_err(|e| OciError::Json {
            what: "image config",
            digest: config_digest,
            reason: e.to_string(),
        })?;
    let config_err = |reason: String| OciError::Config {
        config: config_digest,
        reason,
    };
    if rootfs.rootfs.kind != "layers" {
        return Err(config_err(format!(
            "rootfs.type is {:?}, not \"layers\"",
            rootfs.rootfs.kind
        )));
    }
    if manifest.layers().len() > MAX_LAYERS {
        return Err(OciError::Limit {
            reason: format!(
                "{} layers (the limit is {MAX_LAYERS})",
                manifest.layers().len()
            ),
        });
    }
    if rootfs.rootfs.diff_ids.len() != manifest.layers().len() {
        return Err(config_err(format!(
            "{} diff_ids for {} manifest layers",
            rootfs.rootfs.diff_ids.len(),
            manifest.layers().len()
        )));
    }
    let mut layers = Vec::with_capacity(manifest.layers().len());
    for (desc, diff_id) in manifest.layers().iter().zip(&rootfs.rootfs.diff_ids) {
        let digest = descriptor_digest(desc)?;
        let media_type = desc.media_type().to_string();
        let compression =
            Compression::from_media_type(&media_type).ok_or_else(|| OciError::MediaType {
                what: "layer",
                digest,
                media_type: media_type.clone(),
            })?;
        layers.push(Layer {
            digest,
            size: desc.size(),
            media_type,
            compression,
            diff_id: BlobDigest::parse(diff_id)?,
        });
    }
    Ok(ResolvedImage {
        source,
        index_chain,
        manifest_digest,
        manifest_media_type,
        manifest_bytes,
        manifest,
        config_digest,
        config_media_type,
        config_bytes,
        layers,
    })
}
