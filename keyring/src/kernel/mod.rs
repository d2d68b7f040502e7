//! Trust anchors kept in the Linux kernel keyring.
//!
//! cfsgate keeps its keys in a dedicated keyring (type `keyring`, default name
//! [`DEFAULT_KEYRING_NAME`]) created by [`KernelKeyring::create`] and linked into the creating
//! user's **user keyring** (`@u`, `KEY_SPEC_USER_KEYRING`), which lives as long as that user has
//! processes (for root: until reboot), independent of login sessions. Keys in it:
//!
//! | kernel key type | payload                                   | verified by                              |
//! |-----------------|-------------------------------------------|------------------------------------------|
//! | `user`          | PEM public key (any [`PublicKey`] type), or a raw 32-byte Ed25519 key | userspace ([`PublicKey::verify`]) after reading the payload |
//! | `asymmetric`    | X.509 certificate (DER) given to `add_key` | the kernel (`KEYCTL_PKEY_VERIFY`, `enc=pkcs1` or `enc=x962`, `hash=sha256`) |
//!
//! The kernel's asymmetric-key support is what the running kernel was built with: this one
//! verifies RSA PKCS#1 v1.5 only (no `CONFIG_CRYPTO_ECDSA`: it refuses even to load ECDSA
//! certificates). Such cases are reported as [`KernelError::KernelCannotUse`], never as a bad
//! signature.
//!
//! ## Permissions
//!
//! The keyring and every key cfsgate adds get the permission mask [`VERIFIER_PERM`] =
//! `0x3f3f000b`:
//!
//! | holder    | bits   | rights                                                   |
//! |-----------|--------|----------------------------------------------------------|
//! | possessor | `3f`   | all (view, read, write, search, link, setattr)           |
//! | owner uid | `3f`   | all, so the admin keeps control even when not possessing |
//! | group     | `00`   | none                                                     |
//! | other     | `0b`   | view + read + search                                     |
//!
//! "other: view, read, search" is what lets a non-root verifier use the keys: *view* makes the
//! keyring visible in `/proc/keys` (how [`KernelKeyring::open`] finds a keyring it does not
//! possess), *read* lists the keyring and reads `user` payloads, *search* is what
//! `KEYCTL_PKEY_VERIFY` requires. Public keys are not secrets; no one but the owner may write,
//! link or change attributes, so a non-root process cannot add a trust anchor. A keyring found
//! through `/proc/keys` is only trusted when owned by root or by the caller itself.
//!
//! Only keys linked directly in the opened keyring are ever used: a serial given to
//! [`KernelKeyring::verify`] that is not in it is refused.

use cfsgate_sys::keyctl as sys;

use std::ffi::CString;

use sha2::{Digest, Sha256};

use crate::error::VerifyError;
use crate::public::{KeyId, PublicKey};

pub use sys::Serial;

/// The keyring name used when none is given.
pub const DEFAULT_KEYRING_NAME: &str = "cfsgate";

/// Permission mask of the keyring and its keys; see the module table.
pub const VERIFIER_PERM: u32 = 0x3f3f_000b;

/// A signature scheme the kernel may verify with an asymmetric key.
struct KernelScheme {
    /// The `KEYCTL_PKEY_*` parameter string.
    info: &'static CStr,
    name: &'static str,
    /// RSA signatures are exactly the modulus size; ECDSA DER signatures vary in length.
    fixed_length: bool,
}

/// What cosign keys use, over a SHA-256 digest: RSA PKCS#1 v1.5, and ECDSA with an X9.62 (DER)
/// signature. Kernels without `CONFIG_CRYPTO_ECDSA` refuse the second (and ECDSA certificates).
const KERNEL_VERIFY_SCHEMES: [KernelScheme; 2] = [
    KernelScheme {
        info: c"enc=pkcs1 hash=sha256",
        name: "RSA PKCS#1 v1.5 SHA-256",
        fixed_length: true,
    },
    KernelScheme {
        info: c"enc=x962 hash=sha256",
        name: "ECDSA (X9.62) SHA-256",
        fixed_length: false,
    },
];

