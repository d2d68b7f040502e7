//! Kernel keyring key source: a policy trusting `{"keyring": NAME}` accepts a signature by an
//! Ed25519 `user` key added with cfsgate-keyring, and rejects once the key is removed.

mod common;

use cfsgate_keyring::{KernelKeyring, KeyType};
use cfsgate_verifier::sign_dir_image;
use common::{docker_default_policy, evaluate, key_pair};

const NAME: &str = "registry.example/team/app";

#[test]
fn keyring_key_accepts_and_removed_key_rejects() {
    let work = tempfile::tempdir().unwrap();
    let image = tempfile::tempdir().unwrap();
    std::fs::write(image.path().join("manifest.json"), b"{\"schemaVersion\":2}").unwrap();
    let (key, public) = key_pair(work.path(), "release", KeyType::Ed25519);
    sign_dir_image(image.path(), &key, NAME).unwrap();

    let ring_name = format!("cfsgate-test-policy-{}", std::process::id());
    let ring = KernelKeyring::create(&ring_name).expect("create keyring");
    ring.add_public_key("release-2026", &std::fs::read(&public).unwrap())
        .expect("add key");
    let for_selector = |selector: &str| {
        docker_default_policy(
            work.path(),
            &format!(
                r#"[{{"type": "sigstoreSigned", "signedIdentity": {{"type": "matchRepository"}},
                    "cfsgate": {{"keys": [{{"keyring": "{ring_name}"{selector}}}]}}}}]"#
            ),
        )
    };
    let image_arg = format!("dir:{}", image.path().display());
    let _cleanup = DestroyOnDrop(Some(ring.clone()));
    {
        let d = evaluate(&image_arg, Some(NAME), &for_selector(""), None).unwrap();
        assert!(d.admitted, "{d:#?}");
        assert_eq!(d.signers, vec![key.public_key().key_id()]);
        assert!(
            d.explanation
                .iter()
                .any(|l| l.contains(&format!("keyring {ring_name} user key \"release-2026\""))),
            "{d:#?}"
        );
        let d = evaluate(
            &image_arg,
            Some(NAME),
            &for_selector(r#", "description": "other""#),
            None,
        )
        .unwrap();
        assert!(!d.admitted, "a selector naming another key: {d:#?}");

        ring.remove("release-2026").unwrap();
        let d = evaluate(&image_arg, Some(NAME), &for_selector(""), None).unwrap();
        assert!(!d.admitted, "{d:#?}");
        assert!(
            d.reasons
                .iter()
                .any(|r| r.contains("no trusted key could be loaded")),
            "{d:#?}"
        );
    }
}

/// Removes the test keyring even when an assertion fails.
struct DestroyOnDrop(Option<KernelKeyring>);

impl Drop for DestroyOnDrop {
    fn drop(&mut self) {
        if let Some(ring) = self.0.take() {
            let _ = ring.destroy();
        }
    }
}
