//! What an activation knows of its actor's state, so that the next turn's
//! `state.get` of a known key costs a map lookup instead of a store read
//! transaction. Two layers:
//! - **unsettled** writes: what completed turns wrote whose commits are not
//!   yet durable. The store does not show them yet, so they are kept until
//!   the node reports the commit durable ([`StateCache::settle`]) and
//!   answer before anything else — this is what lets an actor run its next
//!   turn while the previous one's commit is on its way to disk;
//! - **committed** values, read from the store or settled, kept while they
//!   fit in [`BUDGET_BYTES`]. When that is full it is emptied and starts
//!   over: an actor that reads ever-new keys (one `applied/<id>` per
//!   message, say) pays one clear per budget's worth of keys instead of
//!   tracking recency on every read.
//!
//! It is sound because an actor's state has one writer: its own turns, which
//! run one at a time, and whose commits the store applies in the order they
//! ran. The two layers together therefore hold what the store will hold once
//! every submitted commit is durable, on one condition the node keeps:
//! **when a turn's commit fails, the activation is dropped** (and this cache
//! with it).

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Most bytes of keys and values one activation caches.
pub const BUDGET_BYTES: usize = 16 << 10;

/// What the store holds, or will hold, for some of an actor's keys (`None`:
/// no value).
#[derive(Default)]
pub(crate) struct StateCache {
    entries: HashMap<String, Option<Vec<u8>>>,
    bytes: usize,
    /// Writes not yet durable: the value and the turn that wrote it last.
    unsettled: BTreeMap<String, (Option<Vec<u8>>, u64)>,
    unsettled_bytes: usize,
}

impl StateCache {
    /// The latest value of `key`, if the cache knows it.
    pub(crate) fn get(&self, key: &str) -> Option<&Option<Vec<u8>>> {
        match self.unsettled.get(key) {
            Some((value, _)) => Some(value),
            None => self.entries.get(key),
        }
    }

    /// Records what turn number `turn` wrote; it stays until that turn is
    /// settled.
    pub(crate) fn write(&mut self, turn: u64, key: String, value: Option<Vec<u8>>) {
        self.unsettled_bytes += key.len() + value.as_ref().map_or(0, Vec::len);
        if let Some((old, _)) = self.unsettled.insert(key.clone(), (value, turn)) {
            self.unsettled_bytes -= key.len() + old.as_ref().map_or(0, Vec::len);
        }
    }

    /// The commits of turns up to number `through` are durable: what they
    /// wrote (and no later turn overwrote) is committed now.
    pub(crate) fn settle(&mut self, through: u64) {
        // Collected first: `put` needs the cache while the map is borrowed.
        let settled: Vec<_> = self.unsettled.extract_if(.., |_, (_, turn)| *turn <= through).collect();
        for (key, (value, _)) in settled {
            self.unsettled_bytes -= key.len() + value.as_ref().map_or(0, Vec::len);
            self.put(key, value);
        }
    }

    /// Bytes of keys and values written by turns not yet settled.
    pub(crate) fn unsettled_bytes(&self) -> usize {
        self.unsettled_bytes
    }

    /// `keys` (the store's keys starting with `prefix`) as they will be once
    /// the unsettled writes are durable.
    pub(crate) fn overlay_keys(&self, prefix: &str, keys: &mut BTreeSet<String>) {
        let unsettled = self.unsettled.range(prefix.to_string()..).take_while(|(k, _)| k.starts_with(prefix));
        for (key, (value, _)) in unsettled {
            match value {
                Some(_) => keys.insert(key.clone()),
                None => keys.remove(key),
            };
        }
    }

    /// Records the committed value of `key`, as read or settled. A value
    /// larger than the budget is not kept (and
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

    #[test]
    fn unsettled_writes_answer_first_and_are_never_evicted_until_settled() {
        let mut cache = StateCache::default();
        cache.put("count".into(), Some(vec![1]));
        cache.write(1, "count".into(), Some(vec![2]));
        cache.write(2, "count".into(), Some(vec![3]));
        cache.write(2, "gone".into(), None);
        // Reads that overflow the budget empty the committed layer only.
        cache.put("big".into(), Some(vec![0u8; BUDGET_BYTES - 4]));
        cache.put("bigger".into(), Some(vec![0u8; BUDGET_BYTES - 4]));
        assert_eq!(cache.get("count"), Some(&Some(vec![3])));
        assert_eq!(cache.get("gone"), Some(&None));
        // Turn 1 is durable, but turn 2 wrote `count` later: it stays.
        cache.settle(1);
        assert_eq!(cache.get("count"), Some(&Some(vec![3])));
        assert_eq!(cache.unsettled_bytes(), "count".len() + 1 + "gone".len());
        cache.settle(2);
        assert_eq!(cache.unsettled_bytes(), 0);
        assert_eq!(cache.get("count"), Some(&Some(vec![3])), "settled writes are committed values now");
    }

    #[test]
    fn listed_keys_show_unsettled_writes_and_deletes() {
        let mut cache = StateCache::default();
        cache.write(1, "a/new".into(), Some(vec![1]));
        cache.write(1, "a/old".into(), None);
        cache.write(1, "b/other".into(), Some(vec![1]));
        let mut keys: BTreeSet<String> = ["a/old".to_string(), "a/kept".to_string()].into();
        cache.overlay_keys("a/", &mut keys);
        assert_eq!(keys.into_iter().collect::<Vec<_>>(), ["a/kept", "a/new"]);
    }
}
