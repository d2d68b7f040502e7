//! A hostile registry (the test's own HTTP server, tests/fixtures/registry.rs `serve`) against
//! the registry client: wrong bytes for a digest, a truncated blob, a huge manifest, a redirect
//! loop, a server that stalls, a Content-Length that lies. Each fetch is refused with an error
//! that says what and where, and leaves no blob of what was refused, no temporary file and no
//! `index.json` in the layout. A well-behaved run of the same server is fetched first, so the
//! server and the image are known good.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

#[path = "../../tests/fixtures/registry.rs"]
mod registry;

use std::collections::HashMap;
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cfsgate_oci::registry::{
    fetch_image, AuthSource, ClientOptions, DockerRef, FetchOptions, NoFetchProgress,
    RegistryClient, RegistryError,
};
use cfsgate_oci::BlobDigest;
use registry::{respond, serve};
use serde_json::json;

/// How the server misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Honest,
    WrongLayerBytes,
    TruncatedLayer,
    HugeManifest,
    RedirectLoop,
    Stall,
    LyingContentLength,
    WrongManifestForDigest,
}

struct Image {
    manifest: Vec<u8>,
    manifest_digest: BlobDigest,
    layer_digest: BlobDigest,
    blobs: HashMap<String, Vec<u8>>,
}

fn image() -> Image {
    let mut tar = tar::Builder::new(Vec::new());
    let content = vec![7u8; 300_000];
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "data/file", content.as_slice())
        .unwrap();
    let layer = tar.into_inner().unwrap();
    let layer_digest = BlobDigest::of(&layer);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer_digest.to_string()]}
    }))
    .unwrap();
    let config_digest = BlobDigest::of(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest.to_string(), "size": layer.len()}]
    }))
    .unwrap();
    let mut blobs = HashMap::new();
    blobs.insert(config_digest.to_string(), config);
    blobs.insert(layer_digest.to_string(), layer);
    Image {
        manifest_digest: BlobDigest::of(&manifest),
        manifest,
        layer_digest,
        blobs,
    }
}

/// Serve `image` under `hostile/app:v1` misbehaving as `mode` says.
fn start(mode: Mode) -> (u16, Arc<Image>) {
    let image = Arc::new(image());
    let served = image.clone();
    let stalls = Arc::new(Mutex::new(Vec::<TcpStream>::new()));
    let (port, _thread) = serve(move |head, stream| {
        let path = head
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let manifest_type = [("Content-Type", "application/vnd.oci.image.manifest.v1+json")];
        if path == "/v2/" {
            return respond(stream, "200 OK", &[], b"{}");
        }
        if let Some(reference) = path.strip_prefix("/v2/hostile/app/manifests/") {
            let bytes = match mode {
                Mode::HugeManifest => {
                    let mut huge = served.manifest.clone();
                    huge.resize(5 << 20, b' ');
                    huge
                }
                Mode::WrongManifestForDigest if reference.starts_with("sha256:") => {
                    br#"{"schemaVersion":2,"layers":[]}"#.to_vec()
                }
                _ if reference == "v1" || reference == served.manifest_digest.to_string() => {
                    served.manifest.clone()
                }
                _ => return respond(stream, "404 Not Found", &[], b"{\"errors\":[]}"),
            };
            return respond(stream, "200 OK", &manifest_type, &bytes);
        }
        if path.starts_with("/v2/hostile/app/referrers/") {
            let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                    "digest": served.manifest_digest.to_string(), "size": served.manifest.len()}]});
            let content_type = [("Content-Type", "application/vnd.oci.image.index.v1+json")];
            return respond(
                stream,
                "200 OK",
                &content_type,
                index.to_string().as_bytes(),
            );
        }
        let Some(digest) = path.strip_prefix("/v2/hostile/app/blobs/") else {
            return respond(stream, "404 Not Found", &[], b"");
        };
        let Some(blob) = served.blobs.get(digest) else {
            return respond(stream, "404 Not Found", &[], b"");
        };
        let is_layer = digest == served.layer_digest.to_string();
        match mode {
            Mode::WrongLayerBytes if is_layer => {
                let mut wrong = blob.clone();
                wrong[1000] ^= 1;
                respond(stream, "200 OK", &[], &wrong)
            }
            Mode::TruncatedLayer if is_layer => {
                let length = blob.len().to_string();
                respond(
                    stream,
                    "200 OK",
                    &[("Content-Length", &length)],
                    &blob[..blob.len() / 2],
                )
            }
            Mode::RedirectLoop if is_layer => {
                respond(stream, "302 Found", &[("Location", &path)], b"")
            }
            Mode::Stall if is_layer => {
                // Keep the connection open, say nothing.
                stalls.lock().unwrap().push(stream.try_clone().unwrap());
            }
            Mode::LyingContentLength if is_layer => {
                let length = (blob.len() + 1_000_000).to_string();
                respond(stream, "200 OK", &[("Content-Length", &length)], blob)
            }
            _ => respond(stream, "200 OK", &[], blob),
        }
    });
    (port, image)
}

fn options() -> ClientOptions {
    ClientOptions {
        tls_verify: false,
        cert_dirs: Vec::new(),
        auth: AuthSource::Anonymous,
        timeout: Duration::from_secs(1),
        retries: 1,
        max_redirects: 5,
    }
}

