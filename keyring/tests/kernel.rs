//! The real kernel keyring: an Ed25519 `user` key verifies in userspace, an RSA X.509
//! `asymmetric` key is verified by the kernel, flipped signatures and removed keys reject, an
//! ECDSA certificate is reported as beyond this kernel, and a non-root process (setpriv to
//! nobody) finds the keyring and verifies with it. Every test uses its own keyring name.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use cfsgate_keyring::{KernelError, KernelKeyType, KernelKeyring, KeySelector, VerifyError};
use common::*;

const MESSAGE: &[u8] = b"payload signed for the kernel keyring test\n";

/// Env vars through which the parent hands work to the non-root helper test.
const HELPER_DIR_ENV: &str = "CFSGATE_KEYRING_HELPER_DIR";
const HELPER_RING_ENV: &str = "CFSGATE_KEYRING_HELPER_RING";

/// Destroys the test keyring even when the test fails.
struct RingGuard(Option<KernelKeyring>);

impl Drop for RingGuard {
    fn drop(&mut self) {
        if let Some(ring) = self.0.take() {
            let _ = ring.destroy();
        }
    }
}

fn unique_name(test: &str) -> String {
    format!("cfsgate-test-{}-{test}", std::process::id())
}

fn create_ring(test: &str) -> (KernelKeyring, RingGuard) {
    let ring = KernelKeyring::create(&unique_name(test)).unwrap();
    (ring.clone(), RingGuard(Some(ring)))
}

struct Material {
    dir: tempfile::TempDir,
    message: PathBuf,
}

impl Material {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let message = dir.path().join("message");
        std::fs::write(&message, MESSAGE).unwrap();
        Self { dir, message }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn ed25519_key(m: &Material) -> (OpensslKey, Vec<u8>) {
    let key = genpkey(m.dir.path(), "ed25519", KEY_TYPES[0].1, None);
    let sig = m.path("ed25519.sig");
    openssl_sign(&key, &m.message, &sig);
    let signature = std::fs::read(&sig).unwrap();
    (key, signature)
}

/// An RSA key and a self-signed X.509 certificate (DER) made by `openssl req -x509`, and an
/// openssl PKCS#1 v1.5 SHA-256 signature of the message.
fn rsa_certificate(m: &Material, curve_or_bits: &str) -> (PathBuf, PathBuf, Vec<u8>) {
    let key = m.path(&format!("{curve_or_bits}.key"));
    let cert = m.path(&format!("{curve_or_bits}.der"));
    let newkey = if curve_or_bits.starts_with("rsa") {
        vec!["-newkey".to_string(), curve_or_bits.replace("rsa", "rsa:")]
    } else {
        vec![
            "-newkey".into(),
            "ec".into(),
            "-pkeyopt".into(),
            format!("ec_paramgen_curve:{curve_or_bits}"),
        ]
    };
    let mut args: Vec<&str> = vec!["req", "-x509"];
    args.extend(newkey.iter().map(String::as_str));
    args.extend([
        "-nodes",
        "-keyout",
        p(&key),
        "-subj",
        "/CN=cfsgate test",
        "-days",
        "2",
        "-outform",
        "DER",
        "-out",
        p(&cert),
    ]);
    openssl(&args);
    let sig = m.path(&format!("{curve_or_bits}.sig"));
    openssl(&[
        "dgst",
        "-sha256",
        "-sign",
        p(&key),
        "-out",
        p(&sig),
        p(&m.message),
    ]);
    (key, cert, std::fs::read(&sig).unwrap())
}

#[test]
fn ed25519_user_key_verifies_and_removed_key_rejects() {
    if !require_root("ed25519_user_key_verifies_and_removed_key_rejects") {
        return;
    }
    let m = Material::new();
    let (key, signature) = ed25519_key(&m);
    let (ring, _guard) = create_ring("ed25519");

    let added = ring
        .add_public_key("signer-a", &std::fs::read(&key.public).unwrap())
        .unwrap();
    assert_eq!(
        added.key_id.unwrap().to_string(),
        openssl_key_id(&key.public)
    );
    let listed = ring.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key_type, KernelKeyType::User);
    assert_eq!(listed[0].description, "signer-a");
    assert_eq!(
        listed[0].key_id, added.key_id,
        "id read back from the kernel payload"
    );

    // The same key stored as a raw 32-byte payload (the last 32 bytes of the DER SPKI).
    let der = openssl(&["pkey", "-pubin", "-in", p(&key.public), "-outform", "DER"]);
    ring.add_public_key("signer-raw", &der[der.len() - 32..])
        .unwrap();

