//! `build_from_dir` on real directories, checked against independent tools: `lstat` through std,
//! `getfattr` (package `attr`) for xattrs, `setfacl` (package `acl`) to make an ACL, and the
//! `fsverity digest` command (package `fsverity`) for object digests.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use cfsgate_image::fromdir::{build_from_dir, BuildOptions};
use cfsgate_image::tree::{Content, FileData, Tree, S_IFBLK, S_IFCHR, S_IFIFO, S_IFMT, S_IFSOCK};
use cfsgate_image::{FsVeritySha256, InodeId};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Root-only parts run as root, and must run in CI.
fn require_root(what: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} needs root, and CI must run it"
    );
    eprintln!("skipping {what}: not root");
    false
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Every xattr of `path` (not following a symlink) as `getfattr` reports it.
fn getfattr(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let out = run(Command::new("getfattr")
        .args(["-h", "-d", "-m", "-", "-e", "hex", "--absolute-names"])
        .arg(path));
    let mut map = BTreeMap::new();
    for line in out.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (key, value) = line.split_once('=').unwrap_or((line, "\"\""));
        let value = match value.strip_prefix("0x") {
            Some(hex) => hex::decode(hex).expect("hex value"),
            None => value.trim_matches('"').as_bytes().to_vec(),
        };
        map.insert(key.as_bytes().to_vec(), value);
    }
    map
}

/// The fs-verity digest the `fsverity` tool computes.
fn fsverity_tool(path: &Path) -> FsVeritySha256 {
    let out = run(Command::new("fsverity").arg("digest").arg(path));
    let first = out.split_whitespace().next().expect("output");
    first
        .strip_prefix("sha256:")
        .expect("sha256: prefix")
        .parse()
        .expect("hex digest")
}

fn write_random(path: &Path, size: usize) {
    let mut data = vec![0u8; size];
    let mut f = fs::File::open("/dev/urandom").expect("urandom");
    std::io::Read::read_exact(&mut f, &mut data).expect("random bytes");
    fs::write(path, data).expect("write");
}

const SIZES: &[usize] = &[0, 1, 64, 65, 4096, 1024 * 1024 + 3];

