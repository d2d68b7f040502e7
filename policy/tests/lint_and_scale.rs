//! Lint findings on real key files (the upstream fixtures' cosign keys, a key made by
//! openssl, and files that are not keys), serialisation round trips (proptest), and
//! parse + resolve time of a 1,000-scope, 50-key policy.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

use cfsgate_policy::*;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/containers-image")
        .canonicalize()
        .unwrap()
}

fn findings_with(findings: &[LintFinding], severity: Severity, needle: &str) -> Vec<LintFinding> {
    findings
        .iter()
        .filter(|f| f.severity == severity && f.message.contains(needle))
        .cloned()
        .collect()
}

#[test]
fn lint_reports_each_problem_at_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let openssl_key = dir.path().join("ed25519.pub");
    let private = dir.path().join("ed25519.pem");
    assert!(Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&private)
        .status()
        .unwrap()
        .success());
    assert!(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&openssl_key)
        .status()
        .unwrap()
        .success());
    let not_pem = dir.path().join("not-a-key.pub");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let missing = dir.path().join("missing.pub");
    let cosign = fixtures().join("cosign.pub");
    let cosign2 = fixtures().join("cosign2.pub");
    let text = format!(
        r#"{{
    "default": [{{"type": "insecureAcceptAnything"}}],
    "transports": {{
        "docker": {{
            "busybox": [{{"type": "reject"}}],
            "docker.io/busybox": [{{"type": "reject"}}],
            "*.bad/path": [{{"type": "reject"}}],
            "registry.example/a": [{{"type": "sigstoreSigned", "keyPaths": ["{cosign}", "{cosign2}"], "cfsgate": {{"threshold": 3}}}}],
            "registry.example/b": [{{"type": "sigstoreSigned", "keyPath": "{cosign}"}}],
            "registry.example/c": [{{"type": "sigstoreSigned", "keyPath": "{missing}"}}],
            "registry.example/d": [{{"type": "sigstoreSigned", "keyPath": "{not_pem}"}}],
            "registry.example/e": [{{"type": "sigstoreSigned", "keyPath": "{openssl}",
                "cfsgate": {{"keys": [{{"keyPath": "{openssl}", "notBefore": "2026-01-01T00:00:00Z", "notAfter": "2025-01-01T00:00:00Z"}}]}}}}],
            "registry.example/f": [{{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/nonexistent/gpg"}}],
            "registry.example/gpg-ok": [{{"type": "signedBy", "keyType": "GPGKeys", "keyPaths": ["{gpg}", "{gpg_binary}"]}}],
            "registry.example/gpg-pem": [{{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "{cosign}"}}],
            "registry.example/gpg-data": [{{"type": "signedBy", "keyType": "GPGKeys", "keyData": "bm9uc2Vuc2U="}}],
            "registry.example/x509": [{{"type": "signedBy", "keyType": "X509Certificates", "keyPath": "{cosign}"}}],
            "registry.example/g": [{{"type": "sigstoreSigned", "keyData": "bm9uc2Vuc2U="}}],
            "registry.example/h": [{{"type": "sigstoreSigned", "cfsgate": {{"threshold": 5, "keys": [{{"keyring": "cfsgate"}}]}}}}]
        }},
        "dir": {{"": [{{"type": "insecureAcceptAnything"}}]}},
        "my-transport": {{"x": [{{"type": "reject"}}]}}
    }}
}}"#,
        cosign = cosign.display(),
        cosign2 = cosign2.display(),
        gpg = fixtures().join("public-key.gpg").display(),
        gpg_binary = fixtures().join("pubring.gpg").display(),
        missing = missing.display(),
        not_pem = not_pem.display(),
        openssl = openssl_key.display(),
    );
    let policy = parse_policy(text.as_bytes()).unwrap();
    let findings = lint(&policy, Path::new("/"));
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() as u32 + 1;
    let one = |severity, needle: &str, line: u32| {
        let found = findings_with(&findings, severity, needle);
        assert_eq!(found.len(), 1, "{needle}: {findings:#?}");
        assert_eq!(found[0].location.line, line, "{needle}: {:?}", found[0]);
    };
    one(
        Severity::Warning,
        "global default accepts any image",
        line_of("\"default\""),
    );
    one(
        Severity::Warning,
        "\"busybox\" can never match",
        line_of("\"busybox\":"),
    );
    one(
        Severity::Warning,
        "normalised name \"docker.io/library/busybox\"",
        line_of("\"docker.io/busybox\""),
    );
    one(Severity::Warning, "wildcard", line_of("*.bad/path"));
    one(
        Severity::Error,
        "threshold 3 is larger than the 2",
        line_of("\"threshold\": 3"),
    );
    one(
        Severity::Error,
        "missing.pub: cannot read key file",
        line_of("registry.example/c"),
    );
    one(
        Severity::Error,
        "not-a-key.pub: does not contain PEM PUBLIC KEY",
        line_of("registry.example/d"),
    );
    one(
        Severity::Error,
        "empty validity window",
        line_of("\"notBefore\""),
    );
    one(
        Severity::Warning,
        "window is never applied",
        line_of("\"notBefore\""),
    );
    // signedBy GPGKeys: key files must exist and hold OpenPGP keys (armoured or binary).
    one(
        Severity::Error,
        "/nonexistent/gpg: cannot read key file",
        line_of("registry.example/f"),
    );
    one(
        Severity::Error,
        "cosign.pub: holds no OpenPGP key",
        line_of("registry.example/gpg-pem"),
    );
    one(
        Severity::Error,
        "keyData: holds no OpenPGP key",
        line_of("registry.example/gpg-data"),
    );
    let gpg_ok = line_of("registry.example/gpg-ok");
    assert!(
        findings.iter().all(|f| f.location.line != gpg_ok),
        "{findings:#?}"
    );
    one(
        Severity::Warning,
        "\"X509Certificates\" is not implemented",
        line_of("registry.example/x509"),
    );
    one(
        Severity::Error,
        "keyData: does not contain PEM",
        line_of("\"registry.example/g\""),
    );
    one(
        Severity::Info,
        "cosign.pub is trusted under several scopes",
        line_of("registry.example/a"),
    );
    one(Severity::Info, "every dir image", line_of("\"dir\""));
    one(
        Severity::Warning,
        "\"my-transport\" is unknown",
        line_of("my-transport"),
    );
    // Real keys (cosign fixtures, openssl output) are not reported as unreadable.
    assert!(
        findings
            .iter()
            .all(|f| !(f.message.contains("cosign2.pub") && f.severity == Severity::Error)),
        "{findings:#?}"
    );
    assert!(
        findings_with(&findings, Severity::Error, "ed25519.pub").is_empty(),
        "{findings:#?}"
    );
    // A whole keyring has an unknown number of keys: no threshold finding for h.
    assert!(findings_with(&findings, Severity::Error, "threshold 5").is_empty());
    // Located output format.
    assert!(findings[0]
        .to_string()
        .starts_with(&format!("{}:", findings[0].location)));
}

