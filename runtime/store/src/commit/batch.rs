//! One batch: its requests applied, in order, to one redb write
//! transaction whose every write the frame records, and the transaction
//! made durable — by the commit log (an appended frame and its sync, then
//! redb committed in memory), or as a checkpoint (redb committed durably,
//! the log in a new generation). See the store's `log` module.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::tables::Tables;
use super::{Clear, Effects, Job, Reply, Request, SEQ_LEASE, Worker};
use crate::error::StoreError;
use crate::log::FrameBuf;
use crate::schema::{LOG_GENERATION, META, NEXT_SEQ};

impl Worker {
    /// Applies every job to one transaction and makes it durable; each
    /// job's result, or the error that failed the whole batch.
    pub(super) fn apply_all(
        &mut self,
        jobs: &[Job],
        effects: &mut Effects,
    ) -> Result<Vec<Result<Reply, StoreError>>, StoreError> {
        let db = self.db.get()?;
        let txn = db.begin_write()?;
        let mut results = Vec::with_capacity(jobs.len());
        let frame = RefCell::new(std::mem::take(&mut self.frame));
        frame.borrow_mut().clear();
        let applied = self.apply_each(&txn, &frame, jobs, &mut results, effects);
        let mut frame = frame.into_inner();
        let outcome = applied.and_then(|()| self.make_durable(txn, &mut frame));
        self.frame = frame;
        outcome.map(|()| results)
    }

    /// Applies every job to `txn`, recording its writes in `frame`.
    fn apply_each(
        &mut self,
        txn: &redb::WriteTransaction,
        frame: &RefCell<FrameBuf>,
        jobs: &[Job],
        results: &mut Vec<Result<Reply, StoreError>>,
        effects: &mut Effects,
    ) -> Result<(), StoreError> {
        let mut t = Tables::open(txn, frame)?;
        for job in jobs {
            if job.request.grows()
                && let Err(full) = self.disk.check_room()
            {
                // A turn refused for room takes the turns built on it along.
                if matches!(job.request, Request::Commit(_)) {
                    self.lose_dependencies();
                }
                results.push(Err(full));
                continue;
            }
            let result = self.apply_one(&mut t, &job.request, effects);
            // A storage error poisons the transaction: give up on the batch.
            if let Err(StoreError::Storage(e)) = &result {
                return Err(StoreError::Storage(e.clone()));
            }
            results.push(result);
        }
        t.flush()?;
        let next_seq = self.next_seq.load(Ordering::Relaxed);
        if next_seq >= self.leased_until {
            self.leased_until = next_seq + SEQ_LEASE;
            t.meta.insert(NEXT_SEQ, self.leased_until)?;
        }
        Ok(())
    }

    fn apply_one(&mut self, t: &mut Tables<'_>, request: &Request, effects: &mut Effects) -> Result<Reply, StoreError> {
        match request {
            Request::Enqueue(env) => self.enqueue(t, env, effects),
            Request::Commit(c) => {
                let result = self.commit_turn(t, c, effects);
                if result.is_err() {
                    self.lose_dependencies();
                }
                result
            }
            Request::Fail(f) => self.fail_turn(t, f, effects),
            Request::Promote { now_ms } => self.promote(t, *now_ms, effects),
            Request::Replay(ids) => self.replay(t, ids.as_deref(), effects),
            Request::Sweep { now_ms } => self.sweep(t, *now_ms),
            Request::Checkpoint => {
                self.log.ask_for_checkpoint();
                Ok(Reply::Done)
            }
            Request::Purge(ids) => self.purge(t, ids.as_deref()),
            Request::Subscribe { topic, subscriber, filter } => {
                t.subscribe(topic, subscriber, filter)?;
                Ok(Reply::Done)
            }
            Request::Unsubscribe { topic, subscriber } => {
                let existed = t.unsubscribe(topic, subscriber)?;
                Ok(Reply::Moved(usize::from(existed)))
            }
            Request::Publish { topic, envelope } => self.publish(t, topic, envelope, true, effects),
            Request::Crashed(ids) => self.record_crashes(t, ids),
            Request::CancelDelayed(id) => Ok(Reply::Moved(usize::from(t.cancel_delayed(*id)?))),
            Request::Clear { actor, what: Clear::Mailbox } => t.clear_mailbox(actor).map(Reply::Moved),
            Request::Clear { actor, what: Clear::State } => t.clear_state(actor).map(Reply::Moved),
            Request::Inbound(batch) => self.inbound(t, batch, effects),
            Request::Forwarded { peer, seqs } => self.forwarded(t, peer, seqs),
            Request::AcceptHandoff { rows, epoch } => self.accept_handoff(t, rows, *epoch, effects),
            Request::ReleaseActor { actor, to, epoch } => self.release_actor(t, actor, to, *epoch),
            Request::PutPlacement { name, placement } => self.put_placement(t, name, placement),
            Request::HandoffsDone { name, epoch, from } => {
                t.handoffs_done.insert((name.as_str(), *epoch, from.as_str()), ())?;
                Ok(Reply::Done)
            }
        }
    }

    /// Makes the applied batch durable: its frame appended to the log and
    /// synced, then redb committed in memory — or, when the log asks for
    /// one, a checkpoint (redb committed durably, the log in a new
    /// generation). Nothing is visible to readers before it is durable.
    fn make_durable(&mut self, txn: redb::WriteTransaction, frame: &mut FrameBuf) -> Result<(), StoreError> {
        let started = Instant::now();
        let written = if frame.is_empty() { 0 } else { frame.len() };
        self.last_checkpoint = self.log.wants_checkpoint(written);
        let outcome = if self.last_checkpoint {
            self.checkpoint(txn)
        } else if frame.is_empty() {
            // Nothing written: nothing to make durable (what the batch read
            // was durable before it became visible).
            txn.abort().map_err(StoreError::from)
        } else {
            self.commit_through_log(txn, frame)
        };
        self.last_commit = started.elapsed();
        self.stats.commit_nanos.fetch_add(self.last_commit.as_nanos() as u64, Ordering::Relaxed);
        outcome
    }

    /// The frame appended and synced, then redb committed in memory; a
    /// commit that fails after all withdraws the frame.
    fn commit_through_log(&mut self, mut txn: redb::WriteTransaction, frame: &mut FrameBuf) -> Result<(), StoreError> {
        txn.set_durability(redb::Durability::None)
            .map_err(|e| StoreError::Storage(format!("cannot commit in memory: {e}")))?;
        self.log.append(frame.seal(self.log.generation()))?;
        if let Err(e) = txn.commit() {
            self.log.withdraw(frame.len());
            return Err(e.into());
        }
        Ok(())
    }

    /// Commits `txn` durably, recording a new generation of the log.
    fn checkpoint(&mut self, txn: redb::WriteTransaction) -> Result<(), StoreError> {
        let generation = self.log.new_generation();
        txn.open_table(META)?.insert(LOG_GENERATION, generation)?;
        txn.commit()?;
        self.log.checkpointed(generation);
        self.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A checkpoint with nothing else in it.
    pub(super) fn checkpoint_now(&mut self) -> Result<(), StoreError> {
        let db = self.db.get()?;
        let txn = db.begin_write()?;
        self.checkpoint(txn)
    }
}
