//! The commit log: what makes a batch durable with one sequential append
//! instead of a redb commit's scattered page writes.
//!
//! The group committer ([`crate::commit`]) applies a batch to one redb
//! write transaction, as always, but records every insert and remove it
//! makes (raw key and value bytes, [`frame`]), appends them as one frame
//! to this file and `fdatasync`s it, and only then commits redb with
//! `Durability::None` — in memory — and answers the batch's waiters.
//! Every so often a batch is committed to redb durably instead: a
//! *checkpoint*, which also moves the log to a new *generation* and
//! starts it again at offset 0 (see [`CommitLog::wants_checkpoint`]).
//! A generation is a random number, recorded by the checkpoint that
//! starts it: only equality matters, and a random one cannot match the
//! leftovers of an earlier life of the file (a redb file restored from a
//! backup beside a newer log, say).
//!
//! After a crash redb comes back as of its last durable commit, and
//! [`CommitLog::recover`] replays the frames of the generation that
//! commit recorded, in order, then checkpoints. Writes are blind (a key
//! ends with the last value the log gave it), so replaying a frame whose
//! effects redb already has changes nothing: a checkpoint may lag the
//! log, never lead it. The first frame that is torn, fails its checksum
//! or belongs to an older generation ends the replay; no frame after it
//! was acknowledged, because each frame is synced before the next is
//! written and nobody hears of a batch before its frame is synced.
//!
//! The file is created at its full size, filled with zeros and synced
//! once, so an append never grows it: `fdatasync` then has no metadata
//! to write, and a full disk cannot refuse an append. The design, and the
//! measurements behind it, are in `docs/design/commit-log.md`.

mod frame;
mod tables;

use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase};

pub(crate) use frame::FrameBuf;
pub(crate) use tables::table_id;

use crate::error::StoreError;
use crate::schema::{LOG_GENERATION, META};

/// Name of the log file inside the data directory.
pub const LOG_FILE: &str = "pigeon.wal";

/// Size of the log file. A batch whose frame does not fit in what is left
/// of it is a checkpoint instead.
pub(crate) const LOG_BYTES: u64 = 8 << 20;

/// Longest time between checkpoints while batches come, by default
/// (`StoreOptions::checkpoint_interval`): it bounds what redb holds only
/// in memory and what a restart replays.
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// The open log file and where the next frame goes.
pub(crate) struct CommitLog {
    file: std::fs::File,
    path: PathBuf,
    /// Generation of the frames written now; the last checkpoint stored it.
    generation: u64,
    /// Where the next frame goes.
    offset: u64,
    last_checkpoint: Instant,
    /// Longest time between checkpoints.
    interval: Duration,
    /// A frame failed: the next batch must be a checkpoint, so that the
    /// failed frame can never be replayed after a later one.
    checkpoint_due: bool,
}

/// What [`CommitLog::recover`] found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// Frames replayed.
    pub(crate) frames: usize,
    /// Writes they held.
    pub(crate) writes: usize,
}

impl CommitLog {
    /// Opens the log of the store in `dir` (creating it), replays onto `db`
    /// the frames redb's last durable commit does not have, and checkpoints.
    /// Called when the store opens, and again after the committer had to
    /// reopen redb: either way redb has forgotten its non-durable commits.
    pub(crate) fn recover(db: &Database, dir: &Path, interval: Duration) -> Result<(Self, Recovered), StoreError> {
        let path = dir.join(LOG_FILE);
        let generation = stored_generation(db)?;
        let bytes = read_generation(&path, generation)?;
        let checkpointed = fresh_generation();
        let recovered = replay(db, &bytes, generation, checkpointed, &path)?;
        let file = prepare(&path)?;
        let log = Self {
            file,
            path,
            generation: checkpointed,
            offset: 0,
            last_checkpoint: Instant::now(),
            interval,
            checkpoint_due: false,
        };
        Ok((log, recovered))
    }

    /// [`CommitLog::recover`] again, after the committer had to reopen redb.
    pub(crate) fn reopen(&mut self, db: &Database) -> Result<Recovered, StoreError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let (log, recovered) = Self::recover(db, dir, self.interval)?;
        *self = log;
        Ok(recovered)
    }

    /// The generation the next frame is written in.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// A generation for the next checkpoint to record.
    pub(crate) fn new_generation(&self) -> u64 {
        fresh_generation()
    }

    /// Whether the batch whose frame is `frame_len` bytes (0: it wrote
    /// nothing) should be a checkpoint: one was asked for or a frame failed
    /// since the last, its frame does not fit, or the last checkpoint is
    /// older than the interval and there is something to write.
    pub(crate) fn wants_checkpoint(&self, frame_len: usize) -> bool {
        self.checkpoint_due
            || self.offset.saturating_add(frame_len as u64) > LOG_BYTES
            || (self.last_checkpoint.elapsed() >= self.interval && (self.offset > 0 || frame_len > 0))
    }

    /// The next batch is a checkpoint, even one that writes nothing.
    pub(crate) fn ask_for_checkpoint(&mut self) {
        self.checkpoint_due = true;
    }

    /// A durable redb commit recorded `generation`: the log starts again,
    /// in it.
    pub(crate) fn checkpointed(&mut self, generation: u64) {
        self.generation = generation;
        self.offset = 0;
        self.last_checkpoint = Instant::now();
        self.checkpoint_due = false;
    }

    /// Appends `frame` and syncs it. On failure nothing may be assumed of
    /// the frame, so the next batch is a checkpoint (see `checkpoint_due`).
    pub(crate) fn append(&mut self, frame: &[u8]) -> Result<(), StoreError> {
        let written = self.file.write_all_at(frame, self.offset).and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.offset += frame.len() as u64;
                Ok(())
            }
            Err(e) => {
                self.forget_at(self.offset);
                Err(io_error(&self.path, "append to", &e))
            }
        }
    }

    /// The frame just appended (`len` bytes) must not count: its batch
    /// failed after all. Its header is overwritten, so a replay stops
    /// before it, and the next batch is a checkpoint.
    pub(crate) fn withdraw(&mut self, len: usize) {
        self.offset = self.offset.saturating_sub(len as u64);
        self.forget_at(self.offset);
    }

    /// Best effort: zeroes the header at `offset`, and asks for a
    /// checkpoint, which makes whatever is there dead either way.
    fn forget_at(&mut self, offset: u64) {
        self.checkpoint_due = true;
        let zeroed = self.file.write_all_at(&[0; frame::HEADER], offset).and_then(|()| self.file.sync_data());
        if let Err(e) = zeroed {
            tracing::warn!(path = %self.path.display(), "cannot withdraw a failed frame ({e}); the next commit is a checkpoint");
        }
    }
}

