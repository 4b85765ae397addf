//! The life of an actor's task: take the next message, run the turn, commit
//! or fail it, and passivate when idle.
//!
//! A turn's outcome is committed by the store in one transaction (see
//! `pigeon_store::commit`): on success the message leaves the mailbox
//! together with the turn's state writes, sends and reply; on failure it
//! moves to `delayed` with an exponential backoff, or to the dead-letter
//! queue after the type's `max_attempts`. Either way, what the failed turn
//! did is discarded with its activation.
//!
//! A completed turn does not wait for its commit to be durable before the
//! actor takes its next message: the commit joins the actor's pipeline
//! (`pipeline`), and whatever the turn owes the outside world — replies to
//! clients, transient sends, events — is released once it is durable.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pigeon_host::{Activation, ActivationLimits, TurnOutcome};
use pigeon_store::{
    DeadReason, Delivery, Disposition, Envelope, MessageKey, MessageKind, TurnCommit, TurnFailure, TypeLimits, now_ms,
};
use tokio::sync::OwnedSemaphorePermit;

use crate::direct::Direct;
use crate::lattice::Runs;
use crate::pipeline::{InFlight, Pipeline, min_epoch};
use crate::readahead::ReadAhead;
use crate::registry::LoadedType;
use crate::scheduler::Slot;
use crate::work::{Work, has_queued, has_work, next_work};
use crate::{NodeEvent, NodeInner};

/// A live instance and the type generation it was made from.
pub(crate) struct Live {
    pub(crate) activation: Activation,
    generation: u64,
}

/// Retry delay after `failures` failed turns: base × 2^(failures−1), capped.
pub(crate) fn backoff(limits: &TypeLimits, failures: u32) -> u64 {
    let exp = failures.saturating_sub(1).min(32);
    limits.backoff_base_ms.saturating_mul(1u64 << exp).min(limits.backoff_max_ms)
}

/// One actor's task: its instance, the head of its mailbox, and its turns
/// whose commits are on their way to disk.
pub(crate) struct ActorTask {
    pub(crate) node: Arc<NodeInner>,
    pub(crate) actor: String,
    pub(crate) slot: Arc<Slot>,
    pub(crate) live: Option<Live>,
    pub(crate) mailbox: ReadAhead,
    pub(crate) pipeline: Pipeline,
}

