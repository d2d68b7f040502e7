//! Resource exhaustion: inputs built to take unbounded time or memory — a huge manifest, a
//! million tiny files, a 10,000-deep directory chain, giant and numerous xattrs, tar layers
//! that decompress to gigabytes or millions of headers, symlink loops and paths through
//! symlinks. Each runs under `timeout` and must finish in bounded time, then either work or be
//! refused with a clear reason; time and peak RSS are printed (`MEASURED [...]`). Files that
//! never end or never answer (FIFOs, `/dev/zero`) are in `special_files`.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::common::*;
use crate::fixture::*;
use crate::ocibuild::{marker_layer, tar, tar_header, LayerBlob, Layout, BLOCK, TAR_GZIP_TYPE};

/// How long one case may run. The limits are for a release build on 2 cores; a debug build
/// hashes several times slower.
fn limit() -> Duration {
    Duration::from_secs(if cfg!(debug_assertions) { 240 } else { 60 })
}

/// Largest manifest cfsgate reads (oci/src/layout.rs MAX_MANIFEST_SIZE, verifier/src/dir.rs
/// MAX_MANIFEST_BYTES: containers/image's 4 MiB).
const MAX_MANIFEST: usize = 4 << 20;
/// Most tar headers in one layer (oci/src/apply.rs DEFAULT_MAX_LAYER_ENTRIES).
const MAX_LAYER_ENTRIES: u64 = 4_000_000;

#[test]
fn a_manifest_over_4_mib() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    // dir: — the signed manifest padded past the limit (trailing whitespace keeps it JSON).
    let image = fx.image("huge", &fx.rootfs("huge", "h"), Variant::Good);
    let path = dir_of(&image).join("manifest.json");
    let mut manifest = std::fs::read(&path).unwrap();
    manifest.resize(MAX_MANIFEST + 1, b' ');
    std::fs::write(&path, manifest).unwrap();
    let out = verify_in(&fx, APP, &image);
    assert_refused(
        "dir: manifest over 4 MiB",
        &out,
        UNEVALUABLE,
        "is larger than 4194304 bytes",
    );

    // oci: — a manifest blob with a 4 MiB annotation, named correctly by its descriptor.
    let layout = Layout::new(&fx.path().join("oci-huge"));
    let normal = layout.image("amd64", &[marker_layer("x")], json!({}));
    let mut body: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            layout
                .path
                .join("blobs/sha256")
                .join(&normal["digest"].as_str().unwrap()[7..]),
        )
        .unwrap(),
    )
    .unwrap();
    body["annotations"] = json!({"padding": "x".repeat(MAX_MANIFEST)});
    let huge = layout.blob(
        crate::ocibuild::MANIFEST_TYPE,
        &serde_json::to_vec(&body).unwrap(),
    );
    layout.set_index(&[("huge", &huge)]);
    let repo = fx.repo.display().to_string();
    for args in [
        vec!["compute-id".to_string(), layout.reference("huge")],
        vec![
            "--repo".into(),
            repo,
            "import".into(),
            layout.reference("huge"),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let m = measured("oci manifest over 4 MiB", limit(), &args);
        assert_refused(
            &format!("oci manifest over 4 MiB ({})", args[args.len() - 2]),
            &m.output,
            UNEVALUABLE,
            "more than the limit of 4194304",
        );
    }
    assert_clean("huge manifest", &fx);
}

/// Runs `cfsgate mkcomposefs --from-file DUMP IMAGE` under the time limit.
fn mkcomposefs_dump(case: &str, fx: &Fixture, dump: &[u8]) -> Measured {
    let file = fx.path().join(format!("{}.dump", case.replace(' ', "-")));
    std::fs::write(&file, dump).unwrap();
    let image = fx.path().join(format!("{}.img", case.replace(' ', "-")));
    let m = measured(
        case,
        limit(),
        &[
            "mkcomposefs",
            "--from-file",
            file.to_str().unwrap(),
            image.to_str().unwrap(),
        ],
    );
    if !m.output.status.success() {
        assert!(!image.exists(), "{case}: a refused build left {image:?}");
    }
    m
}

