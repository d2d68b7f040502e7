//! Registries end to end, through the `cfsgate` binary: Debian's docker-registry 2.8.2 on
//! 127.0.0.1 (see tests/fixtures/registry.rs), images made by umoci and pushed by skopeo,
//! signatures pushed by cfsgate and read back by cfsgate verify, a pulled sealed image mounted
//! by its seal.

#[path = "fixtures/hooks.rs"]
mod hooks;
#[path = "fixtures/registry.rs"]
mod registry;

use std::path::{Path, PathBuf};
use std::process::Command;

use hooks::{cfsgate, require_root, run};
use registry::{line_value, ok, read_json, skopeo_push, Registry, RegistryConfig};

fn fixture_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oci/make-umoci-image.sh")
}

/// The umoci test image (tag `test`) in `dir/layout`.
fn umoci_image(dir: &Path, big_mib: u32) -> PathBuf {
    let layout = dir.join("layout");
    run(Command::new("sh")
        .arg(fixture_script())
        .arg(&layout)
        .arg(dir.join("work"))
        .arg(big_mib.to_string()));
    layout
}

#[test]
fn pull_compute_id_sign_verify_and_mount_from_a_plain_http_registry() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let registry = Registry::start(&base.join("registry"), RegistryConfig::default());
    let host = registry.host();
    let layout = umoci_image(base, 3);
    let image = format!("docker://{host}/cfsgate/test:v1");
    skopeo_push(&format!("oci:{}:test", layout.display()), &image, &[]);

    // The composefs digest of the registry image is the one of the layout skopeo pushed.
    let local = ok(
        &cfsgate(
            &["compute-id", &format!("oci:{}:test", layout.display())],
            None,
        ),
        "compute-id oci:",
    );
    let remote = ok(
        &cfsgate(&["compute-id", "--tls-verify=false", &image], None),
        "compute-id docker://",
    );
    assert_eq!(local.trim(), remote.trim());

    // Without --tls-verify=false a plain-HTTP registry is refused (HTTPS is required).
    let refused = cfsgate(&["compute-id", &image], None);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "plain HTTP must need --tls-verify=false"
    );

    // pull: blobs kept in the repository, the composefs image stored, both digests printed.
    let repo = base.join("repo");
    let repo_arg = repo.to_str().unwrap();
    let out = ok(
        &cfsgate(
            &[
                "--repo",
                repo_arg,
                "pull",
                "--tls-verify=false",
                &image,
                "--ref",
                "app",
            ],
            None,
        ),
        "pull",
    );
    let manifest = line_value(&out, "manifest ");
    let composefs = line_value(&out, "composefs sha256:");
    assert_eq!(composefs, local.trim());
    let index = read_json(&layout.join("index.json"));
    let layout_manifest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        manifest, layout_manifest,
        "skopeo keeps an OCI manifest as it is"
    );
    let manifest_blob = repo
        .join("oci/blobs/sha256")
        .join(manifest.strip_prefix("sha256:").unwrap());
    let manifest_json = read_json(&manifest_blob);
    for layer in manifest_json["layers"].as_array().unwrap() {
        let hex = layer["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap();
        assert!(
            repo.join("oci/blobs/sha256").join(hex).is_file(),
            "layer {hex} kept"
        );
    }
    assert!(repo.join("images").join(&composefs).is_file());
    // A second pull downloads no layer again.
    let sent = registry.blob_bytes_sent();
    ok(
        &cfsgate(
            &["--repo", repo_arg, "pull", "--tls-verify=false", &image],
            None,
        ),
        "second pull",
    );
    let layer_bytes: u64 = manifest_json["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    assert!(
        registry.blob_bytes_sent() - sent < layer_bytes,
        "the second pull fetched the layers again"
    );

    // distribution 2.8 has no referrers API: the client reports it absent (None), so callers
    // fall back to the sha256-<hex> tag schema.
    let parsed = cfsgate_oci::registry::DockerRef::parse(&image).unwrap();
    let options = cfsgate_oci::registry::ClientOptions {
        tls_verify: false,
        ..Default::default()
    };
    let client = cfsgate_oci::registry::RegistryClient::connect(&parsed, &options).unwrap();
    let manifest_digest = cfsgate_oci::BlobDigest::parse(&manifest).unwrap();
    let referrers = client
        .get_referrers(&parsed.repository, &manifest_digest, None, 1 << 20)
        .unwrap();
    assert!(
        referrers.is_none(),
        "distribution 2.8 answered the referrers API"
    );

    // Signatures pushed by cfsgate into the cosign .sig tag, judged by cfsgate verify.
    for name in ["signer", "stranger"] {
        run(Command::new(hooks::BIN)
            .args(["key", "generate", "--type", "p256", "--output"])
            .arg(base.join(name)));
    }
    let identity = format!("{host}/cfsgate/test");
    let verify = |key: &str| {
        cfsgate(
            &[
                "verify",
                "--tls-verify=false",
                "--key",
                &base.join(key).to_string_lossy(),
                &image,
            ],
            None,
        )
    };
    assert_eq!(
        verify("signer.pub").status.code(),
        Some(1),
        "unsigned image accepted"
    );
    let signer_key = base.join("signer.key");
    let sign = cfsgate(
        &[
            "sign",
            "--tls-verify=false",
            "--key",
            signer_key.to_str().unwrap(),
            "--identity",
            &identity,
            &image,
        ],
        None,
    );
    ok(&sign, "sign docker://");
    let sig_tag = format!(
        "docker://{host}/cfsgate/test:sha256-{}.sig",
        manifest.strip_prefix("sha256:").unwrap()
    );
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(&sig_tag));
    let sig_manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(sig_manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        sig_manifest["layers"][0]["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let accepted = verify("signer.pub");
    ok(&accepted, "verify with the signer's key");
    assert!(String::from_utf8_lossy(&accepted.stdout).starts_with("accepted"));
    assert_eq!(
        verify("stranger.pub").status.code(),
        Some(1),
        "a stranger's key accepted"
    );
    // A second signature is appended to the same tag, not replacing the first.
    let stranger_key = base.join("stranger.key");
    ok(
        &cfsgate(
            &[
                "sign",
                "--tls-verify=false",
                "--key",
                stranger_key.to_str().unwrap(),
                "--identity",
                &identity,
                &image,
            ],
            None,
        ),
        "second sign",
    );
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(&sig_tag));
    let sig_manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(sig_manifest["layers"].as_array().unwrap().len(), 2);
    ok(&verify("signer.pub"), "verify after a second signature");

    // A sealed image: pushed, pulled (seal checked), mounted by the seal.
    let sealed_layout = base.join("sealed");
    let out = ok(
        &cfsgate(
            &[
                "seal",
                &format!("oci:{}:test", layout.display()),
                sealed_layout.to_str().unwrap(),
                "--tag",
                "sealed",
            ],
            None,
        ),
        "seal",
    );
    assert!(out.starts_with("sha256:"));
    let sealed = format!("docker://{host}/cfsgate/test:sealed");
    skopeo_push(
        &format!("oci:{}:sealed", sealed_layout.display()),
        &sealed,
        &[],
    );
    let pulled = cfsgate(
        &["--repo", repo_arg, "pull", "--tls-verify=false", &sealed],
        None,
    );
    let out = ok(&pulled, "pull sealed");
    assert!(String::from_utf8_lossy(&pulled.stderr).contains("seal checked"));
    let seal = line_value(&out, "composefs sha256:");
    assert_eq!(seal, composefs, "the seal is the image's composefs digest");
    let mnt = base.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    ok(
        &cfsgate(
            &[
                "mount",
                "--repo",
                repo_arg,
                &seal,
                mnt.to_str().unwrap(),
                "--verity=userspace",
            ],
            None,
        ),
        "mount by seal",
    );
    let ten = std::fs::read(mnt.join("etc/ten"));
    ok(&cfsgate(&["umount", mnt.to_str().unwrap()], None), "umount");
    assert_eq!(ten.unwrap(), b"0123456789");
}

