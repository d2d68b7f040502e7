//! composefs-dump(5) reader and writer, checked against upstream composefs's test dumps
//! (shared/conformance) and against randomly generated trees.
// Test code: a failed unwrap is a test failure with its message (clippy.toml allows it only
// inside #[test] functions, not in the helpers they share).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cfsgate_image::dump::{self, DumpError, ParseMode};
use cfsgate_image::tree::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK};
use cfsgate_image::{Content, FileData, Inode, InodeId, Sha256Digest, Stat, Tree};
use proptest::prelude::*;

/// Dumps upstream parses only without `CFS_PARSE_STRICT` (conformance README).
const LENIENT_ONLY: [&str; 3] = [
    "no-newline.dump",
    "longlink.dump",
    "honggfuzz-longlink-unterminated.dump",
];

fn conformance_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance")
        .join(kind)
}

/// Every dump file (plain or gzip) in a conformance directory, sorted by name.
fn dump_files(kind: &str) -> Vec<PathBuf> {
    let dir = conformance_dir(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("conformance data {} missing: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = file_name(path);
            name.ends_with(".dump") || name.ends_with(".dump.gz")
        })
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn read_dump(path: &Path) -> Vec<u8> {
    let mut raw = std::fs::read(path).unwrap();
    // special_v1.dump is a git symlink upstream, checked out as a file naming its target.
    let is_link = !file_name(path).ends_with(".gz") && !raw.is_empty() && raw.len() < 256;
    if is_link && !raw.contains(&b'\n') && !raw.contains(&b' ') {
        let target = path.with_file_name(String::from_utf8(raw.clone()).unwrap());
        raw = std::fs::read(target).unwrap();
    }
    if file_name(path).ends_with(".gz") {
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut text)
            .unwrap();
        text
    } else {
        raw
    }
}

fn parse_bytes(text: &[u8], mode: ParseMode) -> Result<Tree, DumpError> {
    dump::parse(text, mode)
}

fn write_bytes(tree: &Tree) -> Vec<u8> {
    let mut out = Vec::new();
    dump::write(tree, &mut out).unwrap();
    out
}

fn parse_err(text: &str, mode: ParseMode) -> DumpError {
    match parse_bytes(text.as_bytes(), mode) {
        Ok(tree) => panic!("accepted {text:?} as {tree:?}"),
        Err(e) => e,
    }
}

/// Assert `text` is refused in both modes at `line`, with a message containing `reason`.
fn assert_refused(text: &str, line: usize, reason: &str) {
    for mode in [ParseMode::Strict, ParseMode::Lenient] {
        let err = parse_err(text, mode);
        assert_eq!(err.line, line, "{mode:?}: {err}");
        assert!(
            err.message.contains(reason),
            "{mode:?}: expected {reason:?} in {err}"
        );
        assert_eq!(err.to_string(), format!("line {line}: {}", err.message));
    }
}

/// The same tree with its inode arena renumbered in the order the dump lists inodes (depth-first,
/// sorted), dropping unreachable inodes: two trees are equal as filesystems iff their canonical
/// forms are `==`.
fn canonical(tree: &Tree) -> Tree {
    let mut order = Vec::new();
    let mut stack = vec![InodeId::ROOT];
    while let Some(id) = stack.pop() {
        order.push(id);
        if let Some(entries) = tree.inode(id).entries() {
            stack.extend(
                entries
                    .iter()
                    .rev()
                    .filter(|e| !e.hardlink)
                    .map(|e| e.inode),
            );
        }
    }
    let mut renumber = vec![None; tree.inodes.len()];
    for (new, old) in order.iter().enumerate() {
        renumber[old.index()] = Some(InodeId(new as u32));
    }
    let inodes = order
        .iter()
        .map(|old| {
            let mut inode = tree.inode(*old).clone();
            if let Content::Directory(entries) = &mut inode.content {
                for entry in entries.iter_mut() {
                    entry.inode =
                        renumber[entry.inode.index()].expect("link to an unreachable inode");
                }
            }
            inode
        })
        .collect();
    Tree { inodes }
}

const ROOT: &str = "/ 4096 40755 2 0 0 0 0.0 - - -\n";

fn with_root(lines: &str) -> String {
    format!("{ROOT}{lines}")
}

// ---- conformance dumps ----

