//! Group commit: many writers, one fsync.
//!
//! Every write on the message path (an enqueue, a turn's commit or failure,
//! the promotion of due delayed messages) is a [`Request`] sent to one
//! committer thread. The thread takes the first request, drains whatever else
//! is already waiting (up to [`MAX_BATCH`]), applies them all to ONE redb
//! write transaction and commits it durably. Only then is each waiter
//! released. While one batch is being fsynced the next one queues up, so under
//! load the cost of a sync is shared by every request in the batch — the
//! classic group commit of databases, and what lets a node approach the
//! disk's limit instead of one fsync per message.
//!
//! Each request is applied atomically within the batch: it validates
//! everything it needs (type known, mailbox not full, message still there)
//! before it writes anything, so a refused request leaves no trace and does
//! not affect its neighbours. A storage failure, on the other hand, aborts the
//! whole batch and every waiter gets the error: nothing was acknowledged.

use std::collections::BTreeSet;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use redb::{Database, ReadableTable, Table, WriteTransaction};
use tokio::sync::oneshot;

use crate::envelope::{Envelope, MAX_PRIORITY, decode_record, encode_record};
use crate::error::StoreError;
use crate::schema::*;
use crate::time::now_ms;

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

/// The effects of one successful turn, committed atomically.
#[derive(Debug, Default)]
pub struct TurnCommit {
    /// The actor whose turn it was.
    pub actor: String,
    /// The persistent message handled (none for a transient one).
    pub taken: Option<MessageKey>,
    /// The handled message's id, and whether a caller wants its reply stored.
    pub message_id: Option<(ulid::Ulid, bool)>,
    /// State writes in order: `Some` sets, `None` deletes.
    pub state_writes: Vec<(String, Option<Vec<u8>>)>,
    /// Persistent messages sent during the turn.
    pub sends: Vec<Envelope>,
    /// The handler's reply, if any.
    pub reply: Option<Vec<u8>>,
    /// Subscriptions and publications made during the turn, in order.
    pub topics: Vec<TopicEffect>,
    /// Delayed messages to cancel (ignored unless sent by or to this actor).
    pub cancels: Vec<ulid::Ulid>,
}

/// A publish/subscribe effect of a turn, applied when it commits.
#[derive(Debug, Clone, PartialEq)]
pub enum TopicEffect {
    /// The turn's actor subscribes to `topic` with `filter` (validated).
    Subscribe { topic: String, filter: String },
    /// The turn's actor leaves `topic`.
    Unsubscribe { topic: String },
    /// A copy of `envelope` to every matching subscriber of `topic`.
    Publish { topic: String, envelope: Envelope },
}

/// A failed turn: the message is retried later or dead-lettered.
#[derive(Debug)]
pub struct TurnFailure {
    pub actor: String,
    /// The persistent message whose turn failed (none for a transient one).
    pub taken: Option<MessageKey>,
    /// The message with `failures` and `last_error` already updated.
    pub envelope: Envelope,
    pub disposition: Disposition,
}

/// What becomes of a message whose turn failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Back into the mailbox, at its original place, at this time.
    RetryAt { due_ms: u64 },
    /// Into the dead-letter queue.
    DeadLetter { reason: DeadReason },
}

/// Told what a batch changed once it is durable; the scheduler listens.
pub trait CommitListener: Send + Sync {
    /// These actors have new messages in their mailboxes.
    fn on_ready(&self, actors: &[String]);
    /// A delayed message is due at this time.
    fn on_delayed(&self, due_ms: u64);
}

/// Counters of the committer, for benchmarks and metrics.
#[derive(Debug, Default)]
pub struct CommitStats {
    /// Transactions committed.
    pub batches: AtomicU64,
    /// Requests folded into them.
    pub requests: AtomicU64,
    /// Time spent in `commit()` (the fsync), in nanoseconds.
    pub commit_nanos: AtomicU64,
}

