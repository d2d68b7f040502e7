//! Real images made by umoci and skopeo: the merged tree must equal what `umoci unpack` writes.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use cfsgate_image::store::{ObjectDir, PendingObjects};
use cfsgate_image::tree::{Content, FileData, S_IFMT, S_IFREG};
use cfsgate_oci::{build_tree, resolve, resolve_ref, ImageRef, NullSink, OciError, Platform};
use common::*;
use serde_json::json;

fn check_against_umoci(work: &Path, layout: &Path) -> cfsgate_image::Tree {
    let image = resolve(&format!("oci:{}:test", layout.display())).unwrap();
    assert_eq!(image.layers.len(), 4);
    let objects = ObjectDir::create(&work.join("objects")).unwrap();
    let pending = PendingObjects::new(&objects);
    let tree = build_tree(&image, &pending).unwrap();
    pending.commit().unwrap();
    let rootfs = umoci_unpack(layout, "test", &work.join("bundle"));
    compare_with_dir(&tree, &rootfs, Some(objects.path()));
    tree
}

#[test]
fn umoci_layers_merge_like_umoci_unpack() {
    if !have_root("umoci_layers_merge_like_umoci_unpack") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layout = umoci_image(work.path(), 50);
    let tree = check_against_umoci(work.path(), &layout);

    // Spot checks of what the layers did (the comparison above covers the rest).
    assert!(tree.lookup_path(b"/del/gone").is_none(), "whiteout");
    assert!(tree.lookup_path(b"/del/stays").is_some());
    let opq: Vec<_> = tree
        .inode(tree.lookup_path(b"/opq").unwrap())
        .entries()
        .unwrap()
        .iter()
        .map(|e| e.name.to_vec())
        .collect();
    assert_eq!(opq, vec![b"new".to_vec()], "opaque directory");
    let tool = tree.lookup_path(b"/usr/bin/tool").unwrap();
    assert_eq!(
        tree.lookup_path(b"/etc/tool-hardlink2"),
        Some(tool),
        "hard link within a layer"
    );
    assert_eq!(tree.inode(tool).stat.nlink, 3);
    assert_eq!(tree.inode(tool).stat.mode, S_IFREG | 0o4755);
    let five = tree.lookup_path(b"/etc/sixtyfive").unwrap();
    assert_eq!(
        tree.lookup_path(b"/etc/sixtyfive-link"),
        Some(five),
        "hard link across layers"
    );
    assert!(tree
        .inode(tree.lookup_path(b"/usr/bin/capped").unwrap())
        .xattr(b"security.capability")
        .is_some());
    assert_eq!(
        tree.inode(tree.lookup_path(b"/etc/ten").unwrap())
            .xattr(b"user.binary"),
        Some(&[0u8, 0xff, 0x10][..])
    );
    // Inline threshold: 64 bytes inline, 65 external.
    let data = |p: &[u8]| match &tree.inode(tree.lookup_path(p).unwrap()).content {
        Content::Regular(d) => d.clone(),
        other => panic!("{other:?}"),
    };
    assert!(matches!(data(b"/etc/ten"), FileData::Inline(_)));
    assert!(matches!(data(b"/etc/empty"), FileData::Inline(ref d) if d.is_empty()));
    assert!(matches!(
        data(b"/etc/sixtyfive"),
        FileData::External { size: 65, .. }
    ));
    assert!(matches!(data(b"/data/big"), FileData::External { size, .. } if size == 50 << 20));
    // Root metadata comes from /usr.
    let usr = tree.inode(tree.lookup_path(b"/usr").unwrap());
    assert_eq!(
        (tree.root().stat.mode, tree.root().stat.mtime_sec),
        (usr.stat.mode, usr.stat.mtime_sec)
    );

    // The same image through skopeo: a dir: copy and a zstd re-compression give the same tree.
    let dir = work.path().join("dir-copy");
    run(Command::new("skopeo")
        .arg("copy")
        .arg("--quiet")
        .arg(format!("oci:{}:test", layout.display()))
        .arg(format!("dir:{}", dir.display())));
    let from_dir = build_tree(
        &resolve(&format!("dir:{}", dir.display())).unwrap(),
        &NullSink,
    )
    .unwrap();
    assert_eq!(from_dir, tree, "dir: copy");
    let zlayout = work.path().join("zstd");
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-compress-format", "zstd"])
        .arg(format!("oci:{}:test", layout.display()))
        .arg(format!("oci:{}:z", zlayout.display())));
    let zimage = resolve(&format!("oci:{}:z", zlayout.display())).unwrap();
    assert!(zimage
        .layers
        .iter()
        .all(|l| l.media_type.ends_with("+zstd")));
    assert_eq!(build_tree(&zimage, &NullSink).unwrap(), tree, "zstd layers");
}

