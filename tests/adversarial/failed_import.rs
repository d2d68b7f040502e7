//! An import whose layer fails its diff_id check leaves nothing behind (#14 item 11): not the
//! objects a size-triggered flush already made durable, not their content index entries, no
//! temporary file and no image; objects a stored image uses stay. Measured with `du` over the
//! repository's files before and after. (Slow on a busy host: each of the batch's flushes is a
//! `syncfs` of the whole file system: 110 s at load 9 on 2 cores.)

use std::path::Path;
use std::process::Command;

use cfsgate_image::store::objects::MAX_PENDING_OBJECTS;
use serde_json::json;

use crate::common::{assert_accepted, assert_clean, assert_refused, UNEVALUABLE};
use crate::fixture::{cfsgate, require_root, Fixture};
use crate::ocibuild::{tar, LayerBlob, Layout};

/// More distinct external files than a batch keeps pending: the first
/// [`MAX_PENDING_OBJECTS`] objects are durable (flushed) before the layer ends, so the failed
/// import really has written objects (what was left behind before: the issue measured 4 GiB).
const FILES: usize = MAX_PENDING_OBJECTS + 600;

/// (bytes, inodes) of everything in `repo` that is not a directory, and its inode count,
/// as `du` counts them (directories are left out of the bytes: ext4 never shrinks one).
fn du(repo: &Path) -> (u64, u64) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"find "$1" ! -type d -print0 | du -cb --files0-from=- | tail -n1 | cut -f1; du -s --inodes "$1" | cut -f1"#)
        .arg("du")
        .arg(repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines().map(|l| l.trim().parse::<u64>().unwrap());
    (lines.next().unwrap(), lines.next().unwrap())
}

fn import(fx: &Fixture, reference: &str) -> std::process::Output {
    cfsgate(
        &["--repo", fx.repo.to_str().unwrap(), "import", reference],
        None,
    )
}

#[test]
fn a_layer_failing_its_diff_id_leaves_nothing_behind() {
    if !require_root() {
        return;
    }
    let fx = Fixture::new();
    let layout = Layout::new(&fx.path().join("oci-diffid"));
    // 100-byte files (external objects: more than the 64-byte inline limit), all distinct,
    // plus one whose content the first image also has.
    let shared = format!("{:0>100}", "shared");
    let files: Vec<(String, String)> = (0..FILES)
        .map(|i| (format!("d/f{i}"), format!("{i:0>100}")))
        .collect();
    let mut entries: Vec<(&str, u8, &[u8], &str)> = vec![("d/", b'5', b"", "")];
    entries.extend(
        files
            .iter()
            .map(|(n, c)| (n.as_str(), b'0', c.as_bytes(), "")),
    );
    entries.push(("d/shared", b'0', shared.as_bytes(), ""));
    let big = tar(&entries);
    let first = LayerBlob::tar(tar(&[
        ("etc/", b'5', b"", ""),
        ("etc/shared", b'0', shared.as_bytes(), ""),
    ]));
    let first = layout.image("amd64", &[first], json!({}));
    let mut wrong = LayerBlob::tar(big);
    wrong.diff_id = "0".repeat(64); // the blob digest is right; only the diff_id is wrong
    let wrong = layout.image("amd64", &[wrong], json!({}));
    layout.set_index(&[("first", &first), ("wrong", &wrong)]);

    assert_accepted(
        "control: the first image",
        &import(&fx, &layout.reference("first")),
    );
    let before = du(&fx.repo);
    let start = std::time::Instant::now();
    let out = import(&fx, &layout.reference("wrong"));
    eprintln!("failed import: {:.1} s", start.elapsed().as_secs_f64());
    assert_refused(
        "layer with a wrong diff_id",
        &out,
        UNEVALUABLE,
        "but the config's diff_id is sha256:0000",
    );
    let after = du(&fx.repo);
    eprintln!(
        "repository files before the failed import: {} bytes, {} inodes; after: {} bytes, {} inodes",
        before.0, before.1, after.0, after.1
    );
    assert_eq!(
        after, before,
        "the failed import left files behind (bytes, inodes)"
    );
    assert_clean("layer with a wrong diff_id", &fx);
    // The first image's objects (the shared content among them) are all there: fsck above
    // found none missing.
}