/// `KEYCTL_SUPPORTS_VERIFY` bit of `keyctl_pkey_query.supported_ops`.
const SUPPORTS_VERIFY: u32 = libc::KEYCTL_SUPPORTS_VERIFY;

/// Length of a raw Ed25519 public key payload.
const ED25519_RAW_LEN: usize = 32;

use std::ffi::CStr;

/// Errors of kernel keyring operations.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// No keyring of this name is linked where cfsgate looks for it.
    #[error("kernel keyring {name:?} not found (create it with `cfsgate keyring add`)")]
    NotFound {
        /// The keyring name asked for.
        name: String,
    },
    /// Several visible keyrings have this name.
    #[error("several keyrings named {name:?} are visible ({serials:?}); refusing to guess")]
    Ambiguous {
        /// The keyring name asked for.
        name: String,
        /// Serial numbers of the keyrings that have it.
        serials: Vec<Serial>,
    },
    /// An `add_key(2)` or `keyctl(2)` call failed.
    #[error("kernel keyring {keyring:?}: {operation} failed: {source}")]
    Syscall {
        /// Name (description) of the kernel keyring.
        keyring: String,
        /// What was being done, as a phrase (`"listing the keyring"`, ...).
        operation: String,
        /// The errno the kernel returned.
        #[source]
        source: std::io::Error,
    },
    /// No key in the keyring matches the selector.
    #[error("kernel keyring {keyring:?}: no key {key:?}")]
    NoSuchKey {
        /// Name (description) of the kernel keyring.
        keyring: String,
        /// The selector, as text (a serial or a description).
        key: String,
    },
    /// Several keys in the keyring have the selected description.
    #[error("kernel keyring {keyring:?}: several keys match {key:?}; name it by serial")]
    AmbiguousKey {
        /// Name (description) of the kernel keyring.
        keyring: String,
        /// The description that several keys have.
        key: String,
    },
    /// A keyring name or key description is empty or holds NUL or `;` (which the kernel's
    /// description listing uses as a separator).
    #[error("invalid name or description {0:?} (must not be empty or contain NUL or ';')")]
    BadName(String),
    /// A file to verify (message or signature) cannot be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The payload of a key could not be parsed as a key.
    #[error(transparent)]
    Key(#[from] crate::error::KeyError),
    /// The running kernel lacks support for this key's algorithm (loading the certificate or
    /// verifying with it).
    #[error("kernel keyring {keyring:?}: key {description:?}: this kernel cannot {what} ({algorithm}): {detail}")]
    KernelCannotUse {
        /// Name (description) of the kernel keyring.
        keyring: String,
        /// Description of the key in the keyring.
        description: String,
        /// What the kernel could not do, as a verb phrase.
        what: &'static str,
        /// The key's algorithm.
        algorithm: String,
        /// The kernel's error and what it supports instead.
        detail: String,
    },
    /// The key exists but cannot serve as a trust anchor (wrong key type, unusable payload).
    #[error(
        "kernel keyring {keyring:?}: key {description:?} ({key_type}) cannot be used: {reason}"
    )]
    UnusableKey {
        /// Name (description) of the kernel keyring.
        keyring: String,
        /// Description of the key in the keyring.
        description: String,
        /// The kernel key type (`user`, `asymmetric`, `logon`, ...).
        key_type: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Verifying a signature with a key of the keyring failed.
    #[error("kernel keyring {keyring:?}: key {description:?}: {source}")]
    Verify {
        /// Name (description) of the kernel keyring.
        keyring: String,
        /// Description of the key in the keyring.
        description: String,
        /// Why the signature was refused.
        #[source]
        source: VerifyError,
    },
}

/// The kind of a kernel key, as cfsgate uses it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelKeyType {
    /// A `user` key: its payload is a PEM/DER public key (or a raw 32-byte Ed25519 key), verified
    /// in
    /// userspace.
    User,
    /// An `asymmetric` key: an X.509 certificate the kernel parsed; the kernel verifies with it.
    Asymmetric,
    /// Any other type (a nested keyring, `logon`, …): listed, never used.
    Other(String),
}

