//! Files that never end or never answer: a `dir:` image with special files and too many
//! signatures, FIFOs in place of a manifest, an `index.json`, key files or store objects,
//! `/dev/zero` and a sparse 8 GiB file as keys. Each must be refused at once (nothing read
//! without bound, nothing waited on), the reason naming the file; time and peak RSS are printed
//! (`MEASURED [...]`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::common::*;
use crate::fixture::*;
use crate::ocibuild::Layout;

/// Verifies a fixture image, killed after 30 s (it needs well under one).
fn verify_measured(case: &str, fx: &Fixture, image: &str) -> Measured {
    let (policy, repo) = (
        fx.policy.display().to_string(),
        fx.repo.display().to_string(),
    );
    measured(
        case,
        Duration::from_secs(30),
        &[
            "verify",
            "--policy",
            &policy,
            "--repo",
            &repo,
            "--reference",
            APP,
            image,
        ],
    )
}

#[test]
fn special_files_and_too_many_signatures_in_a_dir_image() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let image = fx.image("special", &fx.rootfs("special", "s"), Variant::Good);
    let dir = dir_of(&image);
    let manifest = dir.join("manifest.json");
    let signature = dir.join("signature-1");
    let (manifest_bytes, signature_bytes) = (
        std::fs::read(&manifest).unwrap(),
        std::fs::read(&signature).unwrap(),
    );
    let mkfifo = |path: &Path| {
        std::fs::remove_file(path).unwrap();
        run(Command::new("mkfifo").arg(path));
    };
    let restore = |path: &Path, bytes: &[u8]| {
        std::fs::remove_file(path).unwrap();
        std::fs::write(path, bytes).unwrap();
    };

    // A FIFO nobody writes to as manifest.json or signature-1: a blocking open would hang the
    // hook (it used to: found by this suite, see a_fifo_manifest_is_refused_not_waited_on);
    // the --timeout is a second line of defence only.
    mkfifo(&manifest);
    let config = runtime_config(&image, APP, &[]);
    let out = precreate(&fx, &fx.policy, &["--timeout", "2"], &config);
    assert_refused(
        "manifest.json is a FIFO (hook)",
        &out,
        REJECTED,
        "not a regular file",
    );
    restore(&manifest, &manifest_bytes);
    mkfifo(&signature);
    let out = precreate(&fx, &fx.policy, &["--timeout", "2"], &config);
    assert_refused(
        "signature-1 is a FIFO (hook)",
        &out,
        REJECTED,
        "not a regular file",
    );
    restore(&signature, &signature_bytes);

    // An endless file through a symlink.
    std::fs::remove_file(&manifest).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &manifest).unwrap();
    let m = verify_measured("manifest.json -> /dev/zero", &fx, &image);
    assert_refused(
        "manifest.json -> /dev/zero",
        &m.output,
        UNEVALUABLE,
        "manifest.json: not a regular file",
    );
    restore(&manifest, &manifest_bytes);
    std::fs::remove_file(&signature).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &signature).unwrap();
    let m = verify_measured("signature-1 -> /dev/zero", &fx, &image);
    assert_refused(
        "signature-1 -> /dev/zero",
        &m.output,
        UNEVALUABLE,
        "signature-1: not a regular file",
    );
    restore(&signature, &signature_bytes);

    // A signature file over the 4 MiB limit.
    let mut huge = signature_bytes.clone();
    huge.resize((4 << 20) + 1, b' ');
    std::fs::write(&signature, &huge).unwrap();
    let m = verify_measured("signature over 4 MiB", &fx, &image);
    assert_refused(
        "signature over 4 MiB",
        &m.output,
        UNEVALUABLE,
        "is larger than 4194304 bytes",
    );
    std::fs::write(&signature, &signature_bytes).unwrap();

    // 1025 signatures (the first ones by an untrusted key, the last a valid one).
    for n in 2..=1025 {
        std::fs::write(dir.join(format!("signature-{n}")), &signature_bytes).unwrap();
    }
    let m = verify_measured("1025 signature files", &fx, &image);
    assert_refused(
        "1025 signature files",
        &m.output,
        UNEVALUABLE,
        "more than 1024 signature files",
    );
    for n in 2..=1025 {
        std::fs::remove_file(dir.join(format!("signature-{n}"))).unwrap();
    }
    assert_accepted("control: restored image", &verify_in(&fx, APP, &image));
    assert_clean("special files", &fx);
}

