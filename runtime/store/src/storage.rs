//! The disk under the store: its free space, the low-watermark alarm, and
//! getting back on its feet after an I/O error.
//!
//! - **Disk alarm.** Like RabbitMQ's disk alarm, the store refuses new
//!   persistent work — client sends, publications, subscriptions, replays,
//!   deploys — while the file system holding the data directory has less
//!   than [`StoreOptions::disk_free_limit`](crate::StoreOptions) free, with
//!   [`StoreError::StorageFull`]. Turns go on (they drain mailboxes), and so
//!   do reads and transient messages. The free space is read before a batch
//!   (at most every 10 ms) and by every status query, so the alarm clears
//!   by itself once space is back.
//! - **I/O errors.** A failed write or fsync fails its whole batch: every
//!   waiter gets the error and nothing of the batch is acknowledged. After
//!   such an error redb refuses all further writes ("Previous I/O error
//!   occurred"), so the committer closes the database, opens it again and
//!   replays the commit log onto it (see the store's `log` module),
//!   retrying until it can. Readers see [`StoreError::Unavailable`] while
//!   it does. A failed sync of the commit log leaves redb writable: only
//!   the batch fails, and the next one is a checkpoint. A failed fsync is
//!   never retried: what it covered is only acknowledged if a later,
//!   successful commit contains it again.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use redb::Database;

use crate::error::StoreError;

/// The database, swapped for a fresh one after an I/O error.
pub(crate) struct DbSlot {
    db: ArcSwapOption<Database>,
    pub(crate) path: PathBuf,
}

impl DbSlot {
    pub(crate) fn new(db: Database, path: PathBuf) -> Self {
        Self { db: ArcSwapOption::from_pointee(db), path }
    }

    /// The open database, or [`StoreError::Unavailable`] while it is being
    /// reopened.
    pub(crate) fn get(&self) -> Result<Arc<Database>, StoreError> {
        self.db.load_full().ok_or_else(|| StoreError::Unavailable(self.path.display().to_string()))
    }

    /// Closes the database (once the last reader lets go of it).
    pub(crate) fn close(&self) {
        self.db.store(None);
    }

    /// Tries to open the database again; `DatabaseAlreadyOpen` while a
    /// reader still holds the old one.
    pub(crate) fn reopen(&self) -> Result<(), redb::DatabaseError> {
        let db = Database::create(&self.path)?;
        self.db.store(Some(Arc::new(db)));
        Ok(())
    }
}

/// What the store knows of its disk, shared by the committer and readers.
pub(crate) struct DiskWatch {
    dir: PathBuf,
    limit: u64,
    free: AtomicU64,
    alarm: AtomicBool,
    /// The last I/O error, until the database works again.
    failure: Mutex<Option<String>>,
    errors: AtomicU64,
    /// Commit-log frames replayed when the store last opened (or reopened).
    replayed: AtomicU64,
    /// When the free space was last read, in µs since `started`.
    refreshed_us: AtomicU64,
    started: std::time::Instant,
}

/// How stale the free space may be when the committer checks it.
const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// The disk's state, for `/health`, the dashboard and `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageStatus {
    /// The data directory.
    pub dir: String,
    /// Bytes free for the node on its file system.
    pub free_bytes: u64,
    /// Below this, persistent work is refused.
    pub free_limit_bytes: u64,
    /// Free space is below the limit.
    pub alarm: bool,
    /// The last I/O error, while the store is not yet writing again.
    pub failure: Option<String>,
    /// Batches failed by I/O errors since the node started.
    pub io_errors: u64,
    /// Commit-log frames the store replayed when it last opened: batches
    /// acknowledged after its last checkpoint (0 after a clean stop).
    pub replayed_frames: u64,
}

impl StorageStatus {
    /// Whether persistent work can go on.
    pub fn healthy(&self) -> bool {
        !self.alarm && self.failure.is_none()
    }
}

impl DiskWatch {
    pub(crate) fn new(dir: &Path, limit: u64) -> Self {
        let watch = Self {
            dir: dir.to_path_buf(),
            limit,
            free: AtomicU64::new(u64::MAX),
            alarm: AtomicBool::new(false),
            failure: Mutex::new(None),
            errors: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            refreshed_us: AtomicU64::new(0),
            started: std::time::Instant::now(),
        };
        watch.refresh();
        watch
    }

    /// [`DiskWatch::refresh`], unless the last one is under
    /// [`REFRESH_EVERY`] old: the committer asks before every batch, which
    /// can be thousands of times a second.
    pub(crate) fn refresh_soon(&self) {
        let now = self.started.elapsed().as_micros() as u64;
        let last = self.refreshed_us.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= REFRESH_EVERY.as_micros() as u64 {
            self.refresh();
        }
    }

    /// Reads the free space again (one `statvfs`) and sets the alarm.
    pub(crate) fn refresh(&self) {
        self.refreshed_us.store(self.started.elapsed().as_micros() as u64, Ordering::Relaxed);
        // A file system that cannot say is taken as having room: the writes
        // themselves will tell.
        let free = fs4::available_space(&self.dir).unwrap_or(u64::MAX);
        self.free.store(free, Ordering::Relaxed);
        let alarm = free < self.limit;
        if self.alarm.swap(alarm, Ordering::Relaxed) != alarm {
            if alarm {
                tracing::warn!(dir = %self.dir.display(), free, limit = self.limit,
                    "disk alarm: free space is below the limit; persistent work is refused until there is room");
            } else {
                tracing::info!(dir = %self.dir.display(), free, "disk alarm cleared: accepting persistent work again");
            }
        }
    }

    /// Whether the alarm is on.
    pub(crate) fn alarm(&self) -> bool {
        self.alarm.load(Ordering::Relaxed)
    }

    /// Refuses new persistent work while the alarm is on.
    pub(crate) fn check_room(&self) -> Result<(), StoreError> {
        if self.alarm.load(Ordering::Relaxed) {
            return Err(StoreError::StorageFull {
                dir: self.dir.display().to_string(),
                free: self.free.load(Ordering::Relaxed),
                limit: self.limit,
            });
        }
        Ok(())
    }

    /// The error a failed batch's waiters get (with the free space of the
    /// last [`DiskWatch::refresh`]).
    pub(crate) fn write_failed(&self, reason: &str) -> StoreError {
        StoreError::WriteFailed {
            dir: self.dir.display().to_string(),
            free: self.free.load(Ordering::Relaxed),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn failed(&self, error: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
    }

    /// An I/O error that needs no reopening (a failed sync of the commit
    /// log): counted, without marking the store as failing.
    pub(crate) fn count_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The store opened (or reopened) and replayed `frames` of its log.
    pub(crate) fn replayed(&self, frames: usize) {
        self.replayed.store(frames as u64, Ordering::Relaxed);
    }

    pub(crate) fn recovered(&self) {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub(crate) fn status(&self) -> StorageStatus {
        self.refresh();
        StorageStatus {
            dir: self.dir.display().to_string(),
            free_bytes: self.free.load(Ordering::Relaxed),
            free_limit_bytes: self.limit,
            alarm: self.alarm.load(Ordering::Relaxed),
            failure: self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            io_errors: self.errors.load(Ordering::Relaxed),
            replayed_frames: self.replayed.load(Ordering::Relaxed),
        }
    }
}
