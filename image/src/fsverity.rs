//! fs-verity digests computed in userspace.
//!
//! fs-verity (Documentation/filesystems/fsverity.rst) names a file by the root of a Merkle tree
//! over its content, hashed together with a descriptor. cfsgate computes it exactly as the kernel
//! and `fsverity digest` do, so an object's name in the store is the digest the kernel enforces.
//!
//! Tree: level 0 hashes each 4096-byte data block (the last one zero-padded); every level above
//! hashes 4096-byte blocks of the digests below it (128 SHA-256 or 64 SHA-512 digests a block,
//! zero-padded), until one block remains; the root hash is the hash of that block. A file of
//! 1..=4096 bytes has the hash of its one padded block as root; an empty file has an all-zero root.
//!
//! Descriptor (256 bytes), whose hash is the digest:
//!
//! | offset | size | field | value |
//! |---|---|---|---|
//! | 0 | 1 | version | 1 |
//! | 1 | 1 | hash_algorithm | 1 = SHA-256, 2 = SHA-512 |
//! | 2 | 1 | log_blocksize | 12 |
//! | 3 | 1 | salt_size | 0 |
//! | 4 | 4 | reserved | 0 |
//! | 8 | 8 | data_size | le64 file size |
//! | 16 | 64 | root_hash | zero-filled after the digest |
//! | 80 | 32 | salt | zeros |
//! | 112 | 144 | reserved | zeros |
//!
//! Memory is bounded: one 4096-byte buffer per tree level (at most 11 levels for 2^64 bytes).

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use sha2::Digest as _;

/// The fs-verity Merkle tree block size cfsgate uses (and composefs requires).
pub const BLOCK_SIZE: usize = 4096;

/// A digest that failed to parse from text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {expected}-hex-digit digest {text:?}")]
pub struct ParseDigestError {
    /// Number of hex digits the digest type needs (64 for SHA-256, 128 for SHA-512).
    pub expected: usize,
    /// The text that was given.
    pub text: String,
}

/// Lowercase hex digits, by value.
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

macro_rules! digest_type {
    ($name:ident, $len:expr, $doc:expr) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// Lowercase hex text.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parse exactly `2 * LEN` hex digits (either case).
            pub fn from_hex(text: &str) -> Result<Self, ParseDigestError> {
                let mut out = [0u8; $len];
                if text.len() != 2 * $len || hex::decode_to_slice(text, &mut out).is_err() {
                    return Err(ParseDigestError {
                        expected: 2 * $len,
                        text: text.chars().take(200).collect(),
                    });
                }
                Ok(Self(out))
            }

            /// From a byte slice of exactly `LEN` bytes.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                bytes.try_into().ok().map(Self)
            }

            /// The object-store path of this digest: `xx/` + the remaining hex digits. Built
            /// in one allocation of its final size: the walk makes one per file.
            pub fn object_path(&self) -> String {
                let mut path = String::with_capacity(2 * $len + 1);
                for (i, byte) in self.0.iter().enumerate() {
                    if i == 1 {
                        path.push('/');
                    }
                    path.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
                    path.push(char::from(HEX_DIGITS[usize::from(byte & 0xf)]));
                }
                path
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = ParseDigestError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_hex(s)
            }
        }
    };
}

digest_type!(
    FsVeritySha256,
    32,
    "An fs-verity file digest with SHA-256 (algorithm 1); a plain sha256 of content is `ContentSha256`."
);
digest_type!(
    FsVeritySha512,
    64,
    "An fs-verity file digest with SHA-512 (algorithm 2)."
);

/// A hash algorithm fs-verity supports.
pub trait Algorithm {
    /// fs-verity's `hash_algorithm` number.
    const ID: u8;
    /// The hasher.
    type Hasher: sha2::Digest + Clone;
    /// The typed digest it yields.
    type Digest: AsRef<[u8]> + Copy;
    /// Wrap hash output (exactly the digest size) as the typed digest.
    fn wrap(bytes: &[u8]) -> Self::Digest;
    /// The hashes of two full data blocks computed together, when this algorithm has such a
    /// path on this CPU (SHA-256 with the x86 SHA extensions: ~1.4x one block at a time);
    /// `None`: hash them one by one.
    fn hash_block_pair(_a: &[u8], _b: &[u8]) -> Option<[[u8; 32]; 2]> {
        None
    }
}

/// SHA-256 fs-verity (what composefs uses).
pub struct Sha256;
/// SHA-512 fs-verity.
pub struct Sha512;

impl Algorithm for Sha256 {
    const ID: u8 = 1;
    type Hasher = sha2::Sha256;
    type Digest = FsVeritySha256;
    fn wrap(bytes: &[u8]) -> FsVeritySha256 {
        let mut d = [0u8; 32];
        d.copy_from_slice(bytes);
        FsVeritySha256(d)
    }
    fn hash_block_pair(a: &[u8], b: &[u8]) -> Option<[[u8; 32]; 2]> {
        cfsgate_sys::sha256x2::sha256_pair(a, b)
    }
}

