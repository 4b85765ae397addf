//! An actor's turns whose commits are on their way to disk.
//!
//! A durable commit costs an fsync — hundreds of microseconds — while a turn
//! costs a few. An actor therefore does not wait for its turn's commit
//! before it takes the next message: it submits the commit to the store's
//! committer and goes on, and the commits follow one another to disk in the
//! order the turns ran. This is sound because:
//! - the committer applies requests in submission order, so a later turn's
//!   commit is never durable without the earlier ones it read from;
//! - the activation keeps the writes of unsettled turns apart and answers
//!   reads from them (`pigeon_host::state_cache`), so the next turn sees
//!   what the store will hold;
//! - a commit that is refused or fails advances the store's commit epoch,
//!   and every later commit built on it names an earlier epoch in
//!   `depends_on` and is refused in turn. Once the pipeline has drained,
//!   the actor drops its activation and reads its mailbox again: the
//!   messages of the turns that did not commit are still there;
//! - nothing a turn owes the outside world leaves before its commit is
//!   durable: replies to clients, transient sends and events wait here. The
//!   one exception is a reply to a *turn* that called this actor on this
//!   node: the caller's own commit comes after this one and names its
//!   epoch, so the reply goes at once (`NodeInner::answer_turn_caller`),
//!   which makes a persistent call between actors as fast as a transient
//!   one.

use std::collections::VecDeque;
use std::time::Duration;

use pigeon_store::{Envelope, MessageKey, StoreError, TurnTicket};
use ulid::Ulid;

use crate::NodeEvent;
use crate::turn::ActorTask;

/// Most turns of one actor whose commits may be in flight.
pub(crate) const MAX_IN_FLIGHT: usize = 128;

/// Most bytes of state an actor's in-flight turns may have written: past
/// it, the next turn waits for the commits (the activation holds those
/// writes in memory until then).
pub(crate) const MAX_UNSETTLED_BYTES: usize = 1 << 20;

/// A completed turn whose commit is not known to be durable yet, and what
/// waits for it.
pub(crate) struct InFlight {
    pub(crate) ticket: TurnTicket,
    /// The earliest epoch the turn itself depended on.
    pub(crate) depends_on: Option<u64>,
    /// The activation's number for the turn.
    pub(crate) turn: u64,
    /// The mailbox message it handled, if any.
    pub(crate) taken: Option<MessageKey>,
    pub(crate) message: Ulid,
    pub(crate) attempt: u32,
    pub(crate) took: Duration,
    pub(crate) reply: Option<Vec<u8>>,
    /// Transient messages the turn sent: they leave once it is durable.
    pub(crate) transient: Vec<Envelope>,
    /// The turn's message, if it was handed over before it was stored:
    /// accepted once the commit is durable (see `direct`).
    pub(crate) direct: Option<crate::direct::Direct>,
    /// The turn's message was transient: it lives only in memory, so a
    /// commit that does not happen drops it.
    pub(crate) in_memory: bool,
}

impl InFlight {
    /// The earliest commit epoch that a turn built on this one depends on
    /// (none once the commit is known to be durable and it depended on
    /// nothing else).
    pub(crate) fn dependency(&self) -> Option<u64> {
        min_epoch(self.depends_on, self.ticket.is_pending().then_some(self.ticket.epoch))
    }
}

