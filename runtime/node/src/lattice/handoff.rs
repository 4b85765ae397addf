//! Moving actors when a type's placement changes (the protocol is
//! `docs/design/handoff.md`; the store's half is `pigeon-store`'s
//! `handoff` module).
//!
//! A change (`pigeon placement`, `pigeon drain`) makes the type's next
//! placement epoch on the node that takes it, which tells every peer; a
//! peer that missed it learns it from heartbeats (each type's epoch) or
//! from the first handoff request that carries it. The highest epoch wins.
//!
//! From then on every node routes by the new placement, and the store
//! fences every turn commit by it (see `pigeon_store`'s `Worker::fence`):
//! - the **old owner** of a moving actor runs no more turns for it; its
//!   mover reads the actor's rows, hands them to the new owner in batches,
//!   and deletes its copy only once the new owner has committed them. The
//!   actors to move are found in the store itself (whatever it holds of
//!   the type that another node owns now), so a mover killed half-way
//!   finds exactly the rest when the node starts again. When nothing is
//!   left it records that it is *done*;
//! - the **new owner** stores what it receives for the actor but runs no
//!   turn until the actor arrives, or until the old owner says it is done
//!   (it asks, every beat: a done marker is never pushed, so none is lost).
//!
//! Once every node of the previous set is done, each node forgets the
//! previous set: the change is complete there. One change per type is
//! under way at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use pigeon_host::CallFailure;
use pigeon_lattice::{Op, PeerState};
use pigeon_store::handoff::{ActorRows, HandoffOutcome};
use pigeon_store::{MessageKind, Placement};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::{decode, encode};
use crate::{NodeError, NodeInner};

/// How often the mover looks at unfinished changes.
const TICK: Duration = Duration::from_millis(500);
/// How long one handoff request may take (the new owner commits it).
const TAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a status question may take.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call queued here for an actor that moved may wait for the
/// new owner's answer (its caller's own deadline still applies).
const CALL_ON_TIMEOUT: Duration = Duration::from_secs(30);
/// Most actors per handoff request.
const BATCH_ACTORS: usize = 256;

/// How far this node's moves of one type are, for one epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveProgress {
    pub epoch: u64,
    /// Actors this node still has to hand off.
    pub remaining: u64,
    /// Actors it handed off in this epoch (since it started).
    pub moved: u64,
    /// Bytes of those actors.
    pub bytes: u64,
    /// It has handed off everything it had to.
    pub done: bool,
    /// Why the last attempt failed, if it did (it is retried).
    pub error: Option<String>,
}

/// The moves of a type's placement change, as every node of the previous
/// set reports them.
#[derive(Clone, Debug, Serialize)]
pub struct PlacementStatus {
    pub name: String,
    pub placement: Placement,
    /// Per node of the previous set: its progress, or why it did not say.
    pub moves: Vec<(String, Result<MoveProgress, String>)>,
    /// Every node of the previous set is done (or no change is under way).
    pub complete: bool,
}

/// What travels under [`Op::Handoff`].
#[derive(Serialize, Deserialize)]
enum HandoffRequest {
    /// "Here is the placement I know; how far are your moves of it?"
    Status { name: String, placement: Placement },
    /// Actors handed off under `placement` (its epoch).
    Take { name: String, placement: Placement, actors: Vec<ActorRows> },
}

#[derive(Serialize, Deserialize)]
enum HandoffAnswer {
    Status { placement: Placement, progress: MoveProgress },
    Taken { applied: u64 },
}

/// The node's moves in flight, by type.
#[derive(Default)]
pub(crate) struct Moves {
    progress: Mutex<HashMap<String, MoveProgress>>,
    /// Woken when a placement changes.
    wake: Notify,
}

impl Moves {
    fn progress(&self) -> std::sync::MutexGuard<'_, HashMap<String, MoveProgress>> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This node's progress on `name` at `epoch`.
    fn of(&self, name: &str, epoch: u64) -> MoveProgress {
        match self.progress().get(name) {
            Some(p) if p.epoch == epoch => p.clone(),
            _ => MoveProgress { epoch, ..MoveProgress::default() },
        }
    }

