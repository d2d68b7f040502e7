//! Building an image's merged tree from zstd:chunked tables of contents, fetching only the file
//! contents the repository lacks, every one checked against the table before it is stored.
//!
//! Per layer:
//! 1. the TOC is located by the manifest's annotations ([`TocLocation`]), fetched as one range
//!    and checked against the annotated sha256 before it is parsed; a mismatch refuses the
//!    image ([`ChunkedError::Toc`]): whoever serves the blob is not serving what was signed;
//! 2. each regular file's content sha256 is looked up in the repository's content index and
//!    the object found is hashed again ([`Repository::find_content`]); a file found is reused;
//! 3. the compressed spans of the others (one per distinct sha256) are sorted, spans closer than
//!    [`MERGE_GAP`] merged, and the ranges merged further until there are at most
//!    [`MAX_RANGE_REQUESTS`]; each range is read once, front to back;
//! 4. each span is decompressed (its zstd frames), bounded by the file's size, hashed, and
//!    compared with the table's size and sha256 *while* it is streamed into the sink: a
//!    mismatch fails the read, so the object is never offered to the store, and the image is
//!    refused naming the file ([`ChunkedError::Content`]);
//! 5. the TOC entries are applied in order with the tar rules ([`TreeBuilder`]: whiteouts,
//!    opaque directories, hard links, xattrs), so the tree is the one a full import builds.
//!
//! A layer with no table, an eStargz table (not supported: no tool on Debian 12 makes one), or
//! a table whose annotations or JSON are invalid is applied from the whole blob instead
//! ([`PartialSource::apply_full`]: digest and diff_id checked as always), with a note saying so.
//!
//! What a partial pull cannot check: the layer's diff_id (that needs the whole tar). The tree is
//! what the TOC says, and the TOC is what the signed manifest's annotation names; for a sealed
//! image the seal check (the composefs digest in the signed config) then proves the tree equals
//! the one the signer built. A hostile publisher can make a TOC that disagrees with its own tar
//! (containers/storage has the same property); only a sealed image rules that out.

use std::collections::HashMap;
use std::io::{self, Read};
use std::ops::Range;

use cfsgate_image::store::{ContentSha256, Repository};
use cfsgate_image::tree::FileData;
use cfsgate_image::FsVeritySha256;
use sha2::Digest as _;

use super::error::ChunkedError;
use super::toc::{parse_toc, FileSpan, TocError, TocLocation, ANNOTATION_ESTARGZ_TOC};
use crate::apply::{BuildOptions, TreeBuilder, INLINE_CONTENT_MAX};
use crate::error::OciError;
use crate::import::{write_tree_image, BuiltImage};
use crate::layout::ImageSource;
use crate::resolve::{Compression, Layer, ResolvedImage};
use crate::sink::ObjectSink;
use crate::tarstream::TarEntry;

/// Spans at most this far apart are fetched as one range (the gap is downloaded and skipped:
/// cheaper than another request for a few KiB).
pub const MERGE_GAP: u64 = 4096;
/// Most range requests per layer; beyond, the ranges with the smallest gaps are merged.
pub const MAX_RANGE_REQUESTS: usize = 256;

/// A place a layer blob can be read from by ranges (a layout's blob file, a registry).
pub trait PartialSource: Sync {
    /// Exactly the bytes `range` of `layer`'s blob (a shorter read is an error of the reader).
    fn open_range(&self, layer: &Layer, range: Range<u64>) -> io::Result<Box<dyn Read + '_>>;
    /// Apply the whole blob of layer `index` (the fallback without a usable table).
    fn apply_full(
        &self,
        builder: &mut TreeBuilder,
        index: usize,
        layer: &Layer,
        sink: &dyn ObjectSink,
    ) -> Result<(), OciError>;
}

/// What a partial build did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartialReport {
    /// Layers built from their table of contents.
    pub chunked_layers: usize,
    /// Layers applied from the whole blob, with why (see [`Self::notes`]).
    pub full_layers: usize,
    /// Bytes read from the source by ranges (tables and contents, gaps included).
    pub range_bytes: u64,
    /// Range reads made.
    pub range_requests: u64,
    /// Blob bytes of the layers applied whole.
    pub full_layer_bytes: u64,
    /// Regular files with content: reused from the repository, fetched.
    pub files_reused: u64,
    /// Regular files whose content was downloaded.
    pub files_fetched: u64,
    /// Content bytes reused (not downloaded).
    pub bytes_reused: u64,
    /// One line per fallback: which layer and why.
    pub notes: Vec<String>,
}

