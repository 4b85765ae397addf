//! The live feed: `GET /api/v1/events`, server-sent events for the
//! dashboard (and anyone with `curl -N`).
//!
//! A node can run thousands of turns a second; one browser event each would
//! drown the page. So the feed is batched: it listens to the node's events
//! and, once per [`TICK`], sends one `tick` event that sums up the interval —
//! counters since start (the page turns them into rates), queue totals,
//! the rows of the actors that changed (at most [`MAX_ROWS`]; `more_changed`
//! says to reload the list), and the latest failures. A listener that falls
//! behind the node's event channel is told how many events it `missed`.
//! The feed ends when the server shuts down (graceful shutdown waits for
//! open responses). After a node restart the browser's reconnect gets a
//! fresh feed, and the counters starting again from zero tell it the node
//! restarted.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use pigeon_node::pigeon_store::now_ms;
use pigeon_node::{Counters, Node, NodeEvent};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::{self, error::RecvError};
use utoipa::ToSchema;

use crate::AppState;
use crate::model::ActorInfo;

/// How often the feed sends a `tick`.
pub const TICK: Duration = Duration::from_millis(500);
/// Actor rows per tick; beyond this the page reloads its list.
pub const MAX_ROWS: usize = 200;
/// Failures per tick (the latest ones).
pub const MAX_FAILURES: usize = 20;

/// Counters since the node started.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct CountersView {
    /// Messages accepted (stored, or queued in memory when transient).
    pub accepted: u64,
    /// Turns committed.
    pub completed: u64,
    /// Turns failed (each attempt).
    pub failed: u64,
    pub dead_lettered: u64,
    pub dropped: u64,
    pub refused: u64,
}

impl From<Counters> for CountersView {
    fn from(c: Counters) -> Self {
        Self {
            accepted: c.accepted,
            completed: c.completed,
            failed: c.failed,
            dead_lettered: c.dead_lettered,
            dropped: c.dropped,
            refused: c.refused,
        }
    }
}

/// A failed turn.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct FailureView {
    pub actor: String,
    pub message: String,
    pub attempt: u32,
    pub error: String,
    /// It went to the dead-letter queue (no retry).
    pub dead: bool,
    pub at_ms: u64,
}

/// One `tick` of the live feed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Tick {
    pub at_ms: u64,
    pub uptime_ms: u64,
    pub interval_ms: u64,
    pub counters: CountersView,
    pub types: usize,
    /// Actors that ran at least one turn.
    pub actors: u64,
    /// Actors with a live instance or queued work.
    pub active_actors: usize,
    /// Messages in mailboxes, by priority (index = priority).
    pub queued: Vec<u64>,
    /// Messages waiting for their time (delays, retries in backoff).
    pub delayed: u64,
    pub dead_letters: u64,
    /// The current rows of the actors that changed in this interval.
    pub changed: Vec<ActorInfo>,
    /// More actors changed than `changed` holds.
    pub more_changed: bool,
    /// The latest failures of this interval, oldest first.
    pub failures: Vec<FailureView>,
    /// Node events this feed missed because it fell behind.
    pub missed: u64,
    /// What is wrong with the disk under the store, when something is
    /// (see `Health::storage`).
    pub storage_problem: Option<String>,
    /// In a lattice, its nodes as `GET /api/v1/nodes` lists them (absent
    /// for a node on its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lattice: Option<crate::nodes::NodeList>,
}

/// What the feed gathered since its last tick.
struct Feed {
    node: Node,
    events: broadcast::Receiver<NodeEvent>,
    changed: BTreeSet<String>,
    more_changed: bool,
    failures: Vec<FailureView>,
    missed: u64,
}

