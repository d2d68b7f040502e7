//! One command's way to registries ([`RegistrySession`]): the registry settings of a command
//! line (`--tls-verify`, `--cert-dir`, `--authfile`, `--creds`, `--registries-conf`,
//! [`RegistrySettings`]) turned into [`ClientOptions`] and a loaded [`RegistriesConf`], then:
//! - pulls tried on each source registries.conf gives, in order ([`first_success`]): the mirrors
//!   that apply (a failing one is reported to the caller and skipped), then the registry's
//!   location, whose failure is the pull's;
//! - pushes and referrer lookups at the registry's own location ([`RegistrySession::at_registry`]:
//!   never a mirror, a mirror is only a source of bytes);
//! - an endpoint marked insecure turns certificate checks off for its connection.
//!
//! Each error says which step failed: `connecting to HOST: …`, `fetching docker://…: …`,
//! `pulling docker://…: …`.

use std::path::{Path, PathBuf};

use cfsgate_image::store::Repository;

use super::auth::{AuthSource, Credentials};
use super::client::{ClientOptions, RegistryClient};
use super::config::{Endpoint, RegistriesConf};
use super::error::RegistryError;
use super::fetch::{fetch_image, FetchOptions, FetchProgress, Fetched};
use super::partial_pull::{pull_partial, PartialPull, PartialPullError};
use super::push::{push_layout_tag, LayoutPushError};
use super::reference::DockerRef;
use crate::digest::BlobDigest;

/// How to reach registries, as a command line gives it (every field optional but TLS).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistrySettings {
    /// Require HTTPS with a verified certificate (false: accept any, or plain HTTP).
    pub tls_verify: bool,
    /// A certs.d directory used instead of the default ones.
    pub cert_dir: Option<PathBuf>,
    /// A containers-auth.json(5) file used instead of the default lookup.
    pub authfile: Option<PathBuf>,
    /// Credentials `USER:PASSWORD` (they win over `authfile`).
    pub creds: Option<String>,
    /// A registries.conf(5) used alone (no drop-ins) instead of the default lookup.
    pub registries_conf: Option<PathBuf>,
}

impl RegistrySettings {
    /// The client options these settings ask for (the defaults for what they leave out).
    pub fn client_options(&self) -> Result<ClientOptions, SessionError> {
        let mut options = ClientOptions {
            tls_verify: self.tls_verify,
            ..ClientOptions::default()
        };
        if let Some(dir) = &self.cert_dir {
            options.cert_dirs = vec![dir.clone()];
        }
        if let Some(file) = &self.authfile {
            options.auth = AuthSource::File(file.clone());
        }
        if let Some(creds) = &self.creds {
            options.auth =
                AuthSource::Explicit(Credentials::parse(creds).map_err(SessionError::Credentials)?);
        }
        Ok(options)
    }
}

/// A registry operation of a session refused; each variant names the step.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// `--creds` is not `USER:PASSWORD`.
    #[error("--creds: {0}")]
    Credentials(String),
    /// No client could be made for the endpoint (credentials file, TLS configuration).
    #[error("connecting to {host}: {source}")]
    Connect {
        /// The registry host.
        host: String,
        /// Why (boxed: a registry error is large).
        #[source]
        source: Box<RegistryError>,
    },
    /// Fetching an image into a layout failed.
    #[error("fetching {reference}: {source}")]
    Fetch {
        /// The reference fetched (as rewritten for the endpoint).
        reference: String,
        /// Why (boxed).
        #[source]
        source: Box<RegistryError>,
    },
    /// A partial pull into a repository failed.
    #[error("pulling {reference}: {source}")]
    Pull {
        /// The reference pulled (as rewritten for the endpoint).
        reference: String,
        /// Why (boxed).
        #[source]
        source: Box<PartialPullError>,
    },
    /// Pushing a layout's tag failed.
    #[error(transparent)]
    Push(#[from] LayoutPushError),
    /// registries.conf or the reference's entry in it refuses (malformed, blocked).
    #[error(transparent)]
    Registry(Box<RegistryError>),
    /// registries.conf gave no source at all.
    #[error("no source for {0}")]
    NoSource(String),
}

impl From<RegistryError> for SessionError {
    fn from(error: RegistryError) -> Self {
        SessionError::Registry(Box::new(error))
    }
}

/// Client options and registries.conf for one command (see the module docs).
#[derive(Clone, Debug)]
pub struct RegistrySession {
    options: ClientOptions,
    conf: RegistriesConf,
}

impl RegistrySession {
    /// Load registries.conf and check the settings (`--creds`).
    pub fn open(settings: &RegistrySettings) -> Result<Self, SessionError> {
        let conf = RegistriesConf::load(settings.registries_conf.as_deref())?;
        Ok(RegistrySession {
            options: settings.client_options()?,
            conf,
        })
    }

