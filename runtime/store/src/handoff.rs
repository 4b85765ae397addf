//! The store's side of moving an actor to another node (issue 20, see
//! `docs/design/handoff.md`): what moves with it, how the new owner takes
//! it in once, and how the old owner lets go of it.
//!
//! 1. The old owner reads everything of the actor that moves
//!    ([`Store::actor_rows`]): its state, its mailbox in handling order,
//!    its delayed messages (timers, retries in backoff), its dedup keys and
//!    the stored replies of the calls it answered.
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

use crate::Store;
use crate::commit::{Reply, Request};
use crate::envelope::Envelope;
use crate::error::StoreError;
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
        Ok(rows)
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
