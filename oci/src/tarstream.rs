//! A strict, streaming tar reader for layer tarballs.
//!
//! Written here rather than taken from the `tar` crate's `Archive` so that every size read from
//! the (untrusted) stream is checked against a named limit before anything is allocated, and so
//! that unsupported features are refused instead of misread. `tar::Header` is used to decode the
//! fixed header fields.
//!
//! | header block (512 bytes) | field used |
//! |---|---|
//! | 0..100 name, 345..500 ustar prefix | path (unless a PAX `path` or GNU `L` record overrides it) |
//! | 100 mode, 108 uid, 116 gid | octal or base-256; PAX `uid`/`gid` override |
//! | 124 size | data bytes that follow, padded to 512; PAX `size` overrides |
//! | 136 mtime | seconds; PAX `mtime` (`sec[.frac]`) overrides with sub-second precision |
//! | 148 chksum | checked (unsigned or signed byte sum, as Go and GNU tar accept) |
//! | 156 typeflag | `0`/NUL/`7` file, `1` hard link, `2` symlink, `3` char, `4` block, `5` dir, `6` fifo; `x` PAX, `g` global PAX (ignored), `L`/`K` GNU long name/link; anything else is refused |
//! | 157 linkname | link target (unless PAX `linkpath` / GNU `K` overrides) |
//! | 329 devmajor, 337 devminor | device number |
//!
//! PAX records `SCHILY.xattr.NAME` become extended attributes with their raw bytes (this is how
//! Go's archive/tar, and so docker, podman, buildah and umoci, write xattrs, including binary
//! `security.capability` and `system.posix_acl_*` values). GNU sparse files are refused.
//! The archive ends at the first all-zero block or at a clean end of stream on a block boundary
//! (as Go's reader accepts); a stream that ends inside a header or inside content is an error.

use std::io::{self, Read};

/// Largest PAX extended header accepted (xattrs live here; the EROFS per-inode xattr budget is 32 KiB).
pub const MAX_PAX_HEADER_SIZE: u64 = 1 << 20;
/// Largest GNU long name / long link record accepted.
pub const MAX_LONG_NAME_SIZE: u64 = 64 << 10;
/// Longest path or link target accepted (Linux PATH_MAX).
pub const MAX_PATH_LEN: usize = 4096;
/// Largest regular file accepted: the largest file an EROFS chunk-based inode can describe.
pub const MAX_FILE_SIZE: u64 = 1 << 53;

const BLOCK: u64 = 512;

/// The kind of a tar entry that becomes (or changes) a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file (type flag `0`, NUL or `7`).
    Regular,
    /// A hard link to an earlier entry (`1`).
    HardLink,
    /// A symbolic link (`2`).
    Symlink,
    /// A character device (`3`).
    CharDevice,
    /// A block device (`4`).
    BlockDevice,
    /// A directory (`5`).
    Directory,
    /// A named pipe (`6`).
    Fifo,
}

/// One entry with all its extension records folded in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarEntry {
    /// The entry's path, PAX `path` or GNU long name applied, as raw bytes.
    pub path: Vec<u8>,
    /// The link target of a hard link or symlink (PAX `linkpath` or GNU long link applied); empty
    /// otherwise.
    pub link: Vec<u8>,
    /// What the entry is.
    pub kind: EntryKind,
    /// Permission bits only (`& 0o7777`).
    pub mode: u32,
    /// Owner user id (PAX `uid` applied).
    pub uid: u32,
    /// Owner group id (PAX `gid` applied).
    pub gid: u32,
    /// Modification time, whole seconds since the Unix epoch (PAX `mtime` applied).
    pub mtime_sec: i64,
    /// Nanoseconds of the PAX `mtime`, 0 without one.
    pub mtime_nsec: u32,
    /// Bytes of content that follow in the archive.
    pub size: u64,
    /// Major device number of a device node.
    pub dev_major: u32,
    /// Minor device number of a device node.
    pub dev_minor: u32,
    /// In the order the PAX header gave them.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A problem with the archive.
