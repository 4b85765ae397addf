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
use crate::{CallResult, NodeEvent, NodeInner};

impl NodeInner {
    pub(crate) fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<Ulid, oneshot::Sender<CallResult>>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn delivered(&self) -> std::sync::MutexGuard<'_, HashMap<Ulid, oneshot::Sender<()>>> {
        self.delivered.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A call made by a guest during a turn (see `pigeon:actor/messaging.call`).
    /// Its id is derived from the caller's message, so an earlier attempt of
    /// the same turn may have made it already: then the callee's stored
    /// reply answers, and a second enqueue is dropped as a duplicate. A full
    /// mailbox makes the caller wait, within its timeout.
    pub(crate) async fn call_from_turn(
        self: &Arc<Self>,
        mut call: Envelope,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, CallFailure> {
        let id = call.id;
        let deadline = tokio::time::Instant::now() + timeout;
        let (tx, rx) = oneshot::channel();
        self.calls().insert(id, tx);
        let refuse = |node: &Self, refusal: SendRefusal| {
            node.calls().remove(&id);
            Err(CallFailure::Refused(refusal))
        };
        if call.delivery == Delivery::Transient {
            // The call of a transient turn: in memory, like the turn itself
            // (never made again after a crash, so nothing to store).
            self.metrics.accept_transient();
            if let Err(refusal) = self.deliver_transient(call) {
                return refuse(self, refusal);
            }
            return self.await_reply(id, deadline, rx).await;
        }
        match self.store.reply(id) {
            Ok(Some(reply)) => {
                self.calls().remove(&id);
                return Ok(reply);
            }
            Ok(None) => {}
            Err(e) => return refuse(self, SendRefusal::Store(e.to_string())),
        }
        call.dedup_key = Some(format!("call:{id}"));
        loop {
            match self.store.enqueue(call.clone()).await {
                Ok(_) => break,
                Err(StoreError::MailboxFull { .. }) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(StoreError::MailboxFull { actor, .. }) => {
                    self.count_refusal(&actor);
                    return refuse(self, SendRefusal::MailboxFull(actor));
                }
                Err(StoreError::UnknownType(ty)) => return refuse(self, SendRefusal::UnknownType(ty)),
                Err(e) => return refuse(self, SendRefusal::Store(e.to_string())),
            }
        }
        self.await_reply(id, deadline, rx).await
    }

    /// Waits for the reply to the call `id` until `deadline`.
    async fn await_reply(
        &self,
        id: Ulid,
        deadline: tokio::time::Instant,
        rx: oneshot::Receiver<CallResult>,
    ) -> Result<Option<Vec<u8>>, CallFailure> {
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(Ok(reply))) => Ok(reply),
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

    /// Hands a call's outcome to whoever waits for it on this node.
    pub(crate) fn resolve_call(&self, id: Ulid, result: CallResult) {
        if let Some(waiter) = self.calls().remove(&id) {
            let _ = waiter.send(result);
        }
    }

    /// Queues a transient message in memory, or drops (and counts) it when
    /// the receiver's queue is at its bound; the refusal says why it was
    /// dropped (a caller waiting on it is told instead of timing out).
    pub(crate) fn deliver_transient(self: &Arc<Self>, envelope: Envelope) -> Result<(), SendRefusal> {
        let to = envelope.to.clone();
        let ty = to.split('/').next().unwrap_or_default();
        let Some(bound) = self.registry.get(ty).map(|t| t.record.limits.mailbox_bound) else {
            self.count_drop(&to, "its type is not deployed");
            return Err(SendRefusal::UnknownType(ty.to_string()));
        };
        let seq = self.transient_seq.fetch_add(1, Ordering::Relaxed);
        let accepted = self.scheduler.with_slot(self, &to, |slot| {
            let mut queue = slot.transient();
            if queue.len() as u64 >= bound {
                return false;
            }
            queue.push(Transient { seq, envelope });
            true
        });
        if !accepted {
            self.count_drop(&to, "its transient queue is full");
            return Err(SendRefusal::MailboxFull(to));
        }
        Ok(())
    }

    pub(crate) fn count_refusal(&self, actor: &str) {
        *self.refused.lock().unwrap_or_else(|p| p.into_inner()).entry(actor.to_string()).or_default() += 1;
        self.metrics.refuse();
    }

    pub(crate) fn count_drop(&self, actor: &str, reason: &str) {
        *self.dropped.lock().unwrap_or_else(|p| p.into_inner()).entry(actor.to_string()).or_default() += 1;
        self.emit(NodeEvent::Dropped { actor: actor.to_string(), reason: reason.to_string() });
    }

    /// Re-queues a failed transient message after its backoff.
    pub(crate) fn retry_transient_later(self: &Arc<Self>, envelope: Envelope, delay: Duration) {
        let node = self.clone();
        self.runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            if !node.is_stopping() {
                // Dropped again: already counted as a drop.
                let _ = node.deliver_transient(envelope);
            }
        });
    }
}
