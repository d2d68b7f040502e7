//! Fuzz public key parsing (PEM `PUBLIC KEY` / `RSA PUBLIC KEY`, DER SPKI / PKCS#1) and X.509
//! certificate parsing (DER or PEM `CERTIFICATE`).
#![no_main]

use cfsgate_keyring::x509::Certificate;
use cfsgate_keyring::PublicKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = PublicKey::from_bytes(data, "fuzz");
    let _ = Certificate::parse(data, "fuzz");
});
