//! Mount latency and userspace verification throughput of one image:
//! `mountbench REPO_DIR DIGEST MOUNTPOINT MODE ITERATIONS` (MODE: none or userspace).
//!
//! Prints tab-separated `key value` lines: per-iteration mount+unmount latency summary
//! (median, p99 = the nearest-rank 99th percentile), and for userspace mode the verification
//! phase alone (bytes hashed, seconds, MB/s).

use std::path::PathBuf;
use std::time::Instant;

use cfsgate_image::FsVeritySha256;
use cfsgate_mounter::erofs::mount_erofs;
use cfsgate_mounter::objects::{open_object_dirs, verify_objects};
use cfsgate_mounter::pinned::PinnedImage;
use cfsgate_mounter::{mount_image, unmount, MountOptions, VerityMode};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [repo, digest, target, mode, iterations] = args.as_slice() else {
        return Err("usage: mountbench REPO_DIR DIGEST MOUNTPOINT MODE ITERATIONS".into());
    };
    let repo = PathBuf::from(repo);
    let digest: FsVeritySha256 = digest.parse()?;
    let mode: VerityMode = mode.parse()?;
    let iterations: usize = iterations.parse()?;
    let image = repo.join("images").join(digest.to_hex());
    let objects = vec![repo.join("objects")];
    let target = PathBuf::from(target);

    let mut latencies = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let opts = MountOptions {
            object_dirs: objects.clone(),
            verity: Some(mode),
            ..Default::default()
        };
        let start = Instant::now();
        mount_image(&digest, &image, &target, &opts)?;
        unmount(&target)?;
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    println!("mode\t{mode}");
    println!("image_bytes\t{}", std::fs::metadata(&image)?.len());
    println!("iterations\t{iterations}");
    println!("median_ms\t{:.2}", percentile(&latencies, 50.0));
    println!("p99_ms\t{:.2}", percentile(&latencies, 99.0));

    if mode == VerityMode::Userspace {
        let pinned = PinnedImage::open(&image, &digest)?;
        let erofs = mount_erofs(&pinned)?;
        let dirs = open_object_dirs(&objects)?;
        let start = Instant::now();
        let stats = verify_objects(std::os::fd::AsFd::as_fd(&erofs.mount), &dirs)?;
        let seconds = start.elapsed().as_secs_f64();
        println!("objects\t{}", stats.objects);
        println!("bytes_hashed\t{}", stats.bytes_hashed);
        println!("verify_seconds\t{seconds:.3}");
        println!(
            "verify_mb_per_s\t{:.1}",
            stats.bytes_hashed as f64 / seconds / 1e6
        );
    }
    Ok(())
}
