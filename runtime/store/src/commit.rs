//! Group commit: many writers, one fsync.
//!
//! Every write on the message path (an enqueue, a turn's commit or failure,
//! the promotion of due delayed messages) is a [`Request`] sent to one
//! committer thread. The thread takes the first request, drains whatever else
//! is already waiting (up to [`MAX_BATCH`]), applies them all to ONE redb
//! write transaction and makes it durable (`batch`): its writes appended
//! to the commit log as one frame and synced, then redb committed in
//! memory — or, every 100 ms, durably: a checkpoint (see the store's `log`
//! module). Only then is each waiter released. While one batch is being
//! synced the next one queues up, so under load the cost of a sync is
//! shared by every request in the batch — the classic group commit of
//! databases, and what lets a node approach the disk's limit instead of
//! one fsync per message.
//!
//! Each request is applied atomically within the batch: it validates
//! everything it needs (type known, mailbox not full, message still there)
//! before it writes anything, so a refused request leaves no trace and does
//! not affect its neighbours. A storage failure, on the other hand, aborts the
//! whole batch and every waiter gets the error: nothing was acknowledged.
//!
//! Requests are applied in the order they were submitted, which lets a turn
//! build on the effects of turns whose commits are still on their way to
//! disk (see [`TurnTicket`]): its commit comes after theirs, so it can never be
//! durable without them. What remains is a commit that is refused or fails:
//! each one advances the *commit epoch*, and a turn commit that names an
//! earlier epoch in [`TurnCommit::depends_on`] is refused in its turn.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use redb::ReadableTable;
use tokio::sync::oneshot;

mod apply;
mod batch;
mod handoff;
mod logged;
mod outcome;
mod recovery;
mod remote;
mod request;
mod tables;
mod ticket;

pub use outcome::{Disposition, TopicEffect, TurnCommit, TurnFailure};
pub use remote::{InboundBatch, InboundOutcome};
pub use request::{Clear, Published, Selected};
pub(crate) use request::{Reply, Request};
pub use ticket::TurnTicket;

use crate::envelope::Envelope;
use crate::error::StoreError;
use crate::log::{CommitLog, FrameBuf};
use crate::schema::*;
use crate::storage::{DbSlot, DiskWatch};

/// Most requests folded into one transaction.
pub const MAX_BATCH: usize = 4096;

/// Longest a batch waits for more requests (see `Worker::gather`).
const MAX_GATHER: Duration = Duration::from_millis(1);
/// Polling interval while gathering.
const GATHER_POLL: Duration = Duration::from_micros(20);

/// Sequence numbers are leased in blocks, so most commits need not write
/// the `meta` table; a restart continues after the last lease (a gap is
/// harmless: only the order matters).
const SEQ_LEASE: u64 = 100_000;

/// Most entries of each kind one retention sweep looks at.
pub const MAX_SWEEP: usize = 10_000;

/// Most delayed messages moved into mailboxes by one promotion.
pub const MAX_PROMOTE: usize = 10_000;

/// Told what a batch changed once it is durable; the scheduler listens.
pub trait CommitListener: Send + Sync {
    /// These actors have new messages in their mailboxes, of these
    /// priorities.
    fn on_ready(&self, actors: &[(String, Arrivals)]);
    /// A delayed message is due at this time.
    fn on_delayed(&self, due_ms: u64);
    /// These peers have new messages in their outboxes.
    fn on_outbox(&self, _peers: &[String]) {}
    /// A batch is durable: what it held and what its commit cost (for
    /// metrics; called for every successful batch).
    fn on_batch(&self, _report: &BatchReport) {}
}

/// What one durable batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Requests folded into the transaction.
    pub requests: usize,
    /// Messages accepted into mailboxes (or the delayed queue): sends,
    /// messages sent by turns, copies of published messages.
    pub accepted: u64,
    /// Messages moved to the dead-letter queue.
    pub dead_lettered: u64,
    /// How long making it durable took (the commit log's append and
    /// fsync, or a checkpoint).
    pub commit: Duration,
    /// It was a checkpoint: committed to redb durably (see the store's
    /// commit log).
    pub checkpoint: bool,
}

/// Counters of the committer, for benchmarks and metrics.
#[derive(Debug, Default)]
pub struct CommitStats {
    /// Transactions committed.
    pub batches: AtomicU64,
    /// Requests folded into them.
    pub requests: AtomicU64,
    /// Time spent making batches durable (the log's append and sync, or
    /// a checkpoint's redb commit), in nanoseconds.
    pub commit_nanos: AtomicU64,
    /// Batches committed to redb durably (checkpoints of the commit log).
    pub checkpoints: AtomicU64,
}

struct Job {
    request: Request,
    done: oneshot::Sender<Result<Reply, StoreError>>,
}

/// Handle to the committer thread.
pub(crate) struct Committer {
    tx: mpsc::Sender<Job>,
    /// Refused turn commits and failed batches so far (see the module doc).
    epoch: Arc<AtomicU64>,
    /// The sequence number the committer gives the next stored message.
    next_seq: Arc<AtomicU64>,
}

