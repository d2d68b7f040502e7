//! The composefs EROFS image: on-disk layout ([`format`](mod@format)), the writer ([`writer`], byte-identical
//! to upstream mkcomposefs) and the hardened reader ([`reader`]).

pub mod error;
pub mod format;
pub mod reader;
pub mod rewrite;
mod seeded_map;
pub mod writer;
