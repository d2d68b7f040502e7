//! crun with `cfsgate bundle`: the container's root is the verified composefs mount; the
//! createRuntime hook refuses a bundle whose root was swapped after admission; poststop cleans up.
//!
//! crun 1.8 refuses this host's hybrid cgroup v1/v2 hierarchy ("cgroups in hybrid mode not
//! supported"), so everything runs in a private mount namespace whose /sys/fs/cgroup is a pure
//! cgroup2 mount, with `crun --cgroup-manager=disabled`:
//!
//! | step | command |
//! |------|---------|
//! | namespace | `unshare -m --propagation private sleep 3600` (holds the namespace) |
//! | cgroup2 | `nsenter -t PID -m sh -c 'umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup'` |
//! | bundle, swap, run | `nsenter -t PID -m -- cfsgate bundle …`, `… crun --cgroup-manager=disabled run …` |
//!
//! `cfsgate bundle` must run in that namespace too: the createRuntime hook compares the root's
//! mount id with the one recorded at admission, and a namespace copy of a mount has a new id
//! (`crun_refuses_a_bundle_mounted_in_another_mount_namespace` shows the refusal).

#[path = "fixtures/hooks.rs"]
mod fixture;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use fixture::*;

/// How long to wait for `unshare` to have made its namespace and exec'd the holder.
const NAMESPACE_WAIT: Duration = Duration::from_secs(10);

/// A private mount namespace with a pure cgroup2 hierarchy, held by a `sleep` we started;
/// killed (by its pid) on drop, which releases every mount made in it.
struct CgroupNs {
    holder: Child,
}

impl CgroupNs {
    fn new() -> CgroupNs {
        let host_ns = std::fs::read_link("/proc/self/ns/mnt").expect("own mount namespace");
        let holder = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sleep", "3600"])
            .spawn()
            .expect("unshare (util-linux) installed");
        let ns = CgroupNs { holder };
        let pid = ns.pid();
        // Only enter once the holder is `sleep` in another namespace: entering earlier would
        // unmount the host's /sys/fs/cgroup.
        let start = Instant::now();
        loop {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
            let mnt = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
            if exe.is_some_and(|e| e.ends_with("sleep")) && mnt.is_some_and(|m| m != host_ns) {
                break;
            }
            assert!(
                start.elapsed() < NAMESPACE_WAIT,
                "unshare -m did not make a mount namespace within {NAMESPACE_WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = ns.exec(&[
            "sh",
            "-c",
            "umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup",
        ]);
        assert!(
            out.status.success(),
            "cannot mount a pure cgroup2 hierarchy for crun in a private mount namespace: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            ns.fstype_at(Path::new("/sys/fs/cgroup")).as_deref(),
            Some("cgroup2")
        );
        ns
    }

    fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// Run `argv` in the namespace.
    fn exec(&self, argv: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.pid().to_string(), "-m", "--"])
            .args(argv)
            .output()
            .expect("nsenter (util-linux) installed")
    }

    fn mountinfo(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/mountinfo", self.pid())).unwrap()
    }

    /// Mount points in the namespace under `dir`.
    fn mounts_under(&self, dir: &Path) -> Vec<String> {
        let prefix = dir.display().to_string();
        self.mountinfo()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|mp| mp.starts_with(&prefix))
            .map(str::to_string)
            .collect()
    }

    /// The filesystem type of the topmost mount in the namespace exactly at `path`, if any.
    fn fstype_at(&self, path: &Path) -> Option<String> {
        let want = path.display().to_string();
        self.mountinfo()
            .lines()
            .filter(|l| l.split(' ').nth(4) == Some(want.as_str()))
            .filter_map(|l| l.split(" - ").nth(1)?.split(' ').next().map(str::to_string))
            .next_back()
    }
}

impl Drop for CgroupNs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `cfsgate bundle IMAGE DIR --reference … <gate args> -- CMD…` in the namespace.
fn bundle(ns: &CgroupNs, fx: &Fixture, image: &str, dir: &Path, cmd: &[&str]) -> Output {
    let mut args = vec![BIN.to_string()];
    args.extend(fx.bundle_args(image, dir, cmd));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    ns.exec(&argv)
}

fn crun_state(fx: &Fixture) -> PathBuf {
    fx.path().join("crun-state")
}

