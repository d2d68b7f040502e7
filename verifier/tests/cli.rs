//! The `cfsgate verify`/`sign` command module (`src/cmd/verify.rs`), compiled here against
//! this crate so it is tested before the binary wires it.

mod common;

#[path = "../../src/cmd/verify.rs"]
#[allow(dead_code)]
mod verify_cmd;

use clap::Parser;
use common::{fixture_image, fixtures};
use verify_cmd::{run_sign, run_verify, SignArgs, VerifyArgs};

#[derive(clap::Parser)]
struct VerifyCli {
    #[command(flatten)]
    args: VerifyArgs,
}

#[derive(clap::Parser)]
struct SignCli {
    #[command(flatten)]
    args: SignArgs,
}

fn verify_args(argv: &[&str]) -> VerifyArgs {
    VerifyCli::try_parse_from(std::iter::once("verify").chain(argv.iter().copied()))
        .expect("arguments")
        .args
}

#[test]
fn verify_accepts_the_cosign_fixture_and_rejects_with_the_wrong_key() {
    let image = fixture_image("dir-img-cosign-valid");
    let image_arg = format!("dir:{}", image.path().display());
    let key = fixtures().join("cosign.pub");
    let key2 = fixtures().join("cosign2.pub");
    let reference = "192.168.64.2:5000/cosign-signed-single-sample";
    let args = verify_args(&[
        &image_arg,
        "--key",
        key.to_str().unwrap(),
        "--reference",
        reference,
    ]);
    assert!(run_verify(&args).expect("verify"));
    let args = verify_args(&[
        &image_arg,
        "--key",
        key2.to_str().unwrap(),
        "--reference",
        reference,
        "--json",
    ]);
    assert!(!run_verify(&args).expect("verify"));
}

#[test]
fn verify_rekor_key_flag_requires_a_valid_set() {
    let image = fixture_image("dir-img-cosign-key-rekor-valid");
    let image_arg = format!("dir:{}", image.path().display());
    let key = fixtures().join("cosign2.pub");
    let public_good =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rekor-public-good.pub");
    let reference = "192.168.64.2:5000/cosign-signed/key-1";
    let with_rekor = |rekor: &std::path::Path| {
        verify_args(&[
            &image_arg,
            "--key",
            key.to_str().unwrap(),
            "--rekor-key",
            rekor.to_str().unwrap(),
            "--reference",
            reference,
        ])
    };
    assert!(run_verify(&with_rekor(&public_good)).expect("verify"));
    // Another (real, P-256) key as the Rekor key: the SET is from another log.
    assert!(!run_verify(&with_rekor(&key)).expect("verify"));
    // A signature without a bundle no longer counts once a Rekor key is given.
    let plain = fixture_image("dir-img-cosign-valid");
    let args = verify_args(&[
        &format!("dir:{}", plain.path().display()),
        "--key",
        fixtures().join("cosign.pub").to_str().unwrap(),
        "--rekor-key",
        public_good.to_str().unwrap(),
        "--reference",
        "192.168.64.2:5000/cosign-signed-single-sample",
    ]);
    assert!(!run_verify(&args).expect("verify"));
    // --rekor-key belongs to the --key/--keyring policy; it cannot silently do nothing.
    let args = verify_args(&[&image_arg, "--rekor-key", public_good.to_str().unwrap()]);
    assert!(run_verify(&args).is_err());
}

#[test]
fn verify_exact_rule_refuses_repository_only_signature() {
    let image = fixture_image("dir-img-cosign-valid");
    let image_arg = format!("dir:{}", image.path().display());
    let key = fixtures().join("cosign.pub");
    let args = verify_args(&[
        &image_arg,
        "--key",
        key.to_str().unwrap(),
        "--reference",
        "192.168.64.2:5000/cosign-signed-single-sample:latest",
        "--identity-match",
        "exact",
    ]);
    assert!(!run_verify(&args).expect("verify"));
}

#[test]
fn verify_refuses_other_transports_and_keys_without_reference() {
    let key = fixtures().join("cosign.pub");
    let args = verify_args(&[
        "docker://x",
        "--key",
        key.to_str().unwrap(),
        "--reference",
        "x",
    ]);
    let err = run_verify(&args).expect_err("transport");
    assert!(err.to_string().contains("dir:PATH"), "{err}");
    assert!(
        VerifyCli::try_parse_from(["verify", "dir:/x", "--key", "/k", "--policy", "/p"]).is_err()
    );
    let args = verify_args(&["dir:/x", "--key", "/nonexistent"]);
    let err = run_verify(&args).expect_err("--key without --reference");
    assert!(err.to_string().contains("--reference"), "{err}");
}