fn openssl(args: &[&str], dir: &Path) {
    run(Command::new("openssl").args(args).current_dir(dir));
}

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

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A JWT (RS256, the signing certificate in `x5c`) as distribution's token auth accepts it.
fn sign_token(dir: &Path, issuer: &str, service: &str, scope: Option<&str>) -> String {
    let der = run(Command::new("openssl")
        .args(["x509", "-in", "token.crt", "-outform", "DER"])
        .current_dir(dir))
    .stdout;
    let b64 = run(Command::new("sh")
        .arg("-c")
        .arg("openssl x509 -in token.crt -outform DER | base64 -w0")
        .current_dir(dir))
    .stdout;
    assert!(!der.is_empty());
    let header =
        serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [String::from_utf8(b64).unwrap()]});
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let access: Vec<serde_json::Value> = scope
        .and_then(|s| s.strip_prefix("repository:"))
        .and_then(|s| s.rsplit_once(':'))
        .map(|(name, _)| serde_json::json!({"type": "repository", "name": name, "actions": ["pull", "push"]}))
        .into_iter()
        .collect();
    let claims = serde_json::json!({
        "iss": issuer, "sub": "alice", "aud": service, "exp": now + 600, "nbf": now - 60,
        "iat": now, "jti": format!("{now}-{}", scope.unwrap_or("")), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        base64url(header.to_string().as_bytes()),
        base64url(claims.to_string().as_bytes())
    );
    let input_path = dir.join(format!("input-{}", std::process::id()));
    std::fs::write(&input_path, &signing_input).unwrap();
    let signature = run(Command::new("openssl")
        .args(["dgst", "-sha256", "-sign", "token.key"])
        .arg(&input_path)
        .current_dir(dir))
    .stdout;
    format!("{signing_input}.{}", base64url(&signature))
}

