//! Sealing real umoci-built images, checked with independent tools: `jq` reads the label and
//! compares every other config field (in order), `sha256sum` checks blob names, `skopeo`
//! inspects and copies the sealed image (verifying every blob it reads).
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use cfsgate_oci::{
    check_seal, compute_id, layer_id, read_seal, resolve, seal, SealError, SealOptions,
    ANNOTATION_LAYER_FSVERITY, LABEL_FSVERITY,
};
use common::*;

fn jq_compact(filter: &str, file: &Path) -> String {
    output(Command::new("jq").arg("-c").arg(filter).arg(file))
}

fn sha256sum(file: &Path) -> String {
    let line = output(Command::new("sha256sum").arg(file));
    format!("sha256:{}", line.split_whitespace().next().unwrap())
}

#[test]
fn sealed_umoci_image_carries_the_label_and_tools_accept_it() {
    if !have_root("sealed_umoci_image_carries_the_label_and_tools_accept_it") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layout = umoci_image(work.path(), 2);
    let src = format!("oci:{}:test", layout.display());
    let computed = compute_id(&resolve(&src).unwrap()).unwrap();

    let dest = work.path().join("sealed");
    let report = seal(&src, &dest, "sealed", SealOptions::default()).unwrap();
    assert_eq!(report.image_digest, computed);

    // Index entry, manifest and config, found and checked without cfsgate's parsers.
    let (manifest_digest, manifest, config) = tagged_paths(&dest, "sealed");
    assert_eq!(manifest_digest, report.manifest_digest.to_string());
    assert_eq!(sha256sum(&manifest), manifest_digest);
    assert_eq!(jq(".config.digest", &manifest), sha256sum(&config));
    assert_eq!(
        jq(".config.size", &manifest),
        fs::metadata(&config).unwrap().len().to_string()
    );
    assert_eq!(
        jq(&format!(".config.Labels[\"{LABEL_FSVERITY}\"]"), &config),
        format!("sha256:{}", computed.to_hex())
    );
    // Every other config field unchanged, in the same order.
    let (_, orig_manifest, orig_config) = tagged_paths(&layout, "test");
    let strip = format!(
        "del(.config.Labels[\"{LABEL_FSVERITY}\"]) | if .config.Labels == {{}} then del(.config.Labels) else . end"
    );
    assert_eq!(jq_compact(&strip, &config), jq_compact(".", &orig_config));
    // Same layers, same everything but the config descriptor.
    assert_eq!(
        jq_compact("del(.config.digest, .config.size)", &manifest),
        jq_compact("del(.config.digest, .config.size)", &orig_manifest)
    );
    // Compact output like Go's encoder.
    assert!(!fs::read_to_string(&config).unwrap().contains('\n'));

    // skopeo reads it, sees the label, and copies it (verifying every blob).
    let inspect_json = work.path().join("inspect.json");
    let inspect = output(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:sealed", dest.display())),
    );
    fs::write(&inspect_json, inspect).unwrap();
    assert_eq!(
        jq(&format!(".Labels[\"{LABEL_FSVERITY}\"]"), &inspect_json),
        format!("sha256:{}", computed.to_hex())
    );
    assert_eq!(jq(".Digest", &inspect_json), manifest_digest);
    run(Command::new("skopeo")
        .arg("copy")
        .arg("--quiet")
        .arg(format!("oci:{}:sealed", dest.display()))
        .arg(format!("dir:{}", work.path().join("copied").display())));

    // cfsgate reads the seal back and it matches the image built from the (same) layers.
    let sealed = resolve(&format!("oci:{}:sealed", dest.display())).unwrap();
    assert_eq!(read_seal(&sealed).unwrap(), Some(computed));
    assert_eq!(compute_id(&sealed).unwrap(), computed);
    check_seal(&sealed, computed).unwrap();
    // The unsealed source is not sealed.
    let unsealed = resolve(&src).unwrap();
    assert_eq!(read_seal(&unsealed).unwrap(), None);
    assert!(matches!(
        check_seal(&unsealed, computed),
        Err(SealError::NotSealed { .. })
    ));

    // Reproducible: again into the same layout, into another one, and from a dir: copy.
    let again = seal(&src, &dest, "sealed", SealOptions::default()).unwrap();
    assert_eq!(again, report);
    assert_eq!(tagged_paths(&dest, "sealed").0, manifest_digest);
    let other = seal(
        &src,
        &work.path().join("other"),
        "x",
        SealOptions::default(),
    )
    .unwrap();
    assert_eq!(other.manifest_digest, report.manifest_digest);
    let dir_image = work.path().join("dirimage");
    run(Command::new("skopeo")
        .arg("copy")
        .arg("--quiet")
        .arg(&src)
        .arg(format!("dir:{}", dir_image.display())));
    let from_dir = seal(
        &format!("dir:{}", dir_image.display()),
        &work.path().join("fromdir"),
        "x",
        SealOptions::default(),
    )
    .unwrap();
    assert_eq!(from_dir.image_digest, computed);
    output(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:x", work.path().join("fromdir").display())),
    );

    // Sealing into the source layout keeps its other tags.
    let here = seal(&src, &layout, "sealed-here", SealOptions::default()).unwrap();
    assert_eq!(here.manifest_digest, report.manifest_digest);
    assert_eq!(
        jq(
            "[.manifests[].annotations[\"org.opencontainers.image.ref.name\"]] | sort | join(\",\")",
            &layout.join("index.json")
        ),
        "sealed-here,test"
    );
    // Re-sealing the sealed image replaces the label in place: same bytes again.
    let resealed = seal(
        &format!("oci:{}:sealed", dest.display()),
        &dest,
        "sealed",
        SealOptions::default(),
    )
    .unwrap();
    assert_eq!(resealed.manifest_digest, report.manifest_digest);
}