impl Feed {
    fn note(&mut self, event: NodeEvent) {
        match event {
            NodeEvent::Enqueued { actors } => actors.into_iter().for_each(|a| self.touch(a)),
            NodeEvent::TurnStarted { actor, .. }
            | NodeEvent::TurnCompleted { actor, .. }
            | NodeEvent::Activated { actor }
            | NodeEvent::Passivated { actor }
            | NodeEvent::Dropped { actor, .. } => self.touch(actor),
            NodeEvent::TurnFailed { actor, message, attempt, error, retry_in_ms, at } => {
                if self.failures.len() == MAX_FAILURES {
                    self.failures.remove(0);
                }
                let at_ms = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
                let dead = retry_in_ms.is_none();
                self.failures.push(FailureView { actor: actor.clone(), message, attempt, error, dead, at_ms });
                self.touch(actor);
            }
        }
    }

    fn touch(&mut self, actor: String) {
        if self.changed.len() < MAX_ROWS {
            self.changed.insert(actor);
        } else if !self.changed.contains(&actor) {
            self.more_changed = true;
        }
    }

    /// Waits out the interval, gathering events, then sums it up.
    async fn next_tick(&mut self) -> Tick {
        let deadline = tokio::time::Instant::now() + TICK;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                event = self.events.recv() => match event {
                    Ok(event) => self.note(event),
                    Err(RecvError::Lagged(n)) => {
                        self.missed += n;
                        self.more_changed = true;
                    }
                    Err(RecvError::Closed) => {
                        tokio::time::sleep_until(deadline).await;
                        break;
                    }
                },
            }
        }
        self.tick()
    }

    fn tick(&mut self) -> Tick {
        let store = self.node.store();
        // A store that cannot be read shows as empty for this tick; the
        // error is in the node's log, and the next tick tries again.
        let totals = store.totals().unwrap_or_else(|e| {
            tracing::warn!("live feed: cannot read the store's totals: {e}");
            Default::default()
        });
        let changed = std::mem::take(&mut self.changed);
        let node = &self.node;
        let rows = changed.into_iter().filter_map(|address| match store.actor_summary(&address) {
            Ok(summary) => Some(ActorInfo::of(node, &summary)),
            Err(e) => {
                tracing::warn!(actor = address, "live feed: cannot read the actor's row: {e}");
                None
            }
        });
        Tick {
            at_ms: now_ms(),
            uptime_ms: self.node.uptime().as_millis() as u64,
            interval_ms: TICK.as_millis() as u64,
            counters: self.node.counters().into(),
            types: self.node.type_names().len(),
            actors: totals.actors,
            active_actors: self.node.active_actors(),
            queued: totals.queued.to_vec(),
            delayed: totals.delayed,
            dead_letters: totals.dead_letters,
            changed: rows.collect(),
            more_changed: std::mem::take(&mut self.more_changed),
            failures: std::mem::take(&mut self.failures),
            missed: std::mem::take(&mut self.missed),
            storage_problem: crate::model::StorageHealth::from(store.storage_status()).problem,
            lattice: self.node.lattice_status().is_some().then(|| crate::nodes::NodeList::of(&self.node)),
        }
    }
}

/// The stream of `tick` events: the first at once, then one per [`TICK`].
pub fn ticks(node: Node) -> impl Stream<Item = Tick> {
    let events = node.events();
    let feed = Feed { node, events, changed: BTreeSet::new(), more_changed: false, failures: Vec::new(), missed: 0 };
    futures_util::stream::unfold((feed, true), |(mut feed, first)| async move {
        let tick = if first { feed.tick() } else { feed.next_tick().await };
        Some((tick, (feed, false)))
    })
}

/// Server-sent events: one `tick` (JSON [`Tick`]) per half second.
#[utoipa::path(get, path = "/api/v1/events",
    responses((status = 200, description = "Server-sent events: `event: tick`, `data:` a JSON `Tick`",
        content_type = "text/event-stream", body = String)))]
pub async fn events(State(s): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    use futures_util::StreamExt as _;
    let mut closing = s.closing;
    let closed = async move {
        // An error means the server is gone: end the feed as well.
        let _ = closing.wait_for(|closing| *closing).await;
    };
    let stream = ticks(s.node).take_until(closed).map(|tick| {
        // A tick always serializes; an empty event would only be skipped.
        Ok(Event::default().event("tick").json_data(&tick).unwrap_or_default())
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
