//! The binary's code layout: the functions of the start path (symbol-order.txt, made by
//! scripts/symbol-order) must sit together at the start of the code, in the `.text.startpath`
//! section build.rs's linker script gathers them into; spread over the binary they cost every
//! hook ~70 more page faults (benches/HOOKS-RESULTS.md). Read from the built binary's symbol
//! table (`nm`), so this fails when build.rs stops passing the script, when the linker ignores
//! it, or when the list has gone stale (most of its patterns match nothing: regenerate it).
//!
//! The test build unifies features with the dev-dependencies, so its functions carry other
//! hashes than the release binary's: the list's patterns (hash-free) match in both, its exact
//! names (generic instances) only in the build they were made from. So staleness is judged on
//! the patterns, and the layout on whatever the list matches here.
#![cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]

use std::path::Path;
use std::process::Command;

/// Below this share of the list's patterns matching a function of the binary, it is stale.
const MIN_PATTERNS_MATCHED: f64 = 0.75;
/// Of the first functions by address (as many as the list matches), at least this share must
/// be ones it matches (the rest: aliases and folded duplicates at the same addresses).
const MIN_LISTED_AT_START: f64 = 0.85;

/// Whether `name` matches `pattern`, where `*` is any text (the linker script's globbing, for
/// the only wildcard the list uses).
fn glob_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let tail: Vec<&str> = parts.collect();
    let Some((last, middle)) = tail.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[test]
fn glob_matching_is_the_linker_scripts() {
    assert!(glob_match(
        "_ZN7cfsgate4main17h*",
        "_ZN7cfsgate4main17h0123456789abcdefE"
    ));
    assert!(!glob_match(
        "_ZN7cfsgate4main17h*",
        "_ZN7cfsgate5other17h0123456789abcdefE"
    ));
    assert!(glob_match(
        "_RNvCs*_7___rustc*",
        "_RNvCsab12_7___rustc11___rdl_alloc"
    ));
    assert!(glob_match("exact", "exact"));
    assert!(!glob_match("exact", "exactly"));
    assert!(glob_match("a*b*c", "aXbYc"));
    assert!(!glob_match("a*bc*bc", "abc"));
}

#[test]
fn the_start_path_functions_open_the_code() {
    if std::env::var_os("CFSGATE_NO_SYMBOL_ORDER").is_some_and(|v| !v.is_empty()) {
        eprintln!("CFSGATE_NO_SYMBOL_ORDER is set: the build did not order the functions");
        return;
    }
    let list =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("symbol-order.txt"))
            .expect("symbol-order.txt");
    let lines: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let nm = Command::new("nm")
        .args(["--defined-only", "--numeric-sort"])
        .arg(env!("CARGO_BIN_EXE_cfsgate"))
        .output()
        .expect("run nm (binutils)");
    assert!(
        nm.status.success(),
        "nm: {}",
        String::from_utf8_lossy(&nm.stderr)
    );
    let table = String::from_utf8(nm.stdout).expect("nm prints text");
    let code: Vec<&str> = table
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, kind, name) = (fields.next()?, fields.next()?, fields.next()?);
            matches!(kind, "t" | "T").then_some(name)
        })
        .collect();
    let (patterns, exact): (Vec<&str>, Vec<&str>) = lines.iter().partition(|l| l.contains('*'));
    let exact: std::collections::HashSet<&str> = exact.into_iter().collect();
    let listed = |name: &str| exact.contains(name) || patterns.iter().any(|p| glob_match(p, name));
    let matched_patterns = patterns
        .iter()
        .filter(|p| code.iter().any(|name| glob_match(p, name)))
        .count();
    assert!(
        matched_patterns as f64 >= MIN_PATTERNS_MATCHED * patterns.len() as f64,
        "only {matched_patterns} of symbol-order.txt's {} patterns match a function: the list \
         is stale, regenerate it with scripts/symbol-order",
        patterns.len()
    );
    let is_listed: Vec<bool> = code.iter().map(|name| listed(name)).collect();
    let found = is_listed.iter().filter(|&&l| l).count();
    let at_start = is_listed[..found].iter().filter(|&&l| l).count();
    assert!(
        at_start as f64 >= MIN_LISTED_AT_START * found as f64,
        "only {at_start} of the first {found} functions are symbol-order.txt's: the linker \
         did not gather them (build.rs's linker script)"
    );
}
