//! The life of an actor's task: take the next message, run the turn, commit
//! or fail it, and passivate when idle.
//!
//! A turn's outcome is committed by the store in one transaction (see
//! `pigeon_store::commit`): on success the message leaves the mailbox
//! together with the turn's state writes, sends and reply; on failure it
//! moves to `delayed` with an exponential backoff, or to the dead-letter
//! queue after the type's `max_attempts`. Either way, what the failed turn
//! did is discarded with its activation.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pigeon_host::{Activation, ActivationLimits, TurnOutcome};
use pigeon_store::{
    DeadReason, Delivery, Disposition, Envelope, MessageKey, MessageKind, StoreError, TurnCommit, TurnFailure,
    TypeLimits, now_ms,
};
use tokio::sync::OwnedSemaphorePermit;

use crate::readahead::ReadAhead;
use crate::registry::LoadedType;
use crate::scheduler::{Slot, Transient};
use crate::{NodeEvent, NodeInner};

/// A live instance and the type generation it was made from.
struct Live {
    activation: Activation,
    generation: u64,
}

/// The next thing an actor has to handle.
enum Work {
    Persistent(MessageKey, Envelope),
    Transient(Envelope),
}

/// Retry delay after `failures` failed turns: base × 2^(failures−1), capped.
pub(crate) fn backoff(limits: &TypeLimits, failures: u32) -> u64 {
    let exp = failures.saturating_sub(1).min(32);
    limits.backoff_base_ms.saturating_mul(1u64 << exp).min(limits.backoff_max_ms)
}

