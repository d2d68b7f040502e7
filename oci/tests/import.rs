//! Importing real umoci-built images into a repository: digests checked with the `fsverity` and
//! `sha256sum` tools, the mounted image compared with `umoci unpack` by `find`, `sha256sum`, `stat`
//! and `getfattr`, a second import that stores nothing, a failed import that leaves nothing.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cfsgate_image::store::Repository;
use cfsgate_mounter::{mount_image, unmount, MountOptions, VerityMode};
use cfsgate_oci::{compute_id, import, resolve, ImportError};
use common::*;

fn output(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn sh(script: &str, dir: &Path) -> String {
    output(Command::new("sh").arg("-c").arg(script).current_dir(dir))
}

/// Every file below `root` (not `tmp/` or the lock) with its size: what the repository holds.
fn repo_files(root: &Path) -> Vec<(PathBuf, u64)> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if rel == Path::new("tmp") || rel == Path::new("lock") {
                continue;
            }
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                files.push((rel, meta.len()));
            }
        }
    }
    files.sort();
    files
}

/// What `find`, `sha256sum`, `stat` and `getfattr` say about every entry below `root` (the root itself excluded: a
/// composefs root takes its metadata from /usr). Directory sizes and link counts are left out
/// (they are file-system specific).
fn describe_tree(root: &Path) -> String {
    sh(
        "find . -mindepth 1 ! -type d -printf '%P %y %m %U %G %s %n %l %Ts\\n' | LC_ALL=C sort; \
         find . -mindepth 1 -type d -printf '%P %m %U %G %Ts\\n' | LC_ALL=C sort; \
         find . -type f | LC_ALL=C sort | xargs -d '\\n' sha256sum --; \
         find . \\( -type b -o -type c \\) -exec stat -c '%n %t:%T' {} + | LC_ALL=C sort; \
         find . -mindepth 1 | LC_ALL=C sort | xargs -d '\\n' getfattr -h -d -m - -e hex -- 2>/dev/null",
        root,
    )
}

struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = unmount(&self.0);
    }
}

#[test]
fn umoci_image_imports_once_and_mounts_like_umoci_unpack() {
    if !have_root("umoci_image_imports_once_and_mounts_like_umoci_unpack") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layout = umoci_image(work.path(), 3);
    let reference = format!("oci:{}:test", layout.display());
    let repo = Repository::create_or_open(work.path().join("repo")).unwrap();

    let first = import(&repo, &reference, Some("images/test")).unwrap();
    assert!(first.new_objects > 0);
    assert!(first.new_image);
    assert_eq!(
        compute_id(&resolve(&reference).unwrap()).unwrap(),
        first.image_digest,
        "compute-id equals the digest of the image imported"
    );
    assert_eq!(
        repo.read_ref("images/test").unwrap(),
        Some(first.image_digest)
    );

    // The image and every object are named by their fs-verity digest (the fsverity tool's).
    let image_path = repo.image_path(&first.image_digest);
    let measured = output(
        Command::new("fsverity")
            .arg("digest")
            .arg("--compact")
            .arg(&image_path),
    );
    assert_eq!(measured.trim(), first.image_digest.to_hex());
    let objects = sh(
        "find objects -type f | LC_ALL=C sort | xargs fsverity digest --compact",
        repo.path(),
    );
    let names = sh("find objects -type f | LC_ALL=C sort", repo.path());
    assert_eq!(objects.lines().count() as u64, first.new_objects);
    for (digest, name) in objects.lines().zip(names.lines()) {
        assert_eq!(name.replace('/', "").trim_start_matches("objects"), digest);
    }
    // Manifest and config stored by sha256 (sha256sum's), with the import record.
    for (digest, label) in [
        (first.manifest_digest, "manifest"),
        (first.config_digest, "config"),
    ] {
        let path = repo.path().join("oci/blobs/sha256").join(digest.hex());
        let sum = output(Command::new("sha256sum").arg(&path));
        assert_eq!(
            sum.split_whitespace().next(),
            Some(digest.hex().as_str()),
            "{label}"
        );
    }
    let record = cfsgate_oci::import::read_import_record(&repo, &first.manifest_digest)
        .unwrap()
        .unwrap();
    assert_eq!(record.image, first.image_digest);
    assert!(repo.fsck(false).unwrap().is_ok());

    // A second import stores nothing new.
    let before = repo_files(repo.path());
    let second = import(&repo, &reference, Some("images/test")).unwrap();
    assert_eq!(second.image_digest, first.image_digest);
    assert_eq!(second.new_objects, 0);
    assert_eq!(second.new_object_bytes, 0);
    assert!(!second.new_image);
    assert_eq!(
        second.reused_objects,
        first.new_objects + first.reused_objects
    );
    assert_eq!(repo_files(repo.path()), before);

    // Mounted (objects verified in userspace), it is what umoci unpack writes.
    let mnt = work.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    mount_image(
        &first.image_digest,
        &image_path,
        &mnt,
        &MountOptions {
            object_dirs: vec![repo.path().join("objects")],
            verity: Some(VerityMode::Userspace),
            ..Default::default()
        },
    )
    .unwrap();
    let mounted = Mounted(mnt.clone());
    let rootfs = umoci_unpack(&layout, "test", &work.path().join("bundle"));
    let ours = describe_tree(&mounted.0);
    let theirs = describe_tree(&rootfs);
    assert!(ours.contains("security.capability"), "{ours}");
    assert!(ours.contains(" 7:9"), "block device numbers: {ours}");
    assert!(ours.contains("  ./data/big\n"), "content hashes: {ours}");
    assert_eq!(ours, theirs);
    drop(mounted);
}

