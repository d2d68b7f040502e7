//! Hostile and broken inputs: each must be a clear error (or neutralised), and leave nothing
//! behind: no object in the sink from a refused blob, no change to the tree from a bad layer.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;

use cfsgate_image::store::ObjectDir;
use cfsgate_image::tree::{Content, FileData};
use cfsgate_oci::{
    build_tree, build_tree_with, resolve, BlobDigest, BuildOptions, Limits, NullSink, OciError,
    TreeBuilder,
};
use common::*;
use tar::EntryType;

fn layout_with(work: &Path, layers: &[Vec<u8>]) -> std::path::PathBuf {
    let layout = empty_image(work, "base");
    let mut from = "base".to_string();
    for (i, tar) in layers.iter().enumerate() {
        let to = format!("l{i}");
        add_tar_layer(&layout, &from, &to, tar);
        from = to;
    }
    set_tag_alias(&layout, &from, "test");
    layout
}

fn set_tag_alias(layout: &Path, from: &str, to: &str) {
    let mut desc = tagged(layout, from);
    desc.as_object_mut().unwrap().remove("annotations");
    set_tag(layout, to, desc);
}

fn build(layout: &Path) -> Result<cfsgate_image::Tree, OciError> {
    build_tree(
        &resolve(&format!("oci:{}:test", layout.display()))?,
        &NullSink,
    )
}

fn tar_entry_error(err: OciError, needle: &str) {
    match &err {
        OciError::TarEntry { reason, .. } => assert!(reason.contains(needle), "{err}"),
        other => panic!("expected a tar entry error about {needle:?}, got {other}"),
    }
}

#[test]
fn dotdot_paths_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let tar = TarMaker::default()
        .dir(b"usr")
        .file(b"usr/../../etc/passwd", b"root::0:0")
        .finish();
    let err = build(&layout_with(work.path(), &[tar])).unwrap_err();
    assert!(err.to_string().contains("usr/../../etc/passwd"), "{err}");
    tar_entry_error(err, "'..'");
}

#[test]
fn absolute_paths_are_made_relative() {
    let work = tempfile::tempdir().unwrap();
    let tar = TarMaker::default()
        .dir(b"/usr")
        .file(b"/usr/abs", b"x")
        .file(b"./usr/./dot", b"y")
        .finish();
    let tree = build(&layout_with(work.path(), &[tar])).unwrap();
    assert!(tree.lookup_path(b"/usr/abs").is_some());
    assert!(tree.lookup_path(b"/usr/dot").is_some());
}

#[test]
fn paths_through_symlinks_are_refused() {
    let work = tempfile::tempdir().unwrap();
    // Within one layer.
    let tar = TarMaker::default()
        .link(b"evil", EntryType::Symlink, b"/etc")
        .file(b"evil/passwd", b"x")
        .finish();
    tar_entry_error(
        build(&layout_with(work.path(), &[tar])).unwrap_err(),
        "symlink evil",
    );
    // Across layers, and for hard link targets and whiteouts too.
    let work = tempfile::tempdir().unwrap();
    let lower = TarMaker::default()
        .dir(b"d")
        .file(b"d/f", b"x")
        .link(b"s", EntryType::Symlink, b"d")
        .finish();
    let upper = TarMaker::default().file(b"s/f2", b"x").finish();
    tar_entry_error(
        build(&layout_with(work.path(), &[lower.clone(), upper])).unwrap_err(),
        "symlink s",
    );
    let work = tempfile::tempdir().unwrap();
    let upper = TarMaker::default()
        .link(b"h", EntryType::Link, b"s/f")
        .finish();
    tar_entry_error(
        build(&layout_with(work.path(), &[lower.clone(), upper])).unwrap_err(),
        "symlink s",
    );
    let work = tempfile::tempdir().unwrap();
    let upper = TarMaker::default().file(b"s/.wh.f", b"").finish();
    tar_entry_error(
        build(&layout_with(work.path(), &[lower, upper])).unwrap_err(),
        "symlink s",
    );
}

