//! Opening a repository reads it and creates nothing; stored images are read in one open
//! that checks the file's type before reading (a FIFO does not block, a symbolic link is
//! refused, a directory is "not stored").
// Test code: a failed unwrap is a test failure with its message.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use cfsgate_image::store::{Repository, StoreError};
use cfsgate_image::tree::{Stat, Tree, S_IFDIR};
use cfsgate_image::FsVeritySha256;

fn empty_image(repo: &Repository) -> FsVeritySha256 {
    let root = Stat {
        mode: S_IFDIR | 0o755,
        nlink: 2,
        ..Stat::default()
    };
    repo.write_tree(&Tree::new(root)).unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn open_creates_nothing_and_the_first_image_and_ref_make_their_directories() {
    let dir = tempfile::tempdir().unwrap();
    drop(Repository::create_or_open(dir.path()).unwrap());
    fs::remove_dir(dir.path().join("images")).unwrap();
    fs::remove_dir(dir.path().join("refs")).unwrap();
    let before = names(dir.path());

    let repo = Repository::open(dir.path()).unwrap();
    assert_eq!(
        names(dir.path()),
        before,
        "a read-only open made a directory"
    );
    let missing = FsVeritySha256::from_hex(&"ab".repeat(32)).unwrap();
    assert!(repo.read_image_if_stored(&missing).unwrap().is_none());
    assert!(matches!(
        repo.read_image(&missing),
        Err(StoreError::ImageNotFound(_))
    ));
    assert_eq!(names(dir.path()), before);
    // Listing (which takes the lock, so `lock` appears) finds nothing rather than failing.
    assert!(repo.list_images().unwrap().is_empty());
    assert!(repo.list_refs().unwrap().is_empty());

    let image = empty_image(&repo);
    repo.set_ref("app", &image).unwrap();
    assert_eq!(repo.read_image(&image).unwrap().len() as u64, {
        fs::metadata(repo.image_path(&image)).unwrap().len()
    });
    assert_eq!(repo.list_refs().unwrap().len(), 1);
}

#[test]
fn a_missing_objects_or_tmp_directory_is_made_again() {
    let dir = tempfile::tempdir().unwrap();
    drop(Repository::create_or_open(dir.path()).unwrap());
    fs::remove_dir(dir.path().join("tmp")).unwrap();
    let repo = Repository::open(dir.path()).unwrap();
    assert!(dir.path().join("tmp").is_dir());
    empty_image(&repo);
}

#[test]
fn stored_image_names_are_type_checked_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::create_or_open(dir.path()).unwrap();
    let image = empty_image(&repo);
    let path = repo.image_path(&image);
    let bytes = repo.read_image(&image).unwrap();
    assert_eq!(
        repo.read_image_if_stored(&image).unwrap(),
        Some(bytes.clone())
    );

    // A symbolic link (even to the right bytes) is refused, not followed.
    let elsewhere = dir.path().join("copy");
    fs::write(&elsewhere, &bytes).unwrap();
    fs::remove_file(&path).unwrap();
    symlink(&elsewhere, &path).unwrap();
    let err = repo.read_image_if_stored(&image).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");

    // A FIFO opens at once (O_NONBLOCK) and is not an image; neither is a directory.
    fs::remove_file(&path).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    assert!(repo.read_image_if_stored(&image).unwrap().is_none());
    assert!(!repo.has_image(&image));
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    assert!(repo.read_image_if_stored(&image).unwrap().is_none());
}

#[test]
fn meta_json_that_is_a_symbolic_link_or_not_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Repository::create_or_open(dir.path()).unwrap());
    let meta = dir.path().join("meta.json");
    let saved = dir.path().join("meta.saved");
    fs::rename(&meta, &saved).unwrap();
    symlink(&saved, &meta).unwrap();
    let err = Repository::open(dir.path()).err().unwrap();
    assert!(matches!(err, StoreError::BadMeta { .. }), "{err}");
    fs::remove_file(&meta).unwrap();
    fs::create_dir(&meta).unwrap();
    let err = Repository::open(dir.path()).err().unwrap();
    assert!(matches!(err, StoreError::BadMeta { .. }), "{err}");
    fs::remove_dir(&meta).unwrap();
    fs::rename(&saved, &meta).unwrap();
    Repository::open(dir.path()).unwrap();
}
