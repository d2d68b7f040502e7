//! Key files and signatures checked against openssl: keys openssl makes parse and verify
//! openssl's signatures, our signatures verify with openssl, key ids equal openssl's SPKI
//! digest, tampering is rejected, and bad key files get errors naming the file.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

mod common;

use cfsgate_keyring::{
    KeyAlgorithm, KeyError, KeyType, Passphrase, PrivateKey, PublicKey, VerifyError,
};
use common::*;
use zeroize::Zeroizing;

const MESSAGE: &[u8] = b"{\"critical\":{\"type\":\"cosign container image signature\"}}\n";

fn write_message(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("message");
    std::fs::write(&path, MESSAGE).unwrap();
    path
}

#[test]
fn openssl_keys_parse_and_verify_openssl_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let message = write_message(dir.path());
    for (name, args, digest) in KEY_TYPES {
        let key = genpkey(dir.path(), name, args, *digest);
        let public = PublicKey::from_file(&key.public).unwrap();
        let expected = match *name {
            "ed25519" => KeyAlgorithm::Ed25519,
            "p256" => KeyAlgorithm::EcdsaP256,
            "p384" => KeyAlgorithm::EcdsaP384,
            "rsa2048" => KeyAlgorithm::Rsa { bits: 2048 },
            "rsa3072" => KeyAlgorithm::Rsa { bits: 3072 },
            _ => KeyAlgorithm::Rsa { bits: 4096 },
        };
        assert_eq!(public.algorithm(), expected, "{name}");
        assert_eq!(
            public.key_id().to_string(),
            openssl_key_id(&key.public),
            "{name} key id"
        );

        let sig_file = dir.path().join(format!("{name}.sig"));
        openssl_sign(&key, &message, &sig_file);
        let signature = std::fs::read(&sig_file).unwrap();
        public
            .verify(MESSAGE, &signature)
            .unwrap_or_else(|e| panic!("{name}: {e}"));

        for index in [0, signature.len() / 2, signature.len() - 1] {
            assert!(
                public.verify(MESSAGE, &flip(&signature, index)).is_err(),
                "{name} sig flip {index}"
            );
        }
        for index in [0, MESSAGE.len() / 2, MESSAGE.len() - 1] {
            assert_eq!(
                public.verify(&flip(MESSAGE, index), &signature),
                Err(VerifyError::BadSignature),
                "{name} message flip {index}"
            );
        }
        assert!(public
            .verify(MESSAGE, &signature[..signature.len() - 1])
            .is_err());

        // The DER form of the same key parses to the same id.
        let der = openssl(&["pkey", "-pubin", "-in", p(&key.public), "-outform", "DER"]);
        assert_eq!(
            PublicKey::from_bytes(&der, "der").unwrap().key_id(),
            public.key_id()
        );
    }
}

#[test]
fn our_signatures_verify_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let message = write_message(dir.path());
    for (name, args, digest) in KEY_TYPES.iter().filter(|(n, _, _)| *n != "rsa4096") {
        let key = genpkey(dir.path(), name, args, *digest);
        let private = PrivateKey::from_file(&key.private, &Passphrase::Unavailable).unwrap();
        assert_eq!(
            private.public_key().key_id().to_string(),
            openssl_key_id(&key.public),
            "{name}"
        );
        let signature = private.sign(MESSAGE);
        let sig_file = dir.path().join(format!("{name}.oursig"));
        std::fs::write(&sig_file, &signature).unwrap();
        assert!(
            openssl_verify(&key, &key.public, &message, &sig_file),
            "{name}: openssl rejects our signature"
        );
        std::fs::write(&sig_file, flip(&signature, 7)).unwrap();
        assert!(
            !openssl_verify(&key, &key.public, &message, &sig_file),
            "{name}: openssl accepts a flipped signature"
        );
    }
}

