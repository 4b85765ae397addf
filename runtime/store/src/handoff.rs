//! The store's side of moving an actor to another node (issue 20, see
//! `docs/design/handoff.md`): what moves with it, how the new owner takes
//! it in once, and how the old owner lets go of it.
//!
//! 1. The old owner reads everything of the actor that moves
//!    ([`Store::actor_rows`]): its state, its mailbox in handling order,
//!    its delayed messages (timers, retries in backoff), its dedup keys,
//!    the stored replies of the calls it answered, its subscriptions and
//!    its counters.
//! 2. The new owner commits them ([`Store::accept_handoff`]) with the
//!    pair `(actor, placement epoch)`, in one transaction: a second copy of
//!    the same handoff (the acknowledgement was lost) is acknowledged and
//!    not applied, so the actor's state never goes back to an older one.
//! 3. Only then does the old owner delete its copy and record where the
//!    actor went ([`Store::release_actor`]), in one transaction.
//!
//! The node runs no turn for the actor between 1 and 3 (the fencing of the
//! design), so the rows read in 1 are the actor's last.

use serde::{Deserialize, Serialize};

use redb::ReadableTable;

use crate::Store;
use crate::commit::{Reply, Request};
use crate::envelope::{Envelope, decode_record};
use crate::error::StoreError;
use crate::placement::Placement;
use crate::schema::*;

/// Everything of one actor that moves with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorRows {
    pub actor: String,
    /// Its state entries, by key.
    pub state: Vec<(String, Vec<u8>)>,
    /// Its mailbox in handling order (highest priority first, then oldest).
    pub mailbox: Vec<Envelope>,
    /// Its delayed messages with their due times, soonest first.
    pub delayed: Vec<(u64, Envelope)>,
    /// Its dedup keys, each with until when it holds.
    pub dedup: Vec<(String, u64)>,
    /// The stored replies of the calls it answered, by call id (as the
    /// store encodes them): a caller that retries gets the same answer
    /// from the new owner.
    pub replies: Vec<(u128, Vec<u8>)>,
    /// Its subscriptions, as `(topic, filter)`.
    #[serde(default)]
    pub subscriptions: Vec<(String, String)>,
    /// Its counters (turns, failures, dead letters, the last error), so
    /// that they go on where they were and the old owner lists it no more.
    #[serde(default)]
    pub stats: Option<ActorStats>,
}

impl ActorRows {
    /// Roughly what the rows weigh: keys, values and envelopes' payloads.
    pub fn bytes(&self) -> u64 {
        let state: usize = self.state.iter().map(|(k, v)| k.len() + v.len()).sum();
        let queued: usize =
            self.mailbox.iter().chain(self.delayed.iter().map(|(_, e)| e)).map(|e| e.payload.len() + 64).sum();
        let rest: usize = self.dedup.iter().map(|(k, _)| k.len() + 8).sum::<usize>()
            + self.replies.iter().map(|(_, r)| r.len() + 16).sum::<usize>()
            + self.subscriptions.iter().map(|(t, f)| t.len() + f.len()).sum::<usize>()
            + self.stats.as_ref().map_or(0, |s| 32 + s.last_error.as_ref().map_or(0, String::len));
        (state + queued + rest) as u64
    }

    /// Whether there is nothing of the actor here.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
            && self.mailbox.is_empty()
            && self.delayed.is_empty()
            && self.dedup.is_empty()
            && self.replies.is_empty()
            && self.subscriptions.is_empty()
            && self.stats.is_none()
    }
}

/// What the new owner made of a handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffOutcome {
    /// Committed here.
    Applied,
    /// This handoff (actor and epoch) was committed before: nothing done.
    AlreadyHad,
}

impl Store {
    /// Everything of `actor` that moves with it, as this store holds it now.
    pub fn actor_rows(&self, actor: &str) -> Result<ActorRows, StoreError> {
        let txn = self.read()?;
        let end = format!("{actor}\0");
        let mut rows = ActorRows { actor: actor.to_string(), ..ActorRows::default() };
        for entry in txn.open_table(STATE)?.range((actor, "")..(end.as_str(), ""))? {
            let (key, value) = entry?;
            rows.state.push((key.value().1.to_string(), value.value().to_vec()));
        }
        for entry in txn.open_table(MAILBOX)?.range((actor, 0u8, 0u64)..=(actor, u8::MAX, u64::MAX))? {
            rows.mailbox.push(Envelope::decode(entry?.1.value(), "mailbox")?);
        }
        let delayed = txn.open_table(DELAYED)?;
        for entry in txn.open_table(DELAYED_BY_ACTOR)?.range((actor, 0u64, 0u64)..=(actor, u64::MAX, u64::MAX))? {
            let (_, due, seq) = entry?.0.value();
            if let Some(bytes) = delayed.get((due, seq))? {
                rows.delayed.push((due, Envelope::decode(bytes.value(), "delayed")?));
            }
        }
        for entry in txn.open_table(DEDUP)?.range((actor, "")..(end.as_str(), ""))? {
            let (key, until) = entry?;
            rows.dedup.push((key.value().1.to_string(), until.value()));
        }
        let replies = txn.open_table(REPLIES)?;
        for entry in txn.open_table(REPLIES_BY_ACTOR)?.range((actor, 0u128)..=(actor, u128::MAX))? {
            let id = entry?.0.value().1;
            if let Some(stored) = replies.get(id)? {
                rows.replies.push((id, stored.value().to_vec()));
            }
        }
        for entry in txn.open_table(SUBSCRIPTIONS)?.iter()? {
            let (key, filter) = entry?;
            let (topic, subscriber) = key.value();
            if subscriber == actor {
                rows.subscriptions.push((topic.to_string(), filter.value().to_string()));
            }
        }
        if let Some(stats) = txn.open_table(STATS)?.get(actor)? {
            rows.stats = Some(decode_record(stats.value(), "actor_stats")?);
        }
        Ok(rows)
    }

