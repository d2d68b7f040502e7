//! Hostile images: targeted corruptions fail with the right error; truncations, random byte
//! flips and proptest mutations return (Ok or Err) quickly and never panic.

use super::*;

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn expect_err(bytes: &[u8], what: &str) -> ReadError {
    match timed_read(bytes) {
        Ok(_) => panic!("{what}: corrupted image was accepted"),
        Err(e) => e,
    }
}

/// The innermost error (under the path/nid wrappers).
fn root_cause(e: &ReadError) -> &ReadError {
    match e {
        ReadError::InInode { source, .. } => root_cause(source),
        other => other,
    }
}

const SB: usize = 1024;
const ROOT_INODE: usize = 1152;

#[test]
fn bad_magics_are_refused() {
    let good = rich_image();
    let mut b = good.clone();
    b[0] ^= 1;
    assert!(matches!(
        expect_err(&b, "composefs magic"),
        ReadError::BadComposefsMagic { .. }
    ));
    let mut b = good.clone();
    b[SB + 3] ^= 0x80;
    assert!(matches!(
        expect_err(&b, "erofs magic"),
        ReadError::BadErofsMagic { .. }
    ));
    let mut b = good.clone();
    put_u32(&mut b, 4, 2);
    assert!(matches!(
        expect_err(&b, "header version"),
        ReadError::UnsupportedHeader {
            field: "version",
            ..
        }
    ));
    let mut b = good.clone();
    put_u32(&mut b, 12, 7);
    assert!(matches!(
        expect_err(&b, "composefs_version"),
        ReadError::UnsupportedHeader {
            field: "composefs_version",
            ..
        }
    ));
    let mut b = good.clone();
    put_u32(&mut b, 8, 0x10);
    assert!(matches!(
        expect_err(&b, "flags"),
        ReadError::UnsupportedHeader { field: "flags", .. }
    ));
}

#[test]
fn bad_superblock_fields_are_refused() {
    let good = rich_image();
    let mut b = good.clone();
    b[SB + 12] = 9;
    assert!(matches!(
        expect_err(&b, "blkszbits"),
        ReadError::UnsupportedSuperblock {
            field: "blkszbits",
            ..
        }
    ));
    let mut b = good.clone();
    put_u32(&mut b, SB + 80, 0x1);
    assert!(matches!(
        expect_err(&b, "incompat"),
        ReadError::UnsupportedSuperblock {
            field: "feature_incompat",
            ..
        }
    ));
    let mut b = good.clone();
    put_u32(&mut b, SB + 36, 0xffff_ffff);
    assert!(matches!(
        expect_err(&b, "blocks"),
        ReadError::OutOfRange { .. }
    ));
    // Root nid far outside the file.
    let mut b = good.clone();
    put_u16(&mut b, SB + 14, 0xfff0);
    assert!(matches!(
        root_cause(&expect_err(&b, "root nid")),
        ReadError::OutOfRange { .. }
    ));
    // Meta block address pushing every inode outside the file.
    let mut b = good.clone();
    put_u32(&mut b, SB + 40, 0x00ff_ffff);
    assert!(matches!(
        root_cause(&expect_err(&b, "meta_blkaddr")),
        ReadError::OutOfRange { .. }
    ));
    // Inode count absurd for the file size, and merely wrong.
    let mut b = good.clone();
    put_u64(&mut b, SB + 16, u64::MAX);
    assert!(matches!(
        expect_err(&b, "inos huge"),
        ReadError::InodeCountMismatch { .. }
    ));
    let mut b = good.clone();
    put_u64(&mut b, SB + 16, 3);
    assert!(matches!(
        expect_err(&b, "inos small"),
        ReadError::LimitExceeded { .. }
    ));
}

