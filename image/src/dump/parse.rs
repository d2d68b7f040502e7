//! The dump reader: one line at a time into a [`Tree`], hard links resolved at the end.
//!
//! Paths are looked up in a map from full path to inode (or pending hard link), so parsing is
//! linear in the size of the dump. The checks and their order follow `mkcomposefs
//! --from-file`, so the first error reported for a line is the one upstream reports; the
//! limits it applies only when writing the image (file size, xattr budget) are checked here too.

use std::collections::HashMap;
use std::io::BufRead;

use super::escape::{escape_into, unescape, unescape_optional, Escape, UnescapeError};
use super::limits::{
    FIXED_FIELDS, MAX_EXTERNAL_FILE_SIZE, MAX_INLINE_CONTENT, MAX_INODE_XATTR_BUDGET,
    MAX_PAYLOAD_LEN, XATTR_ENTRY_CHARGE, XATTR_HEADER_CHARGE,
};
use super::{DumpError, ParseMode};
use crate::fsverity::FsVeritySha256;
use crate::tree::{
    valid_name, Content, FileData, Inode, InodeId, Stat, Tree, Xattr, MAX_NAME_LEN,
    MAX_XATTR_KEY_LEN, MAX_XATTR_VALUE_LEN, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT,
    S_IFREG, S_IFSOCK,
};

/// Field names, in line order, for error messages.
const FIELD_NAMES: [&str; FIXED_FIELDS] = [
    "PATH", "SIZE", "MODE", "NLINK", "UID", "GID", "RDEV", "MTIME", "PAYLOAD", "CONTENT", "DIGEST",
];
const PATH: usize = 0;
const SIZE: usize = 1;
const MODE: usize = 2;
const NLINK: usize = 3;
const UID: usize = 4;
const GID: usize = 5;
const RDEV: usize = 6;
const MTIME: usize = 7;
const PAYLOAD: usize = 8;
const CONTENT: usize = 9;
const DIGEST: usize = 10;

/// Nanoseconds per second: MTIME's NSEC must be below it.
const NSEC_PER_SEC: u64 = 1_000_000_000;
/// Longest path or value quoted in an error message.
const MAX_QUOTED_LEN: usize = 200;

/// What a path names while parsing.
#[derive(Clone, Copy)]
enum Slot {
    Inode(InodeId),
    /// Index into the pending hard links.
    Link(usize),
}

/// An `@` line, resolved once the whole dump is read.
struct PendingLink {
    line: usize,
    dir: InodeId,
    name: Box<[u8]>,
    path: Box<[u8]>,
    target: Vec<u8>,
}

/// Where a new line's entry goes.
enum Place {
    Root,
    Child { dir: InodeId, name: Box<[u8]> },
}

/// The fixed fields of one line (`None`: the line ended before it) and the xattr text.
struct Fields<'a> {
    fixed: [Option<&'a [u8]>; FIXED_FIELDS],
    xattrs: &'a [u8],
    /// Lenient mode takes missing optional fields (a line cut short) as absent, as upstream
    /// does (it reads them as empty strings); strict mode refuses them.
    missing_optional_is_absent: bool,
}

impl<'a> Fields<'a> {
    /// Split like mkcomposefs: at single spaces, the rest after DIGEST being the xattrs.
    fn split(line: &'a [u8], mode: ParseMode) -> Self {
        let mut fixed = [None; FIXED_FIELDS];
        let mut rest = Some(line);
        for slot in fixed.iter_mut() {
            let Some(text) = rest else { break };
            match text.iter().position(|&b| b == b' ') {
                Some(space) => {
                    *slot = Some(&text[..space]);
                    rest = Some(&text[space + 1..]);
                }
                None => {
                    *slot = Some(text);
                    rest = None;
                }
            }
        }
        Fields {
            fixed,
            xattrs: rest.unwrap_or_default(),
            missing_optional_is_absent: mode == ParseMode::Lenient,
        }
    }

