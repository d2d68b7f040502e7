//! The policy model the verifier evaluates: scopes per transport, requirements, key
//! sources, and the cfsgate extensions. Every element keeps the [`Location`] it was read
//! from so that lint findings and explanations can point into the file.
//!
//! | JSON | type |
//! |---|---|
//! | top-level object | [`Policy`] |
//! | `default` | [`Scope`] named `""` under [`ScopeKind::GlobalDefault`] |
//! | `transports.T` | [`TransportScopes`] |
//! | `transports.T.S` | [`Scope`] |
//! | one element of a requirement list | [`Requirement`] + its location |
//! | `signedIdentity` | [`crate::SignedIdentity`] |
//! | `sigstoreSigned.cfsgate` | [`SigstoreExtension`] |
//! | top-level `cfsgate.modes` | [`Mode`] of each scope |

use std::collections::HashMap;
use std::path::PathBuf;

use crate::error::Location;
use crate::identity::SignedIdentity;
use crate::time::Timestamp;

/// A parsed, validated policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The global `default` requirements (used when no transport scope matches).
    pub default: Scope,
    /// `transports`, in file order.
    pub transports: Vec<TransportScopes>,
    /// Location of the top-level `cfsgate` object, when present.
    pub extension_location: Option<Location>,
    pub(crate) transport_index: HashMap<String, usize>,
}

impl Policy {
    /// The scopes of one transport, if the policy has a section for it.
    pub fn transport(&self, name: &str) -> Option<&TransportScopes> {
        self.transport_index.get(name).map(|&i| &self.transports[i])
    }

    /// Every scope: the global default first, then each transport's scopes in file order.
    pub fn all_scopes(&self) -> impl Iterator<Item = (Option<&TransportScopes>, &Scope)> {
        std::iter::once((None, &self.default)).chain(
            self.transports
                .iter()
                .flat_map(|t| t.scopes.iter().map(move |s| (Some(t), s))),
        )
    }
}

/// `transports.NAME`: the scopes of one transport.
#[derive(Debug, Clone, PartialEq)]
pub struct TransportScopes {
    /// The transport name as written (`docker`, `oci`, ...).
    pub name: String,
    /// Where the transport's key is.
    pub location: Location,
    /// Its scopes, in file order.
    pub scopes: Vec<Scope>,
    /// Indexes into `scopes`, sorted by scope name (names are unique): a binary search
    /// finds a scope without hashing or a second copy of every name.
    pub(crate) by_name: Vec<u32>,
}

impl TransportScopes {
    /// Sorts `scopes`' indexes by name; returns the index of the first scope (in file
    /// order) whose name repeats an earlier one, if any.
    pub(crate) fn index_names(&mut self) -> Option<usize> {
        let names: Vec<&str> = self.scopes.iter().map(|s| s.name.as_str()).collect();
        let (by_name, repeat) = crate::json::sorted_order(&names);
        self.by_name = by_name;
        repeat
    }

    /// The scope with exactly this name.
    pub fn scope(&self, name: &str) -> Option<&Scope> {
        self.position(name).and_then(|i| self.scopes.get(i))
    }

    /// The index in `scopes` of the scope with exactly this name.
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        let name_of = |i: u32| self.scopes.get(i as usize).map_or("", |s| s.name.as_str());
        let at = self
            .by_name
            .binary_search_by(|&i| name_of(i).cmp(name))
            .ok()?;
        self.by_name.get(at).map(|&i| i as usize)
    }
}

/// Whether a scope's rejection is final or only recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// A failing requirement rejects the image (the containers/image behaviour).
    #[default]
    Enforce,
    /// A failing requirement is recorded as the would-be rejection, and the image admitted.
    Warn,
}

impl Mode {
    /// The name used in `cfsgate.modes` and in decisions (`"enforce"`, `"warn"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of scope key a [`Scope`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeKind {
    /// The top-level `default`.
    GlobalDefault,
    /// A transport's `""` scope.
    TransportDefault,
    /// Any other key of a transport section.
    Named,
}

/// One scope: its name, requirements, and mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    /// The key as written (`""` for defaults).
    pub name: String,
    /// Which kind of key it is.
    pub kind: ScopeKind,
    /// Location of the key (of `default` for the global default).
    pub location: Location,
    /// The requirements, all of which must be satisfied; never empty.
    pub requirements: Vec<Requirement>,
    /// Location of each requirement object, parallel to `requirements`.
    pub requirement_locations: Vec<Location>,
    /// From `cfsgate.modes`; [`Mode::Enforce`] when not set.
    pub mode: Mode,
    /// Location of the mode setting, when set explicitly.
    pub mode_location: Option<Location>,
}