#[test]
fn a_fifo_manifest_is_refused_not_waited_on() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let image = fx.image("fifo", &fx.rootfs("fifo", "f"), Variant::Good);
    let manifest = dir_of(&image).join("manifest.json");
    let manifest_bytes = std::fs::read(&manifest).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    run(Command::new("mkfifo").arg(&manifest));
    let m = verify_measured("manifest.json is a FIFO", &fx, &image);
    assert_refused(
        "manifest.json is a FIFO",
        &m.output,
        UNEVALUABLE,
        "manifest.json",
    );
    std::fs::remove_file(&manifest).unwrap();
    std::fs::write(&manifest, manifest_bytes).unwrap();
    let signature = dir_of(&image).join("signature-1");
    std::fs::remove_file(&signature).unwrap();
    run(Command::new("mkfifo").arg(&signature));
    let m = verify_measured("signature-1 is a FIFO", &fx, &image);
    assert_refused(
        "signature-1 is a FIFO",
        &m.output,
        UNEVALUABLE,
        "signature-1",
    );
    assert_clean("fifo manifest", &fx);
}

#[test]
fn a_fifo_index_json_is_refused_not_waited_on() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let layout = Layout::new(&fx.path().join("oci-fifo"));
    run(Command::new("mkfifo").arg(layout.path.join("index.json")));
    let m = measured(
        "index.json is a FIFO",
        Duration::from_secs(30),
        &["compute-id", &layout.reference("x")],
    );
    assert_refused(
        "index.json is a FIFO",
        &m.output,
        UNEVALUABLE,
        "not a regular file",
    );
    // verify of the layout without a tag: its only image is looked up in index.json first.
    let untagged = format!("oci:{}", layout.path.display());
    let m = verify_measured("index.json is a FIFO (no tag)", &fx, &untagged);
    assert_refused(
        "index.json is a FIFO (no tag)",
        &m.output,
        UNEVALUABLE,
        "not a regular file",
    );
    assert_clean("fifo index.json", &fx);
}