/// The generation redb's last durable commit recorded (0: none yet).
fn stored_generation(db: &Database) -> Result<u64, StoreError> {
    let txn = db.begin_read()?;
    match txn.open_table(META) {
        Ok(meta) => Ok(meta.get(LOG_GENERATION)?.map_or(0, |v| v.value())),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// What the log file holds for `generation`: nothing when it is missing
/// (with a warning if a checkpoint said there was a log), and nothing
/// read past the first header when that header is of another generation —
/// after a clean stop the file is all dead frames, and a start need not
/// read 8 MiB to find that out.
fn read_generation(path: &Path, generation: u64) -> Result<Vec<u8>, StoreError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if generation > 0 {
                tracing::warn!(path = %path.display(),
                    "the commit log is missing: writes acknowledged after the store's last checkpoint are lost");
            }
            return Ok(Vec::new());
        }
        Err(e) => return Err(io_error(path, "open", &e)),
    };
    let mut header = [0u8; frame::HEADER];
    match file.read_exact_at(&mut header, 0) {
        Ok(()) if generation != 0 && frame::generation_of(&header) == generation => {}
        Ok(()) => return Ok(Vec::new()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(Vec::new()),
        Err(e) => return Err(io_error(path, "read", &e)),
    }
    std::fs::read(path).map_err(|e| io_error(path, "read", &e))
}

/// A new generation: random, never 0 (which stands for none).
fn fresh_generation() -> u64 {
    (ulid::Ulid::new().random() as u64) | 1
}

/// Applies the frames of `generation` in `bytes` to `db` and checkpoints
/// (recording `next` as the log's generation), in one durable transaction.
fn replay(db: &Database, bytes: &[u8], generation: u64, next: u64, path: &Path) -> Result<Recovered, StoreError> {
    let txn = db.begin_write()?;
    let mut recovered = Recovered::default();
    for (index, payload) in frame::frames(bytes, generation).enumerate() {
        for write in frame::writes(payload) {
            let unreadable = |reason: String| {
                StoreError::Storage(format!(
                    "frame {index} of the commit log {} cannot be replayed: {reason}. The store was written by \
                     another version of Pigeon, or the log is damaged; open it with the version that wrote it",
                    path.display()
                ))
            };
            let write = write.map_err(unreadable)?;
            // Decoding a key or value of the wrong shape panics inside redb;
            // the checksum makes that a bug or another version, never a crash.
            let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tables::apply(&txn, &write)));
            match applied {
                Ok(Ok(())) => {}
                Ok(Err(tables::ReplayError::UnknownTable(id))) => {
                    return Err(unreadable(format!("it writes table #{id}, which this version does not know")));
                }
                Ok(Err(tables::ReplayError::Storage(e))) => return Err(e.into()),
                Err(_) => return Err(unreadable(format!("a write of table #{} does not decode", write.table))),
            }
            recovered.writes += 1;
        }
        recovered.frames += 1;
    }
    txn.open_table(META)?.insert(LOG_GENERATION, next)?;
    txn.commit()?;
    if recovered.frames > 0 {
        tracing::info!(path = %path.display(), frames = recovered.frames, writes = recovered.writes,
            "replayed the commit log");
    }
    Ok(recovered)
}

/// Opens the log file at its full size, creating or completing it with
/// zeros (synced, with its directory entry) when it is shorter.
fn prepare(path: &Path) -> Result<std::fs::File, StoreError> {
    let open = || std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path);
    let mut file = open().map_err(|e| io_error(path, "open", &e))?;
    let len = file.metadata().map_err(|e| io_error(path, "read the size of", &e))?.len();
    if len < LOG_BYTES {
        let mut fill = || -> std::io::Result<()> {
            use std::io::Seek;
            file.seek(std::io::SeekFrom::Start(len))?;
            let zeros = vec![0u8; 1 << 20];
            let mut left = LOG_BYTES - len;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                file.write_all(&zeros[..n])?;
                left -= n as u64;
            }
            file.sync_all()?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        fill().map_err(|e| io_error(path, "create", &e))?;
    }
    Ok(file)
}

fn io_error(path: &Path, what: &str, e: &std::io::Error) -> StoreError {
    StoreError::Storage(format!("cannot {what} the commit log {}: {e}", path.display()))
}

#[cfg(test)]
mod tests;