/// The earlier of two optional epochs.
pub(crate) fn min_epoch(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// An actor's in-flight turns, oldest first.
#[derive(Default)]
pub(crate) struct Pipeline {
    queue: VecDeque<InFlight>,
    /// A commit failed: the turns after it fail too, and the activation
    /// goes once they have. `true`: pause before going on (the store
    /// failed, rather than refused one turn).
    failed: Option<bool>,
}

impl Pipeline {
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Frees the queue's buffer while it is empty: an entry is ~500 bytes,
    /// so the buffer of four a first turn allocates would otherwise stay
    /// with every idle live actor (2 KiB each; see `docs/benchmarks.md`).
    pub(crate) fn release(&mut self) {
        if self.queue.is_empty() {
            self.queue.shrink_to_fit();
        }
    }

    pub(crate) fn push(&mut self, entry: InFlight) {
        self.queue.push_back(entry);
    }

    /// Whether one more turn may join, with this much unsettled state.
    pub(crate) fn accepts(&self, unsettled_bytes: usize) -> bool {
        self.failed.is_none() && self.queue.len() < MAX_IN_FLIGHT && unsettled_bytes < MAX_UNSETTLED_BYTES
    }

    /// The earliest commit epoch a turn starting now depends on.
    pub(crate) fn dependency(&self) -> Option<u64> {
        self.queue.iter().fold(None, |earliest, entry| min_epoch(earliest, entry.dependency()))
    }
}

impl ActorTask {
    /// Completes, in order, every in-flight turn whose commit's outcome is
    /// known; once a failed pipeline has drained, starts over from the store.
    pub(crate) async fn collect_commits(&mut self) {
        while let Some(outcome) = self.pipeline.queue.front_mut().and_then(|entry| entry.ticket.try_outcome()) {
            if let Some(entry) = self.pipeline.queue.pop_front() {
                self.complete(entry, outcome);
            }
        }
        self.recover().await;
    }

    /// Waits for the oldest in-flight commit and completes it. Cancel-safe.
    pub(crate) async fn wait_for_commit(&mut self) {
        let Some(entry) = self.pipeline.queue.front_mut() else { return };
        let outcome = entry.ticket.outcome().await;
        if let Some(entry) = self.pipeline.queue.pop_front() {
            self.complete(entry, outcome);
        }
        self.recover().await;
    }

    fn complete(&mut self, entry: InFlight, outcome: Result<(), StoreError>) {
        if let Some(key) = entry.taken {
            self.mailbox.done(key);
        }
        let node = &self.node;
        match outcome {
            Ok(()) => {
                if let Some(live) = self.live.as_mut() {
                    live.activation.settle(entry.turn);
                }
                for message in entry.transient {
                    node.metrics.accept_transient();
                    let _ = node.deliver_transient(message);
                }
                if let Some(direct) = entry.direct {
                    direct.accepted(node);
                }
                node.resolve_call(entry.message, Ok(entry.reply));
                if node.has_listeners() {
                    node.emit(NodeEvent::TurnCompleted {
                        actor: self.actor.clone(),
                        message: entry.message.to_string(),
                        attempt: entry.attempt,
                        took: entry.took,
                    });
                } else {
                    node.metrics.turn_completed(&self.actor, entry.took);
                }
            }
            Err(e) => {
                // Nothing of the turn is durable; its in-memory effects on the
                // activation (its state cache too) must go, once the turns
                // built on it have failed as well. A mailbox message is
                // still queued.
                tracing::warn!(actor = self.actor, msg = %entry.message, "turn not committed: {e}");
                if let Some(direct) = entry.direct {
                    node.store_instead(direct);
                }
                if entry.in_memory {
                    // No mailbox holds it for a retry, and running it again
                    // would repeat the transient calls the turn made: it is
                    // dropped as transient messages are, counted, and a
                    // caller waiting for its reply hears why at once.
                    let reason = format!("its turn's commit did not happen: {e}");
                    node.count_drop(&self.actor, &reason);
                    node.resolve_call(entry.message, Err(reason));
                }
                let refused_alone = matches!(
                    e,
                    StoreError::MessageGone { .. }
                        | StoreError::AlreadyAnswered { .. }
                        | StoreError::DependencyLost { .. }
                        | StoreError::ActorElsewhere { .. }
                        | StoreError::ActorHeld { .. }
                );
                let pause = self.pipeline.failed.unwrap_or(false) || !refused_alone;
                self.pipeline.failed = Some(pause);
            }
        }
    }

    /// After a failed commit, once nothing is in flight: a fresh activation
    /// and a fresh read of the mailbox.
    async fn recover(&mut self) {
        if !self.pipeline.queue.is_empty() {
            return;
        }
        let Some(pause) = self.pipeline.failed.take() else { return };
        self.live = None;
        self.mailbox.forget();
        if pause {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