/// Two single-layer images with different content, under tags `amd` and `arm`.
fn two_platform_images(work: &Path) -> std::path::PathBuf {
    let layout = empty_image(work, "base");
    for (tag, content) in [
        ("amd", &b"amd64 content"[..]),
        ("arm", &b"arm64 content"[..]),
    ] {
        let tar = TarMaker::default()
            .dir(b"usr")
            .file(b"usr/arch", content)
            .finish();
        add_layer(
            &layout,
            "base",
            tag,
            &gzip(&tar),
            TAR_GZIP,
            cfsgate_oci::BlobDigest::of(&tar),
        );
    }
    layout
}

fn arch_file(layout: &Path, reference: &str, platform: &Platform) -> Result<Vec<u8>, OciError> {
    let _ = layout;
    let image = resolve_ref(&ImageRef::parse(reference)?, platform)?;
    let tree = build_tree(&image, &NullSink)?;
    match &tree.inode(tree.lookup_path(b"/usr/arch").unwrap()).content {
        Content::Regular(FileData::Inline(d)) => Ok(d.to_vec()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn multi_platform_index_selects_the_platform() {
    let work = tempfile::tempdir().unwrap();
    let layout = two_platform_images(work.path());
    let amd = tagged(&layout, "amd");
    let arm = tagged(&layout, "arm");
    let entry = |d: &serde_json::Value, platform: serde_json::Value| json!({ "mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"], "platform": platform });
    for (list_type, tag) in [
        ("application/vnd.oci.image.index.v1+json", "multi"),
        (
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "docker-list",
        ),
    ] {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": list_type,
            "manifests": [
                entry(&arm, json!({"architecture": "arm64", "os": "linux", "variant": "v8"})),
                entry(&amd, json!({"architecture": "amd64", "os": "linux"})),
            ]
        });
        let bytes = serde_json::to_vec(&index).unwrap();
        let digest = write_blob(&layout, &bytes);
        set_tag(
            &layout,
            tag,
            json!({ "mediaType": list_type, "digest": digest.to_string(), "size": bytes.len() }),
        );
        let reference = format!("oci:{}:{tag}", layout.display());
        assert_eq!(
            arch_file(&layout, &reference, &Platform::new("linux", "amd64", None)).unwrap(),
            b"amd64 content"
        );
        assert_eq!(
            arch_file(&layout, &reference, &Platform::new("linux", "arm64", None)).unwrap(),
            b"arm64 content"
        );
        assert_eq!(
            arch_file(
                &layout,
                &reference,
                &Platform::new("linux", "arm64", Some("v8"))
            )
            .unwrap(),
            b"arm64 content"
        );
        let err =
            arch_file(&layout, &reference, &Platform::new("linux", "s390x", None)).unwrap_err();
        assert!(
            matches!(err, OciError::NotFound { .. }) && err.to_string().contains("s390x"),
            "{err}"
        );
        let err = arch_file(
            &layout,
            &reference,
            &Platform::new("linux", "arm64", Some("v9")),
        )
        .unwrap_err();
        assert!(matches!(err, OciError::NotFound { .. }), "{err}");
        // By digest of the index, and of a manifest inside it.
        assert_eq!(
            arch_file(
                &layout,
                &format!("oci:{}@{digest}", layout.display()),
                &Platform::new("linux", "arm64", None)
            )
            .unwrap(),
            b"arm64 content"
        );
    }
    // The running platform is the default.
    if Platform::current() == Platform::new("linux", "amd64", None) {
        let image = resolve(&format!("oci:{}:multi", layout.display())).unwrap();
        assert_eq!(
            image.manifest_digest.to_string(),
            amd["digest"].as_str().unwrap()
        );
        assert_eq!(image.index_chain.len(), 1);
    }
    // A nested index: an index whose only entry is the multi-platform index.
    let multi = tagged(&layout, "multi");
    let outer = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": multi["mediaType"], "digest": multi["digest"], "size": multi["size"]}]});
    let bytes = serde_json::to_vec(&outer).unwrap();
    let digest = write_blob(&layout, &bytes);
    set_tag(
        &layout,
        "nested",
        json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest.to_string(), "size": bytes.len()}),
    );
    let reference = format!("oci:{}:nested", layout.display());
    assert_eq!(
        arch_file(&layout, &reference, &Platform::new("linux", "arm64", None)).unwrap(),
        b"arm64 content"
    );
    // A manifest digest found through the indexes.
    let arm_ref = format!(
        "oci:{}@{}",
        layout.display(),
        arm["digest"].as_str().unwrap()
    );
    assert_eq!(
        arch_file(&layout, &arm_ref, &Platform::new("linux", "amd64", None)).unwrap(),
        b"arm64 content"
    );
    // Unknown tag, ambiguous default.
    let err = resolve(&format!("oci:{}:nope", layout.display())).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    let err = resolve(&format!("oci:{}", layout.display())).unwrap_err();
    assert!(matches!(err, OciError::NotFound { .. }), "{err}");
    let _ = fs::metadata(&layout);
    let _ = S_IFMT;
}
