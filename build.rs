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
//! `--symbol-ordering-file=symbol-order.txt` (lld, rustc's default linker on
//! x86_64-unknown-linux-gnu since 1.90) places the functions the hooks and `verify` run
//! together at the start of `.text`: spread over 9 MiB of code they cost a precreate ~90 page
//! faults, grouped ~20 (scripts/symbol-order regenerates the list; a stale name is skipped, so
//! a stale list only costs speed). Left out for other targets, when a linker is configured
//! (GNU ld does not know the option), and with `CFSGATE_NO_SYMBOL_ORDER=1`.

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
    let default_lld = std::env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    // A linker chosen in .cargo/config.toml or RUSTFLAGS may not be lld.
    let linker_chosen = std::env::var_os("RUSTC_LINKER").is_some()
        || std::env::var("CARGO_ENCODED_RUSTFLAGS")
            .is_ok_and(|flags| flags.contains("linker") || flags.contains("link-self-contained"));
    if default_lld && !linker_chosen && order.is_file() && !opted_out("CFSGATE_NO_SYMBOL_ORDER") {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
