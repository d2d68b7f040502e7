//! A registry behind TLS (a CA in certs.d) with htpasswd basic auth.

use super::*;

/// A CA and a server certificate for 127.0.0.1 signed by it: (ca.crt, server.crt, server.key).
fn make_tls(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=cfsgate test CA",
        ],
        dir,
    );
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
        dir,
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
        dir,
    );
    (
        dir.join("ca.crt"),
        dir.join("server.crt"),
        dir.join("server.key"),
    )
}

#[test]
fn tls_with_a_certs_d_ca_and_htpasswd_basic_auth() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let (ca, cert, key) = make_tls(&base.join("tls"));
    let htpasswd = base.join("htpasswd");
    let out = run(Command::new("htpasswd").args(["-Bbn", "alice", "s3cret"]));
    std::fs::write(&htpasswd, out.stdout).unwrap();
    let registry = Registry::start(
        &base.join("registry"),
        RegistryConfig {
            tls: Some((cert, key)),
            htpasswd: Some(htpasswd),
            ..RegistryConfig::default()
        },
    );
    let host = registry.host();
    let layout = umoci_image(base, 1);
    let image = format!("docker://{host}/cfsgate/tls:v1");
    skopeo_push(
        &format!("oci:{}:test", layout.display()),
        &image,
        &["--dest-creds", "alice:s3cret"],
    );
    let local = ok(
        &cfsgate(
            &["compute-id", &format!("oci:{}:test", layout.display())],
            None,
        ),
        "compute-id oci:",
    );

    // certs.d: HOST:PORT/ca.crt under --cert-dir.
    let certs_d = base.join("certs.d");
    std::fs::create_dir_all(certs_d.join(&host)).unwrap();
    std::fs::copy(&ca, certs_d.join(&host).join("ca.crt")).unwrap();
    let cert_dir = certs_d.to_str().unwrap();
    let with = |extra: &[&str]| {
        let mut args = vec!["compute-id"];
        args.extend_from_slice(extra);
        args.push(&image);
        cfsgate(&args, None)
    };
    let remote = ok(
        &with(&["--cert-dir", cert_dir, "--creds", "alice:s3cret"]),
        "compute-id over TLS",
    );
    assert_eq!(remote.trim(), local.trim());

    // The CA is not trusted without certs.d: refused, and the error says it is the certificate.
    let empty = base.join("empty-certs.d");
    std::fs::create_dir_all(&empty).unwrap();
    let untrusted = with(&[
        "--cert-dir",
        empty.to_str().unwrap(),
        "--creds",
        "alice:s3cret",
    ]);
    assert_eq!(untrusted.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&untrusted.stderr).to_lowercase();
    assert!(
        stderr.contains("certificate") || stderr.contains("unknownissuer"),
        "{stderr}"
    );
    // --tls-verify=false accepts any certificate.
    ok(
        &with(&["--tls-verify=false", "--creds", "alice:s3cret"]),
        "compute-id --tls-verify=false",
    );

    // Basic auth: no credentials, wrong ones, an auth.json.
    let no_entry = base.join("empty-auth.json");
    std::fs::write(&no_entry, r#"{"auths":{}}"#).unwrap();
    let anonymous = with(&[
        "--cert-dir",
        cert_dir,
        "--authfile",
        no_entry.to_str().unwrap(),
    ]);
    assert_eq!(anonymous.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&anonymous.stderr);
    assert!(
        stderr.contains("wants a user name and password"),
        "{stderr}"
    );
    let wrong = with(&["--cert-dir", cert_dir, "--creds", "alice:wrong"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let auth_json = base.join("auth.json");
    let encoded = run(Command::new("sh")
        .arg("-c")
        .arg("printf alice:s3cret | base64 -w0"))
    .stdout;
    let entry =
        serde_json::json!({"auths": {host.clone(): {"auth": String::from_utf8(encoded).unwrap()}}});
    std::fs::write(&auth_json, entry.to_string()).unwrap();
    let out = with(&[
        "--cert-dir",
        cert_dir,
        "--authfile",
        auth_json.to_str().unwrap(),
    ]);
    assert_eq!(ok(&out, "compute-id --authfile").trim(), local.trim());
    // The default lookup (REGISTRY_AUTH_FILE first) finds the same file.
    let out = Command::new(hooks::BIN)
        .args(["compute-id", "--cert-dir", cert_dir, &image])
        .env("REGISTRY_AUTH_FILE", &auth_json)
        .output()
        .unwrap();
    assert_eq!(
        ok(&out, "compute-id with REGISTRY_AUTH_FILE").trim(),
        local.trim()
    );
}
