//! X.509 chain verification ([`cfsgate_verifier::cert`]) on real certificates: CAs, leaves and
//! attacks made here by `openssl` (real keys, real signatures), and the containers/image
//! Fulcio and PKI fixtures. Each refusal is checked to name the certificate and the reason.
// Test code: a failed unwrap is a test failure with its message.
#![allow(clippy::unwrap_used)]

#[path = "support/cert_lab.rs"]
mod cert_lab;

use std::path::Path;

use cert_lab::CertLab;
use cfsgate_keyring::KeyAlgorithm;
use cfsgate_policy::Timestamp;
use cfsgate_verifier::cert::{verify_chain, CertError, Certificate, MAX_PEM_CERTIFICATES};

/// A day in seconds.
const DAY: i64 = 86_400;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/containers-image")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const CA: &str = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n";
const LEAF: &str = "keyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\nsubjectAltName=email:dev@example.com\n";

fn now() -> Timestamp {
    Timestamp::now()
}

fn subjects(chain: &[Certificate]) -> Vec<String> {
    chain.iter().map(|c| c.subject().to_string()).collect()
}

#[test]
fn a_three_certificate_chain_verifies_and_its_fields_read() {
    let mut pki = CertLab::new();
    let root = pki.root("Root", "ec384", CA);
    let inter = pki.issue(&root, "Intermediate", "ec256", CA, 20, &["-sha384"]);
    let leaf = pki.issue(&inter, "Leaf", "ec256", LEAF, 1, &[]);
    let chain = verify_chain(&leaf.parsed(), &[inter.parsed()], &[root.parsed()], now()).unwrap();
    assert_eq!(subjects(&chain), ["CN=Leaf", "CN=Intermediate", "CN=Root"]);
    let leaf = leaf.parsed();
    assert_eq!(leaf.san_emails(), ["dev@example.com"]);
    assert!(leaf.san_dns_names().is_empty() && leaf.san_uris().is_empty());
    assert_eq!(leaf.not_after().0 - leaf.not_before().0, DAY);
    assert!((leaf.not_before().0 - now().0).abs() < 600);
    assert_eq!(
        leaf.public_key().unwrap().algorithm(),
        KeyAlgorithm::EcdsaP256
    );
    assert!(!leaf.is_ca() && inter.parsed().is_ca());
    // The DER is the file's, and PEM written back parses to the same certificate.
    let again = Certificate::parse_pem_bundle(leaf.to_pem().as_bytes()).unwrap();
    assert_eq!(again, vec![leaf.clone()]);
    assert_eq!(Certificate::from_der(leaf.der()).unwrap(), leaf);
}

#[test]
fn every_signature_algorithm_sigstore_and_pki_use_verifies() {
    let mut pki = CertLab::new();
    let cases: &[(&str, &str, &[&str])] = &[
        ("rsa", "ec256", &["-sha256"]),
        ("rsa", "ec256", &["-sha384"]),
        ("rsa", "ec256", &["-sha512"]),
        (
            "rsa",
            "ec256",
            &[
                "-sha256",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:digest",
            ],
        ),
        (
            "rsa",
            "rsa",
            &[
                "-sha512",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:digest",
            ],
        ),
        ("ec256", "ec384", &["-sha384"]),
        ("ec384", "ec256", &["-sha256"]),
        ("ec384", "ec256", &["-sha512"]),
        ("ed25519", "ed25519", &[]),
    ];
    for (ca_alg, leaf_alg, args) in cases {
        let root = pki.root("Root", ca_alg, CA);
        let leaf = pki.issue(&root, "Leaf", leaf_alg, LEAF, 1, args);
        let chain = verify_chain(&leaf.parsed(), &[], &[root.parsed()], now());
        assert!(chain.is_ok(), "{ca_alg} {args:?}: {chain:?}");
    }
    // PSS with a salt other than the hash length: Go knows no such algorithm.
    let root = pki.root("Root", "rsa", CA);
    let leaf = pki.issue(
        &root,
        "Leaf",
        "ec256",
        LEAF,
        1,
        &[
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:20",
        ],
    );
    let error = verify_chain(&leaf.parsed(), &[], &[root.parsed()], now()).unwrap_err();
    assert!(
        matches!(error, CertError::SignatureAlgorithm { .. }),
        "{error}"
    );
    // SHA-1 is refused, as Go refuses it.
    let leaf = pki.issue(&root, "Leaf", "ec256", LEAF, 1, &["-sha1"]);
    let error = verify_chain(&leaf.parsed(), &[], &[root.parsed()], now()).unwrap_err();
    assert!(
        matches!(&error, CertError::SignatureAlgorithm { algorithm, .. } if algorithm == "1.2.840.113549.1.1.5"),
        "{error}"
    );
}

