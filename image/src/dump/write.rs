//! The dump writer: prints a [`Tree`] the way `composefs-info dump` prints an image.
//!
//! Order: the root, then depth-first, each directory's entries in their (bytewise sorted)
//! order, a directory's subtree right after its own line. A hard link (an entry with
//! `hardlink: true`) is an `@` line that repeats its target inode's fields with the path of the
//! target's primary entry as PAYLOAD. Fields per line:
//!
//! | field | printed |
//! |---|---|
//! | SIZE | file size, symlink target length, `Special` size; 0 for directories |
//! | RDEV | the device number for char/block devices, else 0 |
//! | MTIME | `SEC.NSEC`, SEC signed |
//! | PAYLOAD | symlink target, external file's backing path, hard-link target, or `-` |
//! | CONTENT | non-empty inline content, or `-` (an empty file has none, as upstream) |
//! | DIGEST | external file's digest in lowercase hex, or `-` |
//! | xattrs | ` KEY=VALUE` in key order |

use std::io::{self, Write};

use super::escape::{escape_into, Escape};
use crate::tree::{Content, FileData, Inode, InodeId, Tree, S_IFBLK, S_IFCHR};

pub(super) fn write(tree: &Tree, out: impl Write) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    let mut primary_paths: Vec<Option<Vec<u8>>> = vec![None; tree.inodes.len()];
    for (id, path) in tree.bfs() {
        if let Some(slot) = primary_paths.get_mut(id.index()) {
            *slot = Some(path);
        }
    }

    let mut line = Vec::new();
    format_line(&mut line, b"/", tree.root(), None);
    out.write_all(&line)?;

    // Explicit stack (directory, next entry index, length of its path) so deep trees cannot
    // overflow the call stack. The root's path is empty here: children print as "/name".
    let mut path = Vec::new();
    let mut stack: Vec<(InodeId, usize, usize)> = vec![(InodeId::ROOT, 0, 0)];
    while let Some(frame) = stack.last_mut() {
        let (dir, next, base) = *frame;
        let entries = tree.inode(dir).entries().unwrap_or_default();
        let Some(entry) = entries.get(next) else {
            stack.pop();
            continue;
        };
        frame.1 += 1;
        path.truncate(base);
        path.push(b'/');
        path.extend_from_slice(&entry.name);
        let inode = tree.inodes.get(entry.inode.index()).ok_or_else(|| {
            invalid(format!(
                "entry {} points at missing inode {}",
                String::from_utf8_lossy(&path),
                entry.inode.0
            ))
        })?;
        line.clear();
        if entry.hardlink {
            let target = primary_paths[entry.inode.index()]
                .as_deref()
                .ok_or_else(|| {
                    invalid(format!(
                        "hard link {} points at inode {} which has no primary entry",
                        String::from_utf8_lossy(&path),
                        entry.inode.0
                    ))
                })?;
            format_line(&mut line, &path, inode, Some(target));
        } else {
            format_line(&mut line, &path, inode, None);
            if inode.entries().is_some() {
                stack.push((entry.inode, 0, path.len()));
            }
        }
        out.write_all(&line)?;
    }
    out.flush()
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// One dump line for `inode` at `path`; `link_target` makes it an `@` line.
fn format_line(line: &mut Vec<u8>, path: &[u8], inode: &Inode, link_target: Option<&[u8]>) {
    let stat = &inode.stat;
    let file_type = stat.file_type();
    let rdev = if file_type == S_IFCHR || file_type == S_IFBLK {
        stat.rdev
    } else {
        0
    };
    escape_into(line, path, Escape::Standard);
    // Writing to a Vec cannot fail.
    let _ = write!(
        line,
        " {} {}{:o} {} {} {} {} {}.{} ",
        inode.size(),
        if link_target.is_some() { "@" } else { "" },
        stat.mode,
        stat.nlink,
        stat.uid,
        stat.gid,
        rdev,
        stat.mtime_sec,
        stat.mtime_nsec
    );

    let (payload, content, digest) = match &inode.content {
        Content::Symlink(target) => (Some(&**target), None, None),
        Content::Regular(FileData::Inline(data)) => {
            (None, Some(&**data).filter(|d| !d.is_empty()), None)
        }
        Content::Regular(FileData::External {
            digest, backing, ..
        }) => (backing.as_deref(), None, digest.as_ref()),
        Content::Directory(_) | Content::Special { .. } => (None, None, None),
    };
    optional(line, link_target.or(payload));
    line.push(b' ');
    optional(line, content);
    line.push(b' ');
    match digest {
        Some(digest) => line.extend_from_slice(digest.to_hex().as_bytes()),
        None => line.push(b'-'),
    }

    let mut xattrs: Vec<_> = inode.xattrs.iter().collect();
    xattrs.sort_by(|a, b| a.key.cmp(&b.key));
    for xattr in xattrs {
        line.push(b' ');
        escape_into(line, &xattr.key, Escape::Equal);
        line.push(b'=');
        escape_into(line, &xattr.value, Escape::Equal);
    }
    line.push(b'\n');
}

fn optional(line: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(value) => escape_into(line, value, Escape::LoneDash),
        None => line.push(b'-'),
    }
}