    for name in ["signer-a", "signer-raw"] {
        let selector = KeySelector::Description(name.to_string());
        let used = ring.verify(&selector, MESSAGE, &signature).unwrap();
        assert_eq!(used.key_id, added.key_id);
        let error = ring
            .verify(&selector, MESSAGE, &flip(&signature, 5))
            .unwrap_err();
        assert!(
            matches!(
                error,
                KernelError::Verify {
                    source: VerifyError::BadSignature,
                    ..
                }
            ),
            "{error}"
        );
        let error = ring
            .verify(&selector, &flip(MESSAGE, 0), &signature)
            .unwrap_err();
        assert!(matches!(error, KernelError::Verify { .. }), "{error}");
    }
    ring.verify(&KeySelector::Serial(added.serial), MESSAGE, &signature)
        .unwrap();

    // Re-opening by name finds the same keyring.
    assert_eq!(
        KernelKeyring::open(ring.name()).unwrap().serial(),
        ring.serial()
    );

    assert_eq!(ring.remove("signer-a").unwrap(), 1);
    let error = ring
        .verify(
            &KeySelector::Description("signer-a".into()),
            MESSAGE,
            &signature,
        )
        .unwrap_err();
    assert!(matches!(error, KernelError::NoSuchKey { .. }), "{error}");
    let error = ring
        .verify(&KeySelector::Serial(added.serial), MESSAGE, &signature)
        .unwrap_err();
    assert!(matches!(error, KernelError::NoSuchKey { .. }), "{error}");
    assert!(matches!(
        ring.remove("signer-a"),
        Err(KernelError::NoSuchKey { .. })
    ));
    assert_eq!(ring.list().unwrap().len(), 1);
}

#[test]
fn rsa_x509_key_is_verified_by_the_kernel() {
    if !require_root("rsa_x509_key_is_verified_by_the_kernel") {
        return;
    }
    let m = Material::new();
    let (ring, _guard) = create_ring("rsa-x509");
    for bits in ["rsa2048", "rsa4096"] {
        let (key, cert, signature) = rsa_certificate(&m, bits);
        let added = ring.add_x509(bits, &std::fs::read(&cert).unwrap()).unwrap();
        let public = m.path(&format!("{bits}.pub"));
        openssl(&["pkey", "-in", p(&key), "-pubout", "-out", p(&public)]);
        assert_eq!(added.key_id.unwrap().to_string(), openssl_key_id(&public));

        let selector = KeySelector::Description(bits.to_string());
        let used = ring.verify(&selector, MESSAGE, &signature).unwrap();
        assert_eq!(used.key_type, KernelKeyType::Asymmetric);
        for index in [0, signature.len() / 2, signature.len() - 1] {
            let error = ring
                .verify(&selector, MESSAGE, &flip(&signature, index))
                .unwrap_err();
            assert!(
                matches!(
                    error,
                    KernelError::Verify {
                        source: VerifyError::BadSignature,
                        ..
                    }
                ),
                "{error}"
            );
        }
        let error = ring
            .verify(&selector, &flip(MESSAGE, 3), &signature)
            .unwrap_err();
        assert!(
            matches!(
                error,
                KernelError::Verify {
                    source: VerifyError::BadSignature,
                    ..
                }
            ),
            "{error}"
        );
        let error = ring
            .verify(&selector, MESSAGE, &signature[1..])
            .unwrap_err();
        assert!(
            matches!(
                error,
                KernelError::Verify {
                    source: VerifyError::MalformedSignature(_),
                    ..
                }
            ),
            "{error}"
        );

        ring.remove(bits).unwrap();
        let error = ring
            .verify(&KeySelector::Serial(added.serial), MESSAGE, &signature)
            .unwrap_err();
        assert!(matches!(error, KernelError::NoSuchKey { .. }), "{error}");
    }
    // A PEM certificate is accepted too.
    let (_, cert, signature) = rsa_certificate(&m, "rsa3072");
    let pem = openssl(&["x509", "-inform", "DER", "-in", p(&cert)]);
    ring.add_x509("pem-cert", &pem).unwrap();
    ring.verify(
        &KeySelector::Description("pem-cert".into()),
        MESSAGE,
        &signature,
    )
    .unwrap();
}

