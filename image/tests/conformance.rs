//! Conformance with upstream mkcomposefs: every dump in `../shared/conformance` that has a
//! recorded image sha256 must produce exactly that image; reading the image back must give the
//! input tree; writing that again must give the same bytes. `should-fail-*` inputs are refused.

use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use cfsgate_image::dump::{self, ParseMode};
use cfsgate_image::erofs::reader::read_image;
use cfsgate_image::erofs::writer::{write_image, WriteOptions};
use cfsgate_image::Tree;
use sha2::{Digest, Sha256};

/// Inputs upstream reads only in its lenient mode.
const LENIENT: [&str; 3] = [
    "no-newline.dump",
    "longlink.dump",
    "honggfuzz-longlink-unterminated.dump",
];

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance")
}

fn read_input(path: &Path) -> Vec<u8> {
    let mut raw = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // Some assets are git symlinks checked out as a file holding the target's name.
    if let Ok(name) = std::str::from_utf8(&raw) {
        let target = path.with_file_name(name.trim());
        if !name.contains('\n') && !name.trim().is_empty() && target.is_file() {
            raw = fs::read(&target).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
        }
    }
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    } else {
        raw
    }
}

/// (input path, expected sha256 hex, options)
fn assets() -> Vec<(PathBuf, String, WriteOptions)> {
    let mut out = Vec::new();
    for dir in ["composefs", "generated"] {
        let mut entries: Vec<_> = fs::read_dir(shared().join(dir))
            .expect("conformance dir")
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(input) = name.strip_suffix(".sha256") else {
                continue;
            };
            let input = shared().join(dir).join(input);
            if !input.exists() {
                continue; // upstream assets shipped without their input
            }
            let expected = fs::read_to_string(e.path()).expect("sha256")[..64].to_string();
            let mut opts = WriteOptions::default();
            if let Ok(v) = fs::read_to_string(format!("{}.version", input.display())) {
                let v: u32 = v.trim().parse().expect("version");
                opts = WriteOptions {
                    min_version: v,
                    max_version: v,
                };
            }
            out.push((input, expected, opts));
        }
    }
    out
}

fn parse(path: &Path) -> Result<Tree, String> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mode = if LENIENT.contains(&&*name) {
        ParseMode::Lenient
    } else {
        ParseMode::Strict
    };
    dump::parse(BufReader::new(&read_input(path)[..]), mode)
        .map_err(|e| format!("{name}: parse: {e}"))
}

#[test]
fn images_are_byte_identical_to_mkcomposefs() {
    let assets = assets();
    assert!(
        assets.len() >= 70,
        "expected the whole corpus, found {}",
        assets.len()
    );
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
                    failures.push(format!(
                        "{}: sha256 {got}, mkcomposefs wrote {expected}",
                        input.display()
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", input.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        assets.len(),
        failures.join("\n")
    );
}

/// Normalise what a dump says but an image cannot keep: directory nlink (recomputed), sizes of
/// devices and whiteouts (written as 0), symlink size (the target length).
fn normalise(mut tree: Tree) -> Tree {
    use cfsgate_image::tree::{Content, S_IFDIR};
    let counts: Vec<u32> = tree
        .inodes
        .iter()
        .map(|i| match &i.content {
            Content::Directory(entries) => {
                2 + entries
                    .iter()
                    .filter(|e| !e.hardlink && tree.inode(e.inode).stat.file_type() == S_IFDIR)
                    .count() as u32
            }
            _ => i.stat.nlink,
        })
        .collect();
    for (inode, nlink) in tree.inodes.iter_mut().zip(counts) {
        inode.stat.nlink = nlink;
        // EROFS stores 16 mode bits; an empty file is an empty file whatever the dump said.
        inode.stat.mode &= 0xffff;
        if let Content::Regular(cfsgate_image::FileData::External { size: 0, .. }) = inode.content {
            inode.content = Content::Regular(cfsgate_image::FileData::Inline(Box::default()));
        }
        if let Content::Special { size } = &mut inode.content {
            *size = 0;
        }
    }
    tree.settle_primaries();
    tree.canonical()
}

#[test]
fn images_read_back_to_their_input_and_rewrite_identically() {
    let mut failures = Vec::new();
    let assets = assets();
    for (input, _, opts) in &assets {
        let Ok(tree) = parse(input) else { continue };
        let Ok(image) = write_image(&tree, opts) else {
            continue;
        };
        let name = input.display();
        match read_image(&image) {
            Ok(read) => {
                let expected = normalise(tree.clone());
                let mut got = read.tree.clone();
                got.settle_primaries();
                if got.canonical() != expected {
                    failures.push(format!(
                        "{name}: the tree read back differs from the input: {}",
                        first_difference(&expected, &got.canonical())
                    ));
                }
                let opts = WriteOptions {
                    min_version: read.composefs_version,
                    max_version: read.composefs_version,
                };
                match write_image(&read.tree, &opts) {
                    Ok(again) if again == image => {}
                    Ok(_) => failures.push(format!(
                        "{name}: rewriting the read-back tree gives other bytes"
                    )),
                    Err(e) => failures.push(format!("{name}: rewriting the read-back tree: {e}")),
                }
            }
            Err(e) => failures.push(format!("{name}: reading our own image: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {}:\n{}",
        failures.len(),
        assets.len(),
        failures.join("\n")
    );
}

/// The first inode (in breadth-first order) whose metadata, xattrs or content differ.
fn first_difference(a: &Tree, b: &Tree) -> String {
    let (oa, ob) = (a.bfs(), b.bfs());
    for ((ia, pa), (ib, pb)) in oa.iter().zip(&ob) {
        let (x, y) = (a.inode(*ia), b.inode(*ib));
        if pa != pb {
            return format!(
                "path {:?} vs {:?}",
                String::from_utf8_lossy(pa),
                String::from_utf8_lossy(pb)
            );
        }
        if x.stat != y.stat || x.xattrs != y.xattrs {
            return format!(
                "{}: {:?} {:?} vs {:?} {:?}",
                String::from_utf8_lossy(pa),
                x.stat,
                x.xattrs,
                y.stat,
                y.xattrs
            );
        }
        let (cx, cy) = (format!("{:?}", x.content), format!("{:?}", y.content));
        if !cx.starts_with("Directory") && cx != cy {
            return format!(
                "{}: {:.300} vs {:.300}",
                String::from_utf8_lossy(pa),
                cx,
                cy
            );
        }
    }
    for ((ia, pa), (ib, _)) in oa.iter().zip(&ob) {
        if let (Some(x), Some(y)) = (a.inode(*ia).entries(), b.inode(*ib).entries()) {
            let fx: Vec<_> = x.iter().map(|e| (&e.name, e.hardlink)).collect();
            let fy: Vec<_> = y.iter().map(|e| (&e.name, e.hardlink)).collect();
            if fx != fy {
                return format!(
                    "{}: entries {:?} vs {:?}",
                    String::from_utf8_lossy(pa),
                    fx,
                    fy
                );
            }
        }
    }
    format!("{} vs {} inodes; hard links differ", oa.len(), ob.len())
}