impl std::fmt::Display for KernelKeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User => f.write_str("user"),
            Self::Asymmetric => f.write_str("asymmetric"),
            Self::Other(name) => f.write_str(name),
        }
    }
}

/// One key of the keyring.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KernelKeyInfo {
    /// The key's serial number in the kernel.
    pub serial: Serial,
    /// The kernel key type.
    #[serde(rename = "type")]
    pub key_type: KernelKeyType,
    /// The key's description (its name in the keyring).
    pub description: String,
    /// The SHA-256 of the SPKI: known for `user` keys (read from the payload); for
    /// `asymmetric` keys only right after [`KernelKeyring::add_x509`], since the kernel never
    /// gives the certificate back.
    pub key_id: Option<KeyId>,
    /// The key algorithm, when known (see `key_id`).
    pub algorithm: Option<String>,
    /// Why a `user` key's payload cannot be used, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Which key of the keyring to verify with.
#[derive(Clone, Debug)]
pub enum KeySelector {
    /// The key with this serial number.
    Serial(Serial),
    /// The one key with this description.
    Description(String),
}

impl std::fmt::Display for KeySelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Serial(serial) => write!(f, "serial {serial}"),
            Self::Description(description) => f.write_str(description),
        }
    }
}

/// A dedicated keyring of trust anchors.
#[derive(Clone, Debug)]
pub struct KernelKeyring {
    name: String,
    serial: Serial,
}

impl KernelKeyring {
    /// Finds an existing keyring: first in the caller's user keyring, then (for a process that
    /// does not possess it, e.g. a non-root verifier) among the keyrings visible in
    /// `/proc/keys` owned by root or by the caller.
    pub fn open(name: &str) -> Result<Self, KernelError> {
        let c_name = c_string(name)?;
        if let Ok(serial) = sys::search(libc::KEY_SPEC_USER_KEYRING, c"keyring", &c_name) {
            return Ok(Self {
                name: name.to_string(),
                serial,
            });
        }
        let own_uid = rustix::process::getuid().as_raw();
        let proc_keys = std::fs::read_to_string("/proc/keys").unwrap_or_default();
        let mut found = Vec::new();
        for serial in proc_keys
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter_map(|hex| u32::from_str_radix(hex, 16).ok())
            .map(|raw| raw as Serial)
        {
            let Ok(described) = describe(serial) else {
                continue;
            };
            if described.key_type == "keyring"
                && described.description == name
                && (described.uid == 0 || described.uid == own_uid)
            {
                found.push(serial);
            }
        }
        match found.as_slice() {
            [] => Err(KernelError::NotFound {
                name: name.to_string(),
            }),
            [serial] => Ok(Self {
                name: name.to_string(),
                serial: *serial,
            }),
            _ => Err(KernelError::Ambiguous {
                name: name.to_string(),
                serials: found,
            }),
        }
    }

    /// Opens the keyring, creating it in the caller's user keyring (with [`VERIFIER_PERM`])
    /// when the caller has none of that name.
    pub fn create(name: &str) -> Result<Self, KernelError> {
        let c_name = c_string(name)?;
        if let Ok(serial) = sys::search(libc::KEY_SPEC_USER_KEYRING, c"keyring", &c_name) {
            return Ok(Self {
                name: name.to_string(),
                serial,
            });
        }
        let keyring = Self {
            name: name.to_string(),
            serial: 0,
        };
        let serial = sys::add_key(c"keyring", &c_name, None, libc::KEY_SPEC_USER_KEYRING)
            .map_err(|e| keyring.syscall_error("creating the keyring", e))?;
        let keyring = Self { serial, ..keyring };
        sys::setperm(serial, VERIFIER_PERM)
            .map_err(|e| keyring.syscall_error("setting the keyring's permissions", e))?;
        Ok(keyring)
    }

