//! A real distribution: a Debian bookworm minbase rootfs made by `debootstrap`, packed by
//! `umoci insert`, imported (twice: the second stores nothing), sealed, mounted, and
//! `chroot MNT /bin/true` run inside it.
//!
//! Needs root, `debootstrap`, `umoci`, and the Debian archive (debootstrap's default mirror).
//! Ignored by default: in the unoptimised test profile it takes about 6.5 minutes (debootstrap
//! 80 s; import, second import, seal and compute-id 40-60 s each, all hashing in debug code).
//! Run it with `cargo test -p cfsgate-oci --test debian -- --ignored --nocapture` (timings go to
//! stderr; benches/OCI-RESULTS.md has them).
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use cfsgate_image::store::Repository;
use cfsgate_mounter::{mount_image, unmount, MountOptions, VerityMode};
use cfsgate_oci::{compute_id, import, read_seal, resolve, seal, SealOptions};
use common::*;

fn tool_present(name: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Every file of the repository except `tmp/` and the lock, with sizes.
fn repo_files(root: &Path) -> Vec<(PathBuf, u64)> {
    let out = Command::new("sh")
        .arg("-c")
        .arg("find . -path ./tmp -prune -o -type f ! -name lock -printf '%P %s\\n' | LC_ALL=C sort")
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (p, s) = l.rsplit_once(' ').unwrap();
            (PathBuf::from(p), s.parse().unwrap())
        })
        .collect()
}

struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = unmount(&self.0);
    }
}

#[test]
#[ignore = "about 6.5 minutes in the debug profile (debootstrap and hashing 200 MB four times); run with --ignored"]
fn debian_minbase_imports_seals_mounts_and_runs() {
    if !have_root("debian_minbase_imports_seals_mounts_and_runs") {
        return;
    }
    if !tool_present("debootstrap") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "debootstrap is not installed (apt-get install debootstrap)"
        );
        eprintln!("skipping: debootstrap is not installed");
        return;
    }
    let work = tempfile::tempdir_in("/var/tmp").unwrap();
    let rootfs = work.path().join("rootfs");
    let started = Instant::now();
    run(Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg("bookworm")
        .arg(&rootfs));
    eprintln!("debootstrap: {:.1?}", started.elapsed());

    let layout = work.path().join("layout");
    let t = Instant::now();
    run(Command::new("umoci")
        .arg("init")
        .arg("--layout")
        .arg(&layout));
    let image = format!("{}:bookworm", layout.display());
    run(Command::new("umoci").arg("new").arg("--image").arg(&image));
    run(Command::new("umoci")
        .arg("insert")
        .arg("--image")
        .arg(&image)
        .arg(&rootfs)
        .arg("/"));
    eprintln!("umoci insert: {:.1?}", t.elapsed());

    let reference = format!("oci:{image}");
    let repo = Repository::create_or_open(work.path().join("repo")).unwrap();
    let t = Instant::now();
    let first = import(&repo, &reference, Some("debian/bookworm")).unwrap();
    eprintln!(
        "import: {:.1?} ({} objects, {} bytes)",
        t.elapsed(),
        first.new_objects,
        first.new_object_bytes
    );
    assert!(first.new_objects > 1000, "{first:?}");
    let before = repo_files(repo.path());
    let t = Instant::now();
    let second = import(&repo, &reference, Some("debian/bookworm")).unwrap();
    eprintln!("second import: {:.1?}", t.elapsed());
    assert_eq!(second.image_digest, first.image_digest);
    assert_eq!((second.new_objects, second.new_image), (0, false));
    assert_eq!(
        repo_files(repo.path()),
        before,
        "the second import stored something"
    );

    let t = Instant::now();
    let sealed = seal(
        &reference,
        &layout,
        "bookworm-sealed",
        SealOptions::default(),
    )
    .unwrap();
    eprintln!("seal: {:.1?}", t.elapsed());
    assert_eq!(sealed.image_digest, first.image_digest);
    let sealed_ref = format!("oci:{}:bookworm-sealed", layout.display());
    let sealed_image = resolve(&sealed_ref).unwrap();
    assert_eq!(read_seal(&sealed_image).unwrap(), Some(first.image_digest));
    let t = Instant::now();
    assert_eq!(compute_id(&sealed_image).unwrap(), first.image_digest);
    eprintln!("compute-id: {:.1?}", t.elapsed());
    // The sealed image imports (its label checked) into the same composefs image: nothing new.
    let third = import(&repo, &sealed_ref, Some("debian/sealed")).unwrap();
    assert_eq!(third.seal, Some(first.image_digest));
    assert_eq!((third.new_objects, third.new_image), (0, false));

    let mnt = work.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    mount_image(
        &first.image_digest,
        &repo.image_path(&first.image_digest),
        &mnt,
        &MountOptions {
            object_dirs: vec![repo.path().join("objects")],
            verity: Some(VerityMode::None),
            ..Default::default()
        },
    )
    .unwrap();
    let mounted = Mounted(mnt);
    run(Command::new("chroot").arg(&mounted.0).arg("/bin/true"));
    let out = Command::new("chroot")
        .arg(&mounted.0)
        .arg("/bin/sh")
        .arg("-c")
        .arg("dpkg-query -W -f '${Package}\\n' base-files && cat /etc/debian_version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("base-files\n12."), "{text}");
    drop(mounted);
    assert!(repo.fsck(false).unwrap().is_ok());
    eprintln!("total: {:.1?}", started.elapsed());
}
