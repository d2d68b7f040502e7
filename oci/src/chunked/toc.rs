//! The zstd:chunked table of contents (TOC): where it is, checking it, parsing it.
//!
//! A zstd:chunked layer (containers/storage `pkg/chunked`) is an ordinary `tar+zstd` blob in
//! which every regular file's content starts a new zstd frame, followed by the TOC: a zstd
//! compressed JSON document in a skippable frame (magic `50 2a 4d 18`, 4-byte length), then
//! (newer writers) the tar-split data and a binary footer. Any zstd decoder skips those frames,
//! so the blob still decompresses to the layer's tar, byte for byte (its diff_id is unchanged).
//!
//! The TOC is found through the layer descriptor's annotations in the manifest (so the signed
//! manifest covers it), never through the footer:
//!
//! | annotation (either prefix) | value |
//! |---|---|
//! | `io.github.containers.zstd-chunked.manifest-position`, `io.containers.zstd-chunked.manifest-position` | `OFFSET:LENGTH:UNCOMPRESSED_LENGTH:1` (1 = CRFS-style TOC) |
//! | `…zstd-chunked.manifest-checksum` | `sha256:<hex>` of the LENGTH compressed bytes at OFFSET |
//!
//! skopeo 1.9.3 (Debian 12) writes the `io.containers.` names; containers/storage ≥ 1.46 the
//! `io.github.containers.` ones. The compressed bytes are hashed and compared with the
//! checksum before anything is decompressed; a mismatch is [`TocError::Checksum`].
//!
//! The JSON: `{"version":1,"entries":[…]}`, entries in tar order:
//!
//! | field | meaning |
//! |---|---|
//! | `type` | `reg`, `hardlink`, `symlink`, `char`, `block`, `dir`, `fifo`, or `chunk` (a further chunk of the preceding `reg`) |
//! | `name`, `linkName` | the tar header's name and link name |
//! | `mode`, `uid`, `gid`, `size`, `devMajor`, `devMinor` | the tar header's fields (`mode & 0o7777` used, as for tars) |
//! | `modtime` | RFC 3339 time (`accesstime`, `changetime` ignored, as for tars) |
//! | `xattrs` | name → base64 of the raw value (the tar's `SCHILY.xattr.*` records) |
//! | `digest` | `sha256:<hex>` of a regular file's content (absent for empty files) |
//! | `offset`, `endOffset` | the compressed span of that content in the blob: its zstd frames |
//! | `chunkOffset`, `chunkSize`, `chunkDigest`, `chunkType` | a chunk: its place in the content, its sha256, `""` data or `"zeros"` |
//!
//! Unknown fields are ignored (newer writers add some); a repeated field, a wrong type, a
//! negative or out-of-range number, a span outside the blob, chunks that do not tile the
//! content, or more than the named limits is an error naming the entry.

use std::collections::BTreeMap;
use std::io::Read;

use base64::Engine as _;
use cfsgate_image::store::ContentSha256;
use serde::Deserialize;

use crate::digest::BlobDigest;
use crate::tarstream::{EntryKind, TarEntry, MAX_FILE_SIZE, MAX_PATH_LEN};

/// Position annotation names, the current one first.
pub const ANNOTATIONS_TOC_POSITION: [&str; 2] = [
    "io.github.containers.zstd-chunked.manifest-position",
    "io.containers.zstd-chunked.manifest-position",
];
/// Checksum annotation names, in the same order.
pub const ANNOTATIONS_TOC_CHECKSUM: [&str; 2] = [
    "io.github.containers.zstd-chunked.manifest-checksum",
    "io.containers.zstd-chunked.manifest-checksum",
];
/// The eStargz TOC annotation: recognised only to say it is not supported.
pub const ANNOTATION_ESTARGZ_TOC: &str = "containerd.io/snapshot/stargz/toc.digest";
/// The only TOC type defined (CRFS-compatible JSON).
pub const TOC_TYPE_CRFS: u64 = 1;
/// Largest compressed or uncompressed TOC accepted (containers/storage's `maxTocSize`, 150 MiB).
pub const MAX_TOC_SIZE: u64 = 150 << 20;
/// Most TOC entries accepted (the tar reader's per-layer header limit).
pub const MAX_TOC_ENTRIES: usize = 4_000_000;
/// Most chunks one file may have (the rolling checksum splits at ~64 KiB on average; this
/// allows files of many GiB while bounding the entries one name can claim).
pub const MAX_CHUNKS_PER_FILE: usize = 1 << 20;

