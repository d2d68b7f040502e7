//! The object store on real files and real processes: sharing, gc, fsck, concurrency, crashes.
//!
//! Images here are real composefs images made by the EROFS writer from trees whose files are
//! objects written through the store; process tests re-run this test binary as the child
//! (`child_process` below, selected by the `CFSGATE_STORE_CHILD` environment variable).
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cfsgate_image::fsverity::{digest_bytes, digest_reader, Sha256};
use cfsgate_image::store::{LockKind, Repository, VerityMode};
use cfsgate_image::tree::{Content, FileData, Inode, InodeId, Stat, Tree, S_IFDIR, S_IFREG};
use cfsgate_image::FsVeritySha256;

const CHILD_ENV: &str = "CFSGATE_STORE_CHILD";

/// A small deterministic generator (xorshift64*), so content is reproducible from an id.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn time_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
}

/// The content of file `id`: 1 byte to ~40 KiB (some spanning several fs-verity blocks).
fn content(id: u64) -> Vec<u8> {
    let mut rng = Rng::new(id + 1);
    let len = 1 + rng.below(40_000) as usize;
    (0..len).map(|_| rng.next() as u8).collect()
}

/// Store files `ids` as objects and a tree naming them `d<id%8>/f<id>`; returns the image
/// digest. Holds the shared lock from the first object to the ref, as any writer must.
fn store_files(repo: &Repository, ids: &[u64], ref_name: Option<&str>) -> FsVeritySha256 {
    let _lock = repo.lock(LockKind::Shared).unwrap();
    let batch = repo.object_batch().unwrap();
    let dir_stat = Stat {
        mode: S_IFDIR | 0o755,
        nlink: 2,
        ..Stat::default()
    };
    let mut tree = Tree::new(dir_stat.clone());
    for id in ids {
        let data = content(*id);
        let digest = batch
            .add_reader(&data[..], Path::new("<test content>"))
            .unwrap();
        assert_eq!(digest, digest_bytes(&data));
        let dir_name = format!("d{}", id % 8);
        let dir = match tree.lookup(InodeId::ROOT, dir_name.as_bytes()) {
            Some(entry) => entry.inode,
            None => tree
                .add(
                    InodeId::ROOT,
                    dir_name.as_bytes(),
                    Inode {
                        stat: dir_stat.clone(),
                        xattrs: vec![],
                        content: Content::Directory(vec![]),
                    },
                )
                .unwrap(),
        };
        let file = Inode {
            stat: Stat {
                mode: S_IFREG | 0o644,
                nlink: 1,
                ..Stat::default()
            },
            xattrs: vec![],
            content: Content::Regular(FileData::External {
                size: data.len() as u64,
                digest: Some(digest),
                backing: Some(digest.object_path().into_bytes().into()),
            }),
        };
        tree.add(dir, format!("f{id}").as_bytes(), file).unwrap();
    }
    batch.commit().unwrap();
    let image = repo.write_tree(&tree).unwrap();
    if let Some(name) = ref_name {
        repo.set_ref(name, &image).unwrap();
    }
    image
}

fn object_files(repo: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for prefix in fs::read_dir(repo.join("objects")).unwrap() {
        for entry in fs::read_dir(prefix.unwrap().path()).unwrap() {
            out.insert(entry.unwrap().path());
        }
    }
    out
}

fn dir_bytes(files: &BTreeSet<PathBuf>) -> u64 {
    files.iter().map(|p| fs::metadata(p).unwrap().len()).sum()
}

fn new_repo() -> (tempfile::TempDir, Repository) {
    let dir = tempfile::tempdir_in(env_tmp()).unwrap();
    let repo = Repository::create_or_open(dir.path().join("repo")).unwrap();
    (dir, repo)
}

/// Tests put repositories on a real disk file system (not a tmpfs /tmp), where syncfs matters.
fn env_tmp() -> PathBuf {
    std::env::var_os("CFSGATE_TEST_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp"))
}