/// The blob file of an `oci:` layout or `dir:` image, read by ranges.
pub struct LayoutRanges<'a> {
    /// The image whose blobs are read.
    pub source: &'a ImageSource,
}

impl PartialSource for LayoutRanges<'_> {
    fn open_range(&self, layer: &Layer, range: Range<u64>) -> io::Result<Box<dyn Read + '_>> {
        use std::io::{Seek, SeekFrom};
        let (mut file, size) = self
            .source
            .open_file(&self.source.blob_relpath(&layer.digest))?;
        if size != layer.size || range.end > size || range.start > range.end {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the blob file has {size} bytes (descriptor: {})",
                    layer.size
                ),
            ));
        }
        file.seek(SeekFrom::Start(range.start))?;
        Ok(Box::new(ExactReader {
            inner: file.take(range.end - range.start),
            left: range.end - range.start,
        }))
    }

    fn apply_full(
        &self,
        builder: &mut TreeBuilder,
        index: usize,
        layer: &Layer,
        sink: &dyn ObjectSink,
    ) -> Result<(), OciError> {
        builder.apply_layer(self.source, index, layer, sink)
    }
}

/// Yields exactly `left` bytes or fails (a source that ends early is an error, not EOF).
pub struct ExactReader<R> {
    /// The underlying reader.
    pub inner: R,
    /// Bytes still to yield.
    pub left: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("range ends {} bytes early", self.left),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Build the merged tree and composefs image of `image` from its layers' tables of contents,
/// reusing contents `repo` has and storing the fetched ones in `sink`.
pub fn build_image_partial(
    image: &ResolvedImage,
    source: &dyn PartialSource,
    repo: Option<&Repository>,
    sink: &dyn ObjectSink,
) -> Result<(BuiltImage, PartialReport), ChunkedError> {
    let mut builder = TreeBuilder::new(BuildOptions::default());
    let mut report = PartialReport::default();
    for (index, layer) in image.layers.iter().enumerate() {
        let fallback = |reason: String, report: &mut PartialReport| {
            report.notes.push(format!(
                "layer {index} ({}): {reason}; downloading the whole layer",
                layer.digest
            ));
        };
        let location = toc_location(image, index);
        let entries = match location {
            Ok(location) => match fetch_toc(source, index, layer, &location, &mut report)? {
                Ok(toc) => Some(toc),
                Err(e) => {
                    fallback(format!("invalid table of contents: {e}"), &mut report);
                    None
                }
            },
            Err(reason) => {
                fallback(reason, &mut report);
                None
            }
        };
        match entries {
            Some(toc) => {
                let prepared = fetch_contents(source, index, layer, toc, repo, sink, &mut report)?;
                builder.apply_prepared(index, layer, prepared)?;
                report.chunked_layers += 1;
            }
            None => {
                source.apply_full(&mut builder, index, layer, sink)?;
                report.full_layers += 1;
                report.full_layer_bytes += layer.size;
            }
        }
    }
    let tree = builder.finish()?;
    let bytes = write_tree_image(&tree)?;
    Ok((
        BuiltImage {
            digest: cfsgate_image::fsverity::digest_bytes(&bytes),
            image: bytes,
            tree,
        },
        report,
    ))
}

/// Where layer `index`'s zstd:chunked table of contents is, as the manifest's annotations say;
/// `Err` says why the layer has none that can be used (it is then applied whole).
pub fn toc_location(image: &ResolvedImage, index: usize) -> Result<TocLocation, String> {
    let Some(layer) = image.layers.get(index) else {
        return Err(format!("no layer {index}"));
    };
    let annotations = image
        .manifest
        .layers()
        .get(index)
        .and_then(|d| d.annotations().as_ref());
    if layer.compression != Compression::Zstd {
        return Err("not zstd-compressed, so no zstd:chunked table of contents".to_string());
    }
    match TocLocation::from_annotations(annotations, layer.size) {
        Ok(Some(location)) => Ok(location),
        Ok(None) if annotations.is_some_and(|a| a.contains_key(ANNOTATION_ESTARGZ_TOC)) => {
            Err("an eStargz table of contents (not supported)".to_string())
        }
        Ok(None) => Err("no zstd:chunked table of contents".to_string()),
        Err(e) => Err(format!("invalid table of contents: {e}")),
    }
}

/// The TOC of a layer: `Err` (outer) refuses the image (checksum, I/O), `Ok(Err)` is a table
/// that is what was signed but unusable (the caller falls back to the whole layer).
fn fetch_toc(
    source: &dyn PartialSource,
    index: usize,
    layer: &Layer,
    location: &TocLocation,
    report: &mut PartialReport,
) -> Result<Result<super::toc::Toc, TocError>, ChunkedError> {
    let range = location.offset..location.offset + location.length;
    let fetch_err = |source| ChunkedError::Fetch {
        layer: index,
        digest: layer.digest,
        start: range.start,
        end: range.end,
        source,
    };
    let mut compressed = Vec::with_capacity(location.length as usize);
    source
        .open_range(layer, range.clone())
        .and_then(|r| r.take(location.length).read_to_end(&mut compressed))
        .map_err(fetch_err)?;
    report.range_requests += 1;
    report.range_bytes += location.length;
    match parse_toc(&compressed, location) {
        Err(e @ TocError::Checksum { .. }) => Err(ChunkedError::Toc {
            layer: index,
            digest: layer.digest,
            source: e,
        }),
        other => Ok(other),
    }
}

/// One merged range and the spans (index into the fetch list) it covers, in offset order.
struct MergedRange {
    range: Range<u64>,
    spans: Vec<usize>,
}

/// Sort spans by offset and merge them into at most [`MAX_RANGE_REQUESTS`] ranges.
fn plan_ranges(spans: &[Range<u64>]) -> Vec<MergedRange> {
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&i| spans[i].start);
    let mut merged: Vec<MergedRange> = Vec::new();
    for i in order {
        match merged.last_mut() {
            Some(last) if spans[i].start <= last.range.end.saturating_add(MERGE_GAP) => {
                last.range.end = last.range.end.max(spans[i].end);
                last.spans.push(i);
            }
            _ => merged.push(MergedRange {
                range: spans[i].clone(),
                spans: vec![i],
            }),
        }
    }
    if merged.len() > MAX_RANGE_REQUESTS {
        // Merge across the smallest gaps until the count fits.
        let mut gaps: Vec<(u64, usize)> = merged
            .windows(2)
            .enumerate()
            .map(|(i, w)| (w[1].range.start - w[0].range.end, i))
            .collect();
        gaps.sort();
        let mut join = vec![false; merged.len()];
        for &(_, i) in &gaps[..merged.len() - MAX_RANGE_REQUESTS] {
            join[i] = true;
        }
        let mut out: Vec<MergedRange> = Vec::with_capacity(MAX_RANGE_REQUESTS);
        let mut joining = false;
        for (i, m) in merged.into_iter().enumerate() {
            match out.last_mut() {
                Some(last) if joining => {
                    last.range.end = last.range.end.max(m.range.end);
                    last.spans.extend(m.spans);
                }
                _ => out.push(m),
            }
            joining = join[i];
        }
        merged = out;
    }
    merged
}

