//! Random trees (proptest): written, parsed back strictly, equal, and written again identically.

use super::*;

const FILE_TYPES: [u32; 6] = [S_IFREG, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK];

fn name_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(
            any::<u8>().prop_filter("no / or NUL", |b| *b != b'/' && *b != 0),
            1..20
        ),
        "[a-z-]{1,8}".prop_map(String::into_bytes),
        Just(b"-".to_vec()),
    ]
    .prop_filter("valid name", |n| n != b"." && n != b"..")
}

fn xattrs_strategy() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    let key = prop_oneof![
        "(user|trusted|security)\\.[a-z=. -]{1,12}".prop_map(String::into_bytes),
        proptest::collection::vec(1u8..=255, 1..30),
    ];
    let value = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        Just(b"-".to_vec()),
        Just(b"=".to_vec())
    ];
    proptest::collection::vec((key, value), 0..4)
}

#[derive(Debug, Clone)]
struct NodeSpec {
    name: Vec<u8>,
    /// Index (mod the number of directories so far) of the parent directory.
    parent: usize,
    is_dir: bool,
    file_type: u32,
    perm: u32,
    ids: (u32, u32, u32),
    mtime: (i64, u32),
    rdev: u64,
    size: u64,
    inline: Vec<u8>,
    text: Vec<u8>,
    digest: Option<[u8; 32]>,
    choice: u8,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn node_strategy() -> impl Strategy<Value = NodeSpec> {
    (
        (
            name_strategy(),
            any::<usize>(),
            any::<bool>(),
            proptest::sample::select(FILE_TYPES.to_vec()),
            0u32..0o7777,
        ),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            -(1i64 << 40)..(1i64 << 40),
            0u32..1_000_000_000,
        ),
        (
            any::<u64>(),
            0u64..=(1 << 53),
            proptest::collection::vec(any::<u8>(), 1..300),
        ),
        (
            proptest::collection::vec(1u8..=255, 1..100),
            proptest::option::of(any::<[u8; 32]>()),
            any::<u8>(),
        ),
        xattrs_strategy(),
    )
        .prop_map(
            |(
                (name, parent, is_dir, file_type, perm),
                (nlink, uid, gid, sec, nsec),
                (rdev, size, inline),
                (text, digest, choice),
                xattrs,
            )| NodeSpec {
                name,
                parent,
                is_dir,
                file_type,
                perm,
                ids: (nlink, uid, gid),
                mtime: (sec, nsec),
                rdev,
                size,
                inline,
                text,
                digest,
                choice,
                xattrs,
            },
        )
}

fn build_tree(
    root_xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    specs: Vec<NodeSpec>,
    links: Vec<(usize, usize, Vec<u8>)>,
) -> Tree {
    let mut tree = Tree::new(Stat {
        mode: S_IFDIR | 0o755,
        nlink: 2,
        mtime_sec: 7,
        ..Stat::default()
    });
    for (key, value) in root_xattrs {
        tree.inode_mut(InodeId::ROOT).set_xattr(&key, &value);
    }
    let mut dirs = vec![InodeId::ROOT];
    let mut files = Vec::new();
    for spec in specs {
        let parent = dirs[spec.parent % dirs.len()];
        let (nlink, uid, gid) = spec.ids;
        let mut stat = Stat {
            mode: spec.perm,
            nlink,
            uid,
            gid,
            rdev: 0,
            mtime_sec: spec.mtime.0,
            mtime_nsec: spec.mtime.1,
        };
        let content = if spec.is_dir {
            stat.mode |= S_IFDIR;
            Content::Directory(Vec::new())
        } else {
            stat.mode |= spec.file_type;
            match spec.file_type {
                S_IFREG if spec.choice % 2 == 0 => {
                    Content::Regular(FileData::Inline(spec.inline.into()))
                }
                S_IFREG => Content::Regular(FileData::External {
                    size: spec.size,
                    digest: spec.digest.map(FsVeritySha256),
                    backing: (spec.choice % 3 != 0).then(|| spec.text.into()),
                }),
                S_IFLNK => Content::Symlink(spec.text.into()),
                S_IFCHR | S_IFBLK => {
                    stat.rdev = spec.rdev;
                    Content::Special {
                        size: spec.size % 3,
                    }
                }
                _ => Content::Special { size: 0 },
            }
        };
        let mut inode = Inode {
            stat,
            xattrs: Vec::new(),
            content,
        };
        for (key, value) in spec.xattrs {
            inode.set_xattr(&key, &value);
        }
        // Duplicate names are simply skipped.
        if let Ok(id) = tree.add(parent, &spec.name, inode) {
            if spec.is_dir {
                dirs.push(id);
            } else {
                files.push(id);
            }
        }
    }
    if !files.is_empty() {
        for (dir, file, name) in links {
            let _ = tree.link(
                dirs[dir % dirs.len()],
                &name,
                files[file % files.len()],
                true,
            );
        }
    }
    tree
}

fn tree_strategy() -> impl Strategy<Value = Tree> {
    (
        xattrs_strategy(),
        proptest::collection::vec(node_strategy(), 0..24),
        proptest::collection::vec((any::<usize>(), any::<usize>(), name_strategy()), 0..4),
    )
        .prop_map(|(root_xattrs, specs, links)| build_tree(root_xattrs, specs, links))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_trees_round_trip(tree in tree_strategy().prop_map(|t| canonical(&t))) {
        let written = write_bytes(&tree);
        let parsed = parse_bytes(&written, ParseMode::Strict)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&written))))?;
        prop_assert_eq!(&parsed, &tree);
        prop_assert_eq!(write_bytes(&parsed), written);
    }
}