#[test]
fn attack_a_certificate_from_another_ca_is_refused() {
    let mut pki = CertLab::new();
    let trusted = pki.root("Root", "ec256", CA);
    // Another CA with the same name: the name matches, the signature does not.
    let impostor = pki.root("Root", "ec256", CA);
    let leaf = pki.issue(&impostor, "Leaf", "ec256", LEAF, 1, &[]);
    let error = verify_chain(&leaf.parsed(), &[], &[trusted.parsed()], now()).unwrap_err();
    assert_eq!(
        error,
        CertError::BadSignature {
            subject: "CN=Leaf".into(),
            issuer: "CN=Root".into()
        }
    );
    // Its own CA passed as an intermediate does not help: it is self-signed, not by the root.
    let error = verify_chain(
        &leaf.parsed(),
        &[impostor.parsed()],
        &[trusted.parsed()],
        now(),
    )
    .unwrap_err();
    assert!(matches!(error, CertError::BadSignature { .. }), "{error}");
    // Another CA with another name: no issuer at all.
    let other = pki.root("Other", "ec256", CA);
    let leaf = pki.issue(&other, "Leaf", "ec256", LEAF, 1, &[]);
    let error = verify_chain(&leaf.parsed(), &[], &[trusted.parsed()], now()).unwrap_err();
    assert_eq!(
        error,
        CertError::UnknownAuthority {
            subject: "CN=Leaf".into(),
            issuer: "CN=Other".into()
        }
    );
    assert!(error.to_string().contains("not a trusted root"), "{error}");
}

#[test]
fn attack_an_expired_certificate_is_refused_at_the_time_judged() {
    let mut pki = CertLab::new();
    let root = pki.root("Root", "ec256", CA);
    let inter = pki.issue(&root, "Intermediate", "ec256", CA, 10, &[]);
    let leaf = pki.issue(&inter, "Leaf", "ec256", LEAF, 1, &[]);
    let (leaf, inter, root) = (leaf.parsed(), inter.parsed(), root.parsed());
    let verify = |at: i64| {
        verify_chain(
            &leaf,
            std::slice::from_ref(&inter),
            std::slice::from_ref(&root),
            Timestamp(at),
        )
    };
    // Both ends of the validity are inclusive, as in Go.
    assert!(verify(leaf.not_before().0).is_ok());
    assert!(verify(leaf.not_after().0).is_ok());
    let error = verify(leaf.not_after().0 + 1).unwrap_err();
    assert!(
        matches!(&error, CertError::NotValidAt { subject, .. } if subject == "CN=Leaf"),
        "{error}"
    );
    let error = verify(leaf.not_before().0 - 1).unwrap_err();
    assert!(matches!(error, CertError::NotValidAt { .. }), "{error}");
    // An intermediate that expired while the leaf was still valid names the intermediate.
    let short = {
        let mut pki = CertLab::new();
        let root = pki.root("Root", "ec256", CA);
        let inter = pki.issue(&root, "Short", "ec256", CA, 1, &[]);
        let leaf = pki.issue(&inter, "Leaf", "ec256", LEAF, 5, &[]);
        let at = Timestamp(leaf.parsed().not_before().0 + 2 * DAY);
        verify_chain(&leaf.parsed(), &[inter.parsed()], &[root.parsed()], at).unwrap_err()
    };
    assert!(
        matches!(&short, CertError::NotValidAt { subject, .. } if subject == "CN=Short"),
        "{short}"
    );
}