#[test]
fn lint_of_the_upstream_fixture_flags_gpg_and_missing_keys() {
    let policy = load_policy_file(&fixtures().join("policy.json")).unwrap();
    let findings = lint(&policy, Path::new("/"));
    // 11 signedBy + 2 signedBaseLayer requirements in the file (count of `"type": "signedBy"` etc.).
    let text = std::fs::read_to_string(fixtures().join("policy.json")).unwrap();
    // signedBy with keyType GPGKeys is evaluated; the reserved key types always reject.
    let unsupported = text.matches("\"type\": \"signedBy\"").count()
        - text.matches("\"keyType\": \"GPGKeys\"").count()
        + text.matches("\"type\": \"signedBaseLayer\"").count();
    assert_eq!(
        findings
            .iter()
            .filter(|f| f.message.contains("always rejects"))
            .count(),
        unsupported
    );
    assert_eq!(
        findings_with(&findings, Severity::Error, "/keys/public-key: cannot read").len(),
        1
    );
    // Its GPGKeys keyrings (/keys/employee-gpg-keyring twice) are not on this machine.
    assert_eq!(
        findings_with(
            &findings,
            Severity::Error,
            "/keys/employee-gpg-keyring: cannot read"
        )
        .len(),
        2
    );
    assert_eq!(
        findings_with(&findings, Severity::Error, "keyData").len(),
        1,
        "\"nonsense\" is not PEM"
    );
}

