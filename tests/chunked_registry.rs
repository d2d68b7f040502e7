//! Partial pulls from a real registry (Debian's docker-registry 2.8.2, tests/fixtures/registry.rs)
//! through the `cfsgate` binary: images made by umoci (`repack`) and pushed by `skopeo copy
//! --dest-compress-format zstd:chunked` (tests/fixtures/oci/make-chunked-image.sh). The bytes
//! downloaded are counted by the registry itself, from its access log.

#[path = "fixtures/hooks.rs"]
mod hooks;
#[path = "fixtures/registry.rs"]
mod registry;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cfsgate_oci::chunked::{parse_toc, Toc, TocLocation};
use hooks::{cfsgate, require_root, run};
use registry::{line_value, ok, read_json, skopeo_push, Registry, RegistryConfig};

/// The umoci image of make-chunked-image.sh (gzip layers, tag `test`) in `work/src`.
fn umoci_image(work: &Path, seed: &str, files: u32, new_files: u32) -> PathBuf {
    fs::create_dir_all(work).unwrap();
    run(Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oci/make-chunked-image.sh"))
        .arg(work)
        .arg(seed)
        .arg(files.to_string())
        .arg(new_files.to_string()));
    work.join("src")
}

/// Push `layout:test` to `image`, its layers converted to zstd:chunked by skopeo.
fn push_chunked(layout: &Path, image: &str) {
    skopeo_push(
        &format!("oci:{}:test", layout.display()),
        image,
        &["--dest-compress-format", "zstd:chunked"],
    );
}

fn pull(repo: &Path, image: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "--repo",
        repo.to_str().unwrap(),
        "pull",
        "--tls-verify=false",
    ];
    args.extend_from_slice(extra);
    args.push(image);
    cfsgate(&args, None)
}

/// The manifest as the registry serves it.
fn manifest(image: &str) -> serde_json::Value {
    let out = run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", image]));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn layer_bytes(manifest: &serde_json::Value) -> u64 {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum()
}

/// Layer `index`'s table of contents: where it is (the manifest's annotations) and what it says
/// (read from the registry's own blob file).
fn toc_of(registry: &Registry, manifest: &serde_json::Value, index: usize) -> (TocLocation, Toc) {
    let layer = &manifest["layers"][index];
    let annotations: HashMap<String, String> =
        serde_json::from_value(layer["annotations"].clone()).unwrap();
    let location =
        TocLocation::from_annotations(Some(&annotations), layer["size"].as_u64().unwrap())
            .unwrap()
            .expect("a zstd:chunked layer");
    let blob = fs::read(registry.blob_file(layer["digest"].as_str().unwrap())).unwrap();
    let toc = parse_toc(
        &blob[location.offset as usize..(location.offset + location.length) as usize],
        &location,
    )
    .unwrap();
    (location, toc)
}

/// Flip one byte of a blob in the registry's storage directory.
fn flip_byte(registry: &Registry, digest: &str, offset: u64) {
    let path = registry.blob_file(digest);
    let mut bytes = fs::read(&path).unwrap();
    bytes[offset as usize] ^= 0x55;
    fs::write(&path, bytes).unwrap();
}