#[test]
fn attack_an_intermediate_that_is_not_a_ca_cannot_issue() {
    let mut pki = CertLab::new();
    let root = pki.root("Root", "ec256", CA);
    for extensions in [
        "basicConstraints=critical,CA:FALSE\n",
        // No basic constraints at all in a v3 certificate.
        "keyUsage=critical,keyCertSign\n",
    ] {
        let inter = pki.issue(&root, "NotCA", "ec256", extensions, 10, &[]);
        let leaf = pki.issue(&inter, "Leaf", "ec256", LEAF, 1, &[]);
        let error =
            verify_chain(&leaf.parsed(), &[inter.parsed()], &[root.parsed()], now()).unwrap_err();
        assert_eq!(
            error,
            CertError::NotCa {
                subject: "CN=NotCA".into(),
                child: "CN=Leaf".into()
            },
            "{extensions}"
        );
    }
    // A CA whose key usage lacks keyCertSign.
    let inter = pki.issue(
        &root,
        "NoSign",
        "ec256",
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature\n",
        10,
        &[],
    );
    let leaf = pki.issue(&inter, "Leaf", "ec256", LEAF, 1, &[]);
    let error =
        verify_chain(&leaf.parsed(), &[inter.parsed()], &[root.parsed()], now()).unwrap_err();
    assert!(matches!(error, CertError::NoKeyCertSign { .. }), "{error}");
    // A path length of 0 allows no intermediate below.
    let top = pki.issue(
        &root,
        "Top",
        "ec256",
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=keyCertSign\n",
        10,
        &[],
    );
    let below = pki.issue(&top, "Below", "ec256", CA, 10, &[]);
    let leaf = pki.issue(&below, "Leaf", "ec256", LEAF, 1, &[]);
    let pool = [top.parsed(), below.parsed()];
    let error = verify_chain(&leaf.parsed(), &pool, &[root.parsed()], now()).unwrap_err();
    assert_eq!(
        error,
        CertError::PathLength {
            subject: "CN=Top".into(),
            max: 0,
            found: 1
        }
    );
    let leaf = pki.issue(&top, "Leaf", "ec256", LEAF, 1, &[]);
    assert!(verify_chain(&leaf.parsed(), &pool, &[root.parsed()], now()).is_ok());
}

#[test]
fn extended_key_usage_must_allow_code_signing_as_go_judges() {
    let mut pki = CertLab::new();
    let root = pki.root("Root", "ec256", CA);
    let server = pki.issue(
        &root,
        "Server",
        "ec256",
        "extendedKeyUsage=serverAuth\n",
        1,
        &[],
    );
    let error = verify_chain(&server.parsed(), &[], &[root.parsed()], now()).unwrap_err();
    assert_eq!(
        error,
        CertError::KeyUsage {
            subject: "CN=Server".into()
        }
    );
    // No extended key usage at all: Go takes it as any usage (the PKI fixture's leaf has none).
    let none = pki.issue(
        &root,
        "None",
        "ec256",
        "keyUsage=digitalSignature\n",
        1,
        &[],
    );
    assert!(verify_chain(&none.parsed(), &[], &[root.parsed()], now()).is_ok());
    let any = pki.issue(
        &root,
        "Any",
        "ec256",
        "extendedKeyUsage=anyExtendedKeyUsage\n",
        1,
        &[],
    );
    assert!(verify_chain(&any.parsed(), &[], &[root.parsed()], now()).is_ok());
    // An intermediate restricted to TLS servers cannot pass code signing on.
    let inter = pki.issue(
        &root,
        "TLS CA",
        "ec256",
        "basicConstraints=critical,CA:TRUE\nextendedKeyUsage=serverAuth\n",
        10,
        &[],
    );
    let leaf = pki.issue(&inter, "Leaf", "ec256", LEAF, 1, &[]);
    let error =
        verify_chain(&leaf.parsed(), &[inter.parsed()], &[root.parsed()], now()).unwrap_err();
    assert!(matches!(error, CertError::KeyUsage { .. }), "{error}");
}

#[test]
fn critical_extensions_are_handled_as_go_handles_them() {
    let mut pki = CertLab::new();
    let root = pki.root("Root", "ec256", CA);
    let unknown = pki.issue(
        &root,
        "Leaf",
        "ec256",
        &format!("{LEAF}1.2.3.4.5=critical,ASN1:NULL\n"),
        1,
        &[],
    );
    let error = verify_chain(&unknown.parsed(), &[], &[root.parsed()], now()).unwrap_err();
    assert_eq!(
        error,
        CertError::UnhandledCriticalExtension {
            subject: "CN=Leaf".into(),
            oid: "1.2.3.4.5".into()
        }
    );
    // A critical SAN with only an otherName: unhandled for Go, unless the caller (Fulcio)
    // accepts it.
    let other_name = pki.issue(
        &root,
        "Leaf",
        "ec256",
        "extendedKeyUsage=codeSigning\nsubjectAltName=critical,otherName:1.3.6.1.4.1.57264.1.7;UTF8:me\n",
        1,
        &[],
    );
    let error = verify_chain(&other_name.parsed(), &[], &[root.parsed()], now()).unwrap_err();
    assert!(
        matches!(error, CertError::UnhandledCriticalExtension { .. }),
        "{error}"
    );
    let accepted = other_name.parsed().accepting_critical_san();
    assert!(verify_chain(&accepted, &[], &[root.parsed()], now()).is_ok());
    // A non-critical unknown extension is ignored.
    let fine = pki.issue(
        &root,
        "Leaf",
        "ec256",
        &format!("{LEAF}1.2.3.4.5=ASN1:NULL\n"),
        1,
        &[],
    );
    assert!(verify_chain(&fine.parsed(), &[], &[root.parsed()], now()).is_ok());
    // A CA with name constraints: refused (cfsgate does not evaluate them).
    let constrained = pki.issue(
        &root,
        "Constrained",
        "ec256",
        &format!("{CA}nameConstraints=permitted;email:example.com\n"),
        10,
        &[],
    );
    let leaf = pki.issue(&constrained, "Leaf", "ec256", LEAF, 1, &[]);
    let error = verify_chain(
        &leaf.parsed(),
        &[constrained.parsed()],
        &[root.parsed()],
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(error, CertError::NameConstraints { .. }),
        "{error}"
    );
}

