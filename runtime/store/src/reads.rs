//! The store's reads: each opens a redb read transaction, which sees the
//! last committed state and never blocks the group committer. Mailboxes,
//! the pending index, delayed messages, state, dead letters, stored
//! replies and counters, as the node, the API and the tests ask for them.

use redb::ReadableTable;

use crate::commit;
use crate::envelope::{Envelope, decode_record};
use crate::error::StoreError;
use crate::schema::*;
use crate::{Store, StoreTotals};

impl Store {
    /// The next message of `actor`: highest priority first, then oldest.
    pub fn next_message(&self, actor: &str) -> Result<Option<(MessageKey, Envelope)>, StoreError> {
        Ok(self.next_messages(actor, 1)?.pop())
    }

    /// Up to `limit` messages from the head of `actor`'s mailbox, in
    /// delivery order, with their keys (one read transaction for all).
    pub fn next_messages(&self, actor: &str, limit: usize) -> Result<Vec<(MessageKey, Envelope)>, StoreError> {
        let table = self.read()?.open_table(MAILBOX)?;
        let range = table.range((actor, 0u8, 0u64)..=(actor, u8::MAX, u64::MAX))?;
        range
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                let (_, slot, seq) = key.value();
                Ok((MessageKey { slot, seq }, Envelope::decode(value.value(), "mailbox")?))
            })
            .collect()
    }

    /// Up to `limit` messages of `actor` in delivery order, without taking them.
    pub fn peek_mailbox(&self, actor: &str, limit: usize) -> Result<Vec<Envelope>, StoreError> {
        let table = self.read()?.open_table(MAILBOX)?;
        let range = table.range((actor, 0u8, 0u64)..=(actor, u8::MAX, u64::MAX))?;
        range.take(limit).map(|entry| Envelope::decode(entry?.1.value(), "mailbox")).collect()
    }

    /// Pending persistent messages in `actor`'s mailbox (not counting delayed ones).
    pub fn mailbox_depth(&self, actor: &str) -> Result<u64, StoreError> {
        Ok(self.mailbox_depths(actor)?.iter().sum())
    }

    /// Pending persistent messages of `actor` by priority (index = priority).
    pub fn mailbox_depths(&self, actor: &str) -> Result<Depths, StoreError> {
        let table = self.read()?.open_table(PENDING)?;
        Ok(table.get(actor)?.map(|v| v.value()).unwrap_or_default())
    }

    /// Actors with pending messages, in address order, starting after
    /// `after`: the scheduler pages through this at start-up.
    pub fn pending_actors(&self, after: Option<&str>, limit: usize) -> Result<Vec<(String, u64)>, StoreError> {
        let table = self.read()?.open_table(PENDING)?;
        let range = match after {
            Some(after) => table.range::<&str>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))?,
            None => table.range::<&str>(..)?,
        };
        range
            .take(limit)
            .map(|entry| {
                let (k, v) = entry?;
                Ok((k.value().to_string(), v.value().iter().sum()))
            })
            .collect()
    }

    /// Actors known to the store (with pending messages, or that ever ran
    /// a turn), in address order, starting after `after`, with their
    /// mailbox depths by priority and their counters.
    pub fn list_actors(&self, after: Option<&str>, limit: usize) -> Result<Vec<ActorSummary>, StoreError> {
        use std::ops::Bound::{Excluded, Unbounded};
        let txn = self.read()?;
        let bounds = || (after.map_or(Unbounded, Excluded), Unbounded);
        // The first `limit` addresses of the union are among the first
        // `limit` of each table.
        let mut merged: std::collections::BTreeMap<String, ActorSummary> = Default::default();
        for entry in txn.open_table(PENDING)?.range::<&str>(bounds())?.take(limit) {
            let (k, v) = entry?;
            let address = k.value().to_string();
            merged.entry(address.clone()).or_insert_with(|| ActorSummary::named(address)).depths = v.value();
        }
        for entry in txn.open_table(STATS)?.range::<&str>(bounds())?.take(limit) {
            let (k, v) = entry?;
            let address = k.value().to_string();
            merged.entry(address.clone()).or_insert_with(|| ActorSummary::named(address)).stats =
                decode_record(v.value(), "actor_stats")?;
        }
        Ok(merged.into_values().take(limit).collect())
    }

    /// What the store knows of `actor`: its mailbox depths and counters,
    /// read in one transaction.
    pub fn actor_summary(&self, actor: &str) -> Result<ActorSummary, StoreError> {
        let txn = self.read()?;
        let depths = txn.open_table(PENDING)?.get(actor)?.map(|v| v.value()).unwrap_or_default();
        let stats = match txn.open_table(STATS)?.get(actor)? {
            Some(v) => decode_record(v.value(), "actor_stats")?,
            None => ActorStats::default(),
        };
        Ok(ActorSummary { address: actor.to_string(), depths, stats })
    }

    /// Totals over the whole store, for the dashboard and metrics: one
    /// read of each counted table's length and one pass over the pending
    /// index (one entry per actor with pending messages).
    pub fn totals(&self) -> Result<StoreTotals, StoreError> {
        use redb::ReadableTableMetadata;
        let txn = self.read()?;
        let mut totals = StoreTotals {
            actors: txn.open_table(STATS)?.len()?,
            dead_letters: txn.open_table(DEAD)?.len()?,
            delayed: txn.open_table(DELAYED)?.len()?,
            ..StoreTotals::default()
        };
        for entry in txn.open_table(PENDING)?.iter()? {
            let (_, depths) = entry?;
            totals.pending_actors += 1;
            for (total, depth) in totals.queued.iter_mut().zip(depths.value()) {
                *total += depth;
            }
        }
        Ok(totals)
    }

    /// When the earliest delayed message is due, if any.
    pub fn next_due(&self) -> Result<Option<u64>, StoreError> {
        let table = self.read()?.open_table(DELAYED)?;
        Ok(table.first()?.map(|(k, _)| k.value().0))
    }

    /// Whether the delayed message `id` (sent with a delay) is still pending.
    pub fn timer_pending(&self, id: ulid::Ulid) -> Result<bool, StoreError> {
        let table = self.read()?.open_table(TIMERS)?;
        Ok(table.get(id.0)?.is_some())
    }

    /// `actor`'s delayed messages (its timers, messages sent to it with a
    /// delay, its retries in backoff), soonest first: `(due_ms, message)`.
    pub fn delayed_of(&self, actor: &str, limit: usize) -> Result<Vec<(u64, Envelope)>, StoreError> {
        let txn = self.read()?;
        let (index, delayed) = (txn.open_table(DELAYED_BY_ACTOR)?, txn.open_table(DELAYED)?);
        let mut out = Vec::new();
        for entry in index.range((actor, 0, 0)..=(actor, u64::MAX, u64::MAX))?.take(limit) {
            let (key, _) = entry?;
            let (_, due, seq) = key.value();
            if let Some(bytes) = delayed.get((due, seq))? {
                out.push((due, Envelope::decode(bytes.value(), "delayed")?));
            }
        }
        Ok(out)
    }

    /// Delayed messages (timers and retries in backoff), soonest first.
    pub fn delayed(&self, limit: usize) -> Result<Vec<(u64, Envelope)>, StoreError> {
        let table = self.read()?.open_table(DELAYED)?;
        table
            .iter()?
            .take(limit)
            .map(|entry| {
                let (k, v) = entry?;
                Ok((k.value().0, Envelope::decode(v.value(), "delayed")?))
            })
            .collect()
    }

    /// One state value of `actor`.
    pub fn state_get(&self, actor: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let table = self.read()?.open_table(STATE)?;
        Ok(table.get((actor, key))?.map(|v| v.value().to_vec()))
    }

    /// `actor`'s state entries whose key starts with `prefix`, in key order.
    pub fn state_scan(&self, actor: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.state_page(actor, prefix, None, usize::MAX)
    }

    /// Up to `limit` of `actor`'s state entries under `prefix`, in key
    /// order, starting after the key `after` when given.
    pub fn state_page(
        &self,
        actor: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        use std::ops::Bound;
        let table = self.read()?.open_table(STATE)?;
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded((actor, after)),
            _ => Bound::Included((actor, prefix)),
        };
        let mut out = Vec::new();
        for entry in table.range::<(&str, &str)>((start, Bound::Unbounded))? {
            let (k, v) = entry?;
            let (a, key) = k.value();
            if a != actor || !key.starts_with(prefix) || out.len() == limit {
                break;
            }
            out.push((key.to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// `actor`'s state keys that start with `prefix`, in key order.
    pub fn state_keys(&self, actor: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.state_scan(actor, prefix)?.into_iter().map(|(k, _)| k).collect())
    }

    /// The dead letter `id`.
    pub fn dead_letter(&self, id: u64) -> Result<DeadLetter, StoreError> {
        let table = self.read()?.open_table(DEAD)?;
        match table.get(id)? {
            Some(v) => decode_record(v.value(), "dead_letters"),
            None => Err(StoreError::UnknownDeadLetter(id.to_string())),
        }
    }

    /// Dead letters, oldest first.
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        self.dead_letters_after(0, limit)
    }

    /// Up to `limit` dead letters of `actor`, oldest first. Scans the
    /// dead-letter queue (not indexed by actor) without decoding into memory
    /// more than it returns.
    pub fn dead_letters_of(&self, actor: &str, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let table = self.read()?.open_table(DEAD)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let dead: DeadLetter = decode_record(entry?.1.value(), "dead_letters")?;
            if dead.envelope.to == actor {
                out.push(dead);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Dead letters with an id above `after`, oldest first (for paging).
    pub fn dead_letters_after(&self, after: u64, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let table = self.read()?.open_table(DEAD)?;
        table
            .range(after.saturating_add(1)..)?
            .take(limit)
            .map(|entry| decode_record(entry?.1.value(), "dead_letters"))
            .collect()
    }

    /// The stored outcome of call `id`: once its turn has committed, `Ok`
    /// of the handler's (possibly absent) reply; once it was dead-lettered,
    /// `Err` of the error it failed with.
    #[allow(clippy::type_complexity)]
    pub fn reply(&self, id: ulid::Ulid) -> Result<Option<Result<Option<Vec<u8>>, String>>, StoreError> {
        let table = self.read()?.open_table(REPLIES)?;
        Ok(table.get(id.0)?.map(|v| commit::decode_reply(v.value())))
    }

    /// Per-actor counters.
    pub fn actor_stats(&self, actor: &str) -> Result<ActorStats, StoreError> {
        let table = self.read()?.open_table(STATS)?;
        match table.get(actor)? {
            Some(v) => decode_record(v.value(), "actor_stats"),
            None => Ok(ActorStats::default()),
        }
    }
}
