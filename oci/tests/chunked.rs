//! zstd:chunked partial imports of images made by umoci and skopeo (`--dest-compress-format
//! zstd:chunked`), read by ranges from the layout's blob files: the composefs image equals a
//! full import's; contents the repository has are reused through the content index; a file
//! whose bytes differ from the table, or a table that differs from the manifest's checksum, is
//! refused with nothing stored; layers without a table fall back to the whole blob.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cfsgate_image::store::Repository;
use cfsgate_oci::chunked::{
    import_partial, ChunkedError, LayoutRanges, PartialReport, TocError, TocLocation,
};
use cfsgate_oci::{import_image, resolve, ImportError, NoProgress, ResolvedImage};
use common::*;

fn chunked_image(work: &Path, seed: &str, files: u32, new_files: u32) -> PathBuf {
    fs::create_dir_all(work).unwrap();
    run(Command::new("sh")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/oci/make-chunked-image.sh"),
        )
        .arg(work)
        .arg(seed)
        .arg(files.to_string())
        .arg(new_files.to_string()));
    work.to_path_buf()
}

fn open(layout: &Path) -> ResolvedImage {
    resolve(&format!("oci:{}:test", layout.display())).unwrap()
}

fn partial(repo: &Repository, image: &ResolvedImage) -> Result<PartialReport, ImportError> {
    let source = LayoutRanges {
        source: &image.source,
    };
    import_partial(repo, image, &source, Some("test")).map(|(import, report)| {
        assert_eq!(repo.read_ref("test").unwrap().unwrap(), import.image_digest);
        report
    })
}

fn layer_bytes(image: &ResolvedImage) -> u64 {
    image.layers.iter().map(|l| l.size).sum()
}