#[test]
fn meta_records_layout_and_userspace_verity() {
    let (_dir, repo) = new_repo();
    let text = fs::read_to_string(repo.path().join("meta.json")).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(meta["version"], 1);
    assert_eq!(meta["algorithm"], "sha256");
    // This machine's kernel has no fs-verity (the fsverity tool cannot enable it here).
    let probe = repo.path().join("tmp/probe");
    fs::write(&probe, b"probe").unwrap();
    let kernel_can = Command::new("fsverity")
        .arg("enable")
        .arg(&probe)
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let expected = if kernel_can {
        VerityMode::Kernel
    } else {
        VerityMode::Userspace
    };
    assert_eq!(
        repo.meta().verity,
        expected,
        "fsverity enable succeeded: {kernel_can}"
    );
    assert_eq!(
        meta["verity"],
        if kernel_can { "kernel" } else { "userspace" }
    );
    fs::write(
        repo.path().join("meta.json"),
        br#"{"version":2,"algorithm":"sha256","verity":"userspace"}"#,
    )
    .unwrap();
    let err = Repository::open(repo.path()).err().unwrap().to_string();
    assert!(err.contains("layout version 2"), "{err}");
    assert!(Repository::open(repo.path().join("nowhere")).is_err());
}

#[test]
fn two_images_sharing_90_percent_store_shared_objects_once() {
    let (_dir, repo) = new_repo();
    let a: Vec<u64> = (0..100).collect();
    let b: Vec<u64> = (10..110).collect(); // 90 of 100 files shared with a
    let image_a = store_files(&repo, &a, Some("a"));
    let files_after_a = object_files(repo.path());
    let image_b = store_files(&repo, &b, Some("b"));
    let files = object_files(repo.path());
    assert_ne!(image_a, image_b);

    let distinct: BTreeSet<Vec<u8>> = (0..110).map(content).collect();
    assert_eq!(files_after_a.len(), 100);
    assert_eq!(
        files.len(),
        distinct.len(),
        "one object per distinct content"
    );
    let expected_bytes: u64 = distinct.iter().map(|c| c.len() as u64).sum();
    assert_eq!(dir_bytes(&files), expected_bytes);

    let images = repo.list_images().unwrap();
    assert_eq!(images.len(), 2);
    let shared: u64 = (10..100).map(|id| content(id).len() as u64).sum();
    for info in &images {
        let (name, only): (&str, Vec<u64>) = if info.digest == image_a {
            ("a", (0..10).collect())
        } else {
            ("b", (100..110).collect())
        };
        assert_eq!(info.refs, vec![name.to_string()]);
        assert_eq!(info.n_objects, 100);
        assert_eq!(info.shared_bytes, shared);
        assert_eq!(
            info.unique_bytes,
            only.iter().map(|id| content(*id).len() as u64).sum::<u64>()
        );
        assert_eq!(
            info.size,
            fs::metadata(repo.image_path(&info.digest)).unwrap().len()
        );
    }
    // The stored image is named by its own fs-verity digest, as `fsverity digest` computes it.
    let out = Command::new("fsverity")
        .arg("digest")
        .arg(repo.image_path(&image_a))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&image_a.to_hex()));
}

#[test]
fn missing_objects_lists_exactly_what_is_absent_and_write_image_refuses() {
    let (_dir, repo) = new_repo();
    let (_dir2, other) = new_repo();
    store_files(&repo, &[1, 2, 3], None);
    let image = store_files(&other, &[2, 3, 4, 5], None);
    let bytes = other.read_image(&image).unwrap();
    let want: Vec<_> = [4u64, 5]
        .iter()
        .map(|id| digest_bytes(&content(*id)))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(repo.missing_objects(&bytes).unwrap(), want);
    let err = repo.write_image(&bytes).unwrap_err().to_string();
    assert!(err.contains("2 objects"), "{err}");
    assert!(!repo.has_image(&image));
    for id in [4u64, 5] {
        repo.write_object_from_reader(&content(id)[..]).unwrap();
    }
    assert_eq!(repo.write_image(&bytes).unwrap(), image);
    assert!(repo.missing_objects(&bytes).unwrap().is_empty());
}

