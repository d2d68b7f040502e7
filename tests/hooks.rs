//! The runtime hooks end to end, through the `cfsgate` binary, with real keys, a real policy,
//! real images (umoci, skopeo, cfsgate sign) and real mounts.

#[path = "fixtures/hooks.rs"]
mod fixture;

use std::path::{Path, PathBuf};

use fixture::*;

fn precreate(fx: &Fixture, config: &[u8]) -> std::process::Output {
    let mut args = vec![
        "hook".to_string(),
        "precreate".to_string(),
        "--annotations".to_string(),
    ];
    args.extend(fx.gate_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cfsgate(&args, Some(config))
}

fn stage(fx: &Fixture, sub: &str, state: &[u8]) -> std::process::Output {
    let mut args = vec!["hook".to_string(), sub.to_string()];
    args.extend(fx.check_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cfsgate(&args, Some(state))
}

fn audit_verify(fx: &Fixture) -> (bool, String) {
    let out = cfsgate(
        &[
            "audit",
            "verify",
            "--audit-log",
            fx.audit_log.to_str().unwrap(),
        ],
        None,
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn root_of(stdout: &[u8]) -> PathBuf {
    let config: serde_json::Value = serde_json::from_slice(stdout).expect("config on stdout");
    PathBuf::from(config["root"]["path"].as_str().expect("root.path"))
}

fn records(fx: &Fixture) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&fx.audit_log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The poststop of container `id` (its createRuntime first, which claims the admission or, for
/// its owner, passes again: poststop cleans up only for the owner).
fn poststop(fx: &Fixture, id: &str, root: &Path) {
    let bundle = bundle_for(fx.path(), id, root);
    let out = stage(fx, "create-runtime", &state_json(id, &bundle));
    assert!(
        out.status.success(),
        "create-runtime before poststop: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = stage(fx, "poststop", &state_json(id, &bundle));
    assert!(
        out.status.success(),
        "poststop: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn precreate_admits_signed_sealed_image_and_poststop_cleans_up() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let rootfs = fx.rootfs("good", "hello from the sealed image");
    let image = fx.image("good", &rootfs, Variant::Good);
    let out = precreate(
        &fx,
        &runtime_config(&image, "registry.example/app:latest", &[]),
    );
    assert!(
        out.status.success(),
        "precreate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = root_of(&out.stdout);
    assert!(
        root.starts_with(&fx.run_dir),
        "root {root:?} not under the run dir"
    );
    assert_eq!(fstype_at(&root).as_deref(), Some("overlay"));
    assert_eq!(
        std::fs::read_to_string(root.join("etc/motd")).unwrap(),
        "hello from the sealed image\n"
    );
    assert_eq!(
        std::fs::read(root.join("bin/busybox")).unwrap(),
        std::fs::read("/bin/busybox").unwrap()
    );
    // Writable through the per-container upper layer, without touching the store.
    std::fs::write(root.join("tmp/scratch"), "w").unwrap();
    let admission: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.parent().unwrap().join("admission.json")).unwrap(),
    )
    .unwrap();
    let recs = records(&fx);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["verdict"], "admit");
    assert_eq!(recs[0]["stage"], "precreate");
    // The digest both records name is the one `cfsgate create` computes on its own for the
    // same tree (not one output of the admission compared with another).
    let expected = format!("sha256:{}", fx.store(&rootfs));
    assert_eq!(recs[0]["composefs_digest"], expected.as_str());
    assert_eq!(admission["composefs_digest"], expected.as_str());
    assert_eq!(recs[0]["signers"].as_array().unwrap().len(), 1);
    assert_eq!(recs[0]["verity"], "userspace");

    // createRuntime on the admitted root passes and is recorded.
    let bundle = bundle_for(fx.path(), "good", &root);
    let out = stage(&fx, "create-runtime", &state_json("ctr-good", &bundle));
    assert!(
        out.status.success(),
        "create-runtime: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    poststop(&fx, "ctr-good", &root);
    assert!(
        mounts_under(&fx.run_dir).is_empty(),
        "leaked: {:?}",
        mounts_under(&fx.run_dir)
    );
    assert!(!root.exists());
    assert!(audit_verify(&fx).0);
}

#[test]
fn precreate_refuses_bad_images_with_the_reason() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let cases = [
        (Variant::Unsigned, "unsigned"),
        (Variant::WrongKey, "not by any trusted key"),
        (Variant::Unsealed, "not sealed"),
        (Variant::Tampered, "no such signature matches"),
    ];
    for (i, (variant, reason)) in cases.iter().enumerate() {
        let rootfs = fx.rootfs(&format!("bad{i}"), "bad");
        let image = fx.image(&format!("bad{i}"), &rootfs, *variant);
        let out = precreate(
            &fx,
            &runtime_config(&image, "registry.example/app:latest", &[]),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{variant:?} admitted: {stderr}");
        assert!(
            stderr.contains(reason),
            "{variant:?}: {stderr:?} lacks {reason:?}"
        );
        assert!(
            out.stdout.is_empty(),
            "{variant:?}: config printed on refusal"
        );
    }
    // An image outside every allowed scope, and a config naming no image.
    let rootfs = fx.rootfs("other", "x");
    let image = fx.image("other", &rootfs, Variant::Good);
    let out = precreate(
        &fx,
        &runtime_config(&image, "registry.example/other:1", &[]),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rejects every image"));
    let out = precreate(&fx, br#"{"ociVersion":"1.0.2","root":{"path":"/x"}}"#);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("names no image"));
    // An unreadable policy denies.
    let mut args: Vec<String> = vec!["hook".into(), "precreate".into(), "--annotations".into()];
    args.extend(fx.gate_args());
    args[4] = fx.path().join("missing-policy.json").display().to_string();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = cfsgate(
        &argv,
        Some(&runtime_config(&image, "registry.example/app:latest", &[])),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("policy unusable"));

    let recs = records(&fx);
    assert_eq!(
        recs.len(),
        6,
        "one record per decision that named an image: {recs:?}"
    );
    assert!(recs.iter().all(|r| r["verdict"] == "deny"));
    assert!(mounts_under(&fx.run_dir).is_empty());
    assert!(std::fs::read_dir(&fx.run_dir).map_or(true, |mut d| d.next().is_none()));
    assert!(audit_verify(&fx).0);
}

#[test]
fn warn_mode_admits_and_records_the_would_be_denial() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let rootfs = fx.rootfs("warn", "warned");
    let image = fx.image("warn", &rootfs, Variant::Unsigned);
    let out = precreate(&fx, &runtime_config(&image, "registry.example/warn:1", &[]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("warn mode"));
    let root = root_of(&out.stdout);
    assert_eq!(
        std::fs::read_to_string(root.join("etc/motd")).unwrap(),
        "warned\n"
    );
    let recs = records(&fx);
    assert_eq!(recs[0]["verdict"], "admit");
    assert_eq!(recs[0]["mode"], "warn");
    assert_eq!(recs[0]["would_reject"], true);
    poststop(&fx, "warn", &root);
    assert!(mounts_under(&fx.run_dir).is_empty());
}

#[test]
fn create_runtime_refuses_a_swapped_root() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let rootfs = fx.rootfs("swap", "original");
    let image = fx.image("swap", &rootfs, Variant::Good);
    let out = precreate(
        &fx,
        &runtime_config(&image, "registry.example/app:latest", &[]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = root_of(&out.stdout);
    let bundle = bundle_for(fx.path(), "swap", &root);

    // A root nobody admitted.
    let plain = fx.path().join("plain-root");
    std::fs::create_dir_all(&plain).unwrap();
    let other = bundle_for(fx.path(), "plain", &plain);
    let out = stage(&fx, "create-runtime", &state_json("ctr-plain", &other));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("was not admitted"));

    // The admitted root with another filesystem mounted over it after admission.
    run(std::process::Command::new("mount")
        .args(["-t", "tmpfs", "swapped"])
        .arg(&root));
    let out = stage(&fx, "create-runtime", &state_json("ctr-swap", &bundle));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "swapped root accepted: {stderr}"
    );
    assert!(stderr.contains("swapped"), "{stderr}");
    run(std::process::Command::new("umount").arg(&root));

    // The composefs mount replaced by a fresh mount of the same image: a different mount.
    run(std::process::Command::new("umount").arg(&root));
    let digest = fx.store(&rootfs);
    run(std::process::Command::new(BIN)
        .args(["mount", "--verity", "none", "--repo"])
        .arg(&fx.repo)
        .arg(&digest)
        .arg(&root));
    let out = stage(&fx, "create-runtime", &state_json("ctr-swap", &bundle));
    assert_eq!(out.status.code(), Some(1), "remounted root accepted");

    // No createRuntime passed, so no container owns the admission: poststop leaves it (to
    // `mounts gc` after its grace period) and says so.
    let out = stage(&fx, "poststop", &state_json("ctr-swap", &bundle));
    assert_eq!(out.status.code(), Some(1), "unowned admission cleaned up");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("claimed by no createRuntime"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(root.parent().unwrap().join("admission.json").exists());
    while fstype_at(&root).is_some() {
        run(std::process::Command::new("umount").arg(&root));
    }
    assert!(mounts_under(&fx.run_dir).is_empty());
    let recs = records(&fx);
    let create: Vec<_> = recs
        .iter()
        .filter(|r| r["stage"] == "createRuntime")
        .collect();
    assert_eq!(create.len(), 3);
    assert!(create.iter().all(|r| r["verdict"] == "deny"));
    let last = recs.last().unwrap();
    assert_eq!(
        (&last["stage"], &last["verdict"]),
        (&"poststop".into(), &"deny".into())
    );
    assert!(audit_verify(&fx).0);
}

#[test]
fn twenty_parallel_precreates_mixed_good_and_bad() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let good = fx.image("pgood", &fx.rootfs("pgood", "parallel good"), Variant::Good);
    let bad = fx.image(
        "pbad",
        &fx.rootfs("pbad", "parallel bad"),
        Variant::WrongKey,
    );
    let results: Vec<(bool, std::process::Output)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let (fx, good, bad) = (&fx, &good, &bad);
                s.spawn(move || {
                    let ok = i % 3 != 0;
                    let image = if ok { good } else { bad };
                    (
                        ok,
                        precreate(
                            fx,
                            &runtime_config(image, "registry.example/app:latest", &[]),
                        ),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut roots = Vec::new();
    for (ok, out) in &results {
        assert_eq!(
            out.status.success(),
            *ok,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if *ok {
            let root = root_of(&out.stdout);
            assert_eq!(
                std::fs::read_to_string(root.join("etc/motd")).unwrap(),
                "parallel good\n"
            );
            roots.push(root);
        }
    }
    let distinct: std::collections::BTreeSet<_> = roots.iter().collect();
    assert_eq!(distinct.len(), roots.len(), "two containers share a root");
    let recs = records(&fx);
    assert_eq!(recs.len(), 20);
    assert_eq!(
        recs.iter().filter(|r| r["verdict"] == "admit").count(),
        roots.len()
    );
    let (intact, text) = audit_verify(&fx);
    assert!(intact, "{text}");
    assert!(text.contains("20 records"), "{text}");
    for (i, root) in roots.iter().enumerate() {
        poststop(&fx, &format!("p{i}"), root);
    }
    assert!(
        mounts_under(&fx.run_dir).is_empty(),
        "leaked: {:?}",
        mounts_under(&fx.run_dir)
    );
}

#[test]
fn mounts_gc_collects_containers_whose_process_is_gone() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let image = fx.image("gc", &fx.rootfs("gc", "gc"), Variant::Good);
    let out = precreate(
        &fx,
        &runtime_config(&image, "registry.example/app:latest", &[]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = root_of(&out.stdout);
    // createRuntime records the container's pid: a short-lived process that then exits.
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let bundle = bundle_for(fx.path(), "gc", &root);
    let state = serde_json::to_vec(
        &serde_json::json!({"id": "ctr-gc", "pid": child.id(), "bundle": bundle}),
    )
    .unwrap();
    assert!(stage(&fx, "create-runtime", &state).status.success());
    let gc = |fx: &Fixture| {
        cfsgate(
            &[
                "mounts",
                "gc",
                "--run-dir",
                fx.run_dir.to_str().unwrap(),
                "--audit-log",
                fx.audit_log.to_str().unwrap(),
            ],
            None,
        )
    };
    assert!(gc(&fx).status.success());
    assert_eq!(
        fstype_at(&root).as_deref(),
        Some("overlay"),
        "gc removed a running container"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(gc(&fx).status.success());
    assert!(mounts_under(&fx.run_dir).is_empty());
    assert!(!root.exists());
    // The cleanup is an audit record (the first gc, which removed nothing, wrote none).
    let recs = records(&fx);
    let stages: Vec<_> = recs.iter().map(|r| r["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["precreate", "createRuntime", "gc"]);
    let gc = recs.last().unwrap();
    assert_eq!(gc["verdict"], "admit");
    assert_eq!(gc["container_id"], "ctr-gc");
    assert!(
        gc["reasons"][0]
            .as_str()
            .unwrap()
            .contains("container ctr-gc is gone"),
        "{gc}"
    );
}

/// `bash -c '<cfsgate hook precreate …> <redirect>; exit $?'` with the runtime config on stdin:
/// bash stays the hook's parent (as podman is) and its stderr is `engine_stderr`; bash applies
/// `<redirect>` in the forked child only (dash applies it to itself around the fork).
fn precreate_under_parent(
    fx: &Fixture,
    config: &[u8],
    redirect: &str,
    extra: &[&str],
    engine_stderr: std::process::Stdio,
) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("\"$@\" {redirect}; exit $?"))
        .arg("sh")
        .arg(BIN)
        .args(["hook", "precreate", "--annotations"])
        .args(fx.gate_args())
        .args(extra)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(engine_stderr)
        .spawn()
        .expect("spawn bash");
    child.stdin.take().unwrap().write_all(config).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn precreate_with_stderr_discarded_tells_the_parent_once() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let image = fx.image("eng", &fx.rootfs("eng", "bad"), Variant::Unsigned);
    let config = runtime_config(&image, "registry.example/app:latest", &[]);
    let piped = std::process::Stdio::piped;

    // Our stderr is /dev/null, as under podman 4.3: the parent's stderr gets the one line.
    let out = precreate_under_parent(&fx, &config, "2>/dev/null", &[], piped());
    let shown = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(out.stdout.is_empty());
    let expected = format!("cfsgate: denied {image}: ");
    assert_eq!(shown.lines().count(), 1, "{shown}");
    assert!(
        shown.starts_with(&expected) && shown.contains("unsigned") && shown.ends_with('\n'),
        "{shown}"
    );

    // A closed stderr (`2>&-`) is discarded too.
    let out = precreate_under_parent(&fx, &config, "2>&-", &[], piped());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with(&expected));

    // Our stderr is read (the parent's pipe itself): the reason once, in the hook's own form.
    let out = precreate_under_parent(&fx, &config, "", &[], piped());
    let shown = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(shown.matches("denied").count(), 1, "{shown}");
    assert!(!shown.contains(&expected), "copied although read: {shown}");
    assert!(shown.contains("unsigned"), "{shown}");

    // --no-engine-stderr: nothing reaches the parent; the refusal is unchanged.
    let out = precreate_under_parent(
        &fx,
        &config,
        "2>/dev/null",
        &["--no-engine-stderr"],
        piped(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.is_empty(), "{:?}", out.stderr);

    // A container naming no image: the line says so without an image.
    let out = precreate_under_parent(
        &fx,
        br#"{"ociVersion":"1.0.2","root":{"path":"/x"}}"#,
        "2>/dev/null",
        &[],
        piped(),
    );
    assert_eq!(out.status.code(), Some(1));
    let shown = String::from_utf8_lossy(&out.stderr);
    assert!(
        shown.starts_with("cfsgate: denied: the container names no image"),
        "{shown}"
    );
    let recs = records(&fx);
    assert_eq!(recs.len(), 4, "{recs:?}");
    assert!(recs.iter().all(|r| r["verdict"] == "deny"));
}

/// The parent's stderr is a pipe that is full and never read: the hook still refuses at once
/// (its write does not block; the line is dropped).
#[test]
fn precreate_does_not_block_on_a_full_parent_stderr() {
    if !require_root() {
        return;
    }
    use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
    use std::io::Write;
    let fx = Fixture::new();
    let image = fx.image("full", &fx.rootfs("full", "bad"), Variant::WrongKey);
    let config = runtime_config(&image, "registry.example/app:latest", &[]);
    let (reader, mut writer) = std::io::pipe().unwrap();
    let flags = fcntl_getfl(&writer).unwrap();
    fcntl_setfl(&writer, flags | OFlags::NONBLOCK).unwrap();
    let chunk = [b'x'; 4096];
    let mut filled = 0usize;
    loop {
        match writer.write(&chunk) {
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the pipe: {e}"),
        }
    }
    // The engine's own description is blocking again, as podman's stderr would be.
    fcntl_setfl(&writer, flags).unwrap();
    let started = std::time::Instant::now();
    let out = precreate_under_parent(&fx, &config, "2>/dev/null", &[], writer.into());
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1));
    assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
    // Nothing but the filler is in the pipe: the line was dropped, not half-written.
    drop(out);
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut { reader }, &mut rest).unwrap();
    assert_eq!(rest.len(), filled);
    assert!(rest.iter().all(|b| *b == b'x'));
    assert_eq!(records(&fx).last().unwrap()["verdict"], "deny");
}

/// `hook precreate` with `--audit-log` replaced by `audit_log` and `extra` appended.
fn precreate_with(
    fx: &Fixture,
    config: &[u8],
    audit_log: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args: Vec<String> = vec!["hook".into(), "precreate".into(), "--annotations".into()];
    args.extend(fx.gate_args());
    assert_eq!(args[7], "--audit-log");
    args[8] = audit_log.display().to_string();
    args.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    cfsgate(&argv, Some(config))
}

/// The documented fail-closed branch "a decision slower than --timeout denies": the deadline
/// passes before the decision, the container is refused with that reason and the denial is
/// recorded; the same image is admitted under the default deadline (the control).
#[test]
fn a_decision_slower_than_the_timeout_denies() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let rootfs = fx.rootfs("slow", "slow");
    let image = fx.image("slow", &rootfs, Variant::Good);
    let config = runtime_config(&image, "registry.example/app:latest", &[]);
    let out = precreate_with(&fx, &config, &fx.audit_log, &["--timeout", "0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "admitted past its deadline: {stderr}"
    );
    assert!(
        stderr.contains("no decision within 0 s (--timeout): failing closed"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    let recs = records(&fx);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["verdict"], "deny");
    // The timeout's reason is the first (deadline passed before the verdict) or the last
    // (verdict in time, mount finished past the deadline and undone).
    assert!(
        recs[0]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("--timeout")),
        "{}",
        recs[0]
    );
    // Let a worker that outlived the denial finish, then make sure nothing is left.
    std::thread::sleep(std::time::Duration::from_secs(2));
    for mount in mounts_under(&fx.run_dir).iter().rev() {
        let _ = std::process::Command::new("umount").arg(mount).status();
    }
    let out = precreate(&fx, &config);
    assert!(
        out.status.success(),
        "control: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    poststop(&fx, "slow", &root_of(&out.stdout));
    assert!(audit_verify(&fx).0);
}

/// The documented fail-closed branch "an audit record that cannot be written denies": with the
/// log's directory a regular file, an image the policy admits is refused at precreate (and
/// what was mounted for it is undone), and createRuntime refuses an admitted root.
#[test]
fn an_audit_record_that_cannot_be_written_denies() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let rootfs = fx.rootfs("noaudit", "no audit");
    let image = fx.image("noaudit", &rootfs, Variant::Good);
    let config = runtime_config(&image, "registry.example/app:latest", &[]);
    let blocker = fx.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let unwritable = blocker.join("audit.jsonl");
    let out = precreate_with(&fx, &config, &unwritable, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "admitted unrecorded: {stderr}");
    assert!(
        stderr.contains("cannot record the decision, failing closed"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert!(
        mounts_under(&fx.run_dir).is_empty(),
        "{:?}",
        mounts_under(&fx.run_dir)
    );
    assert!(std::fs::read_dir(&fx.run_dir).map_or(true, |mut d| d.next().is_none()));

    // createRuntime of a root admitted (and recorded) earlier, with the log unwritable now.
    let out = precreate(&fx, &config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = root_of(&out.stdout);
    let bundle = bundle_for(fx.path(), "noaudit", &root);
    let mut args: Vec<String> = vec!["hook".into(), "create-runtime".into()];
    args.extend(["--audit-log".into(), unwritable.display().to_string()]);
    args.extend(["--run-dir".into(), fx.run_dir.display().to_string()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = cfsgate(&argv, Some(&state_json("ctr-noaudit", &bundle)));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "unrecorded check passed: {stderr}"
    );
    assert!(
        stderr.contains("cannot record the decision, failing closed"),
        "{stderr}"
    );
    poststop(&fx, "ctr-noaudit", &root);
    assert!(mounts_under(&fx.run_dir).is_empty());
}
