//! `cfsgate pull` of zstd:chunked images (the default; `--no-partial` downloads every layer
//! whole): only the file contents the repository lacks are downloaded, by Range requests, each
//! checked against the signed table of contents before it is stored (the logic:
//! `cfsgate_oci::registry::partial_pull`, run by `run_pull` in registry.rs through the
//! registry session). Layers without a usable table are downloaded whole, with a note on
//! stderr saying so. This module prints what the pull did.
//!
//! stdout: `manifest sha256:…` and `composefs sha256:…`, as for a full pull. stderr: the notes,
//! then a summary (layers by table and whole, bytes by ranges and whole, files reused and
//! fetched). A byte bar per layer is drawn on stderr when it is a terminal.

use cfsgate_oci::registry::{DockerRef, PartialPull};
use cfsgate_oci::summary::{partial_pull_summary, pulled_lines};

/// Print what a partial pull of `docker` did: stdout the digests, stderr the notes and the
/// summary.
pub fn print_pulled(docker: &DockerRef, pulled: &PartialPull) {
    print!("{}", pulled_lines(&pulled.fetched, &pulled.import));
    for note in &pulled.partial.notes {
        eprintln!("cfsgate: {note}");
    }
    eprintln!("{}", partial_pull_summary(docker, pulled));
}
