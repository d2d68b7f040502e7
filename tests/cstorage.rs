//! The `containers-storage:` transport through the binary, once with the `overlay` driver and
//! once with `vfs`, each in a private graph root: images made by umoci, signed by `cfsgate sign`
//! in a skopeo `dir:` copy, put into the store by `skopeo copy dir:… containers-storage:…`
//! (signatures kept). `compute-id`, `import`, `seal` and `verify` read the store's records,
//! big data and tar-splits; files edited in the store after the copy are refused.

#[path = "fixtures/hooks.rs"]
mod fixture;

use std::path::PathBuf;
use std::process::Command;

use fixture::*;

/// A private store: `[DRIVER@GRAPH+RUN]`.
struct Store {
    driver: &'static str,
    graph: PathBuf,
    run: PathBuf,
}

impl Drop for Store {
    fn drop(&mut self) {
        fixture::release_graph_root(&self.graph);
    }
}

impl Store {
    fn new(fx: &Fixture, driver: &'static str) -> Store {
        Store {
            driver,
            graph: fx.path().join(format!("graph-{driver}")),
            run: fx.path().join(format!("run-{driver}")),
        }
    }

    fn reference(&self, name: &str) -> String {
        format!(
            "containers-storage:[{}@{}+{}]{name}",
            self.driver,
            self.graph.display(),
            self.run.display()
        )
    }

    /// `skopeo copy dir:… containers-storage:[…]NAME`.
    fn put(&self, dir_image: &str, name: &str) -> String {
        let reference = self.reference(name);
        run(Command::new("skopeo")
            .args(["copy", "-q", dir_image])
            .arg(&reference));
        reference
    }

    /// The directory of the layer whose `/etc/motd` says `marker`.
    fn layer_files(&self, marker: &str) -> PathBuf {
        fixture::layer_files(&self.graph, self.driver, marker)
    }
}

