//! The committed state an activation has already read, kept so that the
//! next turn's `state.get` of the same key costs a map lookup instead of a
//! store read transaction.
//!
//! It is sound because an actor's state has one writer: its own turns,
//! which run one at a time, each committed before the next starts. The cache
//! therefore holds exactly what the store holds for the keys it knows, on
//! one condition the node keeps: **when a turn's commit fails, the
//! activation is dropped** (and this cache with it). The effects of a
//! completed turn are folded in when the turn ends, before its commit; a
//! commit that then fails takes the whole activation away.
//!
//! The cache is bounded by [`BUDGET_BYTES`] of keys and values. When it is
//! full it is emptied and starts over: an actor that reads ever-new keys
//! (one `applied/<id>` per message, say) pays one clear per budget's worth
//! of keys instead of tracking recency on every read.

use std::collections::HashMap;

/// Most bytes of keys and values one activation caches.
pub const BUDGET_BYTES: usize = 16 << 10;

/// What the store holds for some of an actor's keys (`None`: no value).
#[derive(Default)]
pub(crate) struct StateCache {
    entries: HashMap<String, Option<Vec<u8>>>,
    bytes: usize,
}

impl StateCache {
    /// The committed value of `key`, if the cache knows it.
    pub(crate) fn get(&self, key: &str) -> Option<&Option<Vec<u8>>> {
        self.entries.get(key)
    }

    /// Records the committed value of `key`, as read or as written by a
    /// completed turn. A value larger than the budget is not kept (and
    /// whatever was known of its key is forgotten).
    pub(crate) fn put(&mut self, key: String, value: Option<Vec<u8>>) {
        let size = key.len() + value.as_ref().map_or(0, Vec::len);
        if let Some(old) = self.entries.remove(&key) {
            self.bytes -= key.len() + old.as_ref().map_or(0, Vec::len);
        }
        if size > BUDGET_BYTES {
            return;
        }
        if self.bytes + size > BUDGET_BYTES {
            self.entries = HashMap::new();
            self.bytes = 0;
        }
        self.bytes += size;
        self.entries.insert(key, value);
    }

    /// Bytes of keys and values held.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_key_is_answered_with_its_latest_value() {
        let mut cache = StateCache::default();
        assert_eq!(cache.get("count"), None);
        cache.put("count".into(), Some(vec![1]));
        cache.put("count".into(), Some(vec![2, 2]));
        assert_eq!(cache.get("count"), Some(&Some(vec![2, 2])));
        cache.put("count".into(), None);
        assert_eq!(cache.get("count"), Some(&None));
        assert_eq!(cache.bytes(), "count".len());
    }

    #[test]
    fn a_full_cache_starts_over_and_an_oversized_value_is_forgotten() {
        let mut cache = StateCache::default();
        let half = vec![0u8; BUDGET_BYTES / 2];
        cache.put("a".into(), Some(half.clone()));
        cache.put("b".into(), Some(half.clone()));
        assert_eq!(cache.get("a"), None, "the second half did not fit with the first");
        assert_eq!(cache.get("b"), Some(&Some(half)));
        cache.put("b".into(), Some(vec![0u8; BUDGET_BYTES + 1]));
        assert_eq!(cache.get("b"), None, "a stale value must not outlive a write too large to keep");
        assert_eq!(cache.bytes(), 0);
    }
}