#[test]
fn ecdsa_signatures_are_deterministic_der() {
    let private = PrivateKey::generate(KeyType::P256);
    let first = private.sign(MESSAGE);
    assert_eq!(
        first,
        private.sign(MESSAGE),
        "RFC 6979 signatures are deterministic"
    );
    assert_eq!(first[0], 0x30, "ASN.1 DER SEQUENCE");
}

#[test]
fn generated_keys_are_read_by_openssl_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let message = write_message(dir.path());
    for (key_type, name, digest) in [
        (KeyType::Ed25519, "ed25519", None),
        (KeyType::P256, "p256", Some("-sha256")),
    ] {
        let private = PrivateKey::generate(key_type);
        let key = OpensslKey {
            name,
            private: dir.path().join(format!("gen-{name}.key")),
            public: dir.path().join(format!("gen-{name}.pub")),
            digest,
        };
        std::fs::write(&key.private, private.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
        std::fs::write(&key.public, private.public_key().to_pem()).unwrap();
        // openssl derives the public key from our private key file: it must equal ours.
        let derived = openssl(&["pkey", "-in", p(&key.private), "-pubout"]);
        assert_eq!(
            String::from_utf8(derived).unwrap(),
            private.public_key().to_pem(),
            "{name}"
        );
        assert_eq!(
            private.public_key().key_id().to_string(),
            openssl_key_id(&key.public)
        );

        let sig_file = dir.path().join(format!("gen-{name}.sig"));
        std::fs::write(&sig_file, private.sign(MESSAGE)).unwrap();
        assert!(
            openssl_verify(&key, &key.public, &message, &sig_file),
            "{name}"
        );
        // And openssl's signature with our generated key verifies with our public key.
        openssl_sign(&key, &message, &sig_file);
        private
            .public_key()
            .verify(MESSAGE, &std::fs::read(&sig_file).unwrap())
            .unwrap();
    }
}

/// RSA-PSS signatures made by openssl are refused: containers/image (sigstore's verifier for an
/// RSA key is PKCS#1 v1.5 only) refuses them, and the gate must count what podman counts.
#[test]
fn rsa_pss_signatures_are_refused_as_containers_image_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let message = write_message(dir.path());
    let key = genpkey(dir.path(), "rsa2048", KEY_TYPES[3].1, Some("-sha256"));
    let public = PublicKey::from_file(&key.public).unwrap();
    for salt in ["digest", "max"] {
        let sig_file = dir.path().join(format!("pss-{salt}.sig"));
        openssl(&[
            "dgst",
            "-sha256",
            "-sign",
            p(&key.private),
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            &format!("rsa_pss_saltlen:{salt}"),
            "-out",
            p(&sig_file),
            p(&message),
        ]);
        let signature = std::fs::read(&sig_file).unwrap();
        // openssl itself accepts it: a valid PSS signature, refused only for its scheme.
        assert!(openssl_ok(&[
            "dgst",
            "-sha256",
            "-verify",
            p(&key.public),
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            &format!("rsa_pss_saltlen:{salt}"),
            "-signature",
            p(&sig_file),
            p(&message),
        ]));
        let err = public.verify(MESSAGE, &signature).unwrap_err();
        assert!(
            matches!(err, VerifyError::BadSignature),
            "PSS salt {salt}: {err}"
        );
    }
}

