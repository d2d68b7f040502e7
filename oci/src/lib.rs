//! OCI images into composefs trees.
//!
//! | module | what it owns |
//! |---|---|
//! | [`digest`] | `sha256:<hex>` blob digests ([`BlobDigest`]) |
//! | [`cstorage`] | `containers-storage:` images (podman's store): records, big data, signatures, layer tars rebuilt from tar-split |
//! | [`layout`] | references (`oci:PATH[:TAG]`, `oci:PATH@sha256:HEX`, `dir:PATH`), image directories, blob reads verified by size and digest before parsing |
//! | [`resolve`](mod@resolve) | index → (nested indexes, platform selection) → manifest → config → layers ([`ResolvedImage`]) |
//! | [`tarstream`] | a strict streaming tar reader (PAX, GNU long names, limits) |
//! | [`apply`] | layers applied in order into one merged [`cfsgate_image::Tree`] (whiteouts, opaque dirs, hard links), staged per layer |
//! | `readahead` (private) | a layer's decompression and diff_id on a second thread, ahead of the tar reader |
//! | [`sink`] | where file contents go while hashed: [`ObjectSink`] (for the store's `ObjectDir` and `PendingObjects`), [`NullSink`] |
//! | [`import`](mod@import) | an image into the object store: objects, composefs image, manifest/config/signatures by digest, a ref |
//! | [`registry`] | `docker://` references, the distribution API client, images and signatures fetched into a local layout |
//! | [`chunked`] | zstd:chunked tables of contents; partial pulls reusing the content index, every fetched file checked against the table |
//! | [`seal`](mod@seal) | the composefs digest as config label `containers.composefs.fsverity`: compute, seal into a layout, check |
//! | [`seal_tag`] | the tag a sealed image gets in a layout destination |
//! | [`summary`] | the summary lines of imports, pulls and seals |
//! | [`unique_keys`] | a key repeated in a manifest, index or config is refused, naming it |
//!
//! Typical use: `build_tree(&resolve("oci:/path:tag")?, &sink)`.
//!
//! ## Relation to composefs-rs (`cfsctl oci compute-id`, composefs-oci 0.9)
//! The merged tree follows composefs-rs's conventions so that the same image yields the same
//! composefs digest: 64-byte inline threshold, whole-second mtimes, root metadata copied from
//! `/usr`, the newest layer's metadata for a directory present in several layers, hard links
//! as shared inodes. Deliberate differences (none affects images written by docker, podman,
//! buildah or umoci):
//! - a missing parent directory is created (0755 root:root, mtime 0) where composefs-rs fails;
//! - whiteouts apply to lower layers only (OCI spec): an entry and a later whiteout of it in the
//!   same layer keep the entry, where composefs-rs removes it;
//! - an image without `/usr` gets its root metadata from the layers' root entry or a default,
//!   where composefs-rs refuses it;
//! - the diff_id of every layer and the digest of every blob are checked (composefs-rs checks
//!   diff_ids only when it has no trusted config splitstream);
//! - global PAX headers are ignored and GNU sparse entries refused (composefs-rs panics on the
//!   former and misreads the latter).

pub mod apply;
pub mod chunked;
pub mod convention;
pub mod cstorage;
pub mod digest;
pub mod error;
pub mod import;
pub mod layout;
pub mod limits;
mod readahead;
pub mod registry;
pub mod resolve;
pub mod seal;
pub mod seal_check;
pub mod seal_tag;
pub mod sink;
pub mod summary;
pub mod tarstream;
pub mod transport;
pub mod unique_keys;

pub use apply::{
    build_tree, build_tree_with, BuildOptions, Limits, TreeBuilder, INLINE_CONTENT_MAX,
};
pub use convention::Convention;
pub use digest::BlobDigest;
pub use error::OciError;
pub use import::{
    build_image, import, import_image, BuiltImage, ImportError, ImportReport, NoProgress, Progress,
    RepoSink,
};
pub use layout::{ImageRef, ImageSource, Selector, SourceKind};
pub use resolve::{resolve_ref, Compression, Layer, Platform, ResolvedImage};
pub use seal::{
    check_seal, check_seal_built, compute_id, compute_id_as, compute_id_with, layer_id, read_seal,
    seal, seal_image, seal_image_to, SealDest, SealError, SealMatch, SealOptions, SealReport,
    ANNOTATION_LAYER_FSVERITY, LABEL_FSVERITY,
};
pub use sink::{NullSink, ObjectSink};
pub use transport::resolve;
