//! Trust material named by a policy, loaded for evaluation: the keys of a `sigstoreSigned`
//! requirement (a PEM file, inline `keyData`, or keys of a kernel keyring picked by
//! description or serial) and its `rekorPublicKey*` entries (ECDSA keys from files or inline
//! PEM only). Files are read by [`PublicKey::from_file`], type-checked and size-limited there.

use cfsgate_keyring::{KernelKeyType, KernelKeyring, PublicKey};
use cfsgate_policy::{KeyMaterial, KeyringSelector, TrustedKey};

use crate::chain::{kernel_key_id, KeyHandle, LoadedKey};
use crate::rekor::RekorKey;

/// Loads one policy key entry (a keyring entry may give several keys).
pub fn load_trusted_key(trusted: &TrustedKey) -> Result<Vec<LoadedKey>, String> {
    let public = |key: PublicKey, label: String| LoadedKey {
        id: key.key_id(),
        label,
        window: trusted.window,
        handle: KeyHandle::Public(key),
    };
    match &trusted.material {
        KeyMaterial::File(path) => PublicKey::from_file(path)
            .map(|key| vec![public(key, format!("file {}", path.display()))])
            .map_err(|e| e.to_string()),
        KeyMaterial::Data(bytes) => PublicKey::from_bytes(bytes, "keyData")
            .map(|key| vec![public(key, "keyData".into())])
            .map_err(|e| e.to_string()),
        KeyMaterial::Keyring { keyring, selector } => {
            // `%TYPE:NAME` special names: the keyring is found by NAME.
            let name = match keyring.strip_prefix('%') {
                Some(rest) => rest.split_once(':').map_or(rest, |(_, name)| name),
                None => keyring.as_str(),
            };
            let ring = KernelKeyring::open(name).map_err(|e| e.to_string())?;
            let listed = ring.list().map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            for info in listed {
                let selected = match selector {
                    KeyringSelector::All => true,
                    KeyringSelector::Description(d) => info.description == *d,
                    KeyringSelector::Serial(s) => info.serial == *s,
                };
                if !selected {
                    continue;
                }
                let id = match (&info.key_type, info.key_id) {
                    (KernelKeyType::User, Some(id)) => id,
                    (KernelKeyType::Asymmetric, _) => kernel_key_id(&ring, info.serial),
                    _ => continue,
                };
                out.push(LoadedKey {
                    id,
                    label: format!(
                        "keyring {name} {} key {:?} (serial {})",
                        info.key_type, info.description, info.serial
                    ),
                    window: trusted.window,
                    handle: KeyHandle::Kernel {
                        keyring: ring.clone(),
                        serial: info.serial,
                    },
                });
            }
            if out.is_empty() {
                return Err(format!("keyring {name}: no usable key matches"));
            }
            Ok(out)
        }
    }
}

/// Loads one `rekorPublicKey*` entry: an ECDSA public key from a file or inline PEM.
pub fn load_rekor_key(material: &KeyMaterial) -> Result<RekorKey, String> {
    let (key, label) = match material {
        KeyMaterial::File(path) => (
            PublicKey::from_file(path),
            format!("file {}", path.display()),
        ),
        KeyMaterial::Data(bytes) => (
            PublicKey::from_bytes(bytes, "rekorPublicKeyData"),
            "rekorPublicKeyData".to_string(),
        ),
        KeyMaterial::Keyring { keyring, .. } => {
            return Err(format!(
                "keyring {keyring}: Rekor keys come from files or inline data only"
            ))
        }
    };
    let key = key.map_err(|e| e.to_string())?;
    RekorKey::new(key, label).map_err(|e| e.to_string())
}