/// A P-384 signature over SHA-384 is refused (containers/image hashes with SHA-256 on every
/// curve), while openssl's P-384 signature over SHA-256 verifies.
#[test]
fn p384_signatures_count_over_sha256_only() {
    let dir = tempfile::tempdir().unwrap();
    let message = write_message(dir.path());
    let key = genpkey(dir.path(), "p384", KEY_TYPES[2].1, Some("-sha256"));
    let public = PublicKey::from_file(&key.public).unwrap();
    let over_sha256 = dir.path().join("p384-sha256.sig");
    openssl_sign(&key, &message, &over_sha256);
    public
        .verify(MESSAGE, &std::fs::read(&over_sha256).unwrap())
        .unwrap();
    let over_sha384 = dir.path().join("p384-sha384.sig");
    openssl(&[
        "dgst",
        "-sha384",
        "-sign",
        p(&key.private),
        "-out",
        p(&over_sha384),
        p(&message),
    ]);
    let err = public
        .verify(MESSAGE, &std::fs::read(&over_sha384).unwrap())
        .unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature), "{err}");
    // Our own P-384 signatures are the SHA-256 kind: openssl checks them with -sha256.
    let private = PrivateKey::from_file(&key.private, &Passphrase::Unavailable).unwrap();
    std::fs::write(&over_sha384, private.sign(MESSAGE)).unwrap();
    assert!(openssl_verify(&key, &key.public, &message, &over_sha384));
}

/// Converts an openssl DER ECDSA signature to fixed r||s using `openssl asn1parse` output.
fn der_to_fixed(sig_file: &std::path::Path, field_len: usize) -> Vec<u8> {
    let parsed = openssl(&["asn1parse", "-inform", "DER", "-in", p(sig_file)]);
    let text = String::from_utf8(parsed).unwrap();
    let mut fixed = Vec::new();
    for line in text.lines().filter(|l| l.contains("INTEGER")) {
        let hex_value = line.rsplit(':').next().unwrap().trim();
        let mut bytes = hex::decode(if hex_value.len() % 2 == 1 {
            format!("0{hex_value}")
        } else {
            hex_value.to_string()
        })
        .unwrap();
        while bytes.len() > field_len && bytes[0] == 0 {
            bytes.remove(0);
        }
        let mut padded = vec![0u8; field_len - bytes.len()];
        padded.extend(bytes);
        fixed.extend(padded);
    }
    fixed
}

/// Fixed-size r||s ECDSA signatures are refused, as containers/image refuses them.
#[test]
fn ecdsa_fixed_size_signatures_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let message = write_message(dir.path());
    for (index, field_len) in [(1usize, 32usize), (2, 48)] {
        let (name, args, digest) = KEY_TYPES[index];
        let key = genpkey(dir.path(), name, args, digest);
        let sig_file = dir.path().join(format!("{name}.sig"));
        openssl_sign(&key, &message, &sig_file);
        let fixed = der_to_fixed(&sig_file, field_len);
        assert_eq!(fixed.len(), 2 * field_len);
        let public = PublicKey::from_file(&key.public).unwrap();
        // The same signature in DER verifies; as r||s it is refused (Go's VerifyASN1 takes DER
        // only), naming the encoding.
        public
            .verify(MESSAGE, &std::fs::read(&sig_file).unwrap())
            .unwrap_or_else(|e| panic!("{name} DER: {e}"));
        let err = public.verify(MESSAGE, &fixed).unwrap_err();
        assert!(
            matches!(err, VerifyError::MalformedSignature(m) if m.contains("DER")),
            "{name} r||s: {err}"
        );
    }
}

#[test]
fn pkcs1_rsa_public_keys_parse_to_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let key = genpkey(dir.path(), "rsa2048", KEY_TYPES[3].1, Some("-sha256"));
    let pkcs1 = dir.path().join("pkcs1.pem");
    openssl(&[
        "rsa",
        "-pubin",
        "-in",
        p(&key.public),
        "-RSAPublicKey_out",
        "-out",
        p(&pkcs1),
    ]);
    assert!(std::fs::read_to_string(&pkcs1)
        .unwrap()
        .contains("BEGIN RSA PUBLIC KEY"));
    let from_pkcs1 = PublicKey::from_file(&pkcs1).unwrap();
    assert_eq!(from_pkcs1.key_id().to_string(), openssl_key_id(&key.public));
    let pkcs1_der = openssl(&[
        "rsa",
        "-pubin",
        "-in",
        p(&key.public),
        "-RSAPublicKey_out",
        "-outform",
        "DER",
    ]);
    assert_eq!(
        PublicKey::from_bytes(&pkcs1_der, "pkcs1.der")
            .unwrap()
            .key_id(),
        from_pkcs1.key_id()
    );
}