/// One requirement of a scope.
#[derive(Debug, Clone, PartialEq)]
pub enum Requirement {
    /// `insecureAcceptAnything`: satisfied by any image.
    InsecureAcceptAnything,
    /// `reject`: satisfied by no image.
    Reject,
    /// `signedBy` (GPG simple signing). `keyType: GPGKeys` is evaluated; the other key
    /// types (reserved, unimplemented by containers/image too) reject with
    /// [`Requirement::unsupported_reason`].
    SignedBy(SignedBy),
    /// `signedBaseLayer`: parsed and validated; containers/image never implemented it
    /// (it always rejects), and neither does cfsgate.
    SignedBaseLayer {
        /// `baseLayerIdentity`: the identity the base layer's signature must carry.
        base_layer_identity: SignedIdentity,
    },
    /// `sigstoreSigned` (cosign-style signatures), with the optional cfsgate extension.
    SigstoreSigned(SigstoreSigned),
    /// cfsgate extension `composefs`: the image must carry the composefs seal.
    Composefs(ComposefsRequirement),
}

impl Requirement {
    /// The JSON `type` string.
    pub fn type_name(&self) -> &'static str {
        match self {
            Requirement::InsecureAcceptAnything => "insecureAcceptAnything",
            Requirement::Reject => "reject",
            Requirement::SignedBy(_) => "signedBy",
            Requirement::SignedBaseLayer { .. } => "signedBaseLayer",
            Requirement::SigstoreSigned(_) => "sigstoreSigned",
            Requirement::Composefs(_) => "composefs",
        }
    }

    /// Why cfsgate cannot evaluate this requirement (the verifier must reject with this
    /// message), or `None` when it can.
    pub fn unsupported_reason(&self) -> Option<&'static str> {
        match self {
            Requirement::SignedBy(s) => match s.key_type {
                SignedByKeyType::GpgKeys => None,
                SignedByKeyType::SignedByGpgKeys => {
                    Some("signedBy keyType \"signedByGPGKeys\" is not implemented (by containers/image either)")
                }
                SignedByKeyType::X509Certificates => {
                    Some("signedBy keyType \"X509Certificates\" is not implemented (by containers/image either)")
                }
                SignedByKeyType::SignedByX509Cas => {
                    Some("signedBy keyType \"signedByX509CAs\" is not implemented (by containers/image either)")
                }
            },
            Requirement::SignedBaseLayer { .. } => {
                Some("signedBaseLayer is not implemented (by containers/image either)")
            }
            _ => None,
        }
    }
}

/// `signedBy.keyType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedByKeyType {
    /// `GPGKeys`: the keys are OpenPGP public keys (the only type containers/image implements).
    GpgKeys,
    /// `signedByGPGKeys`: a name containers/image reserves and does not implement.
    SignedByGpgKeys,
    /// `X509Certificates`: reserved by containers/image, not implemented.
    X509Certificates,
    /// `signedByX509CAs`: reserved by containers/image, not implemented.
    SignedByX509Cas,
}

impl SignedByKeyType {
    /// The `keyType` string as written in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            SignedByKeyType::GpgKeys => "GPGKeys",
            SignedByKeyType::SignedByGpgKeys => "signedByGPGKeys",
            SignedByKeyType::X509Certificates => "X509Certificates",
            SignedByKeyType::SignedByX509Cas => "signedByX509CAs",
        }
    }
    /// The key type a `keyType` string names, or `None` for an unknown one.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "GPGKeys" => SignedByKeyType::GpgKeys,
            "signedByGPGKeys" => SignedByKeyType::SignedByGpgKeys,
            "X509Certificates" => SignedByKeyType::X509Certificates,
            "signedByX509CAs" => SignedByKeyType::SignedByX509Cas,
            _ => return None,
        })
    }
}

/// `signedBy`.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedBy {
    /// `keyType`.
    pub key_type: SignedByKeyType,
    /// Exactly one of `keyPath`, `keyPaths`, `keyData`, kept as written.
    pub keys: KeyList,
    /// `signedIdentity` (the default when absent).
    pub signed_identity: SignedIdentity,
}