fn conformance_inputs() -> Vec<PathBuf> {
    let mut files = dump_files("composefs");
    files.retain(|path| !file_name(path).starts_with("should-fail-"));
    files.extend(dump_files("generated"));
    files
}

#[test]
fn conformance_dumps_parse_and_round_trip() {
    let files = conformance_inputs();
    assert!(
        files.len() >= 70,
        "expected the upstream and generated dumps, found {}",
        files.len()
    );
    for path in files {
        let name = file_name(&path);
        let text = read_dump(&path);
        let mode = if LENIENT_ONLY.contains(&name.as_str()) {
            ParseMode::Lenient
        } else {
            ParseMode::Strict
        };
        let tree = parse_bytes(&text, mode).unwrap_or_else(|e| panic!("{name}: {e}"));
        let written = write_bytes(&tree);
        // What we write is always strict-clean and reads back to the same tree.
        let again = parse_bytes(&written, ParseMode::Strict)
            .unwrap_or_else(|e| panic!("{name} rewritten: {e}"));
        assert!(
            canonical(&again) == canonical(&tree),
            "{name}: tree changed after write + parse"
        );
        assert_eq!(
            write_bytes(&again),
            written,
            "{name}: writer output not stable"
        );
        // Every line of the input is an inode or a link in the tree.
        let lines = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        let entries: usize = tree
            .inodes
            .iter()
            .filter_map(|i| i.entries())
            .map(<[_]>::len)
            .sum();
        assert_eq!(lines, entries + 1, "{name}: line count vs entries");
    }
}

