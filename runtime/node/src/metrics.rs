//! The node's measurements, for `/metrics` and the dashboard's live feed.
//!
//! Everything lives in one `prometheus-client` registry per node (not a
//! process-global one: tests run several nodes in one process). Counters
//! move as the node works — turns from [`NodeEvent`]s, accepted messages,
//! dead letters and commit costs from the store's [`BatchReport`]s — and the
//! gauges that describe the store (queue depths, dead letters) are read
//! from it when the registry is rendered, so they are exact at scrape time.

use pigeon_store::{BatchReport, StorageStatus, StoreTotals};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::NodeEvent;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TurnLabels {
    /// The actor type.
    r#type: String,
    /// `completed` or `failed`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PriorityLabel {
    priority: u8,
}

/// Counters since the node started: what the live feed sends as rates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages accepted: persistent ones stored, transient ones queued.
    pub accepted: u64,
    /// Turns committed.
    pub completed: u64,
    /// Turns that failed (each attempt counts).
    pub failed: u64,
    pub dead_lettered: u64,
    /// Transient messages dropped.
    pub dropped: u64,
    /// Persistent sends refused with `mailbox-full`.
    pub refused: u64,
    /// Of the accepted: persistent sends accepted with their turn's commit,
    /// never stored in a mailbox (see `direct`).
    pub direct: u64,
    /// Actors this node handed off to new owners (see `lattice::handoff`).
    pub handed_off: u64,
    /// Bytes of those actors' rows.
    pub handed_off_bytes: u64,
}

/// The node's metric registry and handles to its metrics.
pub(crate) struct Metrics {
    registry: Registry,
    accepted: Counter,
    turns: Family<TurnLabels, Counter>,
    completed: Counter,
    failed: Counter,
    turn_seconds: Family<TypeLabel, Histogram>,
    dead_lettered: Counter,
    dropped: Counter,
    refused: Counter,
    activations: Counter,
    commit_requests: Histogram,
    commit_seconds: Histogram,
    checkpoints: Counter,
    queued: Family<PriorityLabel, Gauge>,
    delayed: Gauge,
    dead_letters: Gauge,
    actors: Gauge,
    active: Gauge,
    types: Gauge,
    disk_free: Gauge,
    disk_free_limit: Gauge,
    disk_alarm: Gauge,
    storage_failing: Gauge,
    io_errors: Gauge,
    replayed_frames: Gauge,
    actors_moved: Counter,
    bytes_moved: Counter,
    direct: Counter,
    handoff_seconds: Histogram,
}

