//! Races: what was checked is swapped before (or while) it is used — the stored image file
//! replaced in a loop while it is mounted again and again, and a container root covered by a
//! bind mount after admission.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::common::*;
use crate::fixture::*;
use crate::substitution::{mount, umount};

/// Mount attempts while the image file is being swapped.
const MOUNTS: usize = 50;

/// Sets its flag when dropped (also while unwinding from a panic).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Replaces `target` with `attack` and back, by rename and by rewriting in place, until `stop`;
/// `swaps` counts the finished cycles (read by the mounter to see which mounts a swap overlapped).
fn swap_loop(
    target: &Path,
    scratch: &Path,
    trusted: &[u8],
    attack: &[u8],
    stop: &AtomicBool,
    swaps: &AtomicUsize,
) {
    while !stop.load(Ordering::Relaxed) {
        // By rename: a whole other valid image appears under the trusted name.
        std::fs::write(scratch, attack).unwrap();
        std::fs::rename(scratch, target).unwrap();
        std::thread::yield_now();
        // In place: the same inode rewritten (what pinning must defeat).
        std::fs::write(target, trusted).unwrap();
        std::fs::write(target, attack).unwrap();
        std::thread::yield_now();
        std::fs::write(scratch, trusted).unwrap();
        std::fs::rename(scratch, target).unwrap();
        swaps.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn the_image_file_replaced_while_mounting_50_times() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let trusted_root = fx.rootfs("trusted", "trusted content");
    let trusted = fx.store(&trusted_root);
    let attack = fx.store(&fx.rootfs("attack", "attacker content"));
    let target = fx.repo.join("images").join(&trusted);
    let trusted_bytes = std::fs::read(&target).unwrap();
    let attack_bytes = std::fs::read(fx.repo.join("images").join(&attack)).unwrap();
    let big = std::fs::read(trusted_root.join("etc/big")).unwrap();
    let at = fx.path().join("mnt-race");
    let stop = AtomicBool::new(false);
    let (mounted, refused) = (AtomicUsize::new(0), AtomicUsize::new(0));
    // Mounts during which at least one whole swap cycle ran: the race really was raced.
    let overlapped = AtomicUsize::new(0);
    let swap_cycles = AtomicUsize::new(0);

    std::thread::scope(|s| {
        // Stops the swapper however this scope ends: a failed assertion below must fail the
        // test, not leave the scope waiting for the swapper forever.
        let _stop_on_exit = StopOnDrop(&stop);
        let swapper = s.spawn(|| {
            swap_loop(
                &target,
                &fx.path().join("swap-scratch"),
                &trusted_bytes,
                &attack_bytes,
                &stop,
                &swap_cycles,
            )
        });
        for i in 0..MOUNTS {
            let before = swap_cycles.load(Ordering::SeqCst);
            let out = mount(&fx, "userspace", &trusted, &at);
            if swap_cycles.load(Ordering::SeqCst) > before {
                overlapped.fetch_add(1, Ordering::Relaxed);
            }
            if out.status.success() {
                // Keep reading while the swapper runs: the mount must keep the checked bytes.
                for _ in 0..3 {
                    assert_eq!(
                        std::fs::read_to_string(at.join("etc/motd")).unwrap(),
                        "trusted content\n",
                        "mount {i} shows content other than the trusted image's"
                    );
                    assert_eq!(std::fs::read(at.join("etc/big")).unwrap(), big);
                    assert!(!at.join("etc/attack").exists());
                    std::thread::yield_now();
                }
                umount(&at);
                mounted.fetch_add(1, Ordering::Relaxed);
            } else {
                let text = text_of(&out);
                assert_eq!(out.status.code(), Some(UNEVALUABLE), "{text}");
                assert!(
                    text.contains("not the trusted digest")
                        || text.contains("is not a composefs image")
                        || text.contains("against modification (copy into memfd): image shrank")
                        // The bounded open (statx, then fstat of the same inode) saw the
                        // swapper's rename between the two: refused as another file.
                        || text.contains("is not a regular file"),
                    "mount {i} failed without a digest refusal: {text}"
                );
                refused.fetch_add(1, Ordering::Relaxed);
            }
        }
        stop.store(true, Ordering::Relaxed);
        swapper.join().unwrap()
    });
    let swaps = swap_cycles.load(Ordering::SeqCst);
    let overlapped = overlapped.load(Ordering::Relaxed);
    eprintln!(
        "RACE [image swapped while mounting] {MOUNTS} mounts: {} mounted with the trusted content, {} refused (digest mismatch or pinning caught the change); {swaps} swap cycles, {overlapped} mounts overlapped by a whole swap",
        mounted.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed)
    );
    assert!(
        overlapped > 0,
        "no mount was overlapped by a swap ({swaps} cycles): the race was not raced"
    );
    std::fs::write(&target, &trusted_bytes).unwrap();
    assert_clean("image swapped while mounting", &fx);
}

#[test]
fn a_container_root_covered_by_a_bind_mount_after_admission() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let image = fx.image("bind", &fx.rootfs("bind", "admitted"), Variant::Good);
    let out = precreate(&fx, &fx.policy, &[], &runtime_config(&image, APP, &[]));
    assert_accepted("control: admission", &out);
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = std::path::PathBuf::from(config["root"]["path"].as_str().unwrap());
    let bundle = bundle_for(fx.path(), "bind", &root);
    let check_args = |sub: &str| {
        let mut args = vec!["hook".to_string(), sub.to_string()];
        args.extend(fx.check_args());
        args
    };
    let stage = |sub: &str, state: &[u8]| {
        let args = check_args(sub);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cfsgate(&args, Some(state))
    };

    // An attacker's tree bind-mounted over the admitted root.
    let evil = fx.rootfs("evil", "attacker");
    run(Command::new("mount").arg("--bind").arg(&evil).arg(&root));
    let out = stage("create-runtime", &state_json("ctr-bind", &bundle));
    assert_refused(
        "root covered by a bind mount",
        &out,
        REJECTED,
        "the root was swapped",
    );
    // A bind mount of the admitted root onto itself (same filesystem, new mount).
    run(Command::new("umount").arg(&root));
    run(Command::new("mount").arg("--bind").arg(&root).arg(&root));
    let out = stage("create-runtime", &state_json("ctr-bind", &bundle));
    assert_refused(
        "root re-bind-mounted onto itself",
        &out,
        REJECTED,
        "the root was swapped",
    );
    run(Command::new("umount").arg(&root));
    // Control: the untouched root passes.
    assert_accepted(
        "control: untouched root",
        &stage("create-runtime", &state_json("ctr-bind", &bundle)),
    );
    assert_accepted(
        "poststop",
        &stage("poststop", &state_json("ctr-bind", &bundle)),
    );
    assert_clean("bind mount over the root", &fx);
}