/// Which upstream field listed a set of keys, so serialisation writes the same field back.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyList {
    /// `keyPath` / `rekorPublicKeyPath`.
    Path(KeyFile),
    /// `keyPaths` / `rekorPublicKeyPaths`.
    Paths(Vec<KeyFile>),
    /// `keyData` / `rekorPublicKeyData` (base64 in JSON, raw bytes here).
    Data(Vec<u8>),
    /// `keyDatas` / `rekorPublicKeyDatas`.
    Datas(Vec<Vec<u8>>),
}

impl KeyList {
    /// Each key as a [`KeyMaterial`], with the location it was written at.
    pub fn materials(&self, location: Location) -> Vec<(KeyMaterial, Location)> {
        match self {
            KeyList::Path(file) => vec![(KeyMaterial::File(file.path.clone()), file.location)],
            KeyList::Paths(files) => files
                .iter()
                .map(|f| (KeyMaterial::File(f.path.clone()), f.location))
                .collect(),
            KeyList::Data(data) => vec![(KeyMaterial::Data(data.clone()), location)],
            KeyList::Datas(datas) => datas
                .iter()
                .map(|d| (KeyMaterial::Data(d.clone()), location))
                .collect(),
        }
    }
    /// Number of keys listed.
    pub fn len(&self) -> usize {
        match self {
            KeyList::Path(_) | KeyList::Data(_) => 1,
            KeyList::Paths(files) => files.len(),
            KeyList::Datas(datas) => datas.len(),
        }
    }
    /// Whether no key is listed (possible only with an empty `keyPaths` / `keyDatas`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An absolute key file path and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyFile {
    /// The path as written (checked to be absolute).
    pub path: PathBuf,
    /// Where the path string is in the policy.
    pub location: Location,
}

/// Where a public key comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyMaterial {
    /// A PEM file (absolute path).
    File(PathBuf),
    /// PEM text given inline (decoded from the policy's base64).
    Data(Vec<u8>),
    /// Keys in a kernel keyring (cfsgate extension).
    Keyring {
        /// The keyring's name.
        keyring: String,
        /// Which of its keys.
        selector: KeyringSelector,
    },
}

/// Which keys of a kernel keyring are trusted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyringSelector {
    /// Every key linked into the keyring.
    All,
    /// The keys with this description.
    Description(String),
    /// The key with this serial number.
    Serial(i32),
}

/// A key of the cfsgate extension, with its validity window.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustedKey {
    /// The key itself.
    pub material: KeyMaterial,
    /// When signatures by it count.
    pub window: ValidityWindow,
    /// Where the key's entry is in the policy.
    pub location: Location,
}

/// `notBefore` / `notAfter`: when a key may have signed. Both bounds inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ValidityWindow {
    /// `notBefore`: the earliest signing time accepted; unbounded when absent.
    pub not_before: Option<Timestamp>,
    /// `notAfter`: the latest signing time accepted; unbounded when absent.
    pub not_after: Option<Timestamp>,
}

impl ValidityWindow {
    /// Whether `at` lies inside the window.
    pub fn contains(&self, at: Timestamp) -> bool {
        self.not_before.is_none_or(|b| at >= b) && self.not_after.is_none_or(|a| at <= a)
    }
    /// A window that contains no instant at all.
    pub fn is_empty(&self) -> bool {
        matches!((self.not_before, self.not_after), (Some(b), Some(a)) if b > a)
    }
}

/// What anchors trust for `sigstoreSigned`.
#[derive(Debug, Clone, PartialEq)]
pub enum TrustRoot {
    /// Public keys: the upstream field (absent when only `cfsgate.keys` lists keys) and
    /// the extension's keys.
    PublicKeys {
        /// `keyPath` / `keyPaths` / `keyData` / `keyDatas`, as written.
        standard: Option<KeyList>,
        /// `cfsgate.keys`, each with its validity window.
        extension: Vec<TrustedKey>,
    },
    /// `fulcio` (keyless): certificates issued by these CAs, logged in Rekor. Boxed, like
    /// `Pki`, so that the common public-key requirement stays small (every scope holds one).
    Fulcio(Box<Fulcio>),
    /// `pki` (X.509 CA): certificates chaining to these roots.
    Pki(Box<Pki>),
}

