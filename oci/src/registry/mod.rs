//! Images and signatures from OCI distribution registries (`docker://`).
//!
//! | module | what it owns |
//! |---|---|
//! | [`reference`](mod@reference) | `docker://[HOST[:PORT]/]NAME[:TAG][@DIGEST]` ([`DockerRef`]) |
//! | [`auth`] | credentials: `--creds`, `--authfile`, containers-auth.json(5)'s lookup order |
//! | [`config`] | registries.conf(5): prefix rewrites, mirrors, insecure and blocked registries |
//! | [`tls`] | rustls configurations: system CAs + certs.d, or `--tls-verify=false` |
//! | [`client`] | the `/v2/` API: token and Basic auth, manifests and blobs verified on arrival, Range, retries, pushes, referrers ([`RegistryClient`]) |
//! | [`fetch`] | an image, its config, layers and cosign signatures into a local OCI layout ([`fetch_image`]) |
//! | [`range`] | Range requests for parts of blobs, answered `206` with exactly the bytes asked for |
//! | [`referrers`] | OCI 1.1 referrers (sigstore bundles): pushed and listed through the API or the `sha256-<hex>` tag |
//! | [`staging`] | the layout a pull into a repository is fetched into, sharing its blobs; a `docker://` image staged for a command that reads local images ([`Staged`]) |
//! | [`session`] | one command's registry settings, registries.conf and mirror fallback ([`RegistrySession`]) |
//! | [`wire`] | the registry's and token server's answers parsed: challenges, tokens, manifest media types, referrers indexes |
//! | [`push`] | a local layout's tagged manifest and its blobs pushed ([`push_layout_tag`]) |
//! | [`partial_pull`] | zstd:chunked layers by their tables of contents, fetching only the files the repository lacks ([`pull_partial`]) |
//!
//! Typical use: `fetch_image(&RegistryClient::connect(&r, &opts)?, &r, dir, &FetchOptions::default(), &NoFetchProgress)`,
//! then resolve `oci:DIR@DIGEST` as any other layout.

pub mod auth;
pub mod client;
pub mod config;
pub mod error;
pub mod fetch;
pub mod partial_pull;
pub mod push;
pub mod range;
pub mod reference;
pub mod referrers;
pub mod session;
pub mod staging;
pub mod tls;
pub mod wire;

pub use auth::{AuthSource, Credentials};
pub use client::{Access, ClientOptions, FetchedManifest, RegistryClient};
pub use config::{Endpoint, RegistriesConf};
pub use error::RegistryError;
pub use fetch::{fetch_image, FetchOptions, FetchProgress, Fetched, NoFetchProgress};
pub use partial_pull::{pull_partial, PartialPull, PartialPullError, RegistryRanges};
pub use push::{push_layout_tag, LayoutPushError};
pub use reference::{is_docker, DockerRef};
pub use session::{RegistrySession, RegistrySettings, SessionError};
pub use staging::Staged;
