//! Which actors run, and when.
//!
//! Actors are virtual: an actor has a *slot* here only while it has work or
//! a live instance. [`Scheduler::schedule`] is called whenever an actor may
//! have new work (a commit put messages in its mailbox, a transient message
//! arrived, recovery found pending messages). If the actor already has a
//! slot, its task is woken; otherwise a slot is created and a task started —
//! if an activation permit is free. Permits bound the live instances to the
//! size of the engine's instance pool; actors beyond it wait in a FIFO ready
//! queue, and idle activations give their permit up early when someone is
//! waiting (the `pressure` signal).
//!
//! One task per actor means one turn at a time per actor; many tasks run on
//! tokio's threads in parallel.
//!
//! Passivation is race-free because a slot is removed only under the same
//! lock that `schedule` takes, after checking that no work is pending: work
//! committed before the check is seen by it, work committed after it finds
//! no slot and starts a new task.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{self, AtomicBool, AtomicU8, AtomicU16, AtomicU64};
use std::sync::{Arc, Mutex};

use pigeon_store::{Arrivals, Envelope};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::NodeInner;

/// A transient message waiting in memory, ordered like a mailbox.
pub(crate) struct Transient {
    pub(crate) seq: u64,
    /// The store's [arrival mark](pigeon_store::Store::arrival_mark) when
    /// it came: a stored message of the same priority with a smaller
    /// sequence number came before it, one with this or a greater after.
    pub(crate) arrival: u64,
    pub(crate) envelope: Envelope,
    /// The sender's turn was built on commits not yet durable, from this
    /// commit epoch on (see `pipeline`).
    pub(crate) depends_on: Option<u64>,
}

impl PartialEq for Transient {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
    }
}

impl Eq for Transient {}

impl PartialOrd for Transient {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Transient {
    /// Higher priority first, then older (smaller seq) first.
    fn cmp(&self, other: &Self) -> Ordering {
        self.envelope.priority.cmp(&other.envelope.priority).then(other.seq.cmp(&self.seq))
    }
}

const NO_DEPENDENCY: u64 = u64::MAX;

/// An actor with work or a live instance.
pub(crate) struct Slot {
    /// Woken when new work may be there.
    pub(crate) notify: Notify,
    /// Transient messages, highest priority first.
    pub(crate) transient: Mutex<BinaryHeap<Transient>>,
    /// The message whose turn is running, if any.
    in_flight: Mutex<Option<ulid::Ulid>>,
    /// Operator requests the task runs between turns (see `control`).
    controls: Mutex<Vec<crate::control::Control>>,
    /// The priorities of persistent messages that arrived since the actor
    /// last looked ([`Arrivals`] as bits): every priority when the slot is
    /// made, then whatever the store reports. It spares the actor a store
    /// read per turn when nothing arrived, or only messages that sort after
    /// the ones it already holds (see [`crate::readahead`]).
    arrivals: AtomicU16,
    /// The earliest commit epoch the running turn depends on (`u64::MAX`:
    /// none): its actor's commits still on their way, and the replies of
    /// callees whose commits were (see `pipeline`).
    dependency: AtomicU64,
    /// A persistent send handed over before it was stored (see `direct`).
    /// Boxed: every slot has the field, few hold one (a waiting actor's
    /// slot is ~500 bytes).
    direct: Mutex<Option<Box<crate::direct::Direct>>>,
    /// The task knows of no queued work: a send may be handed over (see
    /// `direct`).
    idle: AtomicBool,
    /// The running turn's message was handed over before it was stored,
    /// and whether the turn tried to make a call (see `direct`).
    direct_turn: AtomicU8,
    /// A direct turn of this actor tried to call: its sends take the
    /// mailbox from then on, instead of a wasted first attempt each.
    calls: AtomicBool,
}

/// [`Slot::direct_turn`]: not a direct turn, one, one that tried to call.
const NOT_DIRECT: u8 = 0;
const DIRECT: u8 = 1;
const DIRECT_CALLED: u8 = 2;

impl Slot {
    pub(crate) fn new() -> Self {
        Self {
            notify: Notify::new(),
            transient: Mutex::default(),
            in_flight: Mutex::default(),
            controls: Mutex::default(),
            arrivals: AtomicU16::new(Arrivals::ANY.bits()),
            dependency: AtomicU64::new(NO_DEPENDENCY),
            direct: Mutex::default(),
            idle: AtomicBool::new(false),
            direct_turn: AtomicU8::new(NOT_DIRECT),
            calls: AtomicBool::new(false),
        }
    }

