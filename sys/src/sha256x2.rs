//! Two SHA-256 computations at once with the x86 SHA extensions (SHA-NI), for fs-verity's
//! Merkle leaves: every 4 KiB block of a file is hashed on its own, so two blocks are two
//! independent messages of the same length.
//!
//! Why: one SHA-256 is a chain of 32 dependent `sha256rnds2` per 64-byte block, so a single
//! stream runs at the instruction's latency, not its throughput (`openssl speed -evp sha256`,
//! the `sha2` crate and ring all measure ~1.8 GB/s a core here). Interleaving the rounds of two
//! messages fills the gaps of each chain with the other's. This is the method of Linux's
//! `sha256_ni_finup2x` (arch/x86/lib/crypto/sha256-ni-asm.S), which the kernel's own fs-verity
//! uses for the same reason.
//!
//! Format: standard SHA-256 (FIPS 180-4), big-endian output; the message schedule and round
//! structure are those of Intel's SHA-NI reference code (as in the `sha2` crate's x86 backend),
//! with every step issued for both messages before the next.
//!
//! Safety: the one `unsafe` call enters the `#[target_feature]` code only after the CPU was
//! checked to have every feature it enables; the loads and stores inside read and write whole
//! 16-byte pieces of Rust arrays in bounds (no alignment is assumed: `loadu`/`storeu`).

/// The SHA-256 of two messages of equal length; `None` when the CPU lacks the SHA extensions
/// (SHA, SSE2, SSSE3, SSE4.1) or the lengths differ: the caller then hashes them one by one.
pub fn sha256_pair(a: &[u8], b: &[u8]) -> Option<[[u8; 32]; 2]> {
    if a.len() != b.len() {
        return None;
    }
    imp::sha256_pair(a, b)
}