#[test]
fn failed_import_leaves_nothing_and_dir_signatures_are_kept() {
    if !have_root("failed_import_leaves_nothing_and_dir_signatures_are_kept") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layout = umoci_image(work.path(), 1);
    let reference = format!("oci:{}:test", layout.display());
    let dir_image = work.path().join("dirimage");
    run(Command::new("skopeo")
        .arg("copy")
        .arg("--quiet")
        .arg(&reference)
        .arg(format!("dir:{}", dir_image.display())));
    fs::write(dir_image.join("signature-1"), b"first signature bytes").unwrap();
    fs::write(dir_image.join("signature-2"), b"second signature bytes").unwrap();

    // Corrupt the last layer of the OCI layout: its digest no longer matches.
    let image = resolve(&reference).unwrap();
    let last = image.layers.last().unwrap().digest;
    let blob = layout.join("blobs/sha256").join(last.hex());
    let mut bytes = fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    fs::write(&blob, &bytes).unwrap();

    let repo = Repository::create_or_open(work.path().join("repo")).unwrap();
    let err = import(&repo, &reference, Some("broken")).unwrap_err();
    assert!(matches!(err, ImportError::Oci(_)), "{err:?}");
    assert!(err.to_string().contains(&last.hex()), "{err}");
    assert!(repo.list_images().unwrap().is_empty());
    assert_eq!(repo.read_ref("broken").unwrap(), None);
    assert!(!repo.path().join("oci").exists());
    assert_eq!(fs::read_dir(repo.path().join("tmp")).unwrap().count(), 0);
    assert!(repo.fsck(false).unwrap().is_ok());

    // The intact dir: copy imports, with its signatures kept by digest.
    let report = import(&repo, &format!("dir:{}", dir_image.display()), None).unwrap();
    assert_eq!(report.signatures.len(), 2);
    for (signature, text) in report.signatures.iter().zip([
        &b"first signature bytes"[..],
        &b"second signature bytes"[..],
    ]) {
        let stored = repo.path().join("oci/blobs/sha256").join(signature.hex());
        assert_eq!(fs::read(stored).unwrap(), text);
    }
    let record = cfsgate_oci::import::read_import_record(&repo, &report.manifest_digest)
        .unwrap()
        .unwrap();
    assert_eq!(record.signatures.len(), 2);
    assert!(repo.fsck(false).unwrap().is_ok());
}
