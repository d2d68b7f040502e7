//! Attacks on the runtime hooks by whoever can mount on the host or start containers (#14
//! items 1, 2, 3, 4, 8, 9 and the annotation path's relative `dir:` names). Each one is carried
//! out for real (real mounts, a really recycled mount id, real processes, a real unprivileged
//! user) and must be refused; each has an untampered control that passes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{assert_accepted, assert_refused, precreate, APP, REJECTED};
use crate::fixture::{
    bundle_for, cfsgate, mounts_under, require_root, run, runtime_config, state_json, Fixture,
    Variant, BIN,
};

fn stage(fx: &Fixture, sub: &str, state: &[u8]) -> Output {
    let mut args = vec!["hook".to_string(), sub.to_string()];
    args.extend(fx.check_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cfsgate(&args, Some(state))
}

/// An admitted root (precreate of a good image): its path and its admission record.
fn admitted_root(fx: &Fixture, name: &str) -> (PathBuf, serde_json::Value) {
    let image = fx.image(name, &fx.rootfs(name, "admitted"), Variant::Good);
    let out = precreate(fx, &fx.policy, &[], &runtime_config(&image, APP, &[]));
    assert_accepted("control: admission", &out);
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = PathBuf::from(config["root"]["path"].as_str().unwrap());
    let record = std::fs::read(root.parent().unwrap().join("admission.json")).unwrap();
    (root, serde_json::from_slice(&record).unwrap())
}

fn audit_records(fx: &Fixture) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&fx.audit_log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// (mountinfo id, `major:minor`) of the topmost mount exactly at `path`.
fn mountinfo_of(path: &Path) -> Option<(u64, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = path.display().to_string();
    text.lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .filter(|f| f.len() > 4 && f[4] == want)
        .map(|f| (f[0].parse().unwrap(), f[2].to_string()))
        .next_back()
}

fn umount(path: &Path) {
    let _ = Command::new("umount").arg(path).status();
}

/// Private mounts overlayfs clones from its layers (one upper, one lower) before its own.
const OVERLAY_LAYER_CLONES: usize = 2;

/// Mount an unverified overlay at `root` that gets mountinfo id `id` and device `dev` again,
/// the way an attacker recycles them: both are handed out lowest-free, so first every free
/// anonymous device below `dev` is taken (a tmpfs superblock kept alive by its fs context,
/// which holds no mount id), then every free mount id below `id` (bind mounts, which take no
/// device). Returns whether the overlay at `root` got exactly (`id`, `dev`).
fn recycle_mount_identity(fx: &Fixture, root: &Path, id: u64, dev: &str, attempt: u32) -> bool {
    use rustix::mount::{
        fsconfig_create, fsmount, fsopen, FsMountFlags, FsOpenFlags, MountAttrFlags,
    };
    let base = fx.path().join(format!("recycle-{attempt}"));
    let lower = fx.rootfs(&format!("unverified-{attempt}"), "unverified");
    let (upper, work, scratch) = (base.join("upper"), base.join("work"), base.join("scratch"));
    for d in [&upper, &work, &scratch] {
        std::fs::create_dir_all(d).unwrap();
    }
    let target_minor: u64 = dev.split(':').nth(1).unwrap().parse().unwrap();
    let mut held_devices = Vec::new();
    for _ in 0..4096 {
        let fs = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC).unwrap();
        fsconfig_create(&fs).unwrap();
        let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty()).unwrap();
        let minor = rustix::fs::minor(rustix::fs::fstat(&mnt).unwrap().st_dev) as u64;
        drop(mnt); // frees the mount id; the fs context keeps the device
        if minor >= target_minor {
            break; // dropping `fs` frees this device again: the next superblock gets it
        }
        held_devices.push(fs);
    }
    let mut holders = Vec::new();
    for i in 0..4096 {
        let holder = base.join(format!("h{i}"));
        std::fs::create_dir_all(&holder).unwrap();
        run(Command::new("mount")
            .arg("--bind")
            .arg(&scratch)
            .arg(&holder));
        let (got, _) = mountinfo_of(&holder).unwrap();
        if got >= id {
            umount(&holder);
            break;
        }
        holders.push(holder);
    }
    // overlayfs takes a private clone of each layer (upper, lower: two mounts) before its own
    // mount gets an id, and all take the lowest free ids: free two holders below `id` for the
    // clones, so that the overlay itself gets `id`. (Without this the overlay got `id + 2`.)
    for holder in holders.split_off(holders.len().saturating_sub(OVERLAY_LAYER_CLONES)) {
        umount(&holder);
    }
    run(Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        ))
        .arg(root));
    for holder in holders.iter().rev() {
        umount(holder);
    }
    drop(held_devices);
    let got = mountinfo_of(root);
    eprintln!("recycle attempt {attempt}: wanted ({id}, {dev}), got {got:?}");
    got == Some((id, dev.to_string()))
}