#[test]
fn small_rsa_keys_and_non_keys_are_refused_with_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let key = genpkey(
        dir.path(),
        "rsa1024",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
        Some("-sha256"),
    );
    let error = PublicKey::from_file(&key.public).unwrap_err();
    assert!(
        matches!(error, KeyError::RsaSize { bits: 1024, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("rsa1024.pub"), "{error}");

    let cert = dir.path().join("cert.pem");
    openssl(&[
        "req",
        "-x509",
        "-key",
        p(&dir.path().join("rsa1024.key")),
        "-subj",
        "/CN=x",
        "-days",
        "1",
        "-out",
        p(&cert),
    ]);
    let error = PublicKey::from_file(&cert).unwrap_err();
    assert!(matches!(error, KeyError::UnexpectedPem { .. }), "{error}");
    assert!(
        error.to_string().contains("cert.pem") && error.to_string().contains("CERTIFICATE"),
        "{error}"
    );

    let x25519 = genpkey(dir.path(), "x25519", &["-algorithm", "x25519"], None);
    let error = PublicKey::from_file(&x25519.public).unwrap_err();
    assert!(matches!(error, KeyError::Unsupported { .. }), "{error}");
    assert!(error.to_string().contains("x25519.pub"), "{error}");

    let garbage = dir.path().join("garbage.pub");
    std::fs::write(&garbage, b"not a key at all").unwrap();
    assert!(PublicKey::from_file(&garbage)
        .unwrap_err()
        .to_string()
        .contains("garbage.pub"));
}

#[test]
fn cosign_public_keys_parse() {
    let conformance = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/containers-image");
    for name in ["cosign.pub", "cosign2.pub"] {
        let path = conformance.join(name);
        let key = PublicKey::from_file(&path).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP256, "{name}");
        assert_eq!(key.key_id().to_string(), openssl_key_id(&path), "{name}");
        assert_eq!(key.key_id().short().len(), 16);
        assert_eq!(
            key.to_pem(),
            std::fs::read_to_string(&path).unwrap(),
            "{name} round trip"
        );
    }
}

#[test]
fn sec1_and_encrypted_private_keys_load() {
    let dir = tempfile::tempdir().unwrap();
    let message = write_message(dir.path());
    let key = genpkey(dir.path(), "p384", KEY_TYPES[2].1, Some("-sha256"));
    let sec1 = dir.path().join("sec1.pem");
    openssl(&["ec", "-in", p(&key.private), "-out", p(&sec1)]);
    assert!(std::fs::read_to_string(&sec1)
        .unwrap()
        .contains("BEGIN EC PRIVATE KEY"));
    let private = PrivateKey::from_file(&sec1, &Passphrase::Unavailable).unwrap();
    let sig_file = dir.path().join("sec1.sig");
    std::fs::write(&sig_file, private.sign(MESSAGE)).unwrap();
    assert!(openssl_verify(&key, &key.public, &message, &sig_file));

    let encrypted = dir.path().join("enc.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-aes-256-cbc",
        "-pass",
        "pass:correct horse",
        "-out",
        p(&encrypted),
    ]);
    assert!(std::fs::read_to_string(&encrypted)
        .unwrap()
        .contains("BEGIN ENCRYPTED PRIVATE KEY"));
    let public = dir.path().join("enc.pub");
    openssl(&[
        "pkey",
        "-in",
        p(&encrypted),
        "-passin",
        "pass:correct horse",
        "-pubout",
        "-out",
        p(&public),
    ]);
    let given = Passphrase::Given(Zeroizing::new(b"correct horse".to_vec()));
    let private = PrivateKey::from_file(&encrypted, &given).unwrap();
    assert_eq!(
        private.public_key().key_id().to_string(),
        openssl_key_id(&public)
    );

    let wrong = Passphrase::Given(Zeroizing::new(b"wrong".to_vec()));
    assert!(matches!(
        PrivateKey::from_file(&encrypted, &wrong),
        Err(KeyError::Decrypt { .. })
    ));
    let error = PrivateKey::from_file(&encrypted, &Passphrase::Unavailable).unwrap_err();
    assert!(matches!(error, KeyError::NoPassphrase { .. }), "{error}");
    assert!(error.to_string().contains("CFSGATE_KEY_PASSPHRASE"));
}