#[test]
fn duplicate_entries_the_later_wins() {
    let work = tempfile::tempdir().unwrap();
    let tar = TarMaker::default()
        .file(b"f", b"first")
        .file(b"f", b"second")
        .dir(b"d")
        .file(b"d/x", b"x")
        .file(b"d", b"now a file")
        .finish();
    let tree = build(&layout_with(work.path(), &[tar])).unwrap();
    let content = |p: &[u8]| tree.inode(tree.lookup_path(p).unwrap()).content.clone();
    assert_eq!(
        content(b"/f"),
        Content::Regular(FileData::Inline(b"second".to_vec().into()))
    );
    assert_eq!(
        content(b"/d"),
        Content::Regular(FileData::Inline(b"now a file".to_vec().into()))
    );
    assert_eq!(
        tree.bfs().len(),
        3,
        "root, d, f and nothing else: {:?}",
        tree.bfs()
    );
}

#[test]
fn bad_hard_links_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let tar = TarMaker::default()
        .link(b"h", EntryType::Link, b"missing")
        .finish();
    tar_entry_error(
        build(&layout_with(work.path(), &[tar])).unwrap_err(),
        "does not exist",
    );
    let work = tempfile::tempdir().unwrap();
    let tar = TarMaker::default()
        .dir(b"d")
        .link(b"h", EntryType::Link, b"d")
        .finish();
    tar_entry_error(
        build(&layout_with(work.path(), &[tar])).unwrap_err(),
        "directory",
    );
}

#[test]
fn absurd_sizes_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let mut h = raw_header(b"huge", EntryType::Regular, 0);
    // Base-256 size field: 2^60 bytes.
    let size = &mut h.as_old_mut().size;
    size.fill(0);
    size[0] = 0x80;
    size[4] = 0x10;
    h.set_cksum();
    let mut maker = TarMaker::default();
    maker.raw(h, b"");
    let tar = maker.finish();
    tar_entry_error(
        build(&layout_with(work.path(), &[tar])).unwrap_err(),
        "larger than the limit",
    );
}

#[test]
fn bad_checksums_and_unknown_types_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let mut tar = TarMaker::default().file(b"f", b"x").finish();
    tar[0] = b'g';
    tar_entry_error(
        build(&layout_with(work.path(), &[tar])).unwrap_err(),
        "checksum",
    );
    let work = tempfile::tempdir().unwrap();
    let mut maker = TarMaker::default();
    maker.raw(raw_header(b"sparse", EntryType::GNUSparse, 0), b"");
    tar_entry_error(
        build(&layout_with(work.path(), &[maker.finish()])).unwrap_err(),
        "sparse",
    );
}

#[test]
fn decompression_bomb_and_entry_count_are_capped() {
    let work = tempfile::tempdir().unwrap();
    let zeros = vec![0u8; 32 << 20];
    let tar = TarMaker::default().file(b"zeros", &zeros).finish();
    let layout = empty_image(work.path(), "base");
    add_layer(
        &layout,
        "base",
        "test",
        &gzip(&tar),
        TAR_GZIP,
        BlobDigest::of(&tar),
    );
    let image = resolve(&format!("oci:{}:test", layout.display())).unwrap();
    assert!(
        image.layers[0].size < 1 << 20,
        "the blob is small, its content is not"
    );
    let opts = BuildOptions {
        limits: Limits {
            max_uncompressed_bytes: 8 << 20,
            ..Limits::default()
        },
        ..BuildOptions::default()
    };
    let objects = work.path().join("objects");
    let err = build_tree_with(&image, &ObjectDir::create(&objects).unwrap(), &opts).unwrap_err();
    assert!(
        matches!(err, OciError::Limit { .. }) && err.to_string().contains("8388608"),
        "{err}"
    );
    assert_eq!(
        fs::read_dir(&objects).unwrap().count(),
        0,
        "nothing stored from a refused layer"
    );

    let mut maker = TarMaker::default();
    for i in 0..20 {
        maker.file(format!("f{i}").as_bytes(), b"x");
    }
    let tar = maker.finish();
    add_tar_layer(&layout, "base", "many", &tar);
    let image = resolve(&format!("oci:{}:many", layout.display())).unwrap();
    let opts = BuildOptions {
        limits: Limits {
            max_layer_entries: 10,
            ..Limits::default()
        },
        ..BuildOptions::default()
    };
    tar_entry_error(
        build_tree_with(&image, &NullSink, &opts).unwrap_err(),
        "more than 10",
    );
    assert!(build_tree(&image, &NullSink).is_ok());
}