    fn update(&self, name: &str, epoch: u64, change: impl FnOnce(&mut MoveProgress)) {
        let mut all = self.progress();
        let entry = all.entry(name.to_string()).or_default();
        if entry.epoch != epoch {
            *entry = MoveProgress { epoch, ..MoveProgress::default() };
        }
        change(entry);
    }
}

/// Whether an actor's turns run on this node now.
pub(crate) enum Runs {
    Here,
    /// Another node owns it.
    Elsewhere(String),
    /// This node owns it, but its state is still on its previous owner.
    Held,
}

impl NodeInner {
    /// Whether `actor`'s turns run here now (see the module doc).
    pub(crate) fn runs_here(&self, actor: &str) -> Runs {
        let Some(loaded) = self.registry.get(actor.split('/').next().unwrap_or_default()) else { return Runs::Here };
        let me = &self.store.identity().node_id;
        match loaded.placement.owner(actor) {
            Some(owner) if owner != me => return Runs::Elsewhere(owner.to_string()),
            _ => {}
        }
        if loaded.placement.previous.is_none() {
            return Runs::Here;
        }
        match self.store.held_from(actor) {
            Ok(None) => Runs::Here,
            Ok(Some(_)) => Runs::Held,
            Err(e) => {
                tracing::error!(actor, "cannot tell whether the actor has arrived: {e}");
                Runs::Held
            }
        }
    }

    /// Passes the in-memory work queued for `actor` here on to `owner`,
    /// which owns it now: transient messages as transient messages, calls
    /// as calls whose answers go to the waiters here.
    pub(crate) fn send_on_queued(self: &Arc<Self>, slot: &crate::scheduler::Slot, owner: &str) {
        let queued = std::mem::take(&mut *slot.transient()).into_vec();
        for queued in queued {
            let envelope = queued.envelope;
            if envelope.kind != MessageKind::Call || !self.calls().contains_key(&envelope.id) {
                self.transient_remote(owner.to_string(), envelope);
                continue;
            }
            let (node, owner) = (self.clone(), owner.to_string());
            self.runtime.spawn(async move {
                let id = envelope.id;
                let answer = match node.call_remote(&owner, envelope, CALL_ON_TIMEOUT).await {
                    Ok(reply) => Ok(reply),
                    Err(CallFailure::Failed(e)) => Err(e),
                    Err(CallFailure::Timeout) => Err(format!("no reply from node `{owner}`, which owns it now")),
                    Err(CallFailure::Refused(refusal)) => Err(format!("refused by node `{owner}`: {refusal:?}")),
                };
                node.resolve_call(id, answer);
            });
        }
    }