fn query_param(target: &str, key: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| {
            v.replace("%3A", ":")
                .replace("%2F", "/")
                .replace("%2C", ",")
                .replace('+', " ")
        })
    })
}

#[test]
fn bearer_token_flow_against_the_tests_token_server() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let token_dir = base.join("token");
    std::fs::create_dir_all(&token_dir).unwrap();
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "token.key",
            "-out",
            "token.crt",
            "-days",
            "2",
            "-subj",
            "/CN=cfsgate test token issuer",
        ],
        &token_dir,
    );
    let (issuer, service) = ("cfsgate-test-issuer", "cfsgate-test-registry");
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(bool, Option<String>)>::new()));
    let seen = requests.clone();
    let dir = token_dir.clone();
    let expected_basic = format!(
        "Basic {}",
        String::from_utf8(
            run(Command::new("sh")
                .arg("-c")
                .arg("printf alice:s3cret | base64 -w0"))
            .stdout
        )
        .unwrap()
    );
    let (token_port, _server) = registry::serve(move |head, stream| {
        let target = head.split_whitespace().nth(1).unwrap_or_default();
        let authorized = head
            .lines()
            .any(|l| l.trim() == format!("Authorization: {expected_basic}"));
        let scope = query_param(target, "scope");
        seen.lock().unwrap().push((authorized, scope.clone()));
        if !authorized {
            return registry::respond(
                stream,
                "401 Unauthorized",
                &[],
                b"{\"details\":\"bad credentials\"}",
            );
        }
        let token = sign_token(&dir, issuer, service, scope.as_deref());
        let body = serde_json::json!({"token": token, "expires_in": 600}).to_string();
        registry::respond(
            stream,
            "200 OK",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
    });
    let registry = Registry::start(
        &base.join("registry"),
        RegistryConfig {
            token: Some((
                format!("http://127.0.0.1:{token_port}/token"),
                service.into(),
                issuer.into(),
                token_dir.join("token.crt"),
            )),
            ..RegistryConfig::default()
        },
    );
    let host = registry.host();
    let layout = umoci_image(&base, 1);
    let image = format!("docker://{host}/cfsgate/token:v1");
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
    requests.lock().unwrap().clear();
    let remote = ok(
        &cfsgate(
            &[
                "compute-id",
                "--tls-verify=false",
                "--creds",
                "alice:s3cret",
                &image,
            ],
            None,
        ),
        "compute-id with a token",
    );
    assert_eq!(remote.trim(), local.trim());
    let seen = requests.lock().unwrap().clone();
    assert!(
        seen.contains(&(true, Some("repository:cfsgate/token:pull".into()))),
        "cfsgate asked the token server for {seen:?}"
    );
    // Wrong credentials: the token server refuses, and the error says so.
    let refused = cfsgate(
        &[
            "compute-id",
            "--tls-verify=false",
            "--creds",
            "alice:nope",
            &image,
        ],
        None,
    );
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("token server") && stderr.contains("401"),
        "{stderr}"
    );
    // Signing pushes with a pull,push token.
    run(Command::new(hooks::BIN)
        .args(["key", "generate", "--type", "p256", "--output"])
        .arg(base.join("k")));
    let key = base.join("k.key");
    ok(
        &cfsgate(
            &[
                "sign",
                "--tls-verify=false",
                "--creds",
                "alice:s3cret",
                "--key",
                key.to_str().unwrap(),
                "--identity",
                &format!("{host}/cfsgate/token"),
                &image,
            ],
            None,
        ),
        "sign with a token",
    );
    let pub_key = base.join("k.pub");
    ok(
        &cfsgate(
            &[
                "verify",
                "--tls-verify=false",
                "--creds",
                "alice:s3cret",
                "--key",
                pub_key.to_str().unwrap(),
                &image,
            ],
            None,
        ),
        "verify with a token",
    );
}