#[test]
fn layer_annotations_hold_each_layer_alone() {
    if !have_root("layer_annotations_hold_each_layer_alone") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layout = umoci_image(work.path(), 1);
    let src = format!("oci:{}:test", layout.display());
    let dest = work.path().join("sealed");
    let report = seal(
        &src,
        &dest,
        "annotated",
        SealOptions {
            layer_annotations: true,
            ..SealOptions::default()
        },
    )
    .unwrap();
    let (_, manifest, _) = tagged_paths(&dest, "annotated");
    let annotations = jq(
        &format!("[.layers[].annotations[\"{ANNOTATION_LAYER_FSVERITY}\"]] | join(\",\")"),
        &manifest,
    );
    let image = resolve(&src).unwrap();
    let expected: Vec<String> = (0..image.layers.len())
        .map(|i| format!("sha256:{}", layer_id(&image, i).unwrap().to_hex()))
        .collect();
    assert_eq!(annotations, expected.join(","));
    // Layer 0 alone is a real one-layer image: cut the manifest and the diff_ids with jq, tag
    // it, and its composefs digest must be the annotation.
    let (_, orig_manifest, orig_config) = tagged_paths(&layout, "test");
    let config = output(
        Command::new("jq")
            .arg("-c")
            .arg(".rootfs.diff_ids |= .[:1]")
            .arg(&orig_config),
    );
    let config_digest = write_blob(&layout, config.as_bytes());
    let cut = output(
        Command::new("jq")
            .arg("-c")
            .arg(format!(
                ".layers |= .[:1] | .config.digest = \"{config_digest}\" | .config.size = {}",
                config.len()
            ))
            .arg(&orig_manifest),
    );
    let cut_digest = write_blob(&layout, cut.as_bytes());
    set_tag(
        &layout,
        "first",
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": cut_digest.to_string(),
            "size": cut.len(),
        }),
    );
    let first = compute_id(&resolve(&format!("oci:{}:first", layout.display())).unwrap()).unwrap();
    assert_eq!(expected[0], format!("sha256:{}", first.to_hex()));
    assert_ne!(first, report.image_digest, "four layers differ from one");
    // The annotated seal is reproducible too, and differs from the plain one.
    let again = seal(
        &src,
        &dest,
        "annotated",
        SealOptions {
            layer_annotations: true,
            ..SealOptions::default()
        },
    )
    .unwrap();
    assert_eq!(again.manifest_digest, report.manifest_digest);
    let plain = seal(&src, &dest, "plain", SealOptions::default()).unwrap();
    assert_ne!(plain.manifest_digest, report.manifest_digest);
    assert_eq!(plain.config_digest, report.config_digest);
}