/// (objects, images, refs) file names: what a repository holds.
fn contents(repo: &Path) -> (Vec<String>, Vec<String>, Vec<String>) {
    let list = |dir: &str, depth2: bool| -> Vec<String> {
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir(repo.join(dir)) else {
            return out;
        };
        for e in entries {
            let e = e.unwrap();
            if depth2 && e.path().is_dir() {
                for f in fs::read_dir(e.path()).unwrap() {
                    out.push(format!(
                        "{}/{}",
                        e.file_name().to_string_lossy(),
                        f.unwrap().file_name().to_string_lossy()
                    ));
                }
            } else {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        out.sort();
        out
    };
    (
        list("objects", true),
        list("images", false),
        list("refs", false),
    )
}

#[test]
fn partial_import_builds_the_full_import_image() {
    if !have_root("partial_import_builds_the_full_import_image") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = chunked_image(&work.path().join("img"), "one", 60, 6);
    let zc = open(&dir.join("zc"));
    let gz = open(&dir.join("src"));
    assert!(zc.layers.iter().all(|l| l.media_type.ends_with("+zstd")));
    for (i, d) in zc.manifest.layers().iter().enumerate() {
        let location = TocLocation::from_annotations(d.annotations().as_ref(), zc.layers[i].size);
        assert!(matches!(location, Ok(Some(_))), "layer {i}: {location:?}");
    }

    // The reference: full imports of the zstd:chunked layers and of the original gzip ones.
    let full = Repository::create_or_open(work.path().join("full")).unwrap();
    let full_report = import_image(&full, &zc, None, &NoProgress).unwrap();
    let gz_repo = Repository::create_or_open(work.path().join("gz")).unwrap();
    let gz_report = import_image(&gz_repo, &gz, None, &NoProgress).unwrap();
    assert_eq!(full_report.image_digest, gz_report.image_digest);

    // Partial into an empty repository: everything fetched by ranges, the same image and objects.
    let repo_path = work.path().join("partial");
    let repo = Repository::create_or_open(&repo_path).unwrap();
    let report = partial(&repo, &zc).unwrap();
    assert_eq!(
        (report.chunked_layers, report.full_layers),
        (2, 0),
        "{report:?}"
    );
    assert_eq!(report.files_reused, 0);
    assert!(report.range_bytes <= layer_bytes(&zc), "{report:?}");
    assert!(report.range_requests <= 2 * (1 + cfsgate_oci::chunked::MAX_RANGE_REQUESTS as u64));
    let image = repo.read_ref("test").unwrap().unwrap();
    assert_eq!(image, full_report.image_digest);
    assert_eq!(
        contents(&repo_path).0,
        contents(&work.path().join("full")).0
    );
    assert_eq!(
        fs::read(repo_path.join("images").join(image.to_hex())).unwrap(),
        fs::read(work.path().join("full/images").join(image.to_hex())).unwrap()
    );

    // Again into the same repository: every external file is reused, only small ones fetched.
    let again = partial(&repo, &zc).unwrap();
    assert_eq!(
        again.files_reused + again.files_fetched,
        report.files_fetched
    );
    assert!(
        again.files_reused > 60 && again.files_fetched < 20,
        "{again:?}"
    );
    assert!(again.range_bytes < report.range_bytes / 20, "{again:?}");

    // The full import indexed its objects too: a partial pull into it downloads no big file.
    let into_full = partial(&full, &zc).unwrap();
    assert_eq!(into_full.files_reused, again.files_reused);

    // gzip layers have no table: the whole layer, saying so, and still the same image.
    let gz_partial = Repository::create_or_open(work.path().join("gz-partial")).unwrap();
    let report = partial(&gz_partial, &gz).unwrap();
    assert_eq!((report.chunked_layers, report.full_layers), (0, 2));
    assert!(
        report
            .notes
            .iter()
            .all(|n| n.contains("downloading the whole layer")),
        "{:?}",
        report.notes
    );
    assert_eq!(gz_partial.read_ref("test").unwrap().unwrap(), image);
}

#[test]
fn ninety_percent_in_store_downloads_little() {
    if !have_root("ninety_percent_in_store_downloads_little") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    // v1 and v2 share the seeded files; v2 adds new ones (and its layers differ byte for byte:
    // other mtimes, other random files).
    let v1 = open(&chunked_image(&work.path().join("v1"), "shared", 120, 0).join("zc"));
    let v2 = open(&chunked_image(&work.path().join("v2"), "shared", 120, 12).join("zc"));
    assert_ne!(v1.layers[0].digest, v2.layers[0].digest);
    let repo = Repository::create_or_open(work.path().join("repo")).unwrap();
    partial(&repo, &v1).unwrap();
    let report = partial(&repo, &v2).unwrap();
    let total = layer_bytes(&v2);
    eprintln!(
        "second pull: {} of {total} layer bytes in {} requests: {report:?}",
        report.range_bytes, report.range_requests
    );
    assert!(
        report.range_bytes * 5 <= total,
        "{} of {total}",
        report.range_bytes
    );
    assert!(report.files_reused >= 120);
    let fresh = Repository::create_or_open(work.path().join("fresh")).unwrap();
    let full = import_image(&fresh, &v2, None, &NoProgress).unwrap();
    assert_eq!(repo.read_ref("test").unwrap().unwrap(), full.image_digest);
}

/// Flip one byte of a layer blob at `offset` (as a hostile mirror would serve it).
fn corrupt(image: &ResolvedImage, layer: usize, offset: u64) {
    let path = image
        .source
        .path()
        .join(image.source.blob_relpath(&image.layers[layer].digest));
    let mut bytes = fs::read(&path).unwrap();
    bytes[offset as usize] ^= 0x55;
    fs::write(&path, bytes).unwrap();
}

#[test]
fn wrong_bytes_for_a_file_or_the_table_are_refused_and_nothing_stored() {
    if !have_root("wrong_bytes_for_a_file_or_the_table_are_refused_and_nothing_stored") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = chunked_image(&work.path().join("img"), "bad", 20, 3);
    let zc = open(&dir.join("zc"));
    // A file of layer 2 (its TOC, read from the layout as is, says where its bytes are).
    let toc_of = |layer: usize| {
        let loc = TocLocation::from_annotations(
            zc.manifest.layers()[layer].annotations().as_ref(),
            zc.layers[layer].size,
        )
        .unwrap()
        .unwrap();
        let blob = fs::read(
            zc.source
                .path()
                .join(zc.source.blob_relpath(&zc.layers[layer].digest)),
        )
        .unwrap();
        let toc = cfsgate_oci::chunked::parse_toc(
            &blob[loc.offset as usize..(loc.offset + loc.length) as usize],
            &loc,
        )
        .unwrap();
        (loc, toc)
    };
    let (_, toc) = toc_of(1);
    let victim = toc
        .entries
        .iter()
        .find(|e| e.entry.path.starts_with(b"usr/share/new/n00001"))
        .unwrap();
    let span = victim.span.clone().unwrap();
    let repo_path = work.path().join("repo");
    let repo = Repository::create_or_open(&repo_path).unwrap();
    let before = contents(&repo_path);

    corrupt(&zc, 1, (span.offset + span.end) / 2);
    let err = partial(&repo, &zc).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, ImportError::Chunked(ChunkedError::Content { ref file, .. }) if file == "usr/share/new/n00001"),
        "{text}"
    );
    assert!(text.contains("usr/share/new/n00001"), "{text}");
    assert_eq!(contents(&repo_path), before, "nothing stored");
    assert_eq!(fs::read_dir(repo_path.join("tmp")).unwrap().count(), 0);
    corrupt(&zc, 1, (span.offset + span.end) / 2);

    // The table itself: its bytes no longer hash to the manifest's annotation.
    let (loc, _) = toc_of(0);
    corrupt(&zc, 0, loc.offset + loc.length / 2);
    let err = partial(&repo, &zc).unwrap_err();
    assert!(
        matches!(
            err,
            ImportError::Chunked(ChunkedError::Toc {
                layer: 0,
                source: TocError::Checksum { .. },
                ..
            })
        ),
        "{err}"
    );
    assert_eq!(contents(&repo_path), before, "nothing stored");
}
