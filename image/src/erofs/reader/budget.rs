//! The work and memory one image may cost the reader ([`Budget`]), proportional to its size,
//! and the limits on decoded xattrs. A leaf every reader stage spends from.

use super::error::ReadError;
use crate::erofs::format::INODE_SLOT_SIZE;

/// Decoded xattr bytes allowed beyond the image size: shared xattrs are legitimately copied
/// into every inode that references them, so the decoded total can exceed the image; this and
/// [`XATTR_AMPLIFICATION`] bound that copying for hostile images.
pub const XATTR_DECODE_SLACK: u64 = 64 << 20;
/// Decoded xattr bytes allowed per image byte (a 4-byte shared reference to a 100-byte value
/// amplifies 25×; typical images stay far below this).
pub const XATTR_AMPLIFICATION: u64 = 32;
/// Per-xattr bookkeeping counted against the budget, so that many empty xattrs also cost.
const XATTR_OVERHEAD: u64 = 32;

/// Work and memory allowed for one image, proportional to its size. In a well-formed image
/// inodes, directory blocks and file data are disjoint parts of the file, so each total is at
/// most the file size; only shared xattrs are legitimately copied more than once.
pub(super) struct Budget {
    file_len: u64,
    inodes_left: u64,
    data_left: u64,
    xattr_left: u64,
}

impl Budget {
    pub(super) fn new(file_len: u64, inos: u64) -> Self {
        Budget {
            file_len,
            inodes_left: (file_len / INODE_SLOT_SIZE).min(inos),
            data_left: file_len,
            xattr_left: XATTR_DECODE_SLACK
                .saturating_add(file_len.saturating_mul(XATTR_AMPLIFICATION)),
        }
    }

    pub(super) fn exceeded(&self, what: &'static str, limit: u64) -> ReadError {
        ReadError::LimitExceeded {
            what,
            count: limit.saturating_add(1),
            limit,
            file_len: self.file_len,
        }
    }

    /// One more inode (limited by the superblock's count and by 32-byte slots in the file).
    pub(super) fn spend_inode(&mut self) -> Result<(), ReadError> {
        self.inodes_left = self.inodes_left.checked_sub(1).ok_or_else(|| {
            self.exceeded(
                "reachable inodes (superblock count or 32-byte slots in the file)",
                self.file_len / INODE_SLOT_SIZE,
            )
        })?;
        Ok(())
    }

    /// Directory or file data bytes about to be decoded.
    pub(super) fn spend_data(&mut self, bytes: u64) -> Result<(), ReadError> {
        self.data_left = self
            .data_left
            .checked_sub(bytes)
            .ok_or_else(|| self.exceeded("decoded directory and file data bytes", self.file_len))?;
        Ok(())
    }

    pub(super) fn spend_xattr(
        &mut self,
        key_len: usize,
        value_len: usize,
    ) -> Result<(), ReadError> {
        let cost = (key_len + value_len) as u64 + XATTR_OVERHEAD;
        let limit =
            XATTR_DECODE_SLACK.saturating_add(self.file_len.saturating_mul(XATTR_AMPLIFICATION));
        self.xattr_left = self
            .xattr_left
            .checked_sub(cost)
            .ok_or_else(|| self.exceeded("decoded xattr bytes", limit))?;
        Ok(())
    }
}
