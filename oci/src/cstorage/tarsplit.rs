//! A layer's tar stream reassembled from its tar-split and its extracted files.
//!
//! containers/storage keeps, beside each layer's files, `DRIVER-layers/<id>.tar-split.gz`: a
//! gzipped sequence of JSON objects, one a line (github.com/vbatts/tar-split, `storage.Entry`):
//!
//! | `type` | meaning | fields |
//! |---|---|---|
//! | 2 (segment) | raw bytes of the archive: headers, padding, the end blocks | `payload`: the bytes, base64 |
//! | 1 (file) | the content of one entry, read from the layer's files | `name` (or `name_raw`, base64, when not UTF-8), `size`; `payload`: a crc64, not used |
//!
//! Writing the segments and, for each file entry with `size > 0`, exactly `size` bytes of
//! that file in order gives back the layer tar byte for byte; its sha256 is the layer's
//! diff_id. The files are hostile (anyone who can write the store can edit them): each is
//! opened below the layer directory without following a symlink out of it, refused unless
//! it is a regular file (opened non-blocking, so a FIFO cannot stall the reader), and must
//! have exactly the size its header says. Whatever else was edited shows up as a diff_id that
//! is not the config's, which the caller checks on these same bytes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use base64::Engine as _;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use serde::Deserialize;

/// Longest line of a tar-split (one segment: a header with its PAX records, or padding).
pub const MAX_TAR_SPLIT_LINE: usize = 8 << 20;

const TYPE_FILE: u8 = 1;
const TYPE_SEGMENT: u8 = 2;

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    name_raw: Option<String>,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    payload: Option<String>,
}

/// Reads the reassembled tar stream of one layer.
pub struct TarSplitReader {
    lines: BufReader<flate2::read::MultiGzDecoder<File>>,
    files: OwnedFd,
    line: Vec<u8>,
    segment: Vec<u8>,
    segment_pos: usize,
    current: Option<(File, u64, String)>,
    done: bool,
}

fn invalid(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

impl TarSplitReader {
    /// `tar_split`: the opened `.tar-split.gz`; `files`: the layer's directory.
    pub fn new(tar_split: File, files: OwnedFd) -> Self {
        TarSplitReader {
            lines: BufReader::new(flate2::read::MultiGzDecoder::new(tar_split)),
            files,
            line: Vec::new(),
            segment: Vec::new(),
            segment_pos: 0,
            current: None,
            done: false,
        }
    }

    /// Read the next entry; `false` at the end of the tar-split.
    fn next_entry(&mut self) -> io::Result<bool> {
        loop {
            self.line.clear();
            let n = (&mut self.lines)
                .take(MAX_TAR_SPLIT_LINE as u64 + 1)
                .read_until(b'\n', &mut self.line)?;
            if n == 0 {
                return Ok(false);
            }
            if self.line.len() > MAX_TAR_SPLIT_LINE {
                return Err(invalid(format!(
                    "tar-split line longer than {MAX_TAR_SPLIT_LINE} bytes"
                )));
            }
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let entry: Entry = serde_json::from_slice(&self.line)
                .map_err(|e| invalid(format!("tar-split entry: {e}")))?;
            let b64 = |text: &str, what: &str| {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| invalid(format!("tar-split {what}: {e}")))
            };
            match entry.kind {
                TYPE_SEGMENT => {
                    self.segment = match &entry.payload {
                        Some(p) => b64(p, "segment payload")?,
                        None => Vec::new(),
                    };
                    self.segment_pos = 0;
                    return Ok(true);
                }
                TYPE_FILE => {
                    let size = entry.size.unwrap_or(0);
                    let size = u64::try_from(size)
                        .map_err(|_| invalid(format!("tar-split file size {size}")))?;
                    if size == 0 {
                        continue;
                    }
                    let name = match (&entry.name_raw, &entry.name) {
                        (Some(raw), _) if !raw.is_empty() => b64(raw, "name_raw")?,
                        (_, Some(name)) => name.as_bytes().to_vec(),
                        _ => return Err(invalid("tar-split file entry without a name".into())),
                    };
                    let shown = String::from_utf8_lossy(&name).into_owned();
                    let file = self.open_file(&name).map_err(|e| {
                        io::Error::new(e.kind(), format!("layer file {shown:?}: {e}"))
                    })?;
                    self.current = Some((file, size, shown));
                    return Ok(true);
                }
                other => return Err(invalid(format!("tar-split entry type {other}"))),
            }
        }
    }

    /// Open an entry's file below the layer directory (see the module docs).
    fn open_file(&self, name: &[u8]) -> io::Result<File> {
        let mut path = Vec::with_capacity(name.len());
        for component in name.split(|b| *b == b'/') {
            match component {
                b"" | b"." => {}
                b".." => return Err(invalid("a \"..\" path component".into())),
                c => {
                    if !path.is_empty() {
                        path.push(b'/');
                    }
                    path.extend_from_slice(c);
                }
            }
        }
        if path.is_empty() || path.contains(&0) {
            return Err(invalid("an empty or NUL-containing name".into()));
        }
        let path = std::ffi::OsStr::from_bytes(&path);
        let fd = rustix::fs::openat2(
            &self.files,
            path,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV,
        )?;
        let file = File::from(fd);
        if !file.metadata()?.is_file() {
            return Err(invalid("not a regular file".into()));
        }
        Ok(file)
    }
}

impl Read for TarSplitReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            if self.segment_pos < self.segment.len() {
                let n = buf.len().min(self.segment.len() - self.segment_pos);
                buf[..n].copy_from_slice(&self.segment[self.segment_pos..self.segment_pos + n]);
                self.segment_pos += n;
                return Ok(n);
            }
            if let Some((file, left, name)) = &mut self.current {
                if *left > 0 {
                    let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let n = file.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(invalid(format!(
                            "layer file {name:?} is shorter than its tar header says (edited after the pull?)"
                        )));
                    }
                    *left -= n as u64;
                    return Ok(n);
                }
                let mut probe = [0u8; 1];
                if file.read(&mut probe)? != 0 {
                    return Err(invalid(format!(
                        "layer file {name:?} is longer than its tar header says (edited after the pull?)"
                    )));
                }
                self.current = None;
            }
            self.segment.clear();
            self.segment_pos = 0;
            if !self.next_entry()? {
                self.done = true;
            }
        }
    }
}