#[test]
fn refs_resolve_validate_and_require_an_image() {
    let (_dir, repo) = new_repo();
    let image = store_files(&repo, &[1, 2], None);
    repo.set_ref("registry.example/app/v1", &image).unwrap();
    assert_eq!(repo.resolve("registry.example/app/v1").unwrap(), image);
    assert_eq!(repo.resolve(&image.to_hex()).unwrap(), image);
    assert_eq!(
        repo.list_refs().unwrap(),
        vec![("registry.example/app/v1".to_string(), image)]
    );
    for bad in ["../escape", "a//b", "/abs", "a/./b", ""] {
        assert!(repo.set_ref(bad, &image).is_err(), "{bad:?} accepted");
    }
    let absent = digest_bytes(b"no such image");
    assert!(repo.set_ref("x", &absent).is_err());
    assert!(repo.remove_ref("registry.example/app/v1").unwrap());
    assert!(!repo.remove_ref("registry.example/app/v1").unwrap());
    assert!(
        !repo.path().join("refs/registry.example").exists(),
        "empty ref directories pruned"
    );
    assert!(repo.resolve("registry.example/app/v1").is_err());
}

#[test]
fn gc_removes_exactly_the_unreferenced() {
    let (_dir, repo) = new_repo();
    let kept = store_files(&repo, &(0..20).collect::<Vec<_>>(), Some("kept"));
    let dropped = store_files(&repo, &(15..40).collect::<Vec<_>>(), Some("dropped"));
    let loose = repo
        .write_object_from_reader(&b"loose object, no image"[..])
        .unwrap();
    repo.remove_ref("dropped").unwrap();
    let before = object_files(repo.path());
    let live: BTreeSet<PathBuf> = (0..20)
        .map(|id| repo.object_path(&digest_bytes(&content(id))))
        .collect();
    let dead: BTreeSet<PathBuf> = before.difference(&live).cloned().collect();
    assert_eq!(dead.len(), 20 + 1, "ids 20..40 and the loose object");
    let dead_bytes = dir_bytes(&dead) + fs::metadata(repo.image_path(&dropped)).unwrap().len();

    let dry = repo.gc(true).unwrap();
    assert_eq!(
        (dry.objects_removed, dry.images_removed, dry.bytes_freed),
        (21, 1, dead_bytes)
    );
    assert_eq!(object_files(repo.path()), before, "dry run removes nothing");

    let report = repo.gc(false).unwrap();
    assert_eq!(
        (
            report.objects_removed,
            report.images_removed,
            report.bytes_freed
        ),
        (21, 1, dead_bytes)
    );
    assert_eq!(object_files(repo.path()), live);
    assert!(repo.has_image(&kept) && !repo.has_image(&dropped) && !repo.has_object(&loose));
    assert!(repo.fsck(false).unwrap().is_ok());
    let again = repo.gc(false).unwrap();
    assert_eq!((again.objects_removed, again.images_removed), (0, 0));
}

#[test]
fn fsck_detects_flipped_byte_and_repair_quarantines_it() {
    let (_dir, repo) = new_repo();
    let image = store_files(&repo, &[1, 2, 3], Some("app"));
    assert!(repo.fsck(false).unwrap().is_ok());
    let victim = digest_bytes(&content(2));
    let path = repo.object_path(&victim);
    let mut data = fs::read(&path).unwrap();
    let middle = data.len() / 2;
    data[middle] ^= 0x01;
    fs::write(&path, &data).unwrap();

    let report = repo.fsck(false).unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.corrupt_objects.len(), 1);
    assert_eq!(report.corrupt_objects[0].digest, victim);
    assert!(report.corrupt_objects[0]
        .problem
        .contains(&digest_bytes(&data).to_hex()));
    assert_eq!(
        report.missing_objects.len(),
        1,
        "the image's object is not usable"
    );
    assert_eq!(
        (
            report.missing_objects[0].image,
            report.missing_objects[0].object
        ),
        (image, victim)
    );

    let repaired = repo.fsck(true).unwrap();
    assert_eq!(
        repaired.quarantined,
        vec![repo.path().join(format!("quarantine/object-{victim}"))]
    );
    assert!(!repo.has_object(&victim));
    let after = repo.fsck(false).unwrap();
    assert!(after.corrupt_objects.is_empty());
    assert_eq!(after.missing_objects.len(), 1);
    // Re-storing the object heals the repository.
    repo.write_object_from_reader(&content(2)[..]).unwrap();
    assert!(repo.fsck(false).unwrap().is_ok());
}

