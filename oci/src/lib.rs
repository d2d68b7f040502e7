//! OCI images into composefs trees.
#![forbid(unsafe_code)]

pub mod digest;
pub mod error;
pub mod layout;
pub mod resolve;
pub mod sink;

pub use digest::BlobDigest;
pub use error::OciError;
pub use layout::{ImageRef, ImageSource, Selector, SourceKind};
pub use resolve::{resolve, resolve_ref, Compression, Layer, Platform, ResolvedImage};
pub use sink::{DirSink, NullSink, ObjectSink};
pub mod apply;
pub mod tarstream;

pub use apply::{
    build_tree, build_tree_with, BuildOptions, Limits, TreeBuilder, INLINE_CONTENT_MAX,
};