/// A layout whose layer blob is then damaged by `damage`.
fn damaged(work: &Path, damage: impl FnOnce(&Path)) -> Result<cfsgate_image::Tree, OciError> {
    let tar = TarMaker::default()
        .dir(b"usr")
        .file(b"usr/big", &[7u8; 10000])
        .finish();
    let layout = layout_with(work, &[tar]);
    let image = resolve(&format!("oci:{}:test", layout.display()))?;
    damage(&blob_path(&layout, &image.layers[0].digest.to_string()));
    let objects = work.join("objects");
    let result = build_tree(&image, &ObjectDir::create(&objects).unwrap());
    assert_eq!(
        fs::read_dir(&objects).unwrap().count(),
        0,
        "nothing stored from a refused blob"
    );
    result
}

#[test]
fn blob_digest_and_size_mismatches_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let err = damaged(work.path(), |p| {
        let mut data = fs::read(p).unwrap();
        data[600] ^= 1;
        fs::write(p, data).unwrap();
    })
    .unwrap_err();
    assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");
    let work = tempfile::tempdir().unwrap();
    let err = damaged(work.path(), |p| {
        let mut data = fs::read(p).unwrap();
        data.push(0);
        fs::write(p, data).unwrap();
    })
    .unwrap_err();
    assert!(matches!(err, OciError::SizeMismatch { .. }), "{err}");
    let work = tempfile::tempdir().unwrap();
    let err = damaged(work.path(), |p| fs::remove_file(p).unwrap()).unwrap_err();
    assert!(matches!(err, OciError::BlobMissing { .. }), "{err}");
}

#[test]
fn damaged_manifests_and_configs_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let tar = TarMaker::default().file(b"f", b"x").finish();
    let layout = layout_with(work.path(), &[tar]);
    let reference = format!("oci:{}:test", layout.display());
    let image = resolve(&reference).unwrap();
    // A manifest naming a missing config blob.
    let config = blob_path(&layout, &image.config_digest.to_string());
    let saved = fs::read(&config).unwrap();
    fs::remove_file(&config).unwrap();
    let err = resolve(&reference).unwrap_err();
    assert!(
        matches!(err, OciError::BlobMissing { .. })
            && err.to_string().contains(&image.config_digest.to_string()),
        "{err}"
    );
    // A config whose bytes changed.
    let mut changed = saved.clone();
    changed[0] = b' ';
    fs::write(&config, &changed).unwrap();
    assert!(matches!(
        resolve(&reference).unwrap_err(),
        OciError::DigestMismatch { .. }
    ));
    fs::write(&config, &saved).unwrap();
    // A manifest whose bytes changed: refused before it is parsed.
    let manifest = blob_path(&layout, &image.manifest_digest.to_string());
    fs::write(&manifest, b"{not json at all").unwrap();
    assert!(matches!(
        resolve(&reference).unwrap_err(),
        OciError::SizeMismatch { .. } | OciError::DigestMismatch { .. }
    ));
    // An oversized manifest is refused before it is read.
    let big = vec![b' '; 5 << 20];
    let digest = write_blob(&layout, &big);
    set_tag(
        &layout,
        "big",
        serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest.to_string(), "size": big.len()}),
    );
    let err = resolve(&format!("oci:{}:big", layout.display())).unwrap_err();
    assert!(matches!(err, OciError::TooLarge { .. }), "{err}");
}

