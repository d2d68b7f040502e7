//! Table tests mirroring containers/image's own tables:
//! - `signature/policy_reference_match_test.go`: TestPRMMatchExactMatchesDockerReference,
//!   TestPRMMatchRepoDigestOrExactMatchesDockerReference,
//!   TestPRMMatchRepositoryMatchesDockerReference, TestPRMExactReferenceMatchesDockerReference,
//!   TestPRMExactRepositoryMatchesDockerReference, TestPRMRemapIdentityRefMatchesPrefix,
//!   TestPRMRemapIdentityRemapReferencePrefix;
//! - `signature/policy_eval_test.go`: TestPolicyContextRequirementsForImageRef;
//! - `docker/policyconfiguration/naming_test.go`: TestDockerReferenceNamespaces.

use cfsgate_policy::transport::docker_namespaces;
use cfsgate_policy::*;
use std::path::Path;

const DIGEST: &str = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const DIGEST_OTHER: &str =
    "@sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
const FULL_RHEL: &str = "registry.access.redhat.com/rhel7/rhel:7.2.3";

/// The image reference as containers/image's mocks build it (ParseNormalizedNamed, no
/// default tag), then the claim matched as a raw string.
fn check(identity: &SignedIdentity, image: &str, signature: &str) -> bool {
    let image = DockerReference::parse_normalized(image).ok();
    identity.matches_claim(image.as_ref(), signature)
}

fn table(identity: &SignedIdentity, cases: &[(String, String, bool)]) {
    for (image, signature, expected) in cases {
        assert_eq!(
            check(identity, image, signature),
            *expected,
            "{} image={image} signature={signature}",
            identity.type_name()
        );
    }
}

fn c(a: &str, b: &str, e: bool) -> (String, String, bool) {
    (a.to_string(), b.to_string(), e)
}

/// Cases shared by matchExact and matchRepoDigestOrExact in upstream's tables.
fn common_exact_cases() -> Vec<(String, String, bool)> {
    vec![
        c("busybox:latest", "busybox:latest", true),
        c(FULL_RHEL, FULL_RHEL, true),
        c(
            &format!("busybox{DIGEST}"),
            &format!("busybox{DIGEST}"),
            true,
        ),
        c("library/busybox:latest", "busybox:latest", true),
        c("docker.io/library/busybox:latest", "busybox:latest", true),
        c(
            &format!("library/busybox{DIGEST}"),
            &format!("busybox{DIGEST}"),
            true,
        ),
        c("busybox:latest", "busybox:notlatest", false),
        c("busybox:latest", "notbusybox:latest", false),
        c(
            "busybox:latest",
            "hostname/library/busybox:notlatest",
            false,
        ),
        c(
            "hostname/library/busybox:latest",
            "busybox:notlatest",
            false,
        ),
        c("busybox:latest", FULL_RHEL, false),
        c(
            &format!("busybox{DIGEST}"),
            &format!("notbusybox{DIGEST}"),
            false,
        ),
        c("busybox:latest", &format!("busybox{DIGEST}"), false),
        c("busybox", "busybox:latest", false),
        c("busybox", &format!("busybox{DIGEST}"), false),
        c("busybox", "busybox", false),
        c(
            &format!("busybox:latest{DIGEST}"),
            &format!("busybox:latest{DIGEST}"),
            true,
        ),
        c(
            &format!("busybox:latest{DIGEST}"),
            &format!("busybox:latest{DIGEST_OTHER}"),
            false,
        ),
        c(
            &format!("busybox:latest{DIGEST}"),
            &format!("busybox:notlatest{DIGEST}"),
            false,
        ),
        c(
            &format!("busybox:latest{DIGEST}"),
            &format!("busybox{DIGEST}"),
            false,
        ),
        c(&format!("busybox:latest{DIGEST}"), "busybox:latest", false),
        c(
            "UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES",
            "busybox:latest",
            false,
        ),
        c("", "UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES", false),
        c("INVALID", "INVALID", false),
    ]
}

