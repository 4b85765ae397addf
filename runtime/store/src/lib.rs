//! Pigeon's durable store: everything a node must not forget, in one redb
//! file and the commit log in front of it.
//!
//! This crate is the bottom layer of the runtime and knows nothing of wasm.
//! It holds:
//! - the **mailboxes**, ordered by priority then arrival, and the index of
//!   actors with pending work;
//! - **delayed** messages (timers and retry backoff);
//! - each actor's key-value **state**;
//! - the **registry** of deployed actor types and their component bytes;
//! - **dead letters**, stored **replies** and per-actor **stats**.
//!
//! Reads open a redb read transaction and never block writers. All writes on
//! the message path go through the group committer ([`commit`]), which folds
//! concurrent requests into one transaction and makes it durable with one
//! append to the commit log (`log`, the file [`LOG_FILE`] beside redb's). A turn's effects (message
//! removed, state written, messages sent, reply stored) are one request, so
//! they become durable together or not at all.

mod address;
pub mod commit;
mod envelope;
mod error;
pub mod filter;
pub mod handoff;
mod limits;
mod log;
pub mod placement;
mod reads;
mod registry;
mod remote;
mod schema;
mod storage;
mod time;
pub mod topic;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};

use redb::{Database, ReadableDatabase, ReadableTable};
use storage::{DbSlot, DiskWatch};

pub use address::{ActorAddr, MAX_ADDRESS_LEN, validate_type_name};
pub use commit::{
    BatchReport, Clear, CommitListener, CommitStats, Disposition, InboundBatch, InboundOutcome, Published, Selected,
    TopicEffect, TurnCommit, TurnFailure, TurnTicket,
};
pub use envelope::{DEFAULT_PRIORITY, Delivery, Envelope, MAX_PRIORITY, MessageKind, decode_record, encode_record};
pub use error::{AddressError, StoreError};
pub use limits::{LimitError, Limits};
pub use log::LOG_FILE;
pub use placement::Placement;
pub use remote::{Identity, OutboxBatch, validate_node_id};
pub use schema::{
    ActorStats, ActorSummary, ActorType, Arrivals, DeadLetter, DeadReason, Depths, Enqueued, Link, MessageKey,
    StoreOptions, StoreTotals, TypeLimits, WasiGrant,
};
pub use storage::StorageStatus;
pub use time::now_ms;
pub use ulid;

use commit::{Committer, Reply, Request};
use schema::*;

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "pigeon.redb";

/// The store of one node. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<DbSlot>,
    disk: Arc<DiskWatch>,
    committer: Committer,
    listener: commit::ListenerSlot,
    stats: Arc<CommitStats>,
    /// Bumped by every registry write, so cached type data is refreshed.
    types_version: Arc<AtomicU64>,
    identity: remote::Identity,
    dir: PathBuf,
}