/// The task of one actor, from activation to passivation.
pub(crate) async fn run_actor(node: Arc<NodeInner>, actor: String, slot: Arc<Slot>, mut permit: OwnedSemaphorePermit) {
    let ty_name = actor.split('/').next().unwrap_or_default().to_string();
    let mut task = ActorTask {
        node: node.clone(),
        actor: actor.clone(),
        slot: slot.clone(),
        live: None,
        mailbox: ReadAhead::default(),
        pipeline: Pipeline::default(),
    };
    loop {
        task.collect_commits().await;
        if !slot.controls().is_empty() {
            // Between turns, with nothing in flight (see `control`).
            // Both boxed, like the turn below: rare, and large inlined.
            if task.pipeline.is_empty() {
                Box::pin(task.run_controls()).await;
            } else {
                task.wait_for_commit().await;
            }
            continue;
        }
        if let Some(runs) = elsewhere(&node, &actor) {
            match Box::pin(task.stand_aside(runs, permit)).await {
                Some(p) => {
                    permit = p;
                    continue;
                }
                None => return,
            }
        }
        let ty = node.registry.get(&ty_name);
        if !task.pipeline.is_empty() && !task.may_start_turn(ty.as_deref()) {
            task.wait_for_commit().await;
            continue;
        }
        let work = match (&ty, node.is_stopping()) {
            (Some(_), false) => next_work(&node.store, &actor, &slot, &mut task.mailbox),
            _ => Ok(None),
        };
        match (work, ty) {
            (Ok(Some(work)), Some(ty)) => {
                // Boxed: the turn's future (activation, guest call, commit)
                // is large, and inlined it would make every idle actor's
                // task that large too — kilobytes per live actor.
                Box::pin(task.handle(&ty, work)).await;
                continue;
            }
            (Err(e), _) => {
                tracing::error!(actor, "cannot read the mailbox: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            _ => {}
        }
        if !task.pipeline.is_empty() {
            // Nothing to do but commits in flight: wait for one, or for work.
            tokio::select! {
                _ = task.wait_for_commit() => {}
                _ = slot.notify.notified() => {}
            }
            continue;
        }
        // Idle: what the in-flight queue grew to goes until the next turn.
        task.pipeline.release();
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
        let check = |slot: &Slot| runnable && has_work(&node.store, &actor, slot);
        match node.scheduler.try_passivate(&node, &actor, permit, check) {
            Ok(()) => {
                if let Some(direct) = slot.direct().take() {
                    node.store_instead(*direct);
                }
                let lost = slot.transient().len();
                if lost > 0 {
                    tracing::warn!(actor, lost, "transient messages dropped: the node is stopping");
                    (0..lost).for_each(|_| node.count_drop(&actor, "the node stopped"));
                }
                if task.live.is_some() {
                    node.emit(NodeEvent::Passivated { actor: actor.clone() });
                }
                return;
            }
            Err(p) => permit = p,
        }
    }
}

/// How the actor's turns run elsewhere now, if they do (`None`: here).
fn elsewhere(node: &NodeInner, actor: &str) -> Option<Runs> {
    match node.runs_here(actor) {
        Runs::Here => None,
        other => Some(other),
    }
}

/// What the host needs to run one of `ty`'s actors on this node: the
/// type's limits, and the node's guest environment under the type's own.
fn limits_of(node: &NodeInner, ty: &LoadedType) -> ActivationLimits {
    let mut limits = activation_limits(&ty.record.limits);
    let own = &ty.record.limits.wasi.env;
    let labels = node.guest_env.iter().filter(|(name, _)| !own.iter().any(|(n, _)| n == name));
    limits.env = labels.chain(own.iter()).cloned().collect();
    limits
}

/// What the host needs of a type's limits to run one of its actors.
pub(crate) fn activation_limits(limits: &pigeon_store::TypeLimits) -> ActivationLimits {
    ActivationLimits {
        memory_bytes: limits.memory_bytes,
        deadline: Duration::from_millis(limits.deadline_ms),
        env: limits.wasi.env.clone(),
    }
}

impl ActorTask {
    /// The actor runs no turn here now (another node owns it, or it has
    /// not arrived from its previous owner; see `lattice::handoff`): let
    /// the commits in flight settle (the store refuses them), pass its
    /// in-memory work to its owner, and passivate unless work waits.
    /// Returns the permit when the task must go on.
    async fn stand_aside(&mut self, runs: Runs, permit: OwnedSemaphorePermit) -> Option<OwnedSemaphorePermit> {
        if !self.pipeline.is_empty() {
            self.wait_for_commit().await;
            return Some(permit);
        }
        self.live = None;
        self.mailbox = ReadAhead::default();
        let node = self.node.clone();
        if let Some(direct) = self.slot.direct().take() {
            node.store_instead(*direct);
        }
        if let Runs::Elsewhere(owner) = &runs {
            node.send_on_queued(&self.slot, owner);
        }
        if !self.slot.transient().is_empty() && !node.is_stopping() {
            // Held: its calls wait here until it arrives (which wakes it).
            let _ = tokio::time::timeout(Duration::from_millis(250), self.slot.notify.notified()).await;
            return Some(permit);
        }
        // Work that comes before the slot goes is seen under the same lock
        // (an arrival that makes the actor runnable included).
        let actor = self.actor.clone();
        let check = |slot: &Slot| {
            let queued = has_queued(slot);
            queued || (elsewhere(&node, &actor).is_none() && has_work(&node.store, &actor, slot))
        };
        node.scheduler.try_passivate(&node, &actor, permit, check).err()
    }

    /// Runs the operator requests waiting in the slot, then forgets what the
    /// task held of the actor (its activation's state cache, its read-ahead),
    /// so the next turn starts from the store.
    async fn run_controls(&mut self) {
        let controls = std::mem::take(&mut *self.slot.controls());
        for control in controls {
            let result = self.node.store.clear(&self.actor, control.what).await;
            if result.is_ok() && control.what == pigeon_store::Clear::Mailbox {
                self.slot.transient().clear();
            }
            tracing::info!(actor = self.actor, what = ?control.what, outcome = ?result, "cleared by an operator");
            let _ = control.done.send(result.map_err(crate::NodeError::from));
        }
        self.live = None;
        self.mailbox = ReadAhead::default();
    }

    /// Whether a turn may start while commits are in flight: on the same
    /// activation (a new one reads the store, which does not show them
    /// yet), none of them failed, and within the pipeline's bounds.
    fn may_start_turn(&self, ty: Option<&LoadedType>) -> bool {
        let Some((live, ty)) = self.live.as_ref().zip(ty) else { return false };
        live.generation == ty.generation && self.pipeline.accepts(live.activation.unsettled_bytes())
    }

    /// Runs one message's turn and submits its outcome to the store: a
    /// completed turn's commit joins the pipeline (see `pipeline`); a
    /// failure, an expiry or an answer from a stored reply is recorded
    /// before this returns.
    async fn handle(&mut self, ty: &LoadedType, work: Work) {
        let (taken, envelope, inherited, mut direct) = match work {
            Work::Persistent(key, envelope) => (Some(key), envelope, None, None),
            Work::InMemory(envelope, depends_on) => (None, envelope, depends_on, None),
            Work::Direct(direct) => (None, direct.envelope.clone(), None, Some(*direct)),
        };
        let recorded = self.run_turn(ty, taken, envelope, inherited, &mut direct).await;
        if let Some(recorded) = recorded {
            self.recorded(taken, recorded);
        }
        // Not taken into the pipeline: its fate is known now.
        if let Some(direct) = direct {
            match recorded {
                Some(true) => direct.accepted(&self.node),
                _ => self.node.store_instead(direct),
            }
        }
    }

    /// [`ActorTask::handle`]'s turn. Returns whether its outcome was
    /// recorded, or `None` when its commit joined the pipeline (which
    /// then holds `direct`).
    async fn run_turn(
        &mut self,
        ty: &LoadedType,
        taken: Option<MessageKey>,
        envelope: Envelope,
        inherited: Option<u64>,
        direct: &mut Option<Direct>,
    ) -> Option<bool> {
        let at = Handled { taken, arrived: direct.is_some(), inherited };
        let node = self.node.clone();
        if envelope.expires_at_ms.is_some_and(|at| now_ms() > at) {
            let error = "expired before it could be handled".to_string();
            let recorded = record_failure(&node, &self.actor, ty, at, envelope, error, Some(DeadReason::Expired)).await;
            return Some(recorded);
        }
        // A call made again by a retried caller: answer from the stored
        // outcome (its reply, or the failure it was dead-lettered with).
        if stores_reply(&envelope)
            && let Ok(Some(outcome)) = node.store.reply(envelope.id)
        {
            let commit = TurnCommit { actor: self.actor.clone(), taken, ..TurnCommit::default() };
            let stored = node.store.commit_turn(commit).await.is_ok();
            if stored {
                node.resolve_call(envelope.id, outcome);
            }
            return Some(stored);
        }
        // A message the node died on (see `crash`): quarantined once it
        // reached the limit, and otherwise run alone.
        let crashes = if taken.is_some() { node.crashes.count(envelope.id) } else { 0 };
        if crashes >= node.crashes.quarantine_after {
            let error = format!(
                "the node crashed {crashes} times while handling this message (a death of the node process, not \
                 an error of the turn): quarantined so it cannot crash the node again; find the cause in the \
                 node's log, then replay it with `pigeon dlq replay`"
            );
            tracing::error!(actor = self.actor, msg = %envelope.id, crashes, "message quarantined to the dead letters");
            let (reason, id) = (Some(DeadReason::Crashed), envelope.id);
            let recorded = record_failure(&node, &self.actor, ty, at, envelope, error, reason).await;
            if recorded {
                node.crashes.forget(id);
            }
            return Some(recorded);
        }
        let _alone = if crashes > 0 { Some(node.crashes.gate.lock().await) } else { None };
        if self.live.as_ref().is_none_or(|l| l.generation != ty.generation) {
            self.live = None;
            match node.host.activate(&ty.component, &self.actor, limits_of(&node, ty), node.env.clone()).await {
                Ok(activation) => {
                    self.live = Some(Live { activation, generation: ty.generation });
                    node.emit(NodeEvent::Activated { actor: self.actor.clone() });
                }
                Err(e) => {
                    let recorded = record_failure(&node, &self.actor, ty, at, envelope, e.to_string(), None).await;
                    return Some(recorded);
                }
            }
        }
        let Some(current) = self.live.as_mut() else { return Some(false) };
        if node.has_listeners() {
            node.emit(NodeEvent::TurnStarted {
                actor: self.actor.clone(),
                message: envelope.id.to_string(),
                attempt: envelope.attempt(),
                at: SystemTime::now(),
            });
        }
        self.slot.set_in_flight(Some(envelope.id));
        self.slot.begin_turn(min_epoch(self.pipeline.dependency(), inherited));
        node.resolve_delivered(envelope.id);
        let started = std::time::Instant::now();
        // What no mailbox holds goes into the journal whole (see `crash`).
        let mark = match (taken, direct.as_ref()) {
            (Some(_), _) => node.crashes.journal.mark(envelope.id, None),
            (None, Some(d)) => node.crashes.journal.mark(envelope.id, Some(&d.record)),
            (None, None) => None,
        };
        test_hooks::before_turn(&envelope);
        self.slot.begin_direct_turn(at.arrived);
        let outcome = current.activation.run_turn(&envelope).await;
        drop(mark);
        let took = started.elapsed();
        self.slot.set_in_flight(None);
        if self.slot.end_direct_turn() {
            // It tried to call: void. The activation may hold what it did.
            self.live = None;
            return Some(false);
        }
        match outcome {
            TurnOutcome::Completed { reply, effects } => {
                let (persistent, transient): (Vec<_>, Vec<_>) =
                    effects.sends.into_iter().partition(|e| e.delivery == Delivery::Persistent);
                let depends_on = self.slot.dependency();
                let commit = TurnCommit {
                    actor: self.actor.clone(),
                    taken,
                    // A transient call is never made again after a crash: its
                    // reply need not be stored.
                    message_id: Some((envelope.id, stores_reply(&envelope))),
                    state_writes: effects.state_writes,
                    sends: persistent,
                    reply: reply.clone(),
                    topics: effects.topics,
                    cancels: effects.cancels,
                    depends_on,
                    arrived: at.arrived,
                };
                let turn = current.activation.turns();
                let entry = InFlight {
                    ticket: node.store.submit_turn(commit),
                    depends_on,
                    turn,
                    taken,
                    message: envelope.id,
                    attempt: envelope.attempt(),
                    took,
                    reply,
                    transient,
                    direct: direct.take(),
                    in_memory: envelope.delivery == Delivery::Transient,
                };
                // A turn waiting for this reply may go on now: whatever it
                // commits comes after this commit.
                if envelope.kind == MessageKind::Call
                    && let Some(epoch) = entry.dependency()
                {
                    node.answer_turn_caller(envelope.id, &entry.reply, epoch);
                }
                self.pipeline.push(entry);
                None
            }
            TurnOutcome::Failed(error) => {
                self.live = None;
                let forced = matches!(error, pigeon_host::TurnError::Rejected(_)).then_some(DeadReason::Rejected);
                let recorded = record_failure(&node, &self.actor, ty, at, envelope, error.to_string(), forced).await;
                Some(recorded)
            }
        }
    }

    /// The outcome of the turn on `taken` was recorded (or not: then the
    /// message may still be where it was, and the mailbox is read again).
    fn recorded(&mut self, taken: Option<MessageKey>, recorded: bool) {
        if let Some(key) = taken {
            self.mailbox.done(key);
        }
        if !recorded {
            self.mailbox.forget();
        }
    }
}

/// Where a turn's message came from, as its failure is recorded.
#[derive(Clone, Copy)]
struct Handled {
    /// Its place in the mailbox, if it was taken from there.
    taken: Option<MessageKey>,
    /// It was handed over before it was stored (see `direct`).
    arrived: bool,
    /// What its sender's turn depended on (an in-memory message).
    inherited: Option<u64>,
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
    Handled { taken, arrived, inherited: depends_on }: Handled,
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
    if taken.is_none() && !arrived && dead.is_none() {
        node.retry_in_memory_later(envelope.clone(), depends_on, Duration::from_millis(retry_in));
    }
    let id = envelope.id;
    let attempt = envelope.failures;
    let failure = TurnFailure { actor: actor.to_string(), taken, envelope, disposition, arrived };
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

/// Hooks for the end-to-end tests, in debug builds only.
mod test_hooks {
    /// Aborts the process when a turn starts on a message whose payload is
    /// `PIGEON_TEST_ABORT_ON`: a real crash of the node in the middle of a
    /// turn, for the crash-quarantine tests. Release builds have no hook.
    #[cfg(debug_assertions)]
    pub(super) fn before_turn(envelope: &pigeon_store::Envelope) {
        static TRIGGER: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
        let trigger = TRIGGER.get_or_init(|| std::env::var_os("PIGEON_TEST_ABORT_ON").map(|v| v.into_encoded_bytes()));
        if trigger.as_deref() == Some(envelope.payload.as_slice()) {
            tracing::error!(msg = %envelope.id, "PIGEON_TEST_ABORT_ON: aborting the node mid-turn");
            std::process::abort();
        }
    }

    #[cfg(not(debug_assertions))]
    pub(super) fn before_turn(_: &pigeon_store::Envelope) {}
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
