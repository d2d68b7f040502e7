//! `image::fsverity` against the reference implementation: the `fsverity digest` command of
//! fsverity-utils (Debian package `fsverity`), which computes the same digest the kernel enforces.
//!
//! Sizes cover every Merkle-tree edge: empty, one byte, one block ±1, exactly one full level-1
//! block of digests (128 × 4096), one more, and a three-level tree plus a tail; a ~300 MB random
//! file checks streaming in bounded memory and prints the throughput.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use cfsgate_image::fsverity::{digest_reader, FsVerityHasher, Sha256, Sha512};

/// What `fsverity digest --hash-alg=ALG FILE` prints for `path`: `ALG:HEX FILE`, as lowercase hex.
fn reference_digest(path: &Path, alg: &str) -> String {
    let out = Command::new("fsverity")
        .arg("digest")
        .arg(format!("--hash-alg={alg}"))
        .arg(path)
        .output()
        .expect("the fsverity tool (Debian package `fsverity`) must be installed");
    assert!(
        out.status.success(),
        "fsverity digest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("fsverity prints text");
    let first = text
        .split_whitespace()
        .next()
        .expect("fsverity printed nothing");
    let (prefix, hex) = first.split_once(':').expect("fsverity prints ALG:HEX");
    assert_eq!(prefix, alg);
    hex.to_owned()
}

/// Write `size` random bytes (from /dev/urandom, streamed) to `path`.
fn write_random_file(path: &Path, size: u64) {
    let mut src = File::open("/dev/urandom")
        .expect("open /dev/urandom")
        .take(size);
    let mut dst = File::create(path).expect("create test file");
    let copied = std::io::copy(&mut src, &mut dst).expect("fill test file");
    assert_eq!(copied, size);
    dst.flush().expect("flush");
}

fn ours(path: &Path) -> (String, String) {
    let sha256 = digest_reader::<Sha256>(File::open(path).expect("open")).expect("read");
    let sha512 = digest_reader::<Sha512>(File::open(path).expect("open")).expect("read");
    (hex::encode(sha256), hex::encode(sha512))
}

const EDGE_SIZES: &[u64] = &[
    0,
    1,
    4095,
    4096,
    4097,
    128 * 4096,
    128 * 4096 + 1,
    // Three levels of SHA-256 tree (129 level-1 blocks), plus a partial last data block.
    129 * 4096 * 128 + 5,
];

#[test]
fn edge_sizes_match_fsverity_tool_sha256_and_sha512() {
    let dir = tempfile::tempdir().expect("tempdir");
    for &size in EDGE_SIZES {
        let path = dir.path().join(format!("f{size}"));
        write_random_file(&path, size);
        let (sha256, sha512) = ours(&path);
        assert_eq!(
            sha256,
            reference_digest(&path, "sha256"),
            "sha256, size {size}"
        );
        assert_eq!(
            sha512,
            reference_digest(&path, "sha512"),
            "sha512, size {size}"
        );
    }
}

#[test]
fn chunking_of_input_does_not_change_the_digest() {
    // Odd chunk sizes that straddle block boundaries in every way.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f");
    let size = 130 * 4096 + 123;
    write_random_file(&path, size);
    let data = std::fs::read(&path).expect("read");
    for chunk in [1usize, 7, 4095, 4096, 4097, 65537] {
        let mut h = FsVerityHasher::<Sha256>::new();
        for part in data.chunks(chunk) {
            h.update(part);
        }
        assert_eq!(
            h.finish().to_hex(),
            reference_digest(&path, "sha256"),
            "chunk {chunk}"
        );
    }
}

#[test]
fn large_random_file_streams_and_matches() {
    const SIZE: u64 = 300 * 1024 * 1024 + 4097;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big");
    write_random_file(&path, SIZE);

    let start = Instant::now();
    let sha256 = digest_reader::<Sha256>(File::open(&path).expect("open")).expect("read");
    let ours_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let reference = reference_digest(&path, "sha256");
    let tool_secs = start.elapsed().as_secs_f64();
    assert_eq!(sha256.to_hex(), reference);
    eprintln!(
        "fs-verity sha256 of {} MiB: cfsgate {:.0} MiB/s, fsverity tool {:.0} MiB/s (one core; \
         debug builds are much slower than release)",
        SIZE >> 20,
        (SIZE >> 20) as f64 / ours_secs,
        (SIZE >> 20) as f64 / tool_secs
    );

    let sha512 = digest_reader::<Sha512>(File::open(&path).expect("open")).expect("read");
    assert_eq!(hex::encode(sha512), reference_digest(&path, "sha512"));
}
