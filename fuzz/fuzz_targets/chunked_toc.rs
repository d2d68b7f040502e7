//! Fuzz the zstd:chunked table of contents parser. The first byte picks the input's form: even,
//! the JSON itself (`parse_toc_json`); odd, a zstd-compressed TOC checked against its own
//! sha256 and a declared uncompressed length taken from the next 4 bytes (`parse_toc`). An
//! accepted table must keep what the parser promises: every content span inside the blob and
//! non-empty, chunks tiling the content in order, names and link names without NUL.
#![no_main]

use cfsgate_oci::chunked::{parse_toc, parse_toc_json, Toc, TocLocation};
use cfsgate_oci::BlobDigest;
use libfuzzer_sys::fuzz_target;

/// Where content must end (the TOC's offset in a pretend blob).
const CONTENT_END: u64 = 1 << 20;

fn check(toc: &Toc) {
    for e in &toc.entries {
        assert!(!e.entry.path.contains(&0) && !e.entry.link.contains(&0));
        assert!(e.entry.mode <= 0o7777);
        let Some(span) = &e.span else {
            continue;
        };
        assert!(e.entry.size > 0);
        assert!(span.offset < span.end && span.end <= CONTENT_END);
        if span.chunks.is_empty() {
            continue;
        }
        assert_eq!(span.chunks[0].offset, span.offset);
        let mut next = 0;
        for c in &span.chunks {
            assert_eq!(c.content_offset, next);
            assert!(c.size > 0 && c.offset < span.end);
            next += c.size;
        }
        assert_eq!(next, e.entry.size);
        assert!(span.chunks.windows(2).all(|w| w[0].offset < w[1].offset));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&form, rest)) = data.split_first() else {
        return;
    };
    if form % 2 == 0 {
        if let Ok(toc) = parse_toc_json(rest, CONTENT_END) {
            check(&toc);
        }
        return;
    }
    if rest.len() < 4 {
        return;
    }
    let (len, compressed) = rest.split_at(4);
    let location = TocLocation {
        offset: CONTENT_END,
        length: compressed.len() as u64,
        uncompressed_length: u64::from(u32::from_le_bytes([len[0], len[1], len[2], len[3]]) % (1 << 22)),
        checksum: BlobDigest::of(compressed),
    };
    if let Ok(toc) = parse_toc(compressed, &location) {
        check(&toc);
    }
});
