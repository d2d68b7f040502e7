//! The VM test suite (`tests/vm/run`) as part of `cargo test`: kernel-enforced fs-verity,
//! EROFS, overlayfs and the ECDSA kernel keyring, checked inside a VM booted on Debian's
//! bookworm-backports kernel, since the development kernel has no fs-verity.
//!
//! The script boots the VM with this very build of `cfsgate` (cargo's `CARGO_BIN_EXE_cfsgate`,
//! so no nested cargo build competes for the target directory), prints one line per guest check
//! and ends with `N passed, M failed`. This test fails if the script fails, if the summary line
//! is missing, if it reports a failure, or if the checks that passed are not exactly the
//! `result NAME …` checks `tests/vm/guest-init.sh` defines (read from the script, so a check
//! that stops running, or one added without being run, fails here). It needs root (apt-get, mkfs.ext4 -d as owner of the
//! files) and skips without it, except under `CI=true`, where it never skips.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The guest script whose `result NAME PASS|FAIL …` calls define the checks.
const GUEST_SCRIPT: &str = "tests/vm/guest-init.sh";

/// The checks `script` can pass: every `result NAME PASS …` call (a name only ever reported as
/// FAIL, such as a setup step that ends the run, is no check of a passing run), with a name
/// built from a `for f in A B; do` loop variable (`"${f%.txt}_suffix"`) expanded per item.
fn defined_checks(script: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut loop_items: Vec<String> = Vec::new();
    for line in script.lines().map(str::trim) {
        if let Some(items) = line.strip_prefix("for f in ") {
            let items = items.split(';').next().unwrap_or("");
            loop_items = items.split_whitespace().map(str::to_string).collect();
        }
        let Some(rest) = line.strip_prefix("result ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(name), Some("PASS")) = (words.next(), words.next()) else {
            continue;
        };
        if let Some(suffix) = name
            .strip_prefix("\"${f%.txt}")
            .and_then(|s| s.strip_suffix('"'))
        {
            for item in &loop_items {
                let stem = item.strip_suffix(".txt").unwrap_or(item);
                names.insert(format!("{stem}{suffix}"));
            }
        } else if name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            names.insert(name.to_string());
        } else {
            panic!("{GUEST_SCRIPT}: cannot read the check name in `{line}`");
        }
    }
    names
}

/// The names of the `PASS name: detail` lines `tests/vm/run` printed, each once.
fn passed_checks(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("PASS "))
        .filter_map(|l| l.split_once(':').map(|(name, _)| name.to_string()))
        .collect()
}

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
    let script_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(GUEST_SCRIPT);
    let defined = defined_checks(&std::fs::read_to_string(&script_path).expect("guest script"));
    let ran = passed_checks(&stdout);
    let ran_set: BTreeSet<String> = ran.iter().cloned().collect();
    assert_eq!(ran.len(), ran_set.len(), "a check passed twice: {ran:?}");
    let missing: Vec<_> = defined.difference(&ran_set).collect();
    let extra: Vec<_> = ran_set.difference(&defined).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the passed checks are not the ones {GUEST_SCRIPT} defines: missing {missing:?}, not defined {extra:?}"
    );
    assert_eq!(passed as usize, defined.len());
}

/// The names read from the real guest script: every passing `result` call's name is read (a
/// call the reader cannot parse panics), the loop-built names expanded, FAIL-only names left
/// out.
#[test]
fn check_names_are_read_from_the_guest_script() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(GUEST_SCRIPT);
    let script = std::fs::read_to_string(&path).expect("guest script");
    let names = defined_checks(&script);
    assert!(names.len() >= 2, "{names:?}");
    for line in script.lines().map(str::trim) {
        let mut words = line
            .strip_prefix("result ")
            .unwrap_or("")
            .split_whitespace();
        if let (Some(name), Some("PASS")) = (words.next(), words.next()) {
            if !name.starts_with('"') {
                assert!(names.contains(name), "{name} missing from {names:?}");
            }
        }
    }
    // The loop `for f in tampered.txt swapped.txt` names one check per file.
    let looped = defined_checks(
        "result setup FAIL no\nfor f in a.txt b.txt; do\n  result \"${f%.txt}_x\" PASS y\n",
    );
    assert_eq!(looped, ["a_x".to_string(), "b_x".to_string()].into());
    assert_eq!(
        passed_checks("PASS one: d: e\nFAIL two: x\nPASS three: \n"),
        ["one", "three"]
    );
}

#[test]
fn summary_line_parses() {
    assert_eq!(parse_summary("12 passed, 0 failed"), Some((12, 0)));
    assert_eq!(parse_summary("3 passed, 4 failed\n"), Some((3, 4)));
    assert_eq!(parse_summary("PASS x: 1 passed, 0 failed?"), None);
    assert_eq!(parse_summary("passed, failed"), None);
}