/// Objects, images and refs of a repository (file names): what it stores.
fn stored(repo: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["objects", "images", "refs"] {
        let mut stack = vec![repo.join(dir)];
        while let Some(d) = stack.pop() {
            let Ok(entries) = fs::read_dir(&d) else {
                continue;
            };
            for e in entries {
                let path = e.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push(path.strip_prefix(repo).unwrap().display().to_string());
                }
            }
        }
    }
    out.sort();
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_second_image_sharing_most_files_downloads_only_the_new_ones() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let registry = Registry::start(&base.join("registry"), RegistryConfig::default());
    let host = registry.host();
    // v1 and v2 share the 150 seeded files and the 3 MiB one; v2 adds 30 new ones (~10% of its
    // content) and its layers differ byte for byte (other mtimes, other random small files).
    let v1 = format!("docker://{host}/cfsgate/chunked:v1");
    let v2 = format!("docker://{host}/cfsgate/chunked:v2");
    push_chunked(&umoci_image(&base.join("v1"), "shared", 150, 0), &v1);
    let v2_layout = umoci_image(&base.join("v2"), "shared", 150, 30);
    push_chunked(&v2_layout, &v2);
    let v2_manifest = manifest(&v2);
    let total = layer_bytes(&v2_manifest);

    let repo = base.join("repo");
    let first = pull(&repo, &v1, &[]);
    ok(&first, "first partial pull");
    assert!(
        stderr(&first).contains("2 layer(s) by table of contents"),
        "{}",
        stderr(&first)
    );

    let sent = registry.blob_bytes_sent();
    let requests = registry.blob_gets().len();
    let second = pull(&repo, &v2, &["--ref", "v2"]);
    let stdout = ok(&second, "second partial pull");
    let downloaded = registry.blob_bytes_sent() - sent;
    let gets = registry.blob_gets().split_off(requests);
    // Ranges (the tables, the new files); whole only the config (a few hundred bytes).
    let ranges = gets.iter().filter(|&&(status, _)| status == 206).count();
    assert!(ranges >= 2, "{gets:?}");
    assert!(
        gets.iter()
            .all(|&(status, bytes)| status == 206 || bytes < 64 << 10),
        "a layer was downloaded whole: {gets:?}"
    );
    eprintln!(
        "second pull: the registry sent {downloaded} of {total} layer bytes ({:.1}%): {}",
        downloaded as f64 * 100.0 / total as f64,
        stderr(&second)
    );
    assert!(
        downloaded * 5 <= total,
        "the second pull downloaded {downloaded} of {total} layer bytes (more than 20%)"
    );
    assert!(downloaded > 0, "the new files must have been downloaded");
    // The layers were not stored whole (only what the registry sent as ranges was read).
    for layer in v2_manifest["layers"].as_array().unwrap() {
        let hex = layer["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap();
        assert!(!repo.join("oci/blobs/sha256").join(hex).exists());
    }

    // The composefs image is the one of a full pull of v2 (every layer downloaded whole), and
    // the one of the umoci image skopeo converted.
    let composefs = line_value(&stdout, "composefs sha256:");
    let full_repo = base.join("full");
    let sent = registry.blob_bytes_sent();
    let full = ok(&pull(&full_repo, &v2, &["--no-partial"]), "full pull");
    assert!(
        registry.blob_bytes_sent() - sent >= total,
        "--no-partial downloads every layer"
    );
    assert_eq!(composefs, line_value(&full, "composefs sha256:"));
    let local = ok(
        &cfsgate(
            &["compute-id", &format!("oci:{}:test", v2_layout.display())],
            None,
        ),
        "compute-id",
    );
    assert_eq!(composefs, local.trim());
    assert!(repo.join("images").join(&composefs).is_file());
    assert_eq!(
        fs::read(repo.join("images").join(&composefs)).unwrap(),
        fs::read(full_repo.join("images").join(&composefs)).unwrap()
    );
    let manifest_digest = line_value(&stdout, "manifest ");
    let kept = read_json(
        &repo
            .join("oci/blobs/sha256")
            .join(manifest_digest.strip_prefix("sha256:").unwrap()),
    );
    assert_eq!(kept, v2_manifest, "the signed manifest is kept");
}