/// #14 item 5: a policy naming `/dev/zero`, a FIFO nobody writes to, or a sparse 8 GiB file as
/// a key (or as a Rekor key) must neither read without bound nor block: each is refused at once,
/// the reason naming the file, by `verify` and by `policy check`.
#[test]
fn key_files_that_are_dev_zero_a_fifo_or_huge() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let image = fx.image("keys", &fx.rootfs("keys", "k"), Variant::Good);
    let fifo = fx.path().join("key.fifo");
    run(Command::new("mkfifo").arg(&fifo));
    let huge = fx.path().join("huge.pub");
    run(Command::new("truncate").args(["-s", "8G"]).arg(&huge));
    let good = public(&fx.signer);
    let cases: [(&str, serde_json::Value, &str); 4] = [
        (
            "keyPath /dev/zero",
            json!({"type": "sigstoreSigned", "keyPath": "/dev/zero",
                   "signedIdentity": {"type": "matchRepository"}}),
            "/dev/zero: is a character device, not a regular file",
        ),
        (
            "keyPath a FIFO",
            json!({"type": "sigstoreSigned", "keyPath": fifo,
                   "signedIdentity": {"type": "matchRepository"}}),
            "key.fifo: is a FIFO, not a regular file",
        ),
        (
            "keyPath a sparse 8 GiB file",
            json!({"type": "sigstoreSigned", "keyPath": huge,
                   "signedIdentity": {"type": "matchRepository"}}),
            "huge.pub: key, certificate or keyring file larger than its limit of 4194304 bytes",
        ),
        (
            "rekorPublicKeyPath a FIFO",
            json!({"type": "sigstoreSigned", "keyPath": good, "rekorPublicKeyPath": fifo,
                   "signedIdentity": {"type": "matchRepository"}}),
            "key.fifo: is a FIFO, not a regular file",
        ),
    ];
    for (case, requirement, reason) in cases {
        let policy = write_policy(
            &fx,
            "bad-key",
            &one_scope("registry.example/app", json!([requirement])),
        );
        let policy = policy.display().to_string();
        let m = measured(
            case,
            Duration::from_secs(30),
            &["verify", "--policy", &policy, "--reference", APP, &image],
        );
        assert_refused(case, &m.output, REJECTED, reason);
        assert!(
            m.peak_rss_kib < 256 * 1024,
            "{case}: {} KiB",
            m.peak_rss_kib
        );
        let m = measured(
            &format!("policy check, {case}"),
            Duration::from_secs(30),
            &["policy", "check", &policy],
        );
        let check_reason = reason.replace(": is a ", ": a ").replace(
            ": key, certificate or keyring file larger than its limit of",
            ": larger than",
        );
        assert_refused(
            &format!("policy check, {case}"),
            &m.output,
            REJECTED,
            &check_reason,
        );
    }
    // The same key from the command line (`verify --key`), and the control.
    let m = measured(
        "verify --key FIFO",
        Duration::from_secs(30),
        &[
            "verify",
            "--key",
            fifo.to_str().unwrap(),
            "--reference",
            APP,
            &image,
        ],
    );
    assert_refused(
        "verify --key FIFO",
        &m.output,
        REJECTED,
        "key.fifo: is a FIFO",
    );
    // With the repository: the fixture's seal is the stored image's digest (a seal, when
    // present, must match).
    let m = measured(
        "control: verify --key with the real key",
        Duration::from_secs(30),
        &[
            "verify",
            "--repo",
            fx.repo.to_str().unwrap(),
            "--key",
            good.to_str().unwrap(),
            "--reference",
            APP,
            &image,
        ],
    );
    assert_accepted("control: verify --key", &m.output);
    assert_clean("key files", &fx);
}

/// #14 item 6: a FIFO at `images/<digest>` or in place of an object made `cfsgate mount` wait
/// forever for a writer (the file was opened before its type was checked). Both must be refused
/// at once, naming the file, with nothing mounted.
#[test]
fn fifos_in_the_store_are_refused_not_waited_on() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let rootfs = fx.rootfs("fifo", "object content");
    let digest = fx.store(&rootfs);
    let big = std::fs::read(rootfs.join("etc/big")).unwrap();
    let object = crate::substitution::object_holding(&fx.repo, &big);
    let at = fx.path().join("mnt-fifo");
    std::fs::create_dir_all(&at).unwrap();
    let mount = |case: &str, image: &str| {
        let args = crate::substitution::mount_args(&fx, "userspace", image, &at);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        measured(case, Duration::from_secs(30), &args).output
    };

    // Control: the intact store mounts.
    assert_accepted("control: intact store", &mount("fifo control", &digest));
    crate::substitution::umount(&at);

    // The object replaced by a FIFO.
    std::fs::remove_file(&object).unwrap();
    run(Command::new("mkfifo").arg(&object));
    let out = mount("object is a FIFO", &digest);
    let text = assert_refused(
        "object replaced by a FIFO",
        &out,
        UNEVALUABLE,
        "not a regular file",
    );
    assert!(
        text.contains("/etc/big"),
        "the refusal does not name the file: {text}"
    );
    std::fs::remove_file(&object).unwrap();
    std::fs::write(&object, &big).unwrap();

    // A FIFO where an image is looked up: images/<digest> of a digest the store lacks.
    let absent = "ab".repeat(32);
    let image = fx.repo.join("images").join(&absent);
    run(Command::new("mkfifo").arg(&image));
    let out = mount("image is a FIFO", &absent);
    let text = assert_refused("image is a FIFO", &out, UNEVALUABLE, "not a regular file");
    assert!(
        text.contains(&absent),
        "the refusal does not name the image: {text}"
    );
    // The stored image itself replaced by a FIFO.
    let stored = fx.repo.join("images").join(&digest);
    let saved = std::fs::read(&stored).unwrap();
    std::fs::remove_file(&stored).unwrap();
    run(Command::new("mkfifo").arg(&stored));
    let out = mount("stored image is a FIFO", &digest);
    assert_refused(
        "stored image is a FIFO",
        &out,
        UNEVALUABLE,
        "not a regular file",
    );
    assert!(mounts_under(fx.path()).is_empty());
    std::fs::remove_file(&stored).unwrap();
    std::fs::write(&stored, &saved).unwrap();
    std::fs::remove_file(&image).unwrap();
    assert_clean("fifos in the store", &fx);
}