    fn get(&self, index: usize) -> Result<&'a [u8], String> {
        self.fixed[index].ok_or_else(|| format!("missing field {}", FIELD_NAMES[index]))
    }

    fn unescaped(&self, index: usize) -> Result<Vec<u8>, String> {
        unescape(self.get(index)?).map_err(|e| bad_escape(FIELD_NAMES[index], e))
    }

    fn optional(&self, index: usize) -> Result<Option<Vec<u8>>, String> {
        if self.fixed[index].is_none() && self.missing_optional_is_absent {
            return Ok(None);
        }
        unescape_optional(self.get(index)?).map_err(|e| bad_escape(FIELD_NAMES[index], e))
    }

    fn number(&self, index: usize, radix: u32) -> Result<u64, String> {
        parse_number(self.get(index)?, radix, FIELD_NAMES[index])
    }

    fn number_u32(&self, index: usize) -> Result<u32, String> {
        let value = self.number(index, 10)?;
        u32::try_from(value)
            .map_err(|_| format!("{} {value} does not fit in 32 bits", FIELD_NAMES[index]))
    }
}

struct Parser {
    mode: ParseMode,
    tree: Option<Tree>,
    paths: HashMap<Box<[u8]>, Slot>,
    links: Vec<PendingLink>,
}

pub(super) fn parse(mut input: impl BufRead, mode: ParseMode) -> Result<Tree, DumpError> {
    let mut parser = Parser {
        mode,
        tree: None,
        paths: HashMap::new(),
        links: Vec::new(),
    };
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        let read = input.read_until(b'\n', &mut buf).map_err(|e| DumpError {
            line: line_no + 1,
            message: format!("cannot read the dump: {e}"),
        })?;
        if read == 0 {
            break;
        }
        line_no += 1;
        let line = match buf.strip_suffix(b"\n") {
            Some(line) => line,
            None if mode == ParseMode::Strict => {
                return Err(DumpError {
                    line: line_no,
                    message: "missing trailing newline".into(),
                });
            }
            None => &buf[..],
        };
        parser.line(line, line_no).map_err(|message| DumpError {
            line: line_no,
            message,
        })?;
    }
    parser.finish()
}

impl Parser {
    fn line(&mut self, line: &[u8], line_no: usize) -> Result<(), String> {
        if line.is_empty() {
            return Err("empty line".into());
        }
        if let Some(pos) = line.iter().position(|&b| b == 0) {
            return Err(format!("embedded NUL byte at column {}", pos + 1));
        }
        let fields = Fields::split(line, self.mode);
        let path = fields.unescaped(PATH)?;
        let (is_link, mode) = parse_mode(fields.get(MODE)?)?;
        let place = self.place(&path, mode, is_link)?;
        if is_link {
            return self.hard_link(&fields, place, path, line_no);
        }
        let inode = self
            .inode(&fields, mode)
            .map_err(|e| format!("{}: {e}", quote(&path)))?;
        match place {
            Place::Root => {
                let mut tree = Tree::new(inode.stat);
                tree.inodes[InodeId::ROOT.index()].xattrs = inode.xattrs;
                self.tree = Some(tree);
                self.paths.insert(path.into(), Slot::Inode(InodeId::ROOT));
            }
            Place::Child { dir, name } => {
                let tree = self.tree.as_mut().ok_or("root directory missing")?;
                let id = tree
                    .add(dir, &name, inode)
                    .map_err(|e| format!("cannot add {}: {e}", quote(&path)))?;
                self.paths.insert(path.into(), Slot::Inode(id));
            }
        }
        Ok(())
    }