/// A source tree with every file type the caller may create; returns the root.
fn make_source(dir: &Path, root_parts: bool) -> PathBuf {
    let src = dir.join("src");
    fs::create_dir(&src).unwrap();
    fs::create_dir(src.join("sub")).unwrap();
    fs::set_permissions(src.join("sub"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::create_dir(src.join("sub/deeper")).unwrap();
    for &size in SIZES {
        write_random(&src.join(format!("f{size}")), size);
    }
    fs::write(
        src.join("sub/same-as-f65"),
        fs::read(src.join("f65")).unwrap(),
    )
    .unwrap();
    fs::set_permissions(src.join("f1"), fs::Permissions::from_mode(0o4755)).unwrap();
    symlink("f4096", src.join("link")).unwrap();
    symlink("/nowhere/dangling", src.join("sub/dangling")).unwrap();
    fs::hard_link(src.join("f65"), src.join("sub/deeper/hard-65")).unwrap();
    fs::hard_link(src.join("f65"), src.join("sub/hard-65")).unwrap();
    run(Command::new("mkfifo").arg(src.join("fifo")));
    let _listener = std::os::unix::net::UnixListener::bind(src.join("socket")).unwrap();
    run(Command::new("setfattr")
        .args(["-n", "user.greeting", "-v", "hello"])
        .arg(src.join("f65")));
    run(Command::new("setfattr")
        .args(["-n", "user.empty"])
        .arg(src.join("sub")));
    run(Command::new("setfacl")
        .args(["-m", "u:1234:r", "-d", "-m", "g:99:rx"])
        .arg(src.join("sub")));
    run(Command::new("setfattr")
        .args(["-n", "user.root", "-v", "r"])
        .arg(&src));
    if root_parts {
        run(Command::new("mknod")
            .arg(src.join("null"))
            .args(["c", "1", "3"]));
        run(Command::new("mknod")
            .arg(src.join("whiteout"))
            .args(["c", "0", "0"]));
        run(Command::new("mknod")
            .arg(src.join("loop"))
            .args(["b", "7", "200"]));
        run(Command::new("setfattr")
            .args(["-n", "trusted.secret", "-v", "t"])
            .arg(src.join("f4096")));
        run(Command::new("setfattr")
            .args(["-n", "trusted.overlay.opaque", "-v", "y"])
            .arg(src.join("sub")));
        run(Command::new("setfattr")
            .args(["-n", "security.selinux", "-v", "system_u:object_r:etc_t:s0"])
            .arg(src.join("f64")));
        // user.* xattrs are not allowed on symlinks; trusted.* are (for root).
        run(Command::new("setfattr")
            .args(["-h", "-n", "trusted.on-link", "-v", "0x00ff"])
            .arg(src.join("link")));
        run(Command::new("chown")
            .args(["-h", "1000:2000"])
            .arg(src.join("link")));
    }
    src
}

/// Every path of the tree (BFS, primary names) with its inode id.
fn paths(tree: &Tree) -> BTreeMap<Vec<u8>, InodeId> {
    tree.bfs()
        .into_iter()
        .map(|(id, path)| (path, id))
        .collect()
}

/// Check one inode against the file on disk (metadata via std, xattrs via getfattr).
fn check_against_disk(tree: &Tree, id: InodeId, disk: &Path) {
    let inode = tree.inode(id);
    let md = fs::symlink_metadata(disk).unwrap();
    assert_eq!(inode.stat.mode, md.mode(), "{disk:?} mode");
    assert_eq!(inode.stat.uid, md.uid(), "{disk:?} uid");
    assert_eq!(inode.stat.gid, md.gid(), "{disk:?} gid");
    assert_eq!(inode.stat.mtime_sec, md.mtime(), "{disk:?} mtime");
    assert_eq!(
        inode.stat.mtime_nsec as i64,
        md.mtime_nsec(),
        "{disk:?} mtime nsec"
    );
    let xattrs: BTreeMap<Vec<u8>, Vec<u8>> = inode
        .xattrs
        .iter()
        .map(|x| (x.key.to_vec(), x.value.to_vec()))
        .collect();
    assert_eq!(xattrs, getfattr(disk), "{disk:?} xattrs");
    let ft = md.mode() & S_IFMT;
    match &inode.content {
        Content::Directory(entries) => {
            assert!(md.is_dir());
            let subdirs = entries
                .iter()
                .filter(|e| tree.inode(e.inode).entries().is_some())
                .count() as u32;
            assert_eq!(inode.stat.nlink, 2 + subdirs, "{disk:?} dir nlink");
        }
        Content::Regular(data) => {
            assert!(md.is_file());
            let size = md.len();
            assert_eq!(data.size(), size);
            match data {
                FileData::Inline(bytes) => {
                    assert!(
                        (1..=64).contains(&size),
                        "{disk:?}: inline only for 1..=64 bytes"
                    );
                    assert_eq!(&**bytes, &fs::read(disk).unwrap()[..]);
                }
                FileData::External {
                    digest: None,
                    backing: None,
                    ..
                } => assert_eq!(size, 0),
                FileData::External {
                    digest: Some(d),
                    backing: Some(b),
                    ..
                } => {
                    assert!(size > 64);
                    assert_eq!(*d, fsverity_tool(disk), "{disk:?} digest");
                    assert_eq!(&**b, d.object_path().as_bytes());
                }
                other => panic!("{disk:?}: unexpected {other:?}"),
            }
        }
        Content::Symlink(target) => {
            assert!(md.file_type().is_symlink());
            assert_eq!(
                &**target,
                fs::read_link(disk).unwrap().as_os_str().as_bytes()
            );
        }
        Content::Special { size } => {
            assert_eq!(*size, 0);
            assert!(
                matches!(ft, S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK),
                "{disk:?} type {ft:o}"
            );
            if matches!(ft, S_IFCHR | S_IFBLK) {
                assert_eq!(inode.stat.rdev, md.rdev(), "{disk:?} rdev");
            } else {
                assert_eq!(inode.stat.rdev, 0);
            }
        }
    }
}

fn default_opts() -> BuildOptions {
    BuildOptions {
        compute_digests: true,
        ..BuildOptions::default()
    }
}

#[test]
fn every_file_type_matches_the_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let root_parts = require_root("devices, trusted.* and security.* xattrs, chown");
    let src = make_source(tmp.path(), root_parts);
    let tree = build_from_dir(&src, &default_opts()).unwrap();

    let by_path = paths(&tree);
    // Every path on disk is in the tree, and nothing else.
    let mut on_disk = vec![b"/".to_vec()];
    for entry in walk(&src) {
        let rel = entry.strip_prefix(&src).unwrap();
        on_disk.push([b"/", rel.as_os_str().as_bytes()].concat());
    }
    on_disk.sort();
    assert_eq!(by_path.keys().cloned().collect::<Vec<_>>(), on_disk);
    for (path, id) in &by_path {
        let disk = src.join(std::ffi::OsStr::from_bytes(&path[1..]));
        check_against_disk(&tree, *id, &disk);
    }
    // The ACLs are there under their system.* names (getfattr agreed above; make sure it saw them).
    let sub = tree.inode(by_path[&b"/sub".to_vec()]);
    assert!(sub.xattr(b"system.posix_acl_access").is_some());
    assert!(sub.xattr(b"system.posix_acl_default").is_some());
    if root_parts {
        assert_eq!(
            tree.inode(by_path[&b"/f64".to_vec()])
                .xattr(b"security.selinux"),
            Some(&b"system_u:object_r:etc_t:s0"[..])
        );
        assert_eq!(
            tree.inode(by_path[&b"/sub".to_vec()])
                .xattr(b"trusted.overlay.opaque"),
            Some(&b"y"[..])
        );
    }
    // By default hard links are separate inodes with nlink 1 (as upstream mkcomposefs).
    for p in ["/f65", "/sub/hard-65", "/sub/deeper/hard-65"] {
        let inode = tree.inode(by_path[p.as_bytes()]);
        assert_eq!(inode.stat.nlink, 1, "{p}");
    }
    assert!(tree
        .inodes
        .iter()
        .all(|i| i.entries().is_none_or(|e| e.iter().all(|e| !e.hardlink))));
}

/// All paths under `dir` (not following symlinks).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push(path.clone());
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            out.extend(walk(&path));
        }
    }
    out
}