#[test]
fn wrong_bytes_for_a_file_or_the_table_are_refused_and_nothing_stored() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let registry = Registry::start(&base.join("registry"), RegistryConfig::default());
    let image = format!("docker://{}/cfsgate/bad:v1", registry.host());
    push_chunked(&umoci_image(&base.join("img"), "bad", 20, 3), &image);
    let manifest = manifest(&image);
    let digest_of = |i: usize| {
        manifest["layers"][i]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let repo = base.join("repo");

    // One file of layer 2 served with a wrong byte in the middle of its compressed span.
    let (_, toc) = toc_of(&registry, &manifest, 1);
    let victim = "usr/share/new/n00001";
    let span = toc
        .entries
        .iter()
        .find(|e| e.entry.path == victim.as_bytes())
        .and_then(|e| e.span.clone())
        .expect("the victim file has content");
    let middle = (span.offset + span.end) / 2;
    flip_byte(&registry, &digest_of(1), middle);
    let refused = pull(&repo, &image, &[]);
    assert!(!refused.status.success(), "a wrong file must be refused");
    let text = stderr(&refused);
    eprintln!("refused: {text}");
    assert!(text.contains(victim), "the file is named: {text}");
    assert!(text.contains("nothing stored"), "{text}");
    assert_eq!(stored(&repo), Vec::<String>::new(), "nothing stored");
    flip_byte(&registry, &digest_of(1), middle);

    // The table of layer 1 no longer hashes to the signed manifest's annotation.
    let (location, _) = toc_of(&registry, &manifest, 0);
    let in_toc = location.offset + location.length / 2;
    flip_byte(&registry, &digest_of(0), in_toc);
    let refused = pull(&repo, &image, &[]);
    assert!(!refused.status.success(), "a wrong table must be refused");
    let text = stderr(&refused);
    eprintln!("refused: {text}");
    assert!(
        text.contains("table of contents hashes to") && text.contains("manifest's annotation"),
        "{text}"
    );
    assert_eq!(stored(&repo), Vec::<String>::new(), "nothing stored");
    flip_byte(&registry, &digest_of(0), in_toc);

    // The registry serving the right bytes again: the same pull succeeds.
    ok(&pull(&repo, &image, &[]), "pull of the restored image");
    assert!(!stored(&repo).is_empty());
}

#[test]
fn a_sealed_image_pulled_partially_passes_its_seal_check_and_plain_zstd_falls_back() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let registry = Registry::start(&base.join("registry"), RegistryConfig::default());
    let layout = umoci_image(&base.join("img"), "sealed", 20, 3);
    // Sealed before the conversion: zstd:chunked keeps each layer's tar (and diff_id), so the
    // seal label in the config still names the image's composefs digest.
    let sealed_layout = base.join("sealed");
    ok(
        &cfsgate(
            &[
                "seal",
                &format!("oci:{}:test", layout.display()),
                sealed_layout.to_str().unwrap(),
                "--tag",
                "test",
            ],
            None,
        ),
        "seal",
    );
    let image = format!("docker://{}/cfsgate/sealed:v1", registry.host());
    push_chunked(&sealed_layout, &image);
    let pulled = pull(&base.join("repo"), &image, &[]);
    let stdout = ok(&pulled, "partial pull of a sealed image");
    let text = stderr(&pulled);
    assert!(text.contains("2 layer(s) by table of contents"), "{text}");
    assert!(text.contains("seal checked"), "{text}");
    // compute-id checks the seal label and prints the digest it names.
    let sealed_id = ok(
        &cfsgate(
            &[
                "compute-id",
                &format!("oci:{}:test", sealed_layout.display()),
            ],
            None,
        ),
        "compute-id of the sealed layout",
    );
    assert_eq!(line_value(&stdout, "composefs sha256:"), sealed_id.trim());

    // Plain zstd layers have no table: each is downloaded whole, saying so; the same image.
    let plain = format!("docker://{}/cfsgate/sealed:zstd", registry.host());
    skopeo_push(
        &format!("oci:{}:test", sealed_layout.display()),
        &plain,
        &["--dest-compress-format", "zstd"],
    );
    let sent = registry.blob_bytes_sent();
    let pulled = pull(&base.join("repo-zstd"), &plain, &[]);
    let stdout = ok(&pulled, "pull of plain zstd layers");
    let text = stderr(&pulled);
    assert_eq!(
        text.matches("no zstd:chunked table of contents; downloading the whole layer")
            .count(),
        2,
        "{text}"
    );
    assert!(text.contains("0 layer(s) by table of contents"), "{text}");
    assert!(registry.blob_bytes_sent() - sent >= layer_bytes(&manifest(&plain)));
    assert_eq!(line_value(&stdout, "composefs sha256:"), sealed_id.trim());
}
