//! A blocking client of the OCI distribution API (`/v2/`): manifests and blobs by digest,
//! verified as they arrive; pushes of blobs and manifests (Range requests: [`super::range`]).
//!
//! Blocking (ureq over rustls), on purpose: cfsgate runs as a short-lived hook and CLI, and
//! the few parallel layer downloads of a pull are plain threads; an async runtime would add a
//! scheduler, a larger binary and a second way of doing I/O for no gain here.
//!
//! Authentication, per request, as distribution's token spec and containers/image do it: a
//! request answered `401` with `WWW-Authenticate: Bearer realm=…,service=…,scope=…` gets a
//! token from `realm?service=…&scope=repository:NAME:pull[,push]` (sending the credentials,
//! if any, as Basic auth) and is sent again with `Authorization: Bearer <token>`; tokens are
//! kept per scope for the client's life. `WWW-Authenticate: Basic` is answered with the
//! credentials. A second `401` is an error that names the registry.
//!
//! Every size is bounded before bytes are read: manifests and configs by named limits, blobs by
//! their descriptor's size (a longer body is refused at the first extra byte, a shorter one is
//! resumed with `Range: bytes=N-` and refused if it stays short). Transient failures (a
//! connection refused or reset, a read that times out, `429`, `5xx`) are retried
//! [`ClientOptions::retries`] times with exponential backoff starting at [`BACKOFF_START`].

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::auth::{credentials_for, AuthSource, Credentials};
use super::error::RegistryError;
use super::reference::DockerRef;
use super::tls;
use super::wire::{parse_challenge, parse_token_response};
use crate::digest::{BlobDigest, BlobHasher};

/// The manifest media types a pull asks for.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
/// First wait before a retry; doubled each time.
pub const BACKOFF_START: Duration = Duration::from_millis(250);
/// Largest token response read (real ones are a few KiB).
const MAX_TOKEN_RESPONSE: u64 = 1 << 20;
/// Largest error body kept for a message.
const MAX_ERROR_BODY: u64 = 4096;
/// Read buffer of blob downloads.
const COPY_BUFFER: usize = 256 << 10;

/// How to reach registries.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Verify TLS certificates; `false` accepts any and falls back to plain HTTP.
    pub tls_verify: bool,
    /// certs.d roots (see [`tls`]).
    pub cert_dirs: Vec<std::path::PathBuf>,
    /// Where credentials come from.
    pub auth: AuthSource,
    /// Connect and per-read timeout: a registry that stalls longer is cut off.
    pub timeout: Duration,
    /// Retries of a transient failure.
    pub retries: u32,
    /// Redirects followed (blob downloads are often redirected to a CDN).
    pub max_redirects: u32,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            tls_verify: true,
            cert_dirs: tls::default_cert_dirs(),
            auth: AuthSource::Default,
            timeout: Duration::from_secs(30),
            retries: 3,
            max_redirects: 5,
        }
    }
}

/// What a request needs access to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reading manifests and blobs.
    Pull,
    /// Writing manifests and blobs (and reading them).
    Push,
}

/// A connection to one registry (`HOST[:PORT]`), shared by threads.
pub struct RegistryClient {
    agent: ureq::Agent,
    /// `https://HOST` or `http://HOST`.
    base: String,
    host: String,
    credentials: Option<Credentials>,
    /// `Authorization` values by scope (`*` for Basic auth, valid for every scope).
    auth: Mutex<HashMap<String, String>>,
    pub(super) options: ClientOptions,
}

/// A body for [`RegistryClient::send`].
pub(super) enum Body<'a> {
    None,
    Bytes(&'a [u8], &'a str),
}