#[test]
fn lint_root_prefixes_key_paths() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc/keys")).unwrap();
    std::fs::copy(
        fixtures().join("cosign.pub"),
        root.path().join("etc/keys/cosign.pub"),
    )
    .unwrap();
    let policy = parse_policy(
        br#"{"default": [{"type": "sigstoreSigned", "keyPath": "/etc/keys/cosign.pub"}]}"#,
    )
    .unwrap();
    assert!(lint(&policy, root.path())
        .iter()
        .all(|f| f.severity != Severity::Error));
    assert!(lint(&policy, Path::new("/nonexistent-root"))
        .iter()
        .any(|f| f.severity == Severity::Error));
}

fn arb_identity() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#"{"type": "matchExact"}"#.to_string()),
        Just(r#"{"type": "matchRepoDigestOrExact"}"#.to_string()),
        Just(r#"{"type": "matchRepository"}"#.to_string()),
        "[a-z]{1,8}".prop_map(|n| format!(r#"{{"type": "exactReference", "dockerReference": "example.com/{n}:v1"}}"#)),
        "[a-z]{1,8}".prop_map(|n| format!(r#"{{"type": "exactRepository", "dockerRepository": "{n}"}}"#)),
        "[a-z]{1,8}".prop_map(|n| format!(r#"{{"type": "remapIdentity", "prefix": "mirror.example/{n}", "signedPrefix": "example.com"}}"#)),
    ]
}

fn arb_requirement() -> impl Strategy<Value = String> {
    let path = "/[a-z]{1,6}(/[a-z0-9._-]{1,6}){0,2}";
    prop_oneof![
        Just(r#"{"type": "insecureAcceptAnything"}"#.to_string()),
        Just(r#"{"type": "reject"}"#.to_string()),
        (proptest::bool::ANY, prop_oneof![Just(""), Just(", \"verity\": \"kernel\""), Just(", \"verity\": \"userspace\"")])
            .prop_map(|(sealed, verity)| format!(r#"{{"type": "composefs", "sealed": {sealed}{verity}}}"#)),
        (path, arb_identity()).prop_map(|(p, i)| format!(r#"{{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "{p}", "signedIdentity": {i}}}"#)),
        (proptest::collection::vec(path, 1..4), arb_identity(), 1u32..4, proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..20), 0..3), 0i64..4_000_000_000)
            .prop_map(|(paths, i, threshold, datas, t)| {
                let paths: Vec<String> = paths.iter().map(|p| format!("\"{p}\"")).collect();
                let keys: Vec<String> = datas
                    .iter()
                    .map(|d| {
                        use base64::Engine as _;
                        format!(r#"{{"keyData": "{}", "notAfter": "{}"}}"#, base64::engine::general_purpose::STANDARD.encode(d), Timestamp(t))
                    })
                    .chain(std::iter::once(r#"{"keyring": "cfsgate", "description": "k1"}"#.to_string()))
                    .collect();
                format!(
                    r#"{{"type": "sigstoreSigned", "keyPaths": [{}], "rekorPublicKeyPath": "/r.pub", "signedIdentity": {i}, "cfsgate": {{"threshold": {threshold}, "keys": [{}]}}}}"#,
                    paths.join(", "),
                    keys.join(", ")
                )
            }),
    ]
}

fn arb_policy() -> impl Strategy<Value = String> {
    let list = || {
        proptest::collection::vec(arb_requirement(), 1..3)
            .prop_map(|r| format!("[{}]", r.join(", ")))
    };
    let docker_scope = prop_oneof![
        Just(String::new()),
        "[a-z]{1,5}\\.example(/[a-z0-9]{1,5}){0,2}",
        "\\*\\.[a-z]{1,5}\\.com"
    ];
    let dir_scope = "/[a-z]{1,5}(/[a-z0-9]{1,5}){0,2}";
    (
        list(),
        proptest::collection::btree_map(docker_scope, (list(), proptest::bool::ANY), 0..5),
        proptest::collection::btree_map(dir_scope, list(), 0..3),
        proptest::bool::ANY,
    )
        .prop_map(|(default, docker, dir, default_warn)| {
            let docker_json: Vec<String> = docker.iter().map(|(k, (v, _))| format!("\"{k}\": {v}")).collect();
            let dir_json: Vec<String> = dir.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
            let warn: Vec<String> = docker.iter().filter(|(_, (_, w))| *w).map(|(k, _)| format!("\"{k}\": \"warn\"")).collect();
            let mut modes = Vec::new();
            if default_warn {
                modes.push("\"default\": \"warn\"".to_string());
            }
            if !warn.is_empty() {
                modes.push(format!("\"transports\": {{\"docker\": {{{}}}}}", warn.join(", ")));
            }
            format!(
                r#"{{"default": {default}, "transports": {{"docker": {{{}}}, "dir": {{{}}}}}, "cfsgate": {{"modes": {{{}}}}}}}"#,
                docker_json.join(", "),
                dir_json.join(", "),
                modes.join(", ")
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Generated valid policies parse; serialising and re-parsing gives the same model
    /// (compared through the serialisation, since locations change), and every scope
    /// still resolves to the same requirements.
    #[test]
    fn generated_policies_round_trip(text in arb_policy()) {
        let first = parse_policy(text.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let serialized = to_json(&first);
        let second = parse_policy(serialized.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{serialized}")))?;
        prop_assert_eq!(&to_json(&second), &serialized);
        prop_assert_eq!(second.default.mode, first.default.mode);
        for (a, b) in first.transports.iter().zip(&second.transports) {
            prop_assert_eq!(&a.name, &b.name);
            for (x, y) in a.scopes.iter().zip(&b.scopes) {
                prop_assert_eq!(&x.name, &y.name);
                prop_assert_eq!(x.mode, y.mode);
                // Requirements equal up to locations of key files.
                prop_assert_eq!(x.requirements.len(), y.requirements.len());
                for (r, s) in x.requirements.iter().zip(&y.requirements) {
                    prop_assert_eq!(r.type_name(), s.type_name());
                    if let (Requirement::SigstoreSigned(r), Requirement::SigstoreSigned(s)) = (r, s) {
                        prop_assert_eq!(r.threshold(), s.threshold());
                        prop_assert_eq!(&r.signed_identity, &s.signed_identity);
                        let keys = |k: Vec<TrustedKey>| k.into_iter().map(|k| (k.material, k.window)).collect::<Vec<_>>();
                        prop_assert_eq!(keys(r.trusted_keys(Location::default())), keys(s.trusted_keys(Location::default())));
                    }
                }
            }
        }
    }
}

/// 1,000 scopes and 50 real key files: parse, lint-free load and resolution stay fast
/// (the process-level benchmark of `cfsgate verify` is elsewhere; this guards the
/// library's share of the 5 ms budget, with a generous bound for debug builds).
#[test]
fn thousand_scopes_fifty_keys_load_and_resolve_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<PathBuf> = (0..50)
        .map(|i| {
            let path = dir.path().join(format!("key-{i}.pub"));
            std::fs::copy(
                fixtures().join(if i % 2 == 0 {
                    "cosign.pub"
                } else {
                    "cosign2.pub"
                }),
                &path,
            )
            .unwrap();
            path
        })
        .collect();
    let text = synthetic::synthetic_policy_json(1000, &keys);
    let path = dir.path().join("policy.json");
    std::fs::write(&path, &text).unwrap();
    let image = ImageRef::docker(
        DockerReference::parse_normalized("registry.example/team-995/app:v1").unwrap(),
    )
    .unwrap();
    let mut times = Vec::new();
    for _ in 0..11 {
        let start = Instant::now();
        let policy = load_policy_file(&path).unwrap();
        let matched = policy.requirements_for(&image);
        assert_eq!(matched.scope.name, "registry.example/team-995/app");
        assert_eq!(matched.mode(), Mode::Warn);
        assert_eq!(matched.requirements().len(), 1);
        times.push(start.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    eprintln!(
        "load + resolve, 1000 scopes / 50 keys: median {median:?} ({} bytes)",
        text.len()
    );
    // Speed is measured by benches/verify.sh, not asserted here (a loaded CI machine would
    // make any bound either flaky or meaningless).
    let policy = load_policy_file(&path).unwrap();
    let findings = lint(&policy, Path::new("/"));
    assert!(
        findings.iter().all(|f| f.severity != Severity::Error),
        "{:?}",
        findings.iter().find(|f| f.severity == Severity::Error)
    );
}

/// #14 item 10: a threshold met only by the same key listed twice — a byte copy, its DER twin,
/// its compressed point — is an error; a key file of several PEM blocks is an error; the rules
/// that stay silent when the keys really are distinct.
#[test]
fn lint_counts_keys_not_entries_and_refuses_several_pem_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let path = |name: &str| dir.path().join(name).display().to_string();
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &path("p256.pem"),
    ]);
    openssl(&[
        "ec",
        "-in",
        &path("p256.pem"),
        "-pubout",
        "-out",
        &path("p256.pub"),
    ]);
    openssl(&[
        "ec",
        "-in",
        &path("p256.pem"),
        "-pubout",
        "-outform",
        "DER",
        "-out",
        &path("p256.der"),
    ]);
    openssl(&[
        "ec",
        "-in",
        &path("p256.pem"),
        "-pubout",
        "-conv_form",
        "compressed",
        "-out",
        &path("p256-compressed.pub"),
    ]);
    std::fs::copy(path("p256.pub"), path("p256-copy.pub")).unwrap();
    let cosign = fixtures().join("cosign.pub").display().to_string();
    let cosign2 = fixtures().join("cosign2.pub").display().to_string();
    let two_blocks = path("two.pub");
    std::fs::write(
        &two_blocks,
        [
            std::fs::read(&cosign).unwrap(),
            std::fs::read(&cosign2).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    let scope = |name: &str, keys: &[&str], threshold: u32| {
        format!(
            r#""registry.example/{name}": [{{"type": "sigstoreSigned", "keyPaths": {}, "signedIdentity": {{"type": "matchRepository"}}, "cfsgate": {{"threshold": {threshold}}}}}]"#,
            serde_json::to_string(keys).unwrap()
        )
    };
    let scopes = [
        scope("copy", &[&path("p256.pub"), &path("p256-copy.pub")], 2),
        scope("der", &[&path("p256.pub"), &path("p256.der")], 2),
        scope(
            "compressed",
            &[&path("p256.pub"), &path("p256-compressed.pub")],
            2,
        ),
        scope("distinct", &[&cosign, &cosign2], 2),
        scope("twice-threshold-one", &[&cosign, &cosign], 1),
        scope("two-blocks", &[&two_blocks], 1),
    ];
    let text = format!(
        "{{\"default\": [{{\"type\": \"reject\"}}], \"transports\": {{\"docker\": {{\n{}\n}}}}}}",
        scopes.join(",\n")
    );
    let policy = parse_policy(text.as_bytes()).unwrap();
    let findings = lint(&policy, Path::new("/"));
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() as u32 + 1;
    let errors_on = |name: &str| -> Vec<String> {
        let line = line_of(&format!("registry.example/{name}\""));
        findings
            .iter()
            .filter(|f| f.severity == Severity::Error && f.location.line == line)
            .map(|f| f.message.clone())
            .collect()
    };
    for name in ["copy", "der", "compressed"] {
        let errors = errors_on(name);
        let threshold: Vec<_> = errors
            .iter()
            .filter(|e| e.contains("threshold 2 needs 2 distinct keys, but the 2 entries are only 1 distinct key(s) (the key at "))
            .collect();
        assert_eq!(threshold.len(), 1, "{name}: {findings:#?}");
        // containers/image reads sigstore keys as PEM only: the DER twin is an error itself.
        let expected = if name == "der" { 2 } else { 1 };
        assert_eq!(errors.len(), expected, "{name}: {errors:?}");
    }
    assert!(errors_on("distinct").is_empty(), "{findings:#?}");
    assert!(errors_on("twice-threshold-one").is_empty(), "{findings:#?}");
    let twice = findings_with(&findings, Severity::Warning, "listed twice, it counts once");
    assert_eq!(twice.len(), 1, "{findings:#?}");
    assert_eq!(
        twice[0].location.line,
        line_of("registry.example/twice-threshold-one")
    );
    let errors = errors_on("two-blocks");
    assert_eq!(errors.len(), 1, "{findings:#?}");
    assert!(
        errors[0].contains("two.pub: holds 2 PEM blocks"),
        "{errors:?}"
    );
    // The same file is refused when a signature is verified with it.
    let error = cfsgate_keyring::PublicKey::from_file(Path::new(&two_blocks))
        .unwrap_err()
        .to_string();
    assert!(error.contains("two.pub: holds 2 PEM blocks"), "{error}");
}

/// #14 item 10: containers/image refuses `pki` with `rekorPublicKey*`, and an upper-case first
/// path component is not a registry host.
#[test]
fn pki_with_rekor_and_uppercase_first_components_are_refused() {
    let pki = |extra: &str| {
        format!(
            r#"{{"default": [{{"type": "sigstoreSigned", "pki": {{"caRootsPath": "/etc/ca.pem", "subjectEmail": "a@example.com"}}{extra}}}]}}"#
        )
    };
    assert!(parse_policy(pki("").as_bytes()).is_ok());
    for field in ["rekorPublicKeyPath", "rekorPublicKeyData"] {
        let value = if field.ends_with("Path") {
            "\"/etc/rekor.pub\""
        } else {
            "\"cmVrb3I=\""
        };
        let text = pki(&format!(", \"{field}\": {value}"));
        let error = parse_policy(text.as_bytes()).unwrap_err().to_string();
        assert!(
            error.contains("are not supported for pki"),
            "{field}: {error}"
        );
    }
    let text = pki(r#", "rekorPublicKeyPaths": ["/etc/rekor.pub"]"#);
    assert!(parse_policy(text.as_bytes()).is_err());
    let scope = |name: &str| {
        format!(
            r#"{{"default": [{{"type": "reject"}}], "transports": {{"docker": {{"{name}": [{{"type": "reject"}}]}}}}}}"#
        )
    };
    let policy = parse_policy(scope("UPPERCASE").as_bytes()).unwrap();
    let findings = lint(&policy, Path::new("/"));
    assert_eq!(
        findings_with(&findings, Severity::Warning, "not a registry host").len(),
        1,
        "{findings:#?}"
    );
    for name in ["UPPERCASE/foo", "Upper/foo:tag"] {
        let policy = parse_policy(scope(name).as_bytes()).unwrap();
        let findings = lint(&policy, Path::new("/"));
        assert!(
            findings
                .iter()
                .any(|f| f.message.contains("can never match")
                    && f.message.contains("must be lowercase")),
            "{name}: {findings:#?}"
        );
    }
}
