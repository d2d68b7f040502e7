//! One ref parser (#14 item 11): `cfsgate mount NAME` (the mounter's resolver), `cfsgate fsck`
//! and `cfsgate gc` read a ref file through the store's one function, so they agree on it: a
//! ref holding `sha256:<hex>` is followed by mount, valid to fsck and a root to gc; a ref that
//! is not a digest is refused by all three, naming it; a FIFO in a ref's place is refused by
//! all three without being opened (each runs under `timeout`, so a blocking open fails the
//! test instead of hanging it). Mounting needs root; under CI=true the test must not skip.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const CFSGATE: &str = env!("CARGO_BIN_EXE_cfsgate");
/// Seconds any one command may take: a FIFO opened for reading would block forever.
const COMMAND_TIMEOUT: &str = "60";

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

fn cfsgate(args: &[&str]) -> Output {
    let out = Command::new("timeout")
        .arg(COMMAND_TIMEOUT)
        .arg(CFSGATE)
        .args(args)
        .output()
        .expect("run cfsgate");
    assert_ne!(out.status.code(), Some(124), "cfsgate {args:?} hung");
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// (mount result, fsck result, gc result) with the repository's refs as they are.
fn three_readers(repo: &Path, name: &str, mnt: &Path) -> (Output, Output, Output) {
    let repo_s = repo.to_str().unwrap();
    let mount = cfsgate(&[
        "mount",
        "--repo",
        repo_s,
        "--verity",
        "userspace",
        name,
        mnt.to_str().unwrap(),
    ]);
    if mount.status.success() {
        let motd = fs::read_to_string(mnt.join("motd")).unwrap();
        assert_eq!(motd, "referenced\n");
        let out = cfsgate(&["umount", mnt.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let fsck = cfsgate(&["--repo", repo_s, "fsck"]);
    let gc = cfsgate(&["--repo", repo_s, "gc"]);
    (mount, fsck, gc)
}

#[test]
fn mount_fsck_and_gc_read_a_ref_alike() {
    if !is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run this test as root"
        );
        eprintln!("skipped: needs root");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (src, repo, mnt) = (
        work.path().join("src"),
        work.path().join("repo"),
        work.path().join("mnt"),
    );
    fs::create_dir_all(&src).unwrap();
    fs::create_dir_all(&mnt).unwrap();
    fs::write(src.join("motd"), "referenced\n").unwrap();
    fs::write(src.join("big"), "x".repeat(10_000)).unwrap();
    let out = cfsgate(&[
        "--repo",
        repo.to_str().unwrap(),
        "create",
        src.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let digest = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let refs = repo.join("refs");
    fs::create_dir_all(refs.join("app")).unwrap();

    // `sha256:<hex>`: followed by mount, no problem to fsck, a root to gc (the image stays).
    fs::write(refs.join("app/v1"), format!("sha256:{digest}\n")).unwrap();
    let (mount, fsck, gc) = three_readers(&repo, "app/v1", &mnt);
    assert!(mount.status.success(), "mount: {}", text(&mount));
    assert!(fsck.status.success(), "fsck: {}", text(&fsck));
    assert!(text(&fsck).contains("1 refs"), "{}", text(&fsck));
    assert!(gc.status.success(), "gc: {}", text(&gc));
    assert!(text(&gc).contains("removed 0 images"), "{}", text(&gc));
    assert!(
        repo.join("images").join(&digest).is_file(),
        "gc removed the referenced image"
    );

    // Not a digest: refused by all three, each naming the ref.
    fs::write(refs.join("app/bad"), format!("sha512:{digest}\n")).unwrap();
    let (mount, fsck, gc) = three_readers(&repo, "app/bad", &mnt);
    for (what, out) in [("mount", &mount), ("fsck", &fsck), ("gc", &gc)] {
        assert!(
            !out.status.success(),
            "{what} accepted a bad ref: {}",
            text(out)
        );
        assert!(text(out).contains("app/bad"), "{what}: {}", text(out));
    }
    assert!(
        repo.join("images").join(&digest).is_file(),
        "gc went on past a bad ref"
    );
    fs::remove_file(refs.join("app/bad")).unwrap();

    // A FIFO in a ref's place: refused by type, never opened (no reader blocks).
    let fifo = refs.join("app/fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let (mount, fsck, gc) = three_readers(&repo, "app/fifo", &mnt);
    for (what, out) in [("mount", &mount), ("fsck", &fsck), ("gc", &gc)] {
        assert!(
            !out.status.success(),
            "{what} accepted a FIFO ref: {}",
            text(out)
        );
        assert!(text(out).contains("FIFO"), "{what}: {}", text(out));
    }
    fs::remove_file(&fifo).unwrap();
    let (mount, fsck, gc) = three_readers(&repo, "app/v1", &mnt);
    for (what, out) in [("mount", &mount), ("fsck", &fsck), ("gc", &gc)] {
        assert!(
            out.status.success(),
            "{what} after the cleanup: {}",
            text(out)
        );
    }
}