/// A layout whose single layer is `blob` (compressed as `media_type`) with the given diff_id.
fn single(
    work: &Path,
    blob: &[u8],
    media_type: &str,
    diff_id: BlobDigest,
) -> Result<cfsgate_image::Tree, OciError> {
    let layout = empty_image(work, "base");
    add_layer(&layout, "base", "test", blob, media_type, diff_id);
    build(&layout)
}

#[test]
fn truncated_compressed_streams_are_refused() {
    let tar = TarMaker::default()
        .file(
            b"data",
            &(0..200_000u32)
                .map(|i| (i * 7 % 251) as u8)
                .collect::<Vec<_>>(),
        )
        .finish();
    for (name, compressed, media_type) in [
        ("gzip", gzip(&tar), TAR_GZIP),
        ("zstd", zstd(&tar), TAR_ZSTD),
    ] {
        let work = tempfile::tempdir().unwrap();
        // The blob digest matches the truncated bytes: only decompression can notice.
        let cut = &compressed[..compressed.len() / 2];
        let err = single(work.path(), cut, media_type, BlobDigest::of(&tar)).unwrap_err();
        assert!(
            matches!(err, OciError::Layer { .. })
                && err.to_string().contains("reading the layer stream"),
            "{name}: {err}"
        );
        // Cut inside the trailer only.
        let work = tempfile::tempdir().unwrap();
        let cut = &compressed[..compressed.len() - 3];
        let err = single(work.path(), cut, media_type, BlobDigest::of(&tar)).unwrap_err();
        assert!(
            matches!(err, OciError::Layer { .. }),
            "{name} (trailer): {err}"
        );
        // Whole: fine.
        let work = tempfile::tempdir().unwrap();
        single(work.path(), &compressed, media_type, BlobDigest::of(&tar)).unwrap();
    }
    // An uncompressed tar cut inside a file's content.
    let work = tempfile::tempdir().unwrap();
    let cut = &tar[..100_000];
    let err = single(work.path(), cut, TAR, BlobDigest::of(cut)).unwrap_err();
    assert!(err.to_string().contains("ends inside"), "{err}");
}

#[test]
fn diff_id_mismatch_and_unknown_media_types_are_refused() {
    let tar = TarMaker::default().file(b"f", b"x").finish();
    let work = tempfile::tempdir().unwrap();
    let err = single(
        work.path(),
        &gzip(&tar),
        TAR_GZIP,
        BlobDigest::of(b"something else"),
    )
    .unwrap_err();
    assert!(
        matches!(err, OciError::DiffIdMismatch { layer: 0, .. }),
        "{err}"
    );
    let work = tempfile::tempdir().unwrap();
    let err = single(
        work.path(),
        &tar,
        "application/vnd.example.layer.v1.tar+lz4",
        BlobDigest::of(&tar),
    )
    .unwrap_err();
    assert!(
        matches!(err, OciError::MediaType { what: "layer", .. }) && err.to_string().contains("lz4"),
        "{err}"
    );
    // A gzip media type on plain tar bytes.
    let work = tempfile::tempdir().unwrap();
    let err = single(work.path(), &tar, TAR_GZIP, BlobDigest::of(&tar)).unwrap_err();
    assert!(matches!(err, OciError::Layer { .. }), "{err}");
}

#[test]
fn whiteouts_apply_to_lower_layers_only() {
    let work = tempfile::tempdir().unwrap();
    let lower = TarMaker::default()
        .dir(b"d")
        .file(b"d/old", b"1")
        .file(b"gone", b"1")
        .finish();
    let upper = TarMaker::default()
        .file(b"d/new", b"2")
        .file(b"d/.wh..wh..opq", b"")
        .file(b"x", b"3")
        .file(b".wh.x", b"")
        .file(b".wh.gone", b"")
        .file(b".wh.never-existed", b"")
        .finish();
    let tree = build(&layout_with(work.path(), &[lower, upper])).unwrap();
    let names = |p: &[u8]| -> Vec<String> {
        tree.inode(tree.lookup_path(p).unwrap())
            .entries()
            .unwrap()
            .iter()
            .map(|e| String::from_utf8_lossy(&e.name).into_owned())
            .collect()
    };
    assert_eq!(names(b"/d"), ["new"]);
    assert_eq!(names(b"/"), ["d", "x"]);
}