impl Algorithm for Sha512 {
    const ID: u8 = 2;
    type Hasher = sha2::Sha512;
    type Digest = FsVeritySha512;
    fn wrap(bytes: &[u8]) -> FsVeritySha512 {
        let mut d = [0u8; 64];
        d.copy_from_slice(bytes);
        FsVeritySha512(d)
    }
}

/// One level of the Merkle tree under construction: a block of child digests being filled.
struct Level {
    block: Vec<u8>,
    /// Digests pushed into this level since the start (to find the root at the end).
    pushed: u64,
}

/// Streaming fs-verity hasher: feed the file's bytes in any chunking, then [`finish`](Self::finish).
pub struct FsVerityHasher<A: Algorithm> {
    /// Partial data block not yet hashed.
    pending: Vec<u8>,
    /// Levels allocated so far (kept across [`reset`](Self::reset)); the first
    /// `levels_used` are in use.
    levels: Vec<Level>,
    levels_used: usize,
    size: u64,
    _alg: std::marker::PhantomData<A>,
}

impl<A: Algorithm> Default for FsVerityHasher<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Algorithm> FsVerityHasher<A> {
    /// A hasher for an empty file so far.
    pub fn new() -> Self {
        Self {
            pending: Vec::with_capacity(BLOCK_SIZE),
            levels: Vec::new(),
            levels_used: 0,
            size: 0,
            _alg: std::marker::PhantomData,
        }
    }

    fn hash_block(block: &[u8]) -> sha2::digest::Output<A::Hasher> {
        debug_assert!(block.len() <= BLOCK_SIZE);
        let mut h = A::Hasher::new();
        h.update(block);
        if block.len() < BLOCK_SIZE {
            const ZEROS: [u8; BLOCK_SIZE] = [0; BLOCK_SIZE];
            h.update(&ZEROS[block.len()..]);
        }
        h.finalize()
    }

    /// Add a digest to level `index`, hashing full blocks upward.
    fn push(&mut self, mut index: usize, digest: &[u8]) {
        // Hash output lives on the stack: this runs once per 4 KiB of input, so no allocation.
        let mut carry = sha2::digest::Output::<A::Hasher>::default();
        carry.copy_from_slice(digest);
        loop {
            if self.levels_used == index {
                if self.levels.len() == index {
                    self.levels.push(Level {
                        block: Vec::with_capacity(BLOCK_SIZE),
                        pushed: 0,
                    });
                }
                self.levels_used += 1;
            }
            let level = &mut self.levels[index];
            level.block.extend_from_slice(&carry);
            level.pushed += 1;
            if level.block.len() < BLOCK_SIZE {
                return;
            }
            carry = Self::hash_block(&level.block);
            level.block.clear();
            index += 1;
        }
    }