    /// Takes `placement` for type `name` if it is newer than the one this
    /// node has: the store first (it fences commits from then on), then the
    /// registry (routing), then the mover. Returns whether it was taken.
    pub(crate) async fn adopt_placement(self: &Arc<Self>, name: &str, placement: Placement) -> Result<bool, NodeError> {
        let Some(loaded) = self.registry.get(name) else { return Ok(false) };
        if placement.epoch <= loaded.placement.epoch {
            return Ok(false);
        }
        self.store.put_placement(name, &placement).await?;
        self.registry.set_placement(name, placement.clone());
        tracing::info!(r#type = name, epoch = placement.epoch, nodes = ?placement.nodes, "placement changed");
        // Actors live here that run elsewhere now look again.
        self.scheduler.wake_all(&format!("{name}/"));
        self.moves.wake.notify_one();
        Ok(true)
    }

    /// A placement change made here: taken, then told to every peer that
    /// is up (the others learn it from heartbeats).
    pub(crate) async fn change_placement(self: &Arc<Self>, name: &str, placement: Placement) -> Result<(), NodeError> {
        self.adopt_placement(name, placement.clone()).await?;
        let Some(lattice) = self.lattice().cloned() else { return Ok(()) };
        // A status question carries the asker's placement: asking is telling.
        for peer in lattice.peers().into_iter().filter(|p| p.state == PeerState::Up) {
            if let Err(e) = self.ask_status(&peer.member.id, name, &placement).await {
                tracing::warn!("node `{}` did not hear of the placement change now: {e}", peer.member.id);
            }
        }
        Ok(())
    }

    /// A peer's heartbeat names a newer placement of `name`: fetch it.
    pub(crate) async fn fetch_placement(self: &Arc<Self>, peer: &str, name: &str) -> Result<(), NodeError> {
        let Some(loaded) = self.registry.get(name) else { return Ok(()) };
        let answer = self.ask_status(peer, name, &loaded.placement).await.map_err(NodeError::Lattice)?;
        self.adopt_placement(name, answer.0).await.map(drop)
    }

    async fn ask_status(
        &self,
        peer: &str,
        name: &str,
        placement: &Placement,
    ) -> Result<(Placement, MoveProgress), String> {
        let lattice = self.lattice().ok_or("not in a lattice")?;
        let body = encode(&HandoffRequest::Status { name: name.to_string(), placement: placement.clone() });
        let answer = lattice.request(peer, Op::Handoff, body, STATUS_TIMEOUT).await.map_err(|e| e.to_string())?;
        match decode::<HandoffAnswer>(&answer)? {
            HandoffAnswer::Status { placement, progress } => Ok((placement, progress)),
            HandoffAnswer::Taken { .. } => Err(format!("node `{peer}` answered a status question with a handoff")),
        }
    }

    /// This node's own progress on `name` under `placement`.
    fn own_progress(&self, name: &str, placement: &Placement) -> MoveProgress {
        let me = &self.store.identity().node_id;
        let mut progress = self.moves.of(name, placement.epoch);
        let was_member = placement.previous.as_ref().is_some_and(|p| p.contains(me));
        progress.done = !was_member || self.store.handoffs_done(name, placement.epoch, me).unwrap_or(false);
        progress
    }

    /// Every node of the previous set's progress on `name`'s change.
    pub(crate) async fn placement_status(&self, name: &str) -> Result<PlacementStatus, NodeError> {
        let loaded = self.registry.get(name).ok_or_else(|| NodeError::UnknownType(name.to_string()))?;
        let placement = loaded.placement.clone();
        let me = self.store.identity().node_id.clone();
        let mut moves = Vec::new();
        for node in placement.previous.iter().flatten() {
            let progress = if *node == me {
                Ok(self.own_progress(name, &placement))
            } else {
                self.ask_status(node, name, &placement).await.map(|(_, p)| p)
            };
            moves.push((node.clone(), progress));
        }
        let complete = placement.previous.is_none() || moves.iter().all(|(_, p)| p.as_ref().is_ok_and(|p| p.done));
        Ok(PlacementStatus { name: name.to_string(), placement, moves, complete })
    }
}

/// Answers a peer's handoff request.
pub(super) async fn answer_handoff(node: &Arc<NodeInner>, body: &[u8]) -> Result<Vec<u8>, String> {
    match decode::<HandoffRequest>(body)? {
        HandoffRequest::Status { name, placement } => {
            let asked = placement.epoch;
            node.adopt_placement(&name, placement).await.map_err(|e| e.to_string())?;
            let mine = node.registry.get(&name).map(|t| t.placement.clone()).unwrap_or_default();
            let mut progress = node.own_progress(&name, &mine);
            // A later change here implies this node finished the asked one.
            if mine.epoch > asked {
                progress = MoveProgress { epoch: asked, done: true, ..MoveProgress::default() };
            }
            Ok(encode(&HandoffAnswer::Status { placement: mine, progress }))
        }
        HandoffRequest::Take { name, placement, actors } => {
            let epoch = placement.epoch;
            node.adopt_placement(&name, placement).await.map_err(|e| e.to_string())?;
            let have = node.registry.get(&name).map_or(0, |t| t.placement.epoch);
            if have != epoch {
                return Err(format!("this node has placement epoch {have} of `{name}`, not {epoch}"));
            }
            // Each actor with messages is scheduled by the commit itself.
            let accepted = actors.into_iter().map(|rows| node.store.accept_handoff(rows, epoch));
            let mut applied = 0;
            for outcome in join_all(accepted).await {
                if outcome.map_err(|e| e.to_string())? == HandoffOutcome::Applied {
                    applied += 1;
                }
            }
            Ok(encode(&HandoffAnswer::Taken { applied }))
        }
    }
}

/// The mover: for the node's life, every unfinished change moves on.
pub(crate) async fn run_moves(node: Weak<NodeInner>) {
    loop {
        let Some(strong) = node.upgrade() else { return };
        let wake = async { tokio::time::timeout(TICK, strong.moves.wake.notified()).await };
        let _ = wake.await;
        if strong.is_stopping() {
            return;
        }
        for name in strong.registry.names() {
            let Some(loaded) = strong.registry.get(&name) else { continue };
            if loaded.placement.previous.is_some() {
                step(&strong, &name, loaded.placement.clone()).await;
            }
        }
    }
}

/// One round of a change of `name`: ship what this node has to, learn
/// which old owners are done, and complete the change when all are.
async fn step(node: &Arc<NodeInner>, name: &str, placement: Placement) {
    let me = node.store.identity().node_id.clone();
    let previous = placement.previous.clone().unwrap_or_default();
    let mut all_done = true;
    for from in &previous {
        let done = node.store.handoffs_done(name, placement.epoch, from).unwrap_or(false);
        if done {
            continue;
        }
        let now_done = if *from == me {
            ship(node, name, &placement).await
        } else {
            match node.ask_status(from, name, &placement).await {
                Ok((_, progress)) => progress.done,
                Err(e) => {
                    tracing::debug!("node `{from}` did not say how far it moved `{name}`: {e}");
                    false
                }
            }
        };
        if now_done {
            if let Err(e) = node.store.mark_handoffs_done(name, placement.epoch, from).await {
                tracing::error!("cannot record that node `{from}` moved every actor of `{name}`: {e}");
                all_done = false;
                continue;
            }
            // Whatever waited here for actors `from` had nothing of runs now.
            tokio::spawn(crate::schedule_pending(node.clone(), format!("{name}/")));
        } else {
            all_done = false;
        }
    }
    if all_done {
        let complete = Placement { previous: None, ..placement };
        let current = node.registry.get(name).map(|t| t.placement.epoch);
        if current == Some(complete.epoch) {
            match node.store.put_placement(name, &complete).await {
                Ok(()) => {
                    node.registry.set_placement(name, complete);
                    tracing::info!(r#type = name, "every actor of the placement change has moved");
                }
                Err(e) => tracing::error!("cannot record the end of `{name}`'s placement change: {e}"),
            }
        }
    }
}

/// Hands off every actor of `name` this node holds and another node owns
/// now; returns whether none is left.
async fn ship(node: &Arc<NodeInner>, name: &str, placement: &Placement) -> bool {
    let me = node.store.identity().node_id.clone();
    let actors = match node.store.actors_of(name) {
        Ok(actors) => actors,
        Err(e) => {
            tracing::error!("cannot list the actors of `{name}` to move: {e}");
            return false;
        }
    };
    let mut by_owner: HashMap<String, Vec<String>> = HashMap::new();
    for actor in actors {
        if let Some(owner) = placement.owner(&actor).filter(|o| *o != me) {
            by_owner.entry(owner.to_string()).or_default().push(actor);
        }
    }
    let remaining: usize = by_owner.values().map(Vec::len).sum();
    node.moves.update(name, placement.epoch, |p| p.remaining = remaining as u64);
    let budget = node.lattice().map_or(1 << 20, |l| l.max_payload()) / 2;
    let mut left = remaining;
    for (owner, actors) in by_owner {
        let mut rest = actors.as_slice();
        let pace = test_hooks::pace();
        while !rest.is_empty() {
            let chunk = &rest[..rest.len().min(if pace.is_some() { 1 } else { BATCH_ACTORS })];
            if let Some(pace) = pace {
                tokio::time::sleep(pace).await;
            }
            match hand_off(node, name, placement, &owner, chunk, budget).await {
                Ok(sent) => {
                    left -= sent;
                    rest = &rest[sent..];
                    node.moves.update(name, placement.epoch, |p| {
                        p.remaining = left as u64;
                        p.error = None;
                    });
                }
                Err(e) => {
                    tracing::warn!("handing off actors of `{name}` to node `{owner}` failed (retried): {e}");
                    node.moves.update(name, placement.epoch, |p| p.error = Some(e));
                    break;
                }
            }
        }
    }
    left == 0
}

/// Hands off as many of `actors` (in order) as fit in one request to
/// `owner`, and releases them here once it has committed them; returns
/// how many went.
async fn hand_off(
    node: &Arc<NodeInner>,
    name: &str,
    placement: &Placement,
    owner: &str,
    actors: &[String],
    budget: usize,
) -> Result<usize, String> {
    let started = Instant::now();
    let mut batch = Vec::new();
    let mut size = 0;
    for actor in actors {
        let rows = node.store.actor_rows(actor).map_err(|e| e.to_string())?;
        let weight = encode(&rows).len();
        if weight > budget && batch.is_empty() {
            return Err(format!(
                "`{actor}` holds {weight} bytes, more than half a lattice message ({budget} bytes of NATS's \
                 max_payload): raise NATS's max_payload and `pigeon up --nats-max-payload`"
            ));
        }
        if size + weight > budget {
            break;
        }
        size += weight;
        batch.push(rows);
    }
    let bytes: u64 = batch.iter().map(ActorRows::bytes).sum();
    let count = batch.len();
    let names: Vec<String> = batch.iter().map(|rows| rows.actor.clone()).collect();
    let request = HandoffRequest::Take { name: name.to_string(), placement: placement.clone(), actors: batch };
    let lattice = node.lattice().ok_or("not in a lattice")?;
    let answer =
        lattice.request(owner, Op::Handoff, encode(&request), TAKE_TIMEOUT).await.map_err(|e| e.to_string())?;
    match decode::<HandoffAnswer>(&answer)? {
        HandoffAnswer::Taken { .. } => {}
        HandoffAnswer::Status { .. } => return Err(format!("node `{owner}` answered a handoff with a status")),
    }
    let released = names.iter().map(|actor| node.store.release_actor(actor, owner, placement.epoch));
    for outcome in join_all(released).await {
        outcome.map_err(|e| e.to_string())?;
    }
    node.metrics.handed_off(count as u64, bytes, started.elapsed());
    node.moves.update(name, placement.epoch, |p| {
        p.moved += count as u64;
        p.bytes += bytes;
    });
    Ok(count)
}

/// Hooks for the end-to-end tests, in debug builds only.
mod test_hooks {
    use std::time::Duration;

    /// `PIGEON_TEST_HANDOFF_PACE_MS`: hand actors off one at a time, this
    /// long apart, so that a test can kill a node while a move is under
    /// way (it waits until the status shows one). Release builds have none.
    #[cfg(debug_assertions)]
    pub(super) fn pace() -> Option<Duration> {
        static PACE: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();
        *PACE.get_or_init(|| {
            let ms = std::env::var("PIGEON_TEST_HANDOFF_PACE_MS").ok()?.parse().ok()?;
            Some(Duration::from_millis(ms))
        })
    }

    #[cfg(not(debug_assertions))]
    pub(super) fn pace() -> Option<Duration> {
        None
    }
}
