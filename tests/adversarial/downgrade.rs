//! Downgrade: the same image with a weaker guarantee than the policy demands — unsealed under a
//! sealed-only policy, no or userspace verity where the policy requires kernel verity, a GPG
//! requirement cfsgate cannot check, the signatures stripped.

use serde_json::json;

use crate::common::*;
use crate::fixture::*;

#[test]
fn an_unsealed_image_under_a_sealed_only_policy() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let image = fx.image("unsealed", &fx.rootfs("unsealed", "u"), Variant::Unsealed);
    let out = verify_in(&fx, APP, &image);
    assert_refused("unsealed (verify)", &out, REJECTED, "not sealed");
    let out = precreate(&fx, &fx.policy, &[], &runtime_config(&image, APP, &[]));
    assert_refused("unsealed (hook)", &out, REJECTED, "not sealed");
    assert!(out.stdout.is_empty());
    assert_clean("unsealed", &fx);
}

#[test]
fn no_or_userspace_verity_when_the_policy_requires_kernel_verity() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let sigstore = sigstore(&public(&fx.signer), json!({"type": "matchRepository"}));
    let kernel = write_policy(
        &fx,
        "kernel",
        &one_scope(
            "registry.example/app",
            json!([sigstore, {"type": "composefs", "sealed": true, "verity": "kernel"}]),
        ),
    );
    let userspace = write_policy(
        &fx,
        "userspace",
        &one_scope(
            "registry.example/app",
            json!([sigstore, {"type": "composefs", "sealed": true, "verity": "userspace"}]),
        ),
    );
    let image = fx.image("v", &fx.rootfs("v", "verity"), Variant::Good);
    let config = runtime_config(&image, APP, &[]);
    // Control: a policy requiring userspace verity admits it even when the hook is told
    // `--verity none` (the policy's requirement wins), and the record says userspace.
    let out = precreate(&fx, &userspace, &["--verity", "none"], &config);
    assert_accepted("control: userspace policy, --verity none", &out);
    let root = std::path::PathBuf::from(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["root"]["path"]
            .as_str()
            .unwrap(),
    );
    let log = std::fs::read_to_string(&fx.audit_log).unwrap();
    let record: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(record["verity"], "userspace", "downgraded: {record}");
    let bundle = bundle_for(fx.path(), "v", &root);
    for stage in ["create-runtime", "poststop"] {
        let mut args = vec!["hook".to_string(), stage.to_string()];
        args.extend(fx.check_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_accepted(stage, &cfsgate(&args, Some(&state_json("v", &bundle))));
    }

    // This kernel has no fs-verity: a kernel-verity policy can never be satisfied here, and
    // neither `--verity none` nor `--verity userspace` may stand in for it.
    for verity in ["none", "userspace", "kernel"] {
        let out = precreate(&fx, &kernel, &["--verity", verity], &config);
        assert_refused(
            &format!("kernel policy, hook --verity {verity}"),
            &out,
            REJECTED,
            "verity mode kernel refused",
        );
        assert!(out.stdout.is_empty());
    }
    assert_clean("verity downgrade", &fx);
}

#[test]
fn a_gpg_signed_by_requirement_with_a_cosign_key_is_rejected_not_accepted() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let gpg = write_policy(
        &fx,
        "gpg",
        &one_scope(
            "registry.example/app",
            json!([{"type": "signedBy", "keyType": "GPGKeys", "keyPath": public(&fx.signer)}]),
        ),
    );
    let image = fx.image("gpg", &fx.rootfs("gpg", "gpg"), Variant::Good);
    let out = verify_with(&fx, &gpg, APP, &image);
    assert_refused(
        "GPG signedBy",
        &out,
        REJECTED,
        // A PEM key is no OpenPGP keyring: nothing is trusted, and the cosign signature is
        // not a GPG one either.
        "No public keys imported",
    );
    assert_clean("gpg", &fx);
}

#[test]
fn signatures_removed_or_hidden() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let image = fx.image("strip", &fx.rootfs("strip", "s"), Variant::Good);
    assert_accepted("control: signed", &verify_in(&fx, APP, &image));
    let dir = dir_of(&image);
    let signature = std::fs::read(dir.join("signature-1")).unwrap();

    std::fs::remove_file(dir.join("signature-1")).unwrap();
    let out = verify_in(&fx, APP, &image);
    assert_refused("all signatures removed", &out, REJECTED, "unsigned");
    let out = precreate(&fx, &fx.policy, &[], &runtime_config(&image, APP, &[]));
    assert_refused("all signatures removed (hook)", &out, REJECTED, "unsigned");

    // signature-2 without signature-1: numbering has a gap, nothing is read (as
    // containers/image's dir transport).
    std::fs::write(dir.join("signature-2"), &signature).unwrap();
    let out = verify_in(&fx, APP, &image);
    assert_refused(
        "signature after a numbering gap",
        &out,
        REJECTED,
        "unsigned",
    );
    std::fs::remove_file(dir.join("signature-2")).unwrap();

    // A signature whose base64 signature bytes are corrupted.
    let mut corrupt = signature.clone();
    let at = corrupt.len() - 40;
    corrupt[at] = if corrupt[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(dir.join("signature-1"), &corrupt).unwrap();
    let out = verify_in(&fx, APP, &image);
    let text = assert_refused("corrupted signature", &out, REJECTED, "rejected");
    assert!(
        text.contains("not by any trusted key") || text.contains("malformed"),
        "{text}"
    );
    assert_clean("signatures removed", &fx);
}

#[test]
fn a_policy_weakened_by_parser_tricks_is_not_evaluated() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let image = fx.image("pol", &fx.rootfs("pol", "p"), Variant::Unsigned);
    let key = public(&fx.signer).display().to_string();
    let cases = [
        (
            "a repeated key (the last one accepting anything)",
            r#"{"default": [{"type": "reject"}], "default": [{"type": "insecureAcceptAnything"}]}"#
                .to_string(),
            "duplicate key \"default\"",
        ),
        (
            "a misspelt threshold (treshold) that a lax parser would drop, weakening 2-of-n to 1",
            format!(
                r#"{{"default": [{{"type": "sigstoreSigned", "keyPaths": ["{key}", "{key}"], "cfsgate": {{"treshold": 2}}}}]}}"#
            ),
            "unknown field",
        ),
        (
            "a relative keyPath",
            r#"{"default": [{"type": "sigstoreSigned", "keyPath": "signer.pub"}]}"#.to_string(),
            "keyPath must be an absolute path",
        ),
        (
            "an empty requirement list",
            r#"{"default": []}"#.to_string(),
            "the list of requirements must not be empty",
        ),
    ];
    for (i, (case, text, reason)) in cases.iter().enumerate() {
        let policy = fx.path().join(format!("bad-policy-{i}.json"));
        std::fs::write(&policy, text).unwrap();
        let out = verify_with(&fx, &policy, APP, &image);
        assert_refused(case, &out, UNEVALUABLE, reason);
        assert!(
            text_of(&out).contains(&format!("{}:1:", policy.display())),
            "{case}: no FILE:LINE:COLUMN: {}",
            text_of(&out)
        );
        let out = precreate(&fx, &policy, &[], &runtime_config(&image, APP, &[]));
        assert_refused(&format!("{case} (hook)"), &out, REJECTED, "policy unusable");
    }
    assert_clean("policy tricks", &fx);
}