/// Resolve every regular file's content: reused from `repo`, or fetched, checked and stored.
#[allow(clippy::too_many_arguments)]
fn fetch_contents(
    source: &dyn PartialSource,
    index: usize,
    layer: &Layer,
    toc: super::toc::Toc,
    repo: Option<&Repository>,
    sink: &dyn ObjectSink,
    report: &mut PartialReport,
) -> Result<Vec<(TarEntry, Option<FileData>)>, ChunkedError> {
    // Distinct contents to fetch: (sha256, size) → position in `wanted`.
    let mut have: HashMap<(ContentSha256, u64), FileData> = HashMap::new();
    let mut wanted: Vec<(ContentSha256, u64, FileSpan, String)> = Vec::new();
    let mut wanted_at: HashMap<(ContentSha256, u64), usize> = HashMap::new();
    for entry in &toc.entries {
        let Some(span) = &entry.span else { continue };
        let key = (span.sha256, entry.entry.size);
        if have.contains_key(&key) || wanted_at.contains_key(&key) {
            continue;
        }
        if entry.entry.size > INLINE_CONTENT_MAX {
            if let Some(repo) = repo {
                if let Some(object) =
                    repo.find_content(&span.sha256, entry.entry.size)
                        .map_err(|e| {
                            OciError::io("looking up the content index", io::Error::other(e))
                        })?
                {
                    report.files_reused += 1;
                    report.bytes_reused += entry.entry.size;
                    have.insert(key, external(entry.entry.size, object));
                    continue;
                }
            }
        }
        wanted_at.insert(key, wanted.len());
        wanted.push((
            span.sha256,
            entry.entry.size,
            span.clone(),
            String::from_utf8_lossy(&entry.entry.path).into_owned(),
        ));
    }
    let spans: Vec<Range<u64>> = wanted.iter().map(|w| w.2.offset..w.2.end).collect();
    for merged in plan_ranges(&spans) {
        let range = merged.range.clone();
        let fetch_err = |source| ChunkedError::Fetch {
            layer: index,
            digest: layer.digest,
            start: range.start,
            end: range.end,
            source,
        };
        let mut reader = source.open_range(layer, range.clone()).map_err(fetch_err)?;
        report.range_requests += 1;
        report.range_bytes += range.end - range.start;
        let mut pos = range.start;
        for i in merged.spans {
            let (sha256, size, span, name) = &wanted[i];
            if span.offset < pos {
                return Err(ChunkedError::Toc {
                    layer: index,
                    digest: layer.digest,
                    source: TocError::Entry {
                        index: i,
                        name: name.clone(),
                        reason: "its content overlaps another file's".into(),
                    },
                });
            }
            io::copy(&mut (&mut reader).take(span.offset - pos), &mut io::sink())
                .map_err(fetch_err)?;
            let mut compressed = ExactReader {
                inner: &mut reader,
                left: span.end - span.offset,
            };
            let data =
                store_checked(&mut compressed, *sha256, *size, sink).map_err(|e| match e {
                    Checked::Mismatch(reason) => ChunkedError::Content {
                        layer: index,
                        digest: layer.digest,
                        file: name.clone(),
                        reason,
                    },
                    Checked::Io(source) => fetch_err(source),
                })?;
            // Whatever the frames did not consume (nothing, for a well-formed span).
            io::copy(&mut compressed, &mut io::sink()).map_err(fetch_err)?;
            pos = span.end;
            report.files_fetched += 1;
            have.insert((*sha256, *size), data);
        }
        // The rest of the range (a gap after the last span cannot exist; this is cheap).
        io::copy(&mut reader, &mut io::sink()).map_err(fetch_err)?;
    }
    let mut prepared = Vec::with_capacity(toc.entries.len());
    for entry in toc.entries {
        let data = match &entry.span {
            Some(span) => have.get(&(span.sha256, entry.entry.size)).cloned(),
            None => Some(FileData::Inline(Vec::new().into())),
        };
        prepared.push((entry.entry, data));
    }
    Ok(prepared)
}