    /// Check PATH and find the directory it goes in, as mkcomposefs does before reading the
    /// other fields.
    fn place(&self, path: &[u8], mode: u32, is_link: bool) -> Result<Place, String> {
        let is_dir = mode & S_IFMT == S_IFDIR;
        if path.is_empty() {
            return Err("empty PATH".into());
        }
        if path[0] != b'/' {
            return Err(format!("PATH {} is not absolute", quote(path)));
        }
        if path == b"/" {
            if self.tree.is_some() {
                return Err("duplicate root directory /".into());
            }
            if !is_dir {
                return Err(format!("root / must be a directory, MODE is {mode:o}"));
            }
            if is_link {
                return Err("root / cannot be a hard link".into());
            }
            return Ok(Place::Root);
        }
        let Some(tree) = &self.tree else {
            return Err(format!(
                "root directory / must come first, found {}",
                quote(path)
            ));
        };
        let relative = &path[1..];
        for component in relative.split(|&b| b == b'/') {
            if component.is_empty() {
                return Err(format!("empty component in PATH {}", quote(path)));
            }
            if component == b"." || component == b".." {
                return Err(format!(
                    "invalid '.' or '..' component in PATH {}",
                    quote(path)
                ));
            }
            if component.len() > MAX_NAME_LEN {
                return Err(format!(
                    "name of {} bytes in PATH {} is longer than {MAX_NAME_LEN}",
                    component.len(),
                    quote(path)
                ));
            }
        }
        let (parent, name) = match relative.iter().rposition(|&b| b == b'/') {
            Some(slash) => (&path[..slash + 1], &relative[slash + 1..]),
            None => (&b"/"[..], relative),
        };
        if !valid_name(name) {
            return Err(format!("invalid file name in PATH {}", quote(path)));
        }
        let dir = match self.paths.get(parent) {
            None => {
                return Err(format!(
                    "parent directory {} of {} is missing",
                    quote(parent),
                    quote(path)
                ))
            }
            Some(Slot::Link(_)) => {
                return Err(format!(
                    "parent {} of {} is a hard link, not a directory",
                    quote(parent),
                    quote(path)
                ))
            }
            Some(Slot::Inode(id)) if tree.inode(*id).entries().is_none() => {
                return Err(format!(
                    "parent {} of {} is not a directory",
                    quote(parent),
                    quote(path)
                ))
            }
            Some(Slot::Inode(id)) => *id,
        };
        if self.paths.contains_key(path) {
            return Err(format!("duplicate path {}", quote(path)));
        }
        Ok(Place::Child {
            dir,
            name: name.into(),
        })
    }

    /// An `@` line: only PATH and PAYLOAD (the target) matter, as in mkcomposefs.
    fn hard_link(
        &mut self,
        fields: &Fields<'_>,
        place: Place,
        path: Vec<u8>,
        line: usize,
    ) -> Result<(), String> {
        let Place::Child { dir, name } = place else {
            return Err("root / cannot be a hard link".into());
        };
        let mode = parse_mode(fields.get(MODE)?)?.1;
        if mode & S_IFMT == S_IFDIR {
            return Err(format!(
                "directories cannot be hard linked: {}",
                quote(&path)
            ));
        }
        let Some(target) = fields.optional(PAYLOAD)? else {
            return Err(format!(
                "hard link {} has no target path in PAYLOAD",
                quote(&path)
            ));
        };
        let index = self.links.len();
        self.paths.insert(path.clone().into(), Slot::Link(index));
        self.links.push(PendingLink {
            line,
            dir,
            name,
            path: path.into(),
            target,
        });
        Ok(())
    }