#[test]
fn preserve_hardlinks_makes_one_inode_with_the_first_bfs_name_primary() {
    let tmp = tempfile::tempdir().unwrap();
    let src = make_source(tmp.path(), false);
    let opts = BuildOptions {
        preserve_hardlinks: true,
        ..default_opts()
    };
    let tree = build_from_dir(&src, &opts).unwrap();
    let by_path = paths(&tree);
    // BFS order: /f65 (depth 1) comes before /sub/hard-65 and /sub/deeper/hard-65.
    let primary = by_path[&b"/f65".to_vec()];
    assert!(
        !by_path.contains_key(b"/sub/hard-65".as_slice()),
        "hard link names are not primary"
    );
    for (dir, name) in [("/sub", "hard-65"), ("/sub/deeper", "hard-65")] {
        let entry = tree
            .lookup(by_path[dir.as_bytes()], name.as_bytes())
            .unwrap();
        assert!(entry.hardlink);
        assert_eq!(entry.inode, primary);
    }
    assert_eq!(tree.inode(primary).stat.nlink, 3);
    assert_eq!(
        tree.inode(primary).content,
        Content::Regular(FileData::External {
            size: 65,
            digest: Some(fsverity_tool(&src.join("f65"))),
            backing: Some(
                fsverity_tool(&src.join("f65"))
                    .object_path()
                    .into_bytes()
                    .into()
            ),
        })
    );
    // Everything else is as without the option.
    let plain = build_from_dir(&src, &default_opts()).unwrap();
    assert_eq!(tree.inodes.len() + 2, plain.inodes.len());
}

