//! podman with one hooks.d set `when: always` and no annotations (issue #15): the gate judges
//! the image podman starts, found in podman's own records, under the name it was created from.
//! Once with the `overlay` driver and once with `vfs`, each in a private graph root; images
//! made by umoci, sealed by `cfsgate seal`, signed by `cfsgate sign` in a skopeo `dir:` copy
//! and put into containers-storage by `skopeo copy dir:… containers-storage:…` (signatures
//! kept).
//!
//! - signed and sealed: runs on the composefs root (the container's own mount table says so);
//! - signed, unsealed, under a plain policy (no `composefs` requirement): runs on the image
//!   built from its signed layers;
//! - unsigned, wrongly signed: do not start, podman's stderr shows cfsgate's reason;
//! - a file of the image edited in containers-storage after the pull: the container never sees
//!   the edited bytes (the stored composefs image is mounted; an image not yet built is refused);
//! - an image whose manifest carries `io.cfsgate.*` annotations naming a trusted image:
//!   refused, with or without the annotation mode;
//! - 20 containers started in parallel (overlay): every verdict right, no mount left.

#[path = "fixtures/hooks.rs"]
mod fixture;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use fixture::*;

/// podman keeps host-wide state besides its graph root (locks, /run/libpod); one podman
/// store at a time in this file.
static PODMAN: Mutex<()> = Mutex::new(());

/// The command every container runs: its marker file and its root's mount line.
const SHOW_ROOT: &str = "cat /etc/motd; grep ' / / ' /proc/self/mountinfo";

/// A private podman store and its hooks.
struct Podman {
    driver: &'static str,
    graph: PathBuf,
    run: PathBuf,
    tmp: PathBuf,
    hooks: PathBuf,
}

impl Drop for Podman {
    fn drop(&mut self) {
        fixture::release_graph_root(&self.graph);
    }
}

impl Podman {
    fn new(fx: &Fixture, driver: &'static str, hooks: PathBuf) -> Podman {
        let p = Podman {
            driver,
            graph: fx.path().join(format!("graph-{driver}")),
            run: fx.path().join(format!("run-{driver}")),
            tmp: fx.path().join(format!("tmp-{driver}")),
            hooks,
        };
        std::fs::create_dir_all(&p.tmp).unwrap();
        p
    }

    /// `skopeo copy dir:… containers-storage:[DRIVER@GRAPH+RUN]NAME`.
    fn put(&self, dir_image: &str, name: &str) {
        run(Command::new("skopeo")
            .args(["copy", "-q", dir_image])
            .arg(format!(
                "containers-storage:[{}@{}+{}]{name}",
                self.driver,
                self.graph.display(),
                self.run.display()
            )));
    }

    fn command(&self, hooks: &Path) -> Command {
        podman_command(self.driver, &self.graph, &self.run, &self.tmp, hooks)
    }

    /// `podman run --rm NAME sh -c SHOW_ROOT`, no annotations.
    fn run(&self, name: &str) -> Output {
        self.run_with(&self.hooks, name, &[])
    }

    fn run_with(&self, hooks: &Path, name: &str, extra: &[&str]) -> Output {
        self.command(hooks)
            .args(["run", "--rm", "--pull=never", "--network=none"])
            .args(extra)
            .args([name, "/bin/sh", "-c", SHOW_ROOT])
            .output()
            .expect("podman installed (scripts/runtime-setup)")
    }

    /// The directory of the image layer whose `/etc/motd` says `marker`.
    fn layer_files(&self, marker: &str) -> PathBuf {
        fixture::layer_files(&self.graph, self.driver, marker)
    }
}

/// How a test image is made.
struct Spec<'a> {
    sealed: bool,
    key: Option<&'a Path>,
    identity: &'a str,
    annotations: &'a [(&'a str, &'a str)],
}