/// Something wrong with a layer's table of contents.
#[derive(Debug, thiserror::Error)]
pub enum TocError {
    /// The annotations are present but malformed.
    #[error("annotation {key}: {reason}")]
    Annotation {
        /// The annotation key.
        key: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// The bytes fetched for the TOC do not hash to the manifest's checksum.
    #[error("table of contents hashes to {actual}, but the manifest's annotation says {expected}")]
    Checksum {
        /// The checksum the manifest's annotation gives.
        expected: BlobDigest,
        /// The sha256 of the bytes fetched.
        actual: BlobDigest,
    },
    /// Decompression failed or the size is not the annotated one.
    #[error("table of contents: {0}")]
    Decompress(String),
    /// The JSON is not a TOC.
    #[error("table of contents JSON: {0}")]
    Json(String),
    /// An entry is invalid.
    #[error("table of contents entry {index} ({name:?}): {reason}")]
    Entry {
        /// Index of the entry in the TOC's `entries`, from 0.
        index: usize,
        /// The entry's `name` (its path).
        name: String,
        /// Why it is refused.
        reason: String,
    },
}

/// Where a layer's TOC is, and what it must hash to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TocLocation {
    /// Offset of the compressed TOC in the blob.
    pub offset: u64,
    /// Compressed length.
    pub length: u64,
    /// Length of the JSON.
    pub uncompressed_length: u64,
    /// sha256 of the compressed bytes.
    pub checksum: BlobDigest,
}

impl TocLocation {
    /// The TOC named by a layer descriptor's annotations in a blob of `blob_size` bytes:
    /// `Ok(None)` when the layer has none (not zstd:chunked).
    pub fn from_annotations(
        annotations: Option<&std::collections::HashMap<String, String>>,
        blob_size: u64,
    ) -> Result<Option<TocLocation>, TocError> {
        let Some(annotations) = annotations else {
            return Ok(None);
        };
        let Some(i) = (0..2).find(|&i| annotations.contains_key(ANNOTATIONS_TOC_POSITION[i]))
        else {
            return Ok(None);
        };
        let (pos_key, sum_key) = (ANNOTATIONS_TOC_POSITION[i], ANNOTATIONS_TOC_CHECKSUM[i]);
        let bad = |key, reason: String| TocError::Annotation { key, reason };
        let position = &annotations[pos_key];
        let fields: Vec<&str> = position.split(':').collect();
        let numbers: Vec<u64> = fields
            .iter()
            .map(|f| f.parse::<u64>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad(pos_key, format!("{position:?} is not four decimal numbers")))?;
        let [offset, length, uncompressed_length, kind] = numbers[..] else {
            return Err(bad(
                pos_key,
                format!("{position:?} is not four decimal numbers"),
            ));
        };
        if kind != TOC_TYPE_CRFS {
            return Err(bad(
                pos_key,
                format!("TOC type {kind} (only {TOC_TYPE_CRFS} is defined)"),
            ));
        }
        if length == 0 || length > MAX_TOC_SIZE || uncompressed_length > MAX_TOC_SIZE {
            return Err(bad(
                pos_key,
                format!("TOC of {length} bytes ({uncompressed_length} uncompressed): the limit is {MAX_TOC_SIZE}"),
            ));
        }
        if offset.checked_add(length).is_none_or(|end| end > blob_size) {
            return Err(bad(
                pos_key,
                format!("TOC at {offset}+{length} lies outside the {blob_size}-byte blob"),
            ));
        }
        let checksum = annotations.get(sum_key).ok_or_else(|| {
            bad(
                sum_key,
                "missing (the position annotation has no checksum)".into(),
            )
        })?;
        let checksum = BlobDigest::parse(checksum).map_err(|e| bad(sum_key, e.to_string()))?;
        Ok(Some(TocLocation {
            offset,
            length,
            uncompressed_length,
            checksum,
        }))
    }
}

/// A regular file's content in the blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpan {
    /// sha256 of the uncompressed content.
    pub sha256: ContentSha256,
    /// Compressed span `[offset, end)` in the blob (one or more zstd frames).
    pub offset: u64,
    /// End of the compressed span (exclusive).
    pub end: u64,
    /// The chunks the span is made of, in order (empty: one frame, no chunk records).
    pub chunks: Vec<Chunk>,
}