#[test]
fn a_dump_of_a_million_tiny_files() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let mut dump = String::from("/ 4096 40755 2 0 0 0 0.0 - - -\n");
    for i in 0..1_000_000 {
        dump.push_str(&format!("/f{i:07} 0 100644 1 0 0 0 0.0 - - -\n"));
    }
    let m = mkcomposefs_dump("million tiny files", &fx, dump.as_bytes());
    // Must work: a million empty files is a legitimate (if large) tree.
    assert_accepted("million tiny files", &m.output);
    let image = fx.path().join("million-tiny-files.img");
    let size = std::fs::metadata(&image).unwrap().len();
    eprintln!(
        "MEASURED [million tiny files] image {} MiB, {:.1} s, peak RSS {} MiB",
        size >> 20,
        m.elapsed.as_secs_f64(),
        m.peak_rss_kib >> 10
    );
    // Read back: the reader walks it and finds the last file.
    let out = cfsgate(&["info", "ls", image.to_str().unwrap()], None);
    assert_accepted("million tiny files (info ls)", &out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("/f0999999"));
    assert_clean("million tiny files", &fx);
}

#[test]
fn a_dump_with_a_10000_deep_directory_chain() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let dump = deep_dump();
    // Deep but legal: it must build, and every reader of the image (which walks the tree,
    // recursion being the classic way to crash on this) must finish without overflowing its
    // stack — a crash would be exit 134/139, not a clean 0 or 2.
    let m = mkcomposefs_dump("10000 deep", &fx, dump.as_bytes());
    assert_accepted("10000-deep chain (mkcomposefs)", &m.output);
    let image = fx.path().join("10000-deep.img");
    let m = measured(
        "10000 deep (info dump)",
        limit(),
        &["info", "dump", image.to_str().unwrap()],
    );
    assert_accepted("10000-deep chain (info dump)", &m.output);
    let lines = String::from_utf8_lossy(&m.output.stdout).lines().count();
    assert_eq!(lines, 10_001, "the dump read back has {lines} lines");
    // Stored and mounted with userspace verification, which walks the whole tree (paths far
    // past PATH_MAX: see deep_chain_mounts_with_userspace_verity).
    let out = store_and_mount_deep(&fx, &fx.path().join("10000-deep.dump"));
    assert_accepted("10000-deep chain (mount --verity userspace)", &out);
    assert_clean("deep chain", &fx);
}

/// The dump of a 10,000-deep chain of directories `/d/d/…`.
fn deep_dump() -> String {
    let mut dump = String::from("/ 4096 40755 2 0 0 0 0.0 - - -\n");
    let mut path = String::new();
    for _ in 0..10_000 {
        path.push_str("/d");
        dump.push_str(&format!("{path} 4096 40755 2 0 0 0 0.0 - - -\n"));
    }
    dump
}

/// `cfsgate create` of the deep dump, then `cfsgate mount --verity userspace` of it (unmounted
/// again when it worked); the mount's output.
fn store_and_mount_deep(fx: &Fixture, dump_file: &Path) -> std::process::Output {
    let repo = fx.repo.display().to_string();
    let base = fx.path().display().to_string();
    let m = measured(
        "10000 deep (create)",
        limit(),
        &[
            "--repo",
            &repo,
            "create",
            dump_file.to_str().unwrap(),
            "--basedir",
            &base,
        ],
    );
    assert_accepted("10000-deep chain (create)", &m.output);
    let digest = String::from_utf8_lossy(&m.output.stdout).trim().to_string();
    let at = fx.path().join("mnt-deep");
    let out = crate::substitution::mount(fx, "userspace", &digest, &at);
    if out.status.success() {
        assert!(at.join("d/d/d/d/d/d/d/d").is_dir());
        crate::substitution::umount(&at);
    }
    out
}

#[test]
fn deep_chain_mounts_with_userspace_verity() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let dump_file = fx.path().join("deep.dump");
    std::fs::write(&dump_file, deep_dump()).unwrap();
    let out = store_and_mount_deep(&fx, &dump_file);
    assert_accepted("10000-deep chain (mount --verity userspace)", &out);
    assert_clean("deep chain mount", &fx);
}