/// `crun --cgroup-manager=disabled run` in the namespace.
fn crun_run(ns: &CgroupNs, fx: &Fixture, bundle: &Path, id: &str) -> Output {
    let state = crun_state(fx).display().to_string();
    let bundle = bundle.display().to_string();
    ns.exec(&[
        "crun",
        "--cgroup-manager=disabled",
        "--root",
        &state,
        "run",
        "--bundle",
        &bundle,
        id,
    ])
}

fn pairs(stages: &[(&str, &str)]) -> Vec<(String, String)> {
    stages
        .iter()
        .map(|(s, v)| (s.to_string(), v.to_string()))
        .collect()
}

#[test]
fn crun_runs_the_verified_root() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let ns = CgroupNs::new();
    let rootfs = fx.rootfs("crun", "crun runs from composefs");
    let image = fx.image("crun", &rootfs, Variant::Good);

    let dir = fx.path().join("bundle-ok");
    let out = bundle(
        &ns,
        &fx,
        &image,
        &dir,
        &[
            "/bin/sh",
            "-c",
            "cat /etc/motd; grep ' / ' /proc/self/mountinfo",
        ],
    );
    assert!(out.status.success(), "bundle: {}", text(&out));
    assert_eq!(
        ns.fstype_at(&dir.join("rootfs")).as_deref(),
        Some("overlay")
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["hooks"]["createRuntime"][0]["path"], BIN);
    assert_eq!(config["hooks"]["poststop"][0]["path"], BIN);

    let out = crun_run(&ns, &fx, &dir, "cfsgate-crun-ok");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "crun run: {}", text(&out));
    assert!(stdout.contains("crun runs from composefs"), "{stdout}");
    assert!(
        stdout.contains(" overlay "),
        "container root is not the overlay: {stdout}"
    );
    // crun deleted the container: poststop (of the owner) unmounted the root and removed the
    // state, and recorded that.
    assert_eq!(
        fx.audit_stages(),
        pairs(&[
            ("bundle", "admit"),
            ("createRuntime", "admit"),
            ("poststop", "admit")
        ])
    );
    assert_eq!(ns.fstype_at(&dir.join("rootfs")), None);
    assert!(
        ns.mounts_under(fx.path()).is_empty(),
        "{:?}",
        ns.mounts_under(fx.path())
    );
    assert!(
        std::fs::read_dir(&fx.run_dir).map_or(true, |mut d| d.next().is_none()),
        "poststop left state in {}",
        fx.run_dir.display()
    );
    // Nothing was ever mounted in the host's namespace.
    assert!(mounts_under(fx.path()).is_empty());
}