#[test]
fn a_root_given_as_the_leaf_is_its_own_chain() {
    let mut pki = CertLab::new();
    let root = pki.root("Root", "ec256", CA);
    let chain = verify_chain(&root.parsed(), &[], &[root.parsed()], now()).unwrap();
    assert_eq!(chain.len(), 1);
}

#[test]
fn fulcio_issuer_extensions_are_read_as_cosign_reads_them() {
    let mut pki = CertLab::new();
    let root = pki.root("Root", "ec256", CA);
    let hex_url = hex::encode("https://issuer.example");
    let issuer_of = |pki: &mut CertLab, extensions: String| {
        pki.issue(&root, "Leaf", "ec256", &extensions, 1, &[])
            .parsed()
            .fulcio_oidc_issuer()
    };
    let v1 = format!("1.3.6.1.4.1.57264.1.1=DER:{hex_url}\n");
    let v2 = "1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:https://issuer.example\n";
    assert_eq!(
        issuer_of(&mut pki, v1.clone()).unwrap(),
        "https://issuer.example"
    );
    assert_eq!(
        issuer_of(&mut pki, v2.to_string()).unwrap(),
        "https://issuer.example"
    );
    assert_eq!(
        issuer_of(&mut pki, format!("{v1}{v2}")).unwrap(),
        "https://issuer.example"
    );
    let ia5 = "1.3.6.1.4.1.57264.1.8=ASN1:IA5STRING:https://issuer.example\n";
    assert_eq!(
        issuer_of(&mut pki, ia5.to_string()).unwrap(),
        "https://issuer.example"
    );
    let other = "1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:https://other.example\n";
    let error = issuer_of(&mut pki, format!("{v1}{other}")).unwrap_err();
    assert!(error.to_string().contains("inconsistent"), "{error}");
    let error = issuer_of(&mut pki, LEAF.to_string()).unwrap_err();
    assert!(
        error.to_string().contains("missing the issuer extension"),
        "{error}"
    );
    let not_string = "1.3.6.1.4.1.57264.1.8=ASN1:INTEGER:5\n";
    let error = issuer_of(&mut pki, not_string.to_string()).unwrap_err();
    assert!(error.to_string().contains("invalid ASN.1"), "{error}");
}

#[test]
fn hostnames_match_as_go_verify_hostname() {
    let mut pki = CertLab::new();
    let root = pki.root("Root", "ec256", CA);
    let cert = pki
        .issue(
            &root,
            "cn-only.example.net",
            "ec256",
            "subjectAltName=DNS:*.example.com,DNS:Exact.Example.org,IP:192.0.2.7,IP:2001:db8::1\n",
            1,
            &[],
        )
        .parsed();
    for host in [
        "a.example.com",
        "A.EXAMPLE.com",
        "a.example.com.",
        "exact.example.org",
        "192.0.2.7",
        "[2001:db8::1]",
        "::ffff:192.0.2.7",
        // Not a valid host name: Go compares it exactly with the pattern.
        "*.example.com",
    ] {
        assert!(cert.matches_hostname(host), "{host}");
    }
    for host in [
        "example.com",
        "a.b.example.com",
        "host.example.com.evil",
        "192.0.2.8",
        "host",
        "",
    ] {
        assert!(!cert.matches_hostname(host), "{host}");
    }
    // The common name is never used.
    assert!(!cert.matches_hostname("cn-only.example.net"));
}