#[test]
fn fsck_detects_truncated_image_missing_object_and_dangling_ref() {
    let (_dir, repo) = new_repo();
    let a = store_files(&repo, &[1, 2, 3], Some("a"));
    let b = store_files(&repo, &[4, 5], Some("b"));
    store_files(&repo, &[6], Some("c"));

    let image_path = repo.image_path(&a);
    let len = fs::metadata(&image_path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&image_path)
        .unwrap()
        .set_len(len - 4096)
        .unwrap();
    let missing = digest_bytes(&content(5));
    fs::remove_file(repo.object_path(&missing)).unwrap();
    fs::write(
        repo.path().join("refs/gone"),
        format!("{}\n", digest_bytes(b"never stored").to_hex()),
    )
    .unwrap();
    fs::write(repo.path().join("refs/garbage"), b"not a digest\n").unwrap();

    let report = repo.fsck(false).unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.corrupt_objects, vec![]);
    assert_eq!(report.corrupt_images.len(), 1);
    assert_eq!(report.corrupt_images[0].digest, a);
    assert_eq!(report.missing_objects.len(), 1);
    assert_eq!(
        (
            report.missing_objects[0].image,
            report.missing_objects[0].object
        ),
        (b, missing)
    );
    let dangling: Vec<&str> = report
        .dangling_refs
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(dangling, vec!["garbage", "gone"]);
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["missing_objects"][0]["object"], missing.to_hex());
    // gc refuses to guess while a ref is unreadable.
    assert!(repo.gc(false).is_err());
}