/// One chunk of a file's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Where the chunk's compressed frame starts in the blob.
    pub offset: u64,
    /// Where the chunk starts in the uncompressed content, and its length.
    pub content_offset: u64,
    /// Length of the chunk's uncompressed content in bytes.
    pub size: u64,
    /// sha256 of the chunk's uncompressed content.
    pub sha256: ContentSha256,
    /// A run of zeros (containers/storage may leave it out of the download: a hole).
    pub zeros: bool,
}

/// One file-system entry of the TOC: the tar header it stands for, and a regular file's span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TocEntry {
    /// The file-system entry, as the tar header would give it.
    pub entry: TarEntry,
    /// For a regular file with content (size > 0).
    pub span: Option<FileSpan>,
}

/// A parsed, checked table of contents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Toc {
    /// The entries in TOC order, which is tar order.
    pub entries: Vec<TocEntry>,
}

#[derive(Deserialize)]
struct RawToc {
    version: u64,
    entries: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default)]
    link_name: String,
    #[serde(default)]
    mode: i64,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    uid: i64,
    #[serde(default)]
    gid: i64,
    #[serde(default)]
    modtime: Option<String>,
    #[serde(default)]
    dev_major: i64,
    #[serde(default)]
    dev_minor: i64,
    #[serde(default)]
    xattrs: Option<BTreeMap<String, String>>,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    offset: i64,
    #[serde(default)]
    end_offset: i64,
    #[serde(default)]
    chunk_size: i64,
    #[serde(default)]
    chunk_offset: i64,
    #[serde(default)]
    chunk_digest: String,
    #[serde(default)]
    chunk_type: String,
}

/// Check `compressed` (the bytes at `location`) against the checksum, decompress, parse and
/// validate. `content_end` is where file content must end (the TOC's offset: content lies
/// before it).
pub fn parse_toc(compressed: &[u8], location: &TocLocation) -> Result<Toc, TocError> {
    let actual = BlobDigest::of(compressed);
    if actual != location.checksum {
        return Err(TocError::Checksum {
            expected: location.checksum,
            actual,
        });
    }
    let json = decompress(compressed, location.uncompressed_length)?;
    parse_toc_json(&json, location.offset)
}

/// Decompress exactly `expected` bytes (a longer or shorter output is an error).
fn decompress(compressed: &[u8], expected: u64) -> Result<Vec<u8>, TocError> {
    let decoder = zstd::stream::read::Decoder::new(compressed)
        .map_err(|e| TocError::Decompress(e.to_string()))?;
    let mut json = Vec::new();
    decoder
        .take(expected.min(MAX_TOC_SIZE) + 1)
        .read_to_end(&mut json)
        .map_err(|e| TocError::Decompress(e.to_string()))?;
    if json.len() as u64 != expected {
        return Err(TocError::Decompress(format!(
            "decompresses to {}{} bytes, but the annotation says {expected}",
            json.len(),
            if json.len() as u64 > expected {
                "+"
            } else {
                ""
            }
        )));
    }
    Ok(json)
}

/// Parse and validate the TOC JSON; file content must lie before `content_end`.
pub fn parse_toc_json(json: &[u8], content_end: u64) -> Result<Toc, TocError> {
    let raw: RawToc = serde_json::from_slice(json).map_err(|e| TocError::Json(e.to_string()))?;
    if raw.version != 1 {
        return Err(TocError::Json(format!(
            "version {} (only 1 is supported)",
            raw.version
        )));
    }
    if raw.entries.len() > MAX_TOC_ENTRIES {
        return Err(TocError::Json(format!(
            "{} entries, more than the limit of {MAX_TOC_ENTRIES}",
            raw.entries.len()
        )));
    }
    let mut entries: Vec<TocEntry> = Vec::with_capacity(raw.entries.len());
    for (index, raw) in raw.entries.iter().enumerate() {
        let fail = |reason: String| TocError::Entry {
            index,
            name: raw.name.chars().take(MAX_PATH_LEN).collect(),
            reason,
        };
        if raw.kind == "chunk" {
            add_chunk(&mut entries, raw, content_end).map_err(fail)?;
            continue;
        }
        if let Some(last) = entries.last() {
            check_chunks_complete(last).map_err(|reason| TocError::Entry {
                index: index - 1,
                name: String::from_utf8_lossy(&last.entry.path).into_owned(),
                reason,
            })?;
        }
        entries.push(convert(raw, content_end).map_err(fail)?);
    }
    if let Some(last) = entries.last() {
        check_chunks_complete(last).map_err(|reason| TocError::Entry {
            index: raw.entries.len() - 1,
            name: String::from_utf8_lossy(&last.entry.path).into_owned(),
            reason,
        })?;
    }
    Ok(Toc { entries })
}