/// Whether [`sha256_pair`] can run on this CPU.
pub fn available() -> bool {
    imp::available()
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    pub fn available() -> bool {
        false
    }

    pub fn sha256_pair(_a: &[u8], _b: &[u8]) -> Option<[[u8; 32]; 2]> {
        None
    }
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use core::arch::x86_64::*;

    /// SHA-256 block size.
    const BLOCK: usize = 64;

    /// The initial hash value (FIPS 180-4 §5.3.3).
    const H0: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];

    /// The round constants (FIPS 180-4 §4.2.2).
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    // The check sha2's own x86 backend makes (its crate, cpufeatures): CPUID leaves 1 and 7
    // only. std's `is_x86_feature_detected!` reads every leaf it knows at its first use, ~10
    // CPUIDs, each an exit to the hypervisor on a VM (~10 µs here): 1.5 % of a hook's time.
    cpufeatures::new!(sha_ni, "sha", "sse2", "ssse3", "sse4.1");

    pub fn available() -> bool {
        sha_ni::get()
    }

    pub fn sha256_pair(a: &[u8], b: &[u8]) -> Option<[[u8; 32]; 2]> {
        if !available() {
            return None;
        }
        let mut state = [H0, H0];
        let (blocks_a, rest_a) = a.as_chunks::<BLOCK>();
        let (blocks_b, rest_b) = b.as_chunks::<BLOCK>();
        // SAFETY: every feature `compress_pair` enables was detected on this CPU just above.
        unsafe { compress_pair(&mut state, blocks_a, blocks_b) };
        // The padding (FIPS 180-4 §5.1.1): 0x80, zeros, the bit length; one or two blocks.
        let mut tail = [[0u8; 2 * BLOCK]; 2];
        let tail_len = if rest_a.len() + 9 <= BLOCK {
            BLOCK
        } else {
            2 * BLOCK
        };
        let bits = (a.len() as u64).wrapping_mul(8).to_be_bytes();
        for (buf, rest) in tail.iter_mut().zip([rest_a, rest_b]) {
            buf[..rest.len()].copy_from_slice(rest);
            buf[rest.len()] = 0x80;
            buf[tail_len - 8..tail_len].copy_from_slice(&bits);
        }
        let (pad_a, _) = tail[0][..tail_len].as_chunks::<BLOCK>();
        let (pad_b, _) = tail[1][..tail_len].as_chunks::<BLOCK>();
        // SAFETY: as above.
        unsafe { compress_pair(&mut state, pad_a, pad_b) };
        let mut out = [[0u8; 32]; 2];
        for (digest, words) in out.iter_mut().zip(&state) {
            for (bytes, word) in digest.chunks_exact_mut(4).zip(words) {
                bytes.copy_from_slice(&word.to_be_bytes());
            }
        }
        Some(out)
    }

    /// Four round constants from `4 * i`, lowest lane first.
    macro_rules! k4 {
        ($i:expr) => {
            _mm_set_epi32(
                K[4 * $i + 3] as i32,
                K[4 * $i + 2] as i32,
                K[4 * $i + 1] as i32,
                K[4 * $i] as i32,
            )
        };
    }

    /// Four rounds of both messages with their message words `$wa`, `$wb` (rounds 4i..4i+3).
    macro_rules! rounds4 {
        ($abef0:ident, $cdgh0:ident, $abef1:ident, $cdgh1:ident, $wa:expr, $wb:expr, $i:expr) => {{
            let k = k4!($i);
            let t0 = _mm_add_epi32($wa, k);
            let t1 = _mm_add_epi32($wb, k);
            $cdgh0 = _mm_sha256rnds2_epu32($cdgh0, $abef0, t0);
            $cdgh1 = _mm_sha256rnds2_epu32($cdgh1, $abef1, t1);
            $abef0 = _mm_sha256rnds2_epu32($abef0, $cdgh0, _mm_shuffle_epi32(t0, 0x0E));
            $abef1 = _mm_sha256rnds2_epu32($abef1, $cdgh1, _mm_shuffle_epi32(t1, 0x0E));
        }};
    }

    /// The next four message words from the previous sixteen (`$v0` oldest).
    macro_rules! schedule {
        ($v0:expr, $v1:expr, $v2:expr, $v3:expr) => {
            _mm_sha256msg2_epu32(
                _mm_add_epi32(_mm_sha256msg1_epu32($v0, $v1), _mm_alignr_epi8($v3, $v2, 4)),
                $v3,
            )
        };
    }

    /// One 16-byte piece of a block, as four big-endian words.
    macro_rules! load_be {
        ($block:expr, $piece:expr, $mask:expr) => {
            // SAFETY: `$block` is a `[u8; 64]` and `$piece` < 4: 16 bytes in bounds; `loadu`
            // needs no alignment.
            _mm_shuffle_epi8(
                unsafe { _mm_loadu_si128($block.as_ptr().add(16 * $piece).cast()) },
                $mask,
            )
        };
    }

    /// A state as the SHA-NI register pair (ABEF, CDGH).
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn to_registers(state: &[u32; 8]) -> (__m128i, __m128i) {
        // SAFETY: `state` is 32 bytes: two in-bounds unaligned 16-byte loads.
        let (dcba, efgh) = unsafe {
            let p = state.as_ptr().cast::<__m128i>();
            (_mm_loadu_si128(p), _mm_loadu_si128(p.add(1)))
        };
        let cdab = _mm_shuffle_epi32(dcba, 0xB1);
        let efgh = _mm_shuffle_epi32(efgh, 0x1B);
        (
            _mm_alignr_epi8(cdab, efgh, 8),
            _mm_blend_epi16(efgh, cdab, 0xF0),
        )
    }

    /// The register pair (ABEF, CDGH) back into a state.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn from_registers(abef: __m128i, cdgh: __m128i, state: &mut [u32; 8]) {
        let feba = _mm_shuffle_epi32(abef, 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
        let dcba = _mm_blend_epi16(feba, dchg, 0xF0);
        let hgef = _mm_alignr_epi8(dchg, feba, 8);
        // SAFETY: `state` is 32 bytes: two in-bounds unaligned 16-byte stores.
        unsafe {
            let p = state.as_mut_ptr().cast::<__m128i>();
            _mm_storeu_si128(p, dcba);
            _mm_storeu_si128(p.add(1), hgef);
        }
    }

    /// Compress the blocks of two messages into their states, pairwise (as many pairs as the
    /// shorter list has blocks; callers pass equal counts).
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn compress_pair(state: &mut [[u32; 8]; 2], a: &[[u8; BLOCK]], b: &[[u8; BLOCK]]) {
        let mask = _mm_set_epi64x(
            0x0C0D_0E0F_0809_0A0Bu64 as i64,
            0x0405_0607_0001_0203u64 as i64,
        );
        let (mut abef0, mut cdgh0) = to_registers(&state[0]);
        let (mut abef1, mut cdgh1) = to_registers(&state[1]);
        for (block_a, block_b) in a.iter().zip(b) {
            let saved = (abef0, cdgh0, abef1, cdgh1);
            let mut a0 = load_be!(block_a, 0, mask);
            let mut a1 = load_be!(block_a, 1, mask);
            let mut a2 = load_be!(block_a, 2, mask);
            let mut a3 = load_be!(block_a, 3, mask);
            let mut b0 = load_be!(block_b, 0, mask);
            let mut b1 = load_be!(block_b, 1, mask);
            let mut b2 = load_be!(block_b, 2, mask);
            let mut b3 = load_be!(block_b, 3, mask);
            rounds4!(abef0, cdgh0, abef1, cdgh1, a0, b0, 0);
            rounds4!(abef0, cdgh0, abef1, cdgh1, a1, b1, 1);
            rounds4!(abef0, cdgh0, abef1, cdgh1, a2, b2, 2);
            rounds4!(abef0, cdgh0, abef1, cdgh1, a3, b3, 3);
            // The message words live in a window of five registers per message, rotating.
            let mut a4 = schedule!(a0, a1, a2, a3);
            let mut b4 = schedule!(b0, b1, b2, b3);
            rounds4!(abef0, cdgh0, abef1, cdgh1, a4, b4, 4);
            a0 = schedule!(a1, a2, a3, a4);
            b0 = schedule!(b1, b2, b3, b4);
            rounds4!(abef0, cdgh0, abef1, cdgh1, a0, b0, 5);
            a1 = schedule!(a2, a3, a4, a0);
            b1 = schedule!(b2, b3, b4, b0);
            rounds4!(abef0, cdgh0, abef1, cdgh1, a1, b1, 6);
            a2 = schedule!(a3, a4, a0, a1);
            b2 = schedule!(b3, b4, b0, b1);
            rounds4!(abef0, cdgh0, abef1, cdgh1, a2, b2, 7);
            a3 = schedule!(a4, a0, a1, a2);
            b3 = schedule!(b4, b0, b1, b2);
            rounds4!(abef0, cdgh0, abef1, cdgh1, a3, b3, 8);
            a4 = schedule!(a0, a1, a2, a3);
            b4 = schedule!(b0, b1, b2, b3);
            rounds4!(abef0, cdgh0, abef1, cdgh1, a4, b4, 9);
            a0 = schedule!(a1, a2, a3, a4);
            b0 = schedule!(b1, b2, b3, b4);
            rounds4!(abef0, cdgh0, abef1, cdgh1, a0, b0, 10);
            a1 = schedule!(a2, a3, a4, a0);
            b1 = schedule!(b2, b3, b4, b0);
            rounds4!(abef0, cdgh0, abef1, cdgh1, a1, b1, 11);
            a2 = schedule!(a3, a4, a0, a1);
            b2 = schedule!(b3, b4, b0, b1);
            rounds4!(abef0, cdgh0, abef1, cdgh1, a2, b2, 12);
            a3 = schedule!(a4, a0, a1, a2);
            b3 = schedule!(b4, b0, b1, b2);
            rounds4!(abef0, cdgh0, abef1, cdgh1, a3, b3, 13);
            a4 = schedule!(a0, a1, a2, a3);
            b4 = schedule!(b0, b1, b2, b3);
            rounds4!(abef0, cdgh0, abef1, cdgh1, a4, b4, 14);
            a0 = schedule!(a1, a2, a3, a4);
            b0 = schedule!(b1, b2, b3, b4);
            rounds4!(abef0, cdgh0, abef1, cdgh1, a0, b0, 15);
            abef0 = _mm_add_epi32(abef0, saved.0);
            cdgh0 = _mm_add_epi32(cdgh0, saved.1);
            abef1 = _mm_add_epi32(abef1, saved.2);
            cdgh1 = _mm_add_epi32(cdgh1, saved.3);
        }
        let [state_a, state_b] = state;
        from_registers(abef0, cdgh0, state_a);
        from_registers(abef1, cdgh1, state_b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(digest: &[u8; 32]) -> String {
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// FIPS 180-4 example vectors, and a one-padding-block / two-padding-block boundary pair.
    #[test]
    fn known_vectors_when_the_cpu_has_sha_ni() {
        if !available() {
            eprintln!("no SHA-NI on this CPU: sha256_pair is None, callers hash one by one");
            assert!(sha256_pair(b"abc", b"abc").is_none());
            return;
        }
        let [abc, empty] = [
            sha256_pair(b"abc", b"abc").expect("SHA-NI"),
            sha256_pair(b"", b"").expect("SHA-NI"),
        ];
        assert_eq!(
            hex(&abc[0]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(abc[0], abc[1]);
        assert_eq!(
            hex(&empty[1]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        let other = [b'x'; 56];
        let pair = sha256_pair(long, &other).expect("SHA-NI");
        assert_eq!(
            hex(&pair[0]),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_ne!(pair[0], pair[1]);
        assert!(sha256_pair(b"a", b"ab").is_none());
    }
}
