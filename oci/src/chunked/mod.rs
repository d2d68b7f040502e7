//! zstd:chunked layers: partial pulls into composefs, every file checked on arrival.
//!
//! | module | what it owns |
//! |---|---|
//! | [`toc`] | the table of contents: found by the manifest's annotations, checked against the annotated sha256, decompressed and parsed under named limits |
//! | [`partial`] | the merged tree from the tables: contents reused from the repository's content index, missing ones fetched by merged ranges, decompressed and checked against the table's sha256 before they are stored; fallback to the whole layer |
//!
//! [`import_partial`] is [`crate::import_image`] with the tree built this way: same objects,
//! same composefs image, same metadata, same seal check. The same image imported whole or
//! partially gives the same composefs digest (tests/chunked.rs compares them).

mod error;
pub mod partial;
pub mod toc;

pub use error::ChunkedError;
pub use partial::{
    build_image_partial, toc_location, LayoutRanges, PartialReport, PartialSource,
    MAX_RANGE_REQUESTS, MERGE_GAP,
};
pub use toc::{parse_toc, parse_toc_json, Toc, TocEntry, TocError, TocLocation};

use cfsgate_image::store::Repository;

use crate::import::{import_built, ImportError, ImportReport};
use crate::resolve::ResolvedImage;

/// Import `image` with a partial build from `source` (reusing what `repo` holds); see
/// [`crate::import_image`] for everything after the build.
pub fn import_partial(
    repo: &Repository,
    image: &ResolvedImage,
    source: &dyn PartialSource,
    ref_name: Option<&str>,
) -> Result<(ImportReport, PartialReport), ImportError> {
    let mut report = PartialReport::default();
    let import = import_built(repo, image, ref_name, &mut |sink| {
        let (built, partial) = build_image_partial(image, source, Some(repo), sink)?;
        report = partial;
        Ok(built)
    })?;
    Ok((import, report))
}
