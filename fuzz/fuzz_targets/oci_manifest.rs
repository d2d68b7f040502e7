//! Fuzz image resolution: index → manifest → config → layers, every blob read by digest and
//! verified. The input packs the files of one image (see `cfsgate_fuzz::pieces`): its first byte
//! picks an OCI layout (even) or a skopeo `dir:` image (odd); file 0 is `index.json` or
//! `manifest.json`, the others are blobs stored under their sha256. A resolved image is then
//! built into a tree (contents hashed into a `NullSink`), which must be writable and readable.
#![no_main]

use std::sync::OnceLock;

use cfsgate_fuzz::{pieces, read_own_image, write_or_refuse, ScratchDir};
use cfsgate_image::erofs::writer::WriteOptions;
use cfsgate_oci::apply::{BuildOptions, Limits};
use cfsgate_oci::{build_tree_with, resolve_ref, BlobDigest, ImageRef, NullSink, Platform};
use cfsgate_oci::{Selector, SourceKind};
use libfuzzer_sys::fuzz_target;

/// Bounds that keep one execution fast.
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
    let Some((&selector, packed)) = data.split_first() else {
        return;
    };
    let files = pieces(packed);
    let dir = scratch();
    dir.clear().expect("clearing the scratch directory");
    let root = dir.path();
    let kind = if selector % 2 == 0 {
        SourceKind::OciLayout
    } else {
        SourceKind::Dir
    };
    let write = |rel: &str, bytes: &[u8]| {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("creating a layout directory");
        }
        std::fs::write(path, bytes).expect("writing a layout file");
    };
    // Only the two file transports are built here (containers-storage needs a graph root).
    let oci_layout = matches!(kind, SourceKind::OciLayout);
    if oci_layout {
        write("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        write("index.json", &files[0]);
    } else {
        write("version", b"Directory Transport Version: 1.1\n");
        write("manifest.json", &files[0]);
    }
    for blob in &files[1..] {
        let hex = BlobDigest::of(blob).hex();
        if oci_layout {
            write(&format!("blobs/sha256/{hex}"), blob);
        } else {
            write(&hex, blob);
        }
    }
    let reference = ImageRef {
        kind,
        path: root.clone(),
        selector: Selector::Default,
    };
    let platform = Platform::new("linux", "amd64", None);
    let Ok(image) = resolve_ref(&reference, &platform) else {
        return;
    };
    let opts = BuildOptions {
        limits: LIMITS,
        keep_subsecond_mtime: false,
    };
    let Ok(tree) = build_tree_with(&image, &NullSink, &opts) else {
        return;
    };
    if let Some(bytes) = write_or_refuse(&tree, &WriteOptions::default()) {
        read_own_image(&bytes, "written from a resolved image's tree");
    }
});
