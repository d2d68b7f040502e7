//! Field by field: escapes, digests, numbers, missing fields, paths, hard links, the strict-only
//! checks, content/payload and xattr rules; each refusal at its line with its reason.

use super::*;

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
            digest: Some(FsVeritySha256::from_hex(digest).unwrap()),
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
