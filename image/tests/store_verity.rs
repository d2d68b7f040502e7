//! #14 item 13: a repository in kernel-verity mode can never hold an object or an image without
//! fs-verity. The store seals every file itself before naming it (there is no enabler to forget
//! to hand in); where sealing fails, nothing is stored.
//!
//! This machine's kernel has no fs-verity, so the repository below is put in kernel mode by its
//! `meta.json` (as one created on an fs-verity ext4 and then copied, or edited, would be): every
//! write must fail and leave no name in `objects/` or `images/`. On a kernel with fs-verity (the
//! VM suite), the same writes succeed and the kernel must measure each stored file's digest.

use std::fs;
use std::path::Path;

use cfsgate_image::fsverity::digest_bytes;
use cfsgate_image::store::{Repository, StoreError, VerityMode};
use cfsgate_image::tree::{Stat, Tree, S_IFDIR};

/// A repository whose meta.json says `"verity":"kernel"`.
fn kernel_mode_repo(dir: &Path) -> Repository {
    let root = dir.join("repo");
    Repository::create_or_open(&root).expect("create");
    fs::write(
        root.join("meta.json"),
        br#"{"version":1,"algorithm":"sha256","verity":"kernel"}"#,
    )
    .expect("meta.json");
    let repo = Repository::open(&root).expect("open");
    assert_eq!(repo.meta().verity, VerityMode::Kernel);
    repo
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("list") {
            let entry = entry.expect("entry");
            if entry.file_type().expect("type").is_dir() {
                stack.push(entry.path());
            } else {
                names.push(entry.path().display().to_string());
            }
        }
    }
    names
}

/// The fs-verity digest the kernel enforces for `path`, if any.
fn kernel_digest(path: &Path) -> Option<[u8; 32]> {
    let file = fs::File::open(path).expect("open");
    cfsgate_sys::fsverity::measure_sha256(&file).expect("measure")
}

#[test]
fn a_kernel_verity_repository_never_stores_an_object_or_image_without_fs_verity() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let repo = kernel_mode_repo(dir.path());

    let data = b"an object that must be sealed".repeat(300);
    let expected = digest_bytes(&data);
    match repo.write_object_from_reader(&data[..]) {
        Ok(digest) => {
            assert_eq!(digest, expected);
            assert_eq!(
                kernel_digest(&repo.object_path(&digest)),
                Some(expected.0),
                "stored object is not sealed with its own digest"
            );
        }
        Err(e) => {
            assert!(matches!(e, StoreError::VeritySeal { .. }), "{e}");
            assert!(e.to_string().contains("fs-verity"), "{e}");
            assert!(!repo.has_object(&expected), "an unsealed object was stored");
            assert_eq!(names_in(&repo.path().join("objects")), Vec::<String>::new());
        }
    }

    // An image with no external files needs no object: only its own sealing can fail.
    let tree = Tree::new(Stat {
        mode: S_IFDIR | 0o755,
        nlink: 2,
        ..Stat::default()
    });
    match repo.write_tree(&tree) {
        Ok(image) => assert_eq!(
            kernel_digest(&repo.image_path(&image)),
            Some(image.0),
            "stored image is not sealed with its own digest"
        ),
        Err(e) => {
            assert!(matches!(e, StoreError::VeritySeal { .. }), "{e}");
            assert_eq!(names_in(&repo.path().join("images")), Vec::<String>::new());
        }
    }
    // Nothing half-written is left behind either.
    assert_eq!(names_in(&repo.path().join("tmp")), Vec::<String>::new());
}

/// The workspace's one `VerityMode` also names the mount option `none`. A `meta.json` edited to
/// `"verity":"none"` (to get a repository where nothing is ever sealed or checked) must not open.
#[test]
fn a_repository_whose_meta_says_verity_none_is_refused() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let root = dir.path().join("repo");
    Repository::create_or_open(&root).expect("create");
    fs::write(
        root.join("meta.json"),
        br#"{"version":1,"algorithm":"sha256","verity":"none"}"#,
    )
    .expect("meta.json");
    let err = Repository::open(&root)
        .err()
        .expect("opened a verity-none repository");
    assert!(matches!(err, StoreError::BadMeta { .. }), "{err}");
    assert!(err.to_string().contains("verity \"none\""), "{err}");
    assert!(Repository::create_or_open(&root).is_err());
}
