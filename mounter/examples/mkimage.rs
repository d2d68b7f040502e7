//! Build a composefs repository from a directory, for benchmarks and manual tests:
//! `mkimage SOURCE_DIR REPO_DIR` writes `REPO_DIR/objects/xx/…` and `REPO_DIR/images/<digest>`
//! and prints the image's fs-verity digest.

use std::path::PathBuf;

use cfsgate_image::erofs::writer::{write_image, WriteOptions};
use cfsgate_image::fromdir::{build_from_dir, BuildOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [source, repo] = args.as_slice() else {
        return Err("usage: mkimage SOURCE_DIR REPO_DIR".into());
    };
    let objects = repo.join("objects");
    let images = repo.join("images");
    std::fs::create_dir_all(&objects)?;
    std::fs::create_dir_all(&images)?;
    let opts = BuildOptions {
        digest_store: Some(objects),
        compute_digests: true,
        ..Default::default()
    };
    let tree = build_from_dir(source, &opts)?;
    let bytes = write_image(&tree, &WriteOptions::default())?;
    let digest = cfsgate_image::fsverity::digest_bytes(&bytes);
    std::fs::write(images.join(digest.to_hex()), &bytes)?;
    println!("{digest}");
    Ok(())
}