impl RegistryClient {
    /// A client for the registry of `reference` (its credentials looked up as `options.auth`
    /// says). With `tls_verify` false, HTTPS is tried first, then plain HTTP.
    pub fn connect(reference: &DockerRef, options: &ClientOptions) -> Result<Self, RegistryError> {
        let host = reference.api_host().to_string();
        let credentials = credentials_for(&options.auth, reference)?;
        let config = if options.tls_verify {
            tls::verifying_config(&host, &options.cert_dirs)?
        } else {
            tls::unverified_config()?
        };
        let agent = ureq::AgentBuilder::new()
            .tls_config(Arc::new(config))
            .timeout_connect(options.timeout)
            .timeout_read(options.timeout)
            .timeout_write(options.timeout)
            .redirects(options.max_redirects)
            .user_agent(concat!("cfsgate/", env!("CARGO_PKG_VERSION")))
            .build();
        let mut client = RegistryClient {
            agent,
            base: format!("https://{host}"),
            host,
            credentials,
            auth: Mutex::new(HashMap::new()),
            options: options.clone(),
        };
        if !options.tls_verify {
            let url = format!("{}/v2/", client.base);
            if let Err(ureq::Error::Transport(_)) = client.agent.get(&url).call() {
                client.base = format!("http://{}", client.host);
            }
        }
        Ok(client)
    }

    /// `https://HOST` or `http://HOST`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub(super) fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn auth_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // Only strings live here: a panic elsewhere cannot leave them inconsistent.
        self.auth.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Send a request, authenticating and retrying as the module docs say. `Ok` is a 2xx
    /// response; anything else is an error carrying the status.
    pub(super) fn send(
        &self,
        method: &'static str,
        path: &str,
        repository: &str,
        access: Access,
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<ureq::Response, RegistryError> {
        let url = self.url(path);
        let scope = format!(
            "repository:{repository}:{}",
            match access {
                Access::Pull => "pull",
                Access::Push => "pull,push",
            }
        );
        let mut authenticated = false;
        let mut attempt = 0;
        loop {
            let mut request = self.agent.request(method, &url);
            for (name, value) in headers {
                request = request.set(name, value);
            }
            let cached = {
                let cache = self.auth_cache();
                cache.get(&scope).or_else(|| cache.get("*")).cloned()
            };
            if let Some(value) = &cached {
                request = request.set("Authorization", value);
            }
            let result = match &body {
                Body::None => request.call(),
                Body::Bytes(bytes, content_type) => {
                    request.set("Content-Type", content_type).send_bytes(bytes)
                }
            };
            let error = match result {
                Ok(response) => return Ok(response),
                Err(ureq::Error::Status(401, response)) if !authenticated => {
                    let challenge = response
                        .header("WWW-Authenticate")
                        .unwrap_or_default()
                        .to_string();
                    self.authenticate(&challenge, &scope)?;
                    authenticated = true;
                    continue;
                }
                Err(ureq::Error::Status(status, response)) => {
                    let message = error_message(response);
                    let transient = status == 429 || (500..600).contains(&status);
                    let error = RegistryError::Status {
                        method,
                        url: url.clone(),
                        status,
                        message,
                    };
                    if !transient {
                        return Err(error);
                    }
                    error
                }
                Err(ureq::Error::Transport(transport)) => {
                    let reason = match transport.kind() {
                        ureq::ErrorKind::TooManyRedirects => format!(
                            "more than {} redirects (a redirect loop?)",
                            self.options.max_redirects
                        ),
                        _ => transport.to_string(),
                    };
                    let error = RegistryError::Transport {
                        method,
                        url: url.clone(),
                        reason,
                    };
                    if !transient_transport(&transport) {
                        return Err(error);
                    }
                    error
                }
            };
            if attempt >= self.options.retries {
                return Err(error);
            }
            std::thread::sleep(BACKOFF_START * 2u32.saturating_pow(attempt));
            attempt += 1;
        }
    }

    /// Answer a `WWW-Authenticate` challenge for `scope`: cache the `Authorization` value.
    fn authenticate(&self, challenge: &str, scope: &str) -> Result<(), RegistryError> {
        let auth_err = |reason: String| RegistryError::Auth {
            host: self.host.clone(),
            reason,
        };
        let (scheme, params) = parse_challenge(challenge)
            .ok_or_else(|| auth_err(format!("unsupported WWW-Authenticate {challenge:?}")))?;
        if scheme.eq_ignore_ascii_case("basic") {
            let creds = self.credentials.as_ref().ok_or_else(|| {
                auth_err("the registry wants a user name and password (--creds, --authfile or auth.json)".into())
            })?;
            self.auth_cache().insert("*".into(), creds.basic_header());
            return Ok(());
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(auth_err(format!("unsupported auth scheme {scheme:?}")));
        }
        let realm = params
            .get("realm")
            .ok_or_else(|| auth_err("Bearer challenge without realm".into()))?;
        let mut request = self.agent.get(realm).query("scope", scope);
        if let Some(service) = params.get("service") {
            request = request.query("service", service);
        }
        if let Some(creds) = &self.credentials {
            request = request.set("Authorization", &creds.basic_header());
        }
        let response = request.call().map_err(|e| {
            auth_err(match e {
                ureq::Error::Status(status, r) => {
                    format!(
                        "token server {realm} answered {status}: {}",
                        error_message(r)
                    )
                }
                ureq::Error::Transport(t) => format!("token server {realm}: {t}"),
            })
        })?;
        let bytes = read_limited(response.into_reader(), MAX_TOKEN_RESPONSE)
            .map_err(|e| auth_err(format!("token server {realm}: {e}")))?;
        let token = parse_token_response(&bytes)
            .map_err(|e| auth_err(format!("token server {realm}: {e}")))?;
        self.auth_cache()
            .insert(scope.to_string(), format!("Bearer {token}"));
        Ok(())
    }

    /// `GET /v2/NAME/manifests/REF`: the manifest's bytes, digest and media type. With
    /// `expected`, the bytes must hash to it; otherwise a `Docker-Content-Digest` the
    /// registry sends must agree with the bytes. `Ok(None)` for 404.
    pub fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
        expected: Option<&BlobDigest>,
        limit: u64,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let response = match self.send(
            "GET",
            &path,
            repository,
            Access::Pull,
            &[("Accept", MANIFEST_ACCEPT)],
            Body::None,
        ) {
            Err(e) if e.status() == Some(404) => return Ok(None),
            other => other?,
        };
        let url = self.url(&path);
        let media_type = response.content_type().to_string();
        let claimed = response.header("Docker-Content-Digest").map(str::to_string);
        let announced = content_length(&response);
        if announced.is_some_and(|n| n > limit) {
            return Err(RegistryError::TooLarge {
                what: "manifest",
                url,
                limit,
            });
        }
        let bytes = read_limited(response.into_reader(), limit)
            .map_err(|e| body_error("manifest", &url, e, limit))?;
        let actual = BlobDigest::of(&bytes);
        let check = match (expected, &claimed) {
            (Some(want), _) => Some(*want),
            (None, Some(text)) => Some(BlobDigest::parse(text)?),
            (None, None) => None,
        };
        if let Some(want) = check {
            if want != actual {
                return Err(RegistryError::DigestMismatch {
                    what: "manifest",
                    url,
                    expected: want,
                    actual,
                });
            }
        }
        Ok(Some(FetchedManifest {
            digest: actual,
            media_type,
            bytes,
        }))
    }