/// Configuration files named by the environment or the command line, and metadata in the
/// store, that are FIFOs nobody writes to: storage.conf (`CONTAINERS_STORAGE_CONF`),
/// registries.conf (`--registries-conf`), a credentials file (`--authfile`) used to be opened
/// before their type was checked, so the command hung until killed; an import record
/// (`oci/manifests/<hex>.json`) in place of which a writer of the store put a FIFO hung the next
/// import of that manifest. Each is now refused at once naming the file, or (the record)
/// replaced.
#[test]
fn fifo_configuration_files_and_import_records_are_not_waited_on() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let fifo = fx.path().join("conf.fifo");
    run(Command::new("mkfifo").arg(&fifo));
    let fifo_text = fifo.display().to_string();
    let limit = Duration::from_secs(30);
    // Port 9 (discard) on loopback: nothing listens; the files are read before any connection.
    let nowhere = "docker://127.0.0.1:9/cfsgate/app:1";
    for (case, option) in [
        ("registries.conf a FIFO", "--registries-conf"),
        ("auth file a FIFO", "--authfile"),
    ] {
        let m = measured(case, limit, &["pull", option, &fifo_text, nowhere]);
        assert!(!m.output.status.success(), "{case}: pulled");
        let text = text_of(&m.output);
        assert!(
            text.contains(&format!("{fifo_text}: is a FIFO, not a regular file")),
            "{case}: {text}"
        );
    }
    let m = measured_with_env(
        "storage.conf a FIFO",
        limit,
        &[("CONTAINERS_STORAGE_CONF", fifo.as_os_str())],
        &["compute-id", "containers-storage:registry.example/app:1"],
    );
    assert!(!m.output.status.success(), "storage.conf: read an image");
    let text = text_of(&m.output);
    assert!(
        text.contains(&format!("{fifo_text}: is a FIFO, not a regular file")),
        "storage.conf: {text}"
    );

    // The import record of a manifest replaced by a FIFO: the next import neither hangs nor
    // keeps the FIFO.
    let image = fx.image("record", &fx.rootfs("record", "r"), Variant::Unsealed);
    let repo = fx.repo.display().to_string();
    let import = |case: &str| measured(case, limit, &["--repo", &repo, "import", &image]);
    let first = import("first import");
    assert!(first.output.status.success(), "{}", text_of(&first.output));
    let records = fx.repo.join("oci/manifests");
    let record = std::fs::read_dir(&records)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("an import record");
    let kept = std::fs::read(&record).unwrap();
    std::fs::remove_file(&record).unwrap();
    run(Command::new("mkfifo").arg(&record));
    let again = import("import record a FIFO");
    assert!(again.output.status.success(), "{}", text_of(&again.output));
    assert_eq!(
        std::fs::read(&record).unwrap(),
        kept,
        "the record was not rewritten"
    );
    assert_clean("fifo configuration files", &fx);
}
