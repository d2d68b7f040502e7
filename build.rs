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

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CFSGATE_NO_RELR");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let opted_out = std::env::var_os("CFSGATE_NO_RELR").is_some_and(|v| !v.is_empty());
    if target_os == "linux" && target_env == "gnu" && !opted_out {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