    /// The keyring's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The keyring's serial number.
    pub fn serial(&self) -> Serial {
        self.serial
    }

    /// Sets the permission mask of the keyring itself (not of its keys), e.g. to give a
    /// group instead of everyone access; [`VERIFIER_PERM`] is what [`KernelKeyring::create`]
    /// sets.
    pub fn set_permissions(&self, perm: u32) -> Result<(), KernelError> {
        sys::setperm(self.serial, perm)
            .map_err(|e| self.syscall_error("setting the keyring's permissions", e))
    }

    /// Adds (or replaces) a `user` key holding `public_key` (PEM or DER of any supported type,
    /// or a raw 32-byte Ed25519 key); the payload stored is the canonical SPKI PEM.
    pub fn add_public_key(
        &self,
        description: &str,
        public_key: &[u8],
    ) -> Result<KernelKeyInfo, KernelError> {
        let key = parse_user_payload(public_key, description)?;
        let payload = key.to_pem();
        let c_description = c_string(description)?;
        let serial = sys::add_key(
            c"user",
            &c_description,
            Some(payload.as_bytes()),
            self.serial,
        )
        .map_err(|e| self.syscall_error(&format!("adding user key {description:?}"), e))?;
        sys::setperm(serial, VERIFIER_PERM).map_err(|e| {
            self.syscall_error(&format!("setting permissions of {description:?}"), e)
        })?;
        Ok(KernelKeyInfo {
            serial,
            key_type: KernelKeyType::User,
            description: description.to_string(),
            key_id: Some(key.key_id()),
            algorithm: Some(key.algorithm().to_string()),
            problem: None,
        })
    }

    /// Adds an `asymmetric` key from an X.509 certificate (DER or PEM `CERTIFICATE`), which
    /// the kernel parses and later verifies with.
    pub fn add_x509(
        &self,
        description: &str,
        certificate: &[u8],
    ) -> Result<KernelKeyInfo, KernelError> {
        let cert = crate::x509::Certificate::parse(certificate, description)?;
        let c_description = c_string(description)?;
        let algorithm = cert
            .public_key
            .as_ref()
            .map(|key| key.algorithm().to_string())
            .unwrap_or_else(|e| e.to_string());
        let serial = sys::add_key(c"asymmetric", &c_description, Some(&cert.der), self.serial)
            .map_err(|e| match &cert.public_key {
                Ok(PublicKey::Rsa { .. }) => {
                    self.syscall_error(&format!("adding X.509 key {description:?}"), e)
                }
                _ => KernelError::KernelCannotUse {
                    keyring: self.name.clone(),
                    description: description.to_string(),
                    what: "load this X.509 certificate",
                    algorithm: algorithm.clone(),
                    detail: format!(
                        "add_key(asymmetric) failed: {e}; this kernel supports RSA certificates only"
                    ),
                },
            })?;
        sys::setperm(serial, VERIFIER_PERM).map_err(|e| {
            self.syscall_error(&format!("setting permissions of {description:?}"), e)
        })?;
        Ok(KernelKeyInfo {
            serial,
            key_type: KernelKeyType::Asymmetric,
            description: description.to_string(),
            key_id: cert.public_key.as_ref().ok().map(PublicKey::key_id),
            algorithm: Some(algorithm),
            problem: None,
        })
    }

    /// Every key linked in the keyring.
    pub fn list(&self) -> Result<Vec<KernelKeyInfo>, KernelError> {
        let raw =
            sys::read(self.serial).map_err(|e| self.syscall_error("listing the keyring", e))?;
        let mut keys = Vec::new();
        for chunk in raw.chunks_exact(std::mem::size_of::<Serial>()) {
            let serial = Serial::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            // A key invalidated or unreadable between the two calls is simply not listed.
            let Ok(described) = describe(serial) else {
                continue;
            };
            let mut info = KernelKeyInfo {
                serial,
                key_type: match described.key_type.as_str() {
                    "user" => KernelKeyType::User,
                    "asymmetric" => KernelKeyType::Asymmetric,
                    other => KernelKeyType::Other(other.to_string()),
                },
                description: described.description,
                key_id: None,
                algorithm: None,
                problem: None,
            };
            if info.key_type == KernelKeyType::User {
                match self.user_key(serial, &info.description) {
                    Ok(key) => {
                        info.key_id = Some(key.key_id());
                        info.algorithm = Some(key.algorithm().to_string());
                    }
                    Err(e) => info.problem = Some(e.to_string()),
                }
            }
            keys.push(info);
        }
        Ok(keys)
    }