#[test]
fn match_exact_mirrors_upstream_table() {
    let mut cases = common_exact_cases();
    cases.push(c(
        &format!("busybox{DIGEST}"),
        &format!("busybox{DIGEST_OTHER}"),
        false,
    ));
    cases.push(c(&format!("busybox{DIGEST}"), "busybox:latest", false));
    table(&SignedIdentity::MatchExact, &cases);
}

#[test]
fn match_repo_digest_or_exact_mirrors_upstream_table() {
    let mut cases = common_exact_cases();
    // Digest references accept any signature with a matching repository.
    cases.push(c(&format!("busybox{DIGEST}"), "busybox:latest", true));
    cases.push(c(
        &format!("busybox{DIGEST}"),
        &format!("busybox{DIGEST_OTHER}"),
        true,
    ));
    table(&SignedIdentity::MatchRepoDigestOrExact, &cases);
    assert_eq!(
        SignedIdentity::default(),
        SignedIdentity::MatchRepoDigestOrExact
    );
}

#[test]
fn match_repository_mirrors_upstream_table() {
    let cases = vec![
        c("busybox:latest", "busybox:latest", true),
        c(FULL_RHEL, FULL_RHEL, true),
        c(
            &format!("busybox{DIGEST}"),
            &format!("busybox{DIGEST}"),
            true,
        ),
        c("library/busybox:latest", "busybox:latest", true),
        c("docker.io/library/busybox:latest", "busybox:latest", true),
        c("busybox:latest", "busybox:notlatest", true),
        c("busybox:latest", &format!("busybox{DIGEST}"), true),
        c(&format!("busybox{DIGEST}"), "busybox:latest", true),
        c("busybox", "busybox:latest", true),
        c("busybox", "busybox", true),
        c("busybox:latest", "notbusybox:latest", false),
        c(
            "busybox:latest",
            "hostname/library/busybox:notlatest",
            false,
        ),
        c(
            "hostname/library/busybox:latest",
            "busybox:notlatest",
            false,
        ),
        c("busybox:latest", FULL_RHEL, false),
        c(
            "UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES",
            "busybox:latest",
            false,
        ),
        c("INVALID", "INVALID", false),
    ];
    table(&SignedIdentity::MatchRepository, &cases);
}

#[test]
fn exact_reference_ignores_the_image() {
    let identity = SignedIdentity::exact_reference("busybox:latest").unwrap();
    for image in ["busybox:latest", "notbusybox:other", "INVALID"] {
        assert!(check(&identity, image, "docker.io/library/busybox:latest"));
        assert!(!check(&identity, image, "busybox:notlatest"));
        assert!(!check(&identity, image, "busybox"));
    }
    assert!(
        SignedIdentity::exact_reference("busybox").is_err(),
        "name-only is refused"
    );
    assert!(SignedIdentity::exact_reference("ns/UPPER:x").is_err());
    // containers/image's docker/reference: an upper-case first component is not a registry
    // host (no `.`, `:`, not localhost), so it is a docker.io path, and not lower case.
    assert!(SignedIdentity::exact_reference("UPPER/case:x").is_err());
    assert!(SignedIdentity::exact_reference("UPPERCASE/foo").is_err());
    assert!(DockerReference::parse_normalized("UPPERCASE/foo").is_err());
    // A host with a dot may have upper-case letters (domain components are case-insensitive).
    assert!(DockerReference::parse_normalized("Registry.Example/foo").is_ok());
}

#[test]
fn exact_repository_ignores_the_image_and_tags() {
    let identity = SignedIdentity::exact_repository("busybox").unwrap();
    assert!(check(&identity, "anything:else", "busybox:latest"));
    assert!(check(
        &identity,
        "anything:else",
        &format!("docker.io/library/busybox{DIGEST}")
    ));
    assert!(check(&identity, "anything:else", "busybox"));
    assert!(!check(&identity, "busybox:latest", "notbusybox:latest"));
}

