//! Inputs found by the fuzz targets in `fuzz/` (see fuzz/RESULTS.md), minimised by hand to a
//! few dump lines. Each test states the property the fuzzer checked: whatever dump the parser
//! accepts and the writer turns into an image, the reader must accept that image and give back
//! the same tree. Refusing the input at the parser or the writer is also a correct answer.
//!
//! A test of a bug not fixed yet is `#[ignore]`d with its finding number until the fix lands.

use std::io::BufReader;

use cfsgate_image::dump::{self, ParseMode};
use cfsgate_image::erofs::reader::read_image;
use cfsgate_image::erofs::writer::{write_image, WriteOptions};
use cfsgate_image::{InodeId, Tree};

/// Parse `text` strictly and write it; `None` when the parser or the writer refuses it.
fn written(text: &str) -> Option<(Tree, Vec<u8>)> {
    let tree = dump::parse(BufReader::new(text.as_bytes()), ParseMode::Strict).ok()?;
    let image = write_image(&tree, &WriteOptions::default()).ok()?;
    Some((tree, image))
}

/// Finding 1 (fuzz target `dump_parse`): the dump parser and the writer accept an xattr key
/// that is only a namespace prefix (`user.`, empty name), and the reader then refuses the
/// image ("xattr key "user." is empty"). Linux refuses such a key too (setxattr: EINVAL).
#[test]
fn xattr_key_that_is_only_a_namespace_prefix_is_refused_or_read_back() {
    for key in ["user.", "trusted.", "security."] {
        let text = format!("/ 0 40755 2 0 0 0 0.0 - - - {key}=x\n");
        if let Some((_, image)) = written(&text) {
            let read = read_image(&image);
            assert!(
                read.is_ok(),
                "{key:?}: the writer wrote an image the reader refuses: {:?}",
                read.err()
            );
        }
    }
}

/// Finding 2 (fuzz target `erofs_read`, then reduced to a dump): a user xattr
/// `user.overlay.opaque` on a directory that holds a whiteout is overwritten by the writer's
/// own opaque marker (`x`) and then removed by the reader, so the image silently loses it.
/// The same holds for the other keys the whiteout rewrite sets (`*.overlay.whiteouts`, ...).
#[test]
fn user_xattr_named_like_a_whiteout_marker_is_refused_or_kept() {
    for (key, escaped_value) in [
        ("user.overlay.opaque", "\\x00"),
        ("user.overlay.opaque", "x"),
        ("trusted.overlay.opaque", "y"),
        ("user.overlay.whiteouts", "z"),
    ] {
        let text = format!(
            "/ 0 40755 2 0 0 0 0.0 - - -\n\
             /d 0 40755 2 0 0 0 0.0 - - - {key}={escaped_value}\n\
             /d/wh 0 20000 1 0 0 0 0.0 - - -\n"
        );
        let Some((tree, image)) = written(&text) else {
            continue;
        };
        let read = read_image(&image).expect("the reader accepts what the writer wrote");
        let dir = |t: &Tree| t.lookup(InodeId::ROOT, b"d").map(|e| e.inode);
        let want = dir(&tree).map(|d| tree.inode(d).xattr(key.as_bytes()).map(<[u8]>::to_vec));
        let got =
            dir(&read.tree).map(|d| read.tree.inode(d).xattr(key.as_bytes()).map(<[u8]>::to_vec));
        assert_eq!(
            got, want,
            "{key}={escaped_value}: the xattr read back differs from the one written"
        );
    }
}

/// Control for the two tests above: the same trees without the offending xattr round-trip,
/// so a failure there is about the xattr, not the shape of the tree.
#[test]
fn whiteout_and_plain_user_xattr_round_trip() {
    let text = "/ 0 40755 2 0 0 0 0.0 - - -\n\
                /d 0 40755 2 0 0 0 0.0 - - - user.note=x\n\
                /d/wh 0 20000 1 0 0 0 0.0 - - -\n";
    let (tree, image) = written(text).expect("a plain tree with a whiteout is written");
    let read = read_image(&image).expect("and read back");
    let d = read.tree.lookup(InodeId::ROOT, b"d").expect("d").inode;
    assert_eq!(read.tree.inode(d).xattr(b"user.note"), Some(&b"x"[..]));
    let wh = read.tree.lookup(d, b"wh").expect("d/wh").inode;
    assert_eq!(read.tree.inode(wh).stat, {
        let id = tree.lookup_path(b"/d/wh").expect("/d/wh in the input");
        tree.inode(id).stat.clone()
    });
}

/// Finding 3 (fuzz target `dump_parse`, second run): a dump whose earliest mtime is before 1970
/// is written with that negative time as the superblock `build_time` (an `__le64` holding the
/// two's complement, as mkcomposefs writes it and the kernel reads it as `time64_t`), and the
/// reader then refuses the image ("unsupported EROFS superblock build_time
/// 0xfffffffffd92f4e1").
#[test]
fn pre_1970_mtime_is_refused_or_read_back() {
    let text = "/ 0 40755 2 0 0 0 -40700703.0 - - -\n";
    let Some((tree, image)) = written(text) else {
        return;
    };
    let read = read_image(&image).expect("the reader accepts what the writer wrote");
    assert_eq!(read.build_time.0, -40700703);
    assert_eq!(read.tree.root().stat.mtime_sec, tree.root().stat.mtime_sec);
}