    /// A turn starts on a message handed over before it was stored
    /// (`true`), or on another.
    pub(crate) fn begin_direct_turn(&self, direct: bool) {
        self.direct_turn.store(if direct { DIRECT } else { NOT_DIRECT }, atomic::Ordering::Release);
    }

    /// The running turn wants to make a call. Refused (`false`) when its
    /// message is stored nowhere yet: a callee commits on its own, so the
    /// message must be durable before the call, or a crash could keep the
    /// callee's effects and lose what the caller would do with them.
    pub(crate) fn may_call(&self) -> bool {
        self.direct_turn
            .compare_exchange(DIRECT, DIRECT_CALLED, atomic::Ordering::AcqRel, atomic::Ordering::Acquire)
            .is_err_and(|was| was == NOT_DIRECT)
    }

    /// Whether the direct turn that ended tried to call (then its outcome
    /// is void: the message is stored, and runs again from the mailbox).
    pub(crate) fn end_direct_turn(&self) -> bool {
        let called = self.direct_turn.swap(NOT_DIRECT, atomic::Ordering::AcqRel) == DIRECT_CALLED;
        if called {
            self.calls.store(true, atomic::Ordering::Relaxed);
        }
        called
    }

    /// The message handed over before it was stored, if any.
    pub(crate) fn direct(&self) -> std::sync::MutexGuard<'_, Option<Box<crate::direct::Direct>>> {
        self.direct.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the task knows of queued work (`false`) or none (`true`).
    pub(crate) fn set_idle(&self, idle: bool) {
        self.idle.store(idle, atomic::Ordering::Release);
    }

    /// Whether the task knew of no queued work, which it no longer may
    /// assume: the one who asks hands it some.
    pub(crate) fn take_idle(&self) -> bool {
        self.idle.swap(false, atomic::Ordering::AcqRel)
    }

    /// A turn starts, depending on `dependency` (see [`Slot::dependency`]).
    pub(crate) fn begin_turn(&self, dependency: Option<u64>) {
        self.dependency.store(dependency.unwrap_or(NO_DEPENDENCY), atomic::Ordering::Release);
    }

    /// The running turn used a reply whose commit, submitted at `epoch`,
    /// is not durable yet.
    pub(crate) fn depend(&self, epoch: u64) {
        self.dependency.fetch_min(epoch, atomic::Ordering::AcqRel);
    }

    /// The earliest commit epoch the running turn depends on, if any.
    pub(crate) fn dependency(&self) -> Option<u64> {
        let epoch = self.dependency.load(atomic::Ordering::Acquire);
        (epoch != NO_DEPENDENCY).then_some(epoch)
    }

    /// Messages of these priorities are in the mailbox (noted before the
    /// wake-up).
    pub(crate) fn note_arrivals(&self, arrivals: Arrivals) {
        self.arrivals.fetch_or(arrivals.bits(), atomic::Ordering::AcqRel);
    }

    /// What arrived since the last call, forgetting it: a message stored
    /// after this call is noted again before the actor is woken.
    pub(crate) fn take_arrivals(&self) -> Arrivals {
        Arrivals::from_bits(self.arrivals.swap(0, atomic::Ordering::AcqRel))
    }

    pub(crate) fn set_in_flight(&self, id: Option<ulid::Ulid>) {
        *self.in_flight.lock().unwrap_or_else(|p| p.into_inner()) = id;
    }

