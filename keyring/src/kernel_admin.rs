//! The kernel keyring as `cfsgate keyring add|list` use it: a trust file added by what it
//! holds, and the keys as text.
//!
//! | function | does |
//! |---|---|
//! | [`add_trust_file`] | a PEM/DER X.509 certificate becomes a kernel-verified `asymmetric` key, anything else is read as a public key (`user` key) |
//! | [`added_line`] | `added TYPE key "DESC" to keyring "NAME" (serial N, ALGORITHM, id KEYID)` |
//! | [`list_row`] | serial, type, key id, algorithm, description, and why a key is unusable, in columns |
//! | [`list_text`], [`list_json`] | `keyring list`'s output: a row per key, or a pretty JSON array |
//! | [`verify_files`] | a signature file over a message file, checked with a key of the keyring |
//! | [`removed_line`], [`verified_line`] | what `keyring remove` and `keyring verify` report |

use std::path::Path;

use crate::file::{read_trust_file, MAX_TRUST_FILE_BYTES};
use crate::x509::Certificate;
use crate::{KernelError, KernelKeyInfo, KernelKeyring, KeyError, KeySelector};

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

/// Verify the signature in the file `signature` (raw bytes: DER for ECDSA) over the file
/// `message` with the key `description` of the keyring `ring` (asymmetric keys: by the
/// kernel); the files are read before the keyring is opened.
pub fn verify_files(
    ring: &str,
    description: &str,
    message: &Path,
    signature: &Path,
) -> Result<KernelKeyInfo, KernelError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| KernelError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let (message, signature) = (read(message)?, read(signature)?);
    KernelKeyring::open(ring)?.verify(
        &KeySelector::Description(description.to_string()),
        &message,
        &signature,
    )
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

/// `keyring list`: a [`list_row`] line per key.
pub fn list_text(keys: &[KernelKeyInfo]) -> String {
    keys.iter().map(|key| list_row(key) + "\n").collect()
}

/// `keyring list --json`: the keys as a pretty-printed JSON array, newline-terminated.
pub fn list_json(keys: &[KernelKeyInfo]) -> Result<String, serde_json::Error> {
    Ok(serde_json::to_string_pretty(keys)? + "\n")
}

/// What `keyring remove` reports.
pub fn removed_line(removed: usize, description: &str, ring_name: &str) -> String {
    format!("removed {removed} key(s) {description:?} from keyring {ring_name:?}")
}

/// What `keyring verify` reports for a valid signature.
pub fn verified_line(info: &KernelKeyInfo) -> String {
    format!(
        "valid signature by {} key {:?} (serial {})",
        info.key_type, info.description, info.serial
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyType, PrivateKey};

    #[test]
    fn a_removal_names_the_count_the_keys_and_the_keyring() {
        assert_eq!(
            removed_line(2, "signer", "cfsgate"),
            "removed 2 key(s) \"signer\" from keyring \"cfsgate\""
        );
    }

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
        assert_eq!(list_text(&listed), format!("{row}\n"));
        let json: serde_json::Value =
            serde_json::from_str(&list_json(&listed).expect("JSON")).expect("parses");
        assert_eq!(json[0]["description"], "signer");
        assert_eq!(json.as_array().map(Vec::len), Some(1));
        assert_eq!(list_text(&[]), "");
        assert_eq!(
            verified_line(&listed[0]),
            format!(
                "valid signature by user key \"signer\" (serial {})",
                listed[0].serial
            )
        );
        let missing = dir.path().join("none.sig");
        let unread = verify_files(&name, "signer", &path, &missing).expect_err("no signature");
        assert!(matches!(unread, KernelError::Read { ref path, .. } if path == &missing));
        let text = unread.to_string();
        assert!(
            text.starts_with(&format!("reading {}: ", missing.display())),
            "{text}"
        );
        let missing = add_trust_file(&ring, "x", &dir.path().join("none.pub"));
        assert!(matches!(missing, Err(KernelError::Key(_))));
    }
}