fn non_negative(value: i64, what: &str, max: u64) -> Result<u64, String> {
    u64::try_from(value)
        .ok()
        .filter(|&v| v <= max)
        .ok_or_else(|| format!("{what} {value} is out of range (0 to {max})"))
}

fn content_digest(text: &str, what: &str) -> Result<ContentSha256, String> {
    BlobDigest::parse(text)
        .map(|d| ContentSha256(d.0 .0))
        .map_err(|_| format!("{what} {text:?} is not sha256:<64 lowercase hex digits>"))
}

fn path_bytes(text: &str, what: &str) -> Result<Vec<u8>, String> {
    if text.len() > MAX_PATH_LEN {
        return Err(format!("{what} is longer than {MAX_PATH_LEN} bytes"));
    }
    if text.contains('\0') {
        return Err(format!("{what} contains NUL"));
    }
    Ok(text.as_bytes().to_vec())
}

fn convert(raw: &RawEntry, content_end: u64) -> Result<TocEntry, String> {
    let kind = match raw.kind.as_str() {
        "reg" => EntryKind::Regular,
        "hardlink" => EntryKind::HardLink,
        "symlink" => EntryKind::Symlink,
        "char" => EntryKind::CharDevice,
        "block" => EntryKind::BlockDevice,
        "dir" => EntryKind::Directory,
        "fifo" => EntryKind::Fifo,
        other => return Err(format!("unknown entry type {other:?}")),
    };
    let path = path_bytes(&raw.name, "name")?;
    if path.is_empty() {
        return Err("empty name".into());
    }
    let link = path_bytes(&raw.link_name, "linkName")?;
    let u32_max = u64::from(u32::MAX);
    let (mtime_sec, mtime_nsec) = match &raw.modtime {
        Some(text) => parse_rfc3339(text)
            .ok_or_else(|| format!("modtime {text:?} is not an RFC 3339 time"))?,
        None => (0, 0),
    };
    let mut xattrs = Vec::new();
    for (key, value) in raw.xattrs.iter().flatten() {
        let value = base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|e| format!("xattr {key:?}: value is not base64: {e}"))?;
        xattrs.push((key.as_bytes().to_vec(), value));
    }
    let size = if kind == EntryKind::Regular {
        non_negative(raw.size, "size", MAX_FILE_SIZE)?
    } else {
        0
    };
    let span = if kind == EntryKind::Regular && size > 0 {
        let sha256 = content_digest(&raw.digest, "digest")?;
        let offset = non_negative(raw.offset, "offset", content_end)?;
        let end = non_negative(raw.end_offset, "endOffset", content_end)?;
        if offset >= end {
            return Err(format!("empty or reversed content span {offset}..{end}"));
        }
        let mut chunks = Vec::new();
        if raw.chunk_size != 0 || !raw.chunk_digest.is_empty() {
            // A file of several chunks: its own record is the first chunk.
            if raw.chunk_offset != 0 {
                return Err("the first chunk does not start the content".into());
            }
            chunks.push(chunk_of(raw, content_end, size)?);
        }
        Some(FileSpan {
            sha256,
            offset,
            end,
            chunks,
        })
    } else {
        None
    };
    Ok(TocEntry {
        entry: TarEntry {
            path,
            link,
            kind,
            mode: (non_negative(raw.mode, "mode", u64::MAX >> 1)? & 0o7777) as u32,
            uid: non_negative(raw.uid, "uid", u32_max)? as u32,
            gid: non_negative(raw.gid, "gid", u32_max)? as u32,
            mtime_sec,
            mtime_nsec,
            size,
            dev_major: non_negative(raw.dev_major, "devMajor", u32_max)? as u32,
            dev_minor: non_negative(raw.dev_minor, "devMinor", u32_max)? as u32,
            xattrs,
        },
        span,
    })
}