    /// Removes (invalidates) every key of the keyring with this description; returns how many.
    pub fn remove(&self, description: &str) -> Result<usize, KernelError> {
        let matching: Vec<_> = self
            .list()?
            .into_iter()
            .filter(|info| info.description == description)
            .collect();
        if matching.is_empty() {
            return Err(KernelError::NoSuchKey {
                keyring: self.name.clone(),
                key: description.to_string(),
            });
        }
        for info in &matching {
            // Invalidation makes the key unusable at once for every process, even one that
            // kept its serial; unlinking alone would leave it usable until collected.
            sys::invalidate(info.serial)
                .or_else(|_| sys::unlink(info.serial, self.serial))
                .map_err(|e| self.syscall_error(&format!("removing {description:?}"), e))?;
        }
        Ok(matching.len())
    }

    /// Removes the keyring itself (and so every key only it holds).
    pub fn destroy(self) -> Result<(), KernelError> {
        sys::invalidate(self.serial)
            .or_else(|_| sys::unlink(self.serial, libc::KEY_SPEC_USER_KEYRING))
            .map_err(|e| self.syscall_error("removing the keyring", e))
    }

    /// Verifies `signature` over exactly `message` with one key of the keyring: a `user` key in
    /// userspace, an `asymmetric` key by the kernel. Returns the key used.
    pub fn verify(
        &self,
        key: &KeySelector,
        message: &[u8],
        signature: &[u8],
    ) -> Result<KernelKeyInfo, KernelError> {
        let info = self.find(key)?;
        match info.key_type {
            KernelKeyType::User => {
                let public = self.user_key(info.serial, &info.description)?;
                public
                    .verify(message, signature)
                    .map_err(|source| KernelError::Verify {
                        keyring: self.name.clone(),
                        description: info.description.clone(),
                        source,
                    })?;
            }
            KernelKeyType::Asymmetric => self.kernel_verify(&info, message, signature)?,
            KernelKeyType::Other(ref other) => {
                return Err(KernelError::UnusableKey {
                    keyring: self.name.clone(),
                    description: info.description.clone(),
                    key_type: other.clone(),
                    reason: "only user and asymmetric keys hold trust anchors".to_string(),
                })
            }
        }
        Ok(info)
    }

    fn kernel_verify(
        &self,
        info: &KernelKeyInfo,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), KernelError> {
        // The first scheme the kernel accepts for this key (PKEY_QUERY) is the key's own.
        let mut refusals = Vec::new();
        let mut chosen = None;
        for scheme in &KERNEL_VERIFY_SCHEMES {
            match sys::pkey_query(info.serial, scheme.info) {
                Ok(query) if query.supported_ops & SUPPORTS_VERIFY != 0 => {
                    chosen = Some((scheme, query));
                    break;
                }
                Ok(_) => refusals.push(format!(
                    "{}: the key does not support verification",
                    scheme.name
                )),
                Err(e) => refusals.push(format!("{}: KEYCTL_PKEY_QUERY: {e}", scheme.name)),
            }
        }
        let Some((scheme, query)) = chosen else {
            return Err(KernelError::KernelCannotUse {
                keyring: self.name.clone(),
                description: info.description.clone(),
                what: "verify with this key",
                algorithm: "RSA PKCS#1 v1.5 or ECDSA, SHA-256".to_string(),
                detail: refusals.join("; "),
            });
        };
        let max = usize::from(query.max_sig_size);
        let length_ok = if scheme.fixed_length {
            signature.len() == max
        } else {
            signature.len() <= max
        };
        if !length_ok {
            return Err(KernelError::Verify {
                keyring: self.name.clone(),
                description: info.description.clone(),
                source: VerifyError::MalformedSignature(
                    "signature length does not fit the key's signature size",
                ),
            });
        }
        let digest = Sha256::digest(message);
        sys::pkey_verify(info.serial, scheme.info, &digest, signature).map_err(|e| {
            match e.raw_os_error() {
                // EINVAL after PKEY_QUERY accepted the same key and parameters means the
                // signature itself was refused (e.g. its value is not below the modulus, or
                // its DER does not parse).
                Some(libc::EKEYREJECTED) | Some(libc::EBADMSG) | Some(libc::EINVAL) => {
                    KernelError::Verify {
                        keyring: self.name.clone(),
                        description: info.description.clone(),
                        source: VerifyError::BadSignature,
                    }
                }
                _ => self.syscall_error(
                    &format!(
                        "KEYCTL_PKEY_VERIFY ({}) with {:?}",
                        scheme.name, info.description
                    ),
                    e,
                ),
            }
        })
    }

