//! podman with the cfsgate precreate hook in the opt-in annotation mode (`cfsgate install-hooks
//! --annotations`; hooks passed with `--hooks-dir`): the image `io.cfsgate.image` names must be
//! the container's own (the one podman's records say it starts); a signed, sealed image runs on
//! the composefs mount; unsigned, wrongly signed, unsealed and tampered images do not start.
//! (The default, annotation-free mode is tested in tests/podman_gate.rs.)
//!
//! podman (4.3) runs precreate hooks with their stderr connected to /dev/null, so its own error
//! names only the hook and `exit status 1`; cfsgate then writes its one-line reason to podman's
//! stderr (the hook's parent's fd 2). These tests read podman's stderr as a user would (a pipe,
//! a regular file), and check the reason is there, the container did not start, and the audit
//! record says the same.

#[path = "fixtures/hooks.rs"]
mod fixture;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use fixture::*;

/// `image` (a `dir:` image) put into podman's storage as `localhost/cfsgate-NAME:latest`: the
/// annotation mode refuses an annotated image that is not the container's own.
fn load(image: &str, name: &str) -> String {
    let name = format!("localhost/cfsgate-{name}:latest");
    run(Command::new("skopeo")
        .args(["copy", "-q", image])
        .arg(format!("containers-storage:{name}")));
    name
}

/// `podman run` of `stored` annotated with `image` in the hooks `hooks`; podman's stdout and
/// stderr are pipes.
fn podman_run(fx: &Fixture, hooks: &Path, stored: &str, image: &str) -> Output {
    podman_command(fx, hooks, stored, image)
        .output()
        .expect("podman installed (scripts/runtime-setup)")
}

fn podman_command(fx: &Fixture, hooks: &Path, stored: &str, image: &str) -> Command {
    let mut command = Command::new("podman");
    command
        // crun (Debian 12) refuses a hybrid cgroup v1/v2 hierarchy such as this CI's; runc runs.
        .args(["--runtime", "runc", "--hooks-dir"])
        .arg(hooks)
        .args(["run", "--rm", "--pull=never", "--network=none"])
        .arg(format!("--annotation=io.cfsgate.image={image}"))
        .arg("--annotation=io.cfsgate.reference=registry.example/app:latest")
        .arg(stored)
        .args([
            "/bin/sh",
            "-c",
            "cat /etc/motd; grep ' / / ' /proc/self/mountinfo",
        ])
        .current_dir(fx.path());
    command
}

/// `cfsgate install-hooks --annotations` into `<fixture>/<dir>`, precreate with `extra`
/// arguments.
fn install_hooks(fx: &Fixture, dir: &str, extra: &[&str]) -> PathBuf {
    let mut options = vec!["--annotations".to_string()];
    options.extend(extra.iter().map(|a| format!("--arg={a}")));
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    fx.install_hooks(&fx.policy, dir, &options)
}

/// The last audit record: a denial of `image` whose reasons mention `reason`.
fn assert_denial_recorded(fx: &Fixture, image: &str, reason: &str) {
    let log = std::fs::read_to_string(&fx.audit_log).unwrap();
    let record: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(record["verdict"], "deny");
    assert_eq!(record["image"], image);
    let reasons = record["reasons"].to_string();
    assert!(reasons.contains(reason), "{image}: {reasons}");
}

/// podman failed, and the container's command never ran (its output would name its root).
fn assert_not_started(out: &Output, what: &str) {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{what} started: {all}");
    assert!(
        !all.contains("placeholder") && !all.contains("bad\n") && !all.contains(" / / "),
        "{what} ran: {all}"
    );
}

/// podman's stderr carries cfsgate's line for `image` with `reason`, exactly once, before
/// podman's own `Error:` line naming the precreate hook.
fn assert_podman_shows_reason(stderr: &str, image: &str, reason: &str) {
    let prefix = format!("cfsgate: denied {image}: ");
    let lines: Vec<&str> = stderr.lines().collect();
    let ours: Vec<usize> = (0..lines.len())
        .filter(|i| lines[*i].starts_with(&prefix))
        .collect();
    assert_eq!(ours.len(), 1, "cfsgate's line is not shown once: {stderr}");
    assert!(
        lines[ours[0]].contains(reason),
        "podman shows cfsgate's line without the reason {reason:?}: {stderr}"
    );
    let error = lines
        .iter()
        .position(|l| l.starts_with("Error:"))
        .unwrap_or_else(|| panic!("podman printed no Error line: {stderr}"));
    assert!(
        ours[0] < error,
        "cfsgate's line after podman's error: {stderr}"
    );
    assert!(
        lines[error].contains("precreate") || lines[error].contains("OCI Hooks"),
        "podman's error does not name the hook: {stderr}"
    );
}

