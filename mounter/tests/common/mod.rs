//! Shared fixture of the mount tests: a real composefs image (written by the project's EROFS
//! writer), a real object store, a mount point, and probes of the kernel's mount state.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use cfsgate_image::erofs::writer::{write_image, WriteOptions};
use cfsgate_image::fsverity::digest_bytes;
use cfsgate_image::tree::{
    Content, FileData, Inode, Stat, Tree, Xattr, S_IFBLK, S_IFCHR, S_IFIFO, S_IFLNK, S_IFREG,
};
use cfsgate_image::{FsVeritySha256, InodeId};

/// Mount tests change global state (mount table, loop devices): one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Root-only tests skip when not root, except in CI where skipping would hide a failure.
pub fn root_or_skip() -> Option<MutexGuard<'static, ()>> {
    if !rustix::process::geteuid().is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "mount tests must run as root in CI"
        );
        eprintln!("skipped: needs root");
        return None;
    }
    Some(SERIAL.lock().unwrap_or_else(|e| e.into_inner()))
}

pub const BIG_LEN: usize = 300_000;
pub const NESTED: &[u8] = b"nested external content, long enough to be an object\n";

pub fn big_content() -> Vec<u8> {
    (0..BIG_LEN).map(|i| (i * 31 % 251) as u8).collect()
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub image: PathBuf,
    pub objects: PathBuf,
    pub target: PathBuf,
    pub trusted: FsVeritySha256,
    pub big_object: PathBuf,
}

fn stat(mode: u32, uid: u32, gid: u32) -> Stat {
    Stat {
        mode,
        nlink: 1,
        uid,
        gid,
        rdev: 0,
        mtime_sec: 1_700_000_000,
        mtime_nsec: 0,
    }
}

fn inode(mode: u32, uid: u32, gid: u32, content: Content) -> Inode {
    Inode {
        stat: stat(mode, uid, gid),
        xattrs: Vec::new(),
        content,
    }
}

fn external(data: &[u8], objects: &Path) -> (Content, PathBuf) {
    let digest = digest_bytes(data);
    let rel = digest.object_path();
    let path = objects.join(&rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, data).unwrap();
    let content = Content::Regular(FileData::External {
        size: data.len() as u64,
        digest: Some(digest),
        backing: Some(rel.into_bytes().into_boxed_slice()),
    });
    (content, path)
}

/// The tree every mount test reads back.
pub fn build_tree(objects: &Path) -> (Tree, PathBuf) {
    let mut tree = Tree::new(stat(0o755, 0, 0));
    let root = InodeId::ROOT;
    let mut inline = inode(
        S_IFREG | 0o640,
        1000,
        1001,
        Content::Regular(FileData::Inline(b"hello inline\n".to_vec().into())),
    );
    inline.xattrs.push(Xattr {
        key: b"user.color".to_vec().into(),
        value: b"blue".to_vec().into(),
    });
    tree.add(root, b"inline.txt", inline).unwrap();
    let (big, big_object) = external(&big_content(), objects);
    let big = tree
        .add(root, b"big.bin", inode(S_IFREG | 0o755, 1234, 5678, big))
        .unwrap();
    tree.inode_mut(big).stat.nlink = 2;
    tree.link(root, b"hardlink.bin", big, true).unwrap();
    tree.add(
        root,
        b"empty",
        inode(
            S_IFREG | 0o600,
            0,
            0,
            Content::Regular(FileData::Inline(Vec::new().into())),
        ),
    )
    .unwrap();
    tree.add(
        root,
        b"link",
        inode(
            S_IFLNK | 0o777,
            0,
            0,
            Content::Symlink(b"inline.txt".to_vec().into()),
        ),
    )
    .unwrap();
    let mut null = inode(S_IFCHR | 0o620, 0, 5, Content::Special { size: 0 });
    null.stat.rdev = rustix::fs::makedev(1, 3);
    tree.add(root, b"null", null).unwrap();
    let mut disk = inode(S_IFBLK | 0o660, 0, 6, Content::Special { size: 0 });
    disk.stat.rdev = rustix::fs::makedev(8, 1);
    tree.add(root, b"disk", disk).unwrap();
    tree.add(
        root,
        b"fifo",
        inode(S_IFIFO | 0o644, 0, 0, Content::Special { size: 0 }),
    )
    .unwrap();
    let mut sub = inode(0o040_750, 42, 43, Content::Directory(Vec::new()));
    sub.xattrs.push(Xattr {
        key: b"user.dir".to_vec().into(),
        value: b"yes".to_vec().into(),
    });
    let sub = tree.add(root, b"sub", sub).unwrap();
    let deeper = tree
        .add(
            sub,
            b"deeper",
            inode(0o040_755, 0, 0, Content::Directory(Vec::new())),
        )
        .unwrap();
    let (nested, _) = external(NESTED, objects);
    tree.add(deeper, b"nested.txt", inode(S_IFREG | 0o444, 7, 8, nested))
        .unwrap();
    (tree, big_object)
}

/// The fs-verity digest of a file according to the `fsverity` tool (independent of cfsgate).
pub fn fsverity_digest(path: &Path) -> FsVeritySha256 {
    let out = Command::new("fsverity")
        .arg("digest")
        .arg(path)
        .output()
        .expect("run fsverity digest");
    assert!(
        out.status.success(),
        "fsverity digest: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let hex = text
        .split_whitespace()
        .next()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap();
    FsVeritySha256::from_hex(hex).unwrap()
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("cfsgate-mount-test")
            .tempdir()
            .unwrap();
        let objects = dir.path().join("objects");
        fs::create_dir(&objects).unwrap();
        let (tree, big_object) = build_tree(&objects);
        let bytes = write_image(&tree, &WriteOptions::default()).unwrap();
        let image = dir.path().join("image.cfs");
        fs::write(&image, bytes).unwrap();
        let target = dir.path().join("mnt");
        fs::create_dir(&target).unwrap();
        let trusted = fsverity_digest(&image);
        Fixture {
            dir,
            image,
            objects,
            target,
            trusted,
            big_object,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.target.join(rel)
    }
}

/// Lines of /proc/self/mountinfo that mention `needle`.
pub fn mounts_mentioning(needle: &str) -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// All mountinfo lines for erofs filesystems.
pub fn erofs_mounts() -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" - erofs "))
        .map(str::to_owned)
        .collect()
}

/// Loop devices whose backing file is a cfsgate sealed image copy.
pub fn cfsgate_loop_devices() -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/sys/block").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        if let Ok(backing) = fs::read_to_string(entry.path().join("loop/backing_file")) {
            if backing.contains("cfsgate-image") {
                found.push(format!("{name}: {}", backing.trim()));
            }
        }
    }
    found
}

/// Wait (bounded) for the kernel's deferred teardown (autoclear of loop devices) to finish.
pub fn wait_for_no_cfsgate_loops() -> Vec<String> {
    for _ in 0..100 {
        let left = cfsgate_loop_devices();
        if left.is_empty() {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    cfsgate_loop_devices()
}
