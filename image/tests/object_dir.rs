//! The one object-store API, `store::ObjectDir`, on a real directory: concurrent writers of one
//! object, something other than a regular file where an object should be, a crash before the
//! commit, lookups that must not leave the directory.

// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use cfsgate_image::fsverity::digest_bytes;
use cfsgate_image::store::{ObjectDir, Offered, PendingObjects, StoreError};

/// Names in `dir` (top level) that are staged files.
fn staged_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(cfsgate_image::store::object_dir::TEMP_PREFIX))
        .collect()
}

fn content(seed: u32, len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed) as u8)
        .collect()
}

#[test]
fn concurrent_writers_of_one_object_leave_one_object_and_no_staged_files() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("store");
    let data = content(7, 300_000);
    let digest = digest_bytes(&data);
    const WRITERS: usize = 8;
    let barrier = Barrier::new(WRITERS);
    // Each writer its own ObjectDir (as separate processes would have), all staging the same
    // content and committing at the same moment.
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|_| {
                scope.spawn(|| {
                    let dir = ObjectDir::create(&path).unwrap();
                    let staged = dir.stage(&data[..], Path::new("<test>")).unwrap();
                    assert_eq!(staged.digest, digest);
                    assert_eq!(staged.size, data.len() as u64);
                    barrier.wait();
                    dir.commit(vec![staged]).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let added: u64 = results.iter().map(|c| c.added).sum();
    let raced: usize = results.iter().map(|c| c.raced.len()).sum();
    assert_eq!(added, 1, "exactly one rename wins: {results:?}");
    assert_eq!(raced, WRITERS - 1, "{results:?}");
    assert!(results.iter().all(|c| c.raced.iter().all(|d| *d == digest)));
    let object = path.join(digest.object_path());
    assert_eq!(fs::read(&object).unwrap(), data);
    assert_eq!(
        fs::metadata(&object).unwrap().permissions().mode() & 0o777,
        0o644
    );
    assert!(staged_files(&path).is_empty(), "{:?}", staged_files(&path));
    let (objects, strays) = ObjectDir::open(&path).unwrap().scan().unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].0, digest);
    assert!(strays.is_empty(), "{strays:?}");
}

#[test]
fn pending_set_keeps_one_staged_file_per_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ObjectDir::create(tmp.path()).unwrap();
    let pending: PendingObjects<'_, u32> = PendingObjects::new(&dir);
    let (a, b) = (content(1, 10_000), content(2, 10_000));
    let first = dir.stage(&a[..], Path::new("a1")).unwrap();
    assert_eq!(
        pending.offer(first, 1),
        Offered::Kept {
            objects: 1,
            bytes: 10_000
        }
    );
    let again = dir.stage(&a[..], Path::new("a2")).unwrap();
    assert_eq!(pending.offer(again, 2), Offered::Pending(2));
    let other = dir.stage(&b[..], Path::new("b")).unwrap();
    assert!(matches!(
        pending.offer(other, 3),
        Offered::Kept { objects: 2, .. }
    ));
    // The duplicate's copy is gone already; the two kept ones wait for the commit.
    assert_eq!(staged_files(tmp.path()).len(), 2);
    let committed = pending.commit().unwrap();
    assert_eq!((committed.added, committed.bytes_added), (2, 20_000));
    assert!(staged_files(tmp.path()).is_empty());
    // Stored now: a new copy is dropped at once.
    let late = dir.stage(&b[..], Path::new("b again")).unwrap();
    assert_eq!(pending.offer(late, 4), Offered::Stored(4));
    assert!(staged_files(tmp.path()).is_empty());
    assert!(dir.contains(&digest_bytes(&a)) && dir.contains(&digest_bytes(&b)));
}