/// Rewrite the config of `tag` in `layout` through a jq filter, re-writing config and manifest
/// blobs and the index entry, as an attacker editing the label would.
#[test]
fn an_edited_label_is_a_seal_failure() {
    if !have_root("an_edited_label_is_a_seal_failure") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layout = umoci_image(work.path(), 1);
    let src = format!("oci:{}:test", layout.display());
    let report = seal(&src, &layout, "sealed", SealOptions::default()).unwrap();

    // A different (well-formed) digest in the label.
    let forged = "sha256:".to_string() + &"ab".repeat(32);
    edit_config(
        &layout,
        "sealed",
        &format!(".config.Labels[\"{LABEL_FSVERITY}\"] = \"{forged}\""),
    );
    let image = resolve(&format!("oci:{}:sealed", layout.display())).unwrap();
    let computed = compute_id(&image).unwrap();
    assert_eq!(computed, report.image_digest, "layers unchanged");
    let err = check_seal(&image, computed).unwrap_err();
    let message = err.to_string();
    match err {
        SealError::Mismatch {
            label, computed: c, ..
        } => {
            assert_eq!(format!("sha256:{}", label.to_hex()), forged);
            assert_eq!(c, computed);
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert!(message.contains(&"ab".repeat(32)), "{message}");
    assert!(message.contains(&computed.to_hex()), "{message}");

    // Importing it is refused and leaves no image and no ref.
    let repo = cfsgate_image::store::Repository::create_or_open(work.path().join("repo")).unwrap();
    let err = cfsgate_oci::import(
        &repo,
        &format!("oci:{}:sealed", layout.display()),
        Some("sealed"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("seal check failed"), "{err}");
    assert!(repo.list_images().unwrap().is_empty());
    assert_eq!(repo.read_ref("sealed").unwrap(), None);
    assert!(repo.fsck(false).unwrap().is_ok());

    // A label that is not a digest is an error of its own.
    edit_config(
        &layout,
        "sealed",
        &format!(".config.Labels[\"{LABEL_FSVERITY}\"] = \"not-a-digest\""),
    );
    let image = resolve(&format!("oci:{}:sealed", layout.display())).unwrap();
    assert!(matches!(read_seal(&image), Err(SealError::BadLabel { .. })));
}

#[test]
fn bad_destinations_and_tags_write_nothing() {
    if !have_root("bad_destinations_and_tags_write_nothing") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layout = umoci_image(work.path(), 1);
    let src = format!("oci:{}:test", layout.display());
    let index_before = fs::read(layout.join("index.json")).unwrap();
    for tag in ["", "a/b", "a:b", ".hidden"] {
        assert!(matches!(
            seal(&src, &layout, tag, SealOptions::default()),
            Err(SealError::BadTag { .. })
        ));
    }
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), index_before);
    let not_layout = work.path().join("notlayout");
    fs::create_dir(&not_layout).unwrap();
    fs::write(not_layout.join("precious"), b"x").unwrap();
    assert!(matches!(
        seal(&src, &not_layout, "t", SealOptions::default()),
        Err(SealError::Dest { .. })
    ));
    assert_eq!(fs::read_dir(&not_layout).unwrap().count(), 1);
}