pub(crate) enum Request {
    Enqueue(Envelope),
    Commit(TurnCommit),
    Fail(TurnFailure),
    Promote {
        now_ms: u64,
    },
    /// Dead letters back into their mailboxes (all when `None`).
    Replay(Option<Vec<u64>>),
    /// Forget dedup keys and call replies older than the retention window.
    Sweep {
        now_ms: u64,
    },
    /// Dead letters deleted (all when `None`).
    Purge(Option<Vec<u64>>),
    /// `subscriber` receives copies of `topic`'s messages that pass `filter`.
    Subscribe {
        topic: String,
        subscriber: String,
        filter: String,
    },
    Unsubscribe {
        topic: String,
        subscriber: String,
    },
    /// A copy of `envelope` to every subscriber of `topic` whose filter matches.
    Publish {
        topic: String,
        envelope: Envelope,
    },
}

/// What a request produced.
pub(crate) enum Reply {
    Done,
    /// An enqueue whose dedup key was already seen.
    Duplicate,
    /// How many messages a promotion, replay or purge moved.
    Moved(usize),
}

struct Job {
    request: Request,
    done: oneshot::Sender<Result<Reply, StoreError>>,
}

/// Handle to the committer thread.
pub(crate) struct Committer {
    tx: mpsc::Sender<Job>,
}

pub(crate) type ListenerSlot = Arc<OnceLock<Arc<dyn CommitListener>>>;

impl Committer {
    pub(crate) fn start(
        db: Arc<Database>,
        listener: ListenerSlot,
        stats: Arc<CommitStats>,
        types_version: Arc<AtomicU64>,
        options: StoreOptions,
    ) -> Result<Self, StoreError> {
        let next_seq = {
            let txn = db.begin_write()?;
            let seq = txn.open_table(META)?.get(NEXT_SEQ)?.map(|v| v.value()).unwrap_or(1);
            txn.abort()?;
            seq
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let mut worker = Worker {
            db,
            listener,
            stats,
            next_seq,
            leased_until: next_seq,
            last_batch: 0,
            last_commit: Duration::ZERO,
            bounds: HashMap::new(),
            types_seen: 0,
            types_version,
            options,
            dedup_cursor: None,
            reply_cursor: None,
        };
        std::thread::Builder::new()
            .name("pigeon-commit".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| StoreError::Storage(format!("cannot start the committer thread: {e}")))?;
        Ok(Self { tx })
    }

    pub(crate) async fn submit(&self, request: Request) -> Result<Reply, StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx.send(Job { request, done }).map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)?
    }
}

/// What a batch changed, announced once it is durable.
#[derive(Default)]
struct Effects {
    ready: BTreeSet<String>,
    earliest_due: Option<u64>,
}

impl Effects {
    fn delayed(&mut self, due_ms: u64) {
        self.earliest_due = Some(self.earliest_due.map_or(due_ms, |d| d.min(due_ms)));
    }
}

