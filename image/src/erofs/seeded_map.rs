//! The EROFS writer's hash maps: foldhash seeded once per process (see [`Map`]). A leaf of
//! the writer, apart so the writer stays one file's length.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use foldhash::fast::SeedableRandomState;
use foldhash::SharedSeed;

/// The writer's maps (keyed by xattr bytes and inode indexes): foldhash, several times faster
/// than std's SipHash on these keys (SipHash was a fifth of the writer's time for a tree of
/// 100k files), seeded once per process from std's random keys, so that colliding xattrs cannot
/// be prepared in advance for a build (SipHash's purpose here; nothing outlives the process).
pub(super) type Map<K, V> = HashMap<K, V, SeedableRandomState>;

fn map_hasher() -> SeedableRandomState {
    static SEED: OnceLock<(u64, SharedSeed)> = OnceLock::new();
    let (per_map, shared) = SEED.get_or_init(|| {
        let random = std::hash::RandomState::new();
        (
            random.hash_one(1u64),
            SharedSeed::from_u64(random.hash_one(0u64)),
        )
    });
    SeedableRandomState::with_seed(*per_map, shared)
}

pub(super) fn new_map<K, V>(capacity: usize) -> Map<K, V> {
    HashMap::with_capacity_and_hasher(capacity, map_hasher())
}