/// `fulcio`: exactly one of `caPath`/`caData`, plus `oidcIssuer` and `subjectEmail`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fulcio {
    /// `caPath` / `caData`: the Fulcio CA certificates.
    pub ca: CertSource,
    /// `oidcIssuer`: the OIDC issuer URL the certificate must name.
    pub oidc_issuer: String,
    /// `subjectEmail`: the e-mail address the certificate must name.
    pub subject_email: String,
}

/// `pki`: CA roots (exactly one source), optional intermediates, and at least one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Pki {
    /// `caRootsPath` / `caRootsData`: the trusted root CA certificates.
    pub ca_roots: CertSource,
    /// `caIntermediatesPath` / `caIntermediatesData`, when given.
    pub ca_intermediates: Option<CertSource>,
    /// `subjectEmail` the signing certificate must name, when given.
    pub subject_email: Option<String>,
    /// `subjectHostname` the signing certificate must name, when given.
    pub subject_hostname: Option<String>,
}

/// A certificate bundle from a file or inline.
#[derive(Debug, Clone, PartialEq)]
pub enum CertSource {
    /// A PEM file (`…Path`).
    Path(KeyFile),
    /// PEM bytes given inline (`…Data`, decoded from the policy's base64).
    Data(Vec<u8>),
}

/// `sigstoreSigned`.
#[derive(Debug, Clone, PartialEq)]
pub struct SigstoreSigned {
    /// What anchors trust: public keys, Fulcio or PKI.
    pub trust_root: TrustRoot,
    /// At most one of the `rekorPublicKey*` fields.
    pub rekor_public_keys: Option<KeyList>,
    /// `signedIdentity` (the default when absent).
    pub signed_identity: SignedIdentity,
    /// The cfsgate extension object, when present.
    pub extension: Option<SigstoreExtension>,
}

impl SigstoreSigned {
    /// How many distinct trusted keys must each have signed (1 without the extension).
    pub fn threshold(&self) -> u32 {
        self.extension.as_ref().map_or(1, |e| e.threshold)
    }

    /// Every trusted public key: the upstream key fields (no validity window) followed by
    /// the extension's keys. Empty for fulcio/pki.
    pub fn trusted_keys(&self, requirement_location: Location) -> Vec<TrustedKey> {
        match &self.trust_root {
            TrustRoot::PublicKeys {
                standard,
                extension,
            } => {
                let mut keys: Vec<TrustedKey> = standard
                    .iter()
                    .flat_map(|list| list.materials(requirement_location))
                    .map(|(material, location)| TrustedKey {
                        material,
                        window: ValidityWindow::default(),
                        location,
                    })
                    .collect();
                keys.extend(extension.iter().cloned());
                keys
            }
            TrustRoot::Fulcio(_) | TrustRoot::Pki(_) => Vec::new(),
        }
    }
}

/// The `cfsgate` object inside a `sigstoreSigned` requirement.
#[derive(Debug, Clone, PartialEq)]
pub struct SigstoreExtension {
    /// Where the `cfsgate` object is.
    pub location: Location,
    /// `threshold`: signatures by this many distinct keys are needed (default 1).
    pub threshold: u32,
    /// Where `threshold` was written, when it was.
    pub threshold_location: Option<Location>,
    /// Whether `threshold` was written (for faithful serialisation).
    pub threshold_explicit: bool,
    /// Whether `keys` listed any key (they are in [`TrustRoot::PublicKeys`]).
    pub has_keys: bool,
    /// `bundleIdentity: "digest-only"`: a sigstore bundle (which claims no docker reference)
    /// counts when it signs the manifest digest; the scope is the identity check. Without it
    /// bundles never count (docs/policy.md).
    pub bundle_digest_only: bool,
}

/// Which fs-verity enforcement the mount must use: the workspace's one definition
/// (`cfsgate_sys::verity`); a policy names only `kernel` or `userspace` (the parser refuses
/// `none`).
pub use cfsgate_sys::verity::VerityMode;

/// cfsgate extension requirement `{"type": "composefs", ...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ComposefsRequirement {
    /// `sealed`: the config must carry `containers.composefs.fsverity` and it must equal
    /// the digest of the composefs image built from the layers (default true).
    pub sealed: bool,
    /// `verity`: how the mount must enforce object digests; `None` leaves it to the node.
    pub verity: Option<VerityMode>,
}
