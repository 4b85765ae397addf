//! The tables one batch writes, opened once per transaction, and the
//! bookkeeping that keeps the pending index and the counters in step with
//! the mailboxes.

use redb::{ReadableTable, Table, WriteTransaction};

use crate::envelope::{Envelope, MAX_PRIORITY, decode_record, encode_record};
use crate::error::StoreError;
use crate::schema::*;
use crate::time::now_ms;

/// The tables a batch writes, opened once per transaction.
pub(super) struct Tables<'t> {
    pub(super) mailbox: Table<'t, (&'static str, u8, u64), &'static [u8]>,
    pub(super) pending: Table<'t, &'static str, Depths>,
    pub(super) delayed: Table<'t, (u64, u64), &'static [u8]>,
    pub(super) state: Table<'t, (&'static str, &'static str), &'static [u8]>,
    pub(super) types: Table<'t, &'static str, &'static [u8]>,
    pub(super) dead: Table<'t, u64, &'static [u8]>,
    pub(super) replies: Table<'t, u128, &'static [u8]>,
    pub(super) stats: Table<'t, &'static str, &'static [u8]>,
    pub(super) meta: Table<'t, &'static str, u64>,
    pub(super) dedup: Table<'t, (&'static str, &'static str), u64>,
    pub(super) subscriptions: Table<'t, (&'static str, &'static str), &'static str>,
    pub(super) timers: Table<'t, u128, (u64, u64)>,
}

impl<'t> Tables<'t> {
    pub(super) fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            mailbox: txn.open_table(MAILBOX)?,
            pending: txn.open_table(PENDING)?,
            delayed: txn.open_table(DELAYED)?,
            state: txn.open_table(STATE)?,
            types: txn.open_table(TYPES)?,
            dead: txn.open_table(DEAD)?,
            replies: txn.open_table(REPLIES)?,
            stats: txn.open_table(STATS)?,
            meta: txn.open_table(META)?,
            dedup: txn.open_table(DEDUP)?,
            subscriptions: txn.open_table(SUBSCRIPTIONS)?,
            timers: txn.open_table(TIMERS)?,
        })
    }

    pub(super) fn put_in_mailbox(&mut self, env: &Envelope, seq: u64) -> Result<(), StoreError> {
        self.mailbox.insert((env.to.as_str(), slot(env.priority), seq), env.encode().as_slice())?;
        let mut depths = self.pending.get(env.to.as_str())?.map(|v| v.value()).unwrap_or_default();
        depths[usize::from(env.priority.min(MAX_PRIORITY))] += 1;
        self.pending.insert(env.to.as_str(), depths)?;
        Ok(())
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
        let mut depths = self.pending.get(actor)?.map(|v| v.value()).unwrap_or_default();
        let priority = usize::from(MAX_PRIORITY.saturating_sub(key.slot));
        depths[priority] = depths[priority].saturating_sub(1);
        if depths.iter().all(|d| *d == 0) {
            self.pending.remove(actor)?;
        } else {
            self.pending.insert(actor, depths)?;
        }
        Ok(())
    }

    /// Removes the delayed message `id` if `actor` sent it or is to get it.
    pub(super) fn cancel_timer(&mut self, actor: &str, id: ulid::Ulid) -> Result<(), StoreError> {
        let Some(key) = self.timers.get(id.0)?.map(|v| v.value()) else { return Ok(()) };
        let Some(bytes) = self.delayed.get(key)?.map(|v| v.value().to_vec()) else { return Ok(()) };
        let env = Envelope::decode(&bytes, "delayed")?;
        if env.to == actor || env.from.as_deref() == Some(actor) {
            self.delayed.remove(key)?;
            self.timers.remove(id.0)?;
        }
        Ok(())
    }

    pub(super) fn update_stats(&mut self, actor: &str, change: impl FnOnce(&mut ActorStats)) -> Result<(), StoreError> {
        let mut stats = match self.stats.get(actor)? {
            Some(v) => decode_record::<ActorStats>(v.value(), "actor_stats")?,
            None => ActorStats::default(),
        };
        change(&mut stats);
        stats.last_activity_ms = now_ms();
        self.stats.insert(actor, encode_record(&stats).as_slice())?;
        Ok(())
    }
}