    /// Read every field of a non-link line into an inode.
    fn inode(&self, fields: &Fields<'_>, mode: u32) -> Result<Inode, String> {
        let strict = self.mode == ParseMode::Strict;
        let size = fields.number(SIZE, 10)?;
        let nlink = fields.number_u32(NLINK)?;
        let uid = fields.number_u32(UID)?;
        let gid = fields.number_u32(GID)?;
        let rdev = fields.number(RDEV, 10)?;
        let (mtime_sec, mtime_nsec) = parse_mtime(fields.get(MTIME)?)?;
        let payload = fields.optional(PAYLOAD)?;
        let content = fields.optional(CONTENT)?;
        if let Some(content) = &content {
            if content.len() as u64 != size {
                return Err(format!(
                    "CONTENT is {} bytes but SIZE is {size}",
                    content.len()
                ));
            }
        }

        let file_type = mode & S_IFMT;
        let is_device = file_type == S_IFCHR || file_type == S_IFBLK;
        if !is_device && rdev != 0 && strict {
            return Err(format!("non-zero RDEV {rdev} on a non-device"));
        }
        let symlink_target = if file_type == S_IFLNK {
            Some(symlink_target(
                payload.as_deref(),
                size,
                content.as_deref(),
                strict,
            )?)
        } else {
            if let Some(payload) = &payload {
                check_payload(payload)?;
            }
            if let Some(content) = &content {
                if content.len() > MAX_INLINE_CONTENT {
                    return Err(format!(
                        "inline CONTENT of {} bytes exceeds the maximum of {MAX_INLINE_CONTENT}",
                        content.len()
                    ));
                }
            }
            None
        };
        let digest = match fields.optional(DIGEST)? {
            None => None,
            Some(text) => Some(parse_digest(&text)?),
        };

        let content = match (file_type, symlink_target) {
            (_, Some(target)) => Content::Symlink(target.into()),
            (S_IFDIR, _) => Content::Directory(Vec::new()),
            (S_IFREG, _) => match content {
                // Empty CONTENT is no content, as in mkcomposefs (lcfs_node_set_content).
                Some(content) if !content.is_empty() => {
                    Content::Regular(FileData::Inline(content.into()))
                }
                _ => {
                    if size > MAX_EXTERNAL_FILE_SIZE {
                        return Err(format!("file of {size} bytes is larger than the maximum of {MAX_EXTERNAL_FILE_SIZE} (2^53)"
                        ));
                    }
                    Content::Regular(FileData::External {
                        size,
                        digest,
                        backing: payload.map(Into::into),
                    })
                }
            },
            _ => Content::Special { size },
        };
        let stat = Stat {
            mode,
            nlink,
            uid,
            gid,
            rdev: if is_device { rdev } else { 0 },
            mtime_sec,
            mtime_nsec,
        };
        let xattrs = parse_xattrs(fields.xattrs)?;
        Ok(Inode {
            stat,
            xattrs,
            content,
        })
    }

    /// Resolve the hard links now that every path is known.
    fn finish(self) -> Result<Tree, DumpError> {
        let Some(mut tree) = self.tree else {
            return Err(DumpError {
                line: 0,
                message: "empty dump: the root directory / is missing".into(),
            });
        };
        for (index, link) in self.links.iter().enumerate() {
            let fail = |message: String| DumpError {
                line: link.line,
                message,
            };
            // Follow chains of links to links; more steps than links means a cycle.
            let mut current = index;
            let mut steps = 0;
            let target = loop {
                let pending = &self.links[current];
                match self.paths.get(&*normalize_target(&pending.target)) {
                    None => {
                        return Err(fail(format!(
                            "hard link {}: target {} does not exist",
                            quote(&link.path),
                            quote(&pending.target)
                        )))
                    }
                    Some(Slot::Inode(id)) => break *id,
                    Some(Slot::Link(next)) if *next == index && current == index => {
                        return Err(fail(format!(
                            "hard link {} points to itself",
                            quote(&link.path)
                        )))
                    }
                    Some(Slot::Link(next)) => {
                        steps += 1;
                        if *next == current || steps > self.links.len() {
                            return Err(fail(format!(
                                "hard link {} leads into a cycle of hard links",
                                quote(&link.path)
                            )));
                        }
                        current = *next;
                    }
                }
            };
            if tree.inode(target).entries().is_some() {
                return Err(fail(format!(
                    "hard link {}: target {} is a directory",
                    quote(&link.path),
                    quote(&link.target)
                )));
            }
            tree.link(link.dir, &link.name, target, true)
                .map_err(|e| fail(format!("cannot add hard link {}: {e}", quote(&link.path))))?;
        }
        Ok(tree)
    }
}