#[test]
fn ecdsa_x509_key_reports_what_the_kernel_cannot_do() {
    if !require_root("ecdsa_x509_key_reports_what_the_kernel_cannot_do") {
        return;
    }
    let m = Material::new();
    let (ring, _guard) = create_ring("ecdsa-x509");
    let (_, cert, signature) = rsa_certificate(&m, "P-256");
    match ring.add_x509("ec-cert", &std::fs::read(&cert).unwrap()) {
        Err(error) => {
            assert!(
                matches!(error, KernelError::KernelCannotUse { .. }),
                "{error}"
            );
            let text = error.to_string();
            assert!(
                text.contains("this kernel cannot")
                    && text.contains("ECDSA P-256")
                    && text.contains("ec-cert"),
                "{text}"
            );
        }
        Ok(_) => {
            // A kernel with ECDSA support loads it; then verification either works (x962 is
            // not requested: pkcs1 only) or is reported as unsupported, never as a bad signature.
            let result = ring.verify(
                &KeySelector::Description("ec-cert".into()),
                MESSAGE,
                &signature,
            );
            assert!(
                matches!(result, Err(KernelError::KernelCannotUse { .. })),
                "{result:?}"
            );
        }
    }
}

/// Copies `from` into `dir` world-readable, for the non-root helper.
fn share(from: &Path, dir: &Path, name: &str) {
    use std::os::unix::fs::PermissionsExt;
    let to = dir.join(name);
    std::fs::copy(from, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn run_helper_as_nobody(ring_name: &str, dir: &Path) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(exe)
        .args([
            "--exact",
            "nonroot_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_DIR_ENV, dir)
        .env(HELPER_RING_ENV, ring_name)
        .output()
        .expect("setpriv (util-linux) must be installed")
}

#[test]
fn non_root_process_can_verify() {
    if !require_root("non_root_process_can_verify") {
        return;
    }
    let m = Material::new();
    let (ed_key, ed_sig) = ed25519_key(&m);
    let (_, cert, rsa_sig) = rsa_certificate(&m, "rsa2048");
    let (ring, _guard) = create_ring("nonroot");
    ring.add_public_key("ed", &std::fs::read(&ed_key.public).unwrap())
        .unwrap();
    ring.add_x509("rsa", &std::fs::read(&cert).unwrap())
        .unwrap();

    let shared = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    share(&m.message, shared.path(), "message");
    std::fs::write(m.path("ed.sig"), &ed_sig).unwrap();
    std::fs::write(m.path("rsa.sig"), &rsa_sig).unwrap();
    share(&m.path("ed.sig"), shared.path(), "ed.sig");
    share(&m.path("rsa.sig"), shared.path(), "rsa.sig");

    let output = run_helper_as_nobody(ring.name(), shared.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "helper failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("HELPER uid=65534 verified ed rsa"),
        "helper did not run:\n{stdout}\n{stderr}"
    );

    // Without the "other" permission bits the same process cannot use the keyring.
    let (closed, _closed_guard) = create_ring("nonroot-closed");
    closed
        .add_public_key("ed", &std::fs::read(&ed_key.public).unwrap())
        .unwrap();
    closed.set_permissions(0x3f3f_0000).unwrap();
    let output = run_helper_as_nobody(closed.name(), shared.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "a keyring without other-permissions was usable by nobody"
    );
    assert!(stderr.contains("NotFound"), "{stderr}");
}

/// Runs only when started by `non_root_process_can_verify` under setpriv.
#[test]
#[ignore = "helper of non_root_process_can_verify, run as nobody"]
fn nonroot_helper() {
    let (Some(dir), Some(ring_name)) = (
        std::env::var_os(HELPER_DIR_ENV),
        std::env::var(HELPER_RING_ENV).ok(),
    ) else {
        panic!("nonroot_helper is only run by non_root_process_can_verify");
    };
    let dir = PathBuf::from(dir);
    let uid = rustix_uid();
    assert_ne!(uid, 0, "the helper must not be root");
    let ring = KernelKeyring::open(&ring_name).unwrap();
    let message = std::fs::read(dir.join("message")).unwrap();
    let mut verified = Vec::new();
    for name in ["ed", "rsa"] {
        let signature = std::fs::read(dir.join(format!("{name}.sig"))).unwrap();
        let selector = KeySelector::Description(name.to_string());
        ring.verify(&selector, &message, &signature).unwrap();
        assert!(ring
            .verify(&selector, &message, &flip(&signature, 9))
            .is_err());
        verified.push(name);
    }
    // The helper cannot add trust anchors.
    assert!(ring.add_public_key("intruder", &[7u8; 32]).is_err());
    println!("HELPER uid={uid} verified {}", verified.join(" "));
}

fn rustix_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|uid| uid.parse().ok())
        .unwrap_or(0)
}
