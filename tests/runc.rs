//! runc with `cfsgate bundle`: the container's root is the verified composefs mount; the
//! createRuntime hook refuses a bundle whose root was swapped after admission; poststop cleans up.

#[path = "fixtures/hooks.rs"]
mod fixture;

use std::path::Path;
use std::process::Command;

use fixture::*;

fn bundle(fx: &Fixture, image: &str, dir: &Path, cmd: &[&str]) -> std::process::Output {
    let args = fx.bundle_args(image, dir, cmd);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    cfsgate(&argv, None)
}

fn runc_run(bundle: &Path, id: &str) -> std::process::Output {
    Command::new("runc")
        .args(["--root"])
        .arg(bundle.parent().unwrap().join("runc-state"))
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(id)
        .output()
        .expect("runc installed")
}

#[test]
fn runc_runs_the_verified_root_and_refuses_a_swapped_one() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let rootfs = fx.rootfs("runc", "running from composefs");
    let image = fx.image("runc", &rootfs, Variant::Good);

    let dir = fx.path().join("bundle-ok");
    let out = bundle(
        &fx,
        &image,
        &dir,
        &[
            "/bin/sh",
            "-c",
            "cat /etc/motd; grep ' / ' /proc/self/mountinfo",
        ],
    );
    assert!(
        out.status.success(),
        "bundle: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fstype_at(&dir.join("rootfs")).as_deref(), Some("overlay"));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["hooks"]["createRuntime"][0]["path"], BIN);
    let out = runc_run(&dir, "cfsgate-ok");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "runc run: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("running from composefs"), "{stdout}");
    assert!(
        stdout.contains(" overlay "),
        "container root is not the overlay: {stdout}"
    );
    // runc deleted the container: poststop unmounted the root.
    assert_eq!(fstype_at(&dir.join("rootfs")), None);
    assert!(mounts_under(&fx.run_dir).is_empty());

    // A bad image gets no bundle.
    let bad = fx.image("runc-bad", &fx.rootfs("runc-bad", "x"), Variant::Unsigned);
    let out = bundle(&fx, &bad, &fx.path().join("bundle-bad"), &["/bin/true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!fx.path().join("bundle-bad/config.json").exists());

    // Swapped after admission: a tmpfs with a look-alike tree mounted over the root.
    let dir = fx.path().join("bundle-swap");
    let out = bundle(&fx, &image, &dir, &["/bin/sh", "-c", "cat /etc/motd"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = dir.join("rootfs");
    run(Command::new("mount")
        .args(["-t", "tmpfs", "evil"])
        .arg(&root));
    run(Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", rootfs.display()))
        .arg(&root));
    std::fs::write(root.join("etc/motd"), "evil\n").unwrap();
    let out = runc_run(&dir, "cfsgate-swap");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "swapped root ran: {all}");
    assert!(
        !all.contains("evil"),
        "the swapped root's program ran: {all}"
    );
    assert!(
        all.contains("swapped"),
        "runc does not show cfsgate's reason: {all}"
    );
    let _ = Command::new("runc")
        .arg("--root")
        .arg(fx.path().join("runc-state"))
        .args(["delete", "-f", "cfsgate-swap"])
        .output();
    let _ = Command::new("umount").arg(&root).output();
    let _ = cfsgate(
        &[
            "mounts",
            "gc",
            "--run-dir",
            fx.run_dir.to_str().unwrap(),
            "--audit-log",
            fx.audit_log.to_str().unwrap(),
        ],
        None,
    );
    // gc needs the process gone or the grace period over; unmount what is left explicitly.
    while fstype_at(&root).is_some() {
        run(Command::new("umount").arg(&root));
    }
    let stages = fx.audit_stages();
    let stages: Vec<(&str, &str)> = stages
        .iter()
        .map(|(s, v)| (s.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        stages,
        [
            ("bundle", "admit"),
            ("createRuntime", "admit"),
            ("poststop", "admit"),
            ("bundle", "deny"),
            ("bundle", "admit"),
            ("createRuntime", "deny"),
            // runc runs poststop when create fails; no createRuntime passed, so no container
            // owns that admission: the cleanup is refused and left to `mounts gc`.
            ("poststop", "deny")
        ]
    );
}
