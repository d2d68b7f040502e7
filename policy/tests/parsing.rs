//! Parsing: the upstream fixture policy, every malformed case with its line:column, and
//! the cfsgate extensions.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

use cfsgate_policy::*;
use std::path::Path;

const CONFORMANCE_POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/conformance/containers-image/policy.json"
);

fn parse(text: &str) -> Result<Policy, PolicyError> {
    parse_policy(text.as_bytes())
}

/// Where an error must point, found in the text itself (independently of the parser).
enum Mark<'a> {
    /// The first character of the first occurrence.
    At(&'a str),
    /// That many characters after the start of the first occurrence.
    After(&'a str, usize),
    /// The first character of the last occurrence.
    Last(&'a str),
    /// Just past the end of the text.
    End,
}

fn line_column(text: &str, index: usize) -> (u32, u32) {
    let before = &text[..index];
    let line = before.matches('\n').count() as u32 + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() as u32 + 1;
    (line, column)
}

fn locate(text: &str, mark: Mark) -> (u32, u32) {
    let find = |m: &str| text.find(m).unwrap_or_else(|| panic!("{m} not in {text}"));
    match mark {
        Mark::At(m) => line_column(text, find(m)),
        Mark::After(m, n) => {
            let start = find(m);
            let skip: usize = text[start..].chars().take(n).map(char::len_utf8).sum();
            line_column(text, start + skip)
        }
        Mark::Last(m) => line_column(text, text.rfind(m).unwrap()),
        Mark::End => line_column(text, text.len()),
    }
}

/// Asserts that `text` fails at `(line, column)` with an error of the kind `check` accepts.
fn fails_at(text: &str, mark: Mark, check: impl Fn(&PolicyErrorKind) -> bool) {
    let (line, column) = locate(text, mark);
    let error = parse(text).expect_err(text);
    assert_eq!(
        (error.location.line, error.location.column),
        (line, column),
        "{error} for\n{text}"
    );
    assert!(check(&error.kind), "unexpected kind {error:?}");
    assert!(
        error.to_string().starts_with(&format!("{line}:{column}: ")),
        "{error}"
    );
}

#[test]
fn upstream_fixture_policy_parses() {
    let policy = load_policy_file(Path::new(CONFORMANCE_POLICY)).unwrap();
    assert_eq!(policy.default.requirements, vec![Requirement::Reject]);
    let docker = policy.transport("docker").unwrap();
    assert_eq!(docker.scopes.len(), 14);
    assert_eq!(
        policy
            .transport("dir")
            .unwrap()
            .scope("")
            .unwrap()
            .requirements,
        vec![Requirement::InsecureAcceptAnything]
    );
    match &docker
        .scope("private-mirror:5000/vendor-mirror")
        .unwrap()
        .requirements[0]
    {
        Requirement::SignedBy(s) => {
            assert_eq!(s.key_type, SignedByKeyType::GpgKeys);
            assert_eq!(
                s.signed_identity,
                SignedIdentity::RemapIdentity {
                    prefix: "private-mirror:5000/vendor-mirror".into(),
                    signed_prefix: "vendor.example.com".into()
                }
            );
        }
        other => panic!("{other:?}"),
    }
    let hardened = docker.scope("example.com/hardened").unwrap();
    assert_eq!(hardened.requirements.len(), 3);
    assert_eq!(hardened.requirements[2].type_name(), "signedBaseLayer");
    // GPGKeys is evaluated; signedByGPGKeys is reserved (unimplemented upstream too).
    assert_eq!(hardened.requirements[0].unsupported_reason(), None);
    assert!(hardened.requirements[1]
        .unsupported_reason()
        .unwrap()
        .contains("\"signedByGPGKeys\" is not implemented"));
    match &docker
        .scope("example.com/sigstore/key-data-example")
        .unwrap()
        .requirements[0]
    {
        Requirement::SigstoreSigned(s) => {
            assert_eq!(
                s.signed_identity,
                SignedIdentity::MatchRepoDigestOrExact,
                "default identity"
            );
            assert_eq!(
                s.trust_root,
                TrustRoot::PublicKeys {
                    standard: Some(KeyList::Data(b"nonsense".to_vec())),
                    extension: vec![]
                }
            );
            assert_eq!(s.threshold(), 1);
        }
        other => panic!("{other:?}"),
    }
    // Locations point into the file (`grep -n playground`: line 16, indented 12 spaces).
    let playground = docker.scope("example.com/playground").unwrap();
    let text = std::fs::read_to_string(CONFORMANCE_POLICY).unwrap();
    assert_eq!(
        (playground.location.line, playground.location.column),
        locate(&text, Mark::At("\"example.com/playground\""))
    );
    // Lookup through the fixture.
    let image =
        ImageRef::docker(DockerReference::parse_normalized("foo.access.redhat.com/x").unwrap())
            .unwrap();
    assert_eq!(
        policy.requirements_for(&image).scope.name,
        "*.access.redhat.com"
    );
    let image =
        ImageRef::docker(DockerReference::parse_normalized("registry.redhat.io/beta/x:1").unwrap())
            .unwrap();
    assert_eq!(
        policy.requirements_for(&image).scope.name,
        "registry.redhat.io/beta"
    );
}

#[test]
fn unknown_fields_are_located() {
    fails_at(
        "{\"default\": [{\"type\": \"reject\"}],\n \"extra\": 1}",
        Mark::At("\"extra\""),
        |k| matches!(k, PolicyErrorKind::UnknownField { field, .. } if field == "extra"),
    );
    fails_at(
        "{\"default\": [\n  {\"type\": \"reject\", \"keyPath\": \"/k\"}]}",
        Mark::At("\"keyPath\""),
        |k| matches!(k, PolicyErrorKind::UnknownField { field, .. } if field == "keyPath"),
    );
    fails_at(
        "{\"default\": [{\"type\": \"sigstoreSigned\", \"keyPath\": \"/k.pub\",\n   \"signedIdentity\": {\"type\": \"matchExact\", \"dockerReference\": \"x:y\"}}]}",
        Mark::At("\"dockerReference\""),
        |k| matches!(k, PolicyErrorKind::UnknownField { field, .. } if field == "dockerReference"),
    );
}

#[test]
fn duplicate_keys_top_level_and_nested() {
    fails_at("{\"default\": [{\"type\": \"reject\"}],\n\"default\": [{\"type\": \"insecureAcceptAnything\"}]}", Mark::Last("\"default\""), |k| *k == PolicyErrorKind::DuplicateKey("default".into()));
    fails_at(
        "{\"default\": [{\"type\": \"reject\"}], \"transports\": {\"docker\": {\n  \"a.example/x\": [{\"type\": \"reject\"}],\n  \"a.example/x\": [{\"type\": \"insecureAcceptAnything\"}]}}}",
        Mark::Last("\"a.example/x\""),
        |k| *k == PolicyErrorKind::DuplicateKey("a.example/x".into()),
    );
    fails_at(
        "{\"default\": [{\"type\": \"reject\", \"type\": \"insecureAcceptAnything\"}]}",
        Mark::At("\"type\": \"insecureAcceptAnything\""),
        |k| matches!(k, PolicyErrorKind::DuplicateKey(_)),
    );
}

#[test]
fn empty_requirement_lists() {
    fails_at("{\"default\": []}", Mark::At("[]"), |k| {
        *k == PolicyErrorKind::EmptyRequirements
    });
    fails_at(
        "{\"default\": [{\"type\": \"reject\"}],\n \"transports\": {\"dir\": {\"\": []}}}",
        Mark::At("[]"),
        |k| *k == PolicyErrorKind::EmptyRequirements,
    );
    fails_at(
        "{\"transports\": {}}",
        Mark::At("{"),
        |k| matches!(k, PolicyErrorKind::MissingField { field, .. } if field == "default"),
    );
}

#[test]
fn relative_key_paths() {
    fails_at(
        "{\"default\": [{\"type\": \"sigstoreSigned\",\n \"keyPath\": \"cosign.pub\"}]}",
        Mark::At("\"cosign.pub\""),
        |k| matches!(k, PolicyErrorKind::RelativePath { path, .. } if path == "cosign.pub"),
    );
    fails_at("{\"default\": [{\"type\": \"sigstoreSigned\", \"keyPaths\": [\"/a.pub\",\n  \"./b.pub\"]}]}", Mark::At("\"./b.pub\""), |k| matches!(k, PolicyErrorKind::RelativePath { .. }));
    fails_at("{\"default\": [{\"type\": \"sigstoreSigned\", \"keyPath\": \"/a.pub\", \"rekorPublicKeyPath\": \"rekor.pub\"}]}", Mark::At("\"rekor.pub\""), |k| matches!(k, PolicyErrorKind::RelativePath { .. }));
}

#[test]
fn key_source_exactly_one_of() {
    fails_at(
        "{\"default\": [{\"type\": \"sigstoreSigned\", \"keyPath\": \"/a.pub\",\n  \"keyData\": \"bm9uc2Vuc2U=\"}]}",
        Mark::At("\"keyData\""),
        |k| matches!(k, PolicyErrorKind::Conflict(m) if m.contains("exactly one of keyPath")),
    );
    fails_at(
        "{\"default\": [{\"type\": \"sigstoreSigned\"}]}",
        Mark::At("{\"type\": \"sigstoreSigned\""),
        |k| matches!(k, PolicyErrorKind::Conflict(m) if m.contains("none")),
    );
    fails_at(
        "{\"default\": [{\"type\": \"sigstoreSigned\", \"keyPath\": \"/a\", \"rekorPublicKeyPath\": \"/r\", \"rekorPublicKeyData\": \"AA==\"}]}",
        Mark::At("\"rekorPublicKeyData\""),
        |k| matches!(k, PolicyErrorKind::Conflict(m) if m.contains("at most one of rekor")),
    );
    fails_at(
        "{\"default\": [{\"type\": \"sigstoreSigned\", \"fulcio\": {\"caPath\": \"/ca\", \"oidcIssuer\": \"i\", \"subjectEmail\": \"e\"}}]}",
        Mark::At("\"fulcio\""),
        |k| matches!(k, PolicyErrorKind::Conflict(m) if m.contains("if fulcio is used")),
    );
    fails_at(
        "{\"default\": [{\"type\": \"sigstoreSigned\", \"keyPaths\": []}]}",
        Mark::At("[]"),
        |k| matches!(k, PolicyErrorKind::InvalidValue { .. }),
    );
    fails_at(
        "{\"default\": [{\"type\": \"signedBy\", \"keyType\": \"GPGKeys\"}]}",
        Mark::At("{\"type\": \"signedBy\""),
        |k| matches!(k, PolicyErrorKind::Conflict(_)),
    );
    fails_at(
        "{\"default\": [{\"type\": \"signedBy\", \"keyType\": \"PGP\", \"keyPath\": \"/k\"}]}",
        Mark::At("\"PGP\""),
        |k| matches!(k, PolicyErrorKind::InvalidValue { .. }),
    );
    fails_at(
        "{\"default\": [{\"type\": \"sigstoreSigned\", \"keyData\": \"%%%\"}]}",
        Mark::At("\"%%%\""),
        |k| matches!(k, PolicyErrorKind::InvalidValue { field, .. } if field == "keyData"),
    );
}

#[test]
fn bad_signed_identity() {
    let base = |identity: &str| {
        format!("{{\"default\": [{{\"type\": \"sigstoreSigned\", \"keyPath\": \"/k\",\n \"signedIdentity\": {identity}}}]}}")
    };
    fails_at(
        &base("{\"type\": \"matchEverything\"}"),
        Mark::At("\"matchEverything\""),
        |k| matches!(k, PolicyErrorKind::InvalidSignedIdentity(_)),
    );
    fails_at(
        &base("{\"type\": \"exactReference\", \"dockerReference\": \"busybox\"}"),
        Mark::At("\"busybox\""),
        |k| matches!(k, PolicyErrorKind::InvalidSignedIdentity(m) if m.contains("neither a tag nor digest")),
    );
    fails_at(
        &base("{\"type\": \"exactRepository\", \"dockerRepository\": \"Not/Valid\"}"),
        Mark::At("\"Not/Valid\""),
        |k| matches!(k, PolicyErrorKind::InvalidSignedIdentity(_)),
    );
    fails_at(&base("{\"type\": \"remapIdentity\", \"prefix\": \"example.com:tag:x\", \"signedPrefix\": \"a.b\"}"), Mark::At("\"example.com:tag:x\""), |k| matches!(k, PolicyErrorKind::InvalidSignedIdentity(_)));
    fails_at(
        &base("{\"type\": \"exactReference\"}"),
        Mark::At("{\"type\": \"exactReference\"}"),
        |k| matches!(k, PolicyErrorKind::MissingField { field, .. } if field == "dockerReference"),
    );
    fails_at(&base("\"matchExact\""), Mark::At("\"matchExact\""), |k| {
        matches!(k, PolicyErrorKind::WrongType { .. })
    });
}

#[test]
fn bad_scope_for_transport() {
    let with = |transport: &str, scope: &str| {
        format!("{{\"default\": [{{\"type\": \"reject\"}}],\n\"transports\": {{\"{transport}\": {{\n    \"{scope}\": [{{\"type\": \"reject\"}}]}}}}}}")
    };
    for (transport, scope) in [
        ("dir", "relative/path"),
        ("dir", "/"),
        ("dir", "/a/../b"),
        ("oci", "/a/b/"),
        ("oci-archive", "x.tar"),
        ("docker-daemon", "busybox:latest"),
        ("docker-archive", "/x.tar"),
    ] {
        let scope_key = format!("\"{scope}\":");
        fails_at(&with(transport, scope), Mark::Last(&scope_key), |k| {
            matches!(k, PolicyErrorKind::InvalidScope { .. })
        });
    }
    // Valid ones for comparison; docker accepts any key, as upstream.
    for (transport, scope) in [
        ("dir", "/a/b"),
        ("oci", "/srv/oci"),
        ("docker", "whatever"),
        ("some-future-transport", "x"),
    ] {
        parse(&with(transport, scope)).unwrap();
    }
}

#[test]
fn json_syntax_errors_are_located() {
    fails_at(
        "{\"default\": [{\"type\": \"reject\"}]}\ngarbage",
        Mark::At("garbage"),
        |k| *k == PolicyErrorKind::TrailingData,
    );
    fails_at(
        "{\"default\": [{\"type\": \"reject\"}]} {}",
        Mark::Last("{}"),
        |k| *k == PolicyErrorKind::TrailingData,
    );
    fails_at(
        "{\"default\": [{\"type\": \"reject\"},]}",
        Mark::At("]}"),
        |k| matches!(k, PolicyErrorKind::Syntax(_)),
    );
    fails_at("{\"default\": [{\"type\": \"reject\"}]", Mark::End, |k| {
        matches!(k, PolicyErrorKind::Syntax(_))
    });
    fails_at(
        "{\"default\": [{\"type\": \"reject\"}],\n \"r\u{e9}x\" 1}",
        Mark::At("1}"),
        |k| matches!(k, PolicyErrorKind::Syntax(_)),
    );
    fails_at("", Mark::End, |k| matches!(k, PolicyErrorKind::Syntax(_)));
    // The policy object is level 1, so the 64th `[` is the 65th level.
    let deep = format!("{{\"default\": {}{}}}", "[".repeat(100), "]".repeat(100));
    fails_at(&deep, Mark::After("[", 63), |k| {
        *k == PolicyErrorKind::TooDeep
    });
    // The first problem in the file is the one reported, whatever its kind (the reader
    // streams the policy): here a semantic error before a syntax error.
    fails_at(
        "{\"default\": [{\"type\": \"nope\"}], \"transports\": {,}}",
        Mark::At("\"nope\""),
        |k| matches!(k, PolicyErrorKind::UnknownRequirementType(_)),
    );
    fails_at(
        "{\"default\": [{\"type\": \"reject\"}], \"transports\": {,}, \"x\": 1}",
        Mark::At(",}"),
        |k| matches!(k, PolicyErrorKind::Syntax(_)),
    );
    fails_at("{\"default\": \"reject\"}", Mark::At("\"reject\""), |k| {
        matches!(k, PolicyErrorKind::WrongType { .. })
    });
    fails_at(
        "{\"default\": [{\"type\": \"signedByMagic\"}]}",
        Mark::At("\"signedByMagic\""),
        |k| matches!(k, PolicyErrorKind::UnknownRequirementType(_)),
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    // "é" is two bytes; the unknown key after it is at character column 29.
    fails_at(
        "{\"default\": [{\"type\": \"reject\", \"é\": 1}]}",
        Mark::At("\"é\""),
        |k| matches!(k, PolicyErrorKind::UnknownField { field, .. } if field == "é"),
    );
}

proptest::proptest! {
    /// Strings are scanned eight bytes at a time: whatever mix of 1- to 4-byte characters
    /// and escapes a string holds, and wherever they fall relative to the 8-byte words,
    /// the location after it is counted in characters, as the test's own count says.
    #[test]
    fn columns_after_any_string_count_characters(
        parts in proptest::collection::vec(
            proptest::sample::select(vec!["a", "é", "€", "𝄞", "\\n", "\\u00e9", " ", "/"]),
            0..40,
        ),
        newlines in 0usize..3,
    ) {
        let content: String = parts.concat();
        let text = format!(
            "{{\"default\": [{{\"type\": \"reject\"}}],{}\"cfsgate\": {{\"x\": \"{content}\", \"bad\": [}}}}",
            "\n".repeat(newlines)
        );
        let error = parse(&text).unwrap_err();
        // The error is at the `}` that closes nothing: after `[`.
        let index = text.find("[}").unwrap() + 1;
        let (line, column) = line_column(&text, index);
        proptest::prop_assert_eq!((error.location.line, error.location.column), (line, column));
    }
}

#[test]
fn first_of_several_duplicates_in_a_large_object_is_reported() {
    // Two different keys repeated; the repeat that comes first in the file is reported
    // even though the other key sorts first.
    let mut scopes: Vec<String> = (0..30)
        .map(|i| format!("\"r.example/s{i}\": [{{\"type\": \"reject\"}}]"))
        .collect();
    scopes.push("\"r.example/s9\": [{\"type\": \"reject\"}]".into());
    scopes.push("\"r.example/s1\": [{\"type\": \"reject\"}]".into());
    let text = format!(
        "{{\"default\": [{{\"type\": \"reject\"}}], \"transports\": {{\"docker\": {{\n{}}}}}}}",
        scopes.join(",\n")
    );
    fails_at(&text, Mark::Last("\"r.example/s9\""), |k| {
        *k == PolicyErrorKind::DuplicateKey("r.example/s9".into())
    });
}

#[test]
fn invalid_utf8_is_located() {
    let mut bytes = b"{\"default\": [{\"type\": \"reject\"}],\n \"transports\": {\"x".to_vec();
    bytes.push(0xff);
    bytes.extend_from_slice(b"\": {}}}");
    let error = parse_policy(&bytes).unwrap_err();
    assert_eq!(error.kind, PolicyErrorKind::InvalidUtf8);
    assert_eq!((error.location.line, error.location.column), (2, 19));
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.json");
    std::fs::write(&path, "{\"default\": []}").unwrap();
    let message = load_policy_file(&path).unwrap_err().to_string();
    assert_eq!(
        message,
        format!(
            "{}:1:13: the list of requirements must not be empty",
            path.display()
        )
    );
    assert!(matches!(
        load_policy_file(&dir.path().join("missing.json")),
        Err(LoadError::Read { .. })
    ));
}

const EXTENDED: &str = r#"{
    "default": [{"type": "reject"}],
    "transports": {
        "docker": {
            "registry.example/prod": [
                {
                    "type": "sigstoreSigned",
                    "keyPaths": ["/etc/cfsgate/keys/a.pub", "/etc/cfsgate/keys/b.pub"],
                    "signedIdentity": {"type": "matchRepository"},
                    "cfsgate": {
                        "threshold": 2,
                        "keys": [
                            {"keyPath": "/etc/cfsgate/keys/c.pub", "notBefore": "2025-01-01T00:00:00Z", "notAfter": "2026-01-01T00:00:00+01:00"},
                            {"keyring": "cfsgate", "description": "release-2025"},
                            {"keyring": "%user:trusted", "serial": 12345},
                            {"keyring": "cfsgate"}
                        ]
                    }
                },
                {"type": "composefs", "sealed": true, "verity": "kernel"}
            ],
            "registry.example/staging": [{"type": "composefs", "verity": "userspace"}]
        }
    },
    "cfsgate": {"modes": {"default": "enforce", "transports": {"docker": {"registry.example/staging": "warn"}}}}
}"#;

#[test]
fn extensions_parse() {
    let policy = parse(EXTENDED).unwrap();
    let docker = policy.transport("docker").unwrap();
    let prod = docker.scope("registry.example/prod").unwrap();
    assert_eq!(prod.mode, Mode::Enforce);
    let Requirement::SigstoreSigned(s) = &prod.requirements[0] else {
        panic!()
    };
    assert_eq!(s.threshold(), 2);
    let keys = s.trusted_keys(prod.requirement_locations[0]);
    assert_eq!(keys.len(), 6);
    assert_eq!(
        keys[2].material,
        KeyMaterial::File("/etc/cfsgate/keys/c.pub".into())
    );
    // Expected values from `date -u -d 2025-01-01T00:00:00Z +%s` and `... 2026-01-01T00:00:00+01:00`.
    assert_eq!(keys[2].window.not_before, Some(Timestamp(1_735_689_600)));
    assert_eq!(keys[2].window.not_after, Some(Timestamp(1_767_222_000)));
    assert!(keys[2].window.contains(Timestamp(1_750_000_000)));
    assert!(!keys[2].window.contains(Timestamp(1_767_222_001)));
    assert_eq!(
        keys[3].material,
        KeyMaterial::Keyring {
            keyring: "cfsgate".into(),
            selector: KeyringSelector::Description("release-2025".into())
        }
    );
    assert_eq!(
        keys[4].material,
        KeyMaterial::Keyring {
            keyring: "%user:trusted".into(),
            selector: KeyringSelector::Serial(12345)
        }
    );
    assert_eq!(
        keys[5].material,
        KeyMaterial::Keyring {
            keyring: "cfsgate".into(),
            selector: KeyringSelector::All
        }
    );
    assert_eq!(
        prod.requirements[1],
        Requirement::Composefs(ComposefsRequirement {
            sealed: true,
            verity: Some(VerityMode::Kernel)
        })
    );
    let staging = docker.scope("registry.example/staging").unwrap();
    assert_eq!(staging.mode, Mode::Warn);
    assert_eq!(
        staging.requirements[0],
        Requirement::Composefs(ComposefsRequirement {
            sealed: true,
            verity: Some(VerityMode::Userspace)
        })
    );
    let image =
        ImageRef::docker(DockerReference::parse_normalized("registry.example/staging:v1").unwrap())
            .unwrap();
    assert_eq!(policy.requirements_for(&image).mode(), Mode::Warn);
}

#[test]
fn extension_errors_are_located() {
    let replace = |from: &str, to: &str| EXTENDED.replacen(from, to, 1);
    fails_at(
        &replace("\"threshold\": 2", "\"threshold\": 0"),
        Mark::After("\"threshold\": 0", 13),
        |k| matches!(k, PolicyErrorKind::InvalidValue { field, .. } if field == "threshold"),
    );
    fails_at(
        &replace("\"threshold\": 2", "\"threshold\": 1.5"),
        Mark::After("\"threshold\": 1.5", 13),
        |k| matches!(k, PolicyErrorKind::InvalidValue { .. }),
    );
    fails_at(
        &replace("2026-01-01T00:00:00+01:00", "2026-13-01T00:00:00Z"),
        Mark::At("\"2026-13-01T00:00:00Z\""),
        |k| matches!(k, PolicyErrorKind::InvalidValue { field, .. } if field == "notAfter"),
    );
    fails_at(
        &replace(
            "\"description\": \"release-2025\"",
            "\"description\": \"r\", \"serial\": 1",
        ),
        Mark::At("\"serial\""),
        |k| matches!(k, PolicyErrorKind::Conflict(_)),
    );
    fails_at(
        &replace(
            "{\"keyring\": \"cfsgate\"}",
            "{\"keyring\": \"cfsgate\", \"keyPath\": \"/x\"}",
        ),
        Mark::At("\"keyPath\": \"/x\""),
        |k| matches!(k, PolicyErrorKind::Conflict(_)),
    );
    fails_at(
        &replace("\"verity\": \"kernel\"", "\"verity\": \"maybe\""),
        Mark::At("\"maybe\""),
        |k| matches!(k, PolicyErrorKind::InvalidValue { field, .. } if field == "verity"),
    );
    fails_at(
        &replace(
            "\"registry.example/staging\": \"warn\"",
            "\"registry.example/nope\": \"warn\"",
        ),
        Mark::At("\"registry.example/nope\""),
        |k| matches!(k, PolicyErrorKind::InvalidValue { .. }),
    );
    fails_at(
        &replace(
            "\"registry.example/staging\": \"warn\"",
            "\"registry.example/staging\": \"audit\"",
        ),
        Mark::At("\"audit\""),
        |k| matches!(k, PolicyErrorKind::InvalidValue { field, .. } if field == "mode"),
    );
    fails_at(
        &replace("\"threshold\": 2", "\"threshold\": 2, \"quorum\": 3"),
        Mark::At("\"quorum\""),
        |k| matches!(k, PolicyErrorKind::UnknownField { .. }),
    );
    fails_at(
        &replace("\"modes\"", "\"mode\""),
        Mark::At("\"mode\""),
        |k| matches!(k, PolicyErrorKind::UnknownField { .. }),
    );
}

#[test]
fn timestamps() {
    assert_eq!(
        Timestamp::parse_rfc3339("1970-01-01T00:00:00Z"),
        Ok(Timestamp(0))
    );
    // Expected values from `date -u -d 2000-02-29T12:00:00-02:30 +%s`.
    assert_eq!(
        Timestamp::parse_rfc3339("2000-02-29T12:00:00.123-02:30"),
        Ok(Timestamp(951_834_600))
    );
    for bad in [
        "2001-02-29T00:00:00Z",
        "2025-01-01",
        "2025-01-01T00:00:60Z",
        "2025-01-01T00:00:00",
        "2025-01-01T00:00:00+0100",
    ] {
        assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad}");
    }
    assert_eq!(Timestamp(1_767_222_000).to_string(), "2025-12-31T23:00:00Z");
}

#[test]
fn duplicate_key_in_a_large_object() {
    // Past the small-object threshold the reader checks keys by sorting when the object
    // ends; duplicates must still be found, at the second occurrence.
    let scopes: Vec<String> = (0..40)
        .map(|i| format!("\"r.example/s{i}\": [{{\"type\": \"reject\"}}]"))
        .collect();
    let text = format!(
        "{{\"default\": [{{\"type\": \"reject\"}}], \"transports\": {{\"docker\": {{\n{},\n\"r.example/s7\": [{{\"type\": \"reject\"}}]}}}}}}",
        scopes.join(",\n")
    );
    fails_at(&text, Mark::Last("\"r.example/s7\""), |k| {
        *k == PolicyErrorKind::DuplicateKey("r.example/s7".into())
    });
    let text = text.replace(
        "\"r.example/s7\": [{\"type\": \"reject\"}]}",
        "\"r.example/s99\": [{\"type\": \"reject\"}]}",
    );
    assert_eq!(
        parse(&text)
            .unwrap()
            .transport("docker")
            .unwrap()
            .scopes
            .len(),
        41
    );
}

#[test]
fn shipped_examples_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policy");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            load_policy_file(&path).unwrap_or_else(|e| panic!("{e}"));
            count += 1;
        }
    }
    assert!(count >= 3);
}

/// The workspace's one `VerityMode` also has `None` (a mount option); a policy demanding
/// `"verity": "none"` (no check at all) is refused where it is written, as any other name.
#[test]
fn composefs_verity_none_is_refused() {
    let text = "{\"default\": [{\"type\": \"composefs\",\n \"verity\": \"none\"}]}";
    fails_at(
        text,
        Mark::At("\"none\""),
        |k| matches!(k, PolicyErrorKind::InvalidValue { field, reason } if field == "verity" && reason.contains("\"none\"")),
    );
}