#[test]
fn pem_texts_are_read_as_sigstore_and_go_read_them() {
    let mut pki = CertLab::new();
    let root = pki.root("Root", "ec256", CA);
    let pem = std::fs::read_to_string(&root.cert).unwrap();
    let two = format!("leading text is skipped\n{pem}{pem}\n\n");
    assert_eq!(
        Certificate::parse_pem_bundle(two.as_bytes()).unwrap().len(),
        2
    );
    let error = Certificate::parse_pem_bundle(format!("{pem}trailing").as_bytes()).unwrap_err();
    assert!(matches!(error, CertError::Pem(_)), "{error}");
    let key = std::fs::read_to_string(&root.key).unwrap();
    let error = Certificate::parse_pem_bundle(format!("{pem}{key}").as_bytes()).unwrap_err();
    assert!(matches!(error, CertError::Parse(_)), "{error}");
    // A CA pool skips what is not a certificate, and refuses a text with none.
    let pool = Certificate::parse_pem_pool(format!("{key}{pem}junk").as_bytes()).unwrap();
    assert_eq!(pool.len(), 1);
    assert_eq!(
        Certificate::parse_pem_pool(key.as_bytes()).unwrap_err(),
        CertError::Empty
    );
    let many = pem.repeat(MAX_PEM_CERTIFICATES + 1);
    let error = Certificate::parse_pem_bundle(many.as_bytes()).unwrap_err();
    assert_eq!(
        error,
        CertError::TooMany {
            limit: MAX_PEM_CERTIFICATES
        }
    );
    assert!(Certificate::parse_pem_pool(many.as_bytes()).is_err());
    assert!(Certificate::parse_pem_bundle(b"").unwrap().is_empty());
    assert!(Certificate::from_der(b"\x30\x03\x02\x01\x01").is_err());
}

/// 2022-12-12T18:50:00Z: inside the fixture Fulcio certificate's ten minutes.
const FULCIO_SIGNING_TIME: i64 = 1_670_871_000;

#[test]
fn the_fulcio_fixture_chains_to_the_sigstore_root() {
    let leaf = Certificate::parse_pem_bundle(&fixture("fulcio-cert"))
        .unwrap()
        .remove(0);
    let chain = Certificate::parse_pem_bundle(&fixture("fulcio-chain")).unwrap();
    let roots = Certificate::parse_pem_pool(&fixture("fulcio_v1.crt.pem")).unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(leaf.san_emails(), ["mitr@redhat.com"]);
    assert_eq!(
        leaf.fulcio_oidc_issuer().unwrap(),
        "https://github.com/login/oauth"
    );
    assert_eq!(
        leaf.public_key().unwrap().algorithm(),
        KeyAlgorithm::EcdsaP256
    );
    let at = Timestamp(FULCIO_SIGNING_TIME);
    let verified = verify_chain(&leaf, &chain, &roots, at).unwrap();
    assert_eq!(
        subjects(&verified),
        [
            "",
            "CN=sigstore-intermediate,O=sigstore.dev",
            "CN=sigstore,O=sigstore.dev"
        ]
    );
    // As containers/image uses the chain annotation: its last certificate (the root) dropped.
    assert!(verify_chain(&leaf, &chain[..1], &roots, at).is_ok());
    // Without the intermediate there is no path; ten minutes later the leaf has expired.
    let error = verify_chain(&leaf, &[], &roots, at).unwrap_err();
    assert!(
        matches!(error, CertError::UnknownAuthority { .. }),
        "{error}"
    );
    let error = verify_chain(&leaf, &chain, &roots, Timestamp(at.0 + 3600)).unwrap_err();
    assert!(matches!(error, CertError::NotValidAt { .. }), "{error}");
}

#[test]
fn the_pki_fixture_chains_to_its_root() {
    let leaf = Certificate::parse_pem_bundle(&fixture("pki-cert"))
        .unwrap()
        .remove(0);
    let roots = Certificate::parse_pem_pool(&fixture("pki_root_crts.pem")).unwrap();
    let intermediates =
        Certificate::parse_pem_bundle(&fixture("pki_intermediate_crts.pem")).unwrap();
    let chain = verify_chain(&leaf, &intermediates, &roots, now()).unwrap();
    assert_eq!(chain.len(), 3);
    assert_eq!(leaf.san_emails(), ["qiwan@redhat.com"]);
    assert!(leaf.matches_hostname("myhost.example.com"));
    assert!(!leaf.matches_hostname("otherhost.example.com"));
    assert!(matches!(
        leaf.public_key().unwrap().algorithm(),
        KeyAlgorithm::Rsa { bits: 4096 }
    ));
    // The signature annotation's chain holds the intermediate and the root.
    let annotated = Certificate::parse_pem_bundle(&fixture("pki-chain")).unwrap();
    assert_eq!(annotated.len(), 2);
    assert!(verify_chain(&leaf, &annotated[..1], &roots, now()).is_ok());
    // The Fulcio root does not vouch for it.
    let fulcio = Certificate::parse_pem_pool(&fixture("fulcio_v1.crt.pem")).unwrap();
    assert!(verify_chain(&leaf, &intermediates, &fulcio, now()).is_err());
}