#[derive(Debug)]
pub enum TarError {
    /// Reading the stream failed (including truncated or corrupt compressed data).
    Io(io::Error),
    /// An entry is malformed or unsupported; `entry` is its path as far as known.
    Entry {
        /// The entry's path as far as known.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
}

impl From<io::Error> for TarError {
    fn from(e: io::Error) -> Self {
        TarError::Io(e)
    }
}

fn entry_err(path: &[u8], reason: impl Into<String>) -> TarError {
    TarError::Entry {
        entry: String::from_utf8_lossy(path).into_owned(),
        reason: reason.into(),
    }
}

/// Reads entries one by one; the caller reads each regular file's content through
/// [`TarStream::content`] before asking for the next entry (unread content is skipped).
pub struct TarStream<'a> {
    inner: &'a mut dyn Read,
    /// Bytes consumed from `inner` so far.
    pos: u64,
    /// Where the next header starts.
    next_header: u64,
    /// Where the current entry's content ends (the padding after it may be missing at EOF).
    content_end: u64,
    /// Headers read so far (including extension records).
    pub headers_read: u64,
    max_headers: u64,
    ended: bool,
}

#[derive(Default)]
struct Pending {
    pax_path: Option<Vec<u8>>,
    pax_link: Option<Vec<u8>>,
    pax_size: Option<u64>,
    pax_uid: Option<u32>,
    pax_gid: Option<u32>,
    pax_mtime: Option<(i64, u32)>,
    gnu_name: Option<Vec<u8>>,
    gnu_link: Option<Vec<u8>>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<'a> TarStream<'a> {
    /// A stream over `inner` (already decompressed) that refuses more than `max_headers` tar
    /// headers.
    pub fn new(inner: &'a mut dyn Read, max_headers: u64) -> Self {
        TarStream {
            inner,
            pos: 0,
            next_header: 0,
            content_end: 0,
            headers_read: 0,
            max_headers,
            ended: false,
        }
    }

    fn read_fully(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.inner.read(&mut buf[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.pos += done as u64;
        Ok(done)
    }

    fn skip_to_next_header(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 8192];
        while self.pos < self.next_header {
            let want = (self.next_header - self.pos).min(buf.len() as u64) as usize;
            let n = self.read_fully(&mut buf[..want])?;
            if n < want && self.pos >= self.content_end {
                // The stream ends right after an entry's content, without padding or end
                // blocks: umoci 0.4's `insert` writes such layers, and Go's tar readers (umoci,
                // containers/storage) accept them. The content itself was complete.
                self.ended = true;
                return Ok(());
            }
            if n < want {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "tar stream ends inside an entry's content",
                ));
            }
        }
        Ok(())
    }

