//! `cfsgate policy check`: findings about a policy that parses but is probably not what
//! its author meant.
//!
//! | check | severity |
//! |---|---|
//! | a `docker` scope no image can ever reach (not in normalised form, e.g. `busybox`, `docker.io/busybox`, `index.docker.io/x`, a bad `*.` wildcard) | warning |
//! | scopes of a transport containers/image does not know (never consulted) | warning |
//! | the global `default` accepts anything (`insecureAcceptAnything` only) | warning |
//! | a transport default `""` that accepts anything | info |
//! | a key file (or `keyData`) that does not exist, is not a regular file (a FIFO, `/dev/zero`: never opened blocking, never read without bound), holds no PEM public key, holds a key cfsgate cannot use, or holds several PEM blocks | error |
//! | a CA file or inline CA data (`fulcio`, `pki`) that does not exist, holds no PEM certificate, or holds none that parses (roots: at least one must, as containers/image's `AppendCertsFromPEM` needs; `pki` intermediates: every block must be a certificate) | error |
//! | `threshold` larger than the number of distinct keys (the same key listed twice — a copy, DER and PEM, a compressed point — counts once, as in evaluation) | error |
//! | the same key listed twice with the same window (and the threshold still reachable) | warning |
//! | a validity window with `notBefore` after `notAfter` | error |
//! | a key listed both in a standard field and in `cfsgate.keys` (its window is bypassed) | warning |
//! | the same key trusted under several scopes | info |
//! | a `signedBy` key file (or `keyData`) that does not exist, is not a regular file, or holds no OpenPGP key (neither an armoured `PGP PUBLIC KEY BLOCK` nor a binary key packet) | error |
//! | requirements cfsgate will always reject (`signedBy` with a `keyType` other than `GPGKeys`, `signedBaseLayer`) | warning |
//!
//! Key files are looked up under `root` (`/` for the running system), so a policy for an
//! image or chroot can be checked from outside it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use cfsgate_keyring::{read_trust_file, KeyError, KeyId, PublicKey, TrustFileError};

use crate::error::Location;
use crate::model::*;
use crate::reference::{valid_domain, DockerReference};
use crate::transport::is_known_transport;

/// Largest key or certificate file read by lint: the limit every trust file is read under.
pub const MAX_KEY_FILE_BYTES: u64 = cfsgate_keyring::MAX_TRUST_FILE_BYTES;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth knowing, likely intended (a transport default that accepts anything).
    Info,
    /// Probably not what was meant (an accept-anything default, a scope that never matches,
    /// ...).
    Warning,
    /// The requirement can never pass as written (an empty validity window, a threshold
    /// above the distinct keys, unusable key data).
    Error,
}

impl Severity {
    /// The lowercase name, as printed (`"warning"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One finding, located in the policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintFinding {
    /// How serious it is.
    pub severity: Severity,
    /// Where in the policy file it is.
    pub location: Location,
    /// What was found, as a sentence.
    pub message: String,
}

impl std::fmt::Display for LintFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.location,
            self.severity.as_str(),
            self.message
        )
    }
}

