//! cosign's encrypted private key format (`cosign generate-key-pair`).
//!
//! The PEM block `ENCRYPTED SIGSTORE PRIVATE KEY` holds JSON (the go-securesystemslib
//! "encrypted" envelope); byte fields are standard base64 with padding, as Go encodes `[]byte`:
//!
//! | JSON field            | meaning                                                       |
//! |-----------------------|---------------------------------------------------------------|
//! | `kdf.name`            | `"scrypt"`                                                    |
//! | `kdf.params.N/r/p`    | scrypt cost parameters (cosign: N = 32768, r = 8, p = 1)      |
//! | `kdf.salt`            | scrypt salt                                                   |
//! | `cipher.name`         | `"nacl/secretbox"` (XSalsa20-Poly1305)                        |
//! | `cipher.nonce`        | 24-byte secretbox nonce                                       |
//! | `ciphertext`          | secretbox of the PKCS#8 DER private key                       |
//!
//! key = scrypt(passphrase, salt, N, r, p, 32 bytes); plaintext = secretbox_open(key, nonce,
//! ciphertext).

use base64::Engine as _;
use crypto_secretbox::aead::{Aead as _, KeyInit as _};
use zeroize::Zeroizing;

use crate::error::KeyError;

/// PEM label of cosign's encrypted private keys.
pub const PEM_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";

/// Largest scrypt log2(N) accepted: 2^20 × 128 × r bytes of memory is already 1 GiB at r = 8,
/// and cosign writes 2^15; a hostile key file must not be able to exhaust memory.
const SCRYPT_MAX_LOG_N: u8 = 20;
/// Largest scrypt r and p accepted, for the same reason (cosign writes r = 8, p = 1).
const SCRYPT_MAX_R: u32 = 32;
const SCRYPT_MAX_P: u32 = 16;
/// Length of the secretbox key derived by scrypt.
const SECRETBOX_KEY_LEN: usize = 32;
/// Length of a secretbox nonce.
const SECRETBOX_NONCE_LEN: usize = 24;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Cipher {
    name: String,
    nonce: String,
}

/// Decrypts the JSON envelope (the PEM body) into the PKCS#8 DER private key.
pub fn decrypt(
    envelope_json: &[u8],
    passphrase: &[u8],
    source: &str,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let invalid = |reason: String| KeyError::Invalid {
        source_name: source.to_string(),
        reason: format!("bad cosign encrypted key: {reason}"),
    };
    let envelope: Envelope =
        serde_json::from_slice(envelope_json).map_err(|e| invalid(e.to_string()))?;
    if envelope.kdf.name != "scrypt" {
        return Err(invalid(format!("unsupported kdf {:?}", envelope.kdf.name)));
    }
    if envelope.cipher.name != "nacl/secretbox" {
        return Err(invalid(format!(
            "unsupported cipher {:?}",
            envelope.cipher.name
        )));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let decode = |field: &str, value: &str| {
        b64.decode(value)
            .map_err(|e| invalid(format!("{field} is not base64: {e}")))
    };
    let salt = decode("kdf.salt", &envelope.kdf.salt)?;
    let nonce = decode("cipher.nonce", &envelope.cipher.nonce)?;
    let ciphertext = decode("ciphertext", &envelope.ciphertext)?;
    if nonce.len() != SECRETBOX_NONCE_LEN {
        return Err(invalid(format!(
            "nonce is {} bytes, expected 24",
            nonce.len()
        )));
    }

    let ScryptParams { n, r, p } = envelope.kdf.params;
    if !n.is_power_of_two() || n < 2 {
        return Err(invalid(format!("scrypt N = {n} is not a power of two")));
    }
    let log_n = n.trailing_zeros() as u8;
    if log_n > SCRYPT_MAX_LOG_N || r == 0 || r > SCRYPT_MAX_R || p == 0 || p > SCRYPT_MAX_P {
        return Err(invalid(format!(
            "scrypt parameters N = {n}, r = {r}, p = {p} are out of the accepted range"
        )));
    }
    let params = scrypt::Params::new(log_n, r, p, SECRETBOX_KEY_LEN)
        .map_err(|e| invalid(format!("scrypt parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; SECRETBOX_KEY_LEN]);
    scrypt::scrypt(passphrase, &salt, &params, key.as_mut_slice())
        .map_err(|e| invalid(format!("scrypt: {e}")))?;

    let cipher = crypto_secretbox::XSalsa20Poly1305::new(key.as_slice().into());
    let plaintext = cipher
        .decrypt(nonce.as_slice().into(), ciphertext.as_slice())
        .map_err(|_| KeyError::Decrypt {
            source_name: source.to_string(),
        })?;
    Ok(Zeroizing::new(plaintext))
}