#[test]
fn remap_identity_prefix_matching_mirrors_upstream() {
    // (image, prefix, signature claim, expected): the image matches `prefix` only at a `/`
    // boundary; the remapped identity is then compared as matchRepoDigestOrExact.
    let cases = [
        (
            "docker.io/image:t",
            "docker.io",
            "example.org/library/image:t",
            true,
        ),
        (
            "docker.io/image:t",
            "example.com",
            "example.org/image:t",
            false,
        ),
        (
            "example.com:5000/image:t",
            "example.com:5000",
            "example.org/image:t",
            true,
        ),
        (
            "example.com:50000/image:t",
            "example.com:5000",
            "example.org/image:t",
            false,
        ),
        (
            "example.com:5000/image:t",
            "example.com",
            "example.org/image:t",
            false,
        ),
        (
            "example.com/foo/bar:baz",
            "example.com",
            "example.org/foo/bar:baz",
            true,
        ),
        (
            "docker.io/ns/image:t",
            "docker.io/library",
            "example.org/ns/image:t",
            false,
        ),
        (
            "docker.io/libraryy/image:t",
            "docker.io/library",
            "example.org/image:t",
            false,
        ),
        (
            "docker.io/library/busybox:t",
            "docker.io/library",
            "example.org/busybox:t",
            true,
        ),
        (
            "example.com/ns/image:t",
            "example.com/ns",
            "example.org/image:t",
            true,
        ),
    ];
    for (image, prefix, claim, expected) in cases {
        let identity = SignedIdentity::remap_identity(prefix, "example.org").unwrap();
        assert_eq!(
            check(&identity, image, claim),
            expected,
            "{image} {prefix} {claim}"
        );
    }
    // Not matching the prefix: the identity is compared unchanged.
    let identity =
        SignedIdentity::remap_identity("private-mirror:5000/vendor-mirror", "vendor.example.com")
            .unwrap();
    assert!(check(
        &identity,
        "private-mirror:5000/vendor-mirror/app:1",
        "vendor.example.com/app:1"
    ));
    assert!(!check(
        &identity,
        "private-mirror:5000/vendor-mirror/app:1",
        "private-mirror:5000/vendor-mirror/app:1"
    ));
    assert!(check(
        &identity,
        "other.example/app:1",
        "other.example/app:1"
    ));
    // A rewrite into a non-canonical name never matches (upstream: ParseNamed fails).
    let identity = SignedIdentity::remap_identity("example.com/foo", "docker.io").unwrap();
    assert!(!check(
        &identity,
        "example.com/foo/bar:baz",
        "docker.io/library/bar:baz"
    ));
    // Invalid prefixes are refused at parse time.
    assert!(
        SignedIdentity::remap_identity("shortname", "example.com").is_ok(),
        "upstream cannot reject short names either"
    );
    assert!(SignedIdentity::remap_identity("example.com/foo:tag", "example.org").is_err());
    assert!(SignedIdentity::remap_identity("example.com/foo@sha256:x", "example.org").is_err());
    assert!(SignedIdentity::remap_identity("", "example.org").is_err());
}

#[test]
fn docker_normalisation() {
    for (input, expected) in [
        ("busybox", "docker.io/library/busybox"),
        ("busybox:latest", "docker.io/library/busybox:latest"),
        ("library/busybox", "docker.io/library/busybox"),
        ("index.docker.io/busybox", "docker.io/library/busybox"),
        ("ns/repo", "docker.io/ns/repo"),
        ("localhost/repo", "localhost/repo"),
        ("localhost:5000/repo:tag", "localhost:5000/repo:tag"),
        ("Example.com/repo", "Example.com/repo"),
        (
            "192.168.64.2:5000/cosign-signed-single-sample",
            "192.168.64.2:5000/cosign-signed-single-sample",
        ),
        ("[::1]:5000/repo", "[::1]:5000/repo"),
    ] {
        assert_eq!(
            DockerReference::parse_normalized(input)
                .unwrap()
                .to_string(),
            expected,
            "{input}"
        );
    }
    for bad in [
        "",
        "Busybox",
        "ns/Repo",
        "busybox:",
        "busybox@sha256:abc",
        "busybox@md5:0123456789abcdef0123456789abcdef",
        "-busybox",
        "busybox/",
        "a//b",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ] {
        assert!(
            DockerReference::parse_normalized(bad).is_err(),
            "{bad:?} must be refused"
        );
    }
    let too_long = format!("example.com/{}", "a".repeat(250));
    assert!(DockerReference::parse_normalized(&too_long).is_err());
    assert!(DockerReference::parse_canonical("busybox").is_err());
    assert!(DockerReference::parse_canonical("docker.io/library/busybox").is_ok());
}