#[test]
fn concurrent_threads_with_gc_lose_nothing() {
    let (_dir, repo) = new_repo();
    let rounds = 12;
    std::thread::scope(|s| {
        for worker in 0..4u64 {
            let repo = &repo;
            s.spawn(move || {
                for round in 0..rounds {
                    // Overlapping trees: workers share most ids, each round shifts a little.
                    let start = round * 3 + worker * 5;
                    let ids: Vec<u64> = (start..start + 40).collect();
                    let name = format!("t{worker}/{round}");
                    let image = store_files(repo, &ids, Some(&name));
                    assert_eq!(repo.resolve(&name).unwrap(), image);
                    if round > 0 {
                        repo.remove_ref(&format!("t{worker}/{}", round - 1))
                            .unwrap();
                    }
                }
            });
        }
        let repo = &repo;
        s.spawn(move || {
            for _ in 0..30 {
                repo.gc(false).unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        });
    });
    check_survivors(
        &repo,
        &(0..4)
            .map(|w| format!("t{w}/{}", rounds - 1))
            .collect::<Vec<_>>(),
    );
}

/// Every named ref resolves to a stored image whose objects are all present and correct.
fn check_survivors(repo: &Repository, names: &[String]) {
    let report = repo.fsck(false).unwrap();
    assert!(report.is_ok(), "{report:#?}");
    for name in names {
        let image = repo.resolve(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let bytes = repo.read_image(&image).unwrap();
        assert_eq!(digest_bytes(&bytes), image);
        for object in repo.image_objects(&bytes).unwrap() {
            let file = fs::File::open(repo.object_path(&object)).unwrap();
            assert_eq!(digest_reader::<Sha256>(file).unwrap(), object);
        }
    }
}

fn spawn_child(mode: &str, repo: &Path, worker: u64, rounds: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, mode)
        .env("CFSGATE_STORE_REPO", repo)
        .env("CFSGATE_STORE_WORKER", worker.to_string())
        .env("CFSGATE_STORE_ROUNDS", rounds.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Not a test: the body of child processes spawned by the tests above.
#[test]
#[ignore = "run only as a child process of the store tests"]
fn child_process() {
    let mode = std::env::var(CHILD_ENV).expect("spawned by a store test");
    let var = |name: &str| std::env::var(name).unwrap();
    let repo = Repository::open(var("CFSGATE_STORE_REPO")).unwrap();
    let worker: u64 = var("CFSGATE_STORE_WORKER").parse().unwrap();
    let rounds: u64 = var("CFSGATE_STORE_ROUNDS").parse().unwrap();
    match mode.as_str() {
        "import" => {
            for round in 0..rounds {
                let start = round * 7 + worker * 11;
                let ids: Vec<u64> = (start..start + 60).collect();
                let name = format!("p{worker}/{round}");
                let image = store_files(&repo, &ids, Some(&name));
                assert_eq!(repo.resolve(&name).unwrap(), image);
                if round > 0 {
                    repo.remove_ref(&format!("p{worker}/{}", round - 1))
                        .unwrap();
                }
            }
        }
        "gc" => {
            for _ in 0..rounds {
                repo.gc(false).unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        "big-import" => {
            let ids: Vec<u64> = (1000..1000 + BIG_IMPORT_FILES).collect();
            store_files(&repo, &ids, Some("big"));
        }
        other => panic!("unknown child mode {other}"),
    }
}

#[test]
fn concurrent_processes_with_gc_lose_nothing() {
    let (_dir, repo) = new_repo();
    let rounds = 10;
    let mut children: Vec<Child> = (0..4)
        .map(|w| spawn_child("import", repo.path(), w, rounds))
        .collect();
    children.push(spawn_child("gc", repo.path(), 0, 40));
    // This process imports overlapping trees too, and collects garbage, at the same time.
    for round in 0..rounds {
        let ids: Vec<u64> = (round * 5..round * 5 + 50).collect();
        store_files(&repo, &ids, Some("parent"));
        repo.gc(false).unwrap();
    }
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let mut names: Vec<String> = (0..4).map(|w| format!("p{w}/{}", rounds - 1)).collect();
    names.push("parent".into());
    check_survivors(&repo, &names);
    let refs: Vec<String> = repo
        .list_refs()
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        refs.len(),
        names.len(),
        "older refs removed, newest kept: {refs:?}"
    );
    // After a final gc exactly the objects of the surviving images remain.
    repo.gc(false).unwrap();
    let mut live = BTreeSet::new();
    for name in &names {
        let bytes = repo.read_image(&repo.resolve(name).unwrap()).unwrap();
        live.extend(
            repo.image_objects(&bytes)
                .unwrap()
                .into_iter()
                .map(|d| repo.object_path(&d)),
        );
    }
    assert_eq!(object_files(repo.path()), live);
}

/// Kills the SIGKILL test may make to interrupt the import 8 times (at least 4 must).
const MAX_KILL_ATTEMPTS: u32 = 32;

/// Files in the import that the SIGKILL test interrupts (about 8 MiB of content).
const BIG_IMPORT_FILES: u64 = 400;

#[test]
fn sigkill_during_import_leaves_a_consistent_repository() {
    let (_dir, repo) = new_repo();
    store_files(&repo, &[1, 2, 3], Some("before"));
    // How long an uninterrupted import takes, to spread the kills over its whole duration.
    let (_dir2, scratch) = new_repo();
    let started = Instant::now();
    let mut probe = spawn_child("big-import", scratch.path(), 0, 0);
    assert!(probe.wait().unwrap().success());
    let full = started.elapsed();
    let mut rng = Rng::new(time_seed());
    let mut killed_mid_import = 0;
    // The kills are spread over a window that starts as the probe's duration and halves each
    // time an import finished first (the probe ran with cold caches; on a loaded machine the
    // runs after it can be much faster), so most kills land mid-import however the load moves.
    let mut window = full;
    let mut attempts = 0;
    while killed_mid_import < 8 && attempts < MAX_KILL_ATTEMPTS {
        attempts += 1;
        let mut child = spawn_child("big-import", repo.path(), 0, 0);
        let delay = Duration::from_micros(rng.below(window.as_micros().max(1) as u64));
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        if status.success() {
            window /= 2;
        } else {
            killed_mid_import += 1;
        }
        let report = repo.fsck(false).unwrap();
        assert!(report.is_ok(), "after a kill at {delay:?}: {report:#?}");
        if repo.read_ref("big").unwrap().is_some() {
            // The import finished before the kill: start over so the next kill interrupts it.
            repo.remove_ref("big").unwrap();
            repo.gc(false).unwrap();
        }
    }
    assert!(
        killed_mid_import >= 4,
        "only {killed_mid_import} of {attempts} kills interrupted the import"
    );
    // A re-import completes and yields the same image as an uninterrupted one.
    let mut child = spawn_child("big-import", repo.path(), 0, 0);
    assert!(child.wait().unwrap().success());
    assert_eq!(
        repo.read_ref("big").unwrap(),
        scratch.read_ref("big").unwrap()
    );
    check_survivors(&repo, &["big".to_string(), "before".to_string()]);
    // Killed writers' temporary files are gc's to remove.
    repo.gc(false).unwrap();
    assert_eq!(fs::read_dir(repo.path().join("tmp")).unwrap().count(), 0);
}

/// `fsverity digest` (the independent tool) of a file.
fn fsverity_tool_digest(path: &Path) -> FsVeritySha256 {
    let out = Command::new("fsverity")
        .arg("digest")
        .arg("--compact")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Every external file in a stored image is backed by an object whose bytes equal `source/path`.
fn assert_image_matches_dir(repo: &Repository, image: &FsVeritySha256, source: &Path) -> usize {
    use std::os::unix::ffi::OsStrExt;
    let bytes = repo.read_image(image).unwrap();
    let tree = cfsgate_image::erofs::reader::read_image(&bytes)
        .unwrap()
        .tree;
    let mut externals = 0;
    for (id, path) in tree.bfs() {
        if let Content::Regular(FileData::External {
            digest,
            backing,
            size,
        }) = &tree.inode(id).content
        {
            let digest = digest.unwrap();
            assert_eq!(backing.as_deref(), Some(digest.object_path().as_bytes()));
            let original = fs::read(source.join(std::ffi::OsStr::from_bytes(&path[1..]))).unwrap();
            assert_eq!(original.len() as u64, *size);
            assert_eq!(
                fs::read(repo.object_path(&digest)).unwrap(),
                original,
                "{}",
                String::from_utf8_lossy(&path)
            );
            externals += 1;
        }
    }
    externals
}

#[test]
fn import_directory_stores_each_content_once_and_reimport_writes_nothing() {
    use std::os::unix::ffi::OsStrExt;
    let (dir, repo) = new_repo();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("sub/deeper")).unwrap();
    fs::write(src.join("a"), content(1)).unwrap();
    fs::write(src.join("sub/a-copy"), content(1)).unwrap();
    fs::write(src.join("sub/deeper/b"), content(2)).unwrap();
    fs::write(
        src.join(std::ffi::OsStr::from_bytes(b"non-utf8-\xff")),
        content(3),
    )
    .unwrap();
    fs::write(src.join("small"), b"inline, under 64 bytes").unwrap();
    // Larger than SINGLE_READ_MAX: hashed, then copied (twice in the tree, once in the store).
    let mut rng = Rng::new(99);
    let large: Vec<u8> = (0..3 << 20).map(|_| rng.next() as u8).collect();
    fs::write(src.join("large"), &large).unwrap();
    fs::write(src.join("sub/large-copy"), &large).unwrap();
    fs::write(src.join("empty"), b"").unwrap();
    std::os::unix::fs::symlink("a", src.join("link")).unwrap();

    let first = repo.import_tree_from_dir(&src, Some("dir/v1")).unwrap();
    assert_eq!(first.objects.objects_written, 4, "{:?}", first.objects);
    let small_bytes: u64 = [1u64, 2, 3].iter().map(|i| content(*i).len() as u64).sum();
    assert_eq!(
        first.objects.bytes_written,
        small_bytes + large.len() as u64
    );
    assert_eq!(object_files(repo.path()).len(), 4);
    assert_eq!(assert_image_matches_dir(&repo, &first.image, &src), 6);
    for path in [src.join("a"), src.join("sub/deeper/b"), src.join("large")] {
        let digest = fsverity_tool_digest(&path);
        assert_eq!(fsverity_tool_digest(&repo.object_path(&digest)), digest);
    }
    assert_eq!(repo.resolve("dir/v1").unwrap(), first.image);

    let again = repo.import_tree_from_dir(&src, None).unwrap();
    assert_eq!(again.image, first.image, "same tree, same image");
    assert_eq!(
        (again.objects.objects_written, again.objects.objects_present),
        (0, 6)
    );
    assert!(repo.fsck(false).unwrap().is_ok());
}

#[test]
fn import_dump_copies_and_verifies_backing_files() {
    let (dir, repo) = new_repo();
    let base = dir.path().join("base");
    fs::create_dir_all(base.join("blobs")).unwrap();
    let mut dump = String::from("/ 0 40755 2 0 0 0 0.0 - - -\n");
    for id in [1u64, 2] {
        let path = base.join(format!("blobs/{id}"));
        fs::write(&path, content(id)).unwrap();
        let digest = fsverity_tool_digest(&path);
        dump += &format!(
            "/f{id} {} 100644 1 0 0 0 0.0 blobs/{id} - {digest}\n",
            content(id).len()
        );
    }
    let dump_path = dir.path().join("image.dump");
    fs::write(&dump_path, &dump).unwrap();
    let report = repo.import_dump(&dump_path, &base, Some("dumped")).unwrap();
    assert_eq!(report.objects.objects_written, 2);
    let bytes = repo.read_image(&report.image).unwrap();
    let objects: Vec<_> = repo.image_objects(&bytes).unwrap().into_iter().collect();
    let mut want = vec![digest_bytes(&content(1)), digest_bytes(&content(2))];
    want.sort();
    assert_eq!(objects, want);

    // A backing file whose content does not match the dump's DIGEST is refused.
    fs::write(base.join("blobs/2"), content(9)).unwrap();
    let dump_path2 = dir.path().join("tampered.dump");
    fs::write(&dump_path2, dump.replace("/f1 ", "/g1 ")).unwrap();
    let (_dir2, fresh) = new_repo();
    let err = fresh
        .import_dump(&dump_path2, &base, Some("x"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("blobs/2") && err.contains(&digest_bytes(&content(2)).to_hex()),
        "{err}"
    );
    assert!(fresh.list_refs().unwrap().is_empty() && fresh.list_images().unwrap().is_empty());

    // A backing path leaving the base directory is refused.
    let escape = "/ 0 40755 2 0 0 0 0.0 - - -\n/f 5 100644 1 0 0 0 0.0 ../outside - -\n";
    fs::write(&dump_path2, escape).unwrap();
    let err = fresh
        .import_dump(&dump_path2, &base, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains(".."), "{err}");
}

#[test]
fn import_source_takes_a_directory_or_a_dump_and_refuses_a_fifo_without_blocking() {
    let (dir, repo) = new_repo();
    let tree = dir.path().join("tree");
    fs::create_dir_all(&tree).unwrap();
    fs::write(tree.join("a"), content(1)).unwrap();
    let from_dir = repo.import_source(&tree, None, None).unwrap();
    assert_eq!(from_dir.objects.objects_written, 1);
    let err = repo
        .import_source(&tree, Some(dir.path()), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--basedir is for dump files"), "{err}");

    // A FIFO named as the dump: refused by its type (opening it would wait for a writer).
    let fifo = dir.path().join("dump.fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let err = repo
        .import_source(&fifo, None, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs --basedir"), "{err}");
    let err = repo
        .import_source(&fifo, Some(dir.path()), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dump.fifo") && err.contains("FIFO"), "{err}");
}