/// Runs every check; findings are sorted by location.
pub fn lint(policy: &Policy, root: &Path) -> Vec<LintFinding> {
    let mut findings = Vec::new();
    let mut push = |severity, location, message: String| {
        findings.push(LintFinding {
            severity,
            location,
            message,
        })
    };
    if accepts_anything(&policy.default) {
        push(
            Severity::Warning,
            policy.default.location,
            "the global default accepts any image (insecureAcceptAnything): images that match no scope are admitted unchecked".into(),
        );
    }
    for transport in &policy.transports {
        if !is_known_transport(&transport.name) {
            push(
                Severity::Warning,
                transport.location,
                format!(
                    "transport {:?} is unknown to containers/image; its scopes are never consulted",
                    transport.name
                ),
            );
        }
        for scope in &transport.scopes {
            if scope.kind == ScopeKind::TransportDefault && accepts_anything(scope) {
                push(
                    Severity::Info,
                    scope.location,
                    format!(
                        "every {} image without a more specific scope is accepted unchecked",
                        transport.name
                    ),
                );
            }
            if transport.name == "docker" || transport.name == "atomic" {
                if let Some(reason) = unreachable_docker_scope(&scope.name) {
                    push(
                        Severity::Warning,
                        scope.location,
                        format!("scope {:?} can never match: {reason}", scope.name),
                    );
                }
            }
        }
    }

    // Keys: existence and content, thresholds, windows, reuse across scopes.
    let mut key_uses: HashMap<KeyMaterial, Vec<(String, Location)>> = HashMap::new();
    for (transport, scope) in policy.all_scopes() {
        let scope_label = match transport {
            None => "default".to_string(),
            Some(t) => format!("transports.{}[{:?}]", t.name, scope.name),
        };
        for (requirement, &location) in scope.requirements.iter().zip(&scope.requirement_locations)
        {
            if let Some(reason) = requirement.unsupported_reason() {
                push(
                    Severity::Warning,
                    location,
                    format!("{reason}: this requirement always rejects"),
                );
            }
            let mut files: Vec<(PathBuf, Location, PemKind)> = Vec::new();
            match requirement {
                Requirement::SignedBy(s) if s.key_type == SignedByKeyType::GpgKeys => {
                    for (material, at) in s.keys.materials(location) {
                        match material {
                            KeyMaterial::File(path) => files.push((path, at, PemKind::OpenPgp)),
                            KeyMaterial::Data(data) => {
                                if let Err(reason) = check_openpgp(&data) {
                                    push(Severity::Error, at, format!("keyData: {reason}"));
                                }
                            }
                            KeyMaterial::Keyring { .. } => {}
                        }
                    }
                }
                Requirement::SignedBy(_) | Requirement::SignedBaseLayer { .. } => {}
                Requirement::SigstoreSigned(s) => {
                    let keys = s.trusted_keys(location);
                    let mut seen_files: HashMap<&KeyMaterial, bool> = HashMap::new();
                    for key in &keys {
                        let from_extension = key.window != ValidityWindow::default()
                            || matches!(key.material, KeyMaterial::Keyring { .. });
                        if let Some(previous) = seen_files.insert(&key.material, from_extension) {
                            if previous != from_extension {
                                push(
                                    Severity::Warning,
                                    key.location,
                                    "this key is also listed without a validity window, so the window is never applied".into(),
                                );
                            }
                        }
                        if key.window.is_empty() {
                            push(
                                Severity::Error,
                                key.location,
                                "empty validity window: notBefore is after notAfter".into(),
                            );
                        }
                        match &key.material {
                            KeyMaterial::File(path) => {
                                files.push((path.clone(), key.location, PemKind::PublicKey))
                            }
                            KeyMaterial::Data(data) => {
                                if let Err(reason) = check_pem(data, PemKind::PublicKey)
                                    .and_then(|()| check_public_key(data))
                                {
                                    push(
                                        Severity::Error,
                                        key.location,
                                        format!("keyData: {reason}"),
                                    );
                                }
                            }
                            KeyMaterial::Keyring { .. } => {}
                        }
                        key_uses
                            .entry(key.material.clone())
                            .or_default()
                            .push((scope_label.clone(), key.location));
                    }
                    let countable = keys.iter().all(|k| {
                        !matches!(
                            k.material,
                            KeyMaterial::Keyring {
                                selector: KeyringSelector::All,
                                ..
                            }
                        )
                    });
                    // Keys are counted as evaluation counts signers: by the key itself (its
                    // canonical SubjectPublicKeyInfo), so a copy, a DER twin of a PEM file or a
                    // compressed point is the same key.
                    let identities: Vec<KeyIdentity> = keys
                        .iter()
                        .map(|k| key_identity(root, &k.material))
                        .collect();
                    let mut first_of: HashMap<&KeyIdentity, usize> = HashMap::new();
                    let mut same_as: Vec<(usize, usize)> = Vec::new();
                    for (i, identity) in identities.iter().enumerate() {
                        match first_of.get(identity) {
                            Some(&first) => same_as.push((i, first)),
                            None => {
                                first_of.insert(identity, i);
                            }
                        }
                    }
                    let distinct = first_of.len();
                    let threshold = s.threshold() as usize;
                    if countable
                        && matches!(s.trust_root, TrustRoot::PublicKeys { .. })
                        && threshold > distinct
                    {
                        let at = s
                            .extension
                            .as_ref()
                            .and_then(|e| e.threshold_location)
                            .unwrap_or(location);
                        let repeats: Vec<String> = same_as
                            .iter()
                            .map(|&(i, first)| {
                                format!(
                                    "the key at {} is the key at {}",
                                    keys[i].location, keys[first].location
                                )
                            })
                            .collect();
                        let message = if repeats.is_empty() {
                            format!("threshold {threshold} is larger than the {distinct} distinct key(s) listed: no image can pass")
                        } else {
                            format!(
                                "threshold {threshold} needs {threshold} distinct keys, but the {} entries are only {distinct} distinct key(s) ({}): a key counts once, so no image can pass",
                                keys.len(),
                                repeats.join("; ")
                            )
                        };
                        push(Severity::Error, at, message);
                    } else {
                        for &(i, first) in &same_as {
                            if keys[i].window == keys[first].window {
                                push(
                                    Severity::Warning,
                                    keys[i].location,
                                    format!(
                                        "the same key as at {} (listed twice, it counts once)",
                                        keys[first].location
                                    ),
                                );
                            }
                        }
                    }
                    if let Some(rekor) = &s.rekor_public_keys {
                        for (material, at) in rekor.materials(location) {
                            match material {
                                KeyMaterial::File(path) => {
                                    files.push((path, at, PemKind::PublicKey))
                                }
                                KeyMaterial::Data(data) => {
                                    if let Err(reason) = check_pem(&data, PemKind::PublicKey)
                                        .and_then(|()| check_public_key(&data))
                                    {
                                        push(
                                            Severity::Error,
                                            at,
                                            format!("rekorPublicKeyData: {reason}"),
                                        );
                                    }
                                }
                                KeyMaterial::Keyring { .. } => {}
                            }
                        }
                    }
                    let mut cert_source =
                        |source: &CertSource, kind: PemKind, what: &str| match source {
                            CertSource::Path(file) => {
                                files.push((file.path.clone(), file.location, kind))
                            }
                            CertSource::Data(data) => {
                                if let Err(reason) = check_certificates(data, kind) {
                                    push(Severity::Error, location, format!("{what}: {reason}"));
                                }
                            }
                        };
                    match &s.trust_root {
                        TrustRoot::Fulcio(f) => cert_source(&f.ca, PemKind::Certificate, "caData"),
                        TrustRoot::Pki(p) => {
                            cert_source(&p.ca_roots, PemKind::Certificate, "caRootsData");
                            if let Some(i) = &p.ca_intermediates {
                                cert_source(i, PemKind::Intermediates, "caIntermediatesData");
                            }
                        }
                        TrustRoot::PublicKeys { .. } => {}
                    }
                }
                _ => {}
            }
            for (path, at, kind) in files {
                if let Err(reason) = check_file(root, &path, kind) {
                    push(Severity::Error, at, format!("{}: {reason}", path.display()));
                }
            }
        }
    }
    let mut reused: Vec<(&KeyMaterial, &Vec<(String, Location)>)> = key_uses
        .iter()
        .filter(|(_, uses)| {
            let first = &uses[0].0;
            uses.iter().any(|(scope, _)| scope != first)
        })
        .collect();
    reused.sort_by_key(|(_, uses)| uses[0].1);
    for (material, uses) in reused {
        let scopes: Vec<&str> = uses.iter().map(|(s, _)| s.as_str()).collect();
        push(
            Severity::Info,
            uses[0].1,
            format!(
                "{} is trusted under several scopes: {}",
                describe(material),
                scopes.join(", ")
            ),
        );
    }
    findings.sort_by_key(|f| (f.location, std::cmp::Reverse(f.severity)));
    findings
}

