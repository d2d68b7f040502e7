//! podman with the cfsgate precreate hook (installed by scripts/runtime-setup; hooks from
//! `cfsgate install-hooks` passed with `--hooks-dir`): a signed, sealed image runs on the
//! composefs mount; unsigned, wrongly signed, unsealed and tampered images do not start.
//!
//! podman (4.3) runs precreate hooks with their stderr discarded, so its error names the hook
//! and its exit status, not cfsgate's reason; the reason is in the audit record of the
//! container, which this test checks.

#[path = "fixtures/hooks.rs"]
mod fixture;

use std::process::Command;

use fixture::*;

/// A podman-storage image to start from: its own root says "placeholder", so a container that
/// prints anything else runs on the root cfsgate mounted.
fn load_placeholder(fx: &Fixture) -> String {
    let rootfs = fx.rootfs("placeholder", "placeholder");
    let layout = fx.path().join("oci-placeholder");
    let tagged = format!("{}:latest", layout.display());
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &tagged]));
    run(Command::new("umoci")
        .args(["insert", "--image", &tagged])
        .arg(&rootfs)
        .arg("/"));
    let name = "localhost/cfsgate-placeholder:latest".to_string();
    run(Command::new("skopeo")
        .args(["copy", "-q"])
        .arg(format!("oci:{tagged}"))
        .arg(format!("containers-storage:{name}")));
    name
}

fn podman_run(
    fx: &Fixture,
    hooks: &std::path::Path,
    placeholder: &str,
    image: &str,
) -> std::process::Output {
    Command::new("podman")
        // crun (Debian 12) refuses a hybrid cgroup v1/v2 hierarchy such as this CI's; runc runs.
        .args(["--runtime", "runc", "--hooks-dir"])
        .arg(hooks)
        .args(["run", "--rm", "--pull=never", "--network=none"])
        .arg(format!("--annotation=io.cfsgate.image={image}"))
        .arg("--annotation=io.cfsgate.reference=registry.example/app:latest")
        .arg(placeholder)
        .args([
            "/bin/sh",
            "-c",
            "cat /etc/motd; grep ' / / ' /proc/self/mountinfo",
        ])
        .current_dir(fx.path())
        .output()
        .expect("podman installed (scripts/runtime-setup)")
}

#[test]
fn podman_runs_only_signed_sealed_images_on_the_composefs_root() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let hooks = fx.path().join("hooks.d");
    let out = cfsgate(
        &[
            "install-hooks",
            "--dir",
            hooks.to_str().unwrap(),
            "--audit-log",
            fx.audit_log.to_str().unwrap(),
            "--run-dir",
            fx.run_dir.to_str().unwrap(),
            "--arg=--policy",
            &format!("--arg={}", fx.policy.display()),
            "--arg=--repo",
            &format!("--arg={}", fx.repo.display()),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let placeholder = load_placeholder(&fx);

    let good = fx.image(
        "pm-good",
        &fx.rootfs("pm-good", "signed and sealed"),
        Variant::Good,
    );
    let out = podman_run(&fx, &hooks, &placeholder, &good);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "podman run: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("signed and sealed"),
        "not the composefs root: {stdout}"
    );
    assert!(
        stdout.contains(" overlay "),
        "root is not an overlay: {stdout}"
    );
    assert!(
        mounts_under(&fx.run_dir).is_empty(),
        "leaked: {:?}",
        mounts_under(&fx.run_dir)
    );

    for (i, (variant, reason)) in [
        (Variant::Unsigned, "unsigned"),
        (Variant::WrongKey, "not by any trusted key"),
        (Variant::Unsealed, "not sealed"),
        (Variant::Tampered, "no such signature matches"),
    ]
    .into_iter()
    .enumerate()
    {
        let image = fx.image(
            &format!("pm-bad{i}"),
            &fx.rootfs(&format!("pm-bad{i}"), "bad"),
            variant,
        );
        let out = podman_run(&fx, &hooks, &placeholder, &image);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{variant:?} started: {all}");
        assert!(
            !all.contains("placeholder") && !all.contains("bad\n"),
            "{variant:?} ran: {all}"
        );
        assert!(
            all.contains("precreate"),
            "podman does not name the hook: {all}"
        );
        let last = std::fs::read_to_string(&fx.audit_log).unwrap();
        let record: serde_json::Value = serde_json::from_str(last.lines().last().unwrap()).unwrap();
        assert_eq!(record["verdict"], "deny");
        assert_eq!(record["image"], image.as_str());
        let reasons = record["reasons"].to_string();
        assert!(reasons.contains(reason), "{variant:?}: {reasons}");
    }
    assert!(mounts_under(&fx.run_dir).is_empty());
    let out = cfsgate(
        &[
            "audit",
            "verify",
            "--audit-log",
            fx.audit_log.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success());
}