#[test]
fn bad_root_inode_fields_are_refused() {
    let good = rich_image();
    // Compressed layout.
    let mut b = good.clone();
    put_u16(&mut b, ROOT_INODE, 1 << 1);
    assert!(matches!(
        root_cause(&expect_err(&b, "layout")),
        ReadError::BadInode { .. }
    ));
    // Unknown format bit.
    let mut b = good.clone();
    b[ROOT_INODE + 1] |= 0x80;
    assert!(matches!(
        root_cause(&expect_err(&b, "format bits")),
        ReadError::BadInode { .. }
    ));
    // Xattr count overrunning the inode and its block.
    let mut b = good.clone();
    put_u16(&mut b, ROOT_INODE + 2, 0xffff);
    expect_err(&b, "xattr icount");
    // Root becomes a regular file.
    let mut b = good.clone();
    put_u16(&mut b, ROOT_INODE + 4, (S_IFREG | 0o755) as u16);
    expect_err(&b, "root type");
    // Directory size far beyond the file.
    let mut b = good.clone();
    put_u32(&mut b, ROOT_INODE + 8, 0x7fff_ffff);
    expect_err(&b, "dir size");
    // Block address outside the file (the root directory spills into blocks: 256 stubs).
    let mut b = good.clone();
    put_u32(&mut b, ROOT_INODE + 16, 0x7fff_ffff);
    assert!(matches!(
        root_cause(&expect_err(&b, "blkaddr")),
        ReadError::OutOfRange { .. }
    ));
}

/// Byte offset of the first dirent block/tail of the directory whose `.` is `dot_nid` and
/// whose `..` is `parent_nid`: found by scanning for the two records, independent of the reader.
fn find_dir_data(img: &[u8], dot_nid: Option<u64>, parent_nid: u64) -> usize {
    let rec = |at: usize| {
        let nid = u64::from_le_bytes(img[at..at + 8].try_into().unwrap());
        let nameoff = u16::from_le_bytes([img[at + 8], img[at + 9]]) as usize;
        (nid, nameoff, img[at + 10], img[at + 11])
    };
    let mut at = 0;
    while at + 24 <= img.len() {
        let (n1, off1, t1, r1) = rec(at);
        let (n2, _, t2, r2) = rec(at + 12);
        if (t1, r1, t2, r2) == (2, 0, 2, 0)
            && off1 >= 24
            && off1 % 12 == 0
            && dot_nid.map_or(n1 != parent_nid, |d| n1 == d)
            && n2 == parent_nid
            && img.get(at + off1..at + off1 + 3) == Some(b"...")
        {
            return at;
        }
        at += 4;
    }
    panic!("directory data not found");
}

#[test]
fn directory_loops_are_refused() {
    let good = rich_image();
    // In /subdir's data ('.' = subdir, '..' = root 36), point "hardlink" at the root.
    let sub = find_dir_data(&good, None, 36);
    let count = u16::from_le_bytes([good[sub + 8], good[sub + 9]]) as usize / 12;
    let hl = (0..count)
        .map(|i| sub + i * 12)
        .find(|&r| {
            let off = u16::from_le_bytes([good[r + 8], good[r + 9]]) as usize;
            good[sub + off..].starts_with(b"hardlink")
        })
        .expect("hardlink dirent");
    let mut b = good.clone();
    put_u64(&mut b, hl, 36);
    b[hl + 10] = 2; // FT_DIR, so only the loop check can catch it
    assert!(
        matches!(
            expect_err(&b, "loop to root"),
            ReadError::DirectoryReachedTwice { .. }
        ),
        "{}",
        expect_err(&b, "x")
    );
    // '.' pointing elsewhere.
    let mut b = good.clone();
    put_u64(&mut b, sub, 36);
    expect_err(&b, "dot");
    // '..' pointing at the directory itself.
    let sub_nid = u64::from_le_bytes(good[sub..sub + 8].try_into().unwrap());
    let mut b = good.clone();
    put_u64(&mut b, sub + 12, sub_nid);
    expect_err(&b, "dotdot");
    // Root entry "subdir" aimed at its own dirent's dir twice: make "sym" point at subdir.
    let root = find_dir_data(&good, Some(36), 36);
    let n = u16::from_le_bytes([good[root + 8], good[root + 9]]) as usize / 12;
    let (mut sym_rec, mut found) = (0, false);
    for i in 0..n {
        let r = root + i * 12;
        let off = u16::from_le_bytes([good[r + 8], good[r + 9]]) as usize;
        let end = if i + 1 < n {
            u16::from_le_bytes([good[r + 20], good[r + 21]]) as usize
        } else {
            off + 3
        };
        if &good[root + off..root + end] == b"sym" {
            (sym_rec, found) = (r, true);
        }
    }
    // The root's entries may span a block and a tail; "sym" sorts last so it is in the tail.
    if found {
        let mut b = good.clone();
        put_u64(&mut b, sym_rec, sub_nid);
        b[sym_rec + 10] = 2;
        assert!(matches!(
            expect_err(&b, "dir twice"),
            ReadError::DirectoryReachedTwice { .. }
        ));
    }
}