    fn find(&self, selector: &KeySelector) -> Result<KernelKeyInfo, KernelError> {
        let keys = self.list()?;
        let mut matching = keys.into_iter().filter(|info| match selector {
            KeySelector::Serial(serial) => info.serial == *serial,
            KeySelector::Description(description) => info.description == *description,
        });
        let first = matching.next().ok_or_else(|| KernelError::NoSuchKey {
            keyring: self.name.clone(),
            key: selector.to_string(),
        })?;
        if matching.next().is_some() {
            return Err(KernelError::AmbiguousKey {
                keyring: self.name.clone(),
                key: selector.to_string(),
            });
        }
        Ok(first)
    }

    fn user_key(&self, serial: Serial, description: &str) -> Result<PublicKey, KernelError> {
        let payload = sys::read(serial)
            .map_err(|e| self.syscall_error(&format!("reading key {description:?}"), e))?;
        let source = format!("kernel key {description:?} in keyring {:?}", self.name);
        parse_user_payload(&payload, &source)
    }

    fn syscall_error(&self, operation: &str, source: std::io::Error) -> KernelError {
        KernelError::Syscall {
            keyring: self.name.clone(),
            operation: operation.to_string(),
            source,
        }
    }
}

/// A `user` key payload: PEM/DER public key, or a raw 32-byte Ed25519 key.
fn parse_user_payload(payload: &[u8], source: &str) -> Result<PublicKey, KernelError> {
    if let Ok(raw) = <&[u8; ED25519_RAW_LEN]>::try_from(payload) {
        return Ok(PublicKey::from_ed25519_raw(raw, source)?);
    }
    Ok(PublicKey::from_bytes(payload, source)?)
}

/// A parsed `KEYCTL_DESCRIBE` answer.
struct Described {
    key_type: String,
    uid: u32,
    description: String,
}

/// `type;uid;gid;perm;description` — the description is last and may itself contain ';'.
fn describe(serial: Serial) -> std::io::Result<Described> {
    let raw = sys::describe(serial)?;
    let text = String::from_utf8_lossy(&raw);
    let mut fields = text.splitn(5, ';');
    let bad = || std::io::Error::from_raw_os_error(libc::EINVAL);
    let key_type = fields.next().ok_or_else(bad)?.to_string();
    let uid = fields
        .next()
        .and_then(|uid| uid.parse().ok())
        .ok_or_else(bad)?;
    let _gid = fields.next().ok_or_else(bad)?;
    let _perm = fields.next().ok_or_else(bad)?;
    let description = fields.next().ok_or_else(bad)?.to_string();
    Ok(Described {
        key_type,
        uid,
        description,
    })
}

fn c_string(name: &str) -> Result<CString, KernelError> {
    if name.is_empty() || name.contains(';') {
        return Err(KernelError::BadName(name.to_string()));
    }
    CString::new(name).map_err(|_| KernelError::BadName(name.to_string()))
}