#[test]
fn crash_before_commit_leaves_only_staged_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ObjectDir::create(tmp.path()).unwrap();
    let data = content(3, 50_000);
    let digest = digest_bytes(&data);
    let staged = dir.stage(&data[..], Path::new("<test>")).unwrap();
    // A crash: the process dies with the file staged, nothing of the commit done (no destructor
    // runs, exactly as when the process is killed).
    std::mem::forget(staged);
    assert!(!dir.contains(&digest));
    assert!(!tmp.path().join(digest.object_path()).exists());
    let leftovers = staged_files(tmp.path());
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    // The staged file holds the whole content but is no object: the scan does not list it
    // (not even as a stray) and a lookup does not find it.
    assert_eq!(fs::read(tmp.path().join(&leftovers[0])).unwrap(), data);
    let (objects, strays) = dir.scan().unwrap();
    assert!(
        objects.is_empty() && strays.is_empty(),
        "{objects:?} {strays:?}"
    );
    assert!(dir.open_object(&digest).unwrap().is_none());

    // Dropping an uncommitted staged file (an error path) removes it.
    fs::remove_file(tmp.path().join(&leftovers[0])).unwrap();
    drop(dir.stage(&data[..], Path::new("<test>")).unwrap());
    assert!(staged_files(tmp.path()).is_empty());
}

#[test]
fn fifo_or_symlink_in_place_of_an_object_is_refused_then_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("objects");
    let dir = ObjectDir::create(&root).unwrap();
    let (fifo_data, link_data) = (content(4, 9_000), content(5, 9_000));
    let (fifo_digest, link_digest) = (digest_bytes(&fifo_data), digest_bytes(&link_data));
    let fifo_path = root.join(fifo_digest.object_path());
    let link_path = root.join(link_digest.object_path());
    for path in [&fifo_path, &link_path] {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
    }
    let made = Command::new("mkfifo").arg(&fifo_path).status().unwrap();
    assert!(made.success());
    // A symlink to a file with the right content, outside the store: still no object.
    let outside = tmp.path().join("outside");
    fs::write(&outside, &link_data).unwrap();
    std::os::unix::fs::symlink(&outside, &link_path).unwrap();

    for (digest, kind) in [(fifo_digest, "FIFO"), (link_digest, "symbolic link")] {
        assert!(!dir.contains(&digest), "{kind} counted as an object");
        let started = Instant::now();
        match dir.open_object(&digest) {
            Err(e @ StoreError::NotAnObject { .. }) => {
                assert!(e.to_string().contains(kind), "{e}")
            }
            other => panic!("{kind} in place of an object: {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the lookup blocked"
        );
    }

    // Writing the real objects replaces the impostors atomically.
    let staged = vec![
        dir.stage(&fifo_data[..], Path::new("f")).unwrap(),
        dir.stage(&link_data[..], Path::new("l")).unwrap(),
    ];
    let committed = dir.commit(staged).unwrap();
    assert_eq!(committed.added, 2, "{committed:?}");
    for (path, data) in [(&fifo_path, &fifo_data), (&link_path, &link_data)] {
        let meta = fs::symlink_metadata(path).unwrap();
        assert!(meta.file_type().is_file() && !meta.file_type().is_fifo());
        assert_eq!(&fs::read(path).unwrap(), data);
    }
    assert_eq!(
        fs::read(&outside).unwrap(),
        link_data,
        "the symlink target was written"
    );
    let mut read_back = Vec::new();
    std::io::Read::read_to_end(
        &mut dir.open_object(&fifo_digest).unwrap().unwrap(),
        &mut read_back,
    )
    .unwrap();
    assert_eq!(read_back, fifo_data);
}

#[test]
fn lookups_stay_beneath_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("objects");
    let dir = ObjectDir::create(&root).unwrap();
    fs::write(tmp.path().join("secret"), b"outside").unwrap();
    fs::create_dir_all(root.join("ab")).unwrap();
    std::os::unix::fs::symlink("..", root.join("ab/up")).unwrap();
    for escape in ["../secret", "/../secret", "ab/../../secret", "ab/up/secret"] {
        assert!(
            dir.open_beneath(escape).is_err(),
            "{escape} resolved outside the object directory"
        );
    }
    // The leading '/' of an overlay redirect is ignored; a directory is no object.
    assert!(dir.open_beneath("/ab/missing").unwrap().is_none());
    assert!(matches!(
        dir.open_beneath("/ab"),
        Err(StoreError::NotAnObject { .. })
    ));
}