#[test]
fn giant_and_numerous_xattrs() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let giant = format!(
        "/ 4096 40755 2 0 0 0 0.0 - - -\n/f 0 100644 1 0 0 0 0.0 - - - user.big={}\n",
        "a".repeat(65_536)
    );
    let m = mkcomposefs_dump("xattr value over 65535", &fx, giant.as_bytes());
    assert_refused(
        "xattr value over 65535 bytes",
        &m.output,
        UNEVALUABLE,
        "65535",
    );

    let mut many = String::from("/ 4096 40755 2 0 0 0 0.0 - - -\n/f 0 100644 1 0 0 0 0.0 - - -");
    for i in 0..5000 {
        many.push_str(&format!(" user.k{i:05}={}", "v".repeat(100)));
    }
    many.push('\n');
    let m = mkcomposefs_dump("many xattrs", &fx, many.as_bytes());
    assert_refused("5000 xattrs on one inode", &m.output, UNEVALUABLE, "xattr");
    assert_clean("xattrs", &fx);
}

/// gzip of `bytes` as one member (`gzip -1`).
fn gzip_member(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .args(["-1", "-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// A gzip layer made of members (flate2's MultiGzDecoder, which cfsgate uses, reads them all
/// as one stream): `repeat` copies of `chunk`, framed by `head` and `tail`.
fn gzip_bomb(head: &[u8], chunk: &[u8], repeat: usize, tail: &[u8]) -> Vec<u8> {
    let (head, chunk, tail) = (gzip_member(head), gzip_member(chunk), gzip_member(tail));
    let mut out = head;
    for _ in 0..repeat {
        out.extend_from_slice(&chunk);
    }
    out.extend_from_slice(&tail);
    out
}

fn sha256_of_stream(parts: &[(&Path, usize)]) -> String {
    // `sha256sum` over the parts, each file repeated; sha2 in a debug test build is too slow
    // for gigabytes.
    let mut script = String::from("{ ");
    for (file, repeat) in parts {
        script.push_str(&format!(
            "for i in $(seq {repeat}); do cat '{}'; done; ",
            file.display()
        ));
    }
    script.push_str("} | sha256sum");
    let out = run(Command::new("sh").arg("-c").arg(&script));
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

#[test]
fn tar_layer_decompression_bombs() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let layout = Layout::new(&fx.path().join("oci-bomb"));

    // 1. Headers: one more than the per-layer limit, all the same empty file (so the tree stays
    //    small and only the header count can stop it). The diff_id is never reached.
    let per_chunk = 10_000usize;
    let header = tar_header("f", b'0', 0, "");
    let chunk: Vec<u8> = header
        .iter()
        .copied()
        .cycle()
        .take(BLOCK * per_chunk)
        .collect();
    let mut last = header.to_vec();
    last.resize(3 * BLOCK, 0);
    let repeat = (MAX_LAYER_ENTRIES as usize) / per_chunk;
    let blob = gzip_bomb(b"", &chunk, repeat, &last);
    eprintln!(
        "header bomb: {} KiB of gzip for {} tar headers ({} MiB)",
        blob.len() >> 10,
        MAX_LAYER_ENTRIES + 1,
        ((MAX_LAYER_ENTRIES + 1) as usize * BLOCK) >> 20
    );
    let headers = layout.image(
        "amd64",
        &[LayerBlob {
            bytes: blob,
            media_type: TAR_GZIP_TYPE,
            diff_id: "0".repeat(64),
        }],
        json!({}),
    );

    // 2. Bytes: 2 GiB of zeros in one file, streamed (2 MiB of gzip).
    let size: u64 = 2 << 30;
    let zeros = vec![0u8; 64 << 20];
    let head = tar_header("zeros", b'0', size, "");
    let end = vec![0u8; 2 * BLOCK];
    let blob = gzip_bomb(&head, &zeros, (size as usize) / zeros.len(), &end);
    let (head_file, zeros_file, end_file) = (
        fx.path().join("bomb-head"),
        fx.path().join("bomb-zeros"),
        fx.path().join("bomb-end"),
    );
    std::fs::write(&head_file, head).unwrap();
    std::fs::write(&zeros_file, &zeros).unwrap();
    std::fs::write(&end_file, &end).unwrap();
    let diff_id = sha256_of_stream(&[
        (&head_file, 1),
        (&zeros_file, (size as usize) / zeros.len()),
        (&end_file, 1),
    ]);
    let bytes = layout.image(
        "amd64",
        &[LayerBlob {
            bytes: blob,
            media_type: TAR_GZIP_TYPE,
            diff_id,
        }],
        json!({}),
    );
    layout.set_index(&[("headers", &headers), ("bytes", &bytes)]);

    let m = measured(
        "tar header bomb",
        limit(),
        &["compute-id", &layout.reference("headers")],
    );
    assert_refused(
        "4,000,001 tar headers in one layer",
        &m.output,
        UNEVALUABLE,
        "more than 4000000 tar headers in one layer",
    );
    assert!(
        m.peak_rss_kib < 1 << 20,
        "header bomb used {} KiB",
        m.peak_rss_kib
    );
    let repo = fx.repo.display().to_string();
    let m = measured(
        "tar header bomb (import)",
        limit(),
        &["--repo", &repo, "import", &layout.reference("headers")],
    );
    assert_refused(
        "4,000,001 tar headers (import)",
        &m.output,
        UNEVALUABLE,
        "more than 4000000 tar headers in one layer",
    );

    // 2 GiB is under the 1 TiB uncompressed cap: it must work, in bounded time and memory.
    let m = measured(
        "2 GiB of zeros",
        limit(),
        &["compute-id", &layout.reference("bytes")],
    );
    assert_accepted("2 GiB of zeros (compute-id)", &m.output);
    assert!(
        m.peak_rss_kib < 1 << 20,
        "2 GiB layer used {} KiB",
        m.peak_rss_kib
    );
    assert_clean("decompression bombs", &fx);
}

#[test]
fn symlink_loops_and_paths_through_symlinks_in_a_layer() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let layout = Layout::new(&fx.path().join("oci-links"));
    // A loop is only data (two symlinks): it builds; following it is the kernel's ELOOP.
    let looped = layout.image(
        "amd64",
        &[LayerBlob::tar(tar(&[
            ("a", b'2', b"", "b"),
            ("b", b'2', b"", "a"),
        ]))],
        json!({}),
    );
    // A file written through a symlink to /etc, in the same layer and across layers.
    let through = layout.image(
        "amd64",
        &[LayerBlob::tar(tar(&[
            ("link", b'2', b"", "/etc"),
            ("link/passwd", b'0', b"root::0:0::/:/bin/sh\n", ""),
        ]))],
        json!({}),
    );
    let across = layout.image(
        "amd64",
        &[
            LayerBlob::tar(tar(&[("link", b'2', b"", "../../etc")])),
            LayerBlob::tar(tar(&[("link/shadow", b'0', b"x\n", "")])),
        ],
        json!({}),
    );
    let dotdot = layout.image(
        "amd64",
        &[LayerBlob::tar(tar(&[("../escape", b'0', b"x\n", "")]))],
        json!({}),
    );
    layout.set_index(&[
        ("loop", &looped),
        ("through", &through),
        ("across", &across),
        ("dotdot", &dotdot),
    ]);
    let repo = fx.repo.display().to_string();
    let m = measured(
        "symlink loop",
        limit(),
        &["--repo", &repo, "import", &layout.reference("loop")],
    );
    assert_accepted("symlink loop (plain data)", &m.output);
    for (tag, reason) in [
        ("through", "symlink"),
        ("across", "symlink"),
        ("dotdot", ".."),
    ] {
        let m = measured(
            &format!("path {tag} symlink"),
            limit(),
            &["--repo", &repo, "import", &layout.reference(tag)],
        );
        assert_refused(&format!("layer path {tag}"), &m.output, UNEVALUABLE, reason);
    }
    assert_clean("symlinks", &fx);
}
