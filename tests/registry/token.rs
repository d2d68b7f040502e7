//! The bearer token flow against the tests' token server (tokens signed with a test key).

use super::*;

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
