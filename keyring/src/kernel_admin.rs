//! The kernel keyring as `cfsgate keyring add|list` use it: a trust file added by what it
//! holds, and the keys as text.
//!
//! | function | does |
//! |---|---|
//! | [`add_trust_file`] | a PEM/DER X.509 certificate becomes a kernel-verified `asymmetric` key, anything else is read as a public key (`user` key) |
//! | [`added_line`] | `added TYPE key "DESC" to keyring "NAME" (serial N, ALGORITHM, id KEYID)` |
//! | [`list_row`] | serial, type, key id, algorithm, description, and why a key is unusable, in columns |

use std::path::Path;

use crate::file::{read_trust_file, MAX_TRUST_FILE_BYTES};
use crate::x509::Certificate;
use crate::{KernelError, KernelKeyInfo, KernelKeyring, KeyError};

/// Add the key in the trust file at `path` to `ring` as `description` (see the module table).
pub fn add_trust_file(
    ring: &KernelKeyring,
    description: &str,
    path: &Path,
) -> Result<KernelKeyInfo, KernelError> {
    let bytes = read_trust_file(path, MAX_TRUST_FILE_BYTES).map_err(KeyError::from)?;
    if Certificate::looks_like_certificate(&bytes) {
        ring.add_x509(description, &bytes)
    } else {
        ring.add_public_key(description, &bytes)
    }
}

/// What `keyring add` reports.
pub fn added_line(info: &KernelKeyInfo, ring: &KernelKeyring) -> String {
    format!(
        "added {} key {:?} to keyring {:?} (serial {}, {}, id {})",
        info.key_type,
        info.description,
        ring.name(),
        info.serial,
        info.algorithm.as_deref().unwrap_or("unknown algorithm"),
        info.key_id
            .map(|id| id.to_string())
            .unwrap_or_else(|| "unknown".into()),
    )
}

/// One row of `keyring list`.
pub fn list_row(key: &KernelKeyInfo) -> String {
    let id = key.key_id.map(|id| id.to_string());
    format!(
        "{:>10}  {:<10}  {:<64}  {:<12}  {}{}",
        key.serial,
        key.key_type.to_string(),
        id.as_deref().unwrap_or("-"),
        key.algorithm.as_deref().unwrap_or("-"),
        key.description,
        key.problem
            .as_deref()
            .map(|p| format!("  (unusable: {p})"))
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyType, PrivateKey};

    /// A public key file added to a real kernel keyring of its own, listed, then destroyed.
    #[test]
    fn a_public_key_file_becomes_a_user_key_listed_with_its_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.pub");
        let public = PrivateKey::generate(KeyType::Ed25519).public_key();
        std::fs::write(&path, public.to_pem()).expect("write");
        let name = format!("cfsgate-test-{}-kernel-admin", std::process::id());
        let ring = KernelKeyring::create(&name).expect("keyring");
        let added = add_trust_file(&ring, "signer", &path);
        let listed = ring.list();
        let _ = ring.clone().destroy();
        let added = added.expect("added");
        assert_eq!(added.key_id, Some(public.key_id()));
        let line = added_line(&added, &ring);
        assert!(
            line.starts_with(&format!(
                "added user key \"signer\" to keyring {name:?} (serial "
            )),
            "{line}"
        );
        assert!(
            line.ends_with(&format!(", id {})", public.key_id())),
            "{line}"
        );
        let listed = listed.expect("list");
        assert_eq!(listed.len(), 1);
        let row = list_row(&listed[0]);
        assert!(
            row.contains(&format!("  user        {}  ", public.key_id())),
            "{row}"
        );
        assert!(row.ends_with("  signer"), "{row}");
        let missing = add_trust_file(&ring, "x", &dir.path().join("none.pub"));
        assert!(matches!(missing, Err(KernelError::Key(_))));
    }
}
