//! Direct delivery: a persistent send from a client to a live, idle actor
//! is handed to the actor before it is stored, so that the message's
//! arrival and its turn's commit are one transaction and one fsync.
//!
//! Through the mailbox a lone client's send costs two durable commits in
//! a row: its enqueue, then (while the client sends the next) the turn's
//! commit, which the next enqueue waits behind. Handed over directly, the
//! turn runs at once and the client hears `accepted` when the turn's
//! commit is durable: the message is then not *stored* but *handled*, which
//! is more than `accepted` promises and never less. Nothing is lost on any
//! path, because the client hears `accepted` only after something durable
//! holds the message or its effects:
//! - the turn completed: its commit ([`TurnCommit::arrived`]) is durable;
//! - the turn failed: its retry, or its dead letter, is durable
//!   ([`TurnFailure::arrived`]);
//! - the commit was refused or failed, the actor moved or stands aside, or
//!   the node stops: the message is enqueued as any other send would be,
//!   and the client hears that enqueue's outcome ([`NodeInner::store_instead`]).
//!
//! - the turn tried to make a call: a callee commits on its own, so a crash
//!   between its commit and the caller's would keep the callee's effects
//!   and lose the message that completes them. The call is refused, which
//!   ends the turn, whose outcome is void; the message is enqueued and its
//!   turn runs again from the mailbox, where calls are safe. (An actor
//!   that calls in every turn pays a wasted first attempt per direct send.)
//!
//! A node that dies before any of that told the client nothing: the client
//! sends again, as it would have after a crash before an enqueue. A node
//! that dies *of* the turn (a fatal signal) finds the message in its crash
//! journal at the next start and stores it as a suspect, so a message that
//! kills the node is quarantined however it came in (see `crash`); only
//! envelopes that fit a journal slot are handed over.
//!
//! Only plain sends qualify: persistent `send`s (not calls) without a dedup
//! key, delay or expiry, to an actor whose turns run on this node and
//! whose task knows of no queued work (see [`Slot::take_idle`]): nothing in
//! its mailbox, nothing new arrived, nothing in memory. Each actor holds at
//! most one such message, and takes it before queued work only with a
//! higher priority, so order by priority holds; every other send takes
//! the mailbox. `pigeon_messages_direct_total` counts the sends that were
//! handed over.
//!
//! [`TurnCommit::arrived`]: pigeon_store::TurnCommit::arrived
//! [`TurnFailure::arrived`]: pigeon_store::TurnFailure::arrived
//! [`Slot::take_idle`]: crate::scheduler::Slot::take_idle

use std::sync::Arc;

use pigeon_store::{Delivery, Envelope, MessageKind};
use tokio::sync::oneshot;

use crate::lattice::Runs;
use crate::{NodeError, NodeInner};

/// A message handed to its actor before it is stored, and its sender.
pub(crate) struct Direct {
    pub(crate) envelope: Envelope,
    /// The envelope encoded, for the crash journal while its turn runs: no
    /// mailbox holds it (see `crash`).
    pub(crate) record: Vec<u8>,
    /// Told once the message is durable (or could not be accepted).
    accepted: oneshot::Sender<Result<(), NodeError>>,
}

impl Direct {
    /// Tells the sender its message is accepted: its turn's commit, or
    /// its failure's, is durable (the store counted it as accepted).
    pub(crate) fn accepted(self, node: &NodeInner) {
        node.metrics.accept_direct();
        let _ = self.accepted.send(Ok(()));
    }
}

/// What became of a send offered to its actor.
pub(crate) enum Handover {
    /// Handed over: whether it was accepted.
    Answered(Result<(), NodeError>),
    /// Not handed over: it goes to the mailbox.
    Declined(Envelope),
}

/// Whether `envelope` may skip the mailbox (see the module doc).
fn qualifies(envelope: &Envelope) -> bool {
    envelope.delivery == Delivery::Persistent
        && envelope.kind == MessageKind::Send
        && envelope.dedup_key.is_none()
        && envelope.not_before_ms.is_none()
        && envelope.expires_at_ms.is_none()
        && envelope.operation.is_none()
}

impl NodeInner {
    /// Hands `envelope` to its actor if it qualifies and the actor knows of
    /// no queued work here; otherwise gives it back, for the mailbox.
    pub(crate) async fn send_direct(self: &Arc<Self>, envelope: Envelope) -> Handover {
        // Under the disk alarm the mailbox path refuses it, and says why
        // (the store would refuse the turn's commit for room as well).
        if !qualifies(&envelope) || self.store.disk_alarm() || !matches!(self.runs_here(&envelope.to), Runs::Here) {
            return Handover::Declined(envelope);
        }
        let ty = envelope.to.split('/').next().unwrap_or_default();
        if self.registry.get(ty).is_none_or(|t| t.record.limits.mailbox_bound == 0) {
            return Handover::Declined(envelope);
        }
        let record = envelope.encode();
        if record.len() > crate::crash::MAX_ARRIVAL_BYTES {
            return Handover::Declined(envelope);
        }
        let (accepted, answer) = oneshot::channel();
        let to = envelope.to.clone();
        if let Err(direct) = self.scheduler.offer_direct(&to, Box::new(Direct { envelope, record, accepted })) {
            return Handover::Declined(direct.envelope);
        }
        // The actor's task always answers; if it is gone without a word
        // (the runtime stopping), the message may or may not be durable,
        // and the sender must not be told it is.
        Handover::Answered(answer.await.unwrap_or(Err(NodeError::ShuttingDown)))
    }

    /// The message could not be accepted by its turn: it is enqueued as
    /// any send is, and its sender hears how that went.
    pub(crate) fn store_instead(self: &Arc<Self>, direct: Direct) {
        let node = self.clone();
        self.runtime.spawn(async move {
            let Direct { envelope, accepted, .. } = direct;
            let result = node.enqueue(envelope).await.map(drop);
            let _ = accepted.send(result);
        });
    }
}
