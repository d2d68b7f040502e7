//! `cfsgate`: the command line. Arguments, output and progress only; the logic is in the crates.
#![forbid(unsafe_code)]

fn main() -> anyhow::Result<()> {
    Ok(())
}