    pub(crate) fn in_flight(&self) -> Option<ulid::Ulid> {
        *self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The operator requests waiting for the task.
    pub(crate) fn controls(&self) -> std::sync::MutexGuard<'_, Vec<crate::control::Control>> {
        self.controls.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn transient(&self) -> std::sync::MutexGuard<'_, BinaryHeap<Transient>> {
        self.transient.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Default)]
struct Slots {
    by_actor: HashMap<String, Arc<Slot>>,
    /// Actors with a slot but no task yet (no permit was free).
    waiting: VecDeque<String>,
}

/// Slots, permits and the ready queue.
pub(crate) struct Scheduler {
    slots: Mutex<Slots>,
    permits: Arc<Semaphore>,
    /// Signalled when an actor had to queue for a permit.
    pub(crate) pressure: Notify,
}

impl Scheduler {
    pub(crate) fn new(max_active: usize) -> Self {
        Self { slots: Mutex::default(), permits: Arc::new(Semaphore::new(max_active)), pressure: Notify::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Messages of these priorities arrived in `actor`'s persistent mailbox
    /// (any: [`Arrivals::ANY`]): wake its task or start one.
    pub(crate) fn schedule(&self, node: &Arc<NodeInner>, actor: &str, arrivals: Arrivals) {
        self.with_slot(node, actor, |slot| slot.note_arrivals(arrivals));
    }

    /// Runs `f` on `actor`'s slot (creating it, and starting its task, if
    /// needed), then wakes the task.
    pub(crate) fn with_slot<R>(&self, node: &Arc<NodeInner>, actor: &str, f: impl FnOnce(&Slot) -> R) -> R {
        let mut slots = self.lock();
        if let Some(slot) = slots.by_actor.get(actor) {
            let result = f(slot);
            slot.notify.notify_one();
            return result;
        }
        let slot = Arc::new(Slot::new());
        let result = f(&slot);
        slots.by_actor.insert(actor.to_string(), slot.clone());
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => spawn_actor(node, actor.to_string(), slot, permit),
            Err(_) => {
                slots.waiting.push_back(actor.to_string());
                self.pressure.notify_waiters();
            }
        }
        result
    }

    /// Hands `direct` to its actor if the actor's task is idle, with nothing
    /// queued or newly arrived (see `direct`); gives it back otherwise.
    pub(crate) fn offer_direct(
        &self,
        actor: &str,
        direct: Box<crate::direct::Direct>,
    ) -> Result<(), Box<crate::direct::Direct>> {
        let slots = self.lock();
        let Some(slot) = slots.by_actor.get(actor) else { return Err(direct) };
        // One lock at a time (the actor's task takes them in another order).
        let quiet = slot.transient().is_empty()
            && slot.arrivals.load(atomic::Ordering::Acquire) == 0
            && !slot.calls.load(atomic::Ordering::Relaxed);
        let mut held = slot.direct();
        // Checked last: taking the idle mark commits to handing it over.
        if !quiet || held.is_some() || !slot.take_idle() {
            return Err(direct);
        }
        *held = Some(direct);
        drop(held);
        slot.notify.notify_one();
        Ok(())
    }

    /// Whether some actor is queued for a permit.
    pub(crate) fn has_waiting(&self) -> bool {
        !self.lock().waiting.is_empty()
    }

    /// Removes `actor`'s slot unless `has_work` says it has work, passing its
    /// permit on to the next waiting actor. Returns the permit back when the
    /// actor must keep running.
    pub(crate) fn try_passivate(
        &self,
        node: &Arc<NodeInner>,
        actor: &str,
        permit: OwnedSemaphorePermit,
        has_work: impl FnOnce(&Slot) -> bool,
    ) -> Result<(), OwnedSemaphorePermit> {
        let mut slots = self.lock();
        let Some(slot) = slots.by_actor.get(actor).cloned() else {
            return Ok(());
        };
        if has_work(&slot) {
            return Err(permit);
        }
        slots.by_actor.remove(actor);
        while let Some(next) = slots.waiting.pop_front() {
            if let Some(slot) = slots.by_actor.get(&next).cloned() {
                spawn_actor(node, next, slot, permit);
                break;
            }
        }
        Ok(())
    }

    /// `actor`'s slot, if it has one.
    pub(crate) fn slot(&self, actor: &str) -> Option<Arc<Slot>> {
        self.lock().by_actor.get(actor).cloned()
    }

    /// The message `actor` is handling right now, if any.
    pub(crate) fn in_flight(&self, actor: &str) -> Option<ulid::Ulid> {
        self.lock().by_actor.get(actor).and_then(|slot| slot.in_flight())
    }

    /// Wakes every actor with a slot whose name starts with `prefix` (a
    /// type's placement changed: each looks again at whether it runs here).
    pub(crate) fn wake_all(&self, prefix: &str) {
        for (actor, slot) in &self.lock().by_actor {
            if actor.starts_with(prefix) {
                slot.notify.notify_one();
            }
        }
    }

    /// Actors with a slot (live or queued).
    pub(crate) fn slot_count(&self) -> usize {
        self.lock().by_actor.len()
    }
}

fn spawn_actor(node: &Arc<NodeInner>, actor: String, slot: Arc<Slot>, permit: OwnedSemaphorePermit) {
    let node = node.clone();
    node.runtime.clone().spawn(crate::turn::run_actor(node, actor, slot, permit));
}