    /// Feed more file content.
    pub fn update(&mut self, mut data: &[u8]) {
        self.size += data.len() as u64;
        if !self.pending.is_empty() {
            let take = (BLOCK_SIZE - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == BLOCK_SIZE {
                let d = Self::hash_block(&self.pending);
                self.pending.clear();
                self.push(0, &d);
            }
        }
        // Full blocks are independent messages: two at a time where the algorithm can.
        while data.len() >= 2 * BLOCK_SIZE {
            let (a, rest) = data.split_at(BLOCK_SIZE);
            let (b, rest) = rest.split_at(BLOCK_SIZE);
            match A::hash_block_pair(a, b) {
                Some([da, db]) => {
                    self.push(0, &da);
                    self.push(0, &db);
                }
                None => {
                    let da = Self::hash_block(a);
                    self.push(0, &da);
                    let db = Self::hash_block(b);
                    self.push(0, &db);
                }
            }
            data = rest;
        }
        while data.len() >= BLOCK_SIZE {
            let d = Self::hash_block(&data[..BLOCK_SIZE]);
            self.push(0, &d);
            data = &data[BLOCK_SIZE..];
        }
        self.pending.extend_from_slice(data);
    }

    /// The root hash of the Merkle tree (all zeros for an empty file), in `out`.
    fn root_hash(&mut self, out: &mut [u8]) {
        if !self.pending.is_empty() {
            let d = Self::hash_block(&self.pending);
            self.pending.clear();
            self.push(0, &d);
        }
        if self.levels_used == 0 {
            out.fill(0);
            return;
        }
        let mut index = 0;
        loop {
            let top = index + 1 == self.levels_used;
            let level = &mut self.levels[index];
            if top && level.pushed == 1 {
                out.copy_from_slice(&level.block[..out.len()]);
                return;
            }
            if !level.block.is_empty() {
                let d = Self::hash_block(&level.block);
                level.block.clear();
                self.push(index + 1, &d);
            }
            index += 1;
        }
    }

    /// Finish: the fs-verity digest of everything fed.
    pub fn finish(mut self) -> A::Digest {
        self.finish_reset()
    }

    /// The fs-verity digest of everything fed so far; the hasher is then empty again, ready for
    /// the next file with its buffers kept (no allocation per file when one hasher is reused).
    pub fn finish_reset(&mut self) -> A::Digest {
        let mut root = sha2::digest::Output::<A::Hasher>::default();
        self.root_hash(&mut root);
        let mut descriptor = [0u8; 256];
        descriptor[0] = 1;
        descriptor[1] = A::ID;
        descriptor[2] = 12; // log2(BLOCK_SIZE)
        descriptor[8..16].copy_from_slice(&self.size.to_le_bytes());
        descriptor[16..16 + root.len()].copy_from_slice(&root);
        self.reset();
        A::wrap(&A::Hasher::digest(descriptor))
    }

    /// Forget everything fed (keeping the buffers).
    pub fn reset(&mut self) {
        self.pending.clear();
        for level in &mut self.levels {
            level.block.clear();
            level.pushed = 0;
        }
        self.levels_used = 0;
        self.size = 0;
    }
}

/// The SHA-256 fs-verity digest of a byte slice.
pub fn digest_bytes(data: &[u8]) -> FsVeritySha256 {
    let mut h = FsVerityHasher::<Sha256>::new();
    h.update(data);
    h.finish()
}

/// The fs-verity digest of everything a reader yields, in bounded memory.
pub fn digest_reader<A: Algorithm>(mut reader: impl Read) -> io::Result<A::Digest> {
    let mut h = FsVerityHasher::<A>::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two-block path gives what one block at a time gives (sha2), for every split of
    /// the input across `update` calls that makes pairs, singles and a tail.
    #[test]
    fn block_pairs_hash_as_single_blocks() {
        let data: Vec<u8> = (0..5 * BLOCK_SIZE as u32 + 77)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let (a, b) = (&data[..BLOCK_SIZE], &data[BLOCK_SIZE..2 * BLOCK_SIZE]);
        if let Some([da, db]) = Sha256::hash_block_pair(a, b) {
            assert_eq!(da[..], sha2::Sha256::digest(a)[..]);
            assert_eq!(db[..], sha2::Sha256::digest(b)[..]);
        }
        // Reference: the Merkle tree by hand, one sha2 call per block.
        let leaves: Vec<u8> = data
            .chunks(BLOCK_SIZE)
            .flat_map(|c| {
                let mut block = c.to_vec();
                block.resize(BLOCK_SIZE, 0);
                sha2::Sha256::digest(&block).to_vec()
            })
            .collect();
        let mut level = leaves.clone();
        level.resize(BLOCK_SIZE, 0);
        let root = sha2::Sha256::digest(&level);
        let mut descriptor = [0u8; 256];
        descriptor[0] = 1;
        descriptor[1] = 1;
        descriptor[2] = 12;
        descriptor[8..16].copy_from_slice(&(data.len() as u64).to_le_bytes());
        descriptor[16..48].copy_from_slice(&root);
        let expected = FsVeritySha256(sha2::Sha256::digest(descriptor).into());
        for split in [0, 1, BLOCK_SIZE, BLOCK_SIZE + 5, 3 * BLOCK_SIZE] {
            let mut h = FsVerityHasher::<Sha256>::new();
            h.update(&data[..split]);
            h.update(&data[split..]);
            assert_eq!(h.finish(), expected, "split at {split}");
        }
        assert_eq!(digest_bytes(&data), expected);
    }

    #[test]
    fn object_path_is_the_hex_split_after_two_digits() {
        assert_eq!(
            digest_bytes(b"hello world\n").object_path(),
            "37/061ef2ac4c21bec68489b56138c5780306a4ad7fe6676236ecdf2c9027cd92"
        );
        let sha512 = FsVeritySha512([0xa5; 64]);
        assert_eq!(sha512.object_path(), format!("a5/{}", "a5".repeat(63)));
    }

    #[test]
    fn known_digests() {
        assert_eq!(
            digest_bytes(b"").to_hex(),
            "3d248ca542a24fc62d1c43b916eae5016878e2533c88238480b26128a1f1af95"
        );
        assert_eq!(
            digest_bytes(b"hello world\n").to_hex(),
            "37061ef2ac4c21bec68489b56138c5780306a4ad7fe6676236ecdf2c9027cd92"
        );
    }

    #[test]
    fn chunking_does_not_matter() {
        let data: Vec<u8> = (0..(130 * 4096 + 17))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let whole = digest_bytes(&data);
        let mut h = FsVerityHasher::<Sha256>::new();
        for chunk in data.chunks(1000) {
            h.update(chunk);
        }
        assert_eq!(h.finish(), whole);
    }

    #[test]
    fn a_reused_hasher_gives_the_same_digests() {
        let big: Vec<u8> = (0..(129 * 4096 + 5)).map(|i| (i % 253) as u8).collect();
        let mut h = FsVerityHasher::<Sha256>::new();
        for data in [&big[..], b"", b"hello world\n", &big[..4096], &big[..]] {
            h.update(data);
            assert_eq!(h.finish_reset(), digest_bytes(data));
        }
    }
}