#[test]
fn bad_names_and_nameoffs_are_refused() {
    let good = rich_image();
    let pos = good
        .windows(6)
        .position(|w| w == b"subdir")
        .expect("name in image");
    for (name, what) in [
        (&b"sub/ir"[..], "slash"),
        (b"aubdir", "order"),
        (b"sub\0ir", "nul"),
    ] {
        let mut b = good.clone();
        b[pos..pos + 6].copy_from_slice(name);
        expect_err(&b, what);
    }
    let sub = find_dir_data(&good, None, 36);
    // First nameoff not a multiple of 12, zero, beyond the chunk; a later one going backwards.
    for v in [13u16, 0, 0xfff0] {
        let mut b = good.clone();
        put_u16(&mut b, sub + 8, v);
        assert!(matches!(
            root_cause(&expect_err(&b, "nameoff")),
            ReadError::BadDirent { .. }
        ));
    }
    let mut b = good.clone();
    put_u16(&mut b, sub + 20, 1);
    expect_err(&b, "nameoff backwards");
    // A dirent nid outside the file.
    let mut b = good.clone();
    put_u64(&mut b, sub + 24, u64::MAX / 2);
    expect_err(&b, "nid out of range");
    // File type not matching the inode.
    let mut b = good.clone();
    b[sub + 24 + 10] = 6;
    expect_err(&b, "file type");
}

#[test]
fn truncation_at_every_512_byte_boundary_is_refused() {
    let good = rich_image();
    assert_eq!(good.len() % 4096, 0);
    for len in (0..good.len()).step_by(512) {
        expect_err(&good[..len], &format!("truncated to {len}"));
    }
    timed_read(&good).expect("the untruncated image reads");
}

/// xorshift64*: a tiny deterministic generator, so failures are reproducible by seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_byte_flips_never_panic_or_hang() {
    let good = rich_image();
    // Corruptions concentrated in the metadata (first 64 KiB holds everything but big blocks).
    let meta_len = good.len().min(1 << 16);
    let (mut ok, mut err) = (0, 0);
    for seed in 1..=3000u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut b = good.clone();
        let flips = 1 + rng.next() % 8;
        for _ in 0..flips {
            let at = (rng.next() % meta_len as u64) as usize;
            b[at] ^= 1 << (rng.next() % 8);
        }
        match timed_read(&b) {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                err += 1;
            }
        }
    }
    // Most flips land in padding, data or names and still read; many must be caught.
    assert!(
        err > 100,
        "only {err} of {} corruptions were refused",
        ok + err
    );
}

#[test]
fn hostile_field_values_in_every_inode_slot_never_panic() {
    let good = rich_image();
    let end = good.len().min(1 << 16);
    let nasty: [u64; 6] = [0, 1, 0xff, 0xffff, 0xffff_ffff, u64::MAX];
    for at in (ROOT_INODE..end).step_by(4) {
        for v in nasty {
            let mut b = good.clone();
            let n = 8.min(b.len() - at);
            b[at..at + n].copy_from_slice(&v.to_le_bytes()[..n]);
            let _ = timed_read(&b);
        }
    }
}