impl Store {
    /// Opens (or creates) the store in `dir`, creating the directory if
    /// needed. Opening does not scan messages: it is fast however much is
    /// pending.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(dir, StoreOptions::default())
    }

    /// Opens (or creates) the store in `dir` with `options`.
    pub fn open_with(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)
            .map_err(|source| StoreError::DataDir { path: dir.display().to_string(), source })?;
        let path = dir.join(DB_FILE);
        let db = Database::create(&path).map_err(|source| match source {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse(dir.display().to_string()),
            source => StoreError::Open { path: path.display().to_string(), source: Box::new(source) },
        })?;
        // Before anything else writes: redb is as of its last checkpoint.
        let (log, recovered) = log::CommitLog::recover(&db, &dir, options.checkpoint_interval)?;
        create_tables(&db)?;
        let identity = remote::load_identity(&db, options.node_id.as_deref())?;
        let db = Arc::new(DbSlot::new(db, path));
        let disk = Arc::new(DiskWatch::new(&dir, options.disk_free_limit));
        disk.replayed(recovered.frames);
        let listener: commit::ListenerSlot = Arc::new(OnceLock::new());
        let stats = Arc::new(CommitStats::default());
        let types_version = Arc::new(AtomicU64::new(1));
        let shared = commit::Shared {
            db: db.clone(),
            disk: disk.clone(),
            listener: listener.clone(),
            stats: stats.clone(),
            log,
        };
        let committer = Committer::start(shared, types_version.clone(), options, identity.node_id.clone())?;
        Ok(Self { inner: Arc::new(Inner { db, disk, committer, listener, stats, types_version, identity, dir }) })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The disk under the store: free space, the alarm, the last I/O error
    /// (see [`storage`]).
    pub fn storage_status(&self) -> StorageStatus {
        self.inner.disk.status()
    }

    /// Whether the disk alarm is on (new persistent work is refused), as of
    /// the last look at the free space; cheap, for a fast path to check.
    pub fn disk_alarm(&self) -> bool {
        self.inner.disk.alarm()
    }

    /// Registers the one listener told about newly ready actors and timers.
    /// Returns false if one was already set.
    pub fn set_listener(&self, listener: Arc<dyn CommitListener>) -> bool {
        self.inner.listener.set(listener).is_ok()
    }

    /// Group-commit counters.
    pub fn commit_stats(&self) -> &CommitStats {
        &self.inner.stats
    }

    /// Stores a persistent message; returns once it is durable. Refuses a
    /// message to an unknown type or to a full mailbox; acknowledges a
    /// duplicate (same dedup key within the window) without storing it.
    pub async fn enqueue(&self, envelope: Envelope) -> Result<Enqueued, StoreError> {
        match self.submit(Request::Enqueue(envelope)).await? {
            Reply::Duplicate => Ok(Enqueued::Duplicate),
            _ => Ok(Enqueued::Stored),
        }
    }

    /// Commits a turn's effects atomically; returns once durable. A turn
    /// that [writes nothing](TurnCommit::writes_nothing) (a transient
    /// message, no durable effect) returns at once: waiting for an fsync
    /// of nothing would put the disk's latency on every transient call.
    /// Such turns are not counted in the actor's stored `processed` figure
    /// (the node's metrics count every turn).
    pub async fn commit_turn(&self, commit: TurnCommit) -> Result<(), StoreError> {
        self.submit_turn(commit).outcome().await
    }

    /// Queues a turn's effects for commit and returns at once: the ticket
    /// tells when they are durable. Commits are applied in submission
    /// order, so anything submitted later that builds on these effects is
    /// never durable without them (see [`commit::TurnTicket`]).
    pub fn submit_turn(&self, commit: TurnCommit) -> TurnTicket {
        // Read before queueing: a failure of this commit moves the epoch
        // past it.
        let epoch = self.commit_epoch();
        // A turn built on commits not yet durable goes through the
        // committer even with nothing to write: its outcome must wait for
        // theirs.
        if commit.writes_nothing() && commit.depends_on.is_none() {
            return TurnTicket::known(epoch, Ok(()));
        }
        match self.inner.committer.queue(Request::Commit(commit)) {
            Ok(wait) => TurnTicket::queued(epoch, wait),
            Err(e) => TurnTicket::known(epoch, Err(e)),
        }
    }

    /// How many turn commits were refused or failed so far (with their
    /// batches): a turn commit that [depends on](TurnCommit::depends_on) an
    /// earlier epoch is refused.
    pub fn commit_epoch(&self) -> u64 {
        self.inner.committer.epoch()
    }

    /// Where a message arriving now stands among stored ones: every
    /// message stored before this call has a smaller [`MessageKey::seq`],
    /// every one stored after it at least this one. What the node holds in
    /// memory (transient messages) keeps it, so that at equal priority an
    /// actor takes its messages in arrival order whichever way they came.
    pub fn arrival_mark(&self) -> u64 {
        self.inner.committer.next_seq()
    }

    /// Records a failed turn (retry later or dead-letter); returns once durable.
    pub async fn fail_turn(&self, failure: TurnFailure) -> Result<(), StoreError> {
        self.submit(Request::Fail(failure)).await.map(drop)
    }

    /// Moves delayed messages due by `now_ms` into their mailboxes; returns
    /// how many moved (at most [`commit::MAX_PROMOTE`] per call).
    pub async fn promote_due(&self, now_ms: u64) -> Result<usize, StoreError> {
        self.moved(Request::Promote { now_ms }).await
    }

    /// Puts dead letters back into their mailboxes as fresh deliveries (all
    /// of them when `ids` is `None`). Ids that name no dead letter (already
    /// replayed or purged) are skipped and listed in the answer.
    pub async fn replay_dead_letters(&self, ids: Option<Vec<u64>>) -> Result<Selected, StoreError> {
        self.selected(ids, Request::Replay).await
    }

    /// Deletes dead letters (all of them when `ids` is `None`); unknown ids
    /// are skipped and listed, as for a replay.
    pub async fn purge_dead_letters(&self, ids: Option<Vec<u64>>) -> Result<Selected, StoreError> {
        self.selected(ids, Request::Purge).await
    }

    async fn selected(
        &self,
        ids: Option<Vec<u64>>,
        request: fn(Option<Vec<u64>>) -> Request,
    ) -> Result<Selected, StoreError> {
        let asked = ids.clone();
        let done = match self.submit(request(ids)).await? {
            Reply::DeadLetters(done) => done,
            _ => Vec::new(),
        };
        let mut missing: Vec<u64> = asked.unwrap_or_default().into_iter().filter(|id| !done.contains(id)).collect();
        missing.sort_unstable();
        missing.dedup();
        Ok(Selected { done, missing })
    }

    /// Subscribes `subscriber` (an actor) to `topic` with `filter` (empty:
    /// every message). The filter must parse. Replaces an earlier filter.
    pub async fn subscribe(&self, topic: &str, subscriber: &str, filter: &str) -> Result<(), StoreError> {
        topic::validate_subscription(topic, filter)?;
        let request =
            Request::Subscribe { topic: topic.into(), subscriber: subscriber.into(), filter: filter.trim().into() };
        self.submit(request).await.map(drop)
    }

    /// Ends a subscription; returns whether there was one.
    pub async fn unsubscribe(&self, topic: &str, subscriber: &str) -> Result<bool, StoreError> {
        Ok(self.moved(Request::Unsubscribe { topic: topic.into(), subscriber: subscriber.into() }).await? == 1)
    }

    /// Copies `envelope` into the mailbox of every subscriber of `topic`
    /// on this node whose filter matches its headers and relays it to every
    /// node this one has met, in one transaction; returns, once durable,
    /// what it reached.
    pub async fn publish(&self, topic: &str, envelope: Envelope) -> Result<Published, StoreError> {
        topic::validate_topic(topic)?;
        match self.submit(Request::Publish { topic: topic.into(), envelope }).await? {
            Reply::Published(published) => Ok(published),
            _ => Ok(Published::default()),
        }
    }

    /// Subscriptions as `(topic, subscriber, filter)`, by topic.
    pub fn subscriptions(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let table = self.read()?.open_table(SUBSCRIPTIONS)?;
        table
            .iter()?
            .map(|entry| {
                let (k, v) = entry?;
                let (topic, subscriber) = k.value();
                Ok((topic.to_string(), subscriber.to_string(), v.value().to_string()))
            })
            .collect()
    }

    /// Forgets dedup keys past their window and call replies older than the
    /// retention window (a bounded amount per call; the node calls it
    /// periodically). Returns how many entries went.
    pub async fn sweep(&self, now_ms: u64) -> Result<usize, StoreError> {
        self.moved(Request::Sweep { now_ms }).await
    }

    /// Writes everything committed so far to redb's file durably (a
    /// checkpoint of the commit log), so that the next open has nothing to
    /// replay. For a clean stop; commits before it are durable already.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        self.submit(Request::Checkpoint).await.map(|_| ())
    }

    /// Counts one crash of the node for each message in `ids` (the turns in
    /// flight when it died), durably; returns every message's crash count.
    pub async fn record_crashes(&self, ids: Vec<ulid::Ulid>) -> Result<Vec<(ulid::Ulid, u64)>, StoreError> {
        if !ids.is_empty() {
            self.submit(Request::Crashed(ids)).await?;
        }
        self.crash_counts()
    }

    /// Messages the node died while handling, with how many times.
    pub fn crash_counts(&self) -> Result<Vec<(ulid::Ulid, u64)>, StoreError> {
        let table = self.read()?.open_table(CRASHES)?;
        table
            .iter()?
            .map(|entry| {
                let (id, value) = entry?;
                Ok((ulid::Ulid(id.value()), value.value().0))
            })
            .collect()
    }

    pub(crate) async fn moved(&self, request: Request) -> Result<usize, StoreError> {
        match self.submit(request).await? {
            Reply::Moved(n) => Ok(n),
            Reply::DeadLetters(ids) => Ok(ids.len()),
            Reply::Published(p) => Ok(p.copies),
            Reply::Done | Reply::Duplicate | Reply::Inbound(_) | Reply::Handoff(_) => Ok(0),
        }
    }

    pub(crate) async fn submit(&self, request: Request) -> Result<Reply, StoreError> {
        self.inner.committer.submit(request).await
    }

    pub(crate) fn read(&self) -> Result<redb::ReadTransaction, StoreError> {
        Ok(self.inner.db.get()?.begin_read()?)
    }

    /// Empties `actor`'s mailbox (with its delayed messages) or deletes its
    /// state, in one transaction; returns how many entries went. The node
    /// runs this inside the actor's task, between turns (see `pigeon-node`).
    pub async fn clear(&self, actor: &str, what: Clear) -> Result<usize, StoreError> {
        self.moved(Request::Clear { actor: actor.to_string(), what }).await
    }

    /// Cancels the delayed message `id` (a timer, a delayed send, a retry in
    /// backoff): it is never delivered. Returns whether it was pending.
    pub async fn cancel_delayed(&self, id: ulid::Ulid) -> Result<bool, StoreError> {
        Ok(self.moved(Request::CancelDelayed(id)).await? == 1)
    }
}