#[test]
fn docker_namespaces_mirror_upstream() {
    let ns = |s: &str| docker_namespaces(&DockerReference::parse_normalized(s).unwrap());
    assert_eq!(
        ns("busybox:latest"),
        [
            "docker.io/library/busybox",
            "docker.io/library",
            "docker.io",
            "*.io"
        ]
    );
    assert_eq!(
        ns("example.com:8443/ns/repo:t"),
        [
            "example.com:8443/ns/repo",
            "example.com:8443/ns",
            "example.com:8443",
            "*.com"
        ]
    );
    assert_eq!(
        ns("a.b.example.com/x:t"),
        [
            "a.b.example.com/x",
            "a.b.example.com",
            "*.b.example.com",
            "*.example.com",
            "*.com"
        ]
    );
    assert_eq!(ns("localhost/x:t"), ["localhost/x", "localhost"]);
}

/// TestPolicyContextRequirementsForImageRef: each scope's requirement is a `reject`/`insecure…`
/// marker; we compare which scope name matched.
#[test]
fn scope_lookup_mirrors_upstream_table() {
    let scopes = [
        "",
        "unmatched",
        "deep.com",
        "deep.com/n1",
        "deep.com/n1/n2",
        "deep.com/n1/n2/n3",
        "deep.com/n1/n2/n3/repo",
        "deep.com/n1/n2/n3/repo:tag2",
    ];
    let docker: Vec<String> = scopes
        .iter()
        .map(|s| format!("\"{s}\": [{{\"type\": \"reject\"}}]"))
        .collect();
    let text = format!(
        r#"{{"default": [{{"type": "insecureAcceptAnything"}}],
            "transports": {{"docker": {{{}}}, "atomic": {{"unmatched": [{{"type": "reject"}}]}}}}}}"#,
        docker.join(",")
    );
    let policy = parse_policy(text.as_bytes()).unwrap();
    for (input, matched) in [
        (
            "deep.com/n1/n2/n3/repo:tag2",
            Some("deep.com/n1/n2/n3/repo:tag2"),
        ),
        (
            "deep.com/n1/n2/n3/repo:nottag2",
            Some("deep.com/n1/n2/n3/repo"),
        ),
        ("deep.com/n1/n2/n3/notrepo:tag2", Some("deep.com/n1/n2/n3")),
        ("deep.com/n1/n2/notn3/repo:tag2", Some("deep.com/n1/n2")),
        ("deep.com/n1/notn2/n3/repo:tag2", Some("deep.com/n1")),
        ("deep.com/notn1/n2/n3/repo:tag2", Some("deep.com")),
        ("this.doesnt/match:anything", Some("")),
    ] {
        let image = ImageRef::docker(DockerReference::parse_normalized(input).unwrap()).unwrap();
        let m = policy.requirements_for(&image);
        assert_eq!(m.transport, Some("docker"), "{input}");
        assert_eq!(Some(m.scope.name.as_str()), matched, "{input}");
        assert!(m.tried.last().unwrap().matched);
        assert_eq!(m.tried.iter().filter(|s| s.matched).count(), 1);
    }
    // No configuration for the dir transport at all: global default.
    let image = ImageRef::dir(Path::new("/what/ever")).unwrap();
    let m = policy.requirements_for(&image);
    assert_eq!(m.scope.kind, ScopeKind::GlobalDefault);
    assert_eq!(m.transport, None);
}

