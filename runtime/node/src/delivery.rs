//! How messages reach their waiters and their queues in memory: replies and
//! start-of-turn signals for blocked senders, calls made from turns (with
//! their exactly-once ids and backpressure), and transient messages, with the
//! counters of what was dropped or refused.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pigeon_host::{CallFailure, SendRefusal};
use pigeon_store::{Delivery, Envelope, StoreError};
use tokio::sync::oneshot;
use ulid::Ulid;

use crate::scheduler::Transient;
use crate::{Answer, CallResult, CallWaiter, NodeEvent, NodeInner};

impl NodeInner {
    pub(crate) fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<Ulid, CallWaiter>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn delivered(&self) -> std::sync::MutexGuard<'_, HashMap<Ulid, oneshot::Sender<()>>> {
        self.delivered.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A call made by a guest during a turn (see `pigeon:actor/messaging.call`).
    /// Its id is derived from the caller's message, so an earlier attempt of
    /// the same turn may have made it already: then the callee's stored
    /// reply answers.
    ///
    /// The call goes to the callee in memory, whatever its delivery, and the
    /// callee answers as soon as its turn's commit is queued (see
    /// [`NodeInner::answer_turn_caller`]). A persistent call need not be
    /// stored first, because the caller's turn is not committed either: if
    /// the node dies, that turn runs again and makes the same call, which
    /// the callee answers from its stored reply or handles afresh. (Storing
    /// it would also be wrong when the caller's turn was built on commits not
    /// yet durable: its payload could be one that never happened.) The
    /// callee's bound counts its mailbox and its in-memory queue: while they
    /// are full, a persistent call waits, within its timeout.
    pub(crate) async fn call_from_turn(
        self: &Arc<Self>,
        call: Envelope,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, CallFailure> {
        let caller = self.scheduler.slot(call.from.as_deref().unwrap_or_default());
        if caller.as_ref().is_some_and(|slot| !slot.may_call()) {
            // Aborts the turn; its message is stored and runs again (see `direct`).
            let why = "a call from a message not yet stored: it runs again from the mailbox";
            return Err(CallFailure::Refused(SendRefusal::Store(why.into())));
        }
        if let Some(owner) = self.remote_owner(&call.to) {
            return self.call_remote(&owner, call, timeout).await;
        }
        let answer = self.place_call(call, caller.as_ref().and_then(|slot| slot.dependency()), true, timeout).await?;
        if let (Some(slot), Some(epoch)) = (caller, answer.depends_on) {
            slot.depend(epoch);
        }
        Ok(answer.reply)
    }

    /// A call a turn on another node made to an actor of this one: answered
    /// once the callee's commit is durable (see `lattice::proxy`).
    pub(crate) async fn call_from_peer(
        self: &Arc<Self>,
        call: Envelope,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, CallFailure> {
        Ok(self.place_call(call, None, false, timeout).await?.reply)
    }

    /// Hands `call` to its callee and waits for the answer; `in_turn`: the
    /// waiter is a turn of this node, which may take the reply before the
    /// callee's commit is durable.
    async fn place_call(
        self: &Arc<Self>,
        call: Envelope,
        depends_on: Option<u64>,
        in_turn: bool,
        timeout: Duration,
    ) -> Result<Answer, CallFailure> {
        let id = call.id;
        let deadline = tokio::time::Instant::now() + timeout;
        let (tx, rx) = oneshot::channel();
        self.calls().insert(id, CallWaiter { tx, in_turn });
        let delivered = match call.delivery {
            Delivery::Persistent => self.deliver_persistent_call(call, depends_on, deadline).await,
            Delivery::Transient => {
                let to = call.to.clone();
                let delivered = self.deliver_in_memory(call, depends_on, 0);
                if let Err(refusal) = &delivered {
                    self.count_undelivered(&to, refusal);
                }
                delivered.map(|()| None)
            }
        };
        match delivered {
            Ok(None) => {}
            Ok(Some(stored)) => {
                self.calls().remove(&id);
                return stored.map(|reply| Answer { reply, depends_on: None }).map_err(CallFailure::Failed);
            }
            Err(refusal) => {
                self.calls().remove(&id);
                return Err(CallFailure::Refused(refusal));
            }
        }
        self.metrics.accept_transient();
        self.await_reply(id, deadline, rx).await
    }

    /// Hands a persistent call to its callee in memory, waiting while the
    /// callee is at its bound; or returns the outcome stored by an earlier
    /// attempt of the same call: its reply, or the failure it was
    /// dead-lettered with (so a retried caller does not make the callee run
    /// its attempts again).
    #[allow(clippy::type_complexity)]
    async fn deliver_persistent_call(
        self: &Arc<Self>,
        call: Envelope,
        depends_on: Option<u64>,
        deadline: tokio::time::Instant,
    ) -> Result<Option<Result<Option<Vec<u8>>, String>>, SendRefusal> {
        let store_failed = |e: StoreError| SendRefusal::Store(e.to_string());
        if let Some(stored) = self.store.reply(call.id).map_err(store_failed)? {
            return Ok(Some(stored));
        }
        loop {
            let stored = self.store.mailbox_depth(&call.to).map_err(store_failed)?;
            match self.deliver_in_memory(call.clone(), depends_on, stored) {
                Ok(()) => return Ok(None),
                Err(SendRefusal::MailboxFull(_)) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(SendRefusal::MailboxFull(actor)) => {
                    self.count_refusal(&actor);
                    return Err(SendRefusal::MailboxFull(actor));
                }
                Err(refusal) => return Err(refusal),
            }
        }
    }

    /// Waits for the reply to the call `id` until `deadline`.
    async fn await_reply(
        &self,
        id: Ulid,
        deadline: tokio::time::Instant,
        rx: oneshot::Receiver<CallResult>,
    ) -> Result<Answer, CallFailure> {
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(Ok(answer))) => Ok(answer),
            Ok(Ok(Err(error))) => Err(CallFailure::Failed(error)),
            Ok(Err(_)) => Err(CallFailure::Failed("the node is stopping".into())),
            Err(_) => {
                self.calls().remove(&id);
                Err(CallFailure::Timeout)
            }
        }
    }