/// `[@]OCTAL` with a known file type.
fn parse_mode(field: &[u8]) -> Result<(bool, u32), String> {
    let (is_link, digits) = match field.strip_prefix(b"@") {
        Some(digits) => (true, digits),
        None => (false, field),
    };
    let value = parse_number(digits, 8, "MODE")?;
    let mode =
        u32::try_from(value).map_err(|_| format!("MODE {value:o} does not fit in 32 bits"))?;
    match mode & S_IFMT {
        S_IFREG | S_IFDIR | S_IFLNK | S_IFBLK | S_IFCHR | S_IFSOCK | S_IFIFO => Ok((is_link, mode)),
        _ => Err(format!("MODE {mode:o} has no valid file type")),
    }
}

/// Digits only (no sign, no spaces), in `radix`, fitting in 64 bits.
fn parse_number(text: &[u8], radix: u32, name: &str) -> Result<u64, String> {
    let invalid = || {
        let kind = if radix == 8 { "an octal" } else { "a decimal" };
        format!("invalid {name} {}: expected {kind} number", quote(text))
    };
    if text.is_empty() {
        return Err(invalid());
    }
    let mut value: u64 = 0;
    for &b in text {
        let digit = char::from(b).to_digit(radix).ok_or_else(invalid)?;
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or_else(|| format!("{name} {} does not fit in 64 bits", quote(text)))?;
    }
    Ok(value)
}

/// `SEC.NSEC`; SEC may be negative (upstream prints it signed).
fn parse_mtime(text: &[u8]) -> Result<(i64, u32), String> {
    let Some(dot) = text.iter().position(|&b| b == b'.') else {
        return Err(format!("MTIME {} is not SEC.NSEC", quote(text)));
    };
    let (sec_text, nsec_text) = (&text[..dot], &text[dot + 1..]);
    let sec = match sec_text.strip_prefix(b"-") {
        Some(digits) => {
            let magnitude = parse_number(digits, 10, "MTIME seconds")?;
            0i64.checked_sub_unsigned(magnitude)
        }
        None => i64::try_from(parse_number(sec_text, 10, "MTIME seconds")?).ok(),
    }
    .ok_or_else(|| format!("MTIME seconds {} out of range", quote(sec_text)))?;
    let nsec = parse_number(nsec_text, 10, "MTIME nanoseconds")?;
    if nsec >= NSEC_PER_SEC {
        return Err(format!(
            "MTIME nanoseconds {nsec} out of range (must be below 10^9)"
        ));
    }
    // nsec < 10^9 fits in 32 bits.
    Ok((sec, nsec as u32))
}

/// The symlink target with mkcomposefs's checks (size and content only in strict mode).
fn symlink_target(
    payload: Option<&[u8]>,
    size: u64,
    content: Option<&[u8]>,
    strict: bool,
) -> Result<Vec<u8>, String> {
    let target = match payload {
        Some(target) if !target.is_empty() => target,
        _ => return Err("symlink with an empty target (PAYLOAD)".into()),
    };
    check_payload(target)?;
    if strict && size != target.len() as u64 {
        return Err(format!(
            "symlink SIZE {size} differs from its target length {}",
            target.len()
        ));
    }
    if strict && content.is_some_and(|c| !c.is_empty()) {
        return Err("symlink cannot have CONTENT".into());
    }
    Ok(target.to_vec())
}

/// PAYLOAD must fit a PATH_MAX buffer and, being a C string upstream, hold no NUL.
fn check_payload(payload: &[u8]) -> Result<(), String> {
    if payload.is_empty() {
        return Err("empty PAYLOAD (write '-' for none)".into());
    }
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(format!(
            "PAYLOAD of {} bytes is longer than the maximum of {MAX_PAYLOAD_LEN}",
            payload.len()
        ));
    }
    if payload.contains(&0) {
        return Err(format!("PAYLOAD {} contains a NUL byte", quote(payload)));
    }
    Ok(())
}

