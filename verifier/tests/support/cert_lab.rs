//! An X.509 "lab" made with the `openssl` command line, shared by `cert_chain.rs` and
//! `keyless_attacks.rs`: private keys, self-signed roots and certificates issued with the
//! extensions a test names, plus signing and SPKI digests by openssl, so every certificate a
//! test verifies comes from an independent implementation.

// Each test file uses a part of the lab.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use cfsgate_verifier::cert::Certificate;
use sha2::{Digest as _, Sha256};

/// Runs a tool that must succeed; its stdout.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("run openssl");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A directory of keys and certificates made by `openssl`.
pub struct CertLab {
    dir: tempfile::TempDir,
    serial: usize,
    /// Put before `/CN=…` in every subject (e.g. `/O=lab`).
    subject_prefix: &'static str,
}

/// A certificate and its private key.
#[derive(Clone)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert: PathBuf,
    /// Its private key, PEM.
    pub key: PathBuf,
}

impl Issued {
    /// The certificate's PEM text.
    pub fn pem(&self) -> String {
        std::fs::read_to_string(&self.cert).expect("read certificate")
    }

    /// The certificate, parsed by cfsgate (the file holds exactly one).
    pub fn parsed(&self) -> Certificate {
        let mut certs = Certificate::parse_pem_bundle(self.pem().as_bytes()).expect("parse");
        assert_eq!(certs.len(), 1);
        certs.remove(0)
    }
}

impl CertLab {
    /// A lab whose subjects are `/CN=NAME`.
    pub fn new() -> Self {
        Self::with_subject_prefix("")
    }

    /// A lab whose subjects are `PREFIX/CN=NAME`.
    pub fn with_subject_prefix(subject_prefix: &'static str) -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            serial: 0,
            subject_prefix,
        }
    }

    /// A fresh path in the lab for `what`.
    pub fn path(&mut self, what: &str) -> PathBuf {
        self.serial += 1;
        self.dir.path().join(format!("{}-{what}", self.serial))
    }

    /// A private key: `ec256`, `ec384`, `rsa`, `ed25519`.
    pub fn key(&mut self, alg: &str) -> PathBuf {
        let key = self.path("key.pem");
        let mut cmd = Command::new("openssl");
        cmd.arg("genpkey");
        match alg {
            "ec256" => cmd.args(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
            "ec384" => cmd.args(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]),
            "rsa" => cmd.args(["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
            "ed25519" => cmd.args(["-algorithm", "ed25519"]),
            other => panic!("key type {other}"),
        };
        run(cmd.arg("-out").arg(&key));
        key
    }

    fn config(&mut self, extensions: &str) -> PathBuf {
        let config = self.path("ext.cnf");
        std::fs::write(
            &config,
            format!("[req]\ndistinguished_name=dn\n[dn]\n[v3]\n{extensions}"),
        )
        .expect("write config");
        config
    }

    fn subject(&self, cn: &str) -> String {
        format!("{}/CN={cn}", self.subject_prefix)
    }

    /// A self-signed certificate valid for 30 days from now.
    pub fn root(&mut self, cn: &str, alg: &str, extensions: &str) -> Issued {
        let key = self.key(alg);
        let config = self.config(extensions);
        let cert = self.path("root.pem");
        run(Command::new("openssl")
            .args(["req", "-x509", "-new", "-days", "30", "-subj"])
            .arg(self.subject(cn))
            .arg("-key")
            .arg(&key)
            .arg("-config")
            .arg(&config)
            .args(["-extensions", "v3", "-out"])
            .arg(&cert));
        Issued { cert, key }
    }

    /// A certificate for `cn` signed by `issuer`, valid for `days` from now; `sign_args` are
    /// extra `openssl x509` options (`-sha512`, `-sigopt …`).
    pub fn issue(
        &mut self,
        issuer: &Issued,
        cn: &str,
        alg: &str,
        extensions: &str,
        days: u32,
        sign_args: &[&str],
    ) -> Issued {
        let key = self.key(alg);
        let csr = self.path("req.csr");
        run(Command::new("openssl")
            .args(["req", "-new", "-subj"])
            .arg(self.subject(cn))
            .arg("-key")
            .arg(&key)
            .arg("-out")
            .arg(&csr));
        let config = self.config(extensions);
        let cert = self.path("cert.pem");
        let serial = format!("{}", 1000 + self.serial);
        run(Command::new("openssl")
            .args(["x509", "-req", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&issuer.cert)
            .arg("-CAkey")
            .arg(&issuer.key)
            .args(["-set_serial", &serial, "-days", &days.to_string()])
            .arg("-extfile")
            .arg(&config)
            .args(["-extensions", "v3"])
            .args(sign_args)
            .arg("-out")
            .arg(&cert));
        Issued { cert, key }
    }

    /// `openssl dgst -sha256 -sign`: the signature of `message` by `key` (ECDSA: ASN.1 DER).
    pub fn sign(&mut self, key: &Path, message: &[u8]) -> Vec<u8> {
        let input = self.path("message");
        std::fs::write(&input, message).expect("write message");
        run(Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(key)
            .arg(&input))
    }

    /// sha256 (hex) of the DER SPKI of `key`'s public key, as openssl encodes it.
    pub fn spki_sha256(&mut self, key: &Path) -> String {
        let der = run(Command::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(key));
        hex::encode(Sha256::digest(der))
    }

    /// `key`'s public key as a PEM file.
    pub fn public_pem(&mut self, key: &Path) -> PathBuf {
        let out = self.path("pub.pem");
        run(Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(key)
            .arg("-out")
            .arg(&out));
        out
    }
}
