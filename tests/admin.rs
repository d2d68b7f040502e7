//! What admins trip over, through the `cfsgate` binary: `seal` destinations are transport
//! references (`oci:PATH[:TAG]`, `dir:PATH`), and an unknown transport is an error instead of a
//! directory named `oci:` in the current directory; one global `--repo` that `bundle` and the
//! hooks honour, and an image verified but never imported is built into that repository.

use std::path::Path;
use std::process::{Command, Output};

#[path = "fixtures/hooks.rs"]
mod fixture;

const BIN: &str = env!("CARGO_BIN_EXE_cfsgate");

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// An umoci image `oci:<dir>/layout:app` with one file.
fn umoci_image(dir: &Path) -> String {
    let layout = dir.join("layout");
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/motd"), "hello\n").unwrap();
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    let tagged = format!("{}:app", layout.display());
    run(Command::new("umoci").args(["new", "--image", &tagged]));
    run(Command::new("umoci")
        .args(["insert", "--image", &tagged])
        .arg(&root)
        .arg("/"));
    format!("oci:{tagged}")
}

fn cfsgate_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("run cfsgate")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn seal_destinations_are_transport_references() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let src = umoci_image(dir.path());
    let layout = dir.path().join("layout");
    let dest = format!("oci:{}:app-sealed", layout.display());

    // skopeo style: oci:LAYOUT:TAG into the same layout.
    let out = cfsgate_in(&cwd, &["seal", &src, &dest]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest_digest = stdout(&out);
    assert!(manifest_digest.starts_with("sha256:"), "{manifest_digest}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("as {dest}:")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_dir(&cwd).unwrap().count(),
        0,
        "nothing in the cwd"
    );
    let index = std::fs::read_to_string(layout.join("index.json")).unwrap();
    assert!(
        index.contains("\"app-sealed\"") && index.contains(&manifest_digest),
        "{index}"
    );
    let sealed_id = stdout(&run(Command::new(BIN).args(["compute-id", &dest])));

    // dir:PATH: a skopeo dir: image holding the same sealed manifest.
    let dir_dest = dir.path().join("sealed-dir");
    let dir_ref = format!("dir:{}", dir_dest.display());
    let out = cfsgate_in(&cwd, &["seal", &src, &dir_ref]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout(&out), manifest_digest);
    assert_eq!(
        std::fs::read_to_string(dir_dest.join("version")).unwrap(),
        "Directory Transport Version: 1.1\n"
    );
    let manifest = std::fs::read(dir_dest.join("manifest.json")).unwrap();
    assert_eq!(
        format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&manifest))
        ),
        manifest_digest
    );
    // compute-id checks the seal label against the layers: the dir: copy is sealed and whole.
    assert_eq!(
        stdout(&run(Command::new(BIN).args(["compute-id", &dir_ref]))),
        sealed_id
    );
    // skopeo reads it as the image it is.
    run(Command::new("skopeo").args(["inspect", "--raw", &dir_ref]));

    // Unknown transports, a digest as destination, and a tag given twice are refused; nothing
    // is created.
    for (bad, expect) in [
        (
            "docker-archive:/tmp/x.tar",
            "unknown transport \"docker-archive\"",
        ),
        ("oic:somewhere", "unknown transport \"oic\""),
        (
            &*format!("oci:{}@sha256:{}", layout.display(), "a".repeat(64)),
            "names a tag, not a digest",
        ),
    ] {
        let out = cfsgate_in(&cwd, &["seal", &src, bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{bad}: {err}");
    }
    let out = cfsgate_in(&cwd, &["seal", &src, &dest, "--tag", "other"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        std::fs::read_dir(&cwd).unwrap().count(),
        0,
        "nothing in the cwd"
    );
    // A plain relative path is still an OCI layout (as before).
    let out = cfsgate_in(&cwd, &["seal", &src, "plain", "--tag", "t"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(cwd.join("plain/oci-layout").is_file());
}

/// Every file under `dir`, relative, sorted, with symlink targets.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.file_type().is_symlink() {
                out.push(format!(
                    "{rel} -> {}",
                    std::fs::read_link(&path).unwrap().display()
                ));
            } else {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn completions_manpages_and_a_staged_install() {
    // Straight from the binary.
    for shell in ["bash", "zsh", "fish"] {
        let out = run(Command::new(BIN).args(["completions", shell]));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("audit") && script.contains("install-hooks"),
            "{shell}"
        );
    }
    let out = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().join("stage");
    let containers_policy = dir.path().join("containers-policy.json");
    std::fs::write(
        &containers_policy,
        r#"{"default":[{"type":"reject"}],"transports":{"docker":{"registry.example/app":[{"type":"insecureAcceptAnything"}]}}}"#,
    )
    .unwrap();
    let install = || {
        let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install"))
            .env("DESTDIR", &stage)
            .env("PREFIX", "/usr")
            .env("CFSGATE", BIN)
            .env("CONTAINERS_POLICY", &containers_policy)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = install();
    assert!(first.contains("made from"), "{first}");
    let files = tree(&stage);
    for expected in [
        "usr/bin/cfsgate",
        "usr/bin/mount.composefs -> cfsgate",
        "usr/share/bash-completion/completions/cfsgate",
        "usr/share/zsh/site-functions/_cfsgate",
        "usr/share/fish/vendor_completions.d/cfsgate.fish",
        "usr/share/man/man1/cfsgate.1",
        "usr/share/man/man1/cfsgate-audit-verify.1",
        "usr/share/man/man1/cfsgate-seal.1",
        "etc/cfsgate/policy.json",
        "etc/cfsgate/audit.key",
    ] {
        assert!(
            files.iter().any(|f| f == expected),
            "{expected} not in {files:#?}"
        );
    }
    let hooks: Vec<&String> = files
        .iter()
        .filter(|f| f.starts_with("usr/share/containers/oci/hooks.d/") && f.ends_with(".json"))
        .collect();
    assert!(!hooks.is_empty(), "{files:#?}");
    for hook in &hooks {
        let text = std::fs::read_to_string(stage.join(hook)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["hook"]["path"], "/usr/bin/cfsgate", "{text}");
        assert!(!text.contains(stage.to_str().unwrap()), "{text}");
    }
    assert_eq!(
        std::fs::read(stage.join("etc/cfsgate/policy.json")).unwrap(),
        std::fs::read(&containers_policy).unwrap()
    );
    // The installed page renders (man's own formatter reads it).
    let page =
        std::fs::read_to_string(stage.join("usr/share/man/man1/cfsgate-audit-verify.1")).unwrap();
    assert!(page.contains(".TH") && page.contains("chain"), "{page}");

    // Again: same files, and the admin's policy and key are kept, not replaced.
    let key_before = std::fs::read(stage.join("etc/cfsgate/audit.key")).unwrap();
    std::fs::write(
        stage.join("etc/cfsgate/policy.json"),
        b"{\"default\":[{\"type\":\"reject\"}]}",
    )
    .unwrap();
    let second = install();
    assert!(second.contains("kept the existing"), "{second}");
    assert_eq!(tree(&stage), files);
    assert_eq!(
        std::fs::read(stage.join("etc/cfsgate/audit.key")).unwrap(),
        key_before
    );
    assert_eq!(
        std::fs::read(stage.join("etc/cfsgate/policy.json")).unwrap(),
        b"{\"default\":[{\"type\":\"reject\"}]}"
    );
}

fn doctor(repo: &Path, extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let mut args = vec!["--repo", repo.to_str().unwrap(), "doctor"];
    args.extend(extra);
    let text = Command::new(BIN).args(&args).output().unwrap();
    args.push("--json");
    let out = Command::new(BIN).args(&args).output().unwrap();
    assert_eq!(out.status.code(), text.status.code());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        out.status.code(),
        json,
        String::from_utf8_lossy(&text.stdout).into_owned(),
    )
}

fn check<'a>(json: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {json}"))
}

#[test]
fn doctor_says_whether_the_gate_can_run_and_what_to_do() {
    // The kernel probes create EROFS and overlay superblocks: root only (CI runs as root and
    // never skips).
    if !rustix::process::geteuid().is_root() && std::env::var_os("CI").is_none() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks.d");
    let policy = dir.path().join("policy.json");
    let log = dir.path().join("log/audit.jsonl");
    let repo = dir.path().join("repo");
    std::fs::write(&policy, r#"{"default":[{"type":"reject"}]}"#).unwrap();
    run(Command::new(BIN).args(["install-hooks", "--dir", hooks.to_str().unwrap()]));
    let src = umoci_image(dir.path());
    run(Command::new(BIN).args(["--repo", repo.to_str().unwrap(), "import", &src]));
    let sink = cfsgate_verifier::audit::AuditSink::new(&log);
    for i in 0..3 {
        sink.append(&cfsgate_verifier::audit::AuditEntry {
            stage: "precreate".into(),
            image: format!("dir:/i{i}"),
            mode: cfsgate_policy::Mode::Enforce,
            ..Default::default()
        })
        .unwrap();
    }
    let args = [
        "--policy",
        policy.to_str().unwrap(),
        "--audit-log",
        log.to_str().unwrap(),
        "--hooks-dir",
        hooks.to_str().unwrap(),
    ];
    let (code, json, text) = doctor(&repo, &args);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(json["schema"], "cfsgate.doctor/v1");
    assert_eq!(json["ready"], true);
    // This machine's kernel (6.18) has every required feature; fs-verity is the one it lacks.
    for name in [
        "erofs",
        "erofs_file_backed",
        "overlay_data_only",
        "unique_mount_ids",
        "keyring_asymmetric",
    ] {
        assert_eq!(check(&json, name)["ok"], true, "{name}: {text}");
    }
    assert_eq!(check(&json, "fs_verity")["required"], false);
    assert!(
        check(&json, "store")["detail"]
            .as_str()
            .unwrap()
            .contains("1 image(s)"),
        "{text}"
    );
    assert!(
        check(&json, "audit")["detail"]
            .as_str()
            .unwrap()
            .contains("3 records"),
        "{text}"
    );
    assert!(text.contains("the gate can run on this node"), "{text}");
    for line in text
        .lines()
        .filter(|l| l.starts_with("warn") || l.starts_with("FAIL"))
    {
        assert!(!line.is_empty());
    }

    // Each thing an admin gets wrong fails its check, exit 1, with a remedy.
    let hook_file = std::fs::read_dir(&hooks)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let original_hook = std::fs::read_to_string(&hook_file).unwrap();
    std::fs::write(
        &hook_file,
        original_hook.replace(BIN, "/nonexistent/bin/cfsgate"),
    )
    .unwrap();
    std::fs::write(&policy, r#"{"default":[{"type":"signedBy"}]}"#).unwrap();
    let mut lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.swap(0, 1);
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let (code, json, text) = doctor(&repo, &args);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(json["ready"], false);
    for name in ["hooks", "policy", "audit"] {
        let c = check(&json, name);
        assert_eq!(c["ok"], false, "{name}: {text}");
        assert!(!c["remedy"].as_str().unwrap().is_empty(), "{name}");
    }
    assert!(check(&json, "hooks")["detail"]
        .as_str()
        .unwrap()
        .contains("/nonexistent/bin/cfsgate"));
    assert!(
        check(&json, "audit")["detail"]
            .as_str()
            .unwrap()
            .contains("reordered"),
        "{text}"
    );
    assert!(
        text.contains("the gate cannot run: 3 required check(s) failed"),
        "{text}"
    );
    assert!(
        text.contains("FAIL hooks") && text.contains("remedy: cfsgate install-hooks"),
        "{text}"
    );

    // No hooks at all.
    for entry in std::fs::read_dir(&hooks).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let (_, json, _) = doctor(&repo, &args);
    assert!(check(&json, "hooks")["detail"]
        .as_str()
        .unwrap()
        .starts_with("no hooks.d file runs cfsgate"));
}

/// `--policy --audit-log --run-dir` of the fixture: everything but the repository.
fn gate_args_without_repo(fx: &fixture::Fixture) -> Vec<String> {
    let args = fx.gate_args();
    let at = args.iter().position(|a| a == "--repo").unwrap();
    [&args[..at], &args[at + 2..]].concat()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn bundle_and_hooks_use_the_global_repo_and_build_images_never_imported() {
    if !fixture::require_root() {
        return;
    }
    let fx = fixture::Fixture::new();
    // A umoci image, sealed (`cfsgate seal`, to a skopeo dir:) and signed; never imported.
    let src = umoci_image(fx.path());
    std::fs::write(fx.path().join("motd"), "built from the verified layers\n").unwrap();
    let tagged = src.trim_start_matches("oci:");
    run(Command::new("umoci")
        .args(["insert", "--image", tagged])
        .arg(fx.path().join("motd"))
        .arg("/etc/motd"));
    let image = format!("dir:{}", fx.path().join("sealed").display());
    run(Command::new(BIN).args(["seal", &src, &image]));
    run(Command::new(BIN)
        .args(["sign", "--key"])
        .arg(&fx.signer)
        .args(["--identity", "registry.example/app", &image]));
    let expected = stdout(&run(Command::new(BIN).args(["compute-id", &image])));

    // bundle: `--repo` before the subcommand, into a repository that does not exist yet.
    let repo = fx.path().join("global-repo");
    let dir = fx.path().join("bundle-global");
    let mut args = vec![
        "--repo".to_string(),
        repo.display().to_string(),
        "bundle".into(),
    ];
    args.extend([image.clone(), dir.display().to_string()]);
    args.extend(["--reference".into(), "registry.example/app:latest".into()]);
    args.extend(gate_args_without_repo(&fx));
    args.extend(["--".into(), "/bin/sh".into()]);
    let out = fixture::cfsgate(&strs(&args), None);
    assert!(
        out.status.success(),
        "bundle: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout(&out).contains(&format!("root sha256:{expected}")),
        "{}",
        stdout(&out)
    );
    assert!(
        repo.join("images").join(&expected).is_file(),
        "not built into --repo"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("rootfs/etc/motd")).unwrap(),
        "built from the verified layers\n"
    );
    // What runc runs on it is tests/runc.rs's; here the hooks clean up what bundle mounted.
    let bundle_state = fixture::state_json("ctr-bundle", &dir);
    for stage in ["create-runtime", "poststop"] {
        let mut args = vec!["hook".to_string(), stage.into()];
        args.extend(fx.check_args());
        let out = fixture::cfsgate(&strs(&args), Some(&bundle_state));
        assert!(
            out.status.success(),
            "{stage}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        fixture::mounts_under(&dir).is_empty(),
        "poststop left the root mounted"
    );

    // The precreate hook: `--repo` after the subcommand, into another empty repository.
    let repo = fx.path().join("hook-repo");
    let mut args = vec![
        "hook".to_string(),
        "precreate".into(),
        "--annotations".into(),
    ];
    args.extend(gate_args_without_repo(&fx));
    args.extend(["--repo".into(), repo.display().to_string()]);
    let config = fixture::runtime_config(&image, "registry.example/app:latest", &[]);
    let out = fixture::cfsgate(&strs(&args), Some(&config));
    assert!(
        out.status.success(),
        "precreate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        repo.join("images").join(&expected).is_file(),
        "not built into --repo"
    );
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = std::path::PathBuf::from(config["root"]["path"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(root.join("etc/motd")).unwrap(),
        "built from the verified layers\n"
    );
    let bundle = fixture::bundle_for(fx.path(), "hook-global", &root);
    let state = fixture::state_json("ctr-global", &bundle);
    for stage in ["create-runtime", "poststop"] {
        let mut args = vec!["hook".to_string(), stage.into()];
        args.extend(fx.check_args());
        let out = fixture::cfsgate(&strs(&args), Some(&state));
        assert!(
            out.status.success(),
            "{stage}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(fixture::mounts_under(&fx.run_dir).is_empty());

    // install-hooks writes the global --repo into the precreate hook's arguments.
    let hooks = fx.path().join("hooks.d");
    let out = fixture::cfsgate(
        &[
            "--repo",
            repo.to_str().unwrap(),
            "install-hooks",
            "--dir",
            hooks.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let precreate = std::fs::read_dir(&hooks)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .find(|text| text.contains("precreate"))
        .expect("a precreate hooks.d file");
    let hook: serde_json::Value = serde_json::from_str(&precreate).unwrap();
    let hook_args: Vec<&str> = hook["hook"]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let at = hook_args
        .iter()
        .position(|a| *a == "--repo")
        .expect("--repo passed");
    assert_eq!(hook_args[at + 1], repo.to_str().unwrap());
}