fn parse_digest(text: &[u8]) -> Result<FsVeritySha256, String> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|text| FsVeritySha256::from_hex(text).ok())
        .ok_or_else(|| format!("malformed DIGEST {}: expected 64 hex digits", quote(text)))
}

/// `KEY=VALUE` items separated by single spaces; a repeated key replaces the earlier value.
fn parse_xattrs(mut text: &[u8]) -> Result<Vec<Xattr>, String> {
    let mut xattrs: Vec<Xattr> = Vec::new();
    // Sum over the current xattrs of XATTR_ENTRY_CHARGE + key + value, as mkcomposefs counts.
    let mut charged = 0usize;
    while !text.is_empty() {
        let item = match text.iter().position(|&b| b == b' ') {
            Some(space) => {
                let item = &text[..space];
                text = &text[space + 1..];
                item
            }
            None => std::mem::take(&mut text),
        };
        let Some(eq) = item.iter().position(|&b| b == b'=') else {
            return Err(format!("xattr {} has no '='", quote(item)));
        };
        let key = unescape(&item[..eq]).map_err(|e| bad_escape("xattr key", e))?;
        let value = unescape(&item[eq + 1..]).map_err(|e| bad_escape("xattr value", e))?;
        if key.is_empty() {
            return Err("empty xattr key".into());
        }
        if key.len() > MAX_XATTR_KEY_LEN {
            return Err(format!(
                "xattr key of {} bytes is longer than the maximum of {MAX_XATTR_KEY_LEN}",
                key.len()
            ));
        }
        if key.contains(&0) {
            return Err(format!("xattr key {} contains a NUL byte", quote(&key)));
        }
        if value.len() > MAX_XATTR_VALUE_LEN {
            return Err(format!(
                "value of xattr {} is {} bytes, longer than the maximum of {MAX_XATTR_VALUE_LEN}",
                quote(&key),
                value.len()
            ));
        }
        let position = xattrs.binary_search_by(|x| (*x.key).cmp(&key));
        if let Ok(existing) = position {
            let old = xattrs.remove(existing);
            charged -= XATTR_ENTRY_CHARGE + old.key.len() + old.value.len();
        }
        let entry = XATTR_ENTRY_CHARGE + key.len() + value.len();
        if XATTR_HEADER_CHARGE + charged + entry > MAX_INODE_XATTR_BUDGET {
            return Err(format!(
                "xattrs need {} bytes, more than the {MAX_INODE_XATTR_BUDGET} one inode may take from a dump",
                XATTR_HEADER_CHARGE + charged + entry
            ));
        }
        charged += entry;
        let insert_at = position.unwrap_or_else(|free| free);
        xattrs.insert(
            insert_at,
            Xattr {
                key: key.into(),
                value: value.into(),
            },
        );
    }
    Ok(xattrs)
}

/// A hard-link target as the key of the path map: `/` + non-empty components (mkcomposefs
/// skips repeated and leading slashes when it looks the target up).
fn normalize_target(target: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(target.len() + 1);
    for component in target.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        key.push(b'/');
        key.extend_from_slice(component);
    }
    if key.is_empty() {
        key.push(b'/');
    }
    key
}

fn bad_escape(what: &str, error: UnescapeError) -> String {
    format!("bad escape in {what}: {error}")
}

/// Bytes as they would appear in a dump, shortened for a message.
fn quote(bytes: &[u8]) -> String {
    let mut escaped = Vec::new();
    escape_into(&mut escaped, bytes, Escape::Standard);
    let mut text = String::from_utf8_lossy(&escaped).into_owned();
    if text.len() > MAX_QUOTED_LEN {
        text.truncate(MAX_QUOTED_LEN);
        text.push_str("...");
    }
    format!("'{text}'")
}