    /// Read `size` bytes of an extension record into memory (size already checked).
    fn read_record(&mut self, size: u64) -> io::Result<Vec<u8>> {
        let mut data = vec![0u8; size as usize];
        if self.read_fully(&mut data)? < data.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "tar stream ends inside an extension record",
            ));
        }
        Ok(data)
    }

    /// The next file entry, or `None` at the end of the archive.
    pub fn next_entry(&mut self) -> Result<Option<TarEntry>, TarError> {
        let mut pending = Pending::default();
        loop {
            if self.ended {
                return Ok(None);
            }
            self.skip_to_next_header()?;
            if self.ended {
                return Ok(None);
            }
            let mut block = [0u8; BLOCK as usize];
            let n = self.read_fully(&mut block)?;
            if n == 0 {
                self.ended = true;
                return Ok(None);
            }
            if n < block.len() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "tar stream ends inside a header",
                )
                .into());
            }
            if block.iter().all(|&b| b == 0) {
                self.ended = true;
                return Ok(None);
            }
            self.headers_read += 1;
            if self.headers_read > self.max_headers {
                return Err(entry_err(
                    b"",
                    format!("more than {} tar headers in one layer", self.max_headers),
                ));
            }
            let header = tar::Header::from_byte_slice(&block);
            let short_path = header.path_bytes().into_owned();
            let name_for_errors = pending
                .pax_path
                .clone()
                .or(pending.gnu_name.clone())
                .unwrap_or(short_path.clone());
            check_checksum(&block).map_err(|r| entry_err(&name_for_errors, r))?;
            let raw_size = header
                .entry_size()
                .map_err(|e| entry_err(&name_for_errors, format!("bad size field: {e}")))?;
            let typeflag = block[156];
            match typeflag {
                b'x' | b'g' | b'L' | b'K' => {
                    let limit = if typeflag == b'x' || typeflag == b'g' {
                        MAX_PAX_HEADER_SIZE
                    } else {
                        MAX_LONG_NAME_SIZE
                    };
                    if raw_size > limit {
                        return Err(entry_err(
                            &name_for_errors,
                            format!("extension record of {raw_size} bytes (limit {limit})"),
                        ));
                    }
                    self.next_header = self.pos + raw_size.div_ceil(BLOCK) * BLOCK;
                    self.content_end = self.next_header;
                    let data = self.read_record(raw_size)?;
                    match typeflag {
                        b'x' => parse_pax(&data, &mut pending)
                            .map_err(|r| entry_err(&name_for_errors, r))?,
                        b'g' => {} // global defaults (e.g. git archive's comment): not applied
                        b'L' => pending.gnu_name = Some(trim_nul(data)),
                        _ => pending.gnu_link = Some(trim_nul(data)),
                    }
                    continue;
                }
                _ => {}
            }
            let path = pending
                .pax_path
                .take()
                .or(pending.gnu_name.take())
                .unwrap_or(short_path);
            let link = pending
                .pax_link
                .take()
                .or(pending.gnu_link.take())
                .unwrap_or_else(|| {
                    header
                        .link_name_bytes()
                        .map(|c| c.into_owned())
                        .unwrap_or_default()
                });
            if path.len() > MAX_PATH_LEN || link.len() > MAX_PATH_LEN {
                return Err(entry_err(
                    &path[..path.len().min(200)],
                    format!("path or link target longer than {MAX_PATH_LEN} bytes"),
                ));
            }
            let kind = match typeflag {
                b'0' | 0 | b'7' => EntryKind::Regular,
                b'1' => EntryKind::HardLink,
                b'2' => EntryKind::Symlink,
                b'3' => EntryKind::CharDevice,
                b'4' => EntryKind::BlockDevice,
                b'5' => EntryKind::Directory,
                b'6' => EntryKind::Fifo,
                b'S' => return Err(entry_err(&path, "GNU sparse files are not supported")),
                other => {
                    return Err(entry_err(
                        &path,
                        format!("unsupported tar entry type {:?}", other as char),
                    ))
                }
            };
            let size = pending.pax_size.unwrap_or(raw_size);
            if size > MAX_FILE_SIZE {
                return Err(entry_err(
                    &path,
                    format!("size {size} is larger than the limit {MAX_FILE_SIZE}"),
                ));
            }
            self.next_header = self.pos + size.div_ceil(BLOCK) * BLOCK;
            self.content_end = self.pos + size;
            // An empty numeric field (all NUL or spaces) reads as 0, as Go's archive/tar does.
            let field = |r: io::Result<u64>,
                         what: &str,
                         range: std::ops::Range<usize>|
             -> Result<u64, TarError> {
                if block[range].iter().all(|&b| b == 0 || b == b' ') {
                    return Ok(0);
                }
                r.map_err(|e| entry_err(&path, format!("bad {what} field: {e}")))
            };
            let to_u32 = |v: u64, what: &str| -> Result<u32, TarError> {
                u32::try_from(v)
                    .map_err(|_| entry_err(&path, format!("{what} {v} does not fit in 32 bits")))
            };
            let mode = field(header.mode().map(u64::from), "mode", 100..108)? as u32 & 0o7777;
            let uid = match pending.pax_uid {
                Some(u) => u,
                None => to_u32(field(header.uid(), "uid", 108..116)?, "uid")?,
            };
            let gid = match pending.pax_gid {
                Some(g) => g,
                None => to_u32(field(header.gid(), "gid", 116..124)?, "gid")?,
            };
            let (mtime_sec, mtime_nsec) = match pending.pax_mtime {
                Some(t) => t,
                None => (field(header.mtime(), "mtime", 136..148)? as i64, 0),
            };
            let (dev_major, dev_minor) =
                if matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice) {
                    let major = header
                        .device_major()
                        .map_err(|e| entry_err(&path, format!("bad devmajor: {e}")))?;
                    let minor = header
                        .device_minor()
                        .map_err(|e| entry_err(&path, format!("bad devminor: {e}")))?;
                    (major.unwrap_or(0), minor.unwrap_or(0))
                } else {
                    (0, 0)
                };
            return Ok(Some(TarEntry {
                path,
                link,
                kind,
                mode,
                uid,
                gid,
                mtime_sec,
                mtime_nsec,
                size,
                dev_major,
                dev_minor,
                xattrs: std::mem::take(&mut pending.xattrs),
            }));
        }
    }

    /// The content of the entry just returned (at most its size; unread bytes are skipped later).
    pub fn content(&mut self, size: u64) -> ContentReader<'_, 'a> {
        ContentReader {
            stream: self,
            remaining: size,
        }
    }

    /// Read and discard everything after the end of the archive (so the caller can hash the
    /// whole uncompressed stream and see the compressed stream end cleanly).
    pub fn drain(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; 64 << 10];
        while self.read_fully(&mut buf)? > 0 {}
        Ok(())
    }
}

