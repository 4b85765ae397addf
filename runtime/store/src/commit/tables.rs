//! The tables one batch writes, opened once per transaction, and the
//! bookkeeping that keeps the pending index and the counters in step with
//! the mailboxes.
//!
//! The pending depths, the outbox depths and the per-actor counters change
//! with every message
//! (a send adds one, its turn takes one away and counts itself), and a
//! batch often holds both for the same actor. They are therefore kept in
//! memory for the length of the batch and written once per actor when it
//! ends ([`Tables::flush`]): a B-tree read and write per actor and batch
//! instead of several per message. Everything in the batch reads them
//! through the same maps, so a check (a mailbox bound) sees what the
//! batch's earlier requests did.

use std::cell::RefCell;
use std::collections::HashMap;

use redb::{ReadableTable, WriteTransaction};

use super::logged::{Logged, ReadOnly};
use crate::envelope::{Envelope, MAX_PRIORITY, decode_record, encode_record};
use crate::error::StoreError;
use crate::log::FrameBuf;
use crate::schema::*;
use crate::time::now_ms;

/// The tables a batch writes, opened once per transaction.
pub(super) struct Tables<'t> {
    pub(super) mailbox: Logged<'t, (&'static str, u8, u64), &'static [u8]>,
    pending: Logged<'t, &'static str, Depths>,
    delayed: Logged<'t, (u64, u64), &'static [u8]>,
    delayed_by_actor: Logged<'t, (&'static str, u64, u64), u128>,
    pub(super) state: Logged<'t, (&'static str, &'static str), &'static [u8]>,
    pub(super) types: ReadOnly<'t, &'static str, &'static [u8]>,
    pub(super) dead: Logged<'t, u64, &'static [u8]>,
    pub(super) replies: Logged<'t, u128, &'static [u8]>,
    stats: Logged<'t, &'static str, &'static [u8]>,
    pub(super) meta: Logged<'t, &'static str, u64>,
    pub(super) dedup: Logged<'t, (&'static str, &'static str), u64>,
    subscriptions: Logged<'t, (&'static str, &'static str), &'static str>,
    patterns: Logged<'t, (&'static str, &'static str), &'static str>,
    timers: Logged<'t, u128, (u64, u64)>,
    pub(super) crashes: Logged<'t, u128, (u64, u64)>,
    pub(super) placements: Logged<'t, &'static str, &'static [u8]>,
    pub(super) outbox: Logged<'t, (&'static str, u64), &'static [u8]>,
    pub(super) outbox_order: Logged<'t, (&'static str, u8, u64), ()>,
    outbox_depth: Logged<'t, &'static str, u64>,
    pub(super) inbound: Logged<'t, (&'static str, u64), ()>,
    peers: ReadOnly<'t, &'static str, &'static str>,
    pub(super) handoffs: Logged<'t, (&'static str, u64), ()>,
    replies_by_actor: Logged<'t, (&'static str, u128), ()>,
    reply_owners: Logged<'t, u128, &'static str>,
    pub(super) moved_actors: Logged<'t, &'static str, (&'static str, u64)>,
    pub(super) handoffs_done: Logged<'t, (&'static str, u64, &'static str), ()>,
    /// Depths read or changed in this batch, and whether they changed.
    depths: HashMap<String, (Depths, bool)>,
    /// Counters changed in this batch.
    counters: HashMap<String, ActorStats>,
    /// Outbox depths per peer read or changed in this batch, like `depths`.
    outbox_depths: HashMap<String, (u64, bool)>,
}

impl<'t> Tables<'t> {
    pub(super) fn open(txn: &'t WriteTransaction, frame: &'t RefCell<FrameBuf>) -> Result<Self, StoreError> {
        Ok(Self {
            mailbox: Logged::open(txn, MAILBOX, frame)?,
            pending: Logged::open(txn, PENDING, frame)?,
            delayed: Logged::open(txn, DELAYED, frame)?,
            delayed_by_actor: Logged::open(txn, DELAYED_BY_ACTOR, frame)?,
            state: Logged::open(txn, STATE, frame)?,
            types: ReadOnly::open(txn, TYPES)?,
            dead: Logged::open(txn, DEAD, frame)?,
            replies: Logged::open(txn, REPLIES, frame)?,
            stats: Logged::open(txn, STATS, frame)?,
            meta: Logged::open(txn, META, frame)?,
            dedup: Logged::open(txn, DEDUP, frame)?,
            subscriptions: Logged::open(txn, SUBSCRIPTIONS, frame)?,
            patterns: Logged::open(txn, SUBSCRIPTION_PATTERNS, frame)?,
            timers: Logged::open(txn, TIMERS, frame)?,
            crashes: Logged::open(txn, CRASHES, frame)?,
            placements: Logged::open(txn, PLACEMENTS, frame)?,
            outbox: Logged::open(txn, OUTBOX, frame)?,
            outbox_order: Logged::open(txn, OUTBOX_ORDER, frame)?,
            outbox_depth: Logged::open(txn, OUTBOX_DEPTH, frame)?,
            inbound: Logged::open(txn, INBOUND, frame)?,
            peers: ReadOnly::open(txn, PEERS)?,
            handoffs: Logged::open(txn, HANDOFFS, frame)?,
            replies_by_actor: Logged::open(txn, REPLIES_BY_ACTOR, frame)?,
            reply_owners: Logged::open(txn, REPLY_OWNERS, frame)?,
            moved_actors: Logged::open(txn, MOVED_ACTORS, frame)?,
            handoffs_done: Logged::open(txn, HANDOFFS_DONE, frame)?,
            depths: HashMap::new(),
            counters: HashMap::new(),
            outbox_depths: HashMap::new(),
        })
    }