pub(crate) type ListenerSlot = Arc<OnceLock<Arc<dyn CommitListener>>>;

/// What the committer shares with the rest of the store.
pub(crate) struct Shared {
    pub(crate) db: Arc<DbSlot>,
    pub(crate) disk: Arc<DiskWatch>,
    pub(crate) listener: ListenerSlot,
    pub(crate) stats: Arc<CommitStats>,
    /// The commit log, recovered when the store opened.
    pub(crate) log: CommitLog,
}

impl Committer {
    pub(crate) fn start(
        shared: Shared,
        types_version: Arc<AtomicU64>,
        options: StoreOptions,
        me: String,
    ) -> Result<Self, StoreError> {
        let Shared { db, disk, listener, stats, log } = shared;
        let next_seq = {
            let txn = db.get()?.begin_write()?;
            let seq = txn.open_table(META)?.get(NEXT_SEQ)?.map(|v| v.value()).unwrap_or(1);
            txn.abort()?;
            seq
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let epoch = Arc::new(AtomicU64::new(0));
        let next_seq = Arc::new(AtomicU64::new(next_seq));
        let mut worker = Worker {
            epoch: epoch.clone(),
            db,
            disk,
            listener,
            stats,
            leased_until: next_seq.load(Ordering::Relaxed),
            next_seq: next_seq.clone(),
            last_batch: 0,
            last_commit: Duration::ZERO,
            last_checkpoint: false,
            bounds: HashMap::new(),
            placements: HashMap::new(),
            me,
            types_seen: 0,
            types_version,
            options,
            dedup_cursor: None,
            reply_cursor: None,
            log,
            frame: FrameBuf::default(),
        };
        std::thread::Builder::new()
            .name("pigeon-commit".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| StoreError::Storage(format!("cannot start the committer thread: {e}")))?;
        Ok(Self { tx, epoch, next_seq })
    }

    pub(crate) async fn submit(&self, request: Request) -> Result<Reply, StoreError> {
        self.queue(request)?.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues `request` behind everything submitted before it; the receiver
    /// gets its outcome once its batch is durable (or failed).
    pub(crate) fn queue(&self, request: Request) -> Result<oneshot::Receiver<Result<Reply, StoreError>>, StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx.send(Job { request, done }).map_err(|_| StoreError::Closed)?;
        Ok(wait)
    }

    /// The current commit epoch.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The sequence number the next stored message will get: every message
    /// stored before this call has a smaller one.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq.load(Ordering::Acquire)
    }
}

/// What a batch changed, announced once it is durable.
#[derive(Default)]
struct Effects {
    ready: BTreeMap<String, Arrivals>,
    earliest_due: Option<u64>,
    accepted: u64,
    dead_lettered: u64,
    /// Peers with new messages in their outboxes.
    forward: std::collections::BTreeSet<String>,
}

impl Effects {
    /// `env` is in its mailbox now.
    fn arrived(&mut self, env: &Envelope) {
        let arrivals = Arrivals::of(env.priority);
        match self.ready.get_mut(env.to.as_str()) {
            Some(known) => *known = known.with(arrivals),
            None => {
                self.ready.insert(env.to.clone(), arrivals);
            }
        }
    }

    fn forward(&mut self, peer: &str) {
        if !self.forward.contains(peer) {
            self.forward.insert(peer.to_string());
        }
    }

    fn delayed(&mut self, due_ms: u64) {
        self.earliest_due = Some(self.earliest_due.map_or(due_ms, |d| d.min(due_ms)));
    }
}

struct Worker {
    db: Arc<DbSlot>,
    disk: Arc<DiskWatch>,
    /// Advanced by every refused turn commit and failed batch.
    epoch: Arc<AtomicU64>,
    listener: ListenerSlot,
    stats: Arc<CommitStats>,
    /// Shared with the store's readers (see [`Committer::next_seq`]).
    next_seq: Arc<AtomicU64>,
    /// Sequence numbers below this are covered by the persisted lease.
    leased_until: u64,
    /// Requests in the previous batch.
    last_batch: usize,
    /// Duration of the previous commit.
    last_commit: Duration,
    /// The previous commit was a checkpoint.
    last_checkpoint: bool,
    /// Mailbox bound per type name, valid while `types_seen` equals
    /// `types_version` (bumped by every registry write).
    bounds: HashMap<String, Option<u64>>,
    /// Placement per type name, cached like `bounds`.
    placements: HashMap<String, crate::placement::Placement>,
    /// This node's id: the owner that needs no outbox.
    me: String,
    types_seen: u64,
    types_version: Arc<AtomicU64>,
    options: StoreOptions,
    /// Where the next sweep resumes.
    dedup_cursor: Option<(String, String)>,
    reply_cursor: Option<u128>,
    /// What makes a batch durable (see the store's `log` module).
    log: CommitLog,
    /// The frame of the batch being applied, kept for its allocation.
    frame: FrameBuf,
}