fn chunk_of(raw: &RawEntry, content_end: u64, file_size: u64) -> Result<Chunk, String> {
    let zeros = match raw.chunk_type.as_str() {
        "" => false,
        "zeros" => true,
        other => return Err(format!("unknown chunkType {other:?}")),
    };
    let content_offset = non_negative(raw.chunk_offset, "chunkOffset", file_size)?;
    let size = non_negative(raw.chunk_size, "chunkSize", file_size - content_offset)?;
    if size == 0 {
        return Err("chunk of 0 bytes".into());
    }
    Ok(Chunk {
        offset: non_negative(raw.offset, "offset", content_end)?,
        content_offset,
        size,
        sha256: content_digest(&raw.chunk_digest, "chunkDigest")?,
        zeros,
    })
}

/// A `chunk` record: appended to the regular file just before it, which it must continue.
fn add_chunk(entries: &mut [TocEntry], raw: &RawEntry, content_end: u64) -> Result<(), String> {
    let Some(TocEntry {
        entry,
        span: Some(span),
    }) = entries.last_mut()
    else {
        return Err("a chunk that does not follow a regular file with content".into());
    };
    if entry.path != raw.name.as_bytes() {
        return Err("a chunk whose name differs from the file before it".into());
    }
    let Some(last) = span.chunks.last() else {
        return Err("a chunk after a file that has no chunk records".into());
    };
    if span.chunks.len() >= MAX_CHUNKS_PER_FILE {
        return Err(format!("more than {MAX_CHUNKS_PER_FILE} chunks"));
    }
    let chunk = chunk_of(raw, content_end, entry.size)?;
    if chunk.content_offset != last.content_offset + last.size {
        return Err(format!(
            "chunk at content offset {} does not follow the previous one (ends at {})",
            chunk.content_offset,
            last.content_offset + last.size
        ));
    }
    if chunk.offset <= last.offset || chunk.offset >= span.end {
        return Err(format!(
            "chunk frame at {} is not after the previous one ({}) and inside the file's span {}..{}",
            chunk.offset, last.offset, span.offset, span.end
        ));
    }
    span.chunks.push(chunk);
    Ok(())
}