#[test]
fn crun_refuses_a_root_swapped_after_admission() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let ns = CgroupNs::new();
    let rootfs = fx.rootfs("crun-swap", "admitted");
    let image = fx.image("crun-swap", &rootfs, Variant::Good);

    let dir = fx.path().join("bundle-swap");
    let out = bundle(&ns, &fx, &image, &dir, &["/bin/sh", "-c", "cat /etc/motd"]);
    assert!(out.status.success(), "bundle: {}", text(&out));
    let root = dir.join("rootfs");
    let root_s = root.display().to_string();
    // Swapped after admission: another directory with a look-alike tree bound over the root.
    let evil = fx.path().join("evil");
    run(Command::new("cp").arg("-a").arg(&rootfs).arg(&evil));
    std::fs::write(evil.join("etc/motd"), "evil\n").unwrap();
    let out = ns.exec(&["mount", "--bind", &evil.display().to_string(), &root_s]);
    assert!(out.status.success(), "bind: {}", text(&out));
    assert_ne!(ns.fstype_at(&root).as_deref(), Some("overlay"));

    // crun 1.8 gives hooks no stderr of their own unless the config's
    // `run.oci.hooks.stderr` annotation names one; `cfsgate bundle` writes it, so crun shows
    // cfsgate's reason.
    let out = crun_run(&ns, &fx, &dir, "cfsgate-crun-swap");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "swapped root ran: {}", text(&out));
    assert!(
        !text(&out).contains("evil"),
        "the swapped root's program ran: {}",
        text(&out)
    );
    assert!(
        stderr.contains(&format!(
            "cfsgate: denied: the root {root_s} is not the composefs mount"
        )) && stderr.contains("the root was swapped"),
        "crun does not show cfsgate's reason: {stderr}"
    );
    assert_eq!(
        fx.audit_stages(),
        pairs(&[("bundle", "admit"), ("createRuntime", "deny")])
    );
    let state = crun_state(&fx).display().to_string();
    let delete = |id: &str| {
        ns.exec(&[
            "crun",
            "--cgroup-manager=disabled",
            "--root",
            &state,
            "delete",
            "-f",
            id,
        ])
    };
    let _ = delete("cfsgate-crun-swap");

    // Without the annotation crun names only the hook and its exit code; the refusal stands.
    let path = dir.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("run.oci.hooks.stderr");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let out = crun_run(&ns, &fx, &dir, "cfsgate-crun-swap2");
    let all = text(&out);
    assert!(!out.status.success(), "swapped root ran: {all}");
    assert!(
        !all.contains("evil"),
        "the swapped root's program ran: {all}"
    );
    assert!(
        all.contains(&format!("error executing hook `{BIN}` (exit code: 1)")),
        "{all}"
    );
    assert_eq!(
        fx.audit_stages(),
        pairs(&[
            ("bundle", "admit"),
            ("createRuntime", "deny"),
            ("createRuntime", "deny")
        ])
    );
    let log = std::fs::read_to_string(&fx.audit_log).unwrap();
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.contains("the root was swapped") && last.contains("cfsgate-crun-swap2"),
        "the deny record has no reason: {last}"
    );
    let _ = delete("cfsgate-crun-swap2");

    // crun skips poststop when create fails: delete, drop the swap, then gc; gc keeps an
    // admission that never started for its grace period, so unmount what is left explicitly.
    let out = ns.exec(&["umount", &root_s]);
    assert!(out.status.success(), "umount swap: {}", text(&out));
    assert_eq!(ns.fstype_at(&root).as_deref(), Some("overlay"));
    let run_dir = fx.run_dir.display().to_string();
    let audit_log = fx.audit_log.display().to_string();
    let out = ns.exec(&[
        BIN,
        "mounts",
        "gc",
        "--run-dir",
        &run_dir,
        "--audit-log",
        &audit_log,
    ]);
    assert!(out.status.success(), "mounts gc: {}", text(&out));
    while ns.fstype_at(&root).is_some() {
        let out = ns.exec(&["umount", &root_s]);
        assert!(out.status.success(), "umount: {}", text(&out));
    }
    assert!(
        ns.mounts_under(fx.path()).is_empty(),
        "{:?}",
        ns.mounts_under(fx.path())
    );
    assert!(mounts_under(fx.path()).is_empty());
}

#[test]
fn crun_refuses_a_bundle_mounted_in_another_mount_namespace() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let rootfs = fx.rootfs("crun-host", "admitted on the host");
    let image = fx.image("crun-host", &rootfs, Variant::Good);
    let dir = fx.path().join("bundle-host");
    let root = dir.join("rootfs");
    // Bundled (and mounted) in the host's namespace, before crun's namespace exists.
    let mut args = vec![
        "bundle".to_string(),
        image.clone(),
        dir.display().to_string(),
        "--reference".into(),
        "registry.example/app:latest".into(),
    ];
    args.extend(fx.gate_args());
    args.extend(["--".into(), "/bin/cat".into(), "/etc/motd".into()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = cfsgate(&argv, None);
    assert!(out.status.success(), "bundle: {}", text(&out));
    assert_eq!(fstype_at(&root).as_deref(), Some("overlay"));

    let ns = CgroupNs::new();
    // The namespace's copy of the mount is an overlay too, but another mount.
    assert_eq!(ns.fstype_at(&root).as_deref(), Some("overlay"));
    let out = crun_run(&ns, &fx, &dir, "cfsgate-crun-host");
    assert!(!out.status.success(), "ran: {}", text(&out));
    assert!(
        !text(&out).contains("admitted on the host"),
        "{}",
        text(&out)
    );
    assert_eq!(
        fx.audit_stages(),
        pairs(&[("bundle", "admit"), ("createRuntime", "deny")])
    );
    let log = std::fs::read_to_string(&fx.audit_log).unwrap();
    assert!(
        log.lines()
            .last()
            .is_some_and(|l| l.contains("the root was swapped")),
        "{log}"
    );
    drop(ns);
    // crun skips poststop when create fails; the admission never started, so gc keeps it for
    // its grace period: unmount on the host explicitly.
    while fstype_at(&root).is_some() {
        run(Command::new("umount").arg(&root));
    }
    assert!(
        mounts_under(fx.path()).is_empty(),
        "{:?}",
        mounts_under(fx.path())
    );
}