    /// Every actor of type `ty` this store holds something of: state,
    /// messages (queued or delayed), dedup keys, stored replies,
    /// subscriptions or counters (an actor whose turns write no state has
    /// only those). These are the actors a placement change may have to
    /// move away from here.
    pub fn actors_of(&self, ty: &str) -> Result<Vec<String>, StoreError> {
        let txn = self.read()?;
        // Every `ty/key` sorts from `ty/` up to `ty0` (`0` follows `/`).
        let (start, end) = (format!("{ty}/"), format!("{ty}0"));
        let (start, end) = (start.as_str(), end.as_str());
        let mut actors = std::collections::BTreeSet::new();
        for entry in txn.open_table(STATE)?.range((start, "")..(end, ""))? {
            actors.insert(entry?.0.value().0.to_string());
        }
        for entry in txn.open_table(PENDING)?.range(start..end)? {
            actors.insert(entry?.0.value().to_string());
        }
        for entry in txn.open_table(DELAYED_BY_ACTOR)?.range((start, 0u64, 0u64)..(end, 0u64, 0u64))? {
            actors.insert(entry?.0.value().0.to_string());
        }
        for entry in txn.open_table(DEDUP)?.range((start, "")..(end, ""))? {
            actors.insert(entry?.0.value().0.to_string());
        }
        for entry in txn.open_table(REPLIES_BY_ACTOR)?.range((start, 0u128)..(end, 0u128))? {
            actors.insert(entry?.0.value().0.to_string());
        }
        for entry in txn.open_table(STATS)?.range(start..end)? {
            actors.insert(entry?.0.value().to_string());
        }
        for entry in txn.open_table(SUBSCRIPTIONS)?.iter()? {
            let subscriber = entry?.0.value().1.to_string();
            if subscriber.starts_with(start) {
                actors.insert(subscriber);
            }
        }
        Ok(actors.into_iter().collect())
    }

    /// The node `actor`'s state is still on, when a placement change is
    /// moving it here and it has not arrived: its turns wait until then.
    pub fn held_from(&self, actor: &str) -> Result<Option<String>, StoreError> {
        let txn = self.read()?;
        let ty = actor.split('/').next().unwrap_or_default();
        let placement = match txn.open_table(PLACEMENTS)?.get(ty)? {
            Some(v) => Placement::decode(v.value())?,
            None => return Ok(None),
        };
        let handoffs = txn.open_table(HANDOFFS)?;
        let done = txn.open_table(HANDOFFS_DONE)?;
        held_from(&placement, &self.identity().node_id, actor, &handoffs, &done)
    }

    /// Whether node `from` told this one it has handed off every actor of
    /// `ty` it had to move in placement `epoch`.
    pub fn handoffs_done(&self, ty: &str, epoch: u64, from: &str) -> Result<bool, StoreError> {
        Ok(self.read()?.open_table(HANDOFFS_DONE)?.get((ty, epoch, from))?.is_some())
    }

    /// Records that node `from` has handed off every actor of `ty` it had
    /// to move in placement `epoch` (durable when this returns).
    pub async fn mark_handoffs_done(&self, ty: &str, epoch: u64, from: &str) -> Result<(), StoreError> {
        let request = Request::HandoffsDone { name: ty.to_string(), epoch, from: from.to_string() };
        self.submit(request).await.map(drop)
    }

    /// Commits `rows`, handed off under placement `epoch`, unless this
    /// handoff was committed before.
    pub async fn accept_handoff(&self, rows: ActorRows, epoch: u64) -> Result<HandoffOutcome, StoreError> {
        match self.submit(Request::AcceptHandoff { rows: Box::new(rows), epoch }).await? {
            Reply::Handoff(outcome) => Ok(outcome),
            _ => Ok(HandoffOutcome::Applied),
        }
    }

    /// Deletes this store's copy of `actor` (state, mailbox, delayed
    /// messages, dedup keys, stored replies) and records that it went to node `to` under
    /// placement `epoch`; returns how many rows went.
    pub async fn release_actor(&self, actor: &str, to: &str, epoch: u64) -> Result<usize, StoreError> {
        let request = Request::ReleaseActor { actor: actor.to_string(), to: to.to_string(), epoch };
        self.moved(request).await
    }

    /// Where `actor` went, and under which placement epoch, if it left.
    pub fn moved_to(&self, actor: &str) -> Result<Option<(String, u64)>, StoreError> {
        let table = self.read()?.open_table(MOVED_ACTORS)?;
        Ok(table.get(actor)?.map(|v| {
            let (to, epoch) = v.value();
            (to.to_string(), epoch)
        }))
    }
}

/// The node `actor`'s state is still on (see [`Store::held_from`]): its
/// previous owner, when that is another node that has neither handed it
/// off here nor said it had nothing to hand off.
pub(crate) fn held_from(
    placement: &Placement,
    me: &str,
    actor: &str,
    handoffs: &impl ReadableTable<(&'static str, u64), ()>,
    done: &impl ReadableTable<(&'static str, u64, &'static str), ()>,
) -> Result<Option<String>, StoreError> {
    let Some((from, to)) = placement.moving(actor) else { return Ok(None) };
    if to != me {
        return Ok(None);
    }
    let ty = actor.split('/').next().unwrap_or_default();
    let arrived = handoffs.get((actor, placement.epoch))?.is_some() || done.get((ty, placement.epoch, from))?.is_some();
    Ok((!arrived).then(|| from.to_string()))
}