    /// Subscribes `actor` to `topic` (a topic or a pattern) with `filter`.
    pub(super) fn subscribe(&mut self, topic: &str, actor: &str, filter: &str) -> Result<(), StoreError> {
        self.subscriptions.insert((topic, actor), filter)?;
        if crate::topic::is_pattern(topic) {
            self.patterns.insert((topic, actor), filter)?;
        }
        Ok(())
    }

    /// Ends a subscription; returns whether there was one.
    pub(super) fn unsubscribe(&mut self, topic: &str, actor: &str) -> Result<bool, StoreError> {
        self.patterns.remove((topic, actor))?;
        Ok(self.subscriptions.remove((topic, actor))?.is_some())
    }

    /// The subscriptions a publish to `topic` reaches, as `(subscriber,
    /// filter)`: those to the topic itself, then the patterns it matches.
    pub(super) fn subscribers(&self, topic: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut found = Vec::new();
        for entry in self.subscriptions.range((topic, "")..)? {
            let (key, filter) = entry?;
            let (entry_topic, subscriber) = key.value();
            if entry_topic != topic {
                break;
            }
            found.push((subscriber.to_string(), filter.value().to_string()));
        }
        for entry in self.patterns.iter()? {
            let (key, filter) = entry?;
            let (pattern, subscriber) = key.value();
            if crate::topic::matches(pattern, topic) {
                found.push((subscriber.to_string(), filter.value().to_string()));
            }
        }
        Ok(found)
    }

    /// Stores the reply `actor` gave to call `id`, indexed by actor.
    pub(super) fn put_reply(&mut self, actor: &str, id: u128, stored: &[u8]) -> Result<(), StoreError> {
        self.replies.insert(id, stored)?;
        self.replies_by_actor.insert((actor, id), ())?;
        self.reply_owners.insert(id, actor)?;
        Ok(())
    }

    /// Removes the stored reply to call `id` and its index rows.
    pub(super) fn remove_reply(&mut self, id: u128) -> Result<(), StoreError> {
        self.replies.remove(id)?;
        let owner = self.reply_owners.remove(id)?.map(|v| v.value().to_string());
        if let Some(actor) = owner {
            self.replies_by_actor.remove((actor.as_str(), id))?;
        }
        Ok(())
    }

    /// The call ids of the replies `actor` gave.
    pub(super) fn replies_of(&self, actor: &str) -> Result<Vec<u128>, StoreError> {
        let mut ids = Vec::new();
        for entry in self.replies_by_actor.range((actor, 0u128)..=(actor, u128::MAX))? {
            ids.push(entry?.0.value().1);
        }
        Ok(ids)
    }

    /// Every node this one has met, but `me`: where a publication is relayed.
    pub(super) fn peers(&self, me: &str) -> Result<Vec<String>, StoreError> {
        let mut peers = Vec::new();
        for entry in self.peers.iter()? {
            let id = entry?.0.value().to_string();
            if id != me {
                peers.push(id);
            }
        }
        Ok(peers)
    }

    /// Writes what this batch changed of the depths and counters.
    pub(super) fn flush(&mut self) -> Result<(), StoreError> {
        for (actor, (depths, changed)) in std::mem::take(&mut self.depths) {
            match (changed, depths.iter().all(|d| *d == 0)) {
                (false, _) => {}
                (true, true) => {
                    self.pending.remove(actor.as_str())?;
                }
                (true, false) => {
                    self.pending.insert(actor.as_str(), depths)?;
                }
            }
        }
        for (peer, (depth, changed)) in std::mem::take(&mut self.outbox_depths) {
            match (changed, depth) {
                (false, _) => {}
                (true, 0) => {
                    self.outbox_depth.remove(peer.as_str())?;
                }
                (true, depth) => {
                    self.outbox_depth.insert(peer.as_str(), depth)?;
                }
            }
        }
        for (actor, stats) in std::mem::take(&mut self.counters) {
            self.stats.insert(actor.as_str(), encode_record(&stats).as_slice())?;
        }
        Ok(())
    }