/// A `dir:` image whose `/etc/motd` says `marker`.
fn image(fx: &Fixture, name: &str, marker: &str, spec: Spec<'_>) -> String {
    let rootfs = fx.rootfs(name, marker);
    let (layout, tagged) = fx.umoci_layout(&format!("oci-{name}"), &rootfs);
    for (k, v) in spec.annotations {
        run(Command::new("umoci").args([
            "config",
            "--image",
            &tagged,
            "--manifest.annotation",
            &format!("{k}={v}"),
        ]));
    }
    let source = if spec.sealed {
        run(Command::new(BIN)
            .args(["seal", &format!("oci:{tagged}")])
            .arg(&layout)
            .args(["--tag", "sealed"]));
        format!("oci:{}:sealed", layout.display())
    } else {
        format!("oci:{tagged}")
    };
    let dir = fx.path().join(format!("dir-{name}"));
    run(Command::new("skopeo")
        .args(["copy", "-q", &source])
        .arg(format!("dir:{}", dir.display())));
    if let Some(key) = spec.key {
        run(Command::new(BIN)
            .args(["sign", "--key"])
            .arg(key)
            .args(["--identity", spec.identity])
            .arg(format!("dir:{}", dir.display())));
    }
    format!("dir:{}", dir.display())
}

/// `registry.example/app`: signed and sealed; `registry.example/plain`: signed (a plain
/// containers-policy.json requirement); anything else rejected.
fn write_policy(fx: &Fixture) -> PathBuf {
    let sigstore = serde_json::json!({
        "type": "sigstoreSigned",
        "keyPath": fx.path().join("signer.pub"),
        "signedIdentity": {"type": "matchRepository"}
    });
    let policy = serde_json::json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {
            "registry.example/app": [sigstore, {"type": "composefs", "sealed": true}],
            "registry.example/plain": [sigstore],
        }}
    });
    let path = fx.path().join("podman-policy.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&policy).unwrap()).unwrap();
    path
}

/// The last precreate audit record of the log.
fn last_precreate(fx: &Fixture) -> serde_json::Value {
    let log = std::fs::read_to_string(&fx.audit_log).unwrap();
    log.lines()
        .rev()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["stage"] == "precreate")
        .expect("a precreate record")
}