/// Item 1: unmount an admitted root, recycle its mountinfo id and device number for an
/// unverified overlay at the same path: createRuntime must still see that it is another mount.
///
/// Mount ids and anonymous device numbers are global to the kernel and handed out lowest
/// free; the recycling step fills the holes below them and leaves room for overlayfs's two
/// layer clones (it missed the id by exactly those two before), retrying when another process
/// took an id in between. The attack reaches the admitted mount's (mountinfo id, device) for
/// real (asserted), so a gate that compared those, as before #14, would admit this root: the
/// refusal can only come from the 64-bit unique mount id, which is never reused.
#[test]
fn a_recycled_mount_id_and_device_do_not_pass_for_the_admitted_root() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let (root, record) = admitted_root(&fx, "recycle");
    let bundle = bundle_for(fx.path(), "recycle", &root);
    let id = record["mount_id"].as_u64().unwrap();
    let dev = record["dev"].as_str().unwrap().to_string();
    let mut recycled = false;
    for attempt in 0..5 {
        umount(&root);
        std::thread::sleep(std::time::Duration::from_millis(200)); // ids are freed after RCU
        if recycle_mount_identity(&fx, &root, id, &dev, attempt) {
            recycled = true;
            break;
        }
    }
    assert!(
        recycled,
        "could not recycle mount id {id} and device {dev} (host too busy?)"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/motd")).unwrap(),
        "unverified\n",
        "the attacker's tree is what the container would run"
    );
    let out = stage(&fx, "create-runtime", &state_json("ctr-recycle", &bundle));
    assert_refused(
        "recycled mount id and device",
        &out,
        REJECTED,
        "the root was swapped",
    );
    umount(&root);
    assert_eq!(audit_records(&fx).last().unwrap()["verdict"], "deny");
}

/// Item 2: a tmpfs over `rootfs/bin` after admission is refused; a mount the bundle declares
/// (at `/proc`) is expected at this stage and passes.
#[test]
fn a_mount_below_the_root_that_the_bundle_does_not_declare() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let (root, _) = admitted_root(&fx, "below");
    let bundle = bundle_for(fx.path(), "below", &root);
    run(Command::new("mount")
        .args(["-t", "tmpfs", "covering"])
        .arg(root.join("bin")));
    let out = stage(&fx, "create-runtime", &state_json("ctr-below", &bundle));
    assert_refused(
        "tmpfs over rootfs/bin",
        &out,
        REJECTED,
        "is not declared in the bundle's config.json mounts",
    );
    umount(&root.join("bin"));
    // Control: a declared mount (proc at /proc, as the runtime makes it).
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec(&serde_json::json!({
            "ociVersion": "1.0.2", "root": {"path": root},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}]
        }))
        .unwrap(),
    )
    .unwrap();
    run(Command::new("mount")
        .args(["-t", "proc", "proc"])
        .arg(root.join("proc")));
    let out = stage(&fx, "create-runtime", &state_json("ctr-below", &bundle));
    umount(&root.join("proc"));
    assert_accepted("control: declared /proc mount", &out);
    assert_accepted(
        "poststop",
        &stage(&fx, "poststop", &state_json("ctr-below", &bundle)),
    );
    assert!(mounts_under(&fx.run_dir).is_empty());
}

