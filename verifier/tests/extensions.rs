//! The cfsgate policy extensions on real signatures (`dir:` images signed here with fresh
//! keys): k-of-n thresholds over distinct keys, validity windows, warn mode, replayed
//! signatures.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

mod common;

use cfsgate_keyring::KeyType;
use cfsgate_policy::Mode;
use cfsgate_verifier::sign_dir_image;
use common::{docker_default_policy, evaluate, key_pair, write_policy};

const NAME: &str = "registry.example/team/app";

struct Setup {
    work: tempfile::TempDir,
    image: tempfile::TempDir,
    keys: Vec<(cfsgate_keyring::PrivateKey, std::path::PathBuf)>,
}

fn setup(manifest: &[u8]) -> Setup {
    let work = tempfile::tempdir().unwrap();
    let image = tempfile::tempdir().unwrap();
    std::fs::write(image.path().join("manifest.json"), manifest).unwrap();
    let keys = (0..3)
        .map(|i| {
            let kind = if i % 2 == 0 {
                KeyType::Ed25519
            } else {
                KeyType::P256
            };
            key_pair(work.path(), &format!("k{i}"), kind)
        })
        .collect();
    Setup { work, image, keys }
}

impl Setup {
    fn sign(&self, key: usize) {
        sign_dir_image(self.image.path(), &self.keys[key].0, NAME).expect("sign");
    }
    fn key_json(&self, key: usize) -> String {
        serde_json::to_string(&self.keys[key].1.display().to_string()).unwrap()
    }
    fn image_arg(&self) -> String {
        format!("dir:{}", self.image.path().display())
    }
    fn two_of_three(&self) -> cfsgate_policy::Policy {
        docker_default_policy(
            self.work.path(),
            &format!(
                r#"[{{"type": "sigstoreSigned", "keyPaths": [{}, {}, {}],
                    "signedIdentity": {{"type": "matchRepository"}}, "cfsgate": {{"threshold": 2}}}}]"#,
                self.key_json(0),
                self.key_json(1),
                self.key_json(2)
            ),
        )
    }
}

#[test]
fn two_of_three_accepts_two_distinct_signers() {
    let s = setup(b"{\"schemaVersion\":2,\"n\":1}");
    s.sign(0);
    s.sign(2);
    let d = evaluate(&s.image_arg(), Some(NAME), &s.two_of_three(), None).unwrap();
    assert!(d.admitted, "{d:#?}");
    let mut signers = d.signers.clone();
    signers.sort();
    let mut expected = vec![
        s.keys[0].0.public_key().key_id(),
        s.keys[2].0.public_key().key_id(),
    ];
    expected.sort();
    assert_eq!(signers, expected);
}

#[test]
fn two_of_three_rejects_one_key_signing_twice() {
    let s = setup(b"{\"schemaVersion\":2,\"n\":2}");
    s.sign(1);
    s.sign(1);
    assert!(s.image.path().join("signature-2").is_file());
    let d = evaluate(&s.image_arg(), Some(NAME), &s.two_of_three(), None).unwrap();
    assert!(!d.admitted, "{d:#?}");
    assert_eq!(d.signers, vec![s.keys[1].0.public_key().key_id()]);
    assert!(
        d.reasons[0].contains("only 1 distinct trusted key(s) signed, 2 required"),
        "{d:#?}"
    );
}

/// The explanation's key lines under signature `n` (`signature-N` of the `dir:` image).
fn key_lines(explanation: &[String], n: usize) -> Vec<String> {
    let header = format!("signature-{n}: ");
    explanation
        .iter()
        .skip_while(|line| !(line.starts_with("  signature ") && line.contains(&header)))
        .skip(1)
        .take_while(|line| line.starts_with("    key "))
        .cloned()
        .collect()
}

#[test]
fn keys_that_already_counted_are_tried_last() {
    let s = setup(b"{\"schemaVersion\":2,\"n\":5}");
    s.sign(0);
    s.sign(2);
    s.sign(0);
    let d = evaluate(&s.image_arg(), Some(NAME), &s.two_of_three(), None).unwrap();
    assert!(d.admitted, "{d:#?}");
    let short = |i: usize| s.keys[i].0.public_key().key_id().short();
    // Signature 1: policy order, k0 verifies at once.
    let first = key_lines(&d.explanation, 1);
    assert_eq!(first.len(), 1, "{first:#?}");
    assert!(first[0].contains(&short(0)) && first[0].ends_with(": verified"));
    // Signature 2 (by k2): k0 already counted, so k1 and then k2 are tried, not k0.
    let second = key_lines(&d.explanation, 2);
    assert_eq!(second.len(), 2, "{second:#?}");
    assert!(second[0].contains(&short(1)) && !second[0].ends_with(": verified"));
    assert!(second[1].contains(&short(2)) && second[1].ends_with(": verified"));
    // Signature 3 (k0 again): the keys not yet counted first (none left: k1 fails), then
    // the counted ones in policy order; it is still accepted, and k0 counts once.
    let third = key_lines(&d.explanation, 3);
    assert_eq!(third.len(), 2, "{third:#?}");
    assert!(third[0].contains(&short(1)), "{third:#?}");
    assert!(third[1].contains(&short(0)) && third[1].ends_with(": verified"));
    assert_eq!(d.signers.len(), 2, "{d:#?}");
}