    /// `actor`'s pending messages by priority, as of this point in the batch.
    pub(super) fn depths(&mut self, actor: &str) -> Result<Depths, StoreError> {
        if let Some((depths, _)) = self.depths.get(actor) {
            return Ok(*depths);
        }
        let depths = self.pending.get(actor)?.map(|v| v.value()).unwrap_or_default();
        self.depths.insert(actor.to_string(), (depths, false));
        Ok(depths)
    }

    /// Messages in `peer`'s outbox, as of this point in the batch.
    pub(super) fn outbox_depth(&mut self, peer: &str) -> Result<u64, StoreError> {
        if let Some((depth, _)) = self.outbox_depths.get(peer) {
            return Ok(*depth);
        }
        let depth = self.outbox_depth.get(peer)?.map_or(0, |v| v.value());
        self.outbox_depths.insert(peer.to_string(), (depth, false));
        Ok(depth)
    }

    /// Adds `change` to `peer`'s outbox depth.
    pub(super) fn count_outbox(&mut self, peer: &str, change: i64) -> Result<(), StoreError> {
        let depth = self.outbox_depth(peer)?.saturating_add_signed(change);
        self.outbox_depths.insert(peer.to_string(), (depth, true));
        Ok(())
    }

    /// Adds `change` to `actor`'s pending count of `priority`.
    fn count_pending(&mut self, actor: &str, priority: u8, change: i64) -> Result<(), StoreError> {
        if !self.depths.contains_key(actor) {
            self.depths(actor)?;
        }
        if let Some((depths, changed)) = self.depths.get_mut(actor) {
            let depth = &mut depths[usize::from(priority.min(MAX_PRIORITY))];
            *depth = depth.saturating_add_signed(change);
            *changed = true;
        }
        Ok(())
    }

    pub(super) fn put_in_mailbox(&mut self, env: &Envelope, seq: u64) -> Result<(), StoreError> {
        self.mailbox.insert((env.to.as_str(), slot(env.priority), seq), env.encode().as_slice())?;
        self.count_pending(&env.to, env.priority, 1)
    }

    /// Removes a handled message; refuses if it is no longer there.
    pub(super) fn take_from_mailbox(
        &mut self,
        actor: &str,
        key: MessageKey,
        id: Option<ulid::Ulid>,
    ) -> Result<(), StoreError> {
        if self.mailbox.remove((actor, key.slot, key.seq))?.is_none() {
            let id = id.map(|i| i.to_string()).unwrap_or_else(|| format!("#{}", key.seq));
            return Err(StoreError::MessageGone { actor: actor.to_string(), id });
        }
        self.count_pending(actor, key.priority(), -1)
    }

    /// Holds `env` back until `due`, under `seq`.
    pub(super) fn put_delayed(&mut self, env: &Envelope, due: u64, seq: u64) -> Result<(), StoreError> {
        self.delayed.insert((due, seq), env.encode().as_slice())?;
        self.delayed_by_actor.insert((env.to.as_str(), due, seq), env.id.0)?;
        self.timers.insert(env.id.0, (due, seq))?;
        Ok(())
    }