/// Item 3: a second container claiming an admitted root is refused and recorded; when the
/// second claimer's process is gone, `mounts gc` leaves the first, running container's root.
#[test]
fn one_admission_belongs_to_one_container() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let (root, _) = admitted_root(&fx, "claim");
    let bundle = bundle_for(fx.path(), "claim", &root);
    let state = |id: &str, pid: u32| {
        serde_json::to_vec(&serde_json::json!({"id": id, "pid": pid, "bundle": bundle})).unwrap()
    };
    let mut first = Command::new("sleep").arg("60").spawn().unwrap();
    let mut second = Command::new("sleep").arg("60").spawn().unwrap();
    assert_accepted(
        "first claim",
        &stage(&fx, "create-runtime", &state("ctr-a", first.id())),
    );
    let out = stage(&fx, "create-runtime", &state("ctr-b", second.id()));
    assert_refused("second claim", &out, REJECTED, "belongs to container ctr-a");
    let last = audit_records(&fx).pop().unwrap();
    assert_eq!(last["verdict"], "deny");
    assert_eq!(last["container_id"], "ctr-b");
    // The owner's check still passes (same id again).
    assert_accepted(
        "owner again",
        &stage(&fx, "create-runtime", &state("ctr-a", first.id())),
    );
    second.kill().unwrap();
    second.wait().unwrap();
    let gc = mounts_gc(&fx);
    assert_accepted("gc", &gc);
    assert_eq!(
        std::fs::read_to_string(root.join("etc/motd")).unwrap(),
        "admitted\n",
        "gc unmounted a running container's root"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    assert_accepted("gc", &mounts_gc(&fx));
    assert!(mounts_under(&fx.run_dir).is_empty());
    // gc recorded its one cleanup, for the owner.
    let last = audit_records(&fx).pop().unwrap();
    assert_eq!(
        (&last["stage"], &last["verdict"]),
        (&"gc".into(), &"admit".into())
    );
    assert_eq!(last["container_id"], "ctr-a");
}

/// An admission record kept across a reboot (a run dir on disk, as `/run` is on this machine):
/// unique mount ids restart at boot, so after one a host root user can make mounts until a new
/// overlay at the recorded root path has the recorded id. The record is marked with the boot
/// it was made in; a record of another boot binds nothing. (The reboot is the one step not
/// carried out: the record is given the boot id of an earlier boot, everything else, the same
/// mount and its unique id, is as the attacker would have it.)
#[test]
fn an_admission_from_another_boot_binds_nothing() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let (root, mut record) = admitted_root(&fx, "reboot");
    let bundle = bundle_for(fx.path(), "reboot", &root);
    let current = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(record["boot_id"], current.trim(), "{record}");
    let sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    let state = serde_json::to_vec(
        &serde_json::json!({"id": "ctr-reboot", "pid": sleeper.id(), "bundle": bundle}),
    )
    .unwrap();
    let earlier_boot = "0f3c2a91-5d7e-4b18-9c6a-2e8d4f7b1a05";
    record["boot_id"] = earlier_boot.into();
    let path = root.parent().unwrap().join("admission.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
    let out = stage(&fx, "create-runtime", &state);
    assert_refused(
        "admission from another boot",
        &out,
        REJECTED,
        &format!("in another boot (boot id {earlier_boot}"),
    );
    // The control: the same record with this boot's id binds the same mount.
    record["boot_id"] = current.trim().into();
    std::fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
    assert_accepted("control: this boot", &stage(&fx, "create-runtime", &state));
    let mut sleeper = sleeper;
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert_accepted("gc", &mounts_gc(&fx));
}

