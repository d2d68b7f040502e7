//! Oracle images: trees written by the independent `composefs` crate read back as the tree built
//! by hand (header version, ACL flag, large directories, referenced objects).

use super::*;

#[test]
fn oracle_image_reads_back_as_the_tree() {
    let (tree, dump) = rich_tree();
    let image = read_image(&oracle_image(&dump)).expect("valid image");
    assert_eq!(canon(&image.tree), canon(&tree));
    assert_eq!(image.composefs_version, 0);
    assert!(!image.has_acl);
    // 10 user inodes (one hard link) + 256 root whiteout stubs.
    assert_eq!(image.inode_count, 9 + 256);
    assert_eq!(image.build_time, (1000, 0));
    assert_eq!(image.tree.inodes.len(), 9);
}

#[test]
fn oracle_v1_header_version_is_reported() {
    let fs =
        dumpfile_to_validated_filesystem::<Sha256HashValue>(&rich_tree().1).expect("oracle parses");
    let image = read_image(&mkfs_erofs_versioned(&fs, FormatVersion::V1)).expect("valid image");
    assert_eq!(image.composefs_version, 1);
    assert_eq!(canon(&image.tree), canon(&rich_tree().0));
}

#[test]
fn acl_flag_is_reported() {
    let dump = "/ 0 40755 2 0 0 0 1.0 - - - system.posix_acl_access=\\x02\\x00\\x00\\x00\n";
    let image = read_image(&oracle_image(dump)).expect("valid image");
    assert!(image.has_acl);
    assert_eq!(image.tree.root().xattrs.len(), 1);
}

#[test]
fn large_directory_spanning_blocks_reads_back() {
    let mut dump = String::from("/ 0 40755 2 0 0 0 1.0 - - -\n");
    let mut names: Vec<String> = (0..600)
        .map(|i| format!("file-with-a-longish-name-{i:05}"))
        .collect();
    names.sort();
    for n in &names {
        dump.push_str(&format!("/{n} 1 100644 1 0 0 0 1.0 - x -\n"));
    }
    let image = read_image(&oracle_image(&dump)).expect("valid image");
    let root = image.tree.root().entries().unwrap();
    let got: Vec<String> = root
        .iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect();
    assert_eq!(got, names);
}

#[test]
fn referenced_objects_are_sorted_and_deduplicated() {
    let d1 = digest_bytes(b"one");
    let d2 = digest_bytes(b"two");
    let mut dump = String::from("/ 0 40755 2 0 0 0 1.0 - - -\n");
    for (name, d) in [("a", d2), ("b", d1), ("c", d2)] {
        dump.push_str(&format!(
            "/{name} 3 100644 1 0 0 0 1.0 {} - {}\n",
            d.object_path(),
            d.to_hex()
        ));
    }
    let image = read_image(&oracle_image(&dump)).expect("valid image");
    let mut want = vec![
        ObjectRef {
            backing: d1.object_path().into_bytes().into(),
            digest: Some(d1),
        },
        ObjectRef {
            backing: d2.object_path().into_bytes().into(),
            digest: Some(d2),
        },
    ];
    want.sort();
    assert_eq!(referenced_objects(&image.tree), want);
    assert_eq!(image.objects(), want);
}