/// A file with chunk records: they must start at its span and cover its content exactly.
fn check_chunks_complete(entry: &TocEntry) -> Result<(), String> {
    let Some(span) = &entry.span else {
        return Ok(());
    };
    let (Some(first), Some(last)) = (span.chunks.first(), span.chunks.last()) else {
        return Ok(());
    };
    if first.offset != span.offset {
        return Err(format!(
            "first chunk frame at {} but the content starts at {}",
            first.offset, span.offset
        ));
    }
    if last.content_offset + last.size != entry.entry.size {
        return Err(format!(
            "chunks cover {} of the file's {} bytes",
            last.content_offset + last.size,
            entry.entry.size
        ));
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` → (Unix seconds, nanoseconds). Go writes
/// times this way (RFC 3339 with nanoseconds, in the writer's time zone).
pub fn parse_rfc3339(text: &str) -> Option<(i64, u32)> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = frac[..digits].parse::<u32>().ok()? * 10u32.pow(9 - digits as u32);
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let r = rest.as_bytes();
            if r.len() != 6 || r[3] != b':' {
                return None;
            }
            let (h, m) = (num_in(&rest[1..3])?, num_in(&rest[4..6])?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    Some((
        days * 86400 + hour * 3600 + minute * 60 + second - offset,
        nanos,
    ))
}

fn num_in(s: &str) -> Option<i64> {
    s.bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| s.parse().ok())
        .flatten()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(
            parse_rfc3339("2020-09-13T12:26:40Z"),
            Some((1_600_000_000, 0))
        );
        assert_eq!(
            parse_rfc3339("2020-09-13T14:26:40.5+02:00"),
            Some((1_600_000_000, 500_000_000))
        );
        assert_eq!(
            parse_rfc3339("1969-12-31T23:59:59.000000001Z"),
            Some((-1, 1))
        );
        assert_eq!(
            parse_rfc3339("0001-01-01T00:00:00Z"),
            Some((-62_135_596_800, 0))
        );
        for bad in [
            "2020-13-01T00:00:00Z",
            "2021-02-29T00:00:00Z",
            "2020-01-01 00:00:00Z",
            "2020-01-01T00:00:00",
            "2020-01-01T00:00:00.Z",
            "2020-01-01T00:00:00+0100",
            "+020-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    fn location(compressed: &[u8], uncompressed: usize) -> TocLocation {
        TocLocation {
            offset: 1000,
            length: compressed.len() as u64,
            uncompressed_length: uncompressed as u64,
            checksum: BlobDigest::of(compressed),
        }
    }

    #[test]
    fn checksum_is_checked_before_parsing() {
        let json = br#"{"version":1,"entries":[]}"#;
        let compressed = zstd::encode_all(&json[..], 3).unwrap();
        let mut loc = location(&compressed, json.len());
        assert_eq!(parse_toc(&compressed, &loc).unwrap(), Toc::default());
        loc.checksum = BlobDigest::of(b"other");
        assert!(matches!(
            parse_toc(&compressed, &loc),
            Err(TocError::Checksum { .. })
        ));
        let loc = TocLocation {
            uncompressed_length: 5,
            ..location(&compressed, 0)
        };
        assert!(matches!(
            parse_toc(&compressed, &loc),
            Err(TocError::Decompress(_))
        ));
    }

    #[test]
    fn entries_and_errors() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let json = format!(
            r#"{{"version":1,"entries":[
            {{"type":"dir","name":"./","mode":493,"modtime":"2020-09-13T12:26:40Z"}},
            {{"type":"reg","name":"a","mode":33188,"size":10,"uid":1,"gid":2,"digest":"{d}","offset":10,"endOffset":20,
              "xattrs":{{"user.x":"AP8="}}}},
            {{"type":"reg","name":"b","size":200,"digest":"{d}","offset":20,"endOffset":90,"chunkSize":100,"chunkDigest":"{d}"}},
            {{"type":"chunk","name":"b","offset":50,"chunkOffset":100,"chunkSize":100,"chunkDigest":"{d}","chunkType":"zeros"}},
            {{"type":"hardlink","name":"c","linkName":"a"}},
            {{"type":"char","name":"n","devMajor":1,"devMinor":3}}
            ]}}"#
        );
        let toc = parse_toc_json(json.as_bytes(), 1000).unwrap();
        assert_eq!(toc.entries.len(), 5);
        let a = &toc.entries[1];
        assert_eq!(
            (a.entry.mode, a.entry.uid, a.entry.gid, a.entry.size),
            (0o644, 1, 2, 10)
        );
        assert_eq!(a.entry.xattrs, vec![(b"user.x".to_vec(), vec![0, 0xff])]);
        assert_eq!(toc.entries[0].entry.mtime_sec, 1_600_000_000);
        let b = toc.entries[2].span.as_ref().unwrap();
        assert_eq!(b.chunks.len(), 2);
        assert!(b.chunks[1].zeros);
        assert_eq!(toc.entries[4].entry.dev_minor, 3);

        let bad = |entries: &str| {
            let json = format!(r#"{{"version":1,"entries":[{entries}]}}"#);
            parse_toc_json(json.as_bytes(), 1000)
                .unwrap_err()
                .to_string()
        };
        assert!(bad(r#"{"type":"sock","name":"x"}"#).contains("unknown entry type"));
        assert!(bad(r#"{"type":"reg","name":"x","size":-1}"#).contains("size -1"));
        assert!(bad(r#"{"type":"reg","name":"x","size":5,"digest":"md5:1"}"#).contains("digest"));
        assert!(bad(&format!(
            r#"{{"type":"reg","name":"x","size":5,"digest":"{d}","offset":10,"endOffset":2000}}"#
        ))
        .contains("endOffset 2000"));
        assert!(bad(&format!(
            r#"{{"type":"reg","name":"x","size":5,"digest":"{d}","offset":10,"endOffset":20,"chunkSize":3,"chunkDigest":"{d}"}}"#
        ))
        .contains("chunks cover 3"));
        assert!(bad(r#"{"type":"chunk","name":"x"}"#).contains("does not follow"));
        assert!(bad(r#"{"type":"dir","name":"x","mode":1,"mode":2}"#).contains("duplicate"));
        assert!(bad(r#"{"type":"dir","name":"x","xattrs":{"a":"!!"}}"#).contains("base64"));
        assert!(bad(r#"{"type":"dir","name":"x","modtime":"yesterday"}"#).contains("RFC 3339"));
        assert!(parse_toc_json(br#"{"version":2,"entries":[]}"#, 0).is_err());
    }
}