#[test]
fn a_bad_layer_leaves_the_tree_unchanged() {
    let work = tempfile::tempdir().unwrap();
    let good = TarMaker::default()
        .dir(b"usr")
        .file(b"usr/a", b"a")
        .finish();
    let bad = TarMaker::default()
        .file(b"usr/b", b"b")
        .file(b"usr/../x", b"x")
        .finish();
    let layout = layout_with(work.path(), &[good.clone(), bad]);
    let image = resolve(&format!("oci:{}:test", layout.display())).unwrap();
    let mut builder = TreeBuilder::new(BuildOptions::default());
    builder
        .apply_layer(&image.source, 0, &image.layers[0], &NullSink)
        .unwrap();
    assert!(builder
        .apply_layer(&image.source, 1, &image.layers[1], &NullSink)
        .is_err());
    let tree = builder.finish().unwrap();
    assert!(tree.lookup_path(b"/usr/a").is_some());
    assert!(
        tree.lookup_path(b"/usr/b").is_none(),
        "entries before the bad one were not kept"
    );
    let only_good = build(&layout_with(tempfile::tempdir().unwrap().path(), &[good])).unwrap();
    assert_eq!(tree, only_good);
}

#[test]
fn pax_and_gnu_extensions() {
    let work = tempfile::tempdir().unwrap();
    let long = "dir/".repeat(40) + "file";
    let mut builder = tar::Builder::new(Vec::new());
    // GNU long name (tar::Builder writes an 'L' record for names over 100 bytes).
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o600);
    h.set_mtime(1);
    builder.append_data(&mut h, &long, &b"abc"[..]).unwrap();
    // PAX: path, sub-second mtime, big uid, xattrs incl. a binary ACL and a capability.
    let acl = [2u8, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff];
    let cap = [
        0u8, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let pax: Vec<(&str, &[u8])> = vec![
        ("path", b"pax/named-by-pax"),
        ("mtime", b"1700000000.987654321"),
        ("uid", b"4000000000"),
        ("SCHILY.xattr.system.posix_acl_access", &acl),
        ("SCHILY.xattr.security.capability", &cap),
        ("SCHILY.xattr.user.a", b"1"),
    ];
    builder.append_pax_extensions(pax).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("short").unwrap();
    h.set_size(0);
    h.set_mode(0o755);
    h.set_cksum();
    builder.append(&h, &b""[..]).unwrap();
    let tar = builder.into_inner().unwrap();
    let layout = layout_with(work.path(), &[tar]);
    let image = resolve(&format!("oci:{}:test", layout.display())).unwrap();
    let tree = build_tree(&image, &NullSink).unwrap();
    assert!(tree.lookup_path(long.as_bytes()).is_some(), "GNU long name");
    assert!(
        tree.lookup_path(b"/short").is_none(),
        "the PAX path overrides the header name"
    );
    let f = tree.inode(tree.lookup_path(b"/pax/named-by-pax").unwrap());
    assert_eq!(
        (f.stat.uid, f.stat.mtime_sec, f.stat.mtime_nsec),
        (4_000_000_000, 1_700_000_000, 0),
        "canonical: whole seconds"
    );
    assert_eq!(f.xattr(b"system.posix_acl_access"), Some(&acl[..]));
    assert_eq!(f.xattr(b"security.capability"), Some(&cap[..]));
    assert_eq!(f.xattr(b"user.a"), Some(&b"1"[..]));
    let opts = BuildOptions {
        keep_subsecond_mtime: true,
        ..BuildOptions::default()
    };
    let tree = build_tree_with(&image, &NullSink, &opts).unwrap();
    assert_eq!(
        tree.inode(tree.lookup_path(b"/pax/named-by-pax").unwrap())
            .stat
            .mtime_nsec,
        987_654_321
    );
}