    /// The delayed messages due by `now` (at most `limit`), taken out of
    /// the delayed queue: `(seq, message)`, soonest first.
    pub(super) fn take_due(&mut self, now: u64, limit: usize) -> Result<Vec<(u64, Envelope)>, StoreError> {
        let mut keys = Vec::new();
        for entry in self.delayed.range((0, 0)..=(now, u64::MAX))?.take(limit) {
            keys.push(entry?.0.value());
        }
        let mut due = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(env) = self.remove_delayed(key)? {
                due.push((key.1, env));
            }
        }
        Ok(due)
    }

    /// Removes the delayed message under `key` from the queue and its indexes.
    fn remove_delayed(&mut self, key: (u64, u64)) -> Result<Option<Envelope>, StoreError> {
        let Some(bytes) = self.delayed.remove(key)?.map(|v| v.value().to_vec()) else { return Ok(None) };
        let env = Envelope::decode(&bytes, "delayed")?;
        self.delayed_by_actor.remove((env.to.as_str(), key.0, key.1))?;
        self.timers.remove(env.id.0)?;
        Ok(Some(env))
    }

    /// A guest cancels a timer of its own (one it sent, or one sent to it).
    pub(super) fn cancel_timer(&mut self, actor: &str, id: ulid::Ulid) -> Result<(), StoreError> {
        let Some(key) = self.timers.get(id.0)?.map(|v| v.value()) else { return Ok(()) };
        let Some(bytes) = self.delayed.get(key)?.map(|v| v.value().to_vec()) else { return Ok(()) };
        let env = Envelope::decode(&bytes, "delayed")?;
        if env.to == actor || env.from.as_deref() == Some(actor) {
            self.remove_delayed(key)?;
        }
        Ok(())
    }

    /// Empties `actor`'s mailbox and its delayed messages; returns how many
    /// messages went.
    pub(super) fn clear_mailbox(&mut self, actor: &str) -> Result<usize, StoreError> {
        let queued = self.take_mailbox(actor)?.len();
        let mut delayed = Vec::new();
        for entry in self.delayed_by_actor.range((actor, 0, 0)..=(actor, u64::MAX, u64::MAX))? {
            let (key, _) = entry?;
            let (_, due, seq) = key.value();
            delayed.push((due, seq));
        }
        for key in &delayed {
            self.remove_delayed(*key)?;
        }
        Ok(queued + delayed.len())
    }

    /// Takes every message out of `actor`'s mailbox, in handling order (the
    /// encoded envelopes).
    pub(super) fn take_mailbox(&mut self, actor: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let taken = self.mailbox.take_range((actor, 0, 0)..=(actor, u8::MAX, u64::MAX))?;
        self.depths(actor)?;
        if let Some((depths, changed)) = self.depths.get_mut(actor) {
            *depths = Depths::default();
            *changed = true;
        }
        Ok(taken)
    }

    /// `actor`'s subscriptions as `(topic, filter)`. Subscriptions are
    /// keyed by topic, so this reads them all: it runs once per actor that
    /// moves, not on the message path.
    pub(super) fn subscriptions_of(&self, actor: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut found = Vec::new();
        for entry in self.subscriptions.iter()? {
            let (key, filter) = entry?;
            let (topic, subscriber) = key.value();
            if subscriber == actor {
                found.push((topic.to_string(), filter.value().to_string()));
            }
        }
        Ok(found)
    }

    /// Deletes every state entry of `actor`; returns how many went.
    pub(super) fn clear_state(&mut self, actor: &str) -> Result<usize, StoreError> {
        // Every `(actor, key)` sorts before `(actor + "\0", "")`, and every
        // other actor's entry (`actor` + more characters) after it.
        let end = format!("{actor}\0");
        Ok(self.state.take_range((actor, "")..(end.as_str(), ""))?.len())
    }

    /// An operator cancels the delayed message `id`; returns whether it was pending.
    pub(super) fn cancel_delayed(&mut self, id: ulid::Ulid) -> Result<bool, StoreError> {
        let Some(key) = self.timers.get(id.0)?.map(|v| v.value()) else { return Ok(false) };
        Ok(self.remove_delayed(key)?.is_some())
    }

    /// Adds the counters `actor` arrived with from its old owner to those
    /// kept here. Turns are counted where they ran, so the sum is its whole
    /// history: a store written before counters moved may still hold some
    /// of an earlier stay, and the old owner's may be such leftovers.
    pub(super) fn add_stats(&mut self, actor: &str, arrived: &ActorStats) -> Result<(), StoreError> {
        self.with_stats(actor, |stats| {
            stats.processed = stats.processed.saturating_add(arrived.processed);
            stats.failed = stats.failed.saturating_add(arrived.failed);
            stats.dead_lettered = stats.dead_lettered.saturating_add(arrived.dead_lettered);
            if arrived.last_activity_ms >= stats.last_activity_ms {
                stats.last_activity_ms = arrived.last_activity_ms;
                stats.last_error = arrived.last_error.clone().or(stats.last_error.take());
            }
        })
    }

    /// Deletes `actor`'s counters (it moved away); whether it had any.
    pub(super) fn forget_stats(&mut self, actor: &str) -> Result<bool, StoreError> {
        let cached = self.counters.remove(actor).is_some();
        Ok(self.stats.remove(actor)?.is_some() || cached)
    }

    pub(super) fn update_stats(&mut self, actor: &str, change: impl FnOnce(&mut ActorStats)) -> Result<(), StoreError> {
        self.with_stats(actor, |stats| {
            change(stats);
            stats.last_activity_ms = now_ms();
        })
    }

    /// Changes `actor`'s counters as of this point in the batch (written
    /// once, by [`Tables::flush`]).
    fn with_stats(&mut self, actor: &str, change: impl FnOnce(&mut ActorStats)) -> Result<(), StoreError> {
        if !self.counters.contains_key(actor) {
            let stored = match self.stats.get(actor)? {
                Some(v) => decode_record::<ActorStats>(v.value(), "actor_stats")?,
                None => ActorStats::default(),
            };
            self.counters.insert(actor.to_string(), stored);
        }
        if let Some(stats) = self.counters.get_mut(actor) {
            change(stats);
        }
        Ok(())
    }
}