fn turn_buckets() -> Histogram {
    // 50 µs to ~26 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut m = Self {
            accepted: Counter::default(),
            turns: Family::default(),
            completed: Counter::default(),
            failed: Counter::default(),
            turn_seconds: Family::new_with_constructor(turn_buckets),
            dead_lettered: Counter::default(),
            dropped: Counter::default(),
            refused: Counter::default(),
            activations: Counter::default(),
            // 1 to 4096 requests per transaction.
            commit_requests: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
            // 10 µs to ~5 s: the fsync floor of a disk is ~100 µs.
            commit_seconds: Histogram::new(exponential_buckets(0.000_01, 2.0, 20)),
            checkpoints: Counter::default(),
            queued: Family::default(),
            delayed: Gauge::default(),
            dead_letters: Gauge::default(),
            actors: Gauge::default(),
            active: Gauge::default(),
            types: Gauge::default(),
            disk_free: Gauge::default(),
            disk_free_limit: Gauge::default(),
            disk_alarm: Gauge::default(),
            storage_failing: Gauge::default(),
            io_errors: Gauge::default(),
            replayed_frames: Gauge::default(),
            actors_moved: Counter::default(),
            bytes_moved: Counter::default(),
            direct: Counter::default(),
            // 100 µs to ~50 s per batch of actors handed off.
            handoff_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 20)),
            registry: Registry::with_prefix("pigeon"),
        };
        let r = &mut m.registry;
        r.register(
            "messages_accepted",
            "Messages accepted (stored, committed with their turn when sent directly, or queued in memory when transient)",
            m.accepted.clone(),
        );
        r.register("turns", "Turns run, by actor type and outcome", m.turns.clone());
        r.register_with_unit(
            "turn_duration",
            "Time in the guest per committed turn",
            Unit::Seconds,
            m.turn_seconds.clone(),
        );
        r.register("dead_lettered", "Messages moved to the dead-letter queue", m.dead_lettered.clone());
        r.register("transient_dropped", "Transient messages dropped", m.dropped.clone());
        r.register("mailbox_full_refusals", "Persistent sends refused because the mailbox was full", m.refused.clone());
        r.register("activations", "Actor instances created", m.activations.clone());
        r.register(
            "commit_batch_requests",
            "Requests folded into one store transaction (group commit)",
            m.commit_requests.clone(),
        );
        r.register_with_unit(
            "commit_duration",
            "Time to make one store transaction durable: the commit log's append and fsync, or a checkpoint",
            Unit::Seconds,
            m.commit_seconds.clone(),
        );
        r.register(
            "store_checkpoints",
            "Store transactions written to redb durably, which start the commit log again",
            m.checkpoints.clone(),
        );
        r.register("queued_messages", "Messages waiting in mailboxes, by priority", m.queued.clone());
        r.register(
            "delayed_messages",
            "Messages waiting for their time (delays, retries in backoff)",
            m.delayed.clone(),
        );
        r.register("dead_letters", "Messages in the dead-letter queue", m.dead_letters.clone());
        r.register("actors", "Actors that ran at least one turn", m.actors.clone());
        r.register("active_actors", "Actors with a live instance or queued work", m.active.clone());
        r.register("actor_types", "Deployed actor types", m.types.clone());
        r.register_with_unit(
            "disk_free",
            "Free space on the data directory's file system",
            Unit::Bytes,
            m.disk_free.clone(),
        );
        r.register_with_unit(
            "disk_free_limit",
            "Below this free space, persistent work is refused",
            Unit::Bytes,
            m.disk_free_limit.clone(),
        );
        r.register(
            "disk_alarm",
            "1 while free space is below the limit (persistent work refused)",
            m.disk_alarm.clone(),
        );
        r.register(
            "storage_failing",
            "1 while the store cannot write after an I/O error (it is reopening)",
            m.storage_failing.clone(),
        );
        r.register("storage_io_errors", "Store batches failed by I/O errors since start", m.io_errors.clone());
        r.register(
            "store_replayed_frames",
            "Commit-log frames the store replayed when it opened: batches acknowledged after its last checkpoint",
            m.replayed_frames.clone(),
        );
        r.register(
            "messages_direct",
            "Persistent sends handed to their idle actor before they were stored, accepted with its turn's commit",
            m.direct.clone(),
        );
        r.register("handoff_actors_moved", "Actors this node handed off to new owners", m.actors_moved.clone());
        r.register_with_unit(
            "handoff_moved",
            "Bytes of actors (state, messages, keys) this node handed off",
            Unit::Bytes,
            m.bytes_moved.clone(),
        );
        r.register_with_unit(
            "handoff_duration",
            "From reading a batch of moving actors to releasing them, the new owner's commit included",
            Unit::Seconds,
            m.handoff_seconds.clone(),
        );
        m
    }

    /// A batch of `actors` actors, `bytes` in all, was handed off in `took`.
    pub(crate) fn handed_off(&self, actors: u64, bytes: u64, took: std::time::Duration) {
        self.actors_moved.inc_by(actors);
        self.bytes_moved.inc_by(bytes);
        self.handoff_seconds.observe(took.as_secs_f64());
    }

    /// Counts what an event says happened.
    pub(crate) fn observe(&self, event: &NodeEvent) {
        match event {
            NodeEvent::Activated { .. } => {
                self.activations.inc();
            }
            NodeEvent::TurnCompleted { actor, took, .. } => self.turn_completed(actor, *took),
            NodeEvent::TurnFailed { actor, .. } => {
                self.failed.inc();
                self.turns.get_or_create(&TurnLabels { r#type: type_of(actor), outcome: "failed" }).inc();
            }
            NodeEvent::Dropped { .. } => {
                self.dropped.inc();
            }
            NodeEvent::Passivated { .. } | NodeEvent::TurnStarted { .. } | NodeEvent::Enqueued { .. } => {}
        }
    }

    /// Counts a completed turn of `actor` that took `took`.
    pub(crate) fn turn_completed(&self, actor: &str, took: std::time::Duration) {
        let ty = type_of(actor);
        self.completed.inc();
        self.turns.get_or_create(&TurnLabels { r#type: ty.clone(), outcome: "completed" }).inc();
        self.turn_seconds.get_or_create(&TypeLabel { r#type: ty }).observe(took.as_secs_f64());
    }

    /// Counts what a durable batch did.
    pub(crate) fn observe_batch(&self, report: &BatchReport) {
        self.accepted.inc_by(report.accepted);
        self.dead_lettered.inc_by(report.dead_lettered);
        self.commit_requests.observe(report.requests as f64);
        self.commit_seconds.observe(report.commit.as_secs_f64());
        if report.checkpoint {
            self.checkpoints.inc();
        }
    }

    /// A persistent send was accepted with its turn's commit (see `direct`).
    pub(crate) fn accept_direct(&self) {
        self.direct.inc();
    }

    /// A message was queued in memory: a transient one, or a call between
    /// actors (see `delivery`).
    pub(crate) fn accept_transient(&self) {
        self.accepted.inc();
    }

    /// A persistent send was refused: the mailbox was full.
    pub(crate) fn refuse(&self) {
        self.refused.inc();
    }

    pub(crate) fn counters(&self) -> Counters {
        Counters {
            accepted: self.accepted.get(),
            completed: self.completed.get(),
            failed: self.failed.get(),
            dead_lettered: self.dead_lettered.get(),
            dropped: self.dropped.get(),
            refused: self.refused.get(),
            direct: self.direct.get(),
            handed_off: self.actors_moved.get(),
            handed_off_bytes: self.bytes_moved.get(),
        }
    }

    /// The registry in the OpenMetrics text format, with the gauges set
    /// from `totals` and the node's live counts.
    pub(crate) fn render(&self, totals: &StoreTotals, storage: &StorageStatus, active: usize, types: usize) -> String {
        self.disk_free.set(gauge(storage.free_bytes));
        self.disk_free_limit.set(gauge(storage.free_limit_bytes));
        self.disk_alarm.set(i64::from(storage.alarm));
        self.storage_failing.set(i64::from(storage.failure.is_some()));
        self.io_errors.set(gauge(storage.io_errors));
        self.replayed_frames.set(gauge(storage.replayed_frames));
        for (priority, depth) in totals.queued.iter().enumerate() {
            self.queued.get_or_create(&PriorityLabel { priority: priority as u8 }).set(gauge(*depth));
        }
        self.delayed.set(gauge(totals.delayed));
        self.dead_letters.set(gauge(totals.dead_letters));
        self.actors.set(gauge(totals.actors));
        self.active.set(gauge(active as u64));
        self.types.set(gauge(types as u64));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

fn gauge(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn type_of(actor: &str) -> String {
    actor.split('/').next().unwrap_or(actor).to_string()
}