/// The task of one actor, from activation to passivation.
pub(crate) async fn run_actor(node: Arc<NodeInner>, actor: String, slot: Arc<Slot>, mut permit: OwnedSemaphorePermit) {
    let ty_name = actor.split('/').next().unwrap_or_default().to_string();
    let mut live: Option<Live> = None;
    let mut mailbox = ReadAhead::default();
    loop {
        let ty = node.registry.get(&ty_name);
        let work = match (&ty, node.is_stopping()) {
            (Some(_), false) => next_work(&node, &actor, &slot, &mut mailbox),
            _ => Ok(None),
        };
        match (work, ty) {
            (Ok(Some(work)), Some(ty)) => {
                // Boxed: the turn's future (activation, guest call, commit)
                // is large, and inlined it would make every idle actor's
                // task that large too — kilobytes per live actor.
                if !Box::pin(handle(&node, &actor, &slot, &ty, &mut live, work)).await {
                    mailbox.forget();
                }
                continue;
            }
            (Err(e), _) => {
                tracing::error!(actor, "cannot read the mailbox: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            _ => {}
        }
        let idle =
            node.registry.get(&ty_name).map_or(Duration::ZERO, |t| Duration::from_millis(t.record.limits.idle_ms));
        if !node.is_stopping() {
            tokio::select! {
                _ = slot.notify.notified() => continue,
                _ = tokio::time::sleep(idle) => {}
                _ = node.scheduler.pressure.notified() => {
                    if !node.scheduler.has_waiting() && !node.is_stopping() {
                        continue;
                    }
                }
            }
        }
        // Only an actor whose type is deployed, on a running node, can be kept
        // busy by its mailbox; the others passivate and are rescheduled by
        // the deploy or the restart.
        let runnable = node.registry.get(&ty_name).is_some() && !node.is_stopping();
        let check = |slot: &Slot| runnable && has_work(&node, &actor, slot);
        match node.scheduler.try_passivate(&node, &actor, permit, check) {
            Ok(()) => {
                let lost = slot.transient().len();
                if lost > 0 {
                    tracing::warn!(actor, lost, "transient messages dropped: the node is stopping");
                    (0..lost).for_each(|_| node.count_drop(&actor, "the node stopped"));
                }
                if live.is_some() {
                    node.emit(NodeEvent::Passivated { actor: actor.clone() });
                }
                return;
            }
            Err(p) => permit = p,
        }
    }
}

fn has_work(node: &NodeInner, actor: &str, slot: &Slot) -> bool {
    !slot.transient().is_empty() || node.store.mailbox_depth(actor).map_or(true, |d| d > 0)
}

/// The higher-priority head of the persistent mailbox and the transient queue.
fn next_work(node: &NodeInner, actor: &str, slot: &Slot, mailbox: &mut ReadAhead) -> Result<Option<Work>, StoreError> {
    let persistent = mailbox.head(&node.store, actor, slot)?.map(|p| p.priority);
    let mut transient = slot.transient();
    let transient_first = match (persistent, transient.peek()) {
        (Some(p), Some(t)) => t.envelope.priority > p,
        (None, Some(_)) => true,
        _ => false,
    };
    if transient_first {
        let next = transient.pop().map(|t: Transient| Work::Transient(t.envelope));
        if transient.is_empty() {
            // An idle live actor should not keep a buffer of envelopes.
            transient.shrink_to_fit();
        }
        return Ok(next);
    }
    Ok(mailbox.take().map(|(key, envelope)| Work::Persistent(key, envelope)))
}

fn limits_of(ty: &LoadedType) -> ActivationLimits {
    activation_limits(&ty.record.limits)
}

/// What the host needs of a type's limits to run one of its actors.
pub(crate) fn activation_limits(limits: &pigeon_store::TypeLimits) -> ActivationLimits {
    ActivationLimits {
        memory_bytes: limits.memory_bytes,
        deadline: Duration::from_millis(limits.deadline_ms),
        env: limits.wasi.env.clone(),
    }
}

/// Runs one message's turn and has the store record its outcome. Returns
/// whether it did: `false` when the store refused or failed, and the message
/// may still be where it was.
async fn handle(
    node: &Arc<NodeInner>,
    actor: &str,
    slot: &Slot,
    ty: &LoadedType,
    live: &mut Option<Live>,
    work: Work,
) -> bool {
    let (taken, envelope) = match work {
        Work::Persistent(key, envelope) => (Some(key), envelope),
        Work::Transient(envelope) => (None, envelope),
    };
    if envelope.expires_at_ms.is_some_and(|at| now_ms() > at) {
        let error = "expired before it could be handled".to_string();
        return record_failure(node, actor, ty, taken, envelope, error, Some(DeadReason::Expired)).await;
    }
    // A call made again by a retried caller: answer from the stored reply.
    if stores_reply(&envelope)
        && let Ok(Some(reply)) = node.store.reply(envelope.id)
    {
        let commit = TurnCommit { actor: actor.to_string(), taken, ..TurnCommit::default() };
        let stored = node.store.commit_turn(commit).await.is_ok();
        if stored {
            node.resolve_call(envelope.id, Ok(reply));
        }
        return stored;
    }
    if live.as_ref().is_none_or(|l| l.generation != ty.generation) {
        *live = None;
        let env = node.env.clone();
        match node.host.activate(&ty.component, actor, limits_of(ty), env).await {
            Ok(activation) => {
                *live = Some(Live { activation, generation: ty.generation });
                node.emit(NodeEvent::Activated { actor: actor.to_string() });
            }
            Err(e) => {
                return record_failure(node, actor, ty, taken, envelope, e.to_string(), None).await;
            }
        }
    }
    let Some(current) = live.as_mut() else { return false };
    node.emit(NodeEvent::TurnStarted {
        actor: actor.to_string(),
        message: envelope.id.to_string(),
        attempt: envelope.attempt(),
        at: SystemTime::now(),
    });
    slot.set_in_flight(Some(envelope.id));
    node.resolve_delivered(envelope.id);
    let started = std::time::Instant::now();
    let outcome = current.activation.run_turn(&envelope).await;
    let took = started.elapsed();
    slot.set_in_flight(None);
    match outcome {
        TurnOutcome::Completed { reply, effects } => {
            let (persistent, transient): (Vec<_>, Vec<_>) =
                effects.sends.into_iter().partition(|e| e.delivery == Delivery::Persistent);
            let commit = TurnCommit {
                actor: actor.to_string(),
                taken,
                // A transient call is never made again after a crash: its
                // reply need not be stored.
                message_id: Some((envelope.id, stores_reply(&envelope))),
                state_writes: effects.state_writes,
                sends: persistent,
                reply: reply.clone(),
                topics: effects.topics,
                cancels: effects.cancels,
            };
            match node.store.commit_turn(commit).await {
                Ok(()) => {
                    for message in transient {
                        node.metrics.accept_transient();
                        let _ = node.deliver_transient(message);
                    }
                    node.resolve_call(envelope.id, Ok(reply));
                    node.emit(NodeEvent::TurnCompleted {
                        actor: actor.to_string(),
                        message: envelope.id.to_string(),
                        attempt: envelope.attempt(),
                        took,
                    });
                    true
                }
                Err(e) => {
                    // Nothing of the turn is durable; its in-memory effects on
                    // the instance (its state cache too) must go. The message
                    // is still queued.
                    tracing::warn!(actor, msg = %envelope.id, "turn not committed: {e}");
                    *live = None;
                    if !matches!(e, StoreError::MessageGone { .. }) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    false
                }
            }
        }
        TurnOutcome::Failed(error) => {
            *live = None;
            let forced = matches!(error, pigeon_host::TurnError::Rejected(_)).then_some(DeadReason::Rejected);
            record_failure(node, actor, ty, taken, envelope, error.to_string(), forced).await
        }
    }
}

/// Whether `envelope` is a call whose reply is stored when its turn
/// commits, to answer the same call made again (persistent calls only).
fn stores_reply(envelope: &Envelope) -> bool {
    envelope.kind == MessageKind::Call && envelope.delivery == Delivery::Persistent
}

/// Counts a failed turn and decides the message's fate: retry after a
/// backoff, or the dead-letter queue (after `max_attempts`, or at once for
/// `forced`). Returns whether the store recorded it.
async fn record_failure(
    node: &Arc<NodeInner>,
    actor: &str,
    ty: &LoadedType,
    taken: Option<MessageKey>,
    mut envelope: Envelope,
    error: String,
    forced: Option<DeadReason>,
) -> bool {
    let limits = &ty.record.limits;
    envelope.failures = envelope.failures.saturating_add(1);
    envelope.last_error = Some(error.clone());
    let dead = forced.or((envelope.failures >= limits.max_attempts).then_some(DeadReason::Failed));
    let retry_in = backoff(limits, envelope.failures);
    let failed_at = SystemTime::now();
    let disposition = match dead {
        Some(reason) => Disposition::DeadLetter { reason },
        // +1: `now_ms` truncates, and the retry must not come early.
        None => Disposition::RetryAt { due_ms: now_ms().saturating_add(retry_in).saturating_add(1) },
    };
    tracing::warn!(actor, msg = %envelope.id, attempt = envelope.failures, dead = dead.is_some(), "turn failed: {error}");
    if taken.is_none() && dead.is_none() {
        node.retry_transient_later(envelope.clone(), Duration::from_millis(retry_in));
    }
    let id = envelope.id;
    let attempt = envelope.failures;
    let failure = TurnFailure { actor: actor.to_string(), taken, envelope, disposition };
    if let Err(e) = node.store.fail_turn(failure).await {
        tracing::error!(actor, msg = %id, "cannot record the failed turn: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        return false;
    }
    if dead.is_some() {
        node.resolve_call(id, Err(error.clone()));
    }
    node.emit(NodeEvent::TurnFailed {
        actor: actor.to_string(),
        message: id.to_string(),
        attempt,
        error,
        retry_in_ms: dead.is_none().then_some(retry_in),
        at: failed_at,
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let limits = TypeLimits { backoff_base_ms: 100, backoff_max_ms: 1_000, ..TypeLimits::default() };
        let delays: Vec<u64> = (1..=6).map(|f| backoff(&limits, f)).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(backoff(&limits, u32::MAX), 1_000);
    }
}