#[test]
fn sign_then_verify_through_the_commands() {
    let image = tempfile::tempdir().unwrap();
    std::fs::write(image.path().join("manifest.json"), b"{\"schemaVersion\":2}").unwrap();
    let work = tempfile::tempdir().unwrap();
    let key = cfsgate_keyring::PrivateKey::generate(cfsgate_keyring::KeyType::P256);
    let key_path = work.path().join("k.key");
    let pub_path = work.path().join("k.pub");
    std::fs::write(&key_path, key.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    std::fs::write(&pub_path, key.public_key().to_pem()).unwrap();
    let image_arg = format!("dir:{}", image.path().display());
    let sign = SignCli::try_parse_from([
        "sign",
        &image_arg,
        "--key",
        key_path.to_str().unwrap(),
        "--identity",
        "example.com/app",
    ])
    .unwrap()
    .args;
    run_sign(&sign).expect("sign");
    assert!(image.path().join("signature-1").is_file());
    let args = verify_args(&[
        &image_arg,
        "--key",
        pub_path.to_str().unwrap(),
        "--reference",
        "example.com/app:v2",
    ]);
    assert!(run_verify(&args).expect("verify"));
}

#[path = "../../src/cmd/policy.rs"]
#[allow(dead_code)]
mod policy_cmd;

#[derive(clap::Parser)]
struct PolicyCli {
    #[command(flatten)]
    args: policy_cmd::PolicyArgs,
}

fn policy_args(argv: &[&str]) -> policy_cmd::PolicyArgs {
    PolicyCli::try_parse_from(std::iter::once("policy").chain(argv.iter().copied()))
        .expect("arguments")
        .args
}

#[test]
fn policy_check_fails_on_errors_and_passes_clean_files() {
    let work = tempfile::tempdir().unwrap();
    let bad = work.path().join("bad.json");
    std::fs::write(
        &bad,
        "{\"default\": [{\"type\": \"sigstoreSigned\", \"keyPath\": \"relative.pub\"}]}",
    )
    .unwrap();
    let args = policy_args(&["check", bad.to_str().unwrap()]);
    assert!(!policy_cmd::run_policy(&args, None).expect("check runs"));
    let missing_key = work.path().join("missing.json");
    std::fs::write(
        &missing_key,
        "{\"default\": [{\"type\": \"sigstoreSigned\", \"keyPath\": \"/nonexistent/k.pub\"}]}",
    )
    .unwrap();
    let args = policy_args(&["check", missing_key.to_str().unwrap()]);
    assert!(!policy_cmd::run_policy(&args, None).expect("check runs"));
    let good = work.path().join("good.json");
    let key = fixtures().join("cosign.pub").canonicalize().unwrap();
    std::fs::write(
        &good,
        format!(
            "{{\"default\": [{{\"type\": \"sigstoreSigned\", \"keyPath\": {:?}}}]}}",
            key.display().to_string()
        ),
    )
    .unwrap();
    let args = policy_args(&["check", good.to_str().unwrap()]);
    assert!(policy_cmd::run_policy(&args, None).expect("check runs"));
    let args = policy_args(&["check", "/nonexistent/policy.json"]);
    assert!(
        policy_cmd::run_policy(&args, None).is_err(),
        "unreadable: exit 2"
    );
}

#[test]
fn policy_explain_and_verify_with_a_policy_file() {
    let work = tempfile::tempdir().unwrap();
    let key = fixtures().join("cosign.pub").canonicalize().unwrap();
    let policy = work.path().join("policy.json");
    std::fs::write(
        &policy,
        format!(
            "{{\"default\": [{{\"type\": \"reject\"}}], \"transports\": {{\"docker\": {{\"192.168.64.2:5000\": [{{\"type\": \"sigstoreSigned\", \"keyPath\": {:?}, \"signedIdentity\": {{\"type\": \"matchRepository\"}}}}]}}}}}}",
            key.display().to_string()
        ),
    )
    .unwrap();
    let image = fixture_image("dir-img-cosign-valid");
    let image_arg = format!("dir:{}", image.path().display());
    let reference = "192.168.64.2:5000/cosign-signed-single-sample";
    let args = policy_args(&[
        "explain",
        policy.to_str().unwrap(),
        &image_arg,
        "--reference",
        reference,
    ]);
    assert!(policy_cmd::run_policy(&args, None).expect("explain"));
    let verify = verify_args(&[
        &image_arg,
        "--policy",
        policy.to_str().unwrap(),
        "--reference",
        reference,
    ]);
    assert!(run_verify(&verify).expect("verify"));
    // Another registry falls to the rejecting default: exit 1, not 2.
    let verify = verify_args(&[
        &image_arg,
        "--policy",
        policy.to_str().unwrap(),
        "--reference",
        "other.example/app",
    ]);
    assert!(!run_verify(&verify).expect("verify"));
    let verify = verify_args(&[&image_arg, "--policy", "/nonexistent/policy.json"]);
    assert!(run_verify(&verify).is_err(), "unreadable policy: exit 2");
}