fn gate(driver: &'static str) {
    if !require_root() {
        return;
    }
    let _one = PODMAN.lock().unwrap_or_else(|e| e.into_inner());
    let fx = Fixture::new();
    let policy = write_policy(&fx);
    let hooks = fx.install_hooks(&policy, "hooks.d", &[]);
    let pm = Podman::new(&fx, driver, hooks);
    let signer = fx.signer.clone();
    let signed = |sealed, identity| Spec {
        sealed,
        key: Some(&signer),
        identity,
        annotations: &[],
    };

    // Signed and sealed: the composefs root, judged as the name it was pulled as.
    let good = image(&fx, "good", "good", signed(true, "registry.example/app"));
    pm.put(&good, "registry.example/app:1");
    assert_ran_on_composefs(&pm.run("registry.example/app:1"), "good", "signed, sealed");
    let record = last_precreate(&fx);
    assert_eq!(record["verdict"], "admit");
    assert_eq!(record["reference"], "registry.example/app:1");
    let recorded = record["image"].as_str().unwrap();
    assert!(
        recorded.starts_with(&format!(
            "containers-storage:[{driver}@{}+",
            pm.graph.display()
        )),
        "{recorded}"
    );
    let id = run(Command::new(BIN).args(["compute-id", &good]));
    assert_eq!(
        record["composefs_digest"],
        format!("sha256:{}", text(&id.stdout).trim())
    );
    // The second start finds the image in the store.
    assert_ran_on_composefs(&pm.run("registry.example/app:1"), "good", "again");
    assert!(last_precreate(&fx)["requirements"]
        .to_string()
        .contains("stored image hashes to the seal"));

    // Signed, not sealed, under a plain policy: the image built from its signed layers.
    let plain = image(
        &fx,
        "plain",
        "plain",
        signed(false, "registry.example/plain"),
    );
    pm.put(&plain, "registry.example/plain:1");
    assert_ran_on_composefs(&pm.run("registry.example/plain:1"), "plain", "plain");
    assert!(last_precreate(&fx)["requirements"]
        .to_string()
        .contains("not sealed; composefs image"));
    // The same image where the policy demands a seal: refused.
    let plain_as_app = image(
        &fx,
        "plain-app",
        "pa",
        signed(false, "registry.example/app"),
    );
    pm.put(&plain_as_app, "registry.example/app:unsealed");
    assert_podman_refused(
        &pm.run("registry.example/app:unsealed"),
        "registry.example/app:unsealed",
        "not sealed",
    );

    // Unsigned and wrongly signed: not started, podman shows why.
    let unsigned = image(
        &fx,
        "unsigned",
        "unsigned",
        Spec {
            key: None,
            ..signed(true, "registry.example/app")
        },
    );
    pm.put(&unsigned, "registry.example/app:unsigned");
    assert_podman_refused(
        &pm.run("registry.example/app:unsigned"),
        "registry.example/app:unsigned",
        "unsigned",
    );
    let stranger = fx.stranger.clone();
    let wrong = image(
        &fx,
        "wrong",
        "wrong",
        Spec {
            key: Some(&stranger),
            ..signed(true, "registry.example/app")
        },
    );
    pm.put(&wrong, "registry.example/app:wrong");
    assert_podman_refused(
        &pm.run("registry.example/app:wrong"),
        "registry.example/app:wrong",
        "not by any trusted key",
    );
    // A signed image pulled under another name is judged by that name's scope.
    pm.put(&good, "registry.example/other:1");
    assert_podman_refused(
        &pm.run("registry.example/other:1"),
        "registry.example/other:1",
        "rejects every image",
    );

    // Files edited in containers-storage after the pull. An image already built: the
    // container sees the verified bytes, never the edited ones.
    let files = pm.layer_files("good");
    let motd = files.join("etc/motd");
    std::fs::write(&motd, b"EDIT\n").unwrap();
    assert_ran_on_composefs(
        &pm.run("registry.example/app:1"),
        "good",
        "edited after build",
    );
    // An image not built yet: the edited layer no longer matches its diff_id.
    let fresh = image(&fx, "fresh", "fresh", signed(true, "registry.example/app"));
    pm.put(&fresh, "registry.example/app:fresh");
    std::fs::write(pm.layer_files("fresh").join("etc/motd"), b"EDIT!\n").unwrap();
    assert_podman_refused(
        &pm.run("registry.example/app:fresh"),
        "registry.example/app:fresh",
        "diff_id",
    );

    // An unsigned image whose manifest names a trusted image in io.cfsgate.* annotations.
    let evil = image(
        &fx,
        "evil",
        "evil",
        Spec {
            sealed: false,
            key: None,
            identity: "",
            annotations: &[
                ("io.cfsgate.image", &good),
                ("io.cfsgate.reference", "registry.example/app:1"),
            ],
        },
    );
    pm.put(&evil, "registry.example/evil:1");
    assert_podman_refused(
        &pm.run("registry.example/evil:1"),
        "registry.example/evil:1",
        "io.cfsgate.image",
    );
    // Even signed, under the plain policy: refused for its annotations alone.
    let annotated = image(
        &fx,
        "annotated",
        "annotated",
        Spec {
            annotations: &[("io.cfsgate.reference", "registry.example/app:1")],
            ..signed(false, "registry.example/plain")
        },
    );
    pm.put(&annotated, "registry.example/plain:annotated");
    assert_podman_refused(
        &pm.run("registry.example/plain:annotated"),
        "registry.example/plain:annotated",
        "refused in every mode",
    );
    // The opt-in annotation mode: the image's copied annotations name the trusted image, which
    // is not the container's own.
    let annotation_hooks = fx.install_hooks(&policy, "hooks-annotations.d", &["--annotations"]);
    let out = pm.run_with(&annotation_hooks, "registry.example/evil:1", &[]);
    assert!(!out.status.success(), "evil started: {}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("is not the one podman starts") || stderr.contains("refused in every mode"),
        "{stderr}"
    );
    // The annotation mode still runs an image that names itself.
    let out = pm.run_with(
        &annotation_hooks,
        "registry.example/app:1",
        &[
            &format!("--annotation=io.cfsgate.image={good}"),
            "--annotation=io.cfsgate.reference=registry.example/app:1",
        ],
    );
    assert_ran_on_composefs(&out, "good", "annotation mode, own image");

    assert!(
        mounts_under(&fx.run_dir).is_empty(),
        "left mounted: {:?}",
        mounts_under(&fx.run_dir)
    );
    let out = cfsgate(
        &[
            "audit",
            "verify",
            "--audit-log",
            fx.audit_log.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn podman_overlay_store_runs_only_what_the_policy_admits() {
    gate("overlay");
}

#[test]
fn podman_vfs_store_runs_only_what_the_policy_admits() {
    gate("vfs");
}

/// 20 containers of four kinds started at once: each verdict is its image's, nothing left
/// mounted once they are gone.
#[test]
fn podman_twenty_mixed_containers_in_parallel() {
    if !require_root() {
        return;
    }
    let _one = PODMAN.lock().unwrap_or_else(|e| e.into_inner());
    let fx = Fixture::new();
    let policy = write_policy(&fx);
    let hooks = fx.install_hooks(&policy, "hooks.d", &[]);
    let pm = Podman::new(&fx, "overlay", hooks);
    let signer = fx.signer.clone();
    let stranger = fx.stranger.clone();
    let kinds: [(&str, Option<&Path>, bool, &str, bool); 4] = [
        (
            "app:good",
            Some(&signer),
            true,
            "registry.example/app",
            true,
        ),
        (
            "plain:good",
            Some(&signer),
            false,
            "registry.example/plain",
            true,
        ),
        ("app:unsigned", None, true, "registry.example/app", false),
        (
            "app:wrong",
            Some(&stranger),
            true,
            "registry.example/app",
            false,
        ),
    ];
    for (i, (name, key, sealed, identity, _)) in kinds.iter().enumerate() {
        let dir = image(
            &fx,
            &format!("kind{i}"),
            &format!("kind{i}"),
            Spec {
                sealed: *sealed,
                key: *key,
                identity,
                annotations: &[],
            },
        );
        pm.put(&dir, &format!("registry.example/{name}"));
    }
    let children: Vec<_> = (0..20)
        .map(|n| {
            let kind = n % kinds.len();
            let child = pm
                .command(&pm.hooks)
                .args(["run", "--rm", "--pull=never", "--network=none"])
                .arg(format!("registry.example/{}", kinds[kind].0))
                .args(["/bin/sh", "-c", SHOW_ROOT])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("podman");
            (kind, child)
        })
        .collect();
    // Every container is waited for before any verdict is asserted: a test that stopped at the
    // first wrong verdict would remove its run dir under containers still running.
    let outputs: Vec<(usize, Output)> = children
        .into_iter()
        .map(|(kind, child)| (kind, child.wait_with_output().unwrap()))
        .collect();
    for (kind, out) in outputs {
        let name = format!("registry.example/{}", kinds[kind].0);
        if kinds[kind].4 {
            assert_ran_on_composefs(&out, &format!("kind{kind}"), &name);
        } else {
            assert_podman_refused(&out, &name, "sigstoreSigned");
        }
    }
    assert!(
        mounts_under(&fx.run_dir).is_empty(),
        "left mounted: {:?}",
        mounts_under(&fx.run_dir)
    );
    let log = std::fs::read_to_string(&fx.audit_log).unwrap();
    let precreates = log
        .lines()
        .filter(|l| l.contains("\"stage\":\"precreate\""))
        .count();
    assert_eq!(precreates, 20, "one precreate record per container");
    let out = cfsgate(
        &[
            "audit",
            "verify",
            "--audit-log",
            fx.audit_log.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}