#[test]
fn parallel_equals_single_threaded_and_digests_off_leaves_them_out() {
    let tmp = tempfile::tempdir().unwrap();
    let src = make_source(tmp.path(), false);
    for i in 0..300 {
        write_random(&src.join(format!("sub/deeper/many-{i}")), 65 + i * 97);
    }
    let one = build_from_dir(
        &src,
        &BuildOptions {
            threads: Some(1),
            ..default_opts()
        },
    )
    .unwrap();
    let all = build_from_dir(&src, &default_opts()).unwrap();
    let four = build_from_dir(
        &src,
        &BuildOptions {
            threads: Some(4),
            ..default_opts()
        },
    )
    .unwrap();
    assert_eq!(one, all);
    assert_eq!(one, four);

    let no_digest = build_from_dir(&src, &BuildOptions::default()).unwrap();
    for (a, b) in no_digest.inodes.iter().zip(&one.inodes) {
        match (&a.content, &b.content) {
            (
                Content::Regular(FileData::External {
                    size,
                    digest,
                    backing,
                }),
                Content::Regular(FileData::External { size: s2, .. }),
            ) => {
                assert_eq!(size, s2);
                assert!(digest.is_none() && backing.is_none());
            }
            _ => assert_eq!(a, b),
        }
    }
}

/// Every object in the store: its name is the fs-verity digest (per the tool) of its content.
fn check_store(store: &Path) -> Vec<FsVeritySha256> {
    let mut objects = Vec::new();
    for fanout in fs::read_dir(store).unwrap() {
        let fanout = fanout.unwrap();
        let name = fanout.file_name().into_string().unwrap();
        assert!(!name.starts_with('.'), "leftover temporary file {name}");
        assert_eq!(name.len(), 2, "unexpected entry {name}");
        for object in fs::read_dir(fanout.path()).unwrap() {
            let object = object.unwrap();
            let digest: FsVeritySha256 =
                format!("{name}{}", object.file_name().into_string().unwrap())
                    .parse()
                    .unwrap();
            assert_eq!(fsverity_tool(&object.path()), digest);
            assert_eq!(object.metadata().unwrap().mode() & 0o7777, 0o644);
            objects.push(digest);
        }
    }
    objects.sort();
    objects
}

#[test]
fn digest_store_holds_each_external_file_under_its_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let src = make_source(tmp.path(), false);
    let store = tmp.path().join("store/nested");
    let opts = BuildOptions {
        digest_store: Some(store.clone()),
        ..BuildOptions::default()
    };
    let tree = build_from_dir(&src, &opts).unwrap();
    assert_eq!(
        tree,
        build_from_dir(&src, &default_opts()).unwrap(),
        "the store changes nothing in the tree"
    );

    // Exactly the external files > 64 bytes, deduplicated (f65 == sub/same-as-f65 == hard links).
    let mut expected: Vec<FsVeritySha256> = ["f65", "f4096", &format!("f{}", 1024 * 1024 + 3)]
        .iter()
        .map(|f| fsverity_tool(&src.join(f)))
        .collect();
    expected.sort();
    assert_eq!(check_store(&store), expected);
    for f in ["f65", "f4096"] {
        let digest = fsverity_tool(&src.join(f));
        assert_eq!(
            fs::read(store.join(digest.object_path())).unwrap(),
            fs::read(src.join(f)).unwrap()
        );
    }

    // A second run finds everything present and leaves the store as it was.
    let before = fs::metadata(store.join(expected[0].object_path()))
        .unwrap()
        .ino();
    build_from_dir(&src, &opts).unwrap();
    assert_eq!(check_store(&store), expected);
    assert_eq!(
        fs::metadata(store.join(expected[0].object_path()))
            .unwrap()
            .ino(),
        before
    );
}

#[test]
fn concurrent_runs_share_one_store_safely() {
    let tmp = tempfile::tempdir().unwrap();
    let src = make_source(tmp.path(), false);
    for i in 0..200 {
        write_random(&src.join(format!("sub/shared-{i}")), 100 + i * 513);
    }
    let store = tmp.path().join("store");
    let runs: Vec<Tree> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let opts = BuildOptions {
                    digest_store: Some(store.clone()),
                    threads: Some(1 + i % 2),
                    ..BuildOptions::default()
                };
                let src = &src;
                s.spawn(move || build_from_dir(src, &opts).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(runs.windows(2).all(|w| w[0] == w[1]));
    let objects = check_store(&store);
    assert_eq!(objects.len(), 3 + 200);
}

#[test]
fn missing_directory_is_an_error_naming_it() {
    let err = build_from_dir(Path::new("/nonexistent/cfsgate-src"), &default_opts()).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/cfsgate-src"),
        "{err}"
    );
}
