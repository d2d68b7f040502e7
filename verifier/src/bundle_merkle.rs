//! RFC 9162 Merkle tree hashing for transparency-log inclusion proofs: the root a proof leads
//! to from a leaf. A leaf module used by the bundle verifiers and re-exported by
//! `bundle_verify`.

use sha2::{Digest as _, Sha256};

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// RFC 9162 §2.1.3.2: the root an inclusion proof leads to from `leaf`.
pub fn root_from_inclusion_proof(
    leaf_index: u64,
    tree_size: u64,
    leaf: [u8; 32],
    proof: &[[u8; 32]],
) -> Result<[u8; 32], String> {
    if leaf_index >= tree_size {
        return Err(format!(
            "leaf index {leaf_index} is not below tree size {tree_size}"
        ));
    }
    let (mut f_n, mut s_n, mut r) = (leaf_index, tree_size - 1, leaf);
    for p in proof {
        if s_n == 0 {
            return Err("more proof hashes than the tree has levels".into());
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err("fewer proof hashes than the tree has levels".into());
    }
    Ok(r)
}