    /// Releases a sender waiting for `id`'s turn to start.
    pub(crate) fn resolve_delivered(&self, id: Ulid) {
        if let Some(waiter) = self.delivered().remove(&id) {
            let _ = waiter.send(());
        }
    }

    /// Hands a call's durable outcome to whoever waits for it on this node.
    pub(crate) fn resolve_call(&self, id: Ulid, result: Result<Option<Vec<u8>>, String>) {
        if let Some(waiter) = self.calls().remove(&id) {
            let _ = waiter.tx.send(result.map(|reply| Answer { reply, depends_on: None }));
        }
    }

    /// Hands the reply of the call `id` to a turn waiting for it, before the
    /// callee's commit is durable; the caller's commit will depend on
    /// `depends_on`. Returns whether such a turn took it (any other waiter
    /// is answered once the commit is durable).
    pub(crate) fn answer_turn_caller(&self, id: Ulid, reply: &Option<Vec<u8>>, depends_on: u64) -> bool {
        let mut calls = self.calls();
        if !calls.get(&id).is_some_and(|w| w.in_turn) {
            return false;
        }
        if let Some(waiter) = calls.remove(&id) {
            let _ = waiter.tx.send(Ok(Answer { reply: reply.clone(), depends_on: Some(depends_on) }));
        }
        true
    }

    /// Queues a transient message in memory, or drops (and counts) it when
    /// the receiver's queue is at its bound; the refusal says why it was
    /// dropped (a caller waiting on it is told instead of timing out).
    pub(crate) fn deliver_transient(self: &Arc<Self>, envelope: Envelope) -> Result<(), SendRefusal> {
        if let Some(owner) = self.remote_owner(&envelope.to) {
            self.transient_remote(owner, envelope);
            return Ok(());
        }
        let to = envelope.to.clone();
        let delivered = self.deliver_in_memory(envelope, None, 0);
        if let Err(refusal) = &delivered {
            self.count_undelivered(&to, refusal);
        }
        delivered
    }

    /// Counts a transient message to `to` dropped for `refusal`.
    fn count_undelivered(&self, to: &str, refusal: &SendRefusal) {
        match refusal {
            SendRefusal::UnknownType(_) => self.count_drop(to, "its type is not deployed"),
            _ => self.count_drop(to, "its transient queue is full"),
        }
    }

    /// Queues `envelope` in its receiver's in-memory queue, bounded like its
    /// mailbox (less `stored`: messages the bound also counts);
    /// `depends_on`: the sender's turn is built on commits not yet durable,
    /// and so is whatever the receiver makes of it.
    pub(crate) fn deliver_in_memory(
        self: &Arc<Self>,
        envelope: Envelope,
        depends_on: Option<u64>,
        stored: u64,
    ) -> Result<(), SendRefusal> {
        let to = envelope.to.clone();
        let ty = to.split('/').next().unwrap_or_default();
        let Some(bound) = self.registry.get(ty).map(|t| t.record.limits.mailbox_bound) else {
            return Err(SendRefusal::UnknownType(ty.to_string()));
        };
        let seq = self.transient_seq.fetch_add(1, Ordering::Relaxed);
        let arrival = self.store.arrival_mark();
        let accepted = self.scheduler.with_slot(self, &to, |slot| {
            let mut queue = slot.transient();
            if (queue.len() as u64).saturating_add(stored) >= bound {
                return false;
            }
            queue.push(Transient { seq, arrival, envelope, depends_on });
            true
        });
        if !accepted {
            return Err(SendRefusal::MailboxFull(to));
        }
        Ok(())
    }

    /// Stores a persistent send in its mailbox (or its owner's outbox);
    /// returns whether it was a duplicate. A refusal for a full mailbox is
    /// counted.
    pub(crate) async fn enqueue(&self, envelope: Envelope) -> Result<bool, crate::NodeError> {
        let to = envelope.to.clone();
        match self.store.enqueue(envelope).await {
            Ok(enqueued) => Ok(enqueued == pigeon_store::Enqueued::Duplicate),
            Err(e @ StoreError::MailboxFull { .. }) => {
                self.count_refusal(&to);
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn count_refusal(&self, actor: &str) {
        *self.refused.lock().unwrap_or_else(|p| p.into_inner()).entry(actor.to_string()).or_default() += 1;
        self.metrics.refuse();
    }

    pub(crate) fn count_drop(&self, actor: &str, reason: &str) {
        *self.dropped.lock().unwrap_or_else(|p| p.into_inner()).entry(actor.to_string()).or_default() += 1;
        self.emit(NodeEvent::Dropped { actor: actor.to_string(), reason: reason.to_string() });
    }

    /// Re-queues a failed in-memory message after its backoff, with what
    /// it depended on.
    pub(crate) fn retry_in_memory_later(
        self: &Arc<Self>,
        envelope: Envelope,
        depends_on: Option<u64>,
        delay: Duration,
    ) {
        let node = self.clone();
        self.runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            if !node.is_stopping() {
                let to = envelope.to.clone();
                if let Err(refusal) = node.deliver_in_memory(envelope, depends_on, 0) {
                    node.count_undelivered(&to, &refusal);
                }
            }
        });
    }
}
