//! Range requests of partial pulls against the test's own HTTP server (tests/fixtures/registry.rs
//! `serve`): a range whose body is cut short is resumed from where it stopped and yields exactly
//! the bytes asked for; one cut short every time is refused after the client's retries, saying
//! so; one longer than asked for is refused at once, without a resume.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

#[path = "../../tests/fixtures/registry.rs"]
mod registry;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cfsgate_oci::registry::{AuthSource, ClientOptions, DockerRef, RegistryClient};
use cfsgate_oci::BlobDigest;
use registry::{respond, serve};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// The first answer sends half its body, then closes.
    CutOnce,
    /// Every answer does.
    CutAlways,
    /// The answer has one byte more than the range.
    TooLong,
}

fn blob() -> Vec<u8> {
    (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

/// The ranges (`start`, `end` inclusive) the server was asked for, in order.
type Asked = Arc<Mutex<Vec<(u64, u64)>>>;

/// The server's port and what it was asked for.
fn start(mode: Mode) -> (u16, Asked) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    let blob = blob();
    let (port, _thread) = serve(move |head, stream| {
        if head.starts_with("GET /v2/ ") {
            return respond(stream, "200 OK", &[], b"{}");
        }
        let range = head
            .lines()
            .find_map(|l| l.strip_prefix("Range: bytes="))
            .and_then(|r| r.trim().split_once('-'))
            .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
        let Some((a, b)) = range else {
            return respond(stream, "400 Bad Request", &[], b"");
        };
        let first = {
            let mut seen = seen.lock().unwrap();
            seen.push((a, b));
            seen.len() == 1
        };
        let body = &blob[a as usize..=b as usize];
        let content_range = format!("bytes {a}-{b}/{}", blob.len());
        let length = body.len().to_string();
        let headers = [
            ("Content-Range", content_range.as_str()),
            ("Content-Length", length.as_str()),
        ];
        match mode {
            Mode::CutOnce if first => respond(
                stream,
                "206 Partial Content",
                &headers,
                &body[..body.len() / 2],
            ),
            Mode::CutAlways => respond(
                stream,
                "206 Partial Content",
                &headers,
                &body[..body.len() / 2],
            ),
            Mode::TooLong => {
                let mut longer = body.to_vec();
                longer.push(0);
                let length = longer.len().to_string();
                let headers = [
                    ("Content-Range", content_range.as_str()),
                    ("Content-Length", length.as_str()),
                ];
                respond(stream, "206 Partial Content", &headers, &longer)
            }
            _ => respond(stream, "206 Partial Content", &headers, body),
        }
    });
    (port, asked)
}

fn client(port: u16) -> RegistryClient {
    let reference = DockerRef::parse(&format!("docker://127.0.0.1:{port}/r/app:v1")).unwrap();
    let options = ClientOptions {
        tls_verify: false,
        cert_dirs: Vec::new(),
        auth: AuthSource::Anonymous,
        timeout: Duration::from_secs(2),
        retries: 2,
        max_redirects: 5,
    };
    RegistryClient::connect(&reference, &options).unwrap()
}

fn get(port: u16) -> Result<Vec<u8>, cfsgate_oci::registry::RegistryError> {
    let digest = BlobDigest::of(&blob());
    client(port).get_blob_range("r/app", &digest, 1000..101_000, 1 << 20)
}

#[test]
fn a_range_cut_short_is_resumed_where_it_stopped() {
    let (port, asked) = start(Mode::CutOnce);
    let bytes = get(port).unwrap();
    assert_eq!(bytes, blob()[1000..101_000]);
    // The second request starts where the first body stopped (its half: 50 000 bytes).
    assert_eq!(
        *asked.lock().unwrap(),
        vec![(1000, 100_999), (51_000, 100_999)]
    );
}

#[test]
fn a_range_cut_short_every_time_is_refused_after_the_retries() {
    let (port, asked) = start(Mode::CutAlways);
    let error = get(port).unwrap_err().to_string();
    assert!(error.contains("after 2 resumes"), "{error}");
    assert_eq!(
        asked.lock().unwrap().len(),
        3,
        "one request and two resumes"
    );
}

#[test]
fn a_range_longer_than_asked_is_refused_without_a_resume() {
    let (port, asked) = start(Mode::TooLong);
    let error = get(port).unwrap_err().to_string();
    assert!(error.contains("larger than the limit"), "{error}");
    assert_eq!(asked.lock().unwrap().len(), 1);
}
