//! Bounds-checked access to the image bytes.
//!
//! Every read of the image goes through [`ImageBytes`], which turns an out-of-range offset or
//! length (including arithmetic overflow from hostile 64-bit fields) into a
//! [`ReadError::OutOfRange`] naming what was being read, instead of a panic.

use super::ReadError;

/// The whole image, with checked slicing and little-endian field reads.
#[derive(Clone, Copy)]
pub(super) struct ImageBytes<'a> {
    bytes: &'a [u8],
}

impl<'a> ImageBytes<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        ImageBytes { bytes }
    }

    /// Image length in bytes.
    pub(super) fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// `len` bytes at `start`, or an error saying that `what` lies outside the image.
    pub(super) fn slice(
        &self,
        start: u64,
        len: u64,
        what: impl FnOnce() -> String,
    ) -> Result<&'a [u8], ReadError> {
        let out_of_range = |end: u64| ReadError::OutOfRange {
            what: what(),
            start,
            end,
            file_len: self.len(),
        };
        let Some(end) = start.checked_add(len) else {
            return Err(out_of_range(u64::MAX));
        };
        if end > self.len() {
            return Err(out_of_range(end));
        }
        // Both bounds are <= bytes.len(), which fits in usize.
        Ok(&self.bytes[start as usize..end as usize])
    }
}

/// Little-endian field readers over a slice whose length the caller has already checked.
/// They return 0 for bytes past the end rather than panicking, so a caller's mistake in a
/// length check shows up as a wrong value caught by later validation, never as a crash.
pub(super) fn le_u16(b: &[u8], at: usize) -> u16 {
    let mut out = [0u8; 2];
    if let Some(src) = b.get(at..at + 2) {
        out.copy_from_slice(src);
    }
    u16::from_le_bytes(out)
}

pub(super) fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut out = [0u8; 4];
    if let Some(src) = b.get(at..at + 4) {
        out.copy_from_slice(src);
    }
    u32::from_le_bytes(out)
}

pub(super) fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut out = [0u8; 8];
    if let Some(src) = b.get(at..at + 8) {
        out.copy_from_slice(src);
    }
    u64::from_le_bytes(out)
}

pub(super) fn byte(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}
