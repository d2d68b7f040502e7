//! The binary's code layout: the functions of the start path (symbol-order.txt, made by
//! scripts/symbol-order) must sit together at the start of `.text`, where build.rs asks the
//! linker to put them; spread over the binary they cost every hook ~70 more page faults
//! (benches/HOOKS-RESULTS.md). Read from the built binary's symbol table (`nm`), so this fails
//! when build.rs stops passing the list, when the linker ignores it, or when the list has gone
//! stale (most of its names no longer in the binary: regenerate it).
#![cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

/// Below this share of the list's names found in the binary, the list is stale.
const MIN_NAMES_FOUND: f64 = 0.75;
/// Of the first text symbols by address (as many as the list's names found), at least this
/// share must be listed ones (the rest: aliases and folded duplicates at the same addresses).
const MIN_LISTED_AT_START: f64 = 0.85;

#[test]
fn the_start_path_functions_open_the_text_section() {
    if std::env::var_os("CFSGATE_NO_SYMBOL_ORDER").is_some_and(|v| !v.is_empty()) {
        eprintln!("CFSGATE_NO_SYMBOL_ORDER is set: the build did not order the symbols");
        return;
    }
    let list =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("symbol-order.txt"))
            .expect("symbol-order.txt");
    let listed: HashSet<&str> = list
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
    let text: Vec<&str> = table
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, kind, name) = (fields.next()?, fields.next()?, fields.next()?);
            matches!(kind, "t" | "T").then_some(name)
        })
        .collect();
    let found = text.iter().filter(|name| listed.contains(*name)).count();
    assert!(
        found as f64 >= MIN_NAMES_FOUND * listed.len() as f64,
        "only {found} of symbol-order.txt's {} names are in the binary: the list is stale, \
         regenerate it with scripts/symbol-order",
        listed.len()
    );
    let at_start = text[..found]
        .iter()
        .filter(|name| listed.contains(*name))
        .count();
    assert!(
        at_start as f64 >= MIN_LISTED_AT_START * found as f64,
        "only {at_start} of the first {found} functions of .text are symbol-order.txt's: \
         the linker did not order them (build.rs, lld's --symbol-ordering-file)"
    );
}