#[test]
fn lenient_only_dumps_are_refused_by_strict_mode() {
    for name in LENIENT_ONLY {
        let text = read_dump(&conformance_dir("composefs").join(name));
        let err = parse_bytes(&text, ParseMode::Strict).expect_err(name);
        assert!(err.line > 0, "{name}: {err}");
        let expected = match name {
            "longlink.dump" => "symlink SIZE",
            // Also lacks its final newline, but line 1 fails first.
            "no-newline.dump" => "non-zero RDEV 10 on a non-device",
            // Its last line stops after PAYLOAD.
            _ => "missing field CONTENT",
        };
        assert!(err.message.contains(expected), "{name}: {err}");
        parse_bytes(&text, ParseMode::Lenient).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn should_fail_dumps_are_refused_with_line_and_reason() {
    let expected: &[(&str, usize, &str)] = &[
        (
            "should-fail-big-inline.dump",
            2,
            "inline CONTENT of 5004 bytes exceeds the maximum of 5000",
        ),
        (
            "should-fail-dir-hardlink.dump",
            2,
            "directories cannot be hard linked",
        ),
        (
            "should-fail-dot-name.dump",
            2,
            "invalid '.' or '..' component",
        ),
        (
            "should-fail-dotdot-name.dump",
            2,
            "invalid '.' or '..' component",
        ),
        (
            "should-fail-empty-link-name.dump",
            2,
            "symlink with an empty target",
        ),
        ("should-fail-empty-name.dump", 2, "empty component in PATH"),
        ("should-fail-empty-xattr-key.dump", 2, "empty xattr key"),
        (
            "should-fail-honggfuzz-long-xattr.dump",
            1,
            "one inode may take from a dump",
        ),
        (
            "should-fail-long-link.dump",
            2,
            "longer than the maximum of 4095",
        ),
        (
            "should-fail-long-xattr-key.dump",
            2,
            "xattr key of 123216 bytes is longer than the maximum of 255",
        ),
        // Upstream refuses this one for its MODE (644 has no file type) before the xattr.
        (
            "should-fail-long-xattr-value.dump",
            2,
            "MODE 644 has no valid file type",
        ),
        (
            "should-fail-no-ftype.dump",
            2,
            "MODE 0 has no valid file type",
        ),
        ("should-fail-self-hardlink.dump", 2, "points to itself"),
        (
            "should-fail-too-big.dump",
            2,
            "larger than the maximum of 9007199254740992",
        ),
    ];
    let found: BTreeSet<String> = dump_files("composefs")
        .iter()
        .map(|p| file_name(p))
        .filter(|n| n.starts_with("should-fail-"))
        .collect();
    let listed: BTreeSet<String> = expected.iter().map(|(n, _, _)| n.to_string()).collect();
    assert_eq!(
        found, listed,
        "every should-fail asset has an expected reason"
    );
    for (name, line, reason) in expected {
        let text = read_dump(&conformance_dir("composefs").join(name));
        let err = parse_bytes(&text, ParseMode::Lenient).expect_err(name);
        assert_eq!(err.line, *line, "{name}: {err}");
        assert!(
            err.message.contains(reason),
            "{name}: expected {reason:?}, got {err}"
        );
        let strict = parse_bytes(&text, ParseMode::Strict).expect_err(name);
        assert!(strict.line > 0, "{name}: {strict}");
    }
}

#[test]
fn hard_links_share_the_target_inode_and_keep_nlink() {
    let text = read_dump(&conformance_dir("composefs").join("config-with-hard-link.dump.gz"));
    let tree = parse_bytes(&text, ParseMode::Strict).unwrap();
    let target = tree.lookup_path(b"/usr/bin/ls").unwrap();
    let bin = tree.lookup_path(b"/usr/bin").unwrap();
    let link = tree.lookup(bin, b"ls-hardlink").unwrap();
    assert!(link.hardlink);
    assert_eq!(link.inode, target);
    assert!(!tree.lookup(bin, b"ls").unwrap().hardlink);
    // The dump says nlink 2 on both lines; it is kept, not recounted.
    assert_eq!(tree.inode(target).stat.nlink, 2);
    let written = String::from_utf8(write_bytes(&tree)).unwrap();
    let link_line = written
        .lines()
        .find(|l| l.starts_with("/usr/bin/ls-hardlink "))
        .unwrap();
    let ls_line = written
        .lines()
        .find(|l| l.starts_with("/usr/bin/ls "))
        .unwrap();
    let link_fields: Vec<&str> = link_line.split(' ').collect();
    let ls_fields: Vec<&str> = ls_line.split(' ').collect();
    assert_eq!(link_fields[2], format!("@{}", ls_fields[2]));
    assert_eq!(link_fields[8], "/usr/bin/ls");
    assert_eq!(link_fields[1], ls_fields[1]);
    assert_eq!(link_fields[9..], ls_fields[9..]);
}

/// The upstream assets were printed by composefs-info: our writer prints the same lines,
/// except directory SIZE (the image's directory size, which a tree does not keep).
#[test]
fn writer_matches_upstream_printed_dumps() {
    for name in [
        "config.dump.gz",
        "config-with-hard-link.dump.gz",
        "cs9-x86_64-minimal.dump.gz",
    ] {
        let text = read_dump(&conformance_dir("composefs").join(name));
        let tree = parse_bytes(&text, ParseMode::Strict).unwrap();
        let written = write_bytes(&tree);
        let ours: Vec<&[u8]> = written.split(|&b| b == b'\n').collect();
        let theirs: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        assert_eq!(ours.len(), theirs.len(), "{name}");
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(without_dir_size(a), without_dir_size(b), "{name}");
        }
    }
}

fn without_dir_size(line: &[u8]) -> Vec<Vec<u8>> {
    let mut fields: Vec<Vec<u8>> = line.split(|&b| b == b' ').map(<[u8]>::to_vec).collect();
    if fields.len() > 2 && fields[2].starts_with(b"4") && fields[2].len() == 5 {
        fields[1] = b"DIRSIZE".to_vec();
    }
    fields
}

#[test]
fn large_dump_parses_quickly() {
    let text = read_dump(&conformance_dir("composefs").join("cs9-x86_64-minimal.dump.gz"));
    let start = Instant::now();
    let tree = parse_bytes(&text, ParseMode::Strict).unwrap();
    let elapsed = start.elapsed();
    assert!(tree.inodes.len() > 20_000);
    // A complexity guard, not a speed check: linear parsing takes about a second unoptimised;
    // a quadratic path lookup over 22k lines would take many minutes.
    assert!(elapsed.as_secs() < 120, "parsing took {elapsed:?}");
}

// ---- escapes ----

#[test]
fn escapes_in_every_field_are_decoded() {
    let text = with_root(concat!(
        "/a\\x20b\\\\c 3 100644 1 0 0 0 0.0 - \\n\\t\\x00 - user.k\\x3dx=v\\x3d\\x20w user.e=\n",
        "/dash 0 100644 1 0 0 0 0.0 \\x2d - -\n",
        "/l 1 120777 1 0 0 0 0.0 \\x2d - -\n",
    ));
    let tree = parse_bytes(text.as_bytes(), ParseMode::Strict).unwrap();
    let a = tree.inode(tree.lookup_path(b"/a b\\c").unwrap());
    assert_eq!(
        a.content,
        Content::Regular(FileData::Inline(b"\n\t\0".to_vec().into()))
    );
    assert_eq!(a.xattr(b"user.k=x"), Some(&b"v= w"[..]));
    assert_eq!(a.xattr(b"user.e"), Some(&b""[..]));
    let dash = tree.inode(tree.lookup_path(b"/dash").unwrap());
    assert_eq!(
        dash.content,
        Content::Regular(FileData::External {
            size: 0,
            digest: None,
            backing: Some(b"-".to_vec().into())
        })
    );
    let l = tree.inode(tree.lookup_path(b"/l").unwrap());
    assert_eq!(l.content, Content::Symlink(b"-".to_vec().into()));
    // The writer escapes them back the way composefs-info does.
    let written = String::from_utf8(write_bytes(&tree)).unwrap();
    assert!(written.contains(
        "/a\\x20b\\\\c 3 100644 1 0 0 0 0.0 - \\n\\t\\x00 - user.e= user.k\\x3dx=v\\x3d\\x20w\n"
    ));
    assert!(written.contains("/dash 0 100644 1 0 0 0 0.0 \\x2d - -\n"));
    assert!(written.contains("/l 1 120777 1 0 0 0 0.0 \\x2d - -\n"));
}

#[test]
fn bad_escapes_are_refused() {
    assert_refused(
        &with_root("/a\\q 0 100644 1 0 0 0 0.0 - - -\n"),
        2,
        "unsupported escape '\\q'",
    );
    assert_refused(
        &with_root("/a 0 100644 1 0 0 0 0.0 - - - user.a=\\x4\n"),
        2,
        "'\\x' escape not followed by two hex digits",
    );
    assert_refused(
        &with_root("/a 0 100644 1 0 0 0 0.0 b\\ - -\n"),
        2,
        "bad escape in PAYLOAD: no character after escape",
    );
}

// ---- field errors ----

#[test]
fn malformed_digest_is_refused() {
    assert_refused(
        &with_root("/f 10 100644 1 0 0 0 0.0 ab/cd - 0123\n"),
        2,
        "malformed DIGEST '0123'",
    );
    let not_hex = "z".repeat(64);
    assert_refused(
        &with_root(&format!("/f 10 100644 1 0 0 0 0.0 - - {not_hex}\n")),
        2,
        "malformed DIGEST",
    );
    let digest = "37061ef2ac4c21bec68489b56138c5780306a4ad7fe6676236ecdf2c9027cd92";
    let tree = parse_bytes(
        with_root(&format!("/f 12 100644 1 0 0 0 0.0 37/061e - {digest}\n")).as_bytes(),
        ParseMode::Strict,
    )
    .unwrap();
    assert_eq!(
        tree.inode(tree.lookup_path(b"/f").unwrap()).content,
        Content::Regular(FileData::External {
            size: 12,
            digest: Some(Sha256Digest::from_hex(digest).unwrap()),
            backing: Some(b"37/061e".to_vec().into()),
        })
    );
}

#[test]
fn malformed_numbers_are_refused() {
    assert_refused(
        &with_root("/f 0 100648 1 0 0 0 0.0 - - -\n"),
        2,
        "invalid MODE '100648': expected an octal number",
    );
    assert_refused(
        &with_root("/f 0 0100644x 1 0 0 0 0.0 - - -\n"),
        2,
        "invalid MODE",
    );
    assert_refused(
        &with_root("/f 0 170644 1 0 0 0 0.0 - - -\n"),
        2,
        "has no valid file type",
    );
    assert_refused(
        &with_root("/f -1 100644 1 0 0 0 0.0 - - -\n"),
        2,
        "invalid SIZE '-1'",
    );
    assert_refused(
        &with_root("/f 0 100644 1 0 x 0 0.0 - - -\n"),
        2,
        "invalid GID 'x'",
    );
    assert_refused(
        &with_root("/f 0 100644 1 0 0 1a 0.0 - - -\n"),
        2,
        "invalid RDEV '1a'",
    );
    assert_refused(
        &with_root("/f 0 100644 1 4294967296 0 0 0.0 - - -\n"),
        2,
        "UID 4294967296 does not fit in 32 bits",
    );
    assert_refused(
        &with_root("/f 0 100644 1 0 0 0 12 - - -\n"),
        2,
        "MTIME '12' is not SEC.NSEC",
    );
    assert_refused(
        &with_root("/f 0 100644 1 0 0 0 1.1000000000 - - -\n"),
        2,
        "MTIME nanoseconds 1000000000 out of range",
    );
    assert_refused(
        &with_root("/f 0 100644 1 0 0 0 +1.0 - - -\n"),
        2,
        "invalid MTIME seconds",
    );
}

#[test]
fn negative_mtime_and_large_ids_round_trip() {
    // A directory's SIZE is not kept (it is the image's business): write it as 0 here.
    let text = "/ 0 40755 2 0 0 0 0.0 - - -\n/f 0 100644 7 4294967295 65536 0 -5.999999999 - - -\n";
    let tree = parse_bytes(text.as_bytes(), ParseMode::Strict).unwrap();
    let stat = &tree.inode(tree.lookup_path(b"/f").unwrap()).stat;
    assert_eq!(
        (
            stat.mtime_sec,
            stat.mtime_nsec,
            stat.uid,
            stat.gid,
            stat.nlink
        ),
        (-5, 999_999_999, u32::MAX, 65536, 7)
    );
    assert_eq!(String::from_utf8(write_bytes(&tree)).unwrap(), text);
}

#[test]
fn missing_fields_are_refused() {
    // Strict mode wants all eleven fields; lenient mode takes missing optional ones as absent.
    let short = with_root("/f 0 100644 1 0 0 0 0.0 - -\n");
    let err = parse_err(&short, ParseMode::Strict);
    assert_eq!(
        (err.line, err.message.as_str()),
        (2, "'/f': missing field DIGEST")
    );
    let tree = parse_bytes(
        with_root("/f 0 100644 1 0 0 0 0.0\n").as_bytes(),
        ParseMode::Lenient,
    )
    .unwrap();
    let external = FileData::External {
        size: 0,
        digest: None,
        backing: None,
    };
    assert_eq!(tree.inodes[1].content, Content::Regular(external));
    assert_refused(
        &with_root("/f 0 100644 1 0 0 0\n"),
        2,
        "missing field MTIME",
    );
    assert_refused(&with_root("/f 0 100644\n"), 2, "missing field NLINK");
    assert_refused(&with_root("/f\n"), 2, "missing field MODE");
    assert_refused(&with_root("\n"), 2, "empty line");
    assert_refused(
        &with_root("/f 0 100644 1 0 0 0 0.0 - - - novalue\n"),
        2,
        "xattr 'novalue' has no '='",
    );
}

#[test]
fn bad_paths_are_refused() {
    assert_refused(
        &with_root("f 0 100644 1 0 0 0 0.0 - - -\n"),
        2,
        "PATH 'f' is not absolute",
    );
    assert_refused(
        &with_root("/f 0 100644 1 0 0 0 0.0 - - -\n/f 0 100644 1 0 0 0 0.0 - - -\n"),
        3,
        "duplicate path '/f'",
    );
    assert_refused(
        &with_root("/d/f 0 100644 1 0 0 0 0.0 - - -\n"),
        2,
        "parent directory '/d' of '/d/f' is missing",
    );
    assert_refused(
        &with_root("/f 0 100644 1 0 0 0 0.0 - - -\n/f/g 0 100644 1 0 0 0 0.0 - - -\n"),
        3,
        "parent '/f' of '/f/g' is not a directory",
    );
    assert_refused(
        &with_root("/. 0 100644 1 0 0 0 0.0 - - -\n"),
        2,
        "invalid '.' or '..' component",
    );
    assert_refused(
        &with_root("/a/../b 0 100644 1 0 0 0 0.0 - - -\n"),
        2,
        "invalid '.' or '..' component",
    );
    assert_refused(
        &with_root("/a//b 0 100644 1 0 0 0 0.0 - - -\n"),
        2,
        "empty component",
    );
    assert_refused(
        &with_root("/a/ 0 100644 1 0 0 0 0.0 - - -\n"),
        2,
        "empty component",
    );
    assert_refused(
        &with_root(&format!(
            "/{} 0 100644 1 0 0 0 0.0 - - -\n",
            "n".repeat(256)
        )),
        2,
        "longer than 255",
    );
    assert_refused(
        &with_root("/a\\x00b 0 100644 1 0 0 0 0.0 - - -\n"),
        2,
        "invalid file name",
    );
    assert_refused(
        "/f 0 100644 1 0 0 0 0.0 - - -\n",
        1,
        "root directory / must come first",
    );
    assert_refused(
        "/ 0 100644 1 0 0 0 0.0 - - -\n",
        1,
        "root / must be a directory",
    );
    assert_refused(&format!("{ROOT}{ROOT}"), 2, "duplicate root");
    assert_refused(
        "/ 0 100644 1 0 0\x00 0 0.0 - - -\n",
        1,
        "embedded NUL byte at column 17",
    );
    let err = parse_err("", ParseMode::Strict);
    assert!(err.message.contains("root directory / is missing"), "{err}");
}

#[test]
fn hard_link_errors() {
    assert_refused(
        &with_root("/d 0 40755 2 0 0 0 0.0 - - -\n/l 0 @100644 1 0 0 0 0.0 /d - -\n"),
        3,
        "target '/d' is a directory",
    );
    assert_refused(
        &with_root("/l 0 @100644 1 0 0 0 0.0 /l - -\n"),
        2,
        "hard link '/l' points to itself",
    );
    assert_refused(
        &with_root("/l 0 @100644 1 0 0 0 0.0 /nothere - -\n"),
        2,
        "target '/nothere' does not exist",
    );
    assert_refused(
        &with_root("/l 0 @100644 1 0 0 0 0.0 - - -\n"),
        2,
        "has no target path",
    );
    assert_refused(
        &with_root("/l 0 @40755 1 0 0 0 0.0 / - -\n"),
        2,
        "directories cannot be hard linked",
    );
    assert_refused(
        &with_root("/a 0 @100644 1 0 0 0 0.0 /b - -\n/b 0 @100644 1 0 0 0 0.0 /a - -\n"),
        2,
        "cycle of hard links",
    );
    // A link to a link resolves to the final inode; the link may come before its target.
    let text =
        with_root("/a 0 @100644 3 0 0 0 0.0 /b - -\n/b 0 @100644 3 0 0 0 0.0 /c - -\n/c 0 100644 3 0 0 0 0.0 - - -\n");
    let tree = parse_bytes(text.as_bytes(), ParseMode::Strict).unwrap();
    let c = tree.lookup_path(b"/c").unwrap();
    assert_eq!(tree.lookup(InodeId::ROOT, b"a").unwrap().inode, c);
    assert_eq!(tree.lookup(InodeId::ROOT, b"b").unwrap().inode, c);
    assert_eq!(tree.inodes.len(), 2);
}

#[test]
fn strict_only_checks() {
    let cases = [
        (
            "/f 0 100644 1 0 0 5 0.0 - - -\n",
            "non-zero RDEV 5 on a non-device",
        ),
        (
            "/l 3 120777 1 0 0 0 0.0 abcd - -\n",
            "symlink SIZE 3 differs from its target length 4",
        ),
        (
            "/l 1 120777 1 0 0 0 0.0 a a -\n",
            "symlink cannot have CONTENT",
        ),
    ];
    for (line, reason) in cases {
        let text = with_root(line);
        let err = parse_err(&text, ParseMode::Strict);
        assert_eq!(err.line, 2);
        assert!(err.message.contains(reason), "{err}");
        let tree = parse_bytes(text.as_bytes(), ParseMode::Lenient).unwrap();
        let inode = &tree.inodes[1];
        assert_eq!(inode.stat.rdev, 0);
    }
    let unterminated = format!("{ROOT}/f 0 100644 1 0 0 0 0.0 - - -");
    let err = parse_err(&unterminated, ParseMode::Strict);
    assert_eq!(
        (err.line, err.message.as_str()),
        (2, "missing trailing newline")
    );
    assert_eq!(
        parse_bytes(unterminated.as_bytes(), ParseMode::Lenient)
            .unwrap()
            .inodes
            .len(),
        2
    );
}

#[test]
fn content_and_payload_rules() {
    assert_refused(
        &with_root("/f 4 100644 1 0 0 0 0.0 - abc -\n"),
        2,
        "CONTENT is 3 bytes but SIZE is 4",
    );
    assert_refused(
        &with_root(&format!(
            "/l 4096 120777 1 0 0 0 0.0 {} - -\n",
            "a".repeat(4096)
        )),
        2,
        "PAYLOAD of 4096 bytes",
    );
    assert_refused(
        &with_root("/l 0 120777 1 0 0 0 0.0 - - -\n"),
        2,
        "symlink with an empty target",
    );
    assert_refused(
        &with_root("/f 3 100644 1 0 0 0 0.0 a\\x00b - -\n"),
        2,
        "contains a NUL byte",
    );
    // 2^53 is the largest external file; 5000 the largest inline content.
    let max = 1u64 << 53;
    parse_bytes(
        with_root(&format!("/f {max} 100644 1 0 0 0 0.0 - - -\n")).as_bytes(),
        ParseMode::Strict,
    )
    .unwrap();
    assert_refused(
        &with_root(&format!("/f {} 100644 1 0 0 0 0.0 - - -\n", max + 1)),
        2,
        "larger than the maximum",
    );
    let inline = "x".repeat(5000);
    let tree = parse_bytes(
        with_root(&format!("/f 5000 100644 1 0 0 0 0.0 - {inline} -\n")).as_bytes(),
        ParseMode::Strict,
    )
    .unwrap();
    assert_eq!(
        tree.inodes[1].content,
        Content::Regular(FileData::Inline(inline.into_bytes().into()))
    );
    // The digest of an inline file and the payload/content of a device are not kept.
    let digest = "37061ef2ac4c21bec68489b56138c5780306a4ad7fe6676236ecdf2c9027cd92";
    let text = with_root(&format!(
        "/c 1 20644 1 0 0 259 0.0 x y {digest}\n/w 0 20644 1 0 0 0 0.0 - - -\n/i 2 100644 1 0 0 0 0.0 - hi {digest}\n"
    ));
    let tree = parse_bytes(text.as_bytes(), ParseMode::Strict).unwrap();
    let c = tree.inode(tree.lookup_path(b"/c").unwrap());
    assert_eq!(
        (c.content.clone(), c.stat.rdev),
        (Content::Special { size: 1 }, 259)
    );
    let w = tree.inode(tree.lookup_path(b"/w").unwrap());
    assert_eq!(
        (w.content.clone(), w.stat.rdev, w.stat.mode),
        (Content::Special { size: 0 }, 0, S_IFCHR | 0o644)
    );
    let i = tree.inode(tree.lookup_path(b"/i").unwrap());
    assert_eq!(
        i.content,
        Content::Regular(FileData::Inline(b"hi".to_vec().into()))
    );
}

#[test]
fn xattr_rules() {
    // A repeated key replaces the earlier value, as lcfs_node_set_xattr does.
    let tree = parse_bytes(
        with_root("/f 0 100644 1 0 0 0 0.0 - - - user.a=1 user.b=2 user.a=3\n").as_bytes(),
        ParseMode::Strict,
    )
    .unwrap();
    let f = &tree.inodes[1];
    assert_eq!(f.xattrs.len(), 2);
    assert_eq!(f.xattr(b"user.a"), Some(&b"3"[..]));
    // Budget: 12 + (7 + key + value) per xattr must stay within 32767.
    let fits = "v".repeat(32767 - 12 - 7 - 6);
    parse_bytes(
        with_root(&format!("/f 0 100644 1 0 0 0 0.0 - - - user.a={fits}\n")).as_bytes(),
        ParseMode::Strict,
    )
    .unwrap();
    assert_refused(
        &with_root(&format!("/f 0 100644 1 0 0 0 0.0 - - - user.a={fits}v\n")),
        2,
        "need 32768 bytes",
    );
    assert_refused(
        &with_root("/f 0 100644 1 0 0 0 0.0 - - - a\\x00b=1\n"),
        2,
        "xattr key 'a\\x00b' contains a NUL byte",
    );
    let huge = "v".repeat(65536);
    assert_refused(
        &with_root(&format!("/f 0 100644 1 0 0 0 0.0 - - - user.a={huge}\n")),
        2,
        "value of xattr 'user.a' is 65536 bytes, longer than the maximum of 65535",
    );
    let long_key = "k".repeat(256);
    assert_refused(
        &with_root(&format!("/f 0 100644 1 0 0 0 0.0 - - - {long_key}=1\n")),
        2,
        "xattr key of 256 bytes",
    );
    assert_refused(
        &with_root("/f 0 100644 1 0 0 0 0.0 - - - user.a=1  user.b=2\n"),
        2,
        "xattr '' has no '='",
    );
}

// ---- random trees ----

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
                    digest: spec.digest.map(Sha256Digest),
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
