//! Link options of the `cfsgate` binary (only the binary: test executables and the library
//! crates link as before).
//!
//! `-z pack-relative-relocs` stores the binary's ~18,800 relative relocations as DT_RELR (a
//! bitmap, a few KiB) instead of 24-byte RELA entries (~450 KiB): `ld.so` reads and applies
//! them at every start, and the hooks and `cfsgate verify` are short processes whose start
//! dominates (issues #14, #20; figures in benches/HOOKS-RESULTS.md). It needs glibc 2.36 or
//! newer where the binary runs (the link adds a `GLIBC_ABI_DT_RELR` version need, so an older
//! glibc refuses it at load instead of misrelocating) and lld 15 / GNU ld 2.38 or newer.
//! `CFSGATE_NO_RELR=1` at build time leaves it out, for builds meant for older systems.
//!
//! `symbol-order.txt` (made by scripts/symbol-order) lists the functions the hooks and `verify`
//! run, as patterns of their mangled names without the parts that change between builds
//! (hashes, crate disambiguators). A linker script in OUT_DIR gathers their sections
//! (`-ffunction-sections`: one `.text.NAME` each) into `.text.startpath`, placed before `.text`
//! (`INSERT BEFORE`: the default layout otherwise stays): spread over 9 MiB of code they cost a
//! precreate ~90 page faults, grouped ~20. A pattern that matches nothing is no error, so a
//! stale list only costs speed (tests/link_layout.rs notices). Left out for other targets than
//! Linux/glibc, when a linker is configured (it may not read linker scripts: mold), and with
//! `CFSGATE_NO_SYMBOL_ORDER=1`.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=symbol-order.txt");
    println!("cargo:rerun-if-env-changed=CFSGATE_NO_RELR");
    println!("cargo:rerun-if-env-changed=CFSGATE_NO_SYMBOL_ORDER");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let opted_out = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    if target_os == "linux" && target_env == "gnu" && !opted_out("CFSGATE_NO_RELR") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let order = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default())
        .join("symbol-order.txt");
    // A linker chosen in .cargo/config.toml or RUSTFLAGS may not read linker scripts.
    let linker_chosen = std::env::var_os("RUSTC_LINKER").is_some()
        || std::env::var("CARGO_ENCODED_RUSTFLAGS").is_ok_and(|flags| flags.contains("linker"));
    if target_os != "linux" || target_env != "gnu" || linker_chosen {
        return;
    }
    if opted_out("CFSGATE_NO_SYMBOL_ORDER") {
        return;
    }
    let Ok(list) = std::fs::read_to_string(&order) else {
        return;
    };
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        return;
    };
    let script = Path::new(&out_dir).join("startpath.ld");
    if std::fs::write(&script, linker_script(&list)).is_ok() {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
    }
}

/// The linker script for the patterns of `list` (one a line, `#` comments), in their order.
fn linker_script(list: &str) -> String {
    let mut script = String::from("SECTIONS\n{\n  .text.startpath : {\n");
    for pattern in list.lines().map(str::trim) {
        // Mangled names are letters, digits, `_`, `$` and `.`; anything else is not one.
        let plain = pattern
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_$.*".contains(&b));
        if !pattern.is_empty() && plain {
            script.push_str("    *(.text.");
            script.push_str(pattern);
            script.push_str(")\n");
        }
    }
    script.push_str("  }\n}\nINSERT BEFORE .text;\n");
    script
}