#[test]
fn registries_conf_mirrors_insecure_and_blocked() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let registry = Registry::start(&base.join("registry"), RegistryConfig::default());
    let host = registry.host();
    let layout = umoci_image(base, 1);
    skopeo_push(
        &format!("oci:{}:test", layout.display()),
        &format!("docker://{host}/mirror/app:v1"),
        &[],
    );
    let local = ok(
        &cfsgate(
            &["compute-id", &format!("oci:{}:test", layout.display())],
            None,
        ),
        "compute-id oci:",
    );
    // The primary location is a closed port; the mirror (plain HTTP, marked insecure) has it.
    let closed = registry::free_port();
    let conf = base.join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            r#"unqualified-search-registries = ["docker.io"]
[[registry]]
prefix = "registry.invalid/app"
location = "127.0.0.1:{closed}/app"
insecure = true
[[registry.mirror]]
location = "{host}/mirror/app"
insecure = true
[[registry]]
prefix = "registry.invalid/digests"
location = "127.0.0.1:{closed}/app"
insecure = true
[[registry.mirror]]
location = "{host}/mirror/app"
insecure = true
pull-from-mirror = "digest-only"
[[registry]]
prefix = "{host}/mirror"
blocked = true
"#
        ),
    )
    .unwrap();
    let conf_arg = conf.to_str().unwrap();
    let via_mirror = cfsgate(
        &[
            "compute-id",
            "--registries-conf",
            conf_arg,
            "docker://registry.invalid/app:v1",
        ],
        None,
    );
    assert_eq!(
        ok(&via_mirror, "compute-id via the mirror").trim(),
        local.trim()
    );
    // A digest-only mirror is not used for a tag: the closed location is, and fails.
    let tag_only = cfsgate(
        &[
            "compute-id",
            "--registries-conf",
            conf_arg,
            "docker://registry.invalid/digests:v1",
        ],
        None,
    );
    assert_eq!(tag_only.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&tag_only.stderr).contains(&format!("127.0.0.1:{closed}")));
    // By digest it is used.
    let index = read_json(&layout.join("index.json"));
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let by_digest = cfsgate(
        &[
            "compute-id",
            "--registries-conf",
            conf_arg,
            &format!("docker://registry.invalid/digests@{digest}"),
        ],
        None,
    );
    assert_eq!(
        ok(&by_digest, "compute-id by digest via the mirror").trim(),
        local.trim()
    );
    // The blocked prefix refuses the mirror's own name, for pulls and pushes alike.
    let blocked = cfsgate(
        &[
            "compute-id",
            "--tls-verify=false",
            "--registries-conf",
            conf_arg,
            &format!("docker://{host}/mirror/app:v1"),
        ],
        None,
    );
    assert_eq!(blocked.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&blocked.stderr).contains("is blocked by"),
        "{}",
        String::from_utf8_lossy(&blocked.stderr)
    );
    // A registries.conf that does not parse is an error, not an empty configuration.
    std::fs::write(&conf, "[[registry]\nblocked = true\n").unwrap();
    let broken = cfsgate(
        &[
            "compute-id",
            "--registries-conf",
            conf_arg,
            "docker://registry.invalid/app:v1",
        ],
        None,
    );
    assert_eq!(broken.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&broken.stderr).contains("invalid registries.conf"));
}
