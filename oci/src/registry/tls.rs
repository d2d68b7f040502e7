//! TLS for registries: the system's CAs plus certs.d directories, or no verification at all.
//!
//! certs.d (containers-certs.d(5)): for a registry `HOST[:PORT]`, the directory
//! `CERTS_DIR/HOST[:PORT]/` holds `*.crt` (CA certificates, PEM, added to the trusted roots)
//! and `NAME.cert` + `NAME.key` (a client certificate and its key, PEM). The directories
//! searched, first existing one wins: `--cert-dir DIR` alone when given, else
//! `/etc/containers/certs.d`, `/etc/docker/certs.d` and `~/.config/containers/certs.d`.
//!
//! `--tls-verify=false` (or `insecure = true` in registries.conf) accepts any certificate; the
//! client then also falls back to plain HTTP when the registry does not speak TLS (as
//! containers/image does).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::error::RegistryError;

/// The system CA bundle (Debian's ca-certificates).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Most files looked at in one certs.d host directory (real ones hold two or three).
const MAX_CERTS_D_FILES: usize = 256;

/// The certs.d roots searched when no `--cert-dir` is given.
pub fn default_cert_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![
        PathBuf::from("/etc/containers/certs.d"),
        PathBuf::from("/etc/docker/certs.d"),
    ];
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".config/containers/certs.d"));
    }
    dirs
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(path: &Path, reason: impl Into<String>) -> RegistryError {
    RegistryError::Config {
        path: path.into(),
        reason: reason.into(),
    }
}

/// A client configuration trusting the system CAs and the certs.d CAs for `host`, with its
/// client certificate if certs.d has one.
pub fn verifying_config(host: &str, cert_dirs: &[PathBuf]) -> Result<ClientConfig, RegistryError> {
    let mut roots = RootCertStore::empty();
    let system = Path::new(SYSTEM_CA_BUNDLE);
    if system.is_file() {
        for cert in CertificateDer::pem_file_iter(system)
            .map_err(|e| tls_err(system, e.to_string()))?
            .flatten()
        {
            // A malformed system certificate is skipped, as rustls-native-certs does.
            let _ = roots.add(cert);
        }
    }
    let mut client_auth = None;
    if let Some(dir) = cert_dirs.iter().map(|d| d.join(host)).find(|d| d.is_dir()) {
        let mut entries: Vec<PathBuf> = fs::read_dir(&dir)
            .map_err(|e| RegistryError::io("reading certificate directory", &dir, e))?
            .take(MAX_CERTS_D_FILES)
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for path in &entries {
            match path.extension().and_then(|e| e.to_str()) {
                Some("crt") => {
                    let mut any = false;
                    for cert in CertificateDer::pem_file_iter(path)
                        .map_err(|e| tls_err(path, e.to_string()))?
                    {
                        let cert = cert.map_err(|e| tls_err(path, format!("bad PEM: {e}")))?;
                        roots
                            .add(cert)
                            .map_err(|e| tls_err(path, format!("bad CA certificate: {e}")))?;
                        any = true;
                    }
                    if !any {
                        return Err(tls_err(path, "no certificate in this .crt file"));
                    }
                }
                Some("cert") => {
                    let key = path.with_extension("key");
                    let certs = CertificateDer::pem_file_iter(path)
                        .map_err(|e| tls_err(path, e.to_string()))?
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| tls_err(path, format!("bad PEM: {e}")))?;
                    let key = PrivateKeyDer::from_pem_file(&key)
                        .map_err(|e| tls_err(&key, format!("client key: {e}")))?;
                    client_auth = Some((certs, key));
                }
                _ => {}
            }
        }
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(Path::new(host), e.to_string()))?
        .with_root_certificates(roots);
    match client_auth {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| tls_err(Path::new(host), format!("client certificate: {e}"))),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// A client configuration that accepts any server certificate (`--tls-verify=false`).
pub fn unverified_config() -> Result<ClientConfig, RegistryError> {
    let provider = provider();
    Ok(ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(Path::new("tls"), e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth())
}

/// Checks handshake signatures (so the connection is still encrypted to whoever holds the
/// key) but not who the certificate names: what `--tls-verify=false` asks for.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
