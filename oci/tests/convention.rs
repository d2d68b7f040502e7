//! Seals made by composefs-rs pass the seal check. The oracle is composefs-rs 0.9.4 itself (the
//! `composefs` crate, a test-only dependency): the merged tree of a real umoci image is handed to
//! it as a dump file, and composefs-rs applies its own OCI transform (`transform_for_oci` with its
//! defaults) and writes its default format (V1). cfsgate's `composefs-rs` convention must give
//! that image's digest; its `mkcomposefs` convention must give composefs-rs's V0 image of the
//! untransformed tree (the two implementations agree on the tree); a seal with either passes,
//! and any other label is refused.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

mod common;

use cfsgate_oci::{
    build_image, check_seal_built, import, resolve, seal, Convention, NoProgress, NullSink,
    SealError, SealOptions, LABEL_FSVERITY,
};
use common::*;
use composefs::dumpfile::dumpfile_to_filesystem;
use composefs::erofs::format::FormatVersion;
use composefs::erofs::writer::{mkfs_erofs_versioned, ValidatedFileSystem};
use composefs::fsverity::{compute_verity, FsVerityHashValue, Sha256HashValue};
use composefs::generic_tree::OciTransformOptions;

/// The umoci fixture plus a layer that leaves stubs in /run (as `RUN --mount` does).
fn image_with_run(work: &std::path::Path) -> std::path::PathBuf {
    let layout = umoci_image(work, 1);
    let tar = TarMaker::default()
        .dir(b"run")
        .dir(b"run/secrets")
        .file(b"run/secrets/stub", b"left behind by a build")
        .finish();
    add_tar_layer(&layout, "test", "run", &tar);
    layout
}

/// composefs-rs's digest of `tree` (dumped by cfsgate): with its OCI transform and V1, or as is
/// in V0.
fn oracle_digest(tree: &cfsgate_image::Tree, transform: bool) -> String {
    let mut dump = Vec::new();
    cfsgate_image::dump::write(tree, &mut dump).unwrap();
    let text = String::from_utf8(dump).unwrap();
    let mut fs =
        dumpfile_to_filesystem::<Sha256HashValue>(&text).expect("composefs-rs parses the dump");
    let version = if transform {
        fs.transform_for_oci(&OciTransformOptions::default())
            .expect("composefs-rs transforms the image");
        FormatVersion::V1
    } else {
        FormatVersion::V0
    };
    let fs = ValidatedFileSystem::new(fs).expect("composefs-rs validates the tree");
    let image = mkfs_erofs_versioned(&fs, version);
    compute_verity::<Sha256HashValue>(&image).to_hex()
}

#[test]
fn a_composefs_rs_seal_passes_and_names_its_convention() {
    if !have_root("a_composefs_rs_seal_passes_and_names_its_convention") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layout = image_with_run(work.path());
    let src = format!("oci:{}:run", layout.display());
    let image = resolve(&src).unwrap();
    let built = build_image(&image, &NullSink, &NoProgress).unwrap();

    // The two implementations agree on the tree, and on each convention's image.
    assert_eq!(built.digest.to_hex(), oracle_digest(&built.tree, false));
    let (_, ours) = Convention::ComposefsRs.image_of(&built.tree).unwrap();
    let theirs = oracle_digest(&built.tree, true);
    assert_eq!(
        ours.to_hex(),
        theirs,
        "composefs-rs convention = composefs-rs 0.9.4"
    );
    assert_ne!(ours, built.digest, "the conventions differ on this image");

    // Sealed under the composefs-rs convention (the label composefs-rs would write): accepted,
    // saying which convention matched, by the library and by the binary.
    let opts = SealOptions {
        convention: Convention::ComposefsRs,
        ..SealOptions::default()
    };
    let report = seal(&src, &layout, "rs-sealed", opts).unwrap();
    assert_eq!(report.image_digest.to_hex(), theirs);
    let sealed = resolve(&format!("oci:{}:rs-sealed", layout.display())).unwrap();
    let matched = check_seal_built(
        &sealed,
        &build_image(&sealed, &NullSink, &NoProgress).unwrap(),
    )
    .unwrap();
    assert_eq!(matched.convention, Convention::ComposefsRs);

    // Imported: the stored image is the sealed one (so it mounts by the seal's digest).
    let repo = cfsgate_image::store::Repository::create_or_open(work.path().join("repo")).unwrap();
    let imported = import(&repo, &format!("oci:{}:rs-sealed", layout.display()), None).unwrap();
    assert_eq!(imported.image_digest, report.image_digest);
    assert_eq!(imported.convention, Convention::ComposefsRs);
    let stored = repo.read_image(&report.image_digest).unwrap();
    assert_eq!(compute_verity::<Sha256HashValue>(&stored).to_hex(), theirs);

    // A label with another digest (composefs-rs's image keeping user.* xattrs): refused, and
    // the error gives both conventions' digests.
    let mut fs_keep = {
        let mut dump = Vec::new();
        cfsgate_image::dump::write(&built.tree, &mut dump).unwrap();
        dumpfile_to_filesystem::<Sha256HashValue>(&String::from_utf8(dump).unwrap()).unwrap()
    };
    fs_keep
        .transform_for_oci(&OciTransformOptions {
            xattrs: composefs::generic_tree::XattrFiltering::KeepUserXattrs,
        })
        .unwrap();
    let fs_keep = ValidatedFileSystem::new(fs_keep).unwrap();
    let other =
        compute_verity::<Sha256HashValue>(&mkfs_erofs_versioned(&fs_keep, FormatVersion::V1))
            .to_hex();
    assert_ne!(other, theirs, "the fixture has user.* xattrs");
    seal(&src, &layout, "forged", SealOptions::default()).unwrap();
    edit_config(
        &layout,
        "forged",
        &format!(".config.Labels[\"{LABEL_FSVERITY}\"] = \"sha256:{other}\""),
    );
    let forged = resolve(&format!("oci:{}:forged", layout.display())).unwrap();
    let err = check_seal_built(
        &forged,
        &build_image(&forged, &NullSink, &NoProgress).unwrap(),
    )
    .unwrap_err();
    match &err {
        SealError::Mismatch {
            computed,
            composefs_rs,
            ..
        } => {
            assert_eq!(*computed, built.digest);
            assert_eq!(composefs_rs.map(|d| d.to_hex()), Some(theirs.clone()));
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&other) && message.contains(&theirs),
        "{message}"
    );
}
