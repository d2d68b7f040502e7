//! Fuzz layer application: the input is one layer blob (a tar, or gzip/zstd by magic number) of
//! a `dir:` image, applied with [`TreeBuilder`] into a tree (contents hashed into a
//! [`NullSink`]). A tree built from a layer must be writable as an image the reader accepts.
#![no_main]

use std::sync::OnceLock;

use cfsgate_fuzz::{read_own_image, write_or_refuse, ScratchDir};
use cfsgate_image::erofs::writer::WriteOptions;
use cfsgate_oci::apply::{BuildOptions, Limits};
use cfsgate_oci::{BlobDigest, Compression, ImageSource, Layer, NullSink, SourceKind, TreeBuilder};
use libfuzzer_sys::fuzz_target;

/// Bounds that keep one execution fast (a decompression bomb stops here, not at 1 TiB).
const LIMITS: Limits = Limits {
    max_uncompressed_bytes: 16 << 20,
    max_layer_entries: 20_000,
    max_inodes: 20_000,
};

fn scratch() -> &'static ScratchDir {
    static DIR: OnceLock<ScratchDir> = OnceLock::new();
    DIR.get_or_init(|| ScratchDir::new().expect("creating the scratch directory"))
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    dir.clear().expect("clearing the scratch directory");
    let root = dir.path();
    std::fs::write(root.join("version"), "Directory Transport Version: 1.1\n")
        .expect("writing version");
    let digest = BlobDigest::of(data);
    std::fs::write(root.join(digest.hex()), data).expect("writing the layer blob");
    let (compression, media_type) = match data {
        [0x1f, 0x8b, ..] => (
            Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+gzip",
        ),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => (
            Compression::Zstd,
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
        _ => (Compression::None, "application/vnd.oci.image.layer.v1.tar"),
    };
    let layer = Layer {
        digest,
        size: data.len() as u64,
        media_type: media_type.to_string(),
        compression,
        // Right for an uncompressed layer; a compressed one ends in a diff_id mismatch after
        // the whole stream has been applied, which is still all the parsing.
        diff_id: digest,
    };
    let source = ImageSource::open(SourceKind::Dir, &root).expect("opening the scratch source");
    let mut builder = TreeBuilder::new(BuildOptions {
        limits: LIMITS,
        keep_subsecond_mtime: data.len().is_multiple_of(2),
    });
    if builder.apply_layer(&source, 0, &layer, &NullSink).is_err() {
        return;
    }
    let Ok(tree) = builder.finish() else { return };
    if let Some(image) = write_or_refuse(&tree, &WriteOptions::default()) {
        read_own_image(&image, "written from a layer's tree");
    }
});