fn fetch(port: u16, reference: &str, layout: &Path) -> Result<(), RegistryError> {
    let reference = DockerRef::parse(&format!("docker://127.0.0.1:{port}/hostile/app{reference}"))?;
    let client = RegistryClient::connect(&reference, &options())?;
    fetch_image(
        &client,
        &reference,
        layout,
        &FetchOptions::default(),
        &NoFetchProgress,
    )
    .map(drop)
}

/// The refused blob, temporary files and index.json are all absent.
fn assert_nothing_stored(layout: &Path, refused: &BlobDigest) {
    assert!(!layout.join("index.json").exists(), "index.json written");
    let blobs = layout.join("blobs/sha256");
    for entry in std::fs::read_dir(&blobs).into_iter().flatten() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "temporary file {name} left behind");
        assert_ne!(name, refused.hex(), "the refused blob was stored");
    }
}

fn refused(mode: Mode, reference: &str) -> (String, Arc<Image>, tempfile::TempDir) {
    let (port, image) = start(mode);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let error = fetch(port, reference, dir.path()).expect_err("a hostile registry was trusted");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{mode:?} took {:?}",
        started.elapsed()
    );
    (error.to_string(), image, dir)
}

#[test]
fn an_honest_run_of_the_same_server_is_fetched_and_resolves() {
    let (port, image) = start(Mode::Honest);
    let dir = tempfile::tempdir().unwrap();
    fetch(port, ":v1", dir.path()).unwrap();
    let resolved = cfsgate_oci::resolve(&format!("oci:{}:v1", dir.path().display())).unwrap();
    assert_eq!(resolved.manifest_digest, image.manifest_digest);
    assert!(dir
        .path()
        .join("blobs/sha256")
        .join(image.layer_digest.hex())
        .is_file());
}

#[test]
fn wrong_bytes_for_a_layer_digest_are_refused() {
    let (error, image, dir) = refused(Mode::WrongLayerBytes, ":v1");
    assert!(
        error.contains("hash to") && error.contains(&image.layer_digest.to_string()),
        "{error}"
    );
    assert_nothing_stored(dir.path(), &image.layer_digest);
}

#[test]
fn a_truncated_layer_is_refused_after_resuming() {
    let (error, image, dir) = refused(Mode::TruncatedLayer, ":v1");
    assert!(error.contains("the transfer ended after"), "{error}");
    assert_nothing_stored(dir.path(), &image.layer_digest);
}

#[test]
fn a_huge_manifest_is_refused() {
    let (error, image, dir) = refused(Mode::HugeManifest, ":v1");
    assert!(
        error.contains("larger than the limit of 4194304 bytes"),
        "{error}"
    );
    assert_nothing_stored(dir.path(), &image.manifest_digest);
    assert!(std::fs::read_dir(dir.path().join("blobs/sha256"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn a_redirect_loop_is_refused() {
    let (error, image, dir) = refused(Mode::RedirectLoop, ":v1");
    assert!(error.contains("more than 5 redirects"), "{error}");
    assert_nothing_stored(dir.path(), &image.layer_digest);
}

#[test]
fn a_stalling_registry_is_cut_off() {
    let (error, image, dir) = refused(Mode::Stall, ":v1");
    assert!(
        error.to_lowercase().contains("timed out") || error.contains("timeout"),
        "{error}"
    );
    assert_nothing_stored(dir.path(), &image.layer_digest);
}

#[test]
fn a_content_length_longer_than_the_descriptor_is_refused() {
    let (error, image, dir) = refused(Mode::LyingContentLength, ":v1");
    assert!(
        error.contains("Content-Length") && error.contains(&image.layer_digest.to_string()),
        "{error}"
    );
    assert_nothing_stored(dir.path(), &image.layer_digest);
}

#[test]
fn a_manifest_that_is_not_the_digest_asked_for_is_refused() {
    let (port, image) = start(Mode::WrongManifestForDigest);
    let dir = tempfile::tempdir().unwrap();
    let error = fetch(port, &format!("@{}", image.manifest_digest), dir.path())
        .expect_err("a manifest of another digest was accepted")
        .to_string();
    assert!(
        error.contains("not the") && error.contains(&image.manifest_digest.to_string()),
        "{error}"
    );
    assert!(std::fs::read_dir(dir.path().join("blobs/sha256"))
        .unwrap()
        .next()
        .is_none());
}

/// The referrers endpoint against the test's own server (distribution 2.8, the real registry
/// of tests/registry.rs, has none and answers 404, which that test checks).
#[test]
fn the_referrers_api_returns_the_index_a_registry_sends() {
    let (port, image) = start(Mode::Honest);
    let reference = DockerRef::parse(&format!("docker://127.0.0.1:{port}/hostile/app:v1")).unwrap();
    let client = RegistryClient::connect(&reference, &options()).unwrap();
    let bytes = client
        .get_referrers(
            "hostile/app",
            &image.manifest_digest,
            Some("application/vnd.dev.sigstore.bundle.v0.3+json"),
            1 << 20,
        )
        .unwrap()
        .expect("an index");
    let index: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        index["manifests"][0]["artifactType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    // A Range request for partial pulls: exactly the bytes asked for.
    let layer = &image.blobs[&image.layer_digest.to_string()];
    let range = client.get_blob_range("hostile/app", &image.layer_digest, 10..20, 1 << 20);
    // The test server ignores Range and answers 200: refused, not mistaken for the range.
    let error = range
        .expect_err("a 200 answer taken as a range")
        .to_string();
    assert!(error.contains("not 206"), "{error}");
    assert!(layer.len() > 20);
}