/// A `dir:` image of `rootfs`: an umoci layout, sealed by `cfsgate seal` unless `variant` is
/// `Unsealed`, copied by skopeo, signed by `cfsgate sign` as `variant` says.
fn image(fx: &Fixture, name: &str, rootfs: &std::path::Path, variant: Variant) -> String {
    let (layout, tagged) = fx.umoci_layout(&format!("oci-{name}"), rootfs);
    let source = if variant == Variant::Unsealed {
        format!("oci:{tagged}")
    } else {
        run(Command::new(BIN)
            .args(["seal", &format!("oci:{tagged}")])
            .arg(&layout)
            .args(["--tag", "sealed"]));
        format!("oci:{}:sealed", layout.display())
    };
    let dir = fx.path().join(format!("dir-{name}"));
    run(Command::new("skopeo")
        .args(["copy", "-q", &source])
        .arg(format!("dir:{}", dir.display())));
    let key = match variant {
        Variant::Unsigned => None,
        Variant::WrongKey => Some(&fx.stranger),
        _ => Some(&fx.signer),
    };
    if let Some(key) = key {
        run(Command::new(BIN)
            .args(["sign", "--key"])
            .arg(key)
            .args(["--identity", "registry.example/app"])
            .arg(format!("dir:{}", dir.display())));
    }
    format!("dir:{}", dir.display())
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn verify(fx: &Fixture, reference: &str) -> std::process::Output {
    cfsgate(
        &[
            "verify",
            reference,
            "--policy",
            &fx.policy.display().to_string(),
        ],
        None,
    )
}

fn transport(driver: &'static str) {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let store = Store::new(&fx, driver);
    let rootfs = fx.rootfs("app", "from-the-store");
    let good = image(&fx, "good", &rootfs, Variant::Good);
    let unsigned = image(
        &fx,
        "unsigned",
        &fx.rootfs("u", "unsigned"),
        Variant::Unsigned,
    );
    let wrong = image(
        &fx,
        "wrong",
        &fx.rootfs("w", "wrong-key"),
        Variant::WrongKey,
    );

    let stored = store.put(&good, "registry.example/app:latest");
    // The same composefs digest from the store as from the dir: image.
    let from_dir = run(Command::new(BIN).args(["compute-id", &good]));
    let from_store = cfsgate(&["compute-id", &stored], None);
    assert!(from_store.status.success(), "{}", stderr(&from_store));
    assert_eq!(stdout(&from_store), stdout(&from_dir));
    assert!(
        stderr(&from_store).contains("seal label matches"),
        "{}",
        stderr(&from_store)
    );
    // docker's normalization and the default tag find the same image.
    let short = store.reference("registry.example/app");
    assert_eq!(
        stdout(&cfsgate(&["compute-id", &short], None)),
        stdout(&from_dir)
    );

    // The signature skopeo kept is verified; the policy judges the stored name.
    let ok = verify(&fx, &stored);
    assert!(ok.status.success(), "{}{}", stdout(&ok), stderr(&ok));
    assert!(stdout(&ok).contains("composefs"), "{}", stdout(&ok));

    for (dir_image, name, why) in [
        (&unsigned, "registry.example/app:unsigned", "no signature"),
        (&wrong, "registry.example/app:wrong", "wrong key"),
    ] {
        let reference = store.put(dir_image, name);
        let out = verify(&fx, &reference);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{why}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    // Another name is judged by its own scope: the policy's default rejects it.
    let elsewhere = store.put(&good, "registry.example/other:1");
    assert_eq!(verify(&fx, &elsewhere).status.code(), Some(1));

    // import stores objects, the composefs image and the signatures.
    let repo = fx.path().join("import-repo");
    let imported = cfsgate(
        &["--repo", &repo.display().to_string(), "import", &stored],
        None,
    );
    assert!(imported.status.success(), "{}", stderr(&imported));
    assert_eq!(stdout(&imported), stdout(&from_dir));
    assert!(repo.join("images").join(stdout(&from_dir)).exists());

    // seal writes the layers rebuilt from the store into an OCI layout; the result checks.
    let sealed = fx.path().join(format!("sealed-{driver}"));
    let out = cfsgate(&["seal", &stored, &sealed.display().to_string()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let resealed = cfsgate(
        &[
            "compute-id",
            &format!("oci:{}:latest-sealed", sealed.display()),
        ],
        None,
    );
    assert!(resealed.status.success(), "{}", stderr(&resealed));
    assert_eq!(stdout(&resealed), stdout(&from_dir));

    // A file of the image edited in the store after the copy: same size, other bytes.
    let files = store.layer_files("from-the-store");
    let motd = files.join("etc/motd");
    let original = std::fs::read(&motd).unwrap();
    let mut edited = original.clone();
    edited[0] ^= 0x20;
    std::fs::write(&motd, &edited).unwrap();
    let out = cfsgate(&["compute-id", &stored], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("diff_id"),
        "the refusal names the diff_id: {}",
        stderr(&out)
    );
    let out = verify(&fx, &stored);
    assert!(!out.status.success(), "an edited store is refused");
    // Longer than its header says.
    let mut longer = original.clone();
    longer.extend_from_slice(b"appended");
    std::fs::write(&motd, &longer).unwrap();
    let out = cfsgate(&["compute-id", &stored], None);
    assert!(
        stderr(&out).contains("longer than its tar header"),
        "{}",
        stderr(&out)
    );
    // A FIFO in place of the file is refused without blocking.
    std::fs::remove_file(&motd).unwrap();
    run(Command::new("mkfifo").arg(&motd));
    let out = cfsgate(&["compute-id", &stored], None);
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
    // A symlink to a host file is not followed out of the layer.
    std::fs::remove_file(&motd).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &motd).unwrap();
    assert_eq!(
        cfsgate(&["compute-id", &stored], None).status.code(),
        Some(2)
    );
    // Restored, it passes again.
    std::fs::remove_file(&motd).unwrap();
    std::fs::write(&motd, &original).unwrap();
    assert_eq!(
        stdout(&cfsgate(&["compute-id", &stored], None)),
        stdout(&from_dir)
    );

    // A missing tar-split: the layer cannot be rebuilt exactly, so it is refused by name.
    let layer_id = match driver {
        "overlay" => files.parent().unwrap().file_name().unwrap(),
        _ => files.file_name().unwrap(),
    };
    let split = store.graph.join(format!(
        "{driver}-layers/{}.tar-split.gz",
        layer_id.to_string_lossy()
    ));
    let aside = split.with_extension("aside");
    std::fs::rename(&split, &aside).unwrap();
    let out = cfsgate(&["compute-id", &stored], None);
    assert!(stderr(&out).contains("tar-split"), "{}", stderr(&out));
    std::fs::rename(&aside, &split).unwrap();

    // An image not in the store.
    let out = cfsgate(
        &["compute-id", &store.reference("registry.example/none:1")],
        None,
    );
    assert!(
        stderr(&out).contains("no image named registry.example/none:1"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn overlay_store() {
    transport("overlay");
}

#[test]
fn vfs_store() {
    transport("vfs");
}

/// The store's own manifest edited: its digest no longer matches the image record.
#[test]
fn edited_manifest_is_refused() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let store = Store::new(&fx, "vfs");
    let good = image(&fx, "good", &fx.rootfs("app", "x"), Variant::Good);
    let stored = store.put(&good, "registry.example/app:latest");
    let images = store.graph.join("vfs-images");
    let data = std::fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let manifests: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name == "manifest" || name.starts_with("=bWFuaWZlc3Qt")
        })
        .collect();
    assert!(!manifests.is_empty());
    for path in &manifests {
        let mut bytes = std::fs::read(path).unwrap();
        bytes.push(b'\n');
        std::fs::write(path, bytes).unwrap();
    }
    let out = verify(&fx, &stored);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("does not match its digest"),
        "{}",
        stderr(&out)
    );
}