fn mounts_gc(fx: &Fixture) -> Output {
    let mut args = vec!["mounts".to_string(), "gc".to_string()];
    args.extend(fx.check_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cfsgate(&args, None)
}

/// Item 4: container B's poststop whose bundle names container A's root (as runc runs it when
/// B's createRuntime was refused, or as anyone who starts a container can write it) is refused,
/// touches nothing, and is recorded; A's own poststop then cleans up, recorded too.
#[test]
fn a_strangers_poststop_does_not_clean_up_another_containers_root() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let image = fx.image("owner", &fx.rootfs("owner", "owned"), Variant::Good);
    let admit = || {
        let out = precreate(&fx, &fx.policy, &[], &runtime_config(&image, APP, &[]));
        assert_accepted("control: admission", &out);
        let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        PathBuf::from(config["root"]["path"].as_str().unwrap())
    };
    let (root_a, root_b) = (admit(), admit());
    let bundle_a = bundle_for(fx.path(), "owner-a", &root_a);
    let bundle_b = bundle_for(fx.path(), "owner-b", &root_b);
    assert_accepted(
        "create-runtime a",
        &stage(&fx, "create-runtime", &state_json("ctr-a", &bundle_a)),
    );
    assert_accepted(
        "create-runtime b",
        &stage(&fx, "create-runtime", &state_json("ctr-b", &bundle_b)),
    );
    let state_a = root_a.parent().unwrap().to_path_buf();
    let intact = |what: &str| {
        assert_eq!(
            std::fs::read_to_string(root_a.join("etc/motd")).unwrap(),
            "owned\n",
            "{what}: A's root was unmounted"
        );
        assert!(
            state_a.join("admission.json").is_file() && state_a.join("upper").is_dir(),
            "{what}: A's state was removed"
        );
    };
    // The stranger: container B, its state naming a bundle whose root is A's.
    let out = stage(&fx, "poststop", &state_json("ctr-b", &bundle_a));
    assert_refused(
        "poststop of B naming A's root",
        &out,
        REJECTED,
        "belongs to container ctr-a; container ctr-b may not clean it up",
    );
    intact("stranger's poststop");
    let last = audit_records(&fx).pop().unwrap();
    assert_eq!(
        (&last["stage"], &last["verdict"], &last["container_id"]),
        (&"poststop".into(), &"deny".into(), &"ctr-b".into())
    );
    // A state with no id at all is no owner either.
    let anonymous = serde_json::to_vec(&serde_json::json!({"bundle": bundle_a})).unwrap();
    let out = stage(&fx, "poststop", &anonymous);
    assert_refused(
        "poststop without an id",
        &out,
        REJECTED,
        "may not clean it up",
    );
    intact("anonymous poststop");
    // Controls: each owner's poststop cleans up its own root, and says so in the log.
    for (id, bundle, root) in [("ctr-a", &bundle_a, &root_a), ("ctr-b", &bundle_b, &root_b)] {
        assert_accepted(id, &stage(&fx, "poststop", &state_json(id, bundle)));
        assert!(!root.exists(), "{id}: root left");
        let last = audit_records(&fx).pop().unwrap();
        assert_eq!(
            (&last["stage"], &last["verdict"], &last["container_id"]),
            (&"poststop".into(), &"admit".into(), &id.into())
        );
    }
    assert!(mounts_under(&fx.run_dir).is_empty());
    let stages: Vec<String> = audit_records(&fx)
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["stage"].as_str().unwrap(),
                r["verdict"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        stages,
        [
            "precreate admit",
            "precreate admit",
            "createRuntime admit",
            "createRuntime admit",
            "poststop deny",
            "poststop deny",
            "poststop admit",
            "poststop admit"
        ]
    );
}