struct Worker {
    db: Arc<Database>,
    listener: ListenerSlot,
    stats: Arc<CommitStats>,
    next_seq: u64,
    /// Sequence numbers below this are covered by the persisted lease.
    leased_until: u64,
    /// Requests in the previous batch.
    last_batch: usize,
    /// Duration of the previous commit.
    last_commit: Duration,
    /// Mailbox bound per type name, valid while `types_seen` equals
    /// `types_version` (bumped by every registry write).
    bounds: HashMap<String, Option<u64>>,
    types_seen: u64,
    types_version: Arc<AtomicU64>,
    options: StoreOptions,
    /// Where the next sweep resumes.
    dedup_cursor: Option<(String, String)>,
    reply_cursor: Option<u128>,
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

/// The reply in a stored reply (`Some` of the handler's possibly absent reply).
pub(crate) fn decode_reply(stored: &[u8]) -> Option<Vec<u8>> {
    match stored.get(8..).and_then(<[u8]>::split_first) {
        Some((1, reply)) => Some(reply.to_vec()),
        _ => None,
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
            self.commit_batch(jobs);
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

    fn commit_batch(&mut self, jobs: Vec<Job>) {
        let mut effects = Effects::default();
        let (results, outcome) = match self.apply_all(&jobs, &mut effects) {
            Ok(ok) => ok,
            Err(e) => {
                let msg = e.to_string();
                for job in jobs {
                    let _ = job.done.send(Err(StoreError::Storage(msg.clone())));
                }
                return;
            }
        };
        if let Err(e) = outcome {
            // The lease may not be durable: take a new one next time.
            self.leased_until = self.next_seq;
            let msg = e.to_string();
            for job in jobs {
                let _ = job.done.send(Err(StoreError::Storage(msg.clone())));
            }
            return;
        }
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats.requests.fetch_add(jobs.len() as u64, Ordering::Relaxed);
        for (job, result) in jobs.into_iter().zip(results) {
            let _ = job.done.send(result);
        }
        if let Some(listener) = self.listener.get() {
            if !effects.ready.is_empty() {
                let ready: Vec<String> = effects.ready.into_iter().collect();
                listener.on_ready(&ready);
            }
            if let Some(due) = effects.earliest_due {
                listener.on_delayed(due);
            }
        }
    }

    /// Applies every job to one transaction and commits it. The outer error
    /// is a failure before commit; the inner one a failed commit.
    #[allow(clippy::type_complexity)]
    fn apply_all(
        &mut self,
        jobs: &[Job],
        effects: &mut Effects,
    ) -> Result<(Vec<Result<Reply, StoreError>>, Result<(), StoreError>), StoreError> {
        let txn = self.db.begin_write()?;
        let mut results = Vec::with_capacity(jobs.len());
        {
            let mut t = Tables::open(&txn)?;
            for job in jobs {
                let result = match &job.request {
                    Request::Enqueue(env) => self.enqueue(&mut t, env, effects),
                    Request::Commit(c) => self.commit_turn(&mut t, c, effects),
                    Request::Fail(f) => self.fail_turn(&mut t, f, effects),
                    Request::Promote { now_ms } => self.promote(&mut t, *now_ms, effects),
                    Request::Replay(ids) => self.replay(&mut t, ids.as_deref(), effects),
                    Request::Sweep { now_ms } => self.sweep(&mut t, *now_ms),
                    Request::Purge(ids) => self.purge(&mut t, ids.as_deref()),
                    Request::Subscribe { topic, subscriber, filter } => {
                        t.subscriptions.insert((topic.as_str(), subscriber.as_str()), filter.as_str())?;
                        Ok(Reply::Done)
                    }
                    Request::Unsubscribe { topic, subscriber } => {
                        let existed = t.subscriptions.remove((topic.as_str(), subscriber.as_str()))?.is_some();
                        Ok(Reply::Moved(usize::from(existed)))
                    }
                    Request::Publish { topic, envelope } => self.publish(&mut t, topic, envelope, effects),
                };
                // A storage error poisons the transaction: give up on the batch.
                if let Err(StoreError::Storage(e)) = &result {
                    return Err(StoreError::Storage(e.clone()));
                }
                results.push(result);
            }
            if self.next_seq >= self.leased_until {
                self.leased_until = self.next_seq + SEQ_LEASE;
                t.meta.insert(NEXT_SEQ, self.leased_until)?;
            }
        }
        let started = Instant::now();
        let outcome = txn.commit().map_err(StoreError::from);
        self.last_commit = started.elapsed();
        self.stats.commit_nanos.fetch_add(self.last_commit.as_nanos() as u64, Ordering::Relaxed);
        Ok((results, outcome))
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    fn enqueue(&mut self, t: &mut Tables<'_>, env: &Envelope, fx: &mut Effects) -> Result<Reply, StoreError> {
        if self.is_duplicate(t, env)? {
            return Ok(Reply::Duplicate);
        }
        let ty = env.to.split('/').next().unwrap_or_default();
        let Some(bound) = self.mailbox_bound(t, ty)? else {
            return Err(StoreError::UnknownType(ty.to_string()));
        };
        let depths = t.pending.get(env.to.as_str())?.map(|v| v.value());
        let depth: u64 = depths.unwrap_or_default().iter().sum();
        if depth >= bound {
            return Err(StoreError::MailboxFull { actor: env.to.clone(), bound });
        }
        self.place(t, env, fx)?;
        Ok(Reply::Done)
    }

    /// The mailbox bound of type `ty` (none: not deployed), cached.
    fn mailbox_bound(&mut self, t: &Tables<'_>, ty: &str) -> Result<Option<u64>, StoreError> {
        let version = self.types_version.load(Ordering::Acquire);
        if version != self.types_seen {
            self.bounds.clear();
            self.types_seen = version;
        }
        if let Some(bound) = self.bounds.get(ty) {
            return Ok(*bound);
        }
        let bound = match t.types.get(ty)? {
            Some(record) => Some(decode_record::<ActorType>(record.value(), "types")?.limits.mailbox_bound),
            None => None,
        };
        self.bounds.insert(ty.to_string(), bound);
        Ok(bound)
    }

    /// Whether `env`'s dedup key was seen for its actor within the window.
    fn is_duplicate(&self, t: &Tables<'_>, env: &Envelope) -> Result<bool, StoreError> {
        let Some(key) = env.dedup_key.as_deref() else { return Ok(false) };
        let until = t.dedup.get((env.to.as_str(), key))?.map(|v| v.value());
        Ok(until.is_some_and(|until| until > now_ms()))
    }

    /// Puts a message into its mailbox, or into `delayed` if not yet due,
    /// remembering its dedup key.
    fn place(&mut self, t: &mut Tables<'_>, env: &Envelope, fx: &mut Effects) -> Result<(), StoreError> {
        if let Some(key) = env.dedup_key.as_deref() {
            let until = now_ms().saturating_add(self.options.dedup_retention_ms);
            t.dedup.insert((env.to.as_str(), key), until)?;
        }
        let seq = self.take_seq();
        match env.not_before_ms {
            Some(due) if due > now_ms() => {
                t.delayed.insert((due, seq), env.encode().as_slice())?;
                t.timers.insert(env.id.0, (due, seq))?;
                fx.delayed(due);
            }
            _ => {
                t.put_in_mailbox(env, seq)?;
                fx.ready.insert(env.to.clone());
            }
        }
        Ok(())
    }

    fn commit_turn(&mut self, t: &mut Tables<'_>, c: &TurnCommit, fx: &mut Effects) -> Result<Reply, StoreError> {
        if let Some(key) = c.taken {
            t.take_from_mailbox(&c.actor, key, c.message_id.map(|(id, _)| id))?;
        }
        for (key, value) in &c.state_writes {
            match value {
                Some(v) => t.state.insert((c.actor.as_str(), key.as_str()), v.as_slice())?,
                None => t.state.remove((c.actor.as_str(), key.as_str()))?,
            };
        }
        for env in &c.sends {
            if !self.is_duplicate(t, env)? {
                self.place(t, env, fx)?;
            }
        }
        for id in &c.cancels {
            t.cancel_timer(&c.actor, *id)?;
        }
        for effect in &c.topics {
            match effect {
                TopicEffect::Subscribe { topic, filter } => {
                    t.subscriptions.insert((topic.as_str(), c.actor.as_str()), filter.as_str())?;
                }
                TopicEffect::Unsubscribe { topic } => {
                    t.subscriptions.remove((topic.as_str(), c.actor.as_str()))?;
                }
                TopicEffect::Publish { topic, envelope } => {
                    self.publish(t, topic, envelope, fx)?;
                }
            }
        }
        // A call's reply is stored even when empty, so that a retried
        // caller is always answered; with its time, for the retention sweep.
        if let Some((id, true)) = c.message_id {
            t.replies.insert(id.0, encode_reply(now_ms(), c.reply.as_deref()).as_slice())?;
        }
        t.update_stats(&c.actor, |s| s.processed += 1)?;
        Ok(Reply::Done)
    }

    fn fail_turn(&mut self, t: &mut Tables<'_>, f: &TurnFailure, fx: &mut Effects) -> Result<Reply, StoreError> {
        let seq = match f.taken {
            Some(key) => {
                t.take_from_mailbox(&f.actor, key, Some(f.envelope.id))?;
                key.seq
            }
            None => self.take_seq(),
        };
        let error = f.envelope.last_error.clone().unwrap_or_default();
        match f.disposition {
            Disposition::RetryAt { due_ms } => {
                if f.taken.is_some() {
                    t.delayed.insert((due_ms, seq), f.envelope.encode().as_slice())?;
                    fx.delayed(due_ms);
                }
            }
            Disposition::DeadLetter { reason } => {
                let id = self.take_seq();
                let dead =
                    DeadLetter { id, reason, error: error.clone(), at_ms: now_ms(), envelope: f.envelope.clone() };
                t.dead.insert(id, encode_record(&dead).as_slice())?;
            }
        }
        let dead = matches!(f.disposition, Disposition::DeadLetter { .. });
        t.update_stats(&f.actor, |s| {
            s.failed += 1;
            s.dead_lettered += u64::from(dead);
            s.last_error = Some(error);
        })?;
        Ok(Reply::Done)
    }

    fn promote(&mut self, t: &mut Tables<'_>, now: u64, fx: &mut Effects) -> Result<Reply, StoreError> {
        let mut due = Vec::new();
        for entry in t.delayed.range((0, 0)..=(now, u64::MAX))?.take(MAX_PROMOTE) {
            let (key, value) = entry?;
            due.push((key.value(), value.value().to_vec()));
        }
        for ((due_ms, seq), bytes) in &due {
            t.delayed.remove((*due_ms, *seq))?;
            let env = Envelope::decode(bytes, "delayed")?;
            t.timers.remove(env.id.0)?;
            t.put_in_mailbox(&env, *seq)?;
            fx.ready.insert(env.to);
        }
        Ok(Reply::Moved(due.len()))
    }

    /// The dead letters named by `ids` (all when `None`), checking that each
    /// exists before anything is changed.
    fn dead_ids(t: &Tables<'_>, ids: Option<&[u64]>) -> Result<Vec<u64>, StoreError> {
        match ids {
            Some(ids) => {
                for id in ids {
                    if t.dead.get(id)?.is_none() {
                        return Err(StoreError::UnknownDeadLetter(id.to_string()));
                    }
                }
                Ok(ids.to_vec())
            }
            None => t.dead.iter()?.map(|e| Ok(e?.0.value())).collect(),
        }
    }

    /// Puts dead letters back at the end of their mailboxes, as fresh
    /// deliveries (failures reset, priority kept).
    fn replay(&mut self, t: &mut Tables<'_>, ids: Option<&[u64]>, fx: &mut Effects) -> Result<Reply, StoreError> {
        let ids = Self::dead_ids(t, ids)?;
        for id in &ids {
            let Some(record) = t.dead.remove(id)? else {
                continue;
            };
            let dead: DeadLetter = decode_record(record.value(), "dead_letters")?;
            drop(record);
            let mut env = dead.envelope;
            env.failures = 0;
            env.not_before_ms = None;
            let seq = self.take_seq();
            t.put_in_mailbox(&env, seq)?;
            fx.ready.insert(env.to);
        }
        Ok(Reply::Moved(ids.len()))
    }

    /// Copies `envelope` into the mailbox of every subscriber of `topic`
    /// whose filter matches its headers; a full mailbox is skipped (and not
    /// counted). Returns how many received a copy.
    fn publish(
        &mut self,
        t: &mut Tables<'_>,
        topic: &str,
        envelope: &Envelope,
        fx: &mut Effects,
    ) -> Result<Reply, StoreError> {
        let mut subscribers = Vec::new();
        for entry in t.subscriptions.range((topic, "")..)? {
            let (key, filter) = entry?;
            let (entry_topic, subscriber) = key.value();
            if entry_topic != topic {
                break;
            }
            subscribers.push((subscriber.to_string(), filter.value().to_string()));
        }
        let mut delivered = 0;
        for (subscriber, filter) in subscribers {
            // Filters were validated at subscribe time; one that no longer
            // parses (a newer grammar?) matches nothing rather than all.
            let passes =
                filter.is_empty() || crate::filter::Filter::parse(&filter).is_ok_and(|f| f.matches(&envelope.headers));
            let ty = subscriber.split('/').next().unwrap_or_default();
            let Some(bound) = self.mailbox_bound(t, ty)? else { continue };
            let depth: u64 = t.pending.get(subscriber.as_str())?.map(|v| v.value().iter().sum()).unwrap_or(0);
            if !passes || depth >= bound {
                continue;
            }
            let mut copy = envelope.clone();
            copy.id = ulid::Ulid::new();
            copy.to = subscriber;
            copy.kind = crate::MessageKind::Publish;
            copy.headers.push(("topic".into(), topic.to_string()));
            self.place(t, &copy, fx)?;
            delivered += 1;
        }
        Ok(Reply::Moved(delivered))
    }

    /// Removes expired dedup keys and replies older than the retention
    /// window, at most [`MAX_SWEEP`] of each per call, continuing where the
    /// previous sweep stopped.
    fn sweep(&mut self, t: &mut Tables<'_>, now: u64) -> Result<Reply, StoreError> {
        let mut removed = 0;
        let start = std::mem::take(&mut self.dedup_cursor);
        let mut expired = Vec::new();
        let mut last = None;
        let range = match &start {
            Some((a, k)) => t.dedup.range((a.as_str(), k.as_str())..)?,
            None => t.dedup.range::<(&str, &str)>(..)?,
        };
        for entry in range.take(MAX_SWEEP) {
            let (key, until) = entry?;
            let (actor, k) = key.value();
            last = Some((actor.to_string(), k.to_string()));
            if until.value() <= now {
                expired.push((actor.to_string(), k.to_string()));
            }
        }
        for (actor, k) in &expired {
            t.dedup.remove((actor.as_str(), k.as_str()))?;
        }
        removed += expired.len();
        // Resume after the last key seen, unless this pass reached the end.
        self.dedup_cursor = if last.is_some() && expired.len() + 1 < MAX_SWEEP { None } else { last };

        let cutoff = now.saturating_sub(self.options.dedup_retention_ms);
        let from = self.reply_cursor.take().unwrap_or(0);
        let mut old = Vec::new();
        let mut seen = 0;
        for entry in t.replies.range(from..)?.take(MAX_SWEEP) {
            let (id, value) = entry?;
            seen += 1;
            self.reply_cursor = Some(id.value().saturating_add(1));
            if decode_reply_time(value.value()) <= cutoff {
                old.push(id.value());
            }
        }
        if seen < MAX_SWEEP {
            self.reply_cursor = None;
        }
        for id in &old {
            t.replies.remove(id)?;
        }
        removed += old.len();
        Ok(Reply::Moved(removed))
    }

    fn purge(&mut self, t: &mut Tables<'_>, ids: Option<&[u64]>) -> Result<Reply, StoreError> {
        let ids = Self::dead_ids(t, ids)?;
        for id in &ids {
            t.dead.remove(id)?;
        }
        Ok(Reply::Moved(ids.len()))
    }
}

/// The tables a batch writes, opened once per transaction.
struct Tables<'t> {
    mailbox: Table<'t, (&'static str, u8, u64), &'static [u8]>,
    pending: Table<'t, &'static str, Depths>,
    delayed: Table<'t, (u64, u64), &'static [u8]>,
    state: Table<'t, (&'static str, &'static str), &'static [u8]>,
    types: Table<'t, &'static str, &'static [u8]>,
    dead: Table<'t, u64, &'static [u8]>,
    replies: Table<'t, u128, &'static [u8]>,
    stats: Table<'t, &'static str, &'static [u8]>,
    meta: Table<'t, &'static str, u64>,
    dedup: Table<'t, (&'static str, &'static str), u64>,
    subscriptions: Table<'t, (&'static str, &'static str), &'static str>,
    timers: Table<'t, u128, (u64, u64)>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            mailbox: txn.open_table(MAILBOX)?,
            pending: txn.open_table(PENDING)?,
            delayed: txn.open_table(DELAYED)?,
            state: txn.open_table(STATE)?,
            types: txn.open_table(TYPES)?,
            dead: txn.open_table(DEAD)?,
            replies: txn.open_table(REPLIES)?,
            stats: txn.open_table(STATS)?,
            meta: txn.open_table(META)?,
            dedup: txn.open_table(DEDUP)?,
            subscriptions: txn.open_table(SUBSCRIPTIONS)?,
            timers: txn.open_table(TIMERS)?,
        })
    }

    fn put_in_mailbox(&mut self, env: &Envelope, seq: u64) -> Result<(), StoreError> {
        self.mailbox.insert((env.to.as_str(), slot(env.priority), seq), env.encode().as_slice())?;
        let mut depths = self.pending.get(env.to.as_str())?.map(|v| v.value()).unwrap_or_default();
        depths[usize::from(env.priority.min(MAX_PRIORITY))] += 1;
        self.pending.insert(env.to.as_str(), depths)?;
        Ok(())
    }

    /// Removes a handled message; refuses if it is no longer there.
    fn take_from_mailbox(&mut self, actor: &str, key: MessageKey, id: Option<ulid::Ulid>) -> Result<(), StoreError> {
        if self.mailbox.remove((actor, key.slot, key.seq))?.is_none() {
            let id = id.map(|i| i.to_string()).unwrap_or_else(|| format!("#{}", key.seq));
            return Err(StoreError::MessageGone { actor: actor.to_string(), id });
        }
        let mut depths = self.pending.get(actor)?.map(|v| v.value()).unwrap_or_default();
        let priority = usize::from(MAX_PRIORITY.saturating_sub(key.slot));
        depths[priority] = depths[priority].saturating_sub(1);
        if depths.iter().all(|d| *d == 0) {
            self.pending.remove(actor)?;
        } else {
            self.pending.insert(actor, depths)?;
        }
        Ok(())
    }

    /// Removes the delayed message `id` if `actor` sent it or is to get it.
    fn cancel_timer(&mut self, actor: &str, id: ulid::Ulid) -> Result<(), StoreError> {
        let Some(key) = self.timers.get(id.0)?.map(|v| v.value()) else { return Ok(()) };
        let Some(bytes) = self.delayed.get(key)?.map(|v| v.value().to_vec()) else { return Ok(()) };
        let env = Envelope::decode(&bytes, "delayed")?;
        if env.to == actor || env.from.as_deref() == Some(actor) {
            self.delayed.remove(key)?;
            self.timers.remove(id.0)?;
        }
        Ok(())
    }

    fn update_stats(&mut self, actor: &str, change: impl FnOnce(&mut ActorStats)) -> Result<(), StoreError> {
        let mut stats = match self.stats.get(actor)? {
            Some(v) => decode_record::<ActorStats>(v.value(), "actor_stats")?,
            None => ActorStats::default(),
        };
        change(&mut stats);
        stats.last_activity_ms = now_ms();
        self.stats.insert(actor, encode_record(&stats).as_slice())?;
        Ok(())
    }
}