mod fuzz {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
        #[test]
        fn mutated_images_never_panic(
            edits in proptest::collection::vec((0usize..1 << 16, any::<u8>()), 1..16),
            cut in proptest::option::of(0usize..1 << 17),
        ) {
            let mut b = super::rich_image();
            for (at, v) in edits {
                let len = b.len();
                b[at % len] = v;
            }
            if let Some(cut) = cut {
                b.truncate(cut.min(b.len()));
            }
            let _ = super::timed_read(&b);
        }
    }
}

/// Keep `FsVeritySha256` in the public surface the tests rely on.
#[allow(dead_code)]
fn _digest_type(d: FsVeritySha256) -> Option<FsVeritySha256> {
    Some(d)
}

/// Compact inode records of regular 0644 files of `size` bytes: byte offsets, found by scanning
/// the inode slots (independent of the reader).
fn find_file_inodes(img: &[u8], size: u32) -> Vec<usize> {
    (1152..img.len().min(1 << 16) - 32)
        .step_by(32)
        .filter(|&at| {
            let mode = u16::from_le_bytes([img[at + 4], img[at + 5]]);
            let sz = u32::from_le_bytes(img[at + 8..at + 12].try_into().unwrap());
            img[at] & 1 == 0 && u32::from(mode) == S_IFREG | 0o644 && sz == size
        })
        .collect()
}

#[test]
fn overlapping_data_blocks_are_refused() {
    // Two files of 5000 bytes: one data block plus an inline tail each.
    let mut tree = Tree::new(stat(S_IFDIR | 0o755, 2, 0, 0, 1));
    for (name, byte) in [(&b"a"[..], b'a'), (b"b", b'b')] {
        let data = vec![byte; 5000];
        tree.add(
            InodeId::ROOT,
            name,
            inode(
                stat(S_IFREG | 0o644, 1, 0, 0, 1),
                Content::Regular(FileData::Inline(data.into())),
                &[],
            ),
        )
        .unwrap();
    }
    let good = write_image(&tree, &WriteOptions::default()).expect("writer");
    assert_eq!(canon(&read_image(&good).expect("valid").tree), canon(&tree));
    let files = find_file_inodes(&good, 5000);
    assert_eq!(files.len(), 2, "both file inodes found");
    // Point b's data block at a's: the same bytes would be decoded twice.
    let mut b = good.clone();
    let a_blk = u32::from_le_bytes(good[files[0] + 16..files[0] + 20].try_into().unwrap());
    put_u32(&mut b, files[1] + 16, a_blk);
    assert!(matches!(
        expect_err(&b, "shared data block"),
        ReadError::Overlap { .. }
    ));
    // Point b's data at the inode area.
    let mut b = good.clone();
    put_u32(&mut b, files[1] + 16, 0);
    assert!(matches!(
        expect_err(&b, "data over inodes"),
        ReadError::Overlap { .. }
    ));
}

#[test]
fn deep_trees_read_without_recursion() {
    // 3000 nested directories: a recursive reader would need thousands of stack frames.
    let mut tree = Tree::new(stat(S_IFDIR | 0o755, 3, 0, 0, 1));
    let mut dir = InodeId::ROOT;
    for _ in 0..3000 {
        dir = tree
            .add(
                dir,
                b"d",
                inode(
                    stat(S_IFDIR | 0o755, 3, 0, 0, 1),
                    Content::Directory(Vec::new()),
                    &[],
                ),
            )
            .unwrap();
    }
    tree.add(
        dir,
        b"leaf",
        inode(
            stat(S_IFREG | 0o644, 1, 0, 0, 1),
            Content::Regular(FileData::Inline((*b"x").into())),
            &[],
        ),
    )
    .unwrap();
    let bytes = write_image(&tree, &WriteOptions::default()).expect("writer");
    let image = timed_read(&bytes).expect("deep tree reads");
    assert_eq!(
        canon_ignoring_primaries(&image.tree),
        canon_ignoring_primaries(&as_stored(&tree))
    );
}