fn windowed_policy(s: &Setup, window: &str) -> cfsgate_policy::Policy {
    docker_default_policy(
        s.work.path(),
        &format!(
            r#"[{{"type": "sigstoreSigned", "signedIdentity": {{"type": "matchRepository"}},
                "cfsgate": {{"keys": [{{"keyPath": {}, {window}}}]}}}}]"#,
            s.key_json(0)
        ),
    )
}

#[test]
fn expired_key_rejects_and_valid_window_accepts() {
    let s = setup(b"{\"schemaVersion\":2,\"n\":3}");
    s.sign(0);
    let expired = windowed_policy(&s, r#""notAfter": "2020-01-01T00:00:00Z""#);
    let d = evaluate(&s.image_arg(), Some(NAME), &expired, None).unwrap();
    assert!(!d.admitted, "{d:#?}");
    assert!(
        d.reasons[0].contains("outside its validity window"),
        "{d:#?}"
    );
    let future = windowed_policy(&s, r#""notBefore": "2999-01-01T00:00:00Z""#);
    assert!(
        !evaluate(&s.image_arg(), Some(NAME), &future, None)
            .unwrap()
            .admitted
    );
    let current = windowed_policy(
        &s,
        r#""notBefore": "2020-01-01T00:00:00Z", "notAfter": "2999-01-01T00:00:00Z""#,
    );
    let d = evaluate(&s.image_arg(), Some(NAME), &current, None).unwrap();
    assert!(d.admitted, "{d:#?}");
}

#[test]
fn warn_mode_admits_and_records() {
    let s = setup(b"{\"schemaVersion\":2,\"n\":4}");
    s.sign(2); // signed by a key the policy does not trust
    let policy = write_policy(
        s.work.path(),
        &format!(
            r#"{{"default": [{{"type": "reject"}}],
                "transports": {{"docker": {{"registry.example/team": [{{"type": "sigstoreSigned",
                    "keyPath": {}, "signedIdentity": {{"type": "matchRepository"}}}}]}}}},
                "cfsgate": {{"modes": {{"transports": {{"docker": {{"registry.example/team": "warn"}}}}}}}}}}"#,
            s.key_json(0)
        ),
    );
    let d = evaluate(&s.image_arg(), Some(NAME), &policy, None).unwrap();
    assert!(d.admitted, "{d:#?}");
    assert!(d.would_reject);
    assert_eq!(d.mode, Mode::Warn);
    assert!(d.reasons[0].contains("not by any trusted key"), "{d:#?}");
    let text = cfsgate_verifier::explain::verdict_line(&d);
    assert!(
        text.starts_with("accepted (warn mode; enforce would reject)"),
        "{text}"
    );
    // The same image under the enforcing default is rejected.
    let d = evaluate(&s.image_arg(), Some("other.example/app"), &policy, None).unwrap();
    assert!(!d.admitted && d.mode == Mode::Enforce, "{d:#?}");
}

#[test]
fn replayed_signature_for_another_image_rejects() {
    let a = setup(b"{\"schemaVersion\":2,\"image\":\"a\"}");
    a.sign(0);
    let b = tempfile::tempdir().unwrap();
    std::fs::write(
        b.path().join("manifest.json"),
        b"{\"schemaVersion\":2,\"image\":\"b\"}",
    )
    .unwrap();
    std::fs::copy(
        a.image.path().join("signature-1"),
        b.path().join("signature-1"),
    )
    .unwrap();
    let policy = docker_default_policy(
        a.work.path(),
        &format!(
            r#"[{{"type": "sigstoreSigned", "keyPath": {}, "signedIdentity": {{"type": "matchRepository"}}}}]"#,
            a.key_json(0)
        ),
    );
    assert!(
        evaluate(&a.image_arg(), Some(NAME), &policy, None)
            .unwrap()
            .admitted
    );
    let d = evaluate(
        &format!("dir:{}", b.path().display()),
        Some(NAME),
        &policy,
        None,
    )
    .unwrap();
    assert!(!d.admitted, "{d:#?}");
    assert!(d.reasons[0].contains("signed manifest sha256:"), "{d:#?}");
    assert!(
        d.explanation
            .iter()
            .any(|l| l.contains("but the manifest is sha256:")),
        "{d:#?}"
    );
}

#[test]
fn explanation_lists_lookup_keys_and_signatures() {
    let s = setup(b"{\"schemaVersion\":2,\"n\":5}");
    s.sign(0);
    s.sign(1);
    let d = evaluate(&s.image_arg(), Some(NAME), &s.two_of_three(), None).unwrap();
    let text = d.explanation.join("\n");
    assert!(
        text.contains("\"registry.example/team/app:latest\" ✗"),
        "{text}"
    );
    assert!(text.contains("\"\" (transport default) ✓"), "{text}");
    assert!(text.contains("threshold 2 distinct key(s)"), "{text}");
    for (key, _) in &s.keys {
        assert!(text.contains(&key.public_key().key_id().short()), "{text}");
    }
    assert!(text.contains("signature-2: valid"), "{text}");
    assert!(text.contains("decision: admitted"), "{text}");
}