    /// A session of given parts (tests, callers with their own configuration).
    pub fn new(options: ClientOptions, conf: RegistriesConf) -> Self {
        RegistrySession { options, conf }
    }

    /// The client options of `endpoint`: an insecure one turns certificate checks off.
    pub fn options_for(&self, endpoint: &Endpoint) -> ClientOptions {
        let mut options = self.options.clone();
        options.tls_verify &= !endpoint.insecure;
        options
    }

    /// Connect to an endpoint.
    pub fn connect(&self, endpoint: &Endpoint) -> Result<RegistryClient, SessionError> {
        RegistryClient::connect(&endpoint.reference, &self.options_for(endpoint)).map_err(
            |source| SessionError::Connect {
                host: endpoint.reference.host.clone(),
                source: Box::new(source),
            },
        )
    }

    /// The registry's own location for `docker`, connected (for pushes and referrers).
    pub fn at_registry(
        &self,
        docker: &DockerRef,
    ) -> Result<(RegistryClient, Endpoint), SessionError> {
        let endpoint = self.conf.push_endpoint(docker)?;
        Ok((self.connect(&endpoint)?, endpoint))
    }

    /// `f` with a client of each source of `docker` until one succeeds ([`first_success`]).
    pub fn on_sources<T>(
        &self,
        docker: &DockerRef,
        skipped: &mut dyn FnMut(&Endpoint, &SessionError),
        mut f: impl FnMut(&Endpoint, &RegistryClient) -> Result<T, SessionError>,
    ) -> Result<T, SessionError> {
        let endpoints = self.conf.pull_endpoints(docker)?;
        first_success(docker, endpoints, skipped, |endpoint| {
            f(endpoint, &self.connect(endpoint)?)
        })
    }

    /// Fetch `docker` into the layout `layout` from the first source that has it.
    pub fn fetch(
        &self,
        docker: &DockerRef,
        layout: &Path,
        options: &FetchOptions,
        progress: &dyn FetchProgress,
        skipped: &mut dyn FnMut(&Endpoint, &SessionError),
    ) -> Result<Fetched, SessionError> {
        self.on_sources(docker, skipped, |endpoint, client| {
            let reference = &endpoint.reference;
            fetch_image(client, reference, layout, options, progress).map_err(|source| {
                SessionError::Fetch {
                    reference: reference.to_string(),
                    source: Box::new(source),
                }
            })
        })
    }

    /// Pull `docker` partially ([`pull_partial`]) into `repository` through the staging
    /// layout `layout`, from the first source that has it.
    pub fn pull_partial(
        &self,
        docker: &DockerRef,
        layout: &Path,
        repository: &Repository,
        ref_name: Option<&str>,
        progress: &dyn FetchProgress,
        skipped: &mut dyn FnMut(&Endpoint, &SessionError),
    ) -> Result<PartialPull, SessionError> {
        self.on_sources(docker, skipped, |endpoint, client| {
            let reference = &endpoint.reference;
            let options = FetchOptions::default();
            pull_partial(
                client, reference, layout, repository, ref_name, &options, progress,
            )
            .map_err(|source| SessionError::Pull {
                reference: reference.to_string(),
                source: Box::new(source),
            })
        })
    }

    /// Push the cosign signature manifest tagged `sha256-<hex>.sig` of `signed` in `layout`
    /// (and its blobs) to the registry's own location for `docker`.
    pub fn push_signature_tag(
        &self,
        docker: &DockerRef,
        layout: &Path,
        signed: &BlobDigest,
    ) -> Result<BlobDigest, SessionError> {
        let (client, endpoint) = self.at_registry(docker)?;
        let tag = signature_tag(signed);
        Ok(push_layout_tag(&client, layout, &tag, &endpoint.reference)?)
    }
}

/// The cosign signature tag of a manifest: `sha256-<hex>.sig`.
pub fn signature_tag(signed: &BlobDigest) -> String {
    format!("sha256-{}.sig", signed.hex())
}

