//! What an actor handles next: the choice between its persistent mailbox
//! (read through `readahead`), its in-memory queue of transient messages,
//! and a send handed over before it was stored (`direct`).
//!
//! The two queues form one mailbox to the actor: higher priority first,
//! then arrival order, whichever way a message came. A transient message
//! keeps the store's arrival mark of the moment it was queued
//! ([`pigeon_store::Store::arrival_mark`]), which places it among stored
//! messages: a client that sends a transient message, then a persistent
//! one, at one priority, sees them handled in that order (a transient
//! message waiting behind a paused actor does not fall behind what is
//! stored after it).

use pigeon_store::{Envelope, MessageKey, Store, StoreError};

use crate::direct::Direct;
use crate::readahead::ReadAhead;
use crate::scheduler::{Slot, Transient};

/// The next thing an actor has to handle.
pub(crate) enum Work {
    Persistent(MessageKey, Envelope),
    /// From the in-memory queue, with what its sender's turn depended on.
    InMemory(Envelope, Option<u64>),
    /// A persistent send handed over before it was stored (see `direct`).
    Direct(Box<Direct>),
}

/// Whether `actor` has anything to handle, here or in its stored mailbox
/// (a store that cannot say counts as yes: the task looks again).
pub(crate) fn has_work(store: &Store, actor: &str, slot: &Slot) -> bool {
    has_queued(slot) || store.mailbox_depth(actor).map_or(true, |d| d > 0)
}

/// Whether the slot holds work in memory: operator requests, a send
/// handed over, transient messages.
pub(crate) fn has_queued(slot: &Slot) -> bool {
    // Each guard is dropped before the next lock: see `next_work`.
    let controls = !slot.controls().is_empty();
    let direct = slot.direct().is_some();
    controls || direct || !slot.transient().is_empty()
}

/// The head of the persistent mailbox or of the in-memory queue, whichever
/// comes first (see the module doc). A message handed over before it was
/// stored is the newest: it goes first only with a higher priority than
/// both heads.
pub(crate) fn next_work(
    store: &Store,
    actor: &str,
    slot: &Slot,
    mailbox: &mut ReadAhead,
) -> Result<Option<Work>, StoreError> {
    let head = mailbox.head(store, actor, slot)?;
    let persistent = head.map(MessageKey::priority);
    // One lock at a time: `Scheduler::offer_direct` takes them the other way.
    let others = persistent.max(slot.transient().peek().map(|t| t.envelope.priority));
    // With nothing queued, a send may be handed over, even while this
    // turn runs: it comes after it, and before anything queued later
    // only by priority.
    slot.set_idle(others.is_none());
    let direct = slot.direct().take_if(|d| others.is_none_or(|p| d.envelope.priority > p));
    if let Some(direct) = direct {
        return Ok(Some(Work::Direct(direct)));
    }
    let mut transient = slot.transient();
    let transient_first = match (head, transient.peek()) {
        // A stored message that took the mark's number or a later one was
        // stored after the transient message came.
        (Some(stored), Some(t)) => (t.envelope.priority, stored.seq) >= (stored.priority(), t.arrival),
        (None, Some(_)) => true,
        _ => false,
    };
    if transient_first {
        let next = transient.pop().map(|t: Transient| Work::InMemory(t.envelope, t.depends_on));
        if transient.is_empty() {
            // An idle live actor should not keep a buffer of envelopes.
            transient.shrink_to_fit();
        }
        return Ok(next);
    }
    Ok(mailbox.take().map(|(key, envelope)| Work::Persistent(key, envelope)))
}

#[cfg(test)]
mod tests {
    use pigeon_store::{Arrivals, Delivery, TurnCommit};

    use super::*;

    const ACTOR: &str = "counter/a";

    /// One actor's two queues over a fresh store.
    struct Queues {
        _dir: tempfile::TempDir,
        store: Store,
        slot: Slot,
        mailbox: ReadAhead,
        seq: u64,
    }

    impl Queues {
        fn new() -> Self {
            let (dir, store) = crate::readahead::tests::store_with_counter();
            Self { _dir: dir, store, slot: Slot::new(), mailbox: ReadAhead::default(), seq: 0 }
        }

        async fn persistent(&self, name: &str, priority: u8) {
            let envelope = Envelope::new(ACTOR, name.as_bytes().to_vec()).with_priority(priority);
            self.store.enqueue(envelope).await.unwrap();
            self.slot.note_arrivals(Arrivals::of(priority));
        }

        /// Queues a transient message as `deliver_in_memory` does.
        fn transient(&mut self, name: &str, priority: u8) {
            let mut envelope = Envelope::new(ACTOR, name.as_bytes().to_vec()).with_priority(priority);
            envelope.delivery = Delivery::Transient;
            self.seq += 1;
            let arrival = self.store.arrival_mark();
            self.slot.transient().push(Transient { seq: self.seq, arrival, envelope, depends_on: None });
        }

        /// Takes every message in the order the actor would, committing the
        /// turns on stored ones.
        async fn drain(&mut self) -> Vec<String> {
            let mut order = Vec::new();
            while let Some(work) = next_work(&self.store, ACTOR, &self.slot, &mut self.mailbox).unwrap() {
                let envelope = match work {
                    Work::Persistent(key, envelope) => {
                        let commit = TurnCommit { actor: ACTOR.into(), taken: Some(key), ..TurnCommit::default() };
                        self.store.commit_turn(commit).await.unwrap();
                        self.mailbox.done(key);
                        envelope
                    }
                    Work::InMemory(envelope, _) => envelope,
                    Work::Direct(_) => unreachable!("nothing was handed over"),
                };
                order.push(String::from_utf8(envelope.payload).unwrap());
            }
            order
        }
    }

    #[tokio::test]
    async fn at_one_priority_messages_are_taken_in_arrival_order_whichever_way_they_came() {
        let mut q = Queues::new();
        q.persistent("p1", 4).await;
        q.transient("t1", 4);
        q.persistent("p2", 4).await;
        q.persistent("p3", 4).await;
        q.transient("t2", 4);
        q.transient("t3", 4);
        q.persistent("p4", 4).await;
        assert_eq!(q.drain().await, ["p1", "t1", "p2", "p3", "t2", "t3", "p4"]);
    }

    #[tokio::test]
    async fn priority_comes_before_arrival_across_both_queues() {
        let mut q = Queues::new();
        q.transient("t-low", 1);
        q.persistent("p-mid", 5).await;
        q.transient("t-high", 9);
        q.persistent("p-low", 1).await;
        assert_eq!(q.drain().await, ["t-high", "p-mid", "t-low", "p-low"]);
    }
}