#[test]
fn wildcards_most_specific_first_and_no_merging() {
    let text = br#"{"default": [{"type": "reject"}],
      "transports": {"docker": {
        "*.com": [{"type": "reject"}],
        "*.example.com": [{"type": "insecureAcceptAnything"}],
        "reg.example.com/team": [{"type": "composefs"}]
      }}}"#;
    let policy = parse_policy(text).unwrap();
    let lookup = |r: &str| {
        let image = ImageRef::docker(DockerReference::parse_normalized(r).unwrap()).unwrap();
        policy.requirements_for(&image).scope.name.clone()
    };
    assert_eq!(lookup("reg.example.com/team/app:1"), "reg.example.com/team");
    assert_eq!(lookup("reg.example.com/other/app:1"), "*.example.com");
    assert_eq!(lookup("a.b.example.com:5000/app"), "*.example.com");
    assert_eq!(lookup("other.com/app"), "*.com");
    assert_eq!(lookup("other.org/app"), "");
    let image =
        ImageRef::docker(DockerReference::parse_normalized("reg.example.com/team/app").unwrap())
            .unwrap();
    let m = policy.requirements_for(&image);
    // Only the matched scope's requirements: nothing merged from *.example.com.
    assert_eq!(m.requirements().len(), 1);
    assert_eq!(m.requirements()[0].type_name(), "composefs");
    let keys: Vec<&str> = m.tried.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "reg.example.com/team/app:latest",
            "reg.example.com/team/app",
            "reg.example.com/team"
        ]
    );
}

#[test]
fn dir_and_oci_path_scopes_and_reference_override() {
    let text = br#"{"default": [{"type": "reject"}],
      "transports": {
        "dir": {"/srv/images/app": [{"type": "insecureAcceptAnything"}], "/srv": [{"type": "reject"}]},
        "oci": {"/srv/oci/app": [{"type": "insecureAcceptAnything"}], "": [{"type": "reject"}]},
        "docker": {"registry.example/app": [{"type": "composefs", "verity": "kernel"}]}
      }}"#;
    let policy = parse_policy(text).unwrap();
    let name = |image: &ImageRef| policy.requirements_for(image).scope.name.clone();
    assert_eq!(
        name(&ImageRef::dir(Path::new("/srv/images/app")).unwrap()),
        "/srv/images/app"
    );
    assert_eq!(
        name(&ImageRef::dir(Path::new("/srv/images/app/../other")).unwrap()),
        "/srv"
    );
    assert_eq!(name(&ImageRef::dir(Path::new("/elsewhere/x")).unwrap()), "");
    assert_eq!(
        name(&ImageRef::parse("oci:/srv/oci/app:latest").unwrap()),
        "/srv/oci/app"
    );
    assert_eq!(
        name(&ImageRef::parse("oci:/srv/oci/app/sub").unwrap()),
        "/srv/oci/app"
    );
    assert_eq!(name(&ImageRef::parse("oci:/srv/oci").unwrap()), "");
    assert!(ImageRef::dir(Path::new("relative/path")).is_err());

    // `--reference`: the docker scopes apply to the name, as after a pull.
    let local = ImageRef::dir(Path::new("/srv/images/app")).unwrap();
    let named = local
        .with_docker_reference(DockerReference::parse_normalized("registry.example/app").unwrap())
        .unwrap();
    let m = policy.requirements_for(&named);
    assert_eq!(m.transport, Some("docker"));
    assert_eq!(m.scope.name, "registry.example/app");
    assert_eq!(
        m.source,
        Some(("dir".to_string(), "/srv/images/app".to_string()))
    );
    assert_eq!(
        named.docker_reference().unwrap().to_string(),
        "registry.example/app:latest"
    );
}

#[test]
fn tag_and_digest_is_refused_for_docker_images() {
    let r = DockerReference::parse_normalized(&format!("busybox:latest{DIGEST}")).unwrap();
    assert!(matches!(
        ImageRef::docker(r),
        Err(ImageRefError::TagAndDigest(_))
    ));
}