fn external(size: u64, digest: FsVeritySha256) -> FileData {
    FileData::External {
        size,
        digest: Some(digest),
        backing: Some(digest.object_path().into_bytes().into()),
    }
}

enum Checked {
    Mismatch(String),
    Io(io::Error),
}

/// Decompress one file's frames, check size and sha256 as it streams, store it (inline data
/// for small files). A mismatch is reported by the reader as an error at the end of the
/// content, so the sink never completes (and never offers) a wrong object.
fn store_checked(
    compressed: &mut dyn Read,
    sha256: ContentSha256,
    size: u64,
    sink: &dyn ObjectSink,
) -> Result<FileData, Checked> {
    let decoder = zstd::stream::read::Decoder::new(compressed).map_err(Checked::Io)?;
    let mut checked = CheckedContent {
        inner: decoder,
        hasher: sha2::Sha256::new(),
        expected: sha256,
        size,
        seen: 0,
        mismatch: None,
    };
    let result = if size <= INLINE_CONTENT_MAX {
        let mut data = Vec::with_capacity(size as usize);
        checked
            .read_to_end(&mut data)
            .map(|_| FileData::Inline(data.into()))
    } else {
        sink.store(&mut checked)
            .map(|(digest, _)| external(size, digest))
    };
    match (result, checked.mismatch) {
        (_, Some(reason)) => Err(Checked::Mismatch(reason)),
        (Ok(data), None) => Ok(data),
        (Err(e), None) => Err(Checked::Io(e)),
    }
}

