//! A batch that failed, and a database that must be opened again (see
//! [`crate::storage`] for what the rest of the store sees meanwhile).

use std::sync::mpsc;
use std::time::Duration;

use super::{Job, Request, Worker};
use crate::error::StoreError;

/// Pause between attempts to reopen a database that does not open.
const REOPEN_RETRY: Duration = Duration::from_millis(500);
/// Pause while a reader still holds the old database.
const READER_WAIT: Duration = Duration::from_millis(10);

impl Request {
    /// Whether the request is new persistent work that the disk alarm
    /// refuses (turns and failures go on: they drain mailboxes).
    pub(super) fn grows(&self) -> bool {
        matches!(
            self,
            Request::Enqueue(_)
                | Request::Replay(_)
                | Request::Subscribe { .. }
                | Request::Publish { .. }
                | Request::Inbound(_)
                | Request::AcceptHandoff { .. }
        ) || matches!(self, Request::Commit(c) if c.arrived)
            || matches!(self, Request::Fail(f) if f.arrived)
    }
}

impl Worker {
    /// Nothing of a failed batch is acknowledged: every waiter gets the
    /// error, and whatever was built on its turns is refused (the epoch
    /// moves). If redb now refuses to write at all, as it does after an
    /// I/O error, the database is opened again before the next batch.
    pub(super) fn batch_failed(&mut self, jobs: Vec<Job>, error: &StoreError, rx: &mpsc::Receiver<Job>) {
        // The lease may not be durable: take a new one next time.
        self.leased_until = self.next_seq.load(std::sync::atomic::Ordering::Relaxed);
        self.lose_dependencies();
        let message = error.to_string();
        self.disk.refresh();
        // Recorded before the waiters hear of it: one who then asks for the
        // store's status sees the failure.
        let broken = !self.can_write();
        if broken {
            self.disk.failed(&message);
        } else {
            // A failed sync of the commit log leaves redb writable: the
            // store goes on at once, but the error is on record.
            self.disk.count_error();
        }
        for job in jobs {
            let _ = job.done.send(Err(self.disk.write_failed(&message)));
        }
        if broken {
            tracing::error!(path = %self.db.path.display(), "the store failed to write ({message}); reopening it");
            self.reopen(rx);
        }
    }

    /// Replays the commit log onto the reopened database.
    fn recover_log(&mut self) -> Result<(), StoreError> {
        let db = self.db.get()?;
        let recovered = self.log.reopen(&db)?;
        self.disk.replayed(recovered.frames);
        Ok(())
    }

    fn can_write(&self) -> bool {
        let Ok(db) = self.db.get() else { return false };
        db.begin_write().is_ok_and(|txn| txn.abort().is_ok())
    }

    /// Closes the database and opens it again, until that works. Requests
    /// that arrive meanwhile are refused with [`StoreError::Unavailable`]
    /// rather than left waiting.
    fn reopen(&mut self, rx: &mpsc::Receiver<Job>) {
        self.db.close();
        let path = self.db.path.display().to_string();
        let unavailable = || StoreError::Unavailable(path.clone());
        loop {
            match self.db.reopen() {
                // redb is back as of its last checkpoint: the log brings
                // it up to the last acknowledged batch.
                Ok(()) => match self.recover_log() {
                    Ok(()) => break,
                    Err(e) => {
                        let reason = format!("cannot replay the commit log: {e}");
                        tracing::warn!(path = %self.db.path.display(), "{reason}; retrying");
                        self.disk.failed(&reason);
                        self.db.close();
                        std::thread::sleep(REOPEN_RETRY);
                    }
                },
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => std::thread::sleep(READER_WAIT),
                Err(e) => {
                    let reason = format!("cannot reopen the store: {e}");
                    tracing::warn!(path = %self.db.path.display(), "{reason}; retrying");
                    self.disk.failed(&reason);
                    std::thread::sleep(REOPEN_RETRY);
                }
            }
            while let Ok(job) = rx.try_recv() {
                let _ = job.done.send(Err(unavailable()));
            }
        }
        self.bounds.clear();
        self.disk.recovered();
        tracing::info!(path = %self.db.path.display(), "store reopened: writing again");
    }
}