#[test]
fn passphrase_comes_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let encrypted = dir.path().join("enc.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-aes-256-cbc",
        "-pass",
        "pass:from-env",
        "-out",
        p(&encrypted),
    ]);
    // Only this test reads the variable (the others pass Given/Unavailable).
    std::env::set_var(cfsgate_keyring::PASSPHRASE_ENV, "from-env");
    let loaded = PrivateKey::from_file(&encrypted, &Passphrase::EnvOrPrompt);
    std::env::remove_var(cfsgate_keyring::PASSPHRASE_ENV);
    assert_eq!(
        loaded.unwrap().public_key().algorithm(),
        KeyAlgorithm::EcdsaP256
    );
}

/// cosign's encrypted key format, produced independently by Python (hashlib.scrypt from
/// OpenSSL, PyNaCl's SecretBox from libsodium) around a PKCS#8 key from openssl.
#[test]
fn cosign_encrypted_private_key_loads() {
    let has_nacl = std::process::Command::new("python3")
        .args(["-c", "import nacl.secret"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !has_nacl {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 module nacl (pip install pynacl) is required under CI"
        );
        eprintln!("skipping: python3 nacl module missing (pip install pynacl)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let message = write_message(dir.path());
    let key = genpkey(dir.path(), "p256", KEY_TYPES[1].1, Some("-sha256"));
    let pkcs8_der = dir.path().join("key.der");
    openssl(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        p(&key.private),
        "-outform",
        "DER",
        "-out",
        p(&pkcs8_der),
    ]);
    let sigstore = dir.path().join("cosign.key");
    let script = r#"
import base64, hashlib, json, os, sys, nacl.secret
der = open(sys.argv[1], 'rb').read()
salt, nonce = os.urandom(32), os.urandom(24)
key = hashlib.scrypt(b'cosign pass', salt=salt, n=32768, r=8, p=1, maxmem=64*1024*1024, dklen=32)
box = nacl.secret.SecretBox(key).encrypt(der, nonce).ciphertext
b = lambda x: base64.b64encode(x).decode()
doc = {"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": b(salt)},
       "cipher": {"name": "nacl/secretbox", "nonce": b(nonce)}, "ciphertext": b(box)}
body = base64.b64encode(json.dumps(doc).encode()).decode()
lines = [body[i:i+64] for i in range(0, len(body), 64)]
open(sys.argv[2], 'w').write("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
"#;
    let status = std::process::Command::new("python3")
        .args(["-c", script, p(&pkcs8_der), p(&sigstore)])
        .status()
        .unwrap();
    assert!(status.success());
    let given = Passphrase::Given(Zeroizing::new(b"cosign pass".to_vec()));
    let private = PrivateKey::from_file(&sigstore, &given).unwrap();
    assert_eq!(
        private.public_key().key_id().to_string(),
        openssl_key_id(&key.public)
    );
    let sig_file = dir.path().join("cosign.sig");
    std::fs::write(&sig_file, private.sign(MESSAGE)).unwrap();
    assert!(openssl_verify(&key, &key.public, &message, &sig_file));
    let wrong = Passphrase::Given(Zeroizing::new(b"nope".to_vec()));
    assert!(matches!(
        PrivateKey::from_file(&sigstore, &wrong),
        Err(KeyError::Decrypt { .. })
    ));
}
