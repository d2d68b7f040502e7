//! The VM test suite (`tests/vm/run`) as part of `cargo test`: kernel-enforced fs-verity,
//! EROFS, overlayfs and the ECDSA kernel keyring, checked inside a VM booted on Debian's
//! bookworm-backports kernel, since the development kernel has no fs-verity.
//!
//! The script boots the VM with this very build of `cfsgate` (cargo's `CARGO_BIN_EXE_cfsgate`,
//! so no nested cargo build competes for the target directory), prints one line per guest check
//! and ends with `N passed, M failed`. This test fails if the script fails, if the summary line
//! is missing, or if it reports a failure. It needs root (apt-get, mkfs.ext4 -d as owner of the
//! files) and skips without it, except under `CI=true`, where it never skips.

use std::path::Path;
use std::process::Command;

/// Whether this process runs as root (the VM setup installs packages and writes /var/cache).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// `N passed, M failed` → (N, M).
fn parse_summary(line: &str) -> Option<(u32, u32)> {
    let (passed, failed) = line.trim().split_once(" passed, ")?;
    let failed = failed.strip_suffix(" failed")?;
    Some((passed.parse().ok()?, failed.parse().ok()?))
}

#[test]
fn vm_suite_passes() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !is_root() && !ci {
        eprintln!("skipping the VM suite: needs root (it never skips under CI=true)");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/run");
    let output = Command::new(&script)
        .env("CFSGATE_BIN", env!("CARGO_BIN_EXE_cfsgate"))
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Shown by `cargo test` on failure (and with --nocapture): which checks ran and how.
    println!("{stdout}");
    eprintln!("{stderr}");
    let summary = stdout.lines().last().and_then(parse_summary);
    let Some((passed, failed)) = summary else {
        panic!(
            "tests/vm/run did not end with `N passed, M failed` (exit {})",
            output.status
        );
    };
    assert!(
        output.status.success() && failed == 0 && passed > 0,
        "VM suite: {passed} passed, {failed} failed (exit {}); see the FAIL lines above",
        output.status
    );
}

#[test]
fn summary_line_parses() {
    assert_eq!(parse_summary("12 passed, 0 failed"), Some((12, 0)));
    assert_eq!(parse_summary("3 passed, 4 failed\n"), Some((3, 4)));
    assert_eq!(parse_summary("PASS x: 1 passed, 0 failed?"), None);
    assert_eq!(parse_summary("passed, failed"), None);
}