#[test]
fn podman_runs_only_signed_sealed_images_on_the_composefs_root() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let hooks = install_hooks(&fx, "hooks.d", &[]);

    let good = fx.image(
        "pm-good",
        &fx.rootfs("pm-good", "signed and sealed"),
        Variant::Good,
    );
    let out = podman_run(&fx, &hooks, &load(&good, "pm-good"), &good);
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
        let stored = load(&image, &format!("pm-bad{i}"));
        let out = podman_run(&fx, &hooks, &stored, &image);
        assert_not_started(&out, &format!("{variant:?}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("precreate"),
            "podman does not name the hook: {stderr}"
        );
        assert_podman_shows_reason(&stderr, &image, reason);
        assert_denial_recorded(&fx, &image, reason);
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

/// podman's stderr redirected to a regular file (`podman run … 2>file`, no O_APPEND): cfsgate's
/// line and podman's own lines all survive (cfsgate writes through podman's own file
/// description, so podman's next write does not overwrite it).
#[test]
fn podman_stderr_to_a_file_keeps_cfsgates_reason_and_podmans_error() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let hooks = install_hooks(&fx, "hooks.d", &[]);
    let image = fx.image("pm-file", &fx.rootfs("pm-file", "bad"), Variant::Unsigned);
    let stored = load(&image, "pm-file");
    let err_path = fx.path().join("podman.err");
    let err_file = std::fs::File::create(&err_path).unwrap();
    let out = podman_command(&fx, &hooks, &stored, &image)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(err_file))
        .output()
        .expect("podman installed (scripts/runtime-setup)");
    assert_not_started(&out, "unsigned");
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    assert_podman_shows_reason(&stderr, &image, "unsigned");
    assert!(
        stderr.contains("level=warning") && stderr.contains("exit status 1"),
        "podman's own lines were overwritten: {stderr}"
    );
    assert_denial_recorded(&fx, &image, "unsigned");
}

/// `--no-engine-stderr`: the refusal is unchanged (podman fails, the audit record names the
/// reason) but podman's stderr carries no line from cfsgate.
#[test]
fn podman_no_engine_stderr_keeps_the_refusal_without_the_line() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let hooks = install_hooks(&fx, "hooks-quiet.d", &["--no-engine-stderr"]);
    let image = fx.image("pm-quiet", &fx.rootfs("pm-quiet", "bad"), Variant::WrongKey);
    let out = podman_run(&fx, &hooks, &load(&image, "pm-quiet"), &image);
    assert_not_started(&out, "wrongly signed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // podman's own lines name the hook's argv (`cfsgate hook precreate …`), never a reason.
    assert!(!stderr.contains("cfsgate: denied"), "{stderr}");
    assert!(stderr.contains("precreate"), "{stderr}");
    assert_denial_recorded(&fx, &image, "not by any trusted key");
}

/// A container whose image annotation carries terminal escapes (an OSC title change, a bell, a
/// screen clear): podman's stderr shows the refusal with them escaped, never the raw bytes.
/// (podman cuts an annotation at a newline; cfsgate's escaping of newlines is unit-tested.)
#[test]
fn podman_shows_a_hostile_image_name_escaped() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let hooks = install_hooks(&fx, "hooks.d", &[]);
    let own = fx.image("pm-own", &fx.rootfs("pm-own", "own"), Variant::Good);
    let placeholder = load(&own, "pm-own");
    let hostile = format!(
        "dir:{}/missing\u{1b}]0;owned\u{7}\u{1b}[2J",
        fx.path().display()
    );
    let out = podman_run(&fx, &hooks, &placeholder, &hostile);
    assert_not_started(&out, "hostile name");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\u{7}'),
        "raw control bytes reached podman's stderr: {stderr:?}"
    );
    let shown = format!(
        "cfsgate: denied dir:{}/missing\\u{{1b}}]0;owned\\u{{7}}\\u{{1b}}[2J: ",
        fx.path().display()
    );
    assert!(stderr.contains(&shown), "{shown}\n{stderr}");
    assert_denial_recorded(&fx, &hostile, "No such file or directory");
}