/// Decompressed content, at most `size` bytes, failing at its end unless it had exactly `size`
/// bytes hashing to `expected`.
struct CheckedContent<R> {
    inner: R,
    hasher: sha2::Sha256,
    expected: ContentSha256,
    size: u64,
    seen: u64,
    mismatch: Option<String>,
}

impl<R: Read> Read for CheckedContent<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.mismatch.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "content mismatch",
            ));
        }
        // One byte more than the size may be asked for, to notice content that is too long.
        let want = buf
            .len()
            .min(usize::try_from(self.size - self.seen + 1).unwrap_or(usize::MAX));
        let n = match self.inner.read(&mut buf[..want]) {
            Ok(n) => n,
            Err(e) => {
                self.mismatch = Some(format!("its compressed content does not decompress: {e}"));
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        };
        self.seen += n as u64;
        if self.seen > self.size {
            self.mismatch = Some(format!(
                "decompresses to more than the {} bytes the table of contents gives",
                self.size
            ));
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "content too long",
            ));
        }
        if n == 0 {
            let actual = ContentSha256(std::mem::take(&mut self.hasher).finalize().into());
            if self.seen != self.size {
                self.mismatch = Some(format!(
                    "decompresses to {} bytes, but the table of contents gives {}",
                    self.seen, self.size
                ));
            } else if actual != self.expected {
                self.mismatch = Some(format!(
                    "content hashes to {actual}, but the table of contents gives {}",
                    self.expected
                ));
            }
            if self.mismatch.is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "content mismatch",
                ));
            }
            return Ok(0);
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_close_spans_and_stay_bounded() {
        let spans = vec![0..10, 10..20, 5000..6000, 100..200, 20_000..20_001];
        let plan = plan_ranges(&spans);
        let got: Vec<_> = plan
            .iter()
            .map(|m| (m.range.clone(), m.spans.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (0..200, vec![0, 1, 3]),
                (5000..6000, vec![2]),
                (20_000..20_001, vec![4])
            ]
        );
        // Many far-apart spans: merged down to the limit, every span still covered, in order.
        let spans: Vec<_> = (0..1000u64)
            .map(|i| i * 100_000 + (i % 7) * 10_000..i * 100_000 + (i % 7) * 10_000 + 10)
            .collect();
        let plan = plan_ranges(&spans);
        assert_eq!(plan.len(), MAX_RANGE_REQUESTS);
        let mut all: Vec<usize> = plan.iter().flat_map(|m| m.spans.clone()).collect();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        all.dedup();
        for m in &plan {
            for &i in &m.spans {
                assert!(m.range.start <= spans[i].start && spans[i].end <= m.range.end);
            }
        }
    }

    #[test]
    fn content_is_checked_while_stored() {
        let data = vec![7u8; 100_000];
        let compressed = zstd::encode_all(&data[..], 3).unwrap();
        let sha = ContentSha256::of(&data);
        let ok = store_checked(
            &mut &compressed[..],
            sha,
            data.len() as u64,
            &crate::sink::NullSink,
        );
        assert!(matches!(ok, Ok(FileData::External { size: 100_000, .. })));
        for (sha, size) in [
            (ContentSha256::of(b"x"), 100_000),
            (sha, 99_999),
            (sha, 100_001),
        ] {
            let err = store_checked(&mut &compressed[..], sha, size, &crate::sink::NullSink);
            assert!(matches!(err, Err(Checked::Mismatch(_))), "{size}");
        }
        let small = zstd::encode_all(&b"tiny"[..], 3).unwrap();
        let got = store_checked(
            &mut &small[..],
            ContentSha256::of(b"tiny"),
            4,
            &crate::sink::NullSink,
        );
        assert!(matches!(got, Ok(FileData::Inline(d)) if &d[..] == b"tiny"));
        let got = store_checked(
            &mut &small[..],
            ContentSha256::of(b"tinx"),
            4,
            &crate::sink::NullSink,
        );
        assert!(matches!(got, Err(Checked::Mismatch(_))));
    }
}