/// `f` on each of `endpoints` (the sources of `docker`, in order) until one succeeds: the
/// failure of one that is not the last goes to `skipped` and the next is tried; the last one's
/// failure is the result.
pub fn first_success<T>(
    docker: &DockerRef,
    endpoints: Vec<Endpoint>,
    skipped: &mut dyn FnMut(&Endpoint, &SessionError),
    mut f: impl FnMut(&Endpoint) -> Result<T, SessionError>,
) -> Result<T, SessionError> {
    let count = endpoints.len();
    for (i, endpoint) in endpoints.into_iter().enumerate() {
        match f(&endpoint) {
            Ok(done) => return Ok(done),
            Err(e) if i + 1 < count => skipped(&endpoint, &e),
            Err(e) => return Err(e),
        }
    }
    Err(SessionError::NoSource(docker.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker(text: &str) -> DockerRef {
        DockerRef::parse(text).expect("a reference")
    }

    fn endpoint(text: &str, mirror: bool) -> Endpoint {
        Endpoint {
            reference: docker(text),
            insecure: false,
            mirror,
        }
    }

    fn refused(endpoint: &Endpoint) -> SessionError {
        SessionError::NoSource(endpoint.reference.host.clone())
    }

    #[test]
    fn mirrors_are_tried_in_order_and_a_failing_one_is_reported_and_skipped() {
        let image = docker("docker://registry.example/app:1");
        let endpoints = vec![
            endpoint("docker://m1.example/app:1", true),
            endpoint("docker://m2.example/app:1", true),
            endpoint("docker://registry.example/app:1", false),
        ];
        let mut tried = Vec::new();
        let mut reported = Vec::new();
        let got = first_success(
            &image,
            endpoints,
            &mut |e, error| reported.push(format!("{} {error}", e.reference.host)),
            |e| {
                tried.push(e.reference.host.clone());
                if e.reference.host == "m2.example" {
                    Ok(7)
                } else {
                    Err(refused(e))
                }
            },
        );
        assert_eq!(got.expect("the second mirror answers"), 7);
        assert_eq!(tried, ["m1.example", "m2.example"]);
        assert_eq!(reported, ["m1.example no source for m1.example"]);
    }

    #[test]
    fn the_last_source_failing_is_the_error_and_is_not_reported_as_skipped() {
        let image = docker("docker://registry.example/app:1");
        let endpoints = vec![
            endpoint("docker://m1.example/app:1", true),
            endpoint("docker://registry.example/app:1", false),
        ];
        let mut reported = Vec::new();
        let got: Result<(), _> = first_success(
            &image,
            endpoints,
            &mut |e, _| reported.push(e.reference.host.clone()),
            |e| Err(refused(e)),
        );
        let error = got.expect_err("every source fails");
        assert_eq!(error.to_string(), "no source for registry.example");
        assert_eq!(reported, ["m1.example"]);
    }

    #[test]
    fn no_endpoint_at_all_names_the_image() {
        let image = docker("docker://registry.example/app:1");
        let got: Result<(), _> = first_success(&image, Vec::new(), &mut |_, _| {}, |_| Ok(()));
        assert_eq!(
            got.expect_err("nothing to try").to_string(),
            "no source for docker://registry.example/app:1"
        );
    }

    #[test]
    fn settings_become_client_options_and_creds_win_over_an_authfile() {
        let settings = RegistrySettings {
            tls_verify: false,
            cert_dir: Some("/certs".into()),
            authfile: Some("/auth.json".into()),
            creds: Some("user:secret".into()),
            registries_conf: None,
        };
        let options = settings.client_options().expect("valid settings");
        assert!(!options.tls_verify);
        assert_eq!(options.cert_dirs, [PathBuf::from("/certs")]);
        assert!(
            matches!(&options.auth, AuthSource::Explicit(c) if c.username == "user"),
            "{:?}",
            options.auth
        );
        let authfile = RegistrySettings {
            creds: None,
            ..settings.clone()
        };
        assert!(matches!(
            authfile.client_options().expect("valid").auth,
            AuthSource::File(ref f) if f == Path::new("/auth.json")
        ));
        let plain = RegistrySettings {
            tls_verify: true,
            ..RegistrySettings::default()
        }
        .client_options()
        .expect("defaults");
        assert!(plain.tls_verify);
        assert!(matches!(plain.auth, AuthSource::Default));
        assert_eq!(plain.cert_dirs, ClientOptions::default().cert_dirs);
    }

    #[test]
    fn bad_creds_are_refused_naming_the_option() {
        let settings = RegistrySettings {
            creds: Some("no-colon".into()),
            ..RegistrySettings::default()
        };
        let error = settings.client_options().expect_err("not USER:PASSWORD");
        assert!(error.to_string().starts_with("--creds: "), "{error}");
    }

    #[test]
    fn an_insecure_endpoint_turns_certificate_checks_off_for_itself_only() {
        let session = RegistrySession::new(ClientOptions::default(), RegistriesConf::default());
        let mut insecure = endpoint("docker://m1.example/app:1", true);
        insecure.insecure = true;
        assert!(!session.options_for(&insecure).tls_verify);
        let secure = endpoint("docker://registry.example/app:1", false);
        assert!(session.options_for(&secure).tls_verify);
    }

    #[test]
    fn the_signature_tag_is_cosigns() {
        let digest = BlobDigest::of(b"manifest");
        assert_eq!(
            signature_tag(&digest),
            format!("sha256-{}.sig", digest.hex())
        );
    }
}