/// Item 8: the run dir and each container's state are 0700: a host user other than root
/// cannot reach the image's files (device nodes, setuid binaries) through them.
#[test]
fn container_roots_are_not_reachable_by_host_users() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let (root, _) = admitted_root(&fx, "private");
    let state = root.parent().unwrap();
    for dir in [state, fx.run_dir.as_path()] {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700, "{} is {mode:o}", dir.display());
    }
    // The fixture's temporary directory is 0700 itself: open it so only the state blocks.
    std::fs::set_permissions(fx.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let motd = root.join("etc/motd");
    let as_nobody = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(&motd)
        .output()
        .unwrap();
    assert!(
        !as_nobody.status.success(),
        "nobody read {}: {}",
        motd.display(),
        String::from_utf8_lossy(&as_nobody.stdout)
    );
    assert!(String::from_utf8_lossy(&as_nobody.stderr).contains("Permission denied"));
    // Control: root reads it.
    assert_eq!(std::fs::read_to_string(&motd).unwrap(), "admitted\n");
    let bundle = bundle_for(fx.path(), "private", &root);
    assert_accepted(
        "create-runtime",
        &stage(&fx, "create-runtime", &state_json("ctr-p", &bundle)),
    );
    assert_accepted(
        "poststop",
        &stage(&fx, "poststop", &state_json("ctr-p", &bundle)),
    );
}

/// Item 9: when `--timeout` denies, nothing the decision started may finish afterwards: no
/// mount and no state appear, however long one waits.
#[test]
fn nothing_outlives_a_timeout_denial() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let image = fx.image("late", &fx.rootfs("late", "late"), Variant::Good);
    let config = runtime_config(&image, APP, &[]);
    let out = precreate(&fx, &fx.policy, &["--timeout", "0"], &config);
    assert_refused(
        "decision past its deadline",
        &out,
        REJECTED,
        "(--timeout): failing closed",
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    let left = mounts_under(&fx.run_dir);
    for m in left.iter().rev() {
        let _ = Command::new("umount").arg(m).status();
    }
    assert!(left.is_empty(), "mounted after the denial: {left:?}");
    let states: Vec<_> = std::fs::read_dir(&fx.run_dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(states.is_empty(), "state left after the denial: {states:?}");
    // Control: the same image within the default deadline.
    let out = precreate(&fx, &fx.policy, &[], &config);
    assert_accepted("control: in time", &out);
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = PathBuf::from(config["root"]["path"].as_str().unwrap());
    let bundle = bundle_for(fx.path(), "late", &root);
    assert_accepted(
        "create-runtime",
        &stage(&fx, "create-runtime", &state_json("ctr-l", &bundle)),
    );
    assert_accepted(
        "poststop",
        &stage(&fx, "poststop", &state_json("ctr-l", &bundle)),
    );
}

/// The annotation path: a relative `dir:` image would be judged relative to the hook's cwd;
/// it is refused, and the same image by its absolute path is admitted.
#[test]
fn a_relative_dir_image_annotation_is_refused() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let image = fx.image("rel", &fx.rootfs("rel", "rel"), Variant::Good);
    let relative = format!(
        "dir:{}",
        Path::new(image.trim_start_matches("dir:"))
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
    );
    let mut args = vec![
        "hook".to_string(),
        "precreate".to_string(),
        "--annotations".to_string(),
    ];
    args.extend(fx.gate_args());
    let precreate_in_fixture = |image: &str| {
        let mut child = Command::new(BIN)
            .args(&args)
            .current_dir(fx.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&runtime_config(image, APP, &[]))
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = precreate_in_fixture(&relative);
    assert_refused("relative dir: image", &out, REJECTED, "relative dir: path");
    assert!(mounts_under(&fx.run_dir).is_empty());
    let out = precreate_in_fixture(&image);
    assert_accepted("control: absolute dir: image", &out);
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = PathBuf::from(config["root"]["path"].as_str().unwrap());
    let bundle = bundle_for(fx.path(), "rel", &root);
    assert_accepted(
        "create-runtime",
        &stage(&fx, "create-runtime", &state_json("ctr-r", &bundle)),
    );
    assert_accepted(
        "poststop",
        &stage(&fx, "poststop", &state_json("ctr-r", &bundle)),
    );
}