/// Reads one entry's content from the stream; a stream that ends early is an error.
pub struct ContentReader<'s, 'a> {
    stream: &'s mut TarStream<'a>,
    remaining: u64,
}

impl Read for ContentReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = loop {
            match self.stream.inner.read(&mut buf[..want]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "tar stream ends inside a file's content",
            ));
        }
        self.stream.pos += n as u64;
        self.remaining -= n as u64;
        Ok(n)
    }
}

fn trim_nul(mut data: Vec<u8>) -> Vec<u8> {
    while data.last() == Some(&0) {
        data.pop();
    }
    data
}

fn check_checksum(block: &[u8; 512]) -> Result<(), String> {
    let field = &block[148..156];
    let text: Vec<u8> = field
        .iter()
        .copied()
        .take_while(|&b| b != 0)
        .filter(|&b| b != b' ')
        .collect();
    let stored = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| u64::from_str_radix(t, 8).ok())
        .ok_or_else(|| "header checksum field is not octal".to_string())?;
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    if stored == unsigned || i64::try_from(stored).ok() == Some(signed) {
        Ok(())
    } else {
        Err(format!(
            "header checksum {stored} does not match the header ({unsigned})"
        ))
    }
}

fn parse_decimal_u32(value: &[u8], key: &str) -> Result<u32, String> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|t| t.parse::<u32>().ok())
        .ok_or_else(|| {
            format!(
                "PAX {key} {:?} is not a 32-bit number",
                String::from_utf8_lossy(value)
            )
        })
}

/// `[-]sec[.fraction]` → (seconds, nanoseconds), rounding the fraction down.
fn parse_pax_time(value: &[u8]) -> Result<(i64, u32), String> {
    let bad = || {
        format!(
            "PAX mtime {:?} is not a time",
            String::from_utf8_lossy(value)
        )
    };
    let text = std::str::from_utf8(value).map_err(|_| bad())?;
    let (neg, text) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text),
    };
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    if secs.is_empty()
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let mut nsec: u32 = 0;
    for (i, d) in frac.bytes().take(9).enumerate() {
        nsec += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
    }
    if neg {
        // -1.25 means 1.25 s before the epoch: (-2, 0.75 s).
        if nsec == 0 {
            Ok((-secs, 0))
        } else {
            Ok((-secs - 1, 1_000_000_000 - nsec))
        }
    } else {
        Ok((secs, nsec))
    }
}

fn parse_pax(data: &[u8], pending: &mut Pending) -> Result<(), String> {
    for record in tar::PaxExtensions::new(data) {
        let record = record.map_err(|e| format!("malformed PAX header: {e}"))?;
        let key = record
            .key()
            .map_err(|_| "PAX key is not UTF-8".to_string())?;
        let value = record.value_bytes();
        match key {
            "path" => pending.pax_path = Some(value.to_vec()),
            "linkpath" => pending.pax_link = Some(value.to_vec()),
            "size" => {
                let size = std::str::from_utf8(value)
                    .ok()
                    .and_then(|t| t.parse::<u64>().ok())
                    .ok_or_else(|| {
                        format!(
                            "PAX size {:?} is not a number",
                            String::from_utf8_lossy(value)
                        )
                    })?;
                pending.pax_size = Some(size);
            }
            "uid" => pending.pax_uid = Some(parse_decimal_u32(value, key)?),
            "gid" => pending.pax_gid = Some(parse_decimal_u32(value, key)?),
            "mtime" => pending.pax_mtime = Some(parse_pax_time(value)?),
            k if k.starts_with("GNU.sparse.") => {
                return Err("GNU sparse files are not supported".into())
            }
            k => {
                if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                    pending
                        .xattrs
                        .push((name.as_bytes().to_vec(), value.to_vec()));
                }
                // Other records (atime, ctime, uname, gname, comment, LIBARCHIVE.*, SCHILY.acl.*)
                // carry nothing a composefs image stores.
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        assert_eq!(
            parse_pax_time(b"1700000000.123456789123").unwrap(),
            (1700000000, 123456789)
        );
        assert_eq!(parse_pax_time(b"5").unwrap(), (5, 0));
        assert_eq!(parse_pax_time(b"-1.25").unwrap(), (-2, 750_000_000));
        assert!(parse_pax_time(b"1e9").is_err());
        assert!(parse_pax_time(b"").is_err());
    }
}