/// A stored reply: `[time: u64 LE][0 | 1 reply bytes]`.
pub(crate) fn encode_reply(at_ms: u64, reply: Option<&[u8]>) -> Vec<u8> {
    let mut out = at_ms.to_le_bytes().to_vec();
    match reply {
        Some(bytes) => {
            out.push(1);
            out.extend_from_slice(bytes);
        }
        None => out.push(0),
    }
    out
}

/// A call's failure, stored as its outcome when the call was dead-lettered:
/// the same call made again (by the caller's retried turn) fails at once
/// with `error` instead of running the callee again.
pub(crate) fn encode_failed_reply(at_ms: u64, error: &str) -> Vec<u8> {
    let mut out = at_ms.to_le_bytes().to_vec();
    out.push(2);
    out.extend_from_slice(error.as_bytes());
    out
}

/// The outcome in a stored reply: the handler's (possibly absent) reply, or
/// the error the call was dead-lettered with.
pub(crate) fn decode_reply(stored: &[u8]) -> Result<Option<Vec<u8>>, String> {
    match stored.get(8..).and_then(<[u8]>::split_first) {
        Some((1, reply)) => Ok(Some(reply.to_vec())),
        Some((2, error)) => Err(String::from_utf8_lossy(error).into_owned()),
        _ => Ok(None),
    }
}

fn decode_reply_time(stored: &[u8]) -> u64 {
    stored.get(..8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes)
}

fn drain(rx: &mpsc::Receiver<Job>, jobs: &mut Vec<Job>) {
    while jobs.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
}

impl Worker {
    fn run(&mut self, rx: mpsc::Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut jobs = vec![first];
            drain(&rx, &mut jobs);
            self.gather(&rx, &mut jobs);
            self.last_batch = jobs.len();
            self.commit_batch(jobs, &rx);
        }
        // Closing: one last checkpoint, so the file alone is up to date.
        if let Err(e) = self.checkpoint_now() {
            tracing::warn!("cannot checkpoint the commit log at close ({e}); the next open replays it");
        }
    }

    /// Commit delay. The writers a batch released come back a few
    /// microseconds apart; starting the next transaction with the first of
    /// them makes batches alternate between one request and all the others.
    /// When the last batch showed concurrency, wait for as many requests as
    /// it had — at most half a commit's duration, so a lull costs little.
    fn gather(&self, rx: &mpsc::Receiver<Job>, jobs: &mut Vec<Job>) {
        if self.last_batch <= 1 {
            return;
        }
        // Poll with short sleeps rather than block in `recv`: a blocked
        // receiver is woken by every single send, and on a small machine
        // those wake-ups steal the cores the writers need to come back.
        let deadline = Instant::now() + (self.last_commit / 2).min(MAX_GATHER);
        while jobs.len() < self.last_batch.min(MAX_BATCH) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            std::thread::sleep((deadline - now).min(GATHER_POLL));
            drain(rx, jobs);
        }
    }

    fn commit_batch(&mut self, jobs: Vec<Job>, rx: &mpsc::Receiver<Job>) {
        let mut effects = Effects::default();
        self.disk.refresh_soon();
        let results = match self.apply_all(&jobs, &mut effects) {
            Ok(results) => results,
            Err(e) => return self.batch_failed(jobs, &e, rx),
        };
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        let jobs_len = jobs.len();
        self.stats.requests.fetch_add(jobs_len as u64, Ordering::Relaxed);
        for (job, result) in jobs.into_iter().zip(results) {
            let _ = job.done.send(result);
        }
        if let Some(listener) = self.listener.get() {
            // The listener is the node's code: a panic there must not end
            // this thread, which every durable write depends on.
            let told = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let report = BatchReport {
                    requests: jobs_len,
                    accepted: effects.accepted,
                    dead_lettered: effects.dead_lettered,
                    commit: self.last_commit,
                    checkpoint: self.last_checkpoint,
                };
                tell(listener.as_ref(), &report, effects)
            }));
            if told.is_err() {
                tracing::error!("the commit listener panicked; the committer carries on");
            }
        }
    }

    /// A turn commit did not happen: whatever was built on it must not
    /// happen either.
    fn lose_dependencies(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    fn take_seq(&mut self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::AcqRel)
    }
}

/// Tells the listener what a durable batch did.
fn tell(listener: &dyn CommitListener, report: &BatchReport, effects: Effects) {
    listener.on_batch(report);
    if !effects.ready.is_empty() {
        let ready: Vec<(String, Arrivals)> = effects.ready.into_iter().collect();
        listener.on_ready(&ready);
    }
    if let Some(due) = effects.earliest_due {
        listener.on_delayed(due);
    }
    if !effects.forward.is_empty() {
        let peers: Vec<String> = effects.forward.into_iter().collect();
        listener.on_outbox(&peers);
    }
}