fn describe(material: &KeyMaterial) -> String {
    match material {
        KeyMaterial::File(path) => format!("key file {}", path.display()),
        KeyMaterial::Data(_) => "an inline key (keyData)".into(),
        KeyMaterial::Keyring { keyring, selector } => match selector {
            KeyringSelector::All => format!("keyring {keyring:?}"),
            KeyringSelector::Description(d) => format!("key {d:?} of keyring {keyring:?}"),
            KeyringSelector::Serial(s) => format!("key {s} of keyring {keyring:?}"),
        },
    }
}

fn accepts_anything(scope: &Scope) -> bool {
    scope
        .requirements
        .iter()
        .all(|r| matches!(r, Requirement::InsecureAcceptAnything))
}

/// Why a `docker` scope key can never equal an identity or namespace produced by
/// [`crate::transport::docker_namespaces`], if it cannot.
fn unreachable_docker_scope(scope: &str) -> Option<String> {
    if scope.is_empty() {
        return None;
    }
    if let Some(domain) = scope.strip_prefix("*.") {
        if domain.is_empty() || domain.contains(['/', ':', '*']) || !valid_domain(domain) {
            return Some(
                "a wildcard must be `*.` followed by a domain without port or path".into(),
            );
        }
        return None;
    }
    if scope.contains('*') {
        return Some("`*` is only allowed as a leading `*.` of a domain wildcard".into());
    }
    match scope.split_once('/') {
        None => {
            // A host-only namespace: reachable only if the normaliser treats it as a domain.
            if !valid_domain(scope) {
                return Some("not a valid registry host".into());
            }
            if scope == "index.docker.io" {
                return Some("images are normalised to docker.io".into());
            }
            if !(scope.contains(['.', ':']) || scope == "localhost") {
                return Some(format!(
                    "a name without `.` or `:` is not a registry host; perhaps \"docker.io/library/{scope}\""
                ));
            }
            None
        }
        Some(_) => match DockerReference::parse_normalized(scope) {
            Err(e) => Some(e.reason),
            Ok(reference) if reference.tag().is_some() && reference.digest().is_some() => {
                Some("a reference with both a tag and a digest is never looked up".into())
            }
            Ok(reference) if reference.to_string() != scope => Some(format!(
                "lookups use the normalised name {:?}",
                reference.to_string()
            )),
            Ok(_) => None,
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PemKind {
    PublicKey,
    /// CA roots (`caPath`, `caRootsPath`): at least one certificate must parse.
    Certificate,
    /// `caIntermediatesPath`: every PEM block must be a certificate that parses.
    Intermediates,
    /// Not PEM: an OpenPGP keyring, binary or armoured (`signedBy`).
    OpenPgp,
}

/// What makes two key entries the same key: the key's id when it parses, else the entry.
#[derive(Debug, PartialEq, Eq, Hash)]
enum KeyIdentity {
    Key(KeyId),
    Entry(KeyMaterial),
}

fn key_identity(root: &Path, material: &KeyMaterial) -> KeyIdentity {
    let parsed = match material {
        KeyMaterial::File(path) => read_under_root(root, path)
            .ok()
            .and_then(|bytes| PublicKey::from_bytes(&bytes, "").ok()),
        KeyMaterial::Data(bytes) => PublicKey::from_bytes(bytes, "").ok(),
        KeyMaterial::Keyring { .. } => None,
    };
    match parsed {
        Some(key) => KeyIdentity::Key(key.key_id()),
        None => KeyIdentity::Entry(material.clone()),
    }
}

/// The file `path` names, looked up under `root`, read as [`read_trust_file`] reads it (type
/// checked before a non-blocking open, bounded).
fn read_under_root(root: &Path, path: &Path) -> Result<Vec<u8>, String> {
    let relative = path.strip_prefix("/").unwrap_or(path);
    read_trust_file(&root.join(relative), MAX_KEY_FILE_BYTES).map_err(|e| match e {
        TrustFileError::Open { source, .. } => format!("cannot read key file: {source}"),
        TrustFileError::NotRegular { kind, .. } => format!("{kind}, not a regular file"),
        TrustFileError::TooLarge { limit, .. } => {
            format!("larger than {limit} bytes; not a PEM key")
        }
        other => other.to_string(),
    })
}

/// The PEM text holds exactly one public key cfsgate can use.
fn check_public_key(bytes: &[u8]) -> Result<(), String> {
    PublicKey::from_bytes(bytes, "key").map(drop).map_err(|e| match e {
        KeyError::SeveralPemBlocks { blocks, .. } => format!(
            "holds {blocks} PEM blocks; a key must be exactly one public key (containers/image would silently use only the first)"
        ),
        other => other.to_string(),
    })
}

fn check_file(root: &Path, path: &Path, kind: PemKind) -> Result<(), String> {
    let bytes = read_under_root(root, path)?;
    if kind == PemKind::OpenPgp {
        return check_openpgp(&bytes);
    }
    if kind == PemKind::PublicKey {
        check_pem(&bytes, kind)?;
        // The key must also be one cfsgate can use (and the only key in the file).
        check_public_key(&bytes)?;
        return Ok(());
    }
    check_certificates(&bytes, kind)
}

/// CA certificates as the verifier reads them: roots like Go's `AppendCertsFromPEM` (blocks
/// other than parseable certificates skipped, at least one needed), intermediates strictly.
fn check_certificates(bytes: &[u8], kind: PemKind) -> Result<(), String> {
    check_pem(bytes, PemKind::Certificate)?;
    // check_pem has made sure it is UTF-8.
    let text = String::from_utf8_lossy(bytes);
    let mut parsed = 0usize;
    let mut rest: &str = &text;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let after = &rest[begin + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = &after[..label_end];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = after.find(&end_marker) else {
            break;
        };
        let block = &rest[begin..begin + 11 + end + end_marker.len()];
        rest = &after[end + end_marker.len()..];
        let cert = (label == "CERTIFICATE")
            .then(|| cfsgate_keyring::x509::Certificate::parse(block.as_bytes(), "CA"))
            .and_then(Result::ok);
        match (cert, kind) {
            (Some(_), _) => parsed += 1,
            (None, PemKind::Intermediates) => {
                return Err(format!(
                    "PEM block {} ({label:?}) is not an X.509 certificate; containers/image refuses the whole intermediates file",
                    parsed + 1
                ))
            }
            (None, _) => {}
        }
    }
    if parsed == 0 {
        return Err("holds no X.509 certificate that parses: no signature can be verified with it (containers/image: \"error loading CA certificates\")".into());
    }
    Ok(())
}

/// The bytes must be PEM text with at least one block of the right kind whose body is
/// valid base64 (`PUBLIC KEY`, `RSA PUBLIC KEY`, `EC PUBLIC KEY`… or `CERTIFICATE`).
fn check_pem(bytes: &[u8], kind: PemKind) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not PEM text (not UTF-8)".to_string())?;
    let mut found_any = false;
    let mut rest = text;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let after = &rest[begin + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(body_end) = body_start.find(&end_marker) else {
            return Err(format!("PEM block {label:?} has no END line"));
        };
        found_any = true;
        let body: String = body_start[..body_end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let label_ok = match kind {
            PemKind::PublicKey => label.ends_with("PUBLIC KEY"),
            PemKind::Certificate | PemKind::Intermediates => label == "CERTIFICATE",
            PemKind::OpenPgp => false,
        };
        if label_ok {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .map_err(|e| format!("PEM block {label:?} is not valid base64: {e}"))?;
            if decoded.is_empty() {
                return Err(format!("PEM block {label:?} is empty"));
            }
            return Ok(());
        }
        rest = &body_start[body_end + end_marker.len()..];
    }
    let wanted = match kind {
        PemKind::PublicKey => "PUBLIC KEY",
        PemKind::Certificate | PemKind::Intermediates => "CERTIFICATE",
        PemKind::OpenPgp => "OpenPGP",
    };
    if found_any {
        Err(format!("contains PEM, but no {wanted} block"))
    } else {
        Err(format!("does not contain PEM {wanted} text"))
    }
}

/// The bytes start like an OpenPGP keyring: an armoured key block, or a binary public or
/// secret key packet (old or new packet format). Only the shape: the verifier reads the
/// certificates themselves, and one with none trusts nothing.
fn check_openpgp(bytes: &[u8]) -> Result<(), String> {
    const ARMOR: [&str; 2] = [
        "-----BEGIN PGP PUBLIC KEY BLOCK-----",
        "-----BEGIN PGP PRIVATE KEY BLOCK-----",
    ];
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
    if ARMOR.iter().any(|a| text.trim_start().starts_with(a)) {
        return Ok(());
    }
    // Packet tags 6 (public key) and 5 (secret key).
    let tag = match bytes.first() {
        None => return Err("empty: holds no OpenPGP key (no key is trusted)".into()),
        Some(&b) if b & 0xC0 == 0xC0 => b & 0x3F,
        Some(&b) if b & 0x80 != 0 => (b >> 2) & 0x0F,
        Some(_) => 0,
    };
    if tag == 5 || tag == 6 {
        Ok(())
    } else {
        Err("holds no OpenPGP key (neither an armoured PGP PUBLIC KEY BLOCK nor a binary key packet)".into())
    }
}