    /// A whole small blob (a config or signature payload) of exactly `size` bytes, verified.
    pub fn get_blob_bytes(
        &self,
        repository: &str,
        digest: &BlobDigest,
        size: u64,
        limit: u64,
        what: &'static str,
    ) -> Result<Vec<u8>, RegistryError> {
        if size > limit {
            return Err(RegistryError::TooLarge {
                what,
                url: self.url(&blob_path(repository, digest)),
                limit,
            });
        }
        let mut out = Vec::with_capacity(size as usize);
        self.get_blob(repository, digest, size, what, &mut out, &|_| {})?;
        Ok(out)
    }

    /// Stream blob `digest` of `size` bytes into `out`, hashing as it arrives; an interrupted
    /// transfer resumes with a Range request. `out` must be empty at the start: on `Ok` it holds
    /// exactly the blob, on `Err` the caller discards it. `progress` gets byte counts.
    pub fn get_blob(
        &self,
        repository: &str,
        digest: &BlobDigest,
        size: u64,
        what: &'static str,
        out: &mut dyn BlobWrite,
        progress: &dyn Fn(u64),
    ) -> Result<(), RegistryError> {
        let path = blob_path(repository, digest);
        let url = self.url(&path);
        let mut hasher = BlobHasher::default();
        let mut attempt = 0;
        let mut buf = vec![0u8; COPY_BUFFER];
        loop {
            let range = format!("bytes={}-", hasher.len);
            let headers: &[(&str, &str)] = if hasher.len > 0 {
                &[("Range", range.as_str())]
            } else {
                &[]
            };
            let response =
                self.send("GET", &path, repository, Access::Pull, headers, Body::None)?;
            if hasher.len > 0 && response.status() != 206 {
                // The registry ignored the Range: start over.
                out.restart()
                    .map_err(|e| RegistryError::io("rewinding download of", url.clone(), e))?;
                hasher = BlobHasher::default();
            }
            let remaining = size - hasher.len;
            if let Some(n) = content_length(&response) {
                if n > remaining {
                    return Err(RegistryError::BadLength {
                        what,
                        url,
                        reason: format!(
                            "Content-Length {n} but {remaining} bytes remain of the {size} the descriptor of {digest} says"
                        ),
                    });
                }
            }
            let mut reader = response.into_reader();
            let interrupted = loop {
                match reader.read(&mut buf) {
                    Ok(0) => break None,
                    Ok(n) => {
                        if hasher.len + n as u64 > size {
                            return Err(RegistryError::BadLength {
                                what,
                                url,
                                reason: format!(
                                    "more than the {size} bytes the descriptor of {digest} says"
                                ),
                            });
                        }
                        hasher.update(&buf[..n]);
                        out.write_all(&buf[..n]).map_err(|e| {
                            RegistryError::io("writing download of", url.clone(), e)
                        })?;
                        progress(n as u64);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => break Some(e.to_string()),
                }
            };
            if hasher.len == size {
                break;
            }
            if attempt >= self.options.retries {
                return Err(RegistryError::BadLength {
                    what,
                    url,
                    reason: format!(
                        "the transfer ended after {} of {size} bytes{}",
                        hasher.len,
                        interrupted.map(|e| format!(" ({e})")).unwrap_or_default()
                    ),
                });
            }
            std::thread::sleep(BACKOFF_START * 2u32.saturating_pow(attempt));
            attempt += 1;
        }
        let (actual, _) = hasher.finish();
        if actual != *digest {
            return Err(RegistryError::DigestMismatch {
                what,
                url,
                expected: *digest,
                actual,
            });
        }
        Ok(())
    }

    /// Whether the registry has blob `digest` (`HEAD`).
    pub fn has_blob(&self, repository: &str, digest: &BlobDigest) -> Result<bool, RegistryError> {
        let path = blob_path(repository, digest);
        match self.send("HEAD", &path, repository, Access::Push, &[], Body::None) {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Upload a blob (one monolithic `POST` + `PUT ?digest=`) unless the registry has it.
    pub fn put_blob(&self, repository: &str, bytes: &[u8]) -> Result<BlobDigest, RegistryError> {
        let digest = BlobDigest::of(bytes);
        if self.has_blob(repository, &digest)? {
            return Ok(digest);
        }
        let start = format!("/v2/{repository}/blobs/uploads/");
        let response = self.send("POST", &start, repository, Access::Push, &[], Body::None)?;
        let location = response
            .header("Location")
            .ok_or_else(|| RegistryError::Protocol {
                what: "blob upload",
                url: self.url(&start),
                reason: "no Location in the answer".into(),
            })?
            .to_string();
        let location = if location.starts_with('/') || location.starts_with("http") {
            location
        } else {
            format!("/{location}")
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={digest}");
        self.send(
            "PUT",
            &put,
            repository,
            Access::Push,
            &[],
            Body::Bytes(bytes, "application/octet-stream"),
        )?;
        Ok(digest)
    }

    /// `PUT /v2/NAME/manifests/REF` with `media_type`; returns the manifest's digest.
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<BlobDigest, RegistryError> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let digest = BlobDigest::of(bytes);
        let response = self.send(
            "PUT",
            &path,
            repository,
            Access::Push,
            &[],
            Body::Bytes(bytes, media_type),
        )?;
        if let Some(claimed) = response.header("Docker-Content-Digest") {
            if BlobDigest::parse(claimed)? != digest {
                return Err(RegistryError::Protocol {
                    what: "manifest upload",
                    url: self.url(&path),
                    reason: format!("the registry stored it as {claimed}, not {digest}"),
                });
            }
        }
        Ok(digest)
    }

    /// `GET /v2/NAME/referrers/DIGEST[?artifactType=…]`: the referrers index, or `None` when
    /// the registry does not implement the endpoint (404), so that the caller falls back to
    /// the `sha256-<hex>` tag schema.
    pub fn get_referrers(
        &self,
        repository: &str,
        digest: &BlobDigest,
        artifact_type: Option<&str>,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        let mut path = format!("/v2/{repository}/referrers/{digest}");
        if let Some(t) = artifact_type {
            path.push_str("?artifactType=");
            path.push_str(&t.replace('+', "%2B"));
        }
        let response = match self.send(
            "GET",
            &path,
            repository,
            Access::Pull,
            &[("Accept", crate::resolve::MEDIA_OCI_INDEX)],
            Body::None,
        ) {
            Err(e) if e.status() == Some(404) => return Ok(None),
            other => other?,
        };
        let url = self.url(&path);
        if response.content_type() != crate::resolve::MEDIA_OCI_INDEX {
            return Ok(None);
        }
        read_limited(response.into_reader(), limit)
            .map(Some)
            .map_err(|e| body_error("referrers index", &url, e, limit))
    }
}

/// A manifest as the registry sent it, its bytes verified.
#[derive(Clone, Debug)]
pub struct FetchedManifest {
    /// The manifest's digest: the one asked for, or the sha256 of the bytes for a tag.
    pub digest: BlobDigest,
    /// The `Content-Type` the registry sent.
    pub media_type: String,
    /// The manifest's exact bytes.
    pub bytes: Vec<u8>,
}

/// Where a blob download goes: written in order, rewound if the registry ignores a Range.
pub trait BlobWrite: Write {
    /// Drop everything written so far.
    fn restart(&mut self) -> io::Result<()>;
}

impl BlobWrite for Vec<u8> {
    fn restart(&mut self) -> io::Result<()> {
        self.clear();
        Ok(())
    }
}

impl BlobWrite for std::fs::File {
    fn restart(&mut self) -> io::Result<()> {
        use std::io::Seek as _;
        self.set_len(0)?;
        self.rewind()
    }
}

pub(super) fn blob_path(repository: &str, digest: &BlobDigest) -> String {
    format!("/v2/{repository}/blobs/{digest}")
}

fn content_length(response: &ureq::Response) -> Option<u64> {
    response
        .header("Content-Length")
        .and_then(|v| v.trim().parse().ok())
}

fn transient_transport(t: &ureq::Transport) -> bool {
    matches!(
        t.kind(),
        ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Io | ureq::ErrorKind::Dns
    )
}

/// Read at most `limit` bytes; more is an error.
fn read_limited(reader: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(io::ErrorKind::FileTooLarge, "too large"));
    }
    Ok(bytes)
}

pub(super) fn body_error(what: &'static str, url: &str, e: io::Error, limit: u64) -> RegistryError {
    if e.kind() == io::ErrorKind::FileTooLarge {
        RegistryError::TooLarge {
            what,
            url: url.into(),
            limit,
        }
    } else {
        RegistryError::BadLength {
            what,
            url: url.into(),
            reason: format!("reading the body: {e}"),
        }
    }
}

/// The registry's error body, shortened, for a message.
fn error_message(response: ureq::Response) -> String {
    let status_text = response.status_text().to_string();
    let body = read_limited(response.into_reader().take(MAX_ERROR_BODY), MAX_ERROR_BODY)
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    if body.is_empty() {
        status_text
    } else {
        body.chars().take(300).collect()
    }
}
